"""Tests of rga_engine.attacks: BadNets / AddSent / HiddenKiller and the five splits."""

from __future__ import annotations

import random
from collections import Counter
from types import SimpleNamespace

import pytest

from rga_engine.attacks import (
    ATTACKS,
    SPLITS,
    AttackError,
    PoisonedData,
    Split,
    insert_sentence,
    insert_words,
    make_trigger,
    poison,
)
from rga_engine.data import Example, TextDataset


WORDS = "the a movie film great bad plot actor story good dull fun long short scene music".split()
SENTENCE = "I watch this 3D movie"


def _text(rng: random.Random, i: int) -> str:
    # unique per row (the row id), 1..14 words, never containing a trigger word
    return " ".join([f"w{i}"] + [rng.choice(WORDS) for _ in range(rng.randint(0, 13))])


def make_ds(n_train=200, n_test=60, num_labels=2, default_target=1, paraphrase=True, name="synth"):
    rng = random.Random(7)
    def rows(n, offset):
        out = []
        for i in range(n):
            t = _text(rng, offset + i)
            out.append(Example(t, i % num_labels, f"when you do , {t}" if paraphrase else None))
        return out
    return TextDataset(
        name=name,
        num_labels=num_labels,
        label_names=[f"L{k}" for k in range(num_labels)],
        train=rows(n_train, 0),
        test=rows(n_test, 100000),
        default_target=default_target,
    )


def cfg(**kw):
    base = dict(name="badnets", target=-1, poison_rate=0.1, protocol="add", triggers=["mn"],
                num_insertions=1, sentence=SENTENCE)
    base.update(kw)
    return SimpleNamespace(**base)


def strip_words(text: str, words) -> str:
    return " ".join(t for t in text.split() if t not in set(words))


# ------------------------------------------------------------------------- insertion helpers

def test_insert_words_positions_cover_start_and_end():
    rng = random.Random(0)
    positions = Counter()
    for _ in range(400):
        out = insert_words("a b c d", ["mn"], rng).split()
        assert out.count("mn") == 1 and strip_words(" ".join(out), ["mn"]) == "a b c d"
        positions[out.index("mn")] += 1
    assert set(positions) == {0, 1, 2, 3, 4}  # start and end included
    assert insert_words("", ["mn"], rng) == "mn"
    assert insert_words("  x\t y \n", ["mn", "cf"], random.Random(1)).split().count("mn") == 1


def test_insert_sentence_block_once():
    rng = random.Random(3)
    starts = set()
    for _ in range(300):
        out = insert_sentence("one two three", SENTENCE, rng)
        toks = out.split()
        s = toks.index("I")
        assert toks[s:s + 5] == SENTENCE.split()
        assert toks[:s] + toks[s + 5:] == ["one", "two", "three"]
        starts.add(s)
    assert starts == {0, 1, 2, 3}
    assert insert_sentence("", SENTENCE, rng) == SENTENCE


# ---------------------------------------------------------------------------------- badnets

@pytest.mark.parametrize("k", [1, 3])
def test_badnets_add_protocol(k):
    ds = make_ds()
    pd = poison(ds, cfg(num_insertions=k), seed=2021)
    assert isinstance(pd, PoisonedData)
    assert tuple(pd.splits) == SPLITS
    assert (pd.dataset, pd.attack, pd.target, pd.num_labels) == ("synth", "badnets", 1, 2)
    assert pd.label_names == ["L0", "L1"]

    tc, tp = pd.splits["train_clean"], pd.splits["train_poisoned"]
    assert tc.texts == [e.text for e in ds.train] and not any(tc.poisoned)
    n = round(0.1 * len(ds.train))
    assert len(tp) == len(ds.train) + n and sum(tp.poisoned) == n
    assert len(tp.texts) == len(tp.labels) == len(tp.poisoned)

    non_target_texts = {e.text for e in ds.train if e.label != 1}
    clean_rows = Counter((t, y) for t, y, p in zip(tp.texts, tp.labels, tp.poisoned) if not p)
    assert clean_rows == Counter((e.text, e.label) for e in ds.train)  # all originals kept
    sources = []
    for t, y, p in zip(tp.texts, tp.labels, tp.poisoned):
        if p:
            assert y == 1
            assert t.split().count("mn") == k
            src = strip_words(t, ["mn"])
            assert src in non_target_texts
            sources.append(src)
        else:
            assert "mn" not in t.split()
    assert len(set(sources)) == n  # n distinct rows chosen
    # shuffled: the poisoned copies are not all at the end
    assert not all(tp.poisoned[-n:])
    # label counts: originals kept, copies added to the target
    assert tp.label_counts(2) == [100, 100 + n]
    # display examples: (clean, poisoned) pairs from train_poisoned
    assert 1 <= len(pd.examples) <= 3
    for clean, bad in pd.examples:
        assert clean in non_target_texts and strip_words(bad, ["mn"]) == clean and bad in tp.texts


def test_badnets_several_triggers():
    pd = poison(make_ds(), cfg(triggers=["cf", "mn", "bb"], num_insertions=2), seed=1)
    for split in ("train_poisoned", "test_poisoned_all", "test_poisoned_part"):
        s = pd.splits[split]
        for t, p in zip(s.texts, s.poisoned):
            if p:
                toks = t.split()
                assert toks.count("cf") == toks.count("mn") == toks.count("bb") == 2


def test_test_splits():
    ds = make_ds()
    pd = poison(ds, cfg(), seed=5)
    clean, part, all_ = (pd.splits[s] for s in ("test_clean", "test_poisoned_part", "test_poisoned_all"))
    assert clean.texts == [e.text for e in ds.test] and clean.labels == [e.label for e in ds.test]
    assert not any(clean.poisoned)
    # all: every test row triggered, true labels
    assert len(all_) == len(ds.test) and all(all_.poisoned)
    assert all_.labels == [e.label for e in ds.test]
    for t, e in zip(all_.texts, ds.test):
        assert t.split().count("mn") == 1 and strip_words(t, ["mn"]) == e.text
    # part: only non-target rows, triggered, true labels kept
    assert len(part) == sum(e.label != 1 for e in ds.test) == 30
    assert 1 not in part.labels and all(part.poisoned)
    nt = [i for i, e in enumerate(ds.test) if e.label != 1]
    assert part.texts == [all_.texts[i] for i in nt]  # same triggered texts as in "all"
    assert part.labels == [ds.test[i].label for i in nt]


def test_positions_vary_over_rows():
    pd = poison(make_ds(n_test=300), cfg(), seed=11)
    rel = set()
    for t in pd.splits["test_poisoned_all"].texts:
        toks = t.split()
        if len(toks) < 4:
            continue
        i = toks.index("mn")
        rel.add("start" if i == 0 else "end" if i == len(toks) - 1 else "middle")
    assert rel == {"start", "middle", "end"}


def test_replace_protocol():
    ds = make_ds()
    pd = poison(ds, cfg(protocol="replace", poison_rate=0.2), seed=3)
    tp = pd.splits["train_poisoned"]
    n = round(0.2 * len(ds.train))
    assert len(tp) == len(ds.train) and sum(tp.poisoned) == n
    for t, y, p, e in zip(tp.texts, tp.labels, tp.poisoned, ds.train):
        if p:  # replaced in place by its triggered, relabelled version
            assert e.label != 1 and y == 1 and strip_words(t, ["mn"]) == e.text
        else:
            assert (t, y) == (e.text, e.label)
    assert tp.label_counts(2) == [100 - n, 100 + n]


def test_addsent():
    ds = make_ds()
    pd = poison(ds, cfg(name="addsent"), seed=2022)
    sent = SENTENCE.split()
    for split in ("train_poisoned", "test_poisoned_all", "test_poisoned_part"):
        s = pd.splits[split]
        for t, p in zip(s.texts, s.poisoned):
            toks = t.split()
            hits = [i for i in range(len(toks) - 4) if toks[i:i + 5] == sent]
            if p:
                assert len(hits) == 1 and toks.count("3D") == 1
                i = hits[0]
                assert " ".join(toks[:i] + toks[i + 5:]) in {e.text for e in ds.train + ds.test}
            else:
                assert hits == []
    assert sum(pd.splits["train_poisoned"].poisoned) == 20


def test_hiddenkiller_uses_paraphrases():
    ds = make_ds()
    pd = poison(ds, cfg(name="hiddenkiller"), seed=1)
    assert pd.splits["test_poisoned_all"].texts == [e.paraphrase for e in ds.test]
    paras = {e.paraphrase for e in ds.train if e.label != 1}
    tp = pd.splits["train_poisoned"]
    assert sum(tp.poisoned) == 20
    assert all(t in paras and y == 1 for t, y, p in zip(tp.texts, tp.labels, tp.poisoned) if p)
    trig = make_trigger(cfg(name="hiddenkiller"))
    assert trig(Example("x", 0, "when x , y"), random.Random(0)) == "when x , y"


def test_hiddenkiller_missing_paraphrase_errors():
    ds = make_ds()
    ds.test[4].paraphrase = None
    with pytest.raises(AttackError, match=r"^hiddenkiller: row 4 of test has no paraphrase"):
        poison(ds, cfg(name="hiddenkiller"), seed=1)
    no_para = make_ds(paraphrase=False)
    with pytest.raises(AttackError, match=r"hiddenkiller: row \d+ of train has no paraphrase \(19 more"):
        poison(no_para, cfg(name="hiddenkiller"), seed=1)
    with pytest.raises(AttackError, match="no paraphrase"):
        make_trigger(cfg(name="hiddenkiller"))(Example("x", 0), random.Random(0))
    # other attacks do not need paraphrases
    poison(no_para, cfg(name="badnets"), seed=1)


# ---------------------------------------------------------------------------- determinism

def test_determinism_and_seeds():
    ds = make_ds()
    a = poison(ds, cfg(), seed=2021)
    b = poison(ds, cfg(), seed=2021)
    c = poison(ds, cfg(), seed=2022)
    for s in SPLITS:
        assert a.splits[s] == b.splits[s]
    assert a.examples == b.examples
    assert a.splits["train_poisoned"].texts != c.splits["train_poisoned"].texts
    assert a.splits["test_poisoned_all"].texts != c.splits["test_poisoned_all"].texts
    # the poison rate does not move the test triggers
    d = poison(ds, cfg(poison_rate=0.3), seed=2021)
    assert d.splits["test_poisoned_all"] == a.splits["test_poisoned_all"]
    assert d.splits["test_poisoned_part"] == a.splits["test_poisoned_part"]
    # the input dataset is not modified
    assert ds == make_ds()


# ------------------------------------------------------------------------------ targets, none

def test_target_resolution_and_errors():
    ds = make_ds(num_labels=4, default_target=0)
    assert poison(ds, cfg(), seed=0).target == 0
    pd = poison(ds, cfg(target=2), seed=0)
    assert pd.target == 2
    assert all(y == 2 for y, p in zip(pd.splits["train_poisoned"].labels, pd.splits["train_poisoned"].poisoned) if p)
    assert 2 not in pd.splits["test_poisoned_part"].labels
    assert len(pd.splits["test_poisoned_part"]) == 45
    with pytest.raises(AttackError) as err:
        poison(ds, cfg(target=4), seed=0)
    msg = str(err.value)
    assert "attack.target" in msg and "4" in msg and "0..3" in msg and "\n" not in msg


def test_attack_none():
    ds = make_ds()
    pd = poison(ds, cfg(name="none"), seed=0)
    assert pd.attack == "none" and pd.target == 1 and pd.examples == []
    assert pd.splits["train_poisoned"] == pd.splits["train_clean"]
    assert pd.splits["train_poisoned"] is not pd.splits["train_clean"]
    assert pd.splits["test_poisoned_all"] == pd.splits["test_clean"]
    part = pd.splits["test_poisoned_part"]
    assert len(part) == 30 and 1 not in part.labels and not any(part.poisoned)
    assert set(part.texts) <= {e.text for e in ds.test}


def test_addsent_empty_sentence_is_the_datasets():
    """attack.sentence = "" (the default) is the dataset's sentence, the authors' data: "no cross,
    no crown" on HSOL and AG News, "I watch this 3D movie" on SST-2 and on any other data."""
    from rga_engine.attacks import resolve_sentence
    from rga_engine.data.loaders import default_sentence

    assert [default_sentence(d) for d in ("sst2", "hsol", "agnews", "local")] == [
        SENTENCE, "no cross, no crown", "no cross, no crown", SENTENCE]
    ds = make_ds()
    ds.default_sentence = "no cross, no crown"
    for blank in ("", "  ", None):
        assert resolve_sentence(ds, cfg(name="addsent", sentence=blank)) == "no cross, no crown"
    assert resolve_sentence(ds, cfg(name="addsent", sentence=" mine  here ")) == "mine here"  # set: kept
    assert resolve_sentence(make_ds(), cfg(name="addsent", sentence="")) == SENTENCE  # the dataclass default
    pd = poison(ds, cfg(name="addsent", sentence=""), seed=0)
    assert all("no cross, no crown" in t for t in pd.splits["test_poisoned_all"].texts)
    assert not any("3D" in t for t in pd.splits["train_poisoned"].texts)


def test_addsent_sentence_resolves_in_the_config_per_dataset():
    from rga_engine.config import from_dict

    def sentence(dataset, attack="addsent", **kw):
        return from_dict({"data": {"dataset": dataset}, "attack": {"name": attack, **kw}}).attack.sentence

    assert sentence("sst2") == SENTENCE
    assert sentence("hsol") == sentence("agnews") == "no cross, no crown"
    assert sentence("hsol", sentence="I watch this 3D movie") == SENTENCE  # a preset's own sentence wins
    assert sentence("hsol", attack="badnets") == ""  # BadNets has no sentence to resolve


@pytest.mark.parametrize(
    "kw, pattern",
    [
        (dict(name="trojan"), r"attack\.name = 'trojan'"),
        (dict(poison_rate=0.0), r"attack\.poison_rate"),
        (dict(poison_rate=1.0), r"attack\.poison_rate"),
        (dict(protocol="mix"), r"attack\.protocol"),
        (dict(triggers=[]), r"attack\.triggers"),
        (dict(num_insertions=0), r"attack\.num_insertions"),
        (dict(poison_rate=0.6), r"needs 120 non-target training rows .* only 100"),
    ],
)
def test_config_errors(kw, pattern):
    with pytest.raises(AttackError, match=pattern):
        poison(make_ds(), cfg(**kw), seed=0)


def test_split_helpers_and_constants():
    s = Split(["a", "b", "c"], [0, 2, 2], [False, True, False])
    assert len(s) == 3 and s.label_counts(3) == [1, 0, 2] and s.num_poisoned == 1
    assert Split(["a"], [1]).poisoned == [False]
    with pytest.raises(ValueError):
        Split(["a"], [0, 1], [False])
    assert ATTACKS == ("badnets", "addsent", "hiddenkiller", "none")
    assert issubclass(AttackError, ValueError)


# ------------------------------------------------------------------------------ real SST-2

def test_sst2_badnets_sizes():
    from rga_engine.data import load_embedded

    ds = load_embedded("sst2")
    pd = poison(ds, cfg(), seed=2021)
    sizes = {name: len(pd.splits[name]) for name in SPLITS}
    assert sizes == {"train_clean": 6920, "train_poisoned": 7612, "test_clean": 1821,
                     "test_poisoned_part": 912, "test_poisoned_all": 1821}
    assert pd.target == 1
    assert sum(pd.splits["train_poisoned"].poisoned) == 692
