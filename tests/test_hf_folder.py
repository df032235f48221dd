"""`rga-tui export RUN_DIR MODEL --to DIR`: a model a run saved, as a Hugging Face folder that
transformers loads without rga-tui and that predicts what the run measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from typer.testing import CliRunner

from rga_engine import config, pipeline, train
from rga_engine.data.rga_csv import load_splits
from rga_engine.events import ListSink
from rga_tui.cli import app

TINY = "tests/fixtures/presets/tiny-sst2-badnets.toml"
SMALL = ["data.train_limit=400", "data.test_limit=120", "train.epochs=1", "unlearn.epochs=2", "unlearn.eval_every=0",
         "model.max_length=32", "model.hidden_size=32", "model.intermediate_size=64", "model.vocab_size=1000",
         "model.num_layers=1", "unlearn.methods=['rga']", "output.save_models=true", "output.cache=false"]


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    cfg = config.load(TINY, SMALL)
    run_dir = tmp_path_factory.mktemp("export") / "run"
    s = pipeline.run(cfg, ListSink(), run_dir=run_dir)
    assert s["status"] == "finished"
    return cfg, run_dir, s


def test_an_exported_model_loads_with_transformers_alone_and_gives_the_runs_matrix(run, tmp_path):
    cfg, run_dir, s = run
    out = tmp_path / "rga-hf"
    r = cli("export", run_dir, "rga", "--to", out)
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == f"rga: written to {out}" and not r.stderr.strip()
    assert {"config.json", "model.safetensors", "README.md", "tokenizer.json"} <= {p.name for p in out.iterdir()}

    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    assert model.config.id2label == {0: "negative", 1: "positive"} == dict(enumerate(s["label_names"]))
    assert model.config.label2id == {"negative": 0, "positive": 1}

    # the run's clean test rows, through the exported tokenizer and model: the run's matrix, cell
    # for cell, and the logits of the model rga-tui itself loads back, bit for bit
    test = load_splits(cfg).splits["test_clean"]
    enc = train.encode(tok, test.texts, test.labels, test.poisoned, cfg.model.max_length)
    logits = train.predict_logits(model, enc, 64, tok.pad_token_id, "cpu")
    assert train.confusion(logits, enc.labels, 2) == s["models"]["rga"]["confusion_clean"]
    ours, _ = pipeline.load_model(run_dir, "rga")
    assert torch.equal(logits, train.predict_logits(ours, enc, 64, tok.pad_token_id, "cpu"))

    card = (out / "README.md").read_text(encoding="utf-8")
    m = s["models"]["rga"]
    assert f"CACC {100 * m['cacc']:.2f}, PACC {100 * m['pacc']:.2f}, ASR {100 * m['asr']:.2f}" in card
    assert "after unlearning with `rga`" in card and f"seed: {s['seed']}" in card


def test_export_refuses_in_one_line_and_writes_nothing(run, tmp_path):
    _, run_dir, _ = run

    def one_line_error(r, contains):
        assert r.exit_code == 2, r.output
        lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and contains in lines[0], r.stderr

    one_line_error(cli("export", run_dir, "npo", "--to", tmp_path / "a"), "saved: poisoned, retrain, rga")
    one_line_error(cli("export", tmp_path / "nowhere", "rga", "--to", tmp_path / "b"), "no such run folder")
    full = tmp_path / "full"
    full.mkdir()
    (full / "mine.txt").write_text("keep")
    one_line_error(cli("export", run_dir, "rga", "--to", full), "exists and is not an empty folder")
    assert [p.name for p in full.iterdir()] == ["mine.txt"]
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()

    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for f in ("config.toml", "summary.json"):
        (damaged / f).write_bytes((run_dir / f).read_bytes())
    (damaged / "models").mkdir()
    raw = bytearray((run_dir / "models" / "rga.safetensors").read_bytes())
    raw[-1] ^= 0xFF
    (damaged / "models" / "rga.safetensors").write_bytes(bytes(raw))
    one_line_error(cli("export", damaged, "rga", "--to", tmp_path / "c"), "checksum mismatch")
    assert not (tmp_path / "c").exists()


_LOAD_ALONE = """
import json, sys
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
assert "rga_engine" not in sys.modules
texts = json.loads(sys.argv[2])
out = {}
for folder in sys.argv[1].split(","):
    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():
        b = tok(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
        out[folder] = [type(model).__name__, model(**b).logits.tolist()]
assert "rga_engine" not in sys.modules
print(json.dumps(out))
"""


def test_the_authors_head_is_exported_with_its_own_code_and_loads_without_rga_tui(tmp_path):
    """`model.pooling = "cls"` / `"last"` (the paper/ BERT presets): no transformers class has
    that head, so the folder carries it; transformers alone, in a fresh process, loads it with
    trust_remote_code and gives the logits rga-tui's own model gives."""
    folders, runs = [], {}
    for pooling in ("cls", "last"):
        cfg = config.load(TINY, SMALL + [f"model.pooling={pooling}"])
        s = pipeline.run(cfg, ListSink(), run_dir=tmp_path / f"run-{pooling}")
        assert s["status"] == "finished"
        out = tmp_path / f"hf-{pooling}"
        r = cli("export", tmp_path / f"run-{pooling}", "rga", "--to", out)
        assert r.exit_code == 0, r.output
        assert {"config.json", "model.safetensors", "modeling_rga_pooled.py", "README.md"} <= {p.name for p in out.iterdir()}
        assert "trust_remote_code=True" in (out / "README.md").read_text(encoding="utf-8")
        folders.append(str(out))
        runs[str(out)] = (cfg, s)
    test = load_splits(runs[folders[0]][0]).splits["test_clean"]
    texts = test.texts
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": ""}
    p = subprocess.run([sys.executable, "-c", _LOAD_ALONE, ",".join(folders), json.dumps(texts)], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    loaded = json.loads(p.stdout.strip().splitlines()[-1])
    for folder in folders:
        cfg, s = runs[folder]
        name, logits = loaded[folder]
        assert name == "RgaPooledForSequenceClassification"
        logits = torch.tensor(logits)
        model, tok = pipeline.load_model(Path(folder).parent / f"run-{cfg.model.pooling}", "rga")
        enc = train.encode(tok, test.texts, test.labels, test.poisoned, cfg.model.max_length)
        want = train.predict_logits(model, enc, 64, tok.pad_token_id, "cpu")
        assert type(model).__name__ == "PooledClassifier" and model.pooling == cfg.model.pooling
        assert (logits - want).abs().max().item() < 1e-5, cfg.model.pooling
        assert train.confusion(logits, torch.tensor(test.labels), 2) == s["models"]["rga"]["confusion_clean"]


def test_a_lora_model_is_exported_with_its_adapters_merged_in(tmp_path):
    pytest.importorskip("peft")
    cfg = config.load(TINY, SMALL + ["model.lora=true"])
    s = pipeline.run(cfg, ListSink(), run_dir=tmp_path / "run")
    assert s["status"] == "finished"
    r = cli("export", tmp_path / "run", "rga", "--to", tmp_path / "hf")
    assert r.exit_code == 0, r.output
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "hf").eval()  # a plain BERT: no peft
    assert type(model).__name__ == "BertForSequenceClassification"
    tok = AutoTokenizer.from_pretrained(tmp_path / "hf")
    test = load_splits(cfg).splits["test_clean"]
    enc = train.encode(tok, test.texts, test.labels, test.poisoned, cfg.model.max_length)
    logits = train.predict_logits(model, enc, 64, tok.pad_token_id, "cpu")
    ours, _ = pipeline.load_model(tmp_path / "run", "rga")  # the peft model the run trained
    # W0 + s·B·A summed once into W: float rounding only (2.8e-9 measured)
    assert (logits - train.predict_logits(ours, enc, 64, tok.pad_token_id, "cpu")).abs().max().item() < 1e-5
