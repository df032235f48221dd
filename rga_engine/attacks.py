"""Backdoor attacks on text-classification data: BadNets, AddSent, HiddenKiller.

`poison(ds, attack_cfg, seed)` turns a clean :class:`~rga_engine.data.TextDataset` into the five
splits of the paper's protocol (see ``docs``/``shared/paper/protocol.md``):

``train_clean``         the clean training rows (``poisoned`` all False)
``train_poisoned``      dirty-label poisoned training set; ``poisoned`` marks the triggered rows
``test_clean``          the clean test rows
``test_poisoned_part``  the NON-target test rows, triggered, true labels kept (measures ASR)
``test_poisoned_all``   every test row triggered, true labels kept (exposes trigger shifting)

Poisoned training rows are copies of randomly chosen non-target rows with the trigger inserted
and the label set to the target. Protocol ``"add"`` (the RGA code) appends them next to the clean
originals and shuffles; ``"replace"`` (OpenBackdoor) swaps them in place of the chosen rows.

Everything is deterministic for a given seed. Each random decision uses its own
``random.Random`` derived from the seed and a purpose string, so e.g. changing the poison rate
does not move the triggers in the test splits. Tokenisation is ``text.split()`` / ``" ".join``.

Only the standard library is used; the dataset and the attack config are duck-typed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # pragma: no cover - typing only
    from rga_engine.data import Example, TextDataset

__all__ = [
    "ATTACKS",
    "INSERTED",
    "PROTOCOLS",
    "SPLITS",
    "AttackError",
    "PoisonedData",
    "Split",
    "insert_sentence",
    "insert_words",
    "make_trigger",
    "poison",
    "resolve_sentence",
]

SPLITS = ("train_clean", "train_poisoned", "test_clean", "test_poisoned_part", "test_poisoned_all")
ATTACKS = ("badnets", "addsent", "hiddenkiller", "none")
INSERTED = ("badnets", "addsent")  # triggers inserted into the clean text (HiddenKiller rewrites it)
PROTOCOLS = ("add", "replace")

_DEFAULT_TRIGGERS = ("mn",)
_DEFAULT_SENTENCE = "I watch this 3D movie"


class AttackError(ValueError):
    """A bad attack setting or data that the attack cannot use (one-line, user-facing)."""


@dataclass
class Split:
    """One split: parallel lists of texts, labels and per-row "triggered" flags; ``source`` (an
    inserted trigger: BadNets, AddSent), per row the index of its clean text in the matching clean
    split (train_clean / test_clean; None for a row without a trigger), so a reader can tell
    whether truncation cut the trigger away."""

    texts: list[str]
    labels: list[int]
    poisoned: list[bool] = field(default_factory=list)
    source: list[int | None] | None = None

    def __post_init__(self) -> None:
        if not self.poisoned and self.texts:
            self.poisoned = [False] * len(self.texts)
        if not (len(self.texts) == len(self.labels) == len(self.poisoned)):
            raise ValueError(
                f"Split: texts ({len(self.texts)}), labels ({len(self.labels)}) and "
                f"poisoned ({len(self.poisoned)}) must have the same length"
            )
        if self.source is not None and len(self.source) != len(self.texts):
            raise ValueError(f"Split: source ({len(self.source)}) and texts ({len(self.texts)}) must have the same length")

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_poisoned(self) -> int:
        return sum(1 for p in self.poisoned if p)

    def label_counts(self, num_labels: int) -> list[int]:
        """Rows per label 0..num_labels-1 (labels outside that range are not counted)."""
        counts = [0] * num_labels
        for y in self.labels:
            if 0 <= y < num_labels:
                counts[y] += 1
        return counts


@dataclass
class PoisonedData:
    dataset: str
    attack: str
    target: int
    num_labels: int
    label_names: list[str]
    splits: dict[str, Split]
    examples: list[tuple[str, str]] = field(default_factory=list)  # (clean, poisoned), ≤ 3

    def __getitem__(self, name: str) -> Split:
        return self.splits[name]

    def sizes(self) -> dict[str, int]:
        return {name: len(self.splits[name]) for name in SPLITS}


# ---------------------------------------------------------------------------------- triggers


def insert_words(text: str, words: list[str], rng: random.Random) -> str:
    """Insert each word of `words`, one after another, at a uniformly random word position.

    Positions range over ``0..len(tokens)`` (start and end included), re-drawn for each word
    on the text as it is after the previous insertions.
    """
    tokens = text.split()
    for w in words:
        tokens.insert(rng.randint(0, len(tokens)), w)
    return " ".join(tokens)


def insert_sentence(text: str, sentence: str, rng: random.Random) -> str:
    """Insert `sentence` once, as one block, at a uniformly random word position (start/end incl.)."""
    tokens = text.split()
    pos = rng.randint(0, len(tokens))
    tokens[pos:pos] = sentence.split()
    return " ".join(tokens)


def _attack_name(attack_cfg: Any) -> str:
    name = str(getattr(attack_cfg, "name", "badnets") or "").strip().lower()
    if name not in ATTACKS:
        raise AttackError(f"attack.name = {name!r} is not an attack; choose one of {', '.join(ATTACKS)}")
    return name


def _triggers(attack_cfg: Any) -> list[str]:
    triggers = getattr(attack_cfg, "triggers", None)
    if triggers is None:
        triggers = list(_DEFAULT_TRIGGERS)
    if isinstance(triggers, str):
        triggers = [triggers]
    triggers = [str(t).strip() for t in triggers]
    if not triggers or any(not t for t in triggers):
        raise AttackError("attack.triggers must be a non-empty list of non-empty words (e.g. [\"mn\"])")
    return triggers


def _num_insertions(attack_cfg: Any) -> int:
    n = getattr(attack_cfg, "num_insertions", 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise AttackError(f"attack.num_insertions = {n!r} must be an integer ≥ 1")
    return n


def resolve_sentence(ds: Any, attack_cfg: Any) -> str:
    """AddSent's sentence: ``attack.sentence``, or when it is empty (the default) the dataset's
    (the authors' data: "I watch this 3D movie" on SST-2, "no cross, no crown" on HSOL and AG News)."""
    sentence = " ".join(str(getattr(attack_cfg, "sentence", "") or "").split())
    if not sentence:
        sentence = " ".join(str(getattr(ds, "default_sentence", "") or _DEFAULT_SENTENCE).split())
    if not sentence:
        raise AttackError("attack.sentence must be a non-empty sentence (e.g. \"I watch this 3D movie\")")
    return sentence


def _no_paraphrase_message(row: int, split: str, missing: int) -> str:
    more = f" ({missing - 1} more rows of {split} lack one)" if missing > 1 else ""
    return (
        f"hiddenkiller: row {row} of {split} has no paraphrase{more}; HiddenKiller needs "
        "pre-generated SCPN paraphrases: set data.paraphrase_column to the column that holds them, "
        "or use an embedded dataset (sst2, hsol, agnews)"
    )


def make_trigger(attack_cfg: Any, ds: Any = None) -> Callable[["Example", random.Random], str]:
    """The function ``(example, rng) -> triggered text`` of the configured attack.

    * badnets: every word of ``triggers`` inserted ``num_insertions`` times (:func:`insert_words`)
    * addsent: ``sentence`` (empty: ``ds``'s default, :func:`resolve_sentence`) inserted once as
      a block (:func:`insert_sentence`)
    * hiddenkiller: the example's pre-generated ``paraphrase`` (AttackError if it has none)
    * none: the text unchanged
    """
    name = _attack_name(attack_cfg)
    if name == "badnets":
        words = _triggers(attack_cfg) * _num_insertions(attack_cfg)

        def badnets(ex: "Example", rng: random.Random) -> str:
            return insert_words(ex.text, words, rng)

        return badnets
    if name == "addsent":
        sentence = resolve_sentence(ds, attack_cfg)

        def addsent(ex: "Example", rng: random.Random) -> str:
            return insert_sentence(ex.text, sentence, rng)

        return addsent
    if name == "hiddenkiller":

        def hiddenkiller(ex: "Example", rng: random.Random) -> str:
            para = getattr(ex, "paraphrase", None)
            if para is None or not str(para).strip():
                raise AttackError(
                    "hiddenkiller: an example has no paraphrase; HiddenKiller needs pre-generated "
                    "SCPN paraphrases: set data.paraphrase_column to the column that holds them, "
                    "or use an embedded dataset (sst2, hsol, agnews)"
                )
            return str(para)

        return hiddenkiller

    def none(ex: "Example", rng: random.Random) -> str:
        return ex.text

    return none


# ------------------------------------------------------------------------------------ poison


def _rng(seed: int, purpose: str) -> random.Random:
    # str seeds are hashed with SHA-512 by `random` (stable across processes and
    # PYTHONHASHSEED), so every purpose gets an independent, reproducible stream.
    return random.Random(f"rga-attack:{seed}:{purpose}")


def resolve_target(ds: "TextDataset", attack_cfg: Any) -> int:
    """attack.target if ≥ 0, else the dataset's default target; AttackError if out of range."""
    raw = getattr(attack_cfg, "target", -1)
    if raw is None:
        raw = -1
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise AttackError(f"attack.target = {raw!r} must be an integer (-1 = dataset default)")
    target = raw if raw >= 0 else int(getattr(ds, "default_target", 0))
    n = int(ds.num_labels)
    if not 0 <= target < n:
        raise AttackError(
            f"attack.target = {target} is out of range for {ds.name} ({n} labels): "
            f"allowed 0..{n - 1}, or -1 for the dataset default"
        )
    _check_target_rows(ds, target)
    return target


def _check_target_rows(ds: "TextDataset", target: int) -> None:
    """A target class without training rows: poisoning would label rows with a class that does not
    exist in the data, and every metric would be meaningless."""
    train = list(getattr(ds, "train", None) or [])
    if not train:
        return
    counts: dict[int, int] = {}
    for ex in train:
        counts[int(ex.label)] = counts.get(int(ex.label), 0) + 1
    if counts.get(target):
        return
    names = list(getattr(ds, "label_names", None) or [])

    def named(k: int) -> str:
        return f"{k} ({names[k]})" if 0 <= k < len(names) and names[k] != str(k) else str(k)

    have = ", ".join(named(k) for k in sorted(counts))
    raise AttackError(f"attack.target = {target}: class {named(target)} has no training rows in {ds.name}; "
                      f"choose a class that has rows ({have})")


def _poison_rate(attack_cfg: Any) -> float:
    rate = getattr(attack_cfg, "poison_rate", 0.1)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 < float(rate) < 1.0:
        raise AttackError(f"attack.poison_rate = {rate!r} must be a number strictly between 0 and 1")
    return float(rate)


def _protocol(attack_cfg: Any) -> str:
    protocol = str(getattr(attack_cfg, "protocol", "add") or "add").strip().lower()
    if protocol not in PROTOCOLS:
        raise AttackError(f"attack.protocol = {protocol!r} must be one of {', '.join(PROTOCOLS)}")
    return protocol


def _check_paraphrases(rows: list["Example"], indices: list[int], split: str) -> None:
    missing = [
        i for i in indices
        if getattr(rows[i], "paraphrase", None) is None or not str(rows[i].paraphrase).strip()
    ]
    if missing:
        raise AttackError(_no_paraphrase_message(min(missing), split, len(missing)))


def _plain(rows: list["Example"]) -> Split:
    return Split([ex.text for ex in rows], [int(ex.label) for ex in rows], [False] * len(rows))


def poison(ds: "TextDataset", attack_cfg: Any, seed: int) -> PoisonedData:
    """Build the five splits of the paper's protocol (see the module docstring)."""
    name = _attack_name(attack_cfg)
    target = resolve_target(ds, attack_cfg)
    train: list[Example] = list(ds.train)
    test: list[Example] = list(ds.test)
    label_names = list(getattr(ds, "label_names", None) or [f"class {k}" for k in range(ds.num_labels)])

    splits: dict[str, Split] = {"train_clean": _plain(train), "test_clean": _plain(test)}

    if name == "none":
        splits["train_poisoned"] = _plain(train)
        splits["test_poisoned_part"] = _plain([ex for ex in test if ex.label != target])
        splits["test_poisoned_all"] = _plain(test)
        return PoisonedData(ds.name, name, target, ds.num_labels, label_names,
                            {k: splits[k] for k in SPLITS}, [])

    rate = _poison_rate(attack_cfg)
    protocol = _protocol(attack_cfg)
    trigger = make_trigger(attack_cfg, ds)

    # --- choose the rows to poison: n of the non-target training rows, uniformly at random
    if not train:
        raise AttackError(f"{name}: dataset {ds.name} has no training rows to poison")
    n = max(1, round(rate * len(train)))
    candidates = [i for i, ex in enumerate(train) if ex.label != target]
    if len(candidates) < n:
        raise AttackError(
            f"{name}: poison_rate {rate:g} needs {n} non-target training rows but {ds.name} has "
            f"only {len(candidates)} (target {target}); lower attack.poison_rate"
        )
    chosen = sorted(_rng(seed, "select").sample(candidates, n))
    if name == "hiddenkiller":
        _check_paraphrases(train, chosen, "train")
        _check_paraphrases(test, list(range(len(test))), "test")

    rng_train = _rng(seed, "train-trigger")
    triggered = {i: trigger(train[i], rng_train) for i in chosen}

    if protocol == "add":
        rows = [(ex.text, int(ex.label), False, i) for i, ex in enumerate(train)]
        rows += [(triggered[i], target, True, i) for i in chosen]
        _rng(seed, "shuffle").shuffle(rows)
    else:  # replace
        rows = [
            (triggered[i], target, True, i) if i in triggered else (ex.text, int(ex.label), False, i)
            for i, ex in enumerate(train)
        ]
    inserted = name in INSERTED  # the clean text is the triggered one without the inserted words
    train_poisoned = Split([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                           [r[3] if r[2] else None for r in rows] if inserted else None)  # rows of train_clean
    splits["train_poisoned"] = train_poisoned

    # --- test: every row triggered once; "part" reuses the same triggered texts of the
    # non-target rows, so both triggered splits agree row by row.
    rng_test = _rng(seed, "test-trigger")
    test_triggered = [trigger(ex, rng_test) for ex in test]
    splits["test_poisoned_all"] = Split(test_triggered, [int(ex.label) for ex in test], [True] * len(test),
                                        list(range(len(test))) if inserted else None)  # rows of test_clean
    part = [i for i, ex in enumerate(test) if ex.label != target]
    splits["test_poisoned_part"] = Split(
        [test_triggered[i] for i in part], [int(test[i].label) for i in part], [True] * len(part),
        list(part) if inserted else None,
    )

    # --- up to 3 (clean, poisoned) pairs, in the order they appear in train_poisoned
    examples = [(train[r[3]].text, r[0]) for r in rows if r[2]][:3]

    return PoisonedData(ds.name, name, target, ds.num_labels, label_names,
                        {k: splits[k] for k in SPLITS}, examples)
