"""The BadNets demos' seed tallies are written by hand in several places (README's table, the
results page's glance row, docs/presets.md, the preset's comment via scripts/make_presets.py); a
new block of seeds has to reach all of them. This reads each and asserts they tell the same
numbers, for the three BadNets demos and HSOL AddSent, whose settings were chosen by seed runs and
then measured at fresh seeds (SST-2 and AG News on a 1,600-row sample since 2026-12-05, HSOL with 10
masked-LM pre-training epochs since 2026-12-04, HSOL AddSent on HSOL BadNets' recipe since
2026-12-07)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# README's "at fresh seeds" and "all runs" cells: **n/N** (first–last[, first–last...]; c/C at the seeds that chose
# it ...) | ga/A · rga/A |
README_CELLS = re.compile(r"\| \*\*(\d+)/(\d+)\*\* \((\d{4})–(?:\d{4}, \d{4}–)*(\d{4}); (\d+)/(\d+) at the seeds that chose it[^|]*\) "
                          r"\| (\d+)/(\d+) · (\d+)/(\d+) \|$")


def _row(text: str, preset: str) -> str:
    """The preset's row in the page's first table that has one (README's demo table, the results
    page's glance table)."""
    rows = [line for line in text.splitlines() if line.startswith(f"| `{preset}` |")]
    assert rows, preset
    return rows[0]


@pytest.mark.parametrize("preset", ["demo/sst2-badnets", "demo/agnews-badnets", "demo/hsol-badnets", "demo/hsol-addsent"])
def test_the_demo_tally_is_the_same_everywhere(preset):
    readme = _row((ROOT / "README.md").read_text(encoding="utf-8"), preset)
    m = README_CELLS.search(readme)
    assert m, readme
    n, N, first, last, c, C, ga, A, rga, A2 = (int(x) for x in m.groups())
    # "all runs": the fresh ones and the ones that chose the settings
    assert A == A2 == N + C, readme
    assert last - first + 1 >= N and n <= N and c <= C and ga <= A and rga <= A

    glance = _row((ROOT / "docs" / "results.md").read_text(encoding="utf-8"), preset)
    want = f"{n}/{N} at fresh seeds, {n + c}/{A} in all, GA {ga}/{A}, RGA {rga}/{A}"
    assert want in glance, f"the results page's glance row for {preset} should say '{want}'"

    presets_md = (ROOT / "docs" / "presets.md").read_text(encoding="utf-8")
    assert f"`{preset}`: {n}/{N} fresh" in presets_md, f"docs/presets.md should say '`{preset}`: {n}/{N} fresh'"
    comment = (ROOT / "presets" / f"{preset}.toml").read_text(encoding="utf-8")
    assert f"{n}/{N} fresh" in comment, f"{preset}.toml's comment should say '{n}/{N} fresh'"
