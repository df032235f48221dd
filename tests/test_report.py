"""rga_engine.report: the paper-style tables from run summaries (pure Python, fast)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rga_engine import report
from rga_engine.report import ReportError


def entry(cacc, pacc, asr, paper_lfr, delta=None, shift=None, seconds=1.0):
    return {
        "cacc": cacc,
        "pacc": pacc,
        "asr": asr,
        "lfr": [paper_lfr, 0.0],
        "paper_lfr": paper_lfr,
        "delta_pacc": delta,
        "confusion_clean": [[1, 0], [0, 1]],
        "confusion_poisoned_all": [[1, 0], [0, 1]],
        "trigger_shift": shift or {"shifted": False, "to_class": None, "score": 0.0, "remains": False},
        "seconds": seconds,
    }


def make_summary(seed=2021, rga_pacc=0.8964, ga_error=None, preset="demo-sst2-badnets", dataset="sst2"):
    models = {
        "poisoned": entry(0.9132, 0.5008, 1.0, 1.0, shift={"shifted": False, "to_class": None, "remains": True}),
        "retrain": entry(0.9132, 0.9120, 0.0716, 0.0716),
        "ga": entry(0.9118, 0.5008, 0.0, 0.0, 0.4112,
                    shift={"shifted": True, "to_class": 0, "score": 0.5, "remains": False}),
        "npo": entry(0.9057, 0.6408, 0.0333, 0.0333, 0.2788),
        "rga": entry(0.8973, rga_pacc, 0.0716, 0.0716, abs(rga_pacc - 0.9120)),
    }
    errors = {}
    if ga_error:
        del models["ga"]
        errors["unlearn:ga"] = ga_error
    return {
        "preset": preset, "dataset": dataset, "attack": "badnets", "model": "tiny", "target": 1,
        "num_labels": 2, "label_names": ["negative", "positive"], "seed": seed,
        "methods": ["ga", "npo", "rga"], "status": "finished" if not errors else "partial",
        "errors": errors, "models": models,
    }


def table_rows(md: str) -> list[list[str]]:
    rows = [ln for ln in md.splitlines() if ln.startswith("|")]
    return [[c.strip() for c in ln.strip("|").split(" | ")] for ln in rows]


def cell(md: str, column: str, row: int = 0) -> str:
    rows = table_rows(md)
    header, body = rows[0], rows[2:]
    return body[row][header.index(column)]


# --------------------------------------------------------------------------- formatting

def test_fmt_pct():
    assert report.fmt_pct(0.91176) == "91.18"
    assert report.fmt_pct(1) == "100.00"
    assert report.fmt_pct(0) == "0.00"
    assert report.fmt_pct(None) == "–"
    assert report.fmt_pct(float("nan")) == "–"


def test_summary_rows_order_values_and_verdicts():
    rows = report.summary_rows(make_summary())
    assert [r["name"] for r in rows] == ["poisoned", "retrain", "ga", "npo", "rga"]
    assert [r["label"] for r in rows] == ["Poisoned", "Retrain", "GA", "NPO", "RGA"]
    ga = rows[2]
    assert ga["cacc"] == pytest.approx(0.9118) and ga["pacc"] == pytest.approx(0.5008)
    assert ga["lfr"] == 0.0 and ga["delta_pacc"] == pytest.approx(0.4112)
    assert ga["verdict"] == "trigger shifted → negative"
    assert rows[0]["verdict"] == "backdoor remains"
    # old summaries (no "partly" key, "no shift") are graded from the ASRs: RGA's equals Retrain's
    assert rows[4]["verdict"] == "backdoor removed" and rows[1]["verdict"] == "backdoor removed"
    assert [r["verdict_kind"] for r in rows] == ["remains", "removed", "shifted", "removed", "removed"]
    assert all(r["error"] is None for r in rows)


def test_summary_rows_graded_verdicts():
    from rga_engine.metrics import trigger_shift

    s = make_summary()
    names = s["label_names"]
    # an old entry whose ASR is 25 points over Retrain's: the backdoor partly remains
    s["models"]["npo"]["asr"] = 0.3216
    # a new (graded) entry from the engine, and one that collapsed to one class
    s["models"]["rga"]["trigger_shift"] = trigger_shift([[75, 25], [0, 100]], [[90, 10], [10, 90]], 1, asr=0.25,
                                                        retrain_asr=0.0716, label_names=names)
    s["models"]["ga"]["confusion_clean"] = [[100, 0], [100, 0]]
    rows = {r["name"]: r for r in report.summary_rows(s)}
    assert rows["npo"]["verdict"] == "backdoor partly remains (ASR 32.2 %)"
    assert rows["rga"]["verdict"] == "backdoor partly remains (ASR 25.0 %)" and rows["rga"]["verdict_kind"] == "partly"
    assert rows["ga"]["verdict"] == "predicts negative for everything" and rows["ga"]["verdict_kind"] == "collapsed"
    text = report.run_markdown(s)
    assert "| RGA | 89.73 | 7.16 | 89.64 | 7.16 | 1.56 | backdoor partly remains (ASR 25.0 %) |" in text


def test_summary_rows_failed_method_and_fallbacks():
    s = make_summary(ga_error="loss is NaN at step 40")
    del s["models"]["npo"]["paper_lfr"]  # computed from lfr (non-target class) when absent
    s["models"]["npo"]["delta_pacc"] = None  # computed from Retrain's PACC when absent
    rows = {r["name"]: r for r in report.summary_rows(s)}
    assert rows["ga"]["error"] == "loss is NaN at step 40" and rows["ga"]["cacc"] is None
    assert rows["npo"]["lfr"] == pytest.approx(0.0333)
    assert rows["npo"]["delta_pacc"] == pytest.approx(abs(0.6408 - 0.9120))


def test_summary_rows_status_of_cancelled_and_not_run():
    s = make_summary()
    for m in ("npo", "rga"):
        del s["models"][m]
    s["errors"] = {"unlearn:npo": "cancelled"}
    rows = {r["name"]: r for r in report.summary_rows(s)}
    assert rows["ga"]["status"] == "ok"
    assert rows["npo"]["status"] == "cancelled"
    assert rows["rga"]["status"] == "not run" and rows["rga"]["error"] is None
    text = report.run_markdown(s)
    assert "| NPO | cancelled |" in text and "| RGA | not run |" in text


def test_results_markdown_single_run_layout():
    md = report.results_markdown([make_summary()])
    header = table_rows(md)[0]
    assert header[:4] == ["Model", "Dataset", "Attack", "Seeds"]
    assert header[4:7] == ["Retrain CACC", "Retrain LFR", "Retrain PACC"]
    assert header[7:11] == ["GA CACC", "GA LFR", "GA PACC", "GA ΔPACC"]
    assert header[-2:] == ["Poisoned CACC", "Poisoned ASR"]
    assert cell(md, "Dataset") == "SST-2" and cell(md, "Attack") == "BadNets"
    assert cell(md, "Retrain PACC") == "91.20"
    assert cell(md, "Retrain LFR") == "7.16"
    assert cell(md, "GA PACC") == "50.08"
    assert cell(md, "GA ΔPACC") == "41.12"
    assert cell(md, "RGA ΔPACC") == "**1.56**"  # the lowest ΔPACC is bold, as in the paper
    assert cell(md, "Poisoned ASR") == "100.00"
    assert "±" not in md
    # the verdicts under the table, one line per group
    assert ("- tiny · SST-2 · BadNets: Poisoned backdoor remains · Retrain backdoor removed · "
            "GA trigger shifted → negative · NPO backdoor removed · RGA backdoor removed") in md


def test_results_markdown_mean_and_sample_std_over_seeds():
    runs = [make_summary(seed=s, rga_pacc=p) for s, p in ((2021, 0.88), (2022, 0.90), (2023, 0.92))]
    md = report.results_markdown(runs)
    assert len(table_rows(md)) == 3  # header, rule, one group
    assert cell(md, "Seeds") == "2021, 2022, 2023"
    assert cell(md, "RGA PACC") == "90.00 ± 2.00"  # sample std of 88, 90, 92
    assert cell(md, "GA PACC") == "50.08 ± 0.00"
    # ΔPACC: |88-91.2|, |90-91.2|, |92-91.2| = 3.2, 1.2, 0.8 -> mean 1.73, sample std 1.29
    assert cell(md, "RGA ΔPACC") == "**1.73 ± 1.29**"
    assert "mean ± sample standard deviation" in md
    assert "GA trigger shifted → negative (×3)" in md
    twice = report.results_markdown([make_summary(), make_summary()])
    assert cell(twice, "Seeds") == "2021"  # a re-run of a seed is the same experiment: counted once
    assert "seed 2021: 2 runs, the latest is used" in twice


def test_results_markdown_groups_and_failures():
    runs = [make_summary(), make_summary(dataset="hsol", preset="demo-hsol-badnets", ga_error="loss | is NaN")]
    md = report.results_markdown(runs)
    assert len(table_rows(md)) == 4
    assert cell(md, "Dataset", 1) == "HSOL"
    assert cell(md, "GA CACC", 1) == "failed: loss \\| is NaN"
    assert cell(md, "GA PACC", 1) == ""
    assert "unlearn:ga failed" in md


def test_results_markdown_failure_in_one_seed_keeps_the_others():
    runs = [make_summary(seed=2021), make_summary(seed=2022, ga_error="boom")]
    md = report.results_markdown(runs)
    assert cell(md, "GA PACC") == "50.08"  # the seed that finished
    assert "seed 2022: unlearn:ga failed: boom" in md


def test_results_markdown_cancelled_and_empty():
    s = make_summary()
    del s["models"]["rga"]
    s["errors"] = {"unlearn:rga": "cancelled"}
    s["status"] = "cancelled"
    md = report.results_markdown([s])
    assert cell(md, "RGA CACC") == "cancelled"
    assert "run cancelled" in md
    assert report.results_markdown([]).strip() == "_no runs_"


def test_load_summary_errors(tmp_path):
    with pytest.raises(ReportError, match="no such run folder"):
        report.load_summary(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="no summary.json"):
        report.load_summary(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "summary.json").write_text("{not json")
    with pytest.raises(ReportError, match="not valid JSON"):
        report.load_summary(bad)
    (bad / "summary.json").write_text("[1, 2]")
    with pytest.raises(ReportError, match="not a run summary"):
        report.load_summary(bad)
    for exc in (ReportError("x"),):
        assert isinstance(exc, ValueError)


def test_load_and_write_results_md(tmp_path):
    s = make_summary()
    (tmp_path / "summary.json").write_text(json.dumps(s))
    assert report.load_summary(tmp_path) == s
    assert report.load_summary(tmp_path / "summary.json") == s
    path = report.write_results_md(tmp_path, s)
    text = path.read_text()
    assert path.name == "results.md"
    assert text.startswith("# Results: demo-sst2-badnets")
    assert "| GA | 91.18 | 0.00 | 50.08 | 0.00 | 41.12 | trigger shifted → negative | 1.0 |" in text
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_report_does_not_import_rich():
    code = "import sys, rga_engine.report; print('rich' in sys.modules or 'textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
