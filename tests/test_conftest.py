"""tests/conftest.py runs the suite from the repository root, whatever directory pytest starts in."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_test_that_names_a_preset_by_a_relative_path_passes_from_another_directory(tmp_path):
    # this test loads presets/demo/sst2-badnets.toml by its root-relative path and expects the
    # preset's own error: without the chdir in conftest it gets "no such file" when pytest starts in
    # tmp_path. (It trains nothing: the test that trained a model here took 13 s of CPU, this ~3.)
    node = f"{ROOT / 'tests' / 'test_data.py'}::test_data_seed_out_of_range_names_the_key"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", node],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]



def test_the_slow_tests_start_first_the_longest_first():
    # under pytest-xdist the first worker takes the head of this order from the start, so a long
    # test never starts near the end; the others keep their collection order
    import pytest

    import conftest

    class Item:
        def __init__(self, name, slow=False, **hint):
            self.name, self.mark = name, (pytest.mark.slow(**hint).mark if slow else None)

        def get_closest_marker(self, name):
            return self.mark if name == "slow" else None

    items = [Item("a"), Item("b", True, seconds=30), Item("c"), Item("d", True, seconds=130), Item("e", True), Item("f")]
    conftest.pytest_collection_modifyitems(None, items)
    assert [i.name for i in items] == ["d", "e", "b", "a", "c", "f"]  # e: slow, no hint: 60 s
