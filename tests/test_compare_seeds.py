"""benchmarks/compare_seeds.py on hand-made seeds.py folders: pairing, pass counts, the discordant
seeds and their exact McNemar test, "same models", and one-line errors on bad folders."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from seed_runs import make_summary, write_run  # tests/seed_runs.py

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"

_spec = importlib.util.spec_from_file_location("compare_seeds", BENCH / "compare_seeds.py")
cmp = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cmp)


def test_mcnemar_and_wilson_match_known_values():
    # 6 discordant seeds all one way: 2 * (1/2)^6
    assert cmp.mcnemar_exact(6, 0) == pytest.approx(2 / 64)
    assert cmp.mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert cmp.mcnemar_exact(3, 1) == pytest.approx(2 * (1 + 4) / 16)
    assert cmp.mcnemar_exact(2, 2) == 1.0 and cmp.mcnemar_exact(0, 0) == 1.0
    lo, hi = cmp.wilson(12, 15)
    assert (round(100 * lo), round(100 * hi)) == (55, 93)
    assert cmp.wilson(5, 5)[1] == 1.0 and cmp.wilson(0, 5)[0] == 0.0


def test_compare_pairs_seeds_and_counts_discordant(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b1"
    for s in range(2021, 2027):
        # A: RGA overshoots at 2021 and 2022; B: RGA fine there, partly remains at 2024
        write_run(a, "demo-x", s, make_summary(s, rga_pacc=0.75 if s in (2021, 2022) else 0.81))
    for s in range(2021, 2024):
        write_run(b, "demo-x", s, make_summary(s))
    b2 = tmp_path / "b2"  # a side can be several folders (two seeds.py runs side by side)
    write_run(b2, "demo-x", 2024, make_summary(2024, rga_asr=0.30, rga_ts="remains"))
    # 2025: other poisoned model (only its unlearning should differ for "same")
    other = make_summary(2025)
    other["models"]["poisoned"]["cacc"] = 0.80
    write_run(b2, "demo-x", 2025, other)
    out = tmp_path / "cmp.md"

    assert cmp.main(["--a", str(a), "--b", str(b / "demo-x"), str(b2), "--label-a", "α 2", "--label-b", "α 3",
                     "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert out.read_text(encoding="utf-8") == text
    rows = {ln.split("|")[1].strip(): ln for ln in text.splitlines() if ln.startswith("| 20")}
    assert sorted(rows) == ["2021", "2022", "2023", "2024", "2025"]  # 2026: on side A only
    assert "**fail**" in rows["2021"].split("|")[2] and rows["2021"].split("|")[3].strip().endswith("pass")
    assert "partly" not in rows["2024"] and "remains" in rows["2024"]
    assert rows["2023"].rstrip().endswith("| same |") and rows["2025"].rstrip().endswith("| differ |")
    assert "α 2 3/5" in text and "α 3 4/5" in text
    assert "under α 2 only: 2024; under α 3 only: 2021-2022" in text
    assert f"on the 3 discordant seeds: p = {cmp.mcnemar_exact(1, 2):.3g}" in text
    assert "not paired (a run on one side only): 2026" in text

    # the whole check: a failing GA at 2023 on side A fails the check there, not RGA's part
    write_run(tmp_path / "c", "demo-x", 2023, make_summary(2023, ga_ts="none"))
    assert cmp.main(["--a", str(tmp_path / "c"), "--b", str(b), "--part", "check"]) == 0
    text = capsys.readouterr().out
    assert "**fail**: GA did not shift the trigger" in text and "A 0/1" in text and "B 1/1" in text


def test_bad_folders_are_one_line_errors(tmp_path, capsys):
    write_run(tmp_path / "two", "p1", 2021, make_summary())
    write_run(tmp_path / "two", "p2", 2021, make_summary())
    write_run(tmp_path / "one", "p1", 2022, make_summary(2022))
    cases = [(["--a", str(tmp_path / "nope"), "--b", str(tmp_path / "one")], "no such folder"),
             (["--a", str(tmp_path / "two"), "--b", str(tmp_path / "one")], "holds several presets (p1, p2)"),
             (["--a", str(tmp_path / "two" / "p1"), "--b", str(tmp_path / "one")], "no seed has a completed run on both"),
             (["--a", str(tmp_path / "two" / "p1"), str(tmp_path / "two" / "p2"), "--b", str(tmp_path / "one")],
              "seed 2021 is in both"),
             (["--a", str(tmp_path / "one"), "--b", str(tmp_path / "one"), "--seeds", "20x1"], "seeds:")]
    for argv, msg in cases:
        assert cmp.main(argv) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1, err
