"""Embedded datasets, local / hub loading, subsampling and the data-package import cost."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from types import SimpleNamespace

import pytest

from rga_engine.data import (
    EMBEDDED,
    DataError,
    Example,
    TextDataset,
    load_dataset,
    load_embedded,
    load_hub,
    load_local,
    subsample,
)


@pytest.fixture(scope="module")
def embedded() -> dict[str, TextDataset]:
    return {name: load_embedded(name) for name in EMBEDDED}


@pytest.fixture(autouse=True)
def _hf_cache(tmp_path_factory, monkeypatch):
    """Keep the datasets cache of these tests out of ~/.cache (datasets reads it at call time)."""
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.getbasetemp() / "hf_cache")


# ----------------------------------------------------------------------------- embedded
EXPECTED = {
    "sst2": dict(train=(6920, {0: 3310, 1: 3610}), dev=(872, {0: 428, 1: 444}), test=(1821, {0: 912, 1: 909}),
                 num_labels=2, target=1),
    "hsol": dict(train=(5823, {0: 2912, 1: 2911}), dev=None, test=(2485, {0: 1242, 1: 1243}), num_labels=2, target=0),
    "agnews": dict(train=(8000, {0: 2003, 1: 1980, 2: 2036, 3: 1981}), dev=None,
                   test=(1000, {0: 250, 1: 250, 2: 250, 3: 250}), num_labels=4, target=0),
}


@pytest.mark.parametrize("name", EMBEDDED)
def test_embedded_sizes_and_labels(embedded, name):
    ds, exp = embedded[name], EXPECTED[name]
    assert ds.name == name
    assert ds.num_labels == exp["num_labels"] == len(ds.label_names)
    assert ds.default_target == exp["target"]
    for split in ("train", "dev", "test"):
        rows = getattr(ds, split)
        if exp[split] is None:
            assert rows is None
            continue
        n, counts = exp[split]
        assert len(rows) == n
        assert dict(Counter(e.label for e in rows)) == counts
        assert all(isinstance(e, Example) and isinstance(e.text, str) and e.text for e in rows)


@pytest.mark.parametrize("name", EMBEDDED)
def test_every_row_has_a_paraphrase(embedded, name):
    ds = embedded[name]
    for rows in (ds.train, ds.test, ds.dev or []):
        assert all(isinstance(e.paraphrase, str) and e.paraphrase.strip() for e in rows)


def _mean_jaccard(pairs):
    def jac(a, b):
        x, y = set(a.lower().split()), set(b.lower().split())
        return len(x & y) / len(x | y)
    return sum(jac(a, b) for a, b in pairs) / len(pairs)


@pytest.mark.parametrize("name,split", [(n, s) for n in EMBEDDED for s in ("train", "test")] + [("sst2", "dev")])
def test_paraphrases_are_aligned(embedded, name, split):
    rows = getattr(embedded[name], split)
    texts, paras = [e.text for e in rows], [e.paraphrase for e in rows]
    aligned = _mean_jaccard(list(zip(texts, paras)))
    shifted = _mean_jaccard(list(zip(texts[1:], paras)))
    assert aligned > 3 * shifted and aligned - shifted > 0.1, (aligned, shifted)


def test_agnews_train_test_disjoint(embedded):
    ds = embedded["agnews"]
    assert not {e.text for e in ds.train} & {e.text for e in ds.test}


def test_load_embedded_returns_fresh_objects_and_rejects_unknown():
    a, b = load_embedded("hsol"), load_embedded("HSOL")
    assert a.train is not b.train and a.train[0] == b.train[0]
    with pytest.raises(DataError, match="unknown embedded dataset 'imdb'"):
        load_embedded("imdb")


# ----------------------------------------------------------------------------- local files
ROWS = [("good film", 1, "when it is good , it is a film ."), ("bad film", 0, ""), ('he said "hi", twice', 1, "p3"),
        ("NA", 0, "p4"), ("meh", 0, "p5")]
TEST_ROWS = [("fine film", 1, "p6"), ("dull film", 0, "p7"), ("great", 1, ""), ("awful", 0, "")]  # no text of ROWS


def _write(path, rows, kind, cols=("text", "label", "para")):
    if kind in ("csv", "tsv"):
        import csv

        with open(path, "w", newline="") as f:
            w = csv.writer(f, delimiter="," if kind == "csv" else "\t")
            w.writerow(cols)
            w.writerows(rows)
    elif kind == "jsonl":
        path.write_text("".join(json.dumps(dict(zip(cols, r))) + "\n" for r in rows))
    else:
        path.write_text(json.dumps([dict(zip(cols, r)) for r in rows]))


@pytest.mark.parametrize("kind", ["csv", "tsv", "jsonl", "json"])
def test_load_local_folder(tmp_path, kind):
    _write(tmp_path / f"train.{kind}", ROWS, kind)
    _write(tmp_path / f"test.{kind}", TEST_ROWS[:2], kind)
    ds = load_local(str(tmp_path), paraphrase_column="para")
    assert ds.name == tmp_path.name and ds.num_labels == 2 and ds.label_names == ["0", "1"]
    assert [e.text for e in ds.train] == [r[0] for r in ROWS]  # quotes, commas and "NA" survive
    assert [e.label for e in ds.train] == [1, 0, 1, 0, 0]
    assert ds.train[0].paraphrase == ROWS[0][2] and ds.train[1].paraphrase is None
    assert len(ds.test) == 2 and ds.dev is None and ds.default_target == 0
    no_para = load_local(str(tmp_path), name="x", label_names=["neg", "pos"])
    assert no_para.name == "x" and no_para.label_names == ["neg", "pos"]
    assert all(e.paraphrase is None for e in no_para.train)


def test_load_local_custom_columns_and_splits(tmp_path):
    _write(tmp_path / "tr.csv", [(r[0], r[1]) for r in ROWS], "csv", cols=("sentence", "y"))
    _write(tmp_path / "va.tsv", [(r[0], r[1]) for r in TEST_ROWS[:3]], "tsv", cols=("sentence", "y"))
    ds = load_local(str(tmp_path), text_column="sentence", label_column="y", train_split="tr", test_split="va")
    assert len(ds.train) == 5 and len(ds.test) == 3


def test_load_local_single_file_split_80_20(tmp_path):
    rows = [(f"text {i}", i % 2, "") for i in range(50)]
    _write(tmp_path / "all.jsonl", rows, "jsonl")
    ds = load_local(str(tmp_path / "all.jsonl"))
    assert ds.name == "all" and (len(ds.train), len(ds.test)) == (40, 10)
    assert Counter(e.label for e in ds.test) == {0: 5, 1: 5}
    assert {e.text for e in ds.train} | {e.text for e in ds.test} == {r[0] for r in rows}
    again = load_local(str(tmp_path / "all.jsonl"))
    assert [e.text for e in again.test] == [e.text for e in ds.test]


def test_string_labels(tmp_path):
    tr = [("a", "pos", ""), ("b", "neg", ""), ("c", "neutral", "")]
    _write(tmp_path / "train.jsonl", tr, "jsonl")
    _write(tmp_path / "test.jsonl", [("d", "neg", "")], "jsonl")
    ds = load_local(str(tmp_path))
    assert ds.label_names == ["neg", "neutral", "pos"] and ds.num_labels == 3
    assert [e.label for e in ds.train] == [2, 0, 1] and ds.test[0].label == 0
    ds = load_local(str(tmp_path), label_names=["pos", "neg", "neutral"])
    assert [e.label for e in ds.train] == [0, 1, 2]
    with pytest.raises(DataError, match=r"train row 3 has label 'neutral', not in label_names \['pos', 'neg'\]"):
        load_local(str(tmp_path), label_names=["pos", "neg"])


def test_num_labels_from_max_label(tmp_path):
    _write(tmp_path / "train.csv", [("a", 0, ""), ("b", 3, ""), ("d", 1, ""), ("e", 2, "")], "csv")
    _write(tmp_path / "test.csv", [("c", 1, "")], "csv")
    ds = load_local(str(tmp_path))
    assert ds.num_labels == 4 and ds.label_names == ["0", "1", "2", "3"]
    # a class between 0 and the highest label without rows is refused (tests/test_own_data.py)
    _write(tmp_path / "train.csv", [("a", 0, ""), ("b", 3, "")], "csv")
    with pytest.raises(DataError, match=r"^data.label_column: class 1 has no rows in train.csv"):
        load_local(str(tmp_path))


# ----------------------------------------------------------------------------- errors
def _folder(tmp_path, train, test=(("x", 0),), kind="csv", cols=("text", "label")):
    _write(tmp_path / f"train.{kind}", list(train), kind, cols)
    if test is not None:
        _write(tmp_path / f"test.{kind}", list(test), kind, cols)
    return str(tmp_path)


def test_error_missing_path(tmp_path):
    with pytest.raises(DataError, match=r"^data.path: no such file or folder: .*nope$"):
        load_local(str(tmp_path / "nope"))


def test_error_missing_columns(tmp_path):
    path = _folder(tmp_path, [("a", 0), ("b", 1)])
    with pytest.raises(DataError, match=r"^data.text_column: no column 'sentence' in train.csv \(available: text, label\)$"):
        load_local(path, text_column="sentence")
    with pytest.raises(DataError, match=r"^data.label_column: no column 'y' .*available: text, label"):
        load_local(path, label_column="y")
    with pytest.raises(DataError, match=r"^data.paraphrase_column: no column 'p' "):
        load_local(path, paraphrase_column="p")


def test_error_label_out_of_range(tmp_path):
    path = _folder(tmp_path, [("a", 0), ("b", 2)])
    with pytest.raises(DataError, match=r"^data.label_column: train row 2 has label 2, expected 0..1 \(2 label_names\)$"):
        load_local(path, label_names=["neg", "pos"])
    path = _folder(tmp_path, [("a", 0), ("b", -1), ("c", 1)])
    with pytest.raises(DataError, match=r"^data.label_column: train row 2 has label -1, expected a class id >= 0$"):
        load_local(path)


def test_error_empty_split(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na,0\nb,1\n")
    (tmp_path / "test.jsonl").write_text("")
    with pytest.raises(DataError, match=r"^data.path: test.jsonl holds no rows \(empty split\): "):
        load_local(str(tmp_path))


def test_error_empty_split_header_only(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na,0\nb,1\n")
    (tmp_path / "test.csv").write_text("text,label\n")
    with pytest.raises(DataError, match=r"^data.path: test.csv holds no rows \(empty split\): "):
        load_local(str(tmp_path))


def test_error_split_files(tmp_path):
    path = _folder(tmp_path, [("a", 0), ("b", 1)], test=None)
    with pytest.raises(DataError, match=r"^data.test_split: no test.csv/.tsv/.jsonl/.json in "):
        load_local(path)
    with pytest.raises(DataError, match=r"^data.train_split: no dev.csv"):
        load_local(path, train_split="dev")
    (tmp_path / "test.csv").write_text("text,label\nx,0\n")
    (tmp_path / "test.tsv").write_text("text\tlabel\nx\t0\n")
    with pytest.raises(DataError, match=r"^data.path: several files for split 'test' in .*: test.csv, test.tsv$"):
        load_local(path)


def test_error_bad_file_type_and_single_class(tmp_path):
    (tmp_path / "data.txt").write_text("hello")
    with pytest.raises(DataError, match=r"^data.path: unsupported file type 'data.txt'"):
        load_local(str(tmp_path / "data.txt"))
    _write(tmp_path / "one.csv", [("a", 0), ("b", 0)], "csv", cols=("text", "label"))
    with pytest.raises(DataError, match=r"^data.label_column: found 1 class\(es\), need at least 2 \(labels in one.csv: '0'\); "):
        load_local(str(tmp_path / "one.csv"))


def test_error_load_dataset_config():
    with pytest.raises(DataError, match=r"^data.dataset: unknown dataset 'imdb'"):
        load_dataset(SimpleNamespace(dataset="imdb"))
    with pytest.raises(DataError, match=r"^data.path: required when data.dataset = 'local'$"):
        load_dataset(SimpleNamespace(dataset="local", path=""))
    with pytest.raises(DataError, match=r"^data.path: required when data.dataset = 'hub'"):
        load_dataset(SimpleNamespace(dataset="hub", path=""))


def test_error_messages_are_one_line(tmp_path):
    for call in (lambda: load_local(str(tmp_path / "x")), lambda: load_embedded("x")):
        with pytest.raises(DataError) as e:
            call()
        assert "\n" not in str(e.value)


# ----------------------------------------------------------------------------- hub
def test_load_hub_on_local_folder(tmp_path):
    _folder(tmp_path, [("good", 1, "p"), ("bad", 0, "q")], test=[("ok", 1, "r")], cols=("text", "label", "para"))
    ds = load_hub(str(tmp_path), paraphrase_column="para", label_names=["neg", "pos"])
    assert [(e.text, e.label, e.paraphrase) for e in ds.train] == [("good", 1, "p"), ("bad", 0, "q")]
    assert len(ds.test) == 1 and ds.label_names == ["neg", "pos"] and ds.name == tmp_path.name  # the folder's name
    with pytest.raises(DataError, match=r"^data.test_split: no split 'validation' in .*\(available: "):
        load_hub(str(tmp_path), test_split="validation")
    with pytest.raises(DataError, match=r"^data.text_column: no column 'sentence'"):
        load_hub(str(tmp_path), text_column="sentence")
    cfg = SimpleNamespace(dataset="hub", path=str(tmp_path), text_column="text", label_column="label",
                          paraphrase_column="", train_split="train", test_split="test", label_names=[],
                          train_limit=0, test_limit=0)
    assert len(load_dataset(cfg).train) == 2
    (tmp_path / "test.csv").write_text("text,label\n")
    with pytest.raises(DataError, match=r"^data.path: (test split holds no rows|could not load hub dataset)"):
        load_hub(str(tmp_path))


def test_load_hub_errors_are_wrapped(monkeypatch):
    import datasets

    seen = {}

    def boom(repo, revision=None, **kw):
        seen.update(repo=repo, revision=revision)
        raise FileNotFoundError("Dataset 'owner/none' doesn't exist on the Hub\nmore detail")

    monkeypatch.setattr(datasets, "load_dataset", boom)
    with pytest.raises(DataError, match=r"^data.path: could not load hub dataset 'owner/none': FileNotFoundError: Dataset .* on the Hub$"):
        load_hub("owner/none@v1")
    assert seen == {"repo": "owner/none", "revision": "v1"}


def test_load_hub_uses_class_label_names(monkeypatch):
    import datasets

    feats = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]}, features=feats),
        "test": datasets.Dataset.from_dict({"text": ["c"], "label": [1]}, features=feats),
    })
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: dd)
    ds = load_hub("owner/name")
    assert ds.label_names == ["neg", "pos"] and ds.num_labels == 2 and ds.name == "owner/name"


# ----------------------------------------------------------------------------- subsample / load_dataset
def test_subsample_stratified_and_deterministic():
    rows = [Example(f"t{i}", 0 if i < 70 else (1 if i < 90 else 2)) for i in range(100)]
    a, b = subsample(rows, 20, seed=1), subsample(rows, 20, seed=1)
    assert a == b and len(a) == 20
    assert Counter(e.label for e in a) == {0: 14, 1: 4, 2: 2}
    assert [rows.index(e) for e in a] == sorted(rows.index(e) for e in a)  # original order kept
    assert subsample(rows, 20, seed=2) != a
    assert set(e.label for e in subsample(rows, 3, seed=0)) == {0, 1, 2}  # every class survives
    for n in (0, -5, 100, 1000):
        c = subsample(rows, n, seed=0)
        assert c == rows and c is not rows


def test_load_dataset_embedded_with_limits():
    cfg = SimpleNamespace(dataset="sst2", path="", text_column="text", label_column="label", paraphrase_column="",
                          train_split="train", test_split="test", label_names=[], train_limit=100, test_limit=50)
    ds = load_dataset(cfg, seed=2021)
    assert (len(ds.train), len(ds.test), len(ds.dev)) == (100, 50, 872)
    assert Counter(e.label for e in ds.test) == {0: 25, 1: 25}
    assert [e.text for e in load_dataset(cfg, seed=2021).train] == [e.text for e in ds.train]
    assert load_dataset(SimpleNamespace(data=cfg)).name == "sst2"  # a full Config is accepted too


def test_load_dataset_with_config_dataclass(tmp_path):
    config = pytest.importorskip("rga_engine.config")
    _folder(tmp_path, [("a", "x"), ("b", "y"), ("c", "x")], test=[("d", "y")])
    cfg = config.DataConfig(dataset="local", path=str(tmp_path))
    ds = load_dataset(cfg)
    assert ds.label_names == ["x", "y"] and [e.label for e in ds.train] == [0, 1, 0]


# ----------------------------------------------------------------------------- import cost
def test_import_is_light():
    code = ("import sys, rga_engine.data\n"
            "print(sorted(m for m in ('datasets', 'textual', 'rich', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# --------------------------------------------------------------------------- data.seed

def _splits(*overrides: str):
    from rga_engine import config
    from rga_engine.data.rga_csv import load_splits

    cfg = config.load("presets/demo/sst2-badnets.toml", list(overrides))  # a 1,600-row sample
    return cfg, load_splits(cfg)


def _rows(pd) -> dict:
    return {k: (list(v.texts), list(v.labels), list(v.poisoned)) for k, v in pd.splits.items()}


def test_data_seed_keeps_one_poisoned_dataset_whatever_the_training_seed():
    # -1 (the default): the run's seed draws the sample and the poisoned rows, so seeds differ
    a_cfg, a = _splits("train.seed=2021")
    _, b = _splits("train.seed=2022")
    assert a_cfg.data.seed == -1 and a_cfg.data_seed == 2021
    assert _rows(a) != _rows(b)
    assert a.splits["train_poisoned"].texts != b.splits["train_poisoned"].texts
    # a fixed data seed: the same five splits at every training seed, and they are the data that
    # training seed would have drawn on its own
    c_cfg, c = _splits("train.seed=2022", "data.seed=2021")
    _, d = _splits("train.seed=2023", "data.seed=2021")
    assert c_cfg.data_seed == 2021 and c_cfg.train.seed == 2022
    assert _rows(c) == _rows(d) == _rows(a)
    assert sum(c.splits["train_poisoned"].poisoned) == 160


def test_data_seed_out_of_range_names_the_key():
    from rga_engine import config

    with pytest.raises(config.ConfigError, match=r"data\.seed = -2: must be >= 0, or -1 for the run's seed"):
        config.load("presets/demo/sst2-badnets.toml", ["data.seed=-2"])
