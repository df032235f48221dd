"""`rga-tui table --format markdown|csv|latex|json`: every format gives back the numbers of a
recorded run (tests/fixtures/sst2_badnets_summary.json), seeds are averaged, a re-run seed counts once."""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rga_engine import export
from rga_tui.cli import app

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "sst2_badnets_summary.json"
SUMMARY = json.loads(FIXTURE.read_text())
MODELS = {"poisoned": "Poisoned", "retrain": "Retrain", "ga": "GA", "npo": "NPO", "rga": "RGA"}
KEYS = {"cacc": "cacc", "asr": "asr", "lfr": "paper_lfr", "pacc": "pacc", "delta_pacc": "delta_pacc"}


def expected(model: str, metric: str) -> float | None:
    v = SUMMARY["models"][model].get(KEYS[metric])
    return None if v is None else 100 * v


def run_dir(root: Path, name: str, summary: dict) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps(summary))
    return d


def table(*args) -> str:
    r = CliRunner().invoke(app, ["table", *map(str, args)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    return r.stdout


def test_json_round_trips_every_number(tmp_path):
    rec = json.loads(table(run_dir(tmp_path, "r", SUMMARY), "--format", "json"))
    (g,) = rec["groups"]
    assert (g["dataset"], g["attack"], g["seeds"]) == ("sst2", "badnets", ["2021"])
    assert [m["name"] for m in g["models"]] == list(MODELS)
    for m in g["models"]:
        for metric in export.METRICS:
            want = expected(m["name"], metric)
            if m["name"] == "retrain" and metric == "delta_pacc":
                assert m[metric]["mean"] is None
                continue
            assert m[metric]["mean"] == pytest.approx(want, abs=1e-9), (m["name"], metric)
            assert m[metric]["values"] == [pytest.approx(want, abs=1e-9)]
    rga = next(m for m in g["models"] if m["name"] == "rga")
    assert rga["verdicts"] and rga["verdicts"][0].startswith("backdoor partly remains")


def test_csv_round_trips_to_two_decimals(tmp_path):
    rows = list(csv.DictReader(io.StringIO(table(run_dir(tmp_path, "r", SUMMARY), "-f", "csv"))))
    assert [r["method"] for r in rows] == list(MODELS.values())
    for r in rows:
        name = next(k for k, v in MODELS.items() if v == r["method"])
        assert r["dataset"] == "sst2" and r["seeds"] == "2021" and r["runs"] == "1"
        for metric, col in export.METRIC_NAMES.items():
            want = expected(name, metric)
            if name == "retrain" and metric == "delta_pacc":
                assert r[col] == ""
                continue
            assert float(r[col]) == pytest.approx(want, abs=0.005), (name, col)
            assert r[f"{col}_std"] == ""  # one seed: no std


def test_latex_is_the_papers_layout_and_round_trips(tmp_path):
    tex = table(run_dir(tmp_path, "r", SUMMARY), "--format", "latex")
    assert "\\begin{tabular}" in tex and "\\toprule" in tex and "\\bottomrule" in tex
    lines = [ln for ln in tex.splitlines() if ln.endswith("\\\\")]
    header = [c.strip() for c in lines[0].removesuffix("\\\\").split("&")]
    assert header[4:] == list(MODELS.values())  # methods as columns
    body = {c[3]: c for c in ([x.strip() for x in ln.removesuffix("\\\\").split("&")] for ln in lines[1:])}
    assert list(body) == ["CACC", "LFR", "PACC", "$\\Delta$PACC"]  # metrics as rows
    assert body["CACC"][:3] == ["SST-2", "BadNets", "tiny"]
    for label, metric in (("CACC", "cacc"), ("LFR", "lfr"), ("PACC", "pacc"), ("$\\Delta$PACC", "delta_pacc")):
        for col, name in enumerate(MODELS, start=4):
            cell = body[label][col]
            if name == "retrain" and metric == "delta_pacc":
                assert cell == "--"
                continue
            num = float(re.search(r"[\d.]+", cell).group())
            assert num == pytest.approx(expected(name, metric), abs=0.005), (label, name, cell)
    # the lowest ΔPACC among the methods is bold (RGA's 0.66)
    assert body["$\\Delta$PACC"][4 + list(MODELS).index("rga")] == "\\textbf{0.66}"


def test_markdown_round_trips(tmp_path):
    md = table(run_dir(tmp_path, "r", SUMMARY))
    rows = [ln for ln in md.splitlines() if ln.startswith("|")]
    header = [c.strip() for c in rows[0].strip("|").split(" | ")]
    body = [c.strip().strip("*") for c in rows[2].strip("|").split(" | ")]
    for name, label in MODELS.items():
        for metric, col in (("cacc", "CACC"), ("pacc", "PACC")):
            if f"{label} {col}" not in header:  # Poisoned: CACC and ASR only
                continue
            assert float(body[header.index(f"{label} {col}")]) == pytest.approx(expected(name, metric), abs=0.005)


def test_seeds_are_averaged_and_a_rerun_seed_counts_once(tmp_path):
    a = copy.deepcopy(SUMMARY)
    b = copy.deepcopy(SUMMARY)
    b["seed"], b["models"]["rga"]["cacc"] = 2022, SUMMARY["models"]["rga"]["cacc"] + 0.02
    rerun = copy.deepcopy(SUMMARY)  # seed 2021 again, later: replaces the first
    rerun["finished"] = "2099-01-01T00:00:00"
    rerun["models"]["rga"]["cacc"] = SUMMARY["models"]["rga"]["cacc"] + 0.04
    dirs = [run_dir(tmp_path, n, s) for n, s in (("a", a), ("b", b), ("c", rerun))]
    rec = json.loads(table(*dirs, "-f", "json"))
    (g,) = rec["groups"]
    assert g["seeds"] == ["2021", "2022"]
    rga = next(m for m in g["models"] if m["name"] == "rga")
    base = 100 * SUMMARY["models"]["rga"]["cacc"]
    assert sorted(rga["cacc"]["values"]) == [pytest.approx(base + 2), pytest.approx(base + 4)]
    assert rga["cacc"]["std"] == pytest.approx(1.41421356, abs=1e-6)
    assert any("seed 2021: 2 runs, the latest is used" in n for n in rec["notes"])
    md = table(*dirs)
    assert "2021, 2022 |" in md and "×2" not in md.split("\n\n")[0]
    assert "$\\pm$" in table(*dirs, "-f", "latex")


def test_unknown_format_is_one_line(tmp_path):
    r = CliRunner().invoke(app, ["table", str(run_dir(tmp_path, "r", SUMMARY)), "--format", "xml"])
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines() == ["error: --format xml: allowed values are markdown, csv, latex, json"]


def seeded_run(root: Path, name: str, seed: int, config_body: str) -> Path:
    """A run folder of the fixture's summary at ``seed`` with ``config.toml`` = [train] seed + body."""
    s = copy.deepcopy(SUMMARY)
    s["seed"] = seed
    d = run_dir(root, name, s)
    (d / "config.toml").write_text(f'name = "x"\n[train]\nseed = {seed}\n{config_body}')
    return d


def test_runs_whose_configs_differ_beyond_the_seed_are_never_averaged(tmp_path):
    def run(name, seed, epochs):
        return seeded_run(tmp_path, name, seed, f'[unlearn]\nepochs = {epochs}\n[output]\ndir = "{name}"\n')

    dirs = [run("a", 2021, 12), run("b", 2022, 12), run("c", 2021, 16)]
    rec = json.loads(table(*dirs, "-f", "json"))
    groups = {g["preset"]: g["seeds"] for g in rec["groups"]}
    assert groups == {"demo-sst2-badnets (unlearn.epochs=12)": ["2021", "2022"],
                      "demo-sst2-badnets (unlearn.epochs=16)": ["2021"]}
    assert not rec["notes"]  # seed 2021 of epochs=12 and of epochs=16 are different experiments
    md = table(*dirs)
    assert "unlearn.epochs=16" in md and "unlearn.epochs=12" in md


def test_a_key_that_does_nothing_for_the_run_does_not_split_its_seeds(tmp_path):
    """attack.sentence (AddSent's) on BadNets runs, cube_* keys on oracle runs: the default changed
    between two versions, yet the experiment is the same; a BadNets trigger change still splits."""
    def run(name, seed, extra):
        return seeded_run(tmp_path, name, seed, f'[attack]\nname = "badnets"\n{extra}[unlearn]\nforget_set = "oracle"\n')

    same = [run("a", 2021, 'sentence = "I watch this 3D movie"\n'), run("b", 2022, 'sentence = ""\n')]
    (g,) = json.loads(table(*same, "-f", "json"))["groups"]
    assert g["seeds"] == ["2021", "2022"]
    other = run("c", 2023, 'triggers = ["cf"]\n')
    groups = json.loads(table(*same, other, "-f", "json"))["groups"]
    assert len(groups) == 2 and any("attack.triggers" in g["preset"] for g in groups)
