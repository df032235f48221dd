#!/usr/bin/env python
"""Build the embedded datasets of ``rga_engine`` from the offline source files.

Usage (from the repository root)::

    python scripts/build_data.py [--shared ../shared/data] [--out rga_engine/data/embedded]

Inputs are the unchanged files staged in ``shared/data`` (see ``shared/data/README.md`` and
``rga_engine/data/DATA.md`` for provenance and licences). Outputs are gzip'd JSON-lines files
``rga_engine/data/embedded/<name>/<split>.jsonl.gz``, one object per line::

    {"text": str, "label": int, "paraphrase": str | null}

``paraphrase`` is the SCPN (HiddenKiller / OpenBackdoor "synbkd") paraphrase of ``text`` into
the template ``S(SBAR)(,)(NP)(VP)(.)``. Every row of every split gets one.

Rebuilds are byte-identical: texts are never altered, row order is fixed, JSON is written
with fixed separators, and gzip is written with ``mtime=0`` and an empty file name.
Build-time requirements: pandas, numpy, scipy, scikit-learn (the package itself needs none of
them to read the result).

What is built
-------------
``sst2`` (0 negative, 1 positive; train 6,920 / dev 872 / test 1,821)
    Rows and order: ``sst2/clean/{train,dev,test}.tsv``.
    Train paraphrases: ``sst2/synbkd_openbackdoor_target1/train-clean.csv`` is the training split
    shuffled, ``train-poison.csv`` is its row-aligned paraphrase; every tsv row is looked up by
    (text, label) (duplicates consumed in order; fall-backs: normalised text, text only).
    Dev/test, negative rows: ``synbkd_openbackdoor_target1/{dev,test}-poison.csv`` row i is the
    paraphrase of the i-th negative row of ``.../{dev,test}-clean.csv`` (NB: those csv files are
    *shuffled* relative to the tsv, so the i-th negative row of the csv is looked up in the tsv
    by text). Dev/test, positive rows: ``synbkd_openbackdoor_target0/{dev,test}-poison.csv``
    (from another OpenBackdoor run, bettyzry/LBD) follow the order of *that* run's shuffled
    ``*-clean.csv``, which is not available. They are therefore assigned to the positive tsv
    rows by content: TF-IDF cosine (0.5 word unigrams + 0.5 char 3-4-grams) and an optimal
    one-to-one assignment (Hungarian, ``scipy.optimize.linear_sum_assignment``). The script
    measures this matcher on the files whose true order is known and prints its accuracy
    (~97 % on SST-2, ~83 % on HSOL). A mismatch only pairs a row with the paraphrase of another
    row of the *same class*; the labels are exact either way.
``hsol`` (0 clean, 1 hate/offensive; train 5,823 / test 2,485; no dev: OpenBackdoor's dev == test)
    Rows and order: ``hsol/clean/{train,test}.tsv`` (pandas ``read_csv(sep="\\t")``: some texts
    are CSV-quoted). Train paraphrases: ``hsol/synbkd_openbackdoor_target0/train-{clean,poison}.csv``
    (same lookup as SST-2). Test, label-1 rows: ``synbkd_openbackdoor_target0/test-poison.csv``
    (order of that folder's shuffled ``test-clean.csv``, exact). Test, label-0 rows:
    ``synbkd_openbackdoor_target1/test-poison.csv`` (MuScleLoRA run; its clean order is not
    available): content matching as above.
``agnews`` (0 World, 1 Sports, 2 Business, 3 Sci/Tech; train 8,000 / test 1,000)
    Pool: ``agnews/synbkd_openbackdoor_target0/train-clean.csv`` (10,800 rows, a 10 % random
    sample of OpenBackdoor's AG train split; text = title + " " + description) with its
    row-aligned ``train-poison.csv`` paraphrases. Split drawn with
    ``rng = numpy.random.default_rng(2021)``: for each class c = 0..3 in turn,
    ``perm = rng.permutation(pool rows of class c)``; the first 250 go to test (1,000 =
    250 per class, balanced like the official AG test set), the next ``k_c`` go to train, where
    ``k_c`` is the largest-remainder share of 8,000 proportional to the class sizes left
    after the test draw (2,003 / 1,980 / 2,036 / 1,981).
    Both splits keep the pool's (already random) order. The official AG test set cannot be
    used because its paraphrases exist for non-World rows only.

Checks (the build fails loudly when one does not hold): expected row and label counts, every
row has a non-empty paraphrase, and for every split the mean token Jaccard between ``text`` and
``paraphrase`` (lower-cased whitespace tokens) of aligned rows is far above the value for rows
shifted by one (aligned >= 3 x shifted and aligned - shifted >= 0.1).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import sys
from collections import Counter, defaultdict, deque
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
AG_SEED = 2021
AG_TRAIN, AG_TEST_PER_CLASS = 8000, 250


class BuildError(RuntimeError):
    pass


# ----------------------------------------------------------------------------- reading
def read_tsv(path: Path) -> tuple[list[str], list[int]]:
    """A clean ``text<TAB>label`` file with a header (CSV quoting honoured, CRLF tolerated)."""
    df = pd.read_csv(path, sep="\t", keep_default_na=False, dtype=str)
    if df.shape[1] != 2:
        raise BuildError(f"{path}: expected 2 columns, got {list(df.columns)}")
    texts = [str(t) for t in df.iloc[:, 0]]
    labels = [int(str(x).strip()) for x in df.iloc[:, 1]]
    return texts, labels


def read_ob(path: Path) -> tuple[list[str], list[int]]:
    """An OpenBackdoor csv (``,0,1,2`` header: index, text, label, poison flag)."""
    df = pd.read_csv(path, index_col=0, keep_default_na=False, dtype={"0": str})
    if list(df.columns) != ["0", "1", "2"]:
        raise BuildError(f"{path}: unexpected columns {list(df.columns)}")
    return [str(t) for t in df["0"]], [int(x) for x in df["1"]]


# ----------------------------------------------------------------------------- helpers
_BRACKETS = {"-lrb-": "(", "-rrb-": ")", "-lsb-": "[", "-rsb-": "]", "-lcb-": "{", "-rcb-": "}"}


def normalise(text: str) -> str:
    t = text.replace("\xa0", " ").lower()
    for k, v in _BRACKETS.items():
        t = t.replace(k, v)
    return re.sub(r"\s+", " ", t).strip()


def tokens(text: str) -> set[str]:
    return set(text.lower().split())


def jaccard(a: str, b: str) -> float:
    x, y = tokens(a), tokens(b)
    return len(x & y) / len(x | y) if (x or y) else 0.0


def mean_jaccard(texts: list[str], paras: list[str | None], shift: int = 0) -> float:
    pairs = [(texts[i + shift], paras[i]) for i in range(len(texts) - shift) if paras[i] is not None]
    return float(np.mean([jaccard(a, b) for a, b in pairs])) if pairs else 0.0


class Lookup:
    """(text, label) -> paraphrases, duplicates consumed in order; normalised / text-only fallbacks."""

    def __init__(self, pairs: list[tuple[str, int, str]]):
        self.maps: list[dict] = [defaultdict(deque) for _ in range(4)]
        for text, label, para in pairs:
            for m, key in zip(self.maps, self._keys(text, label)):
                m[key].append(para)
        self.used = Counter()

    @staticmethod
    def _keys(text, label):
        n = normalise(text)
        return ((text, label), (n, label), text, n)

    def get(self, text: str, label: int) -> str | None:
        for level, (m, key) in enumerate(zip(self.maps, self._keys(text, label))):
            q = m.get(key)
            if q:
                self.used[("exact", "normalised", "text only", "normalised text only")[level]] += 1
                # keep the last one for further duplicates beyond the source's count
                return q.popleft() if len(q) > 1 else q[0]
        self.used["missing"] += 1
        return None


def similarity(clean: list[str], paras: list[str]) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer

    out = np.zeros((len(paras), len(clean)))
    for vec in (
        TfidfVectorizer(lowercase=True, token_pattern=r"[^\s]+", sublinear_tf=True),
        TfidfVectorizer(lowercase=True, analyzer="char_wb", ngram_range=(3, 4), sublinear_tf=True),
    ):
        vec.fit(clean + paras)
        out += 0.5 * (vec.transform(paras) @ vec.transform(clean).T).toarray()
    return np.round(out, 9)  # guard the assignment against last-bit float noise


def match_by_content(clean: list[str], paras: list[str]) -> list[int]:
    """For each paraphrase, the index of its clean sentence (one-to-one, max total similarity)."""
    from scipy.optimize import linear_sum_assignment

    if len(clean) != len(paras):
        raise BuildError(f"content matching needs equal sizes ({len(clean)} clean vs {len(paras)} paraphrases)")
    rows, cols = linear_sum_assignment(-similarity(clean, paras))
    out = [0] * len(paras)
    for r, c in zip(rows, cols):
        out[r] = int(c)
    return out


def matcher_accuracy(clean: list[str], paras: list[str]) -> float:
    got = match_by_content(clean, paras)
    return float(np.mean([g == i for i, g in enumerate(got)]))


def assign_ordered(texts, labels, src_label, clean_csv: Path, poison_csv: Path, paras, stats):
    """poison row i = paraphrase of the i-th ``src_label`` row of clean_csv (exact order)."""
    ctexts, clabels = read_ob(clean_csv)
    ptexts, _ = read_ob(poison_csv)
    src = [t for t, l in zip(ctexts, clabels) if l == src_label]
    if len(src) != len(ptexts):
        raise BuildError(f"{poison_csv}: {len(ptexts)} rows but {len(src)} label-{src_label} rows in {clean_csv.name}")
    lk = Lookup([(t, src_label, p) for t, p in zip(src, ptexts)])
    for i, (t, l) in enumerate(zip(texts, labels)):
        if l == src_label:
            paras[i] = lk.get(t, l)
    rows = [i for i, l in enumerate(labels) if l == src_label and paras[i] is not None]
    check_alignment(f"{poison_csv} (label {src_label} rows)", [texts[i] for i in rows], [paras[i] for i in rows])
    stats.append((f"label {src_label}: {poison_csv.parent.name}/{poison_csv.name} (csv order)", dict(lk.used)))


def assign_matched(texts, labels, src_label, poison_csv: Path, paras, stats):
    """poison rows of unknown order: optimal one-to-one content matching within the class."""
    ptexts, _ = read_ob(poison_csv)
    idx = [i for i, l in enumerate(labels) if l == src_label]
    got = match_by_content([texts[i] for i in idx], ptexts)
    for p, c in zip(ptexts, got):
        paras[idx[c]] = p
    stats.append((f"label {src_label}: {poison_csv.parent.name}/{poison_csv.name} (content-matched)", {"rows": len(ptexts)}))


def train_paraphrases(texts, labels, clean_csv: Path, poison_csv: Path, stats):
    ctexts, clabels = read_ob(clean_csv)
    ptexts, _ = read_ob(poison_csv)
    if len(ctexts) != len(ptexts):
        raise BuildError(f"{poison_csv}: not row-aligned with {clean_csv.name} ({len(ptexts)} vs {len(ctexts)})")
    check_alignment(f"{clean_csv.parent.name}/train-clean<->train-poison", ctexts, ptexts)
    lk = Lookup(list(zip(ctexts, clabels, ptexts)))
    paras = [lk.get(t, l) for t, l in zip(texts, labels)]
    stats.append((f"{clean_csv.parent.name}/train-clean+train-poison (lookup)", dict(lk.used)))
    return paras


def check_alignment(what: str, texts, paras) -> tuple[float, float]:
    a, s = mean_jaccard(texts, paras), mean_jaccard(texts, paras, shift=1)
    if not (a >= 3 * s and a - s >= 0.1):
        raise BuildError(f"alignment check failed for {what}: aligned Jaccard {a:.3f} vs shifted {s:.3f}")
    return a, s


# ----------------------------------------------------------------------------- datasets
def build_sst2(shared: Path):
    d, t1, t0 = shared / "sst2" / "clean", shared / "sst2" / "synbkd_openbackdoor_target1", shared / "sst2" / "synbkd_openbackdoor_target0"
    splits, stats, notes = {}, [], []
    texts, labels = read_tsv(d / "train.tsv")
    splits["train"] = (texts, labels, train_paraphrases(texts, labels, t1 / "train-clean.csv", t1 / "train-poison.csv", stats))
    for sp in ("dev", "test"):
        texts, labels = read_tsv(d / f"{sp}.tsv")
        paras: list[str | None] = [None] * len(texts)
        assign_ordered(texts, labels, 0, t1 / f"{sp}-clean.csv", t1 / f"{sp}-poison.csv", paras, stats)
        assign_matched(texts, labels, 1, t0 / f"{sp}-poison.csv", paras, stats)
        splits[sp] = (texts, labels, paras)
        # how good is the content matcher where the truth is known (negative rows, target1 files)?
        ct, cl = read_ob(t1 / f"{sp}-clean.csv")
        acc = matcher_accuracy([t for t, l in zip(ct, cl) if l == 0], read_ob(t1 / f"{sp}-poison.csv")[0])
        notes.append(f"content matcher accuracy on sst2 {sp} target1 (true order known): {acc:.2%}")
    return splits, stats, notes


def build_hsol(shared: Path):
    d, t0, t1 = shared / "hsol" / "clean", shared / "hsol" / "synbkd_openbackdoor_target0", shared / "hsol" / "synbkd_openbackdoor_target1"
    splits, stats, notes = {}, [], []
    texts, labels = read_tsv(d / "train.tsv")
    splits["train"] = (texts, labels, train_paraphrases(texts, labels, t0 / "train-clean.csv", t0 / "train-poison.csv", stats))
    texts, labels = read_tsv(d / "test.tsv")
    paras: list[str | None] = [None] * len(texts)
    assign_ordered(texts, labels, 1, t0 / "test-clean.csv", t0 / "test-poison.csv", paras, stats)
    assign_matched(texts, labels, 0, t1 / "test-poison.csv", paras, stats)
    splits["test"] = (texts, labels, paras)
    ct, cl = read_ob(t0 / "test-clean.csv")
    acc = matcher_accuracy([t for t, l in zip(ct, cl) if l == 1], read_ob(t0 / "test-poison.csv")[0])
    notes.append(f"content matcher accuracy on hsol test target0 (true order known): {acc:.2%}")
    return splits, stats, notes


def largest_remainder(total: int, weights: list[int]) -> list[int]:
    s = sum(weights)
    raw = [total * w / s for w in weights]
    out = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - out[i]), i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def build_agnews(shared: Path):
    t0 = shared / "agnews" / "synbkd_openbackdoor_target0"
    texts, labels = read_ob(t0 / "train-clean.csv")
    paras, _ = read_ob(t0 / "train-poison.csv")
    if len(paras) != len(texts):
        raise BuildError("agnews: train-poison.csv is not row-aligned with train-clean.csv")
    check_alignment("agnews pool train-clean<->train-poison", texts, paras)
    lab = np.asarray(labels)
    classes = sorted(set(labels))
    rng = np.random.default_rng(AG_SEED)
    perms = {c: rng.permutation(np.flatnonzero(lab == c)) for c in classes}
    left = [len(perms[c]) - AG_TEST_PER_CLASS for c in classes]
    k = largest_remainder(AG_TRAIN, left)
    test_idx = sorted(int(i) for c in classes for i in perms[c][:AG_TEST_PER_CLASS])
    train_idx = sorted(int(i) for c, kc in zip(classes, k) for i in perms[c][AG_TEST_PER_CLASS:AG_TEST_PER_CLASS + kc])
    assert not set(test_idx) & set(train_idx)
    pick = lambda idx: ([texts[i] for i in idx], [labels[i] for i in idx], [paras[i] for i in idx])
    notes = [f"agnews pool class sizes {dict(Counter(labels))}; train per class {dict(zip(classes, k))}, "
             f"test {AG_TEST_PER_CLASS} per class; seed numpy.default_rng({AG_SEED})"]
    return {"train": pick(train_idx), "test": pick(test_idx)}, [("pool rows (row-aligned)", {"rows": len(texts)})], notes


EXPECTED = {
    "sst2": {"train": (6920, {0: 3310, 1: 3610}), "dev": (872, {0: 428, 1: 444}), "test": (1821, {0: 912, 1: 909})},
    "hsol": {"train": (5823, {0: 2912, 1: 2911}), "test": (2485, {0: 1242, 1: 1243})},
    "agnews": {"train": (8000, None), "test": (1000, {0: 250, 1: 250, 2: 250, 3: 250})},
}
BUILDERS = {"sst2": build_sst2, "hsol": build_hsol, "agnews": build_agnews}


# ----------------------------------------------------------------------------- writing
def encode(texts, labels, paras) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        for t, l, p in zip(texts, labels, paras):
            line = json.dumps({"text": t, "label": int(l), "paraphrase": p}, ensure_ascii=False, separators=(",", ":"))
            gz.write(line.encode("utf-8") + b"\n")
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=str(REPO.parent / "shared" / "data"), help="shared/data folder (default ../shared/data)")
    ap.add_argument("--out", default=str(REPO / "rga_engine" / "data" / "embedded"), help="output folder")
    ap.add_argument("--only", nargs="*", choices=sorted(BUILDERS), help="build only these datasets")
    args = ap.parse_args(argv)
    shared, out = Path(args.shared), Path(args.out)
    if not shared.is_dir():
        print(f"error: no such folder: {shared}", file=sys.stderr)
        return 2
    total = 0
    for name in args.only or list(BUILDERS):
        splits, stats, notes = BUILDERS[name](shared)
        print(f"== {name}")
        for what, used in stats:
            print(f"   source {what}: {used}")
        for n in notes:
            print(f"   {n}")
        for sp, (texts, labels, paras) in splits.items():
            n_exp, counts_exp = EXPECTED[name][sp]
            counts = dict(sorted(Counter(labels).items()))
            if len(texts) != n_exp or (counts_exp is not None and counts != counts_exp):
                raise BuildError(f"{name}/{sp}: {len(texts)} rows {counts}, expected {n_exp} {counts_exp}")
            missing = sum(1 for p in paras if p is None or not p.strip())
            if missing:
                raise BuildError(f"{name}/{sp}: {missing} rows without a paraphrase")
            a, s = check_alignment(f"{name}/{sp}", texts, paras)
            data = encode(texts, labels, paras)
            path = out / name / f"{sp}.jsonl.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            total += len(data)
            same = sum(1 for t, p in zip(texts, paras) if normalise(t) == normalise(p))
            print(f"   {sp:5s} rows {len(texts):5d} labels {counts} paraphrase {len(texts) - missing}/{len(texts)} "
                  f"(=text: {same}) Jaccard aligned {a:.3f} shifted {s:.3f}  {path.relative_to(out.parent)} {len(data):,} B")
    print(f"total embedded size: {total:,} bytes")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BuildError as e:
        print(f"BUILD FAILED: {e}", file=sys.stderr)
        sys.exit(1)
