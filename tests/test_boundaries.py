"""The engine never imports the UI stack; rga_tui imports the engine, never the reverse."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import rga_engine

ROOT = Path(__file__).resolve().parent.parent


def test_engine_imports_neither_textual_nor_rich_in_a_fresh_interpreter():
    code = (
        "import importlib, pkgutil, sys\n"
        "import rga_engine\n"
        "for m in pkgutil.walk_packages(rga_engine.__path__, 'rga_engine.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('textual', 'rich', 'rga_tui'))\n"
        "print('BAD', bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_engine_source_never_names_the_ui_packages():
    for m in pkgutil.walk_packages(rga_engine.__path__, "rga_engine."):
        spec = __import__("importlib").util.find_spec(m.name)
        src = Path(spec.origin).read_text(encoding="utf-8")
        for bad in ("import textual", "from textual", "import rich", "from rich", "import rga_tui", "from rga_tui"):
            assert bad not in src, f"{m.name} contains {bad!r}"
