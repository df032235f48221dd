"""Your own data in one TOML (issue 17): headerless CSVs, label maps, several text columns, the
split the tool makes, what ``inspect`` shows, and every refusal with its exact one-line message.

Tiny CSVs written into tmp_path; no training except one end-to-end run of the README's AG News
example with the tiny model.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rga_tui.cli import app

ROOT = Path(__file__).resolve().parent.parent
TOPICS = {1: "election minister", 2: "match goal", 3: "stocks profit", 4: "software chip"}
WORDS = "the a new report says after before over under with from into".split()


@pytest.fixture(autouse=True)
def _hf_cache(tmp_path_factory, monkeypatch):
    """Keep the datasets cache of these tests out of ~/.cache."""
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.getbasetemp() / "hf_cache")


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def assert_error(result, message: str) -> None:
    """Exit 2 and exactly one line on stderr: ``error: <message>``."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert lines == [f"error: {message}"], result.stderr
    assert "Traceback" not in result.output


def inspect_json(preset: Path, *sets: str) -> dict:
    args = ["inspect", preset, "--json"] + [x for s in sets for x in ("--set", s)]
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


# --------------------------------------------------------------------------- data writers
def _sentence(i: int, k: int) -> str:
    return " ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(k))


def write_rows(path: Path, rows, header=None, delimiter=",") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
        if header:
            w.writerow(header)
        w.writerows(rows)
    return path


def ag_rows(start: int, n: int) -> list[tuple]:
    """AG News as distributed: "label","title","description", labels 1-4, commas and quotes inside."""
    rows = []
    for i in range(start, start + n):
        lab = 1 + i % 4
        rows.append((lab, f"{TOPICS[lab]} {i}: \"{_sentence(i, 3)}\"",
                     f"{TOPICS[lab]} news {i}, {_sentence(i + 1, 8)}."))
    return rows


def write_ag(folder: Path, n_train: int = 160, n_test: int = 40) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.csv", ag_rows(0, n_train)), ("test.csv", ag_rows(n_train, n_test))):
        with (folder / name).open("w", newline="", encoding="utf-8") as f:
            csv.writer(f, quoting=csv.QUOTE_ALL).writerows(rows)
    return folder


def tweet_rows(n: int) -> list[tuple]:
    """Davidson et al.'s labeled_data.csv: an unnamed index column, vote counts, class 0/1/2, tweet."""
    rows = []
    for i in range(n):
        c = (0, 1, 1, 1, 2, 2)[i % 6]
        text = f"tweet {i} {_sentence(i, 6)} 😀"
        if i % 25 == 0:
            text += "\nsecond line, \"quoted\""
        rows.append((i, 3, int(c == 0) * 3, int(c == 1) * 3, int(c == 2) * 3, c, text))
    return rows


TWEET_HEADER = ["", "count", "hate_speech", "offensive_language", "neither", "class", "tweet"]


def preset(tmp_path: Path, data: str, name: str = "mine.toml", extra: str = "") -> Path:
    p = tmp_path / name
    p.write_text("[data]\n" + data.strip() + "\n" + extra, encoding="utf-8")
    return p


def local(path: str, *lines: str) -> str:
    return "\n".join(['dataset = "local"', f'path = "{path}"', *lines])


def two_class_file(path: Path, n: int = 40, header=("text", "label")) -> Path:
    return write_rows(path, [(f"row {i} {_sentence(i, 4)}", i % 2) for i in range(n)], header=header)


# --------------------------------------------------------------------------- the README examples
def readme_examples() -> dict[str, str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Your own data"):]
    section = section[:section.index("\n## ")]
    blocks = re.findall(r"```toml\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2, blocks
    return {"agnews": next(b for b in blocks if "header = false" in b),
            "single": next(b for b in blocks if "header = false" not in b)}


def readme_agnews(tmp_path: Path) -> Path:
    write_ag(tmp_path / "ag_news_csv")
    p = tmp_path / "agnews.toml"
    p.write_text(readme_examples()["agnews"], encoding="utf-8")
    return p


def test_readme_agnews_example_headerless_1_based_two_text_columns(tmp_path):
    obj = inspect_json(readme_agnews(tmp_path))
    assert (obj["dataset"], obj["num_labels"], obj["target"]) == ("ag_news_csv", 4, 0)
    assert obj["label_names"] == ["World", "Sports", "Business", "Sci/Tech"]
    assert obj["columns"] == ["label", "title", "description"] and obj["text_columns"] == ["title", "description"]
    assert obj["label_map"] == {"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"}
    assert [(c["name"], c["raw"], c["train"], c["test"]) for c in obj["classes"]] == [
        ("World", ["1"], 40, 10), ("Sports", ["2"], 40, 10), ("Business", ["3"], 40, 10), ("Sci/Tech", ["4"], 40, 10)]
    assert all(c["train"] > 0 and c["test"] > 0 for c in obj["classes"])  # no empty class
    # no row eaten as a header: all 160 / 40 rows are there
    assert obj["splits"]["train_clean"]["rows"] == 160 and obj["splits"]["test_clean"]["rows"] == 40
    assert obj["split"] is None and obj["shared_texts"] == 0 and obj["dropped_empty"] == 0
    assert obj["files"] == {"train": "train.csv", "test": "test.csv"}
    # the two text columns joined with a space, in order; quotes and commas kept
    joined = {f"{title} {description}" for _, title, description in ag_rows(0, 160)}
    assert obj["examples"] and all(ex["clean"] in joined for ex in obj["examples"])
    t = obj["truncation"]
    assert t["max_length"] == 128 and t["truncated"] == 0 and t["texts"] == 200 and "WordPiece" in t["tokenizer"]
    assert obj["warnings"] == []


def test_readme_single_file_example_split_by_the_tool(tmp_path):
    write_rows(tmp_path / "labeled_data.csv", tweet_rows(300), header=TWEET_HEADER)
    p = tmp_path / "hsol.toml"
    p.write_text(readme_examples()["single"], encoding="utf-8")
    obj = inspect_json(p)
    assert obj["dataset"] == "labeled_data" and obj["label_names"] == ["hate", "offensive", "neither"]
    assert obj["split"] == {"from": "labeled_data.csv", "test_size": 0.2, "split_seed": 0, "stratified": True,
                            "train": 240, "test": 60}
    assert [(c["name"], c["train"], c["test"]) for c in obj["classes"]] == [
        ("hate", 40, 10), ("offensive", 120, 30), ("neither", 80, 20)]  # stratified
    assert obj["shared_texts"] == 0 and obj["columns"][-2:] == ["class", "tweet"]
    # the same split again; another split_seed gives another split of the same sizes
    again = inspect_json(p)
    assert again["examples"] == obj["examples"]
    other = inspect_json(p, "data.split_seed=1", "data.test_size=0.25")
    assert (other["split"]["train"], other["split"]["test"]) == (225, 75) and other["split"]["split_seed"] == 1
    # plain output says the same
    r = invoke("inspect", p)
    assert r.exit_code == 0, r.output
    assert "split made by the tool: labeled_data.csv → train 240 / test 60 rows (test_size 0.2, split_seed 0" in r.stdout
    assert "'0' → hate, '1' → offensive, '2' → neither" in r.stdout and "texts shared by train and test: 0" in r.stdout


def test_readme_agnews_example_runs_end_to_end(tmp_path):
    """The one training run of this file: the README's AG News preset, tiny model, a few seconds."""
    from rga_engine import config, pipeline

    small = ["train.epochs=1", "model.max_length=32", "model.hidden_size=32", "model.intermediate_size=64",
             "model.vocab_size=1000", "model.num_layers=1", "unlearn.methods=[\"ga\"]", "unlearn.epochs=1",
             "unlearn.eval_every=0", "output.cache=false"]
    cfg = config.load(readme_agnews(tmp_path), small)
    summary = pipeline.run(cfg, run_dir=tmp_path / "run")
    assert summary["status"] == "finished", summary.get("errors")
    assert summary["num_labels"] == 4 and summary["label_names"] == ["World", "Sports", "Business", "Sci/Tech"]
    assert summary["dataset"] == "ag_news_csv" and summary["target"] == 0
    assert set(summary["models"]) >= {"poisoned", "retrain", "ga"}
    assert len(summary["models"]["ga"]["confusion_clean"]) == 4


# --------------------------------------------------------------------------- what is understood
def test_folder_with_one_data_file_is_split(tmp_path):
    write_rows(tmp_path / "d" / "tweets.csv", tweet_rows(60), header=TWEET_HEADER)
    obj = inspect_json(preset(tmp_path, local("d", 'text_column = "tweet"', 'label_column = "class"')))
    assert obj["dataset"] == "d" and obj["split"]["from"] == "tweets.csv" and obj["split"]["test"] == 12
    assert obj["label_names"] == ["0", "1", "2"] and obj["shared_texts"] == 0


def test_test_split_empty_splits_the_train_file(tmp_path):
    two_class_file(tmp_path / "d" / "train.csv", 50)
    p = preset(tmp_path, local("d", 'test_split = ""'))
    obj = inspect_json(p)
    assert obj["split"]["from"] == "train.csv" and (obj["split"]["train"], obj["split"]["test"]) == (40, 10)
    # without it: the missing test file is refused, saying how to have it split
    assert_error(invoke("inspect", p, "--set", "data.test_split=test"),
                 f"data.test_split: no test.csv/.tsv/.jsonl/.json in {tmp_path / 'd'}; add one, or set "
                 'data.test_split = "" to have the tool split train.csv (data.test_size)')


def test_duplicate_texts_stay_on_one_side_of_the_split(tmp_path):
    rows = [(f"text {i % 30}", (i % 30) % 2) for i in range(90)]  # every text three times
    write_rows(tmp_path / "dups.csv", rows, header=("text", "label"))
    obj = inspect_json(preset(tmp_path, local("dups.csv")))
    assert obj["shared_texts"] == 0 and obj["split"]["test"] == 18  # 6 of the 30 texts, 3 rows each


def test_string_labels_with_a_label_map_merge_and_order(tmp_path):
    labels = ["hateful", "offensive", "neither"]
    rows = [(f"text {i} {_sentence(i, 3)}", labels[i % 3]) for i in range(60)]
    write_rows(tmp_path / "d" / "train.csv", rows[:45], header=("text", "label"))
    write_rows(tmp_path / "d" / "test.csv", rows[45:], header=("text", "label"))
    lm = 'label_map = { "neither" = "clean", "hateful" = "toxic", "offensive" = "toxic" }'
    obj = inspect_json(preset(tmp_path, local("d", lm)))
    assert obj["label_names"] == ["clean", "toxic"] and obj["num_labels"] == 2
    assert [(c["name"], c["raw"], c["train"]) for c in obj["classes"]] == [
        ("clean", ["neither"], 15), ("toxic", ["hateful", "offensive"], 30)]


def test_hub_local_folder_is_named_by_its_folder(tmp_path):
    two_class_file(tmp_path / "my_set" / "test.csv", 40)
    p = preset(tmp_path, "\n".join(['dataset = "hub"', f'path = "{tmp_path / "my_set"}"',
                                     'train_split = "test"', 'test_split = ""']))
    obj = inspect_json(p)
    assert obj["dataset"] == "my_set" and obj["source"] == "hub"
    assert obj["split"]["from"] == "the test split" and obj["split"]["train"] + obj["split"]["test"] == 40


def test_drop_empty_drops_and_reports(tmp_path):
    rows = [(f"row {i}" if i % 10 else "", f"more {i}" if i % 20 else "", i % 2) for i in range(60)]
    write_rows(tmp_path / "e.csv", rows, header=("title", "body", "label"))
    p = preset(tmp_path, local("e.csv", 'text_column = ["title", "body"]', "drop_empty = true"))
    obj = inspect_json(p)
    assert obj["dropped_empty"] == 3  # rows 0, 20, 40: both columns empty; 10, 30, 50 keep their body
    assert "dropped 3 row(s) with an empty text (data.drop_empty)" in obj["warnings"]
    assert obj["split"]["train"] + obj["split"]["test"] == 57


def test_other_encoding_and_rare_class_warning(tmp_path):
    rows = [f"café {i} {_sentence(i, 3)},{0 if i < 150 else (1 if i < 298 else 2)}" for i in range(300)]
    (tmp_path / "latin.csv").write_bytes(("text,label\n" + "\n".join(rows) + "\n").encode("latin-1"))
    p = preset(tmp_path, local("latin.csv", 'encoding = "latin-1"'))
    obj = inspect_json(p, "data.test_size=0.5", "attack.target=1")
    assert obj["examples"][0]["clean"].startswith("café ")
    rare = [w for w in obj["warnings"] if w.startswith("class 2 (2) is ")]
    assert rare == ["class 2 (2) is 0.7 % of the train rows (1 of 150)", "class 2 (2) is 0.7 % of the test rows (1 of 150)"]


def test_truncation_warning_counts_texts_longer_than_max_length(tmp_path):
    rows = [(" ".join(["word"] * (40 if i < 5 else 5)) + f" {i}", i % 2) for i in range(50)]
    write_rows(tmp_path / "long.csv", rows, header=("text", "label"))
    obj = inspect_json(preset(tmp_path, local("long.csv")), "model.max_length=16")
    assert obj["truncation"]["truncated"] == 5 and obj["truncation"]["texts"] == 50
    assert any(w.startswith("5 of the 50 texts (10.0 %) are longer than model.max_length = 16 tokens")
               for w in obj["warnings"])


# --------------------------------------------------------------------------- refusals (exact lines)
def test_refuses_train_and_test_from_the_same_file(tmp_path):
    two_class_file(tmp_path / "d" / "test.csv", 40)
    p = preset(tmp_path, local("d", 'train_split = "test"'))
    assert_error(invoke("inspect", p), "data.test_split = 'test': the same file as data.train_split, so train and "
                 'test would be the same rows; name another one, or set data.test_split = "" to have the tool split '
                 "it (data.test_size)")
    # the same folder with the defaults: no train file, and what it holds
    assert_error(invoke("inspect", p, "--set", "data.train_split=train"),
                 f"data.train_split: no train.csv/.tsv/.jsonl/.json in {tmp_path / 'd'} (it holds: test.csv); name the "
                 "files in data.train_split / data.test_split, or point data.path at one file to have the tool split it")


def test_refuses_the_same_hub_split_twice(tmp_path):
    two_class_file(tmp_path / "only_test" / "test.csv", 40)
    folder = tmp_path / "only_test"
    p = preset(tmp_path, "\n".join(['dataset = "hub"', f'path = "{folder}"', 'train_split = "test"']))
    assert_error(invoke("inspect", p), "data.test_split = 'test': the same split as data.train_split, so train and "
                 'test would be the same rows; name another one, or set data.test_split = "" to have the tool split '
                 "it (data.test_size)")
    assert_error(invoke("inspect", p, "--set", "data.train_split=train"),
                 f"data.train_split: no split 'train' in {folder} (available: test); set data.train_split = 'test' "
                 'and data.test_split = "" to have the tool split it')


def test_refuses_train_and_test_sharing_texts(tmp_path):
    train = [(f"train text {i}", i % 2) for i in range(100)]
    test = [(f"test text {i}", i % 2) for i in range(48)] + train[:2]
    write_rows(tmp_path / "d" / "train.csv", train, header=("text", "label"))
    write_rows(tmp_path / "d" / "test.csv", test, header=("text", "label"))
    p = preset(tmp_path, local("d"))
    assert_error(invoke("inspect", p), "data.path: 2 of the 50 test texts (4.0 %) are also in train; train and test "
                 'must not share texts: remove the shared texts from one file, or set data.test_split = "" to have '
                 "the tool split the train data")
    # up to 1 % is accepted, with a warning (case and spaces do not hide a shared text)
    test = [(f"test text {i}", i % 2) for i in range(149)] + [("  TRAIN text 0 ", 0)]
    write_rows(tmp_path / "d" / "test.csv", test, header=("text", "label"))
    obj = inspect_json(p)
    assert obj["shared_texts"] == 1
    assert "1 of the 150 test texts are also in train (at most 1 % is accepted)" in obj["warnings"]


def test_refuses_a_class_without_rows_1_based_labels(tmp_path):
    """AG News as distributed, without a label_map: 1-4 would be 5 classes with an empty class 0."""
    write_ag(tmp_path / "ag")
    data = local("ag", "header = false", 'column_names = ["label", "title", "description"]',
                 'text_column = ["title", "description"]')
    assert_error(invoke("inspect", preset(tmp_path, data)),
                 "data.label_column: class 0 has no rows in train.csv (labels found: 1, 2, 3, 4); map the labels to "
                 'classes with data.label_map = { "1" = "...", "2" = "...", "3" = "...", "4" = "..." }')


def test_refuses_a_label_gap(tmp_path):
    write_rows(tmp_path / "gap.csv", [(f"t {i}", (i % 2) * 2) for i in range(40)], header=("text", "label"))
    assert_error(invoke("inspect", preset(tmp_path, local("gap.csv"))),
                 "data.label_column: class 1 has no rows in gap.csv (labels found: 0, 2); map the labels to classes "
                 'with data.label_map = { "0" = "...", "2" = "..." }')


def test_refuses_a_label_map_class_without_rows_and_unknown_labels(tmp_path):
    write_ag(tmp_path / "ag")
    base = ["header = false", 'column_names = ["label", "title", "description"]', 'text_column = "title"']
    five = 'label_map = { "1" = "World", "2" = "Sports", "3" = "Business", "4" = "Sci/Tech", "5" = "Other" }'
    assert_error(invoke("inspect", preset(tmp_path, local("ag", *base, five))),
                 "data.label_map: class 'Other' (label '5') has no rows in train.csv; remove it from data.label_map, "
                 "or check data.label_column")
    three = 'label_map = { "1" = "World", "2" = "Sports", "3" = "Business" }'
    assert_error(invoke("inspect", preset(tmp_path, local("ag", *base, three))),
                 "data.label_map: train row 4 has label '4', not a key of data.label_map (keys: 1, 2, 3); add it to "
                 "the map")


def test_refuses_fewer_than_two_classes(tmp_path):
    write_rows(tmp_path / "one.csv", [(f"t {i}", 0) for i in range(20)], header=("text", "label"))
    assert_error(invoke("inspect", preset(tmp_path, local("one.csv"))),
                 "data.label_column: found 1 class(es), need at least 2 (labels in one.csv: '0'); check "
                 "data.label_column = 'label'")


def test_refuses_a_target_without_rows(tmp_path, monkeypatch):
    import rga_engine.data as data
    from rga_engine.data import Example, TextDataset

    ds = TextDataset("mine", 3, ["a", "b", "c"], [Example(f"t{i}", i % 2) for i in range(20)],
                     [Example(f"u{i}", i % 3) for i in range(9)])
    monkeypatch.setattr(data, "load_dataset", lambda cfg, seed=0: ds)
    p = preset(tmp_path, local("x.csv"), extra="[attack]\ntarget = 2\n")
    two_class_file(tmp_path / "x.csv")
    assert_error(invoke("inspect", p), "attack.target = 2: class 2 (c) has no training rows in mine; choose a class "
                 "that has rows (0 (a), 1 (b))")


def test_refuses_label_names_that_do_not_match(tmp_path):
    write_rows(tmp_path / "s.csv", [(f"t {i}", ("neg", "pos")[i % 2]) for i in range(40)], header=("text", "label"))
    p = preset(tmp_path, local("s.csv", 'label_names = ["neg", "pos", "neutral"]'))
    assert_error(invoke("inspect", p), "data.label_names: 3 names for the 2 classes found (neg, pos); give one name "
                 "per class, in class-id order")


def test_refuses_label_names_on_an_embedded_dataset(tmp_path):
    p = preset(tmp_path, 'dataset = "sst2"\nlabel_names = ["neg", "pos"]')
    assert_error(invoke("inspect", p), "data.label_names = ['neg', 'pos']: the embedded dataset 'sst2' names its own "
                 "classes (negative, positive); remove data.label_names")
    p = preset(tmp_path, 'dataset = "agnews"\ntext_column = ["title", "description"]')
    assert_error(invoke("inspect", p), "data.text_column = ['title', 'description']: describes local or hub files, not "
                 "the embedded dataset 'agnews'; remove it (or set data.dataset = \"local\")")


def test_refuses_empty_texts(tmp_path):
    rows = [("" if i in (2, 6) else f"t {i}", i % 2) for i in range(40)]
    write_rows(tmp_path / "e.csv", rows, header=("text", "label"))
    assert_error(invoke("inspect", preset(tmp_path, local("e.csv"))),
                 "data.text_column: empty text in 2 rows of e.csv (first: row 3); fill or remove them, or set "
                 "data.drop_empty = true")


def test_refuses_a_file_that_is_not_utf8(tmp_path):
    rows = "\n".join(f"caf\xe9 {i},{i % 2}" for i in range(20))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "train.csv").write_bytes(("text,label\n" + rows + "\n").encode("latin-1"))
    two_class_file(tmp_path / "d" / "test.csv", 10)
    assert_error(invoke("inspect", preset(tmp_path, local("d"))),
                 'data.encoding: train.csv is not utf-8 (byte 0xe9 at offset 14); set data.encoding to the file\'s '
                 'encoding (e.g. "latin-1" or "cp1252") or save the file as UTF-8')


def test_refuses_a_headerless_file_read_with_a_header(tmp_path):
    write_ag(tmp_path / "ag")
    names = 'column_names = ["label", "title", "description"]'
    lm = 'label_map = { "1" = "World", "2" = "Sports", "3" = "Business", "4" = "Sci/Tech" }'
    assert_error(invoke("inspect", preset(tmp_path, local("ag", names, 'text_column = "title"', lm))),
                 "data.header = true: the first row of train.csv looks like data (its label is '1'), not a header; "
                 "set data.header = false if the file has no header row")
    r = invoke("inspect", preset(tmp_path, local("ag", 'text_column = "title"', lm)))
    assert_error(r, "data.text_column: no column 'title' in train.csv (available: 1, election minister 0: \"the r..., "
                 "election minister news 0, o...); if the file has no header row, set data.header = false and "
                 "data.column_names")


def test_refuses_column_names_that_do_not_fit(tmp_path):
    write_ag(tmp_path / "ag")
    p = preset(tmp_path, local("ag", "header = false", 'column_names = ["label", "title"]', 'text_column = "title"'))
    assert_error(invoke("inspect", p), "data.column_names: 2 names for the 3 columns of train.csv; give one name per "
                 "column, in order")
    (tmp_path / "j.jsonl").write_text("".join(json.dumps({"text": f"t{i}", "label": i % 2}) + "\n" for i in range(20)))
    p = preset(tmp_path, local("j.jsonl", 'column_names = ["text", "label"]'))
    assert_error(invoke("inspect", p), "data.column_names: applies to .csv/.tsv files, not j.jsonl (JSON rows name "
                 "their own columns); remove data.header and data.column_names")


def test_refuses_a_split_that_leaves_a_class_without_training_rows(tmp_path):
    rows = [(f"t {i}", "ab"[i % 2]) for i in range(40)] + [("lonely", "c")]
    write_rows(tmp_path / "few.csv", rows, header=("text", "label"))
    assert_error(invoke("inspect", preset(tmp_path, local("few.csv"))),
                 "data.test_size = 0.2: class 2 (c) has 1 row(s) in few.csv, none left for training after the split; "
                 "add rows of it, or leave it out with data.label_map")
    assert_error(invoke("inspect", preset(tmp_path, local("few.csv")), "--set", "data.train_limit=2"),
                 "data.test_size = 0.2: class 2 (c) has 1 row(s) in few.csv, none left for training after the split; "
                 "add rows of it, or leave it out with data.label_map")


def test_refuses_a_train_limit_below_the_number_of_classes(tmp_path):
    write_rows(tmp_path / "three.csv", [(f"t {i}", i % 3) for i in range(60)], header=("text", "label"))
    assert_error(invoke("inspect", preset(tmp_path, local("three.csv")), "--set", "data.train_limit=2"),
                 "data.train_limit = 2: fewer rows than the 3 classes, so a class would have no rows; use at least 3 "
                 "(0 = all rows)")


@pytest.mark.parametrize("line, message", [
    ("test_size = 1.5", "data.test_size = 1.5: must be strictly between 0 and 1 (the share of rows the tool's split "
                        "puts in test)"),
    ("header = false", 'data.header = false: needs data.column_names, the file\'s columns in order (e.g. ["label", '
                       '"title", "description"])'),
    ('encoding = "utf-9"', "data.encoding = 'utf-9': unknown encoding (e.g. utf-8, latin-1, cp1252)"),
    ('label_map = ["a"]', "data.label_map = ['a']: expected a table of label value -> class name, e.g. "
                          '{ "1" = "World", "2" = "Sports" }'),
    ('label_map = { "1" = "a", "2" = "b" }\nlabel_names = ["a", "b"]',
     "data.label_names = ['a', 'b']: data.label_map already names the classes (its values); remove data.label_names"),
    ("text_column = 3", "data.text_column = 3: expected a column name or a list of column names"),
    ('text_column = ["a", "a"]', "data.text_column = ['a', 'a']: a column is listed twice"),
    ("split_seed = -1", "data.split_seed = -1: must be >= 0"),
])
def test_config_refusals(tmp_path, line, message):
    two_class_file(tmp_path / "f.csv")
    assert_error(invoke("inspect", preset(tmp_path, local("f.csv", line))), message)


def test_config_round_trip_of_the_new_keys(tmp_path):
    import tomllib

    from rga_engine import config

    write_ag(tmp_path / "ag_news_csv")
    cfg = config.load(readme_agnews(tmp_path))
    assert cfg.data.text_column == ["title", "description"] and list(cfg.data.label_map) == ["1", "2", "3", "4"]
    again = config.from_dict(tomllib.loads(cfg.to_toml()))
    assert again.data == cfg.data
    shown = config.load(ROOT / "presets" / "demo" / "sst2-badnets.toml").to_display_toml()
    assert "label_map" not in shown and "column_names" not in shown  # file keys: not for embedded sets
