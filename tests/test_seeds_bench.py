"""benchmarks/seeds.py without training: seed parsing, the issue-15 check on hand-made summaries,
--table-only over fake run folders, and resume / Ctrl-C with a fake ``pipeline.run``."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pytest
from seed_runs import make_summary, write_run  # tests/seed_runs.py

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "seeds.py"
_spec = importlib.util.spec_from_file_location("seeds_bench", SCRIPT)
seeds = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seeds)


# --------------------------------------------------------------------------- seeds
@pytest.mark.parametrize("text, want", [
    ("2021-2025", [2021, 2022, 2023, 2024, 2025]),
    ("2021,2023", [2021, 2023]),
    ("2021-2023,2030", [2021, 2022, 2023, 2030]),
    ("7", [7]),
    ("2022,2021-2023", [2022, 2021, 2023]),  # order kept, duplicates dropped
])
def test_parse_seeds(text, want):
    assert seeds.parse_seeds(text) == want
    assert seeds.parse_seeds(seeds.format_seeds(want)) == sorted(want)


@pytest.mark.parametrize("bad", ["20x", "2025-2021", "", ",", "2021-", "a-b"])
def test_parse_seeds_rejects(bad):
    with pytest.raises(argparse.ArgumentTypeError):
        seeds.parse_seeds(bad)


def test_format_seeds():
    assert seeds.format_seeds([2023, 2021, 2022, 2030]) == "2021-2023,2030"
    assert seeds.format_seeds([2021, 2023]) == "2021,2023"
    assert seeds.format_seeds([]) == ""


# --------------------------------------------------------------------------- the check
def test_check_passes():
    c = seeds.check(make_summary())
    assert (c["asr"], c["ga"], c["rga"], c["passed"], c["reasons"]) == (True, True, True, True, [])
    r = c["numbers"]["rga"]
    assert r["delta_pacc"] == pytest.approx(0.01) and r["cacc_gap"] == pytest.approx(-0.01)
    assert r["asr_excess"] == pytest.approx(0.04)


def test_check_boundaries_and_partly_pass():
    # exactly 3 points ΔPACC, exactly −2 points CACC, exactly +10 points ASR: float noise must not fail them
    s = make_summary(rga_pacc=0.83, rga_cacc=0.84, rga_asr=0.18)
    s["models"]["rga"]["trigger_shift"]["partly"] = True  # not part of the check
    c = seeds.check(s)
    assert c["passed"], c["reasons"]


@pytest.mark.parametrize("kwargs, part, reason", [
    ({"asr": 0.85}, "asr", "poisoned ASR 85.00 < 90"),
    ({"ga_ts": "none"}, "ga", "GA did not shift the trigger"),
    ({"ga_ts": "remains"}, "ga", "GA did not shift the trigger (backdoor remains)"),
    ({"rga_pacc": 0.84}, "rga", "RGA ΔPACC 4.00 > 3"),
    ({"rga_pacc": 0.76}, "rga", "RGA ΔPACC 4.00 > 3"),
    ({"rga_cacc": 0.835}, "rga", "RGA |CACC − Retrain| 2.50 > 2"),
    ({"rga_cacc": 0.885}, "rga", "RGA |CACC − Retrain| 2.50 > 2"),
    ({"rga_asr": 0.20}, "rga", "RGA ASR − Retrain +12.00 > 10"),
    ({"rga_ts": "shifted"}, "rga", "RGA shifted → negative"),
    ({"rga_ts": "remains"}, "rga", "RGA backdoor remains"),
    ({"retrain": False}, "rga", "no Retrain to compare with"),
])
def test_check_failure_reasons(kwargs, part, reason):
    c = seeds.check(make_summary(**kwargs))
    assert c[part] is False and not c["passed"]
    assert [p for p in ("asr", "ga", "rga") if c[p] is False] == [part]
    assert any(reason in r for r in c["reasons"]), c["reasons"]


def test_check_rga_asr_below_retrain_is_fine():
    assert seeds.check(make_summary(rga_asr=0.0))["passed"]


def test_check_missing_methods():
    no_npo = seeds.check(make_summary(methods=("ga", "rga")))
    assert no_npo["passed"] and no_npo["numbers"]["npo"] is None
    line = seeds.seed_line(2021, "12.0 s", no_npo)
    assert "NPO –" in line and line.rstrip().endswith("PASS")

    only_npo = seeds.check(make_summary(methods=("npo",)))
    assert (only_npo["ga"], only_npo["rga"], only_npo["passed"]) == (None, None, True)  # n/a, not a failure
    assert "GA –" in seeds.seed_line(2021, "resumed", only_npo)

    failed = seeds.check(make_summary(status="partial", errors={"unlearn:rga": "loss is NaN", "_skip": ("rga",)}))
    assert failed["rga"] is False and "RGA failed (loss is NaN)" in failed["reasons"]


def test_seed_line_fail_lists_reasons():
    line = seeds.seed_line(2022, "100.0 s", seeds.check(make_summary(asr=0.5, rga_pacc=0.9)))
    assert line.lstrip().startswith("s2022") and "ASR 50.00" in line and "GA 52.00 (shifted → negative)" in line
    assert "FAIL: poisoned ASR 50.00 < 90; RGA ΔPACC 10.00 > 3" in line


# --------------------------------------------------------------------------- --table-only
def table_row(md: str, preset: str) -> list[str]:
    line = next(x for x in md.splitlines() if x.startswith(f"| `{preset}`"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_table_only(tmp_path, capsys):
    out = tmp_path / "runs"
    for i, s in enumerate(range(2021, 2026)):
        write_run(out, "p-good", s, {**make_summary(s, ga_ts="none" if s == 2024 else "shifted"),
                                     "precision": "bf16" if s < 2024 else "fp32"}, wall=100.0 + i)
        write_run(out, "p-bad", s, make_summary(s, methods=("ga", "rga"), ga_ts="none" if s in (2022, 2023) else "shifted",
                                                rga_pacc=0.90 if s == 2025 else 0.81))
    write_run(out, "p-bad", 2026, make_summary(2026, status="running"))  # unfinished: not counted
    (out / "stray.txt").write_text("x")

    assert seeds.main(["--table-only", "--out", str(out)]) == 1
    md = (out / "seeds.md").read_text(encoding="utf-8")
    assert md in capsys.readouterr().out  # printed as written
    assert seeds.TABLE_HEAD in md
    good, bad = table_row(md, "p-good"), table_row(md, "p-bad")
    assert good[:5] == ["`p-good`", "2021-2025", "5/5", "4/5", "5/5"]
    assert good[5] == "1.00 ± 0.00" and good[6] == "52.00 ± 0.00" and good[9] == "80.00 ± 0.00"
    assert good[10] == "102.0 / 104.0"
    assert bad[:5] == ["`p-bad`", "2021-2025", "5/5", "3/5", "4/5"]
    assert bad[7] == "–" and bad[10] == "–"  # no NPO in this preset, no wall.json
    assert "### `p-good`: PASS" in md and "### `p-bad`: FAIL" in md
    assert "GA shifted 3/5 (needs 4)" in md and "RGA pass 4/5 (needs 5)" in md
    assert "s2025: RGA ΔPACC 10.00 > 3" in md
    # p-good: GA 4/5 -> P(Bin(5, .8) >= 4) = .737, the other parts 5/5; p-bad: GA 3/5 and RGA 4/5 -> .337 x .328
    assert "- chance that 5 seeds never run pass (these rates taken as the true ones, seeds and parts as " \
           "independent; an estimate from 5 runs): 0.74" in md
    assert "an estimate from 5 runs): 0.11" in md
    # which precision the runs trained in (dtype "auto" differs between CPUs); older runs lack it
    assert "- precision: bf16 (3 runs), fp32 (2 runs)" in md and "- precision: not recorded (5 runs)" in md

    doc = json.loads((out / "seeds.json").read_text(encoding="utf-8"))
    assert doc["passed"] is False
    by = {p["name"]: p for p in doc["presets"]}
    assert by["p-good"]["passed"] is True and by["p-bad"]["passed"] is False
    assert by["p-good"]["rates"]["ga"] == {"n": 4, "N": 5, "needed": 4, "passed": True}
    assert by["p-good"]["chance_of_passing"] == pytest.approx(0.8 ** 5 + 5 * 0.8 ** 4 * 0.2)
    assert by["p-bad"]["chance_of_passing"] == pytest.approx(0.8 ** 5 * (0.6 ** 5 + 5 * 0.6 ** 4 * 0.4))
    assert seeds.chance_of_passing({"asr": None, "ga": None, "rga": None}) is None
    runs = {r["seed"]: r for r in by["p-bad"]["runs"]}
    assert sorted(runs) == [2021, 2022, 2023, 2024, 2025]
    assert runs[2022]["ga"] is False and runs[2025]["rga"] is False and runs[2021]["passed"] is True
    assert runs[2021]["numbers"]["rga"]["delta_pacc"] == pytest.approx(0.01)

    # only the good preset (by seed selection too): exit 0; a requested seed without a run: exit 1
    good_only = tmp_path / "good"
    good_only.mkdir()
    (out / "p-good").rename(good_only / "p-good")
    assert seeds.main(["--table-only", "--out", str(good_only)]) == 0
    assert seeds.main(["--table-only", "--out", str(good_only), "--seeds", "2021,2022"]) == 0
    assert table_row((good_only / "seeds.md").read_text(), "p-good")[:5] == ["`p-good`", "2021-2022", "2/2", "2/2", "2/2"]
    assert seeds.main(["--table-only", "--out", str(good_only), "--seeds", "2021-2026"]) == 1
    assert "no completed run for seed 2026" in (good_only / "seeds.md").read_text()
    assert seeds.main(["--table-only", "--out", str(tmp_path / "empty")]) == 1


def test_rows_one_line_per_seed_with_leans_target_score_and_the_check(tmp_path, capsys):
    """--rows: one markdown row per seed with each model's numbers, the clean-row lean (clean
    negatives called the target, from confusion_clean), RGA's target_score, the check (its reason
    without a raw pipe, which would break the table) and the wall time; written to OUT/rows.md."""
    out = tmp_path / "runs"
    cm_retrain, cm_rga = [[90, 10], [5, 95]], [[80, 20], [5, 95]]  # leans 10 % and 20 %
    for s, rga_cacc in ((2021, 0.85), (2022, 0.89)):
        summ = make_summary(s, methods=("ga", "rga"), rga_cacc=rga_cacc)
        summ["models"]["retrain"]["confusion_clean"] = cm_retrain
        summ["models"]["rga"]["confusion_clean"] = cm_rga
        summ["models"]["rga"]["trigger_shift"]["target_score"] = -0.0234
        write_run(out, "p", s, summ, wall=123.45)
    assert seeds.main(["--table-only", "--rows", "--out", str(out)]) == 1  # 2022 fails: CACC gap 3 points
    rows = (out / "rows.md").read_text(encoding="utf-8")
    assert rows in capsys.readouterr().out
    lines = [ln for ln in rows.splitlines() if ln.startswith("| 202")]
    assert len(lines) == 2
    head = next(ln for ln in rows.splitlines() if ln.startswith("| seed"))
    assert "NPO" not in head and all(ln.count("|") == head.count("|") for ln in lines)  # no cell split by a pipe
    first = [c.strip() for c in lines[0].strip("|").split("|")]
    assert first == ["2021", "86.0 / 99.0", "86.0 / 80.0 / 8.0 / 10.0", "52.0 (shifted → negative)",
                     "85.0 / 81.0 / 1.00 / 12.0 / 20.0 (backdoor removed)", "-0.023", "pass", "123.5"]
    assert "**fail**: RGA CACC gap 3.00 > 2" in lines[1]
    assert seeds.lean({"confusion_clean": [[3, 1], [0, 4]]}, 1) == pytest.approx(0.25)
    assert seeds.lean({}, 1) is None and seeds.lean({"confusion_clean": [[1]]}, 3) is None


# --------------------------------------------------------------------------- running, resume, Ctrl-C
@pytest.fixture
def preset(tmp_path) -> Path:
    p = tmp_path / "one.toml"
    p.write_text('name = "t/one"\n[data]\ndataset = "sst2"\n[attack]\nname = "badnets"\n'
                 '[unlearn]\nmethods = ["ga", "npo", "rga"]\n', encoding="utf-8")
    return p


class FakeRun:
    """Stands in for ``pipeline.run``: writes what the pipeline writes, counts the calls."""

    def __init__(self, interrupt_at: int | None = None, fail: tuple[int, ...] = ()):
        self.calls: list[tuple[int, bool]] = []
        self.interrupt_at, self.fail = interrupt_at, fail

    def __call__(self, cfg, sink, should_stop, run_dir=None):
        seed = cfg.train.seed
        self.calls.append((seed, cfg.output.cache))
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=False)  # the script must have cleared any old folder
        (run_dir / "config.toml").write_text(cfg.to_toml(), encoding="utf-8")
        if seed == self.interrupt_at:
            (run_dir / "summary.json").write_text(json.dumps(make_summary(seed, status="cancelled")))
            raise KeyboardInterrupt
        s = make_summary(seed, rga_pacc=0.90 if seed in self.fail else 0.81)
        (run_dir / "summary.json").write_text(json.dumps(s), encoding="utf-8")
        return s


def test_resume_skips_finished_and_clears_half_written(tmp_path, preset, monkeypatch, capsys):
    out = tmp_path / "runs"
    write_run(out, "t-one", 2021, make_summary(2021), wall=50.0)  # finished earlier
    write_run(out, "t-one", 2022, make_summary(2022, status="running"))  # interrupted mid-run
    (out / "t-one" / "s2022" / "events.jsonl").write_text("{}\n")
    (out / "t-one" / "s2022" / "sub").mkdir()
    fake = FakeRun()
    monkeypatch.setattr(seeds.pipeline, "run", fake)

    assert seeds.main([str(preset), "--seeds", "2021-2023", "--out", str(out), "--no-cache"]) == 0
    assert fake.calls == [(2022, False), (2023, False)]
    assert not (out / "t-one" / "s2022" / "events.jsonl").exists() and not (out / "t-one" / "s2022" / "sub").exists()
    for s in (2022, 2023):
        w = json.loads((out / "t-one" / f"s{s}" / "wall.json").read_text())
        assert w["seed"] == s and w["wall_s"] >= 0 and w["cached"] == []
    assert json.loads((out / "t-one" / "s2021" / "wall.json").read_text()) == {"wall_s": 50.0}
    text = capsys.readouterr().out
    lines = [x for x in text.splitlines() if x.lstrip().startswith("s20")]
    assert len(lines) == 3 and all(x.rstrip().endswith("PASS") for x in lines)
    assert "resumed 50.0 s" in lines[0] and " s" in lines[1]
    assert table_row((out / "seeds.md").read_text(), "t-one")[:5] == ["`t-one`", "2021-2023", "3/3", "3/3", "3/3"]

    # everything finished: a second invocation runs nothing and still has the recorded times
    fake.calls.clear()
    assert seeds.main([str(preset), "--seeds", "2021-2023", "--out", str(out)]) == 0
    assert fake.calls == []
    assert table_row((out / "seeds.md").read_text(), "t-one")[10].endswith("/ 50.0")  # s2021's recorded time

    # a run that fails the check: exit 1 (the preset's cache setting, on, when neither flag is given)
    fake = FakeRun(fail=(2024,))
    monkeypatch.setattr(seeds.pipeline, "run", fake)
    assert seeds.main([str(preset), "--seeds", "2024", "--out", str(out)]) == 1
    assert fake.calls == [(2024, True)]
    assert "FAIL: RGA ΔPACC 10.00 > 3" in capsys.readouterr().out


def test_ctrl_c_stops_cleanly_and_resumes(tmp_path, preset, monkeypatch, capsys):
    out = tmp_path / "runs"
    fake = FakeRun(interrupt_at=2022)
    monkeypatch.setattr(seeds.pipeline, "run", fake)
    assert seeds.main([str(preset), "--seeds", "2021-2023", "--out", str(out), "--set", "unlearn.epochs=2"]) == 130
    assert [c[0] for c in fake.calls] == [2021, 2022]
    cap = capsys.readouterr()
    assert "interrupted" in cap.err and "Resume with" in cap.err
    assert table_row((out / "seeds.md").read_text(), "t-one")[:2] == ["`t-one`", "2021"]  # what exists is written
    assert "no completed run for seeds 2022-2023" in (out / "seeds.md").read_text()

    fake = FakeRun()
    monkeypatch.setattr(seeds.pipeline, "run", fake)
    assert seeds.main([str(preset), "--seeds", "2021-2023", "--out", str(out), "--set", "unlearn.epochs=2"]) == 0
    assert [c[0] for c in fake.calls] == [2022, 2023]


def test_bad_arguments(tmp_path, preset):
    with pytest.raises(SystemExit) as e:
        seeds.main([str(preset), "--set", "train.seed=1", "--out", str(tmp_path)])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        seeds.main(["--out", str(tmp_path)])  # no preset, no --table-only
    with pytest.raises(SystemExit):
        seeds.main([str(preset), "--seeds", "2021-20x", "--out", str(tmp_path)])
    assert seeds.main([str(tmp_path / "nope.toml"), "--out", str(tmp_path)]) == 2
