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


def _engine_imports(path: Path) -> set[str]:
    """Every ``rga_engine.*`` module a source file imports at run time, at any depth (lazy imports
    included; ``if TYPE_CHECKING:`` blocks left out)."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and getattr(block.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(block)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:  # annotations only: never imported at run time
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "rga_engine":  # from rga_engine import config
            out |= {f"rga_engine.{a.name}" for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rga_engine"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("rga_engine")}
    return out


def test_config_methods_models_depend_one_way():
    """config → methods → models, never back: the registry and the model builders raise
    rga_engine.errors.ConfigError instead of importing config (the old import circle)."""
    engine = ROOT / "rga_engine"
    for path in [*sorted((engine / "methods").glob("*.py")), engine / "models.py", engine / "errors.py"]:
        back = {m for m in _engine_imports(path) if m == "rga_engine.config" or m.startswith("rga_engine.pipeline")}
        assert not back, f"{path.relative_to(ROOT)} imports {sorted(back)}"
    assert _engine_imports(engine / "errors.py") == set()

