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



def test_presets_and_every_methods_params_are_read_without_torch():
    """Listing the presets (which validates each, ``[methods.*]`` included), every method's
    ``Params`` and a bad value's error import no torch (rga_engine/lazy.py): the app's check of a
    picked preset and the CLI's bad-input errors answer in well under a second, not after torch's
    2-4 s. A method's step still gets the real torch (tests/test_methods.py)."""
    code = (
        "import sys\n"
        "from rga_tui.presets import discover_presets\n"
        "from rga_engine.config import ConfigError, load\n"
        "from rga_engine.methods import REGISTRY, build, method_params\n"
        "infos = discover_presets()\n"
        "assert len(infos) > 30 and not [i.error for i in infos if i.error], infos\n"
        "for name in REGISTRY:\n"
        "    method_params(name, {})\n"
        "try:\n"
        "    load('presets/demo/sst2-badnets.toml', ['methods.rga.alpha=nan'])\n"
        "except ConfigError as e:\n"
        "    assert 'methods.rga.alpha' in str(e)\n"
        "m = build('rga', {})\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0 and "TORCH False" in r.stdout, r.stdout + r.stderr


def test_a_lazy_module_is_the_module_once_read():
    import torch
    import torch.nn.functional

    from rga_engine.lazy import F, LazyModule
    from rga_engine.lazy import torch as lazy_torch

    assert lazy_torch.no_grad is torch.no_grad and F.cross_entropy is torch.nn.functional.cross_entropy
    assert "cross_entropy" in vars(F)  # kept: the next read does not go through __getattr__
    fresh = LazyModule("json")
    assert fresh.dumps([1]) == "[1]"
    try:
        fresh.no_such_name
    except AttributeError as e:
        assert "no_such_name" in str(e)
    else:
        raise AssertionError("a missing attribute must raise AttributeError")
