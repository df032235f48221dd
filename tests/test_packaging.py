"""What a plain `pip install .` (not editable) gives a user: the presets and the datasets travel
inside the wheel, and the command finds them from any folder, by name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _source_copy(dst: Path) -> Path:
    """The files a wheel is built from, copied (links kept as links: ``rga_tui/presets``)."""
    dst.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, dst / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("rga_engine", "rga_tui", "presets"):
        shutil.copytree(ROOT / name, dst / name, symlinks=True, ignore=skip)
    return dst


def test_the_wheel_carries_every_preset_and_dataset_and_finds_them_from_any_folder(tmp_path):
    src = _source_copy(tmp_path / "src")
    assert (src / "rga_tui" / "presets").is_symlink()  # in a checkout: the repository's presets/
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1"}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, env=env, cwd=tmp_path,
                   capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("rga_tui-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    presets = {p.relative_to(ROOT / "presets").as_posix() for p in (ROOT / "presets").rglob("*.toml")}
    assert "demo/sst2-badnets.toml" in presets and "demo/_minilm.toml" in presets
    shipped = {n.removeprefix("rga_tui/presets/") for n in names if n.startswith("rga_tui/presets/")}
    assert shipped == presets  # every preset, the `extends` bases included, and nothing else
    data = {p.relative_to(ROOT).as_posix() for p in (ROOT / "rga_engine" / "data" / "embedded").rglob("*.jsonl.gz")}
    assert data and data <= names

    # "installed": the wheel unpacked onto PYTHONPATH, ahead of the editable checkout
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()  # no presets/ folder here
    run_env = {**env, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "rga_tui", *args], cwd=elsewhere, env=run_env,
                              capture_output=True, text=True, timeout=300)

    where = subprocess.run([sys.executable, "-c", "import rga_tui, rga_engine; print(rga_tui.__file__); "
                            "print(rga_engine.__file__)"], cwd=elsewhere, env=run_env, capture_output=True,
                           text=True, check=True).stdout.split()
    assert all(Path(w).is_relative_to(site) for w in where), where

    listed = cli("presets")
    assert listed.returncode == 0, listed.stderr
    names_listed = {ln.split()[0] for ln in listed.stdout.splitlines() if ln.strip()}
    assert {"demo/sst2-badnets", "demo/hsol-badnets", "demo/agnews-badnets"} <= names_listed
    assert len(names_listed) == len([p for p in presets if not any(s.startswith("_") for s in p.split("/"))])

    # a preset by name, with its `extends` base and its dataset, from the wheel alone
    inspected = cli("inspect", "demo/sst2-badnets", "--json")
    assert inspected.returncode == 0, inspected.stderr
    info = json.loads(inspected.stdout)
    assert (info["preset"], info["dataset"], info["source"]) == ("demo-sst2-badnets", "sst2", "embedded")
    assert info["splits"]["train_poisoned"] == {"rows": 1760, "labels": {"0": 765, "1": 995}, "poisoned": 160}
    assert info["splits"]["test_clean"]["rows"] == 1821


def test_in_a_checkout_a_presets_name_is_the_repositorys_file():
    from rga_tui.presets import resolve_preset

    # the package's presets link resolved: run folders and tables name presets/demo/..., as README does
    assert resolve_preset("demo/sst2-badnets") == ROOT / "presets" / "demo" / "sst2-badnets.toml"
