"""data.dataset = "rga-csv": the authors' five-csv layout, run as it is (no attack step)."""

import json
from types import SimpleNamespace

import pytest

from rga_engine import config
from rga_engine.attacks import SPLITS, poison
from rga_engine.data import load_embedded, subsample
from rga_engine.data.loaders import DataError
from rga_engine.data.rga_csv import FILES, load_rga_csv, load_splits, write_rga_csv


def _poisoned_sst2(n_train=300, n_test=80, attack="addsent"):
    ds = load_embedded("sst2")
    ds.train, ds.test = subsample(ds.train, n_train, 0), subsample(ds.test, n_test, 0)
    cfg = SimpleNamespace(name=attack, target=-1, poison_rate=0.1, protocol="add", triggers=["mn"],
                          num_insertions=1, sentence="")
    return poison(ds, cfg, seed=2021)


def test_written_folder_reads_back_split_for_split(tmp_path):
    pd = _poisoned_sst2()
    write_rga_csv(pd, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES.values())
    back = load_rga_csv(tmp_path, attack="addsent")
    assert (back.dataset, back.attack, back.target, back.num_labels) == ("rga-csv", "addsent", 1, 2)
    for name in SPLITS:
        a, b = pd.splits[name], back.splits[name]
        assert (a.texts, a.labels, a.poisoned) == (b.texts, b.labels, b.poisoned), name
    assert back.examples and all(c == "" and "I watch this 3D movie" in p for c, p in back.examples)
    assert load_rga_csv(tmp_path, target=0, label_names=["neg", "pos"]).label_names == ["neg", "pos"]


def test_bad_folders_fail_in_one_line(tmp_path):
    with pytest.raises(DataError, match="rga-csv needs a folder"):
        load_rga_csv(tmp_path / "nope")
    write_rga_csv(_poisoned_sst2(100, 20), tmp_path)
    with pytest.raises(DataError, match=r"^data.text_column: no column 'sentence' in train_clean.csv"):
        load_rga_csv(tmp_path, text_column="sentence")
    (tmp_path / "test_poisoned_all.csv").unlink()
    with pytest.raises(DataError, match=r"missing test_poisoned_all.csv"):
        load_rga_csv(tmp_path)
    with pytest.raises(config.ConfigError, match=r"^data.path = .*: missing test_poisoned_all.csv \(the rga-csv layout\)$"):
        config.from_dict({"data": {"dataset": "rga-csv", "path": str(tmp_path)}})
    with pytest.raises(config.ConfigError, match=r"^data.path = '': required when data.dataset = 'rga-csv'$"):
        config.from_dict({"data": {"dataset": "rga-csv"}})


def test_preset_inspect_and_a_tiny_run_skip_the_attack(tmp_path):
    from typer.testing import CliRunner

    from rga_engine import pipeline
    from rga_engine.events import ListSink
    from rga_tui.cli import app

    pd = _poisoned_sst2(300, 80, attack="badnets")
    write_rga_csv(pd, tmp_path / "data")
    preset = tmp_path / "authors.toml"
    preset.write_text('[data]\ndataset = "rga-csv"\npath = "data"\n\n[attack]\nname = "badnets"\n'
                      '[model]\nmax_length = 32\nhidden_size = 32\nintermediate_size = 64\nnum_layers = 1\n'
                      'vocab_size = 800\n\n[train]\nepochs = 1\nretrain = false\n\n'
                      '[unlearn]\nmethods = ["ga"]\nepochs = 1\n\n[output]\ncache = false\n')
    cfg = config.load(preset)  # the relative path resolves against the preset's folder
    assert load_splits(cfg).splits["train_poisoned"].texts == pd.splits["train_poisoned"].texts
    shown = cfg.to_display_toml()
    assert "poison_rate" not in shown and "triggers" not in shown and "train_limit" not in shown
    with pytest.raises(config.ConfigError, match=r"^data.train_limit = 100: not with data.dataset = 'rga-csv'"):
        config.load(preset, ["data.train_limit=100"])

    r = CliRunner().invoke(app, ["inspect", str(preset), "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["dataset"] == "rga-csv" and info["target"] == 1
    assert info["splits"]["train_poisoned"]["poisoned"] == sum(pd.splits["train_poisoned"].poisoned)
    assert all("mn" in ex["poisoned"].split() for ex in info["examples"])
    assert CliRunner().invoke(app, ["inspect", str(preset)]).exit_code == 0

    s = pipeline.run(cfg, ListSink(), run_dir=tmp_path / "run")
    assert s["status"] == "finished" and s["dataset"] == "rga-csv" and set(s["models"]) == {"poisoned", "ga"}
    assert sum(map(sum, s["models"]["ga"]["confusion_poisoned_all"])) == 80
