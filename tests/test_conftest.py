"""tests/conftest.py runs the suite from the repository root, whatever directory pytest starts in."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_test_that_names_a_preset_by_a_relative_path_passes_from_another_directory(tmp_path):
    # this test loads presets/demo/hsol-badnets.toml by its root-relative path: without the chdir
    # in conftest it fails with "no such file" when pytest starts in tmp_path
    node = f"{ROOT / 'tests' / 'test_pipeline.py'}::test_a_trigger_cut_from_a_few_rows_is_an_info_line"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", node],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
