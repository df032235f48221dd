"""The SST-2 demo's seed tally is written by hand in five places (README's table, the results
page's glance row, docs/presets.md, the preset's comment via scripts/make_presets.py); a new block
of seeds has to reach all of them. This reads each and asserts they tell the same numbers."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _row(text: str, preset: str) -> str:
    """The preset's row in the page's first table that has one (README's demo table, the results
    page's glance table)."""
    rows = [line for line in text.splitlines() if line.startswith(f"| `{preset}` |")]
    assert rows, preset
    return rows[0]


def test_the_sst2_demo_tally_is_the_same_everywhere():
    readme = _row((ROOT / "README.md").read_text(encoding="utf-8"), "demo/sst2-badnets")
    m = re.search(r"\| \*\*(\d+)/(\d+)\*\* \((\d{4})–(\d{4})\) \| (\d+)/(\d+) · (\d+)/(\d+) \|$", readme)
    assert m, readme
    fresh, all_ga, all_rga = m.group(1, 2), m.group(5, 6), m.group(7, 8)

    glance = _row((ROOT / "docs" / "results.md").read_text(encoding="utf-8"), "demo/sst2-badnets")
    g = re.search(r"(\d+)/(\d+) at fresh seeds, (\d+)/(\d+) in all, GA (\d+)/(\d+), RGA (\d+)/(\d+)", glance)
    assert g, "the results page's glance row no longer says '<n>/<N> at fresh seeds, ... in all, GA ..., RGA ...'"
    assert g.group(1, 2) == fresh and g.group(5, 6) == all_ga and g.group(7, 8) == all_rga

    presets_md = (ROOT / "docs" / "presets.md").read_text(encoding="utf-8")
    assert f"{fresh[0]}/{fresh[1]} fresh in all" in presets_md
    comment = (ROOT / "presets" / "demo" / "sst2-badnets.toml").read_text(encoding="utf-8")
    assert f"{fresh[0]}/{fresh[1]} fresh (the constant lr" in comment
    # the fresh runs plus the five seeds make the runs "in all"
    assert int(all_ga[1]) == int(fresh[1]) + 5 == int(all_rga[1]) == int(g.group(4))
