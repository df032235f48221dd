"""Preset discovery, shared by the command line (``rga-tui presets``) and the Textual app.

Presets are TOML files found (recursively) under:

1. the packaged ``presets/`` folder (next to the ``rga_tui`` package's parent: the repository root
   of an editable install),
2. ``./presets`` in the current directory,
3. any extra folders the user names (``--presets DIR``).

A file whose name starts with ``_`` is a base that other presets ``extends`` and is skipped, as is
anything under a folder whose name starts with ``_`` or ``.``.  A preset that fails to load is
listed with its one-line error instead of being fatal.  This module never imports textual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

__all__ = ["PresetInfo", "PresetDirError", "default_preset_dirs", "discover_presets", "resolve_preset"]


class PresetDirError(ValueError):
    """A user-named presets folder that does not exist (one-line, user-facing)."""


@dataclass
class PresetInfo:
    name: str  # relative to its presets folder, without .toml: "demo/sst2-badnets"
    group: str  # first folder of the name ("demo"), "" for a top-level file
    path: Path
    dataset: str = ""
    attack: str = ""
    model: str = ""
    methods: list[str] = field(default_factory=list)
    description: str = ""
    error: str = ""  # one line; "" when the preset loads
    recommended: bool = False  # ``recommended = true`` in the file itself: the app opens on it

    @property
    def ok(self) -> bool:
        return not self.error

    def line(self) -> str:
        """One display line (used by ``rga-tui presets``)."""
        if self.error:
            return f"{self.name}  error: {self.error}"
        return "  ".join(
            [self.name, self.dataset, self.attack, self.model, ",".join(self.methods), self.description]
        ).rstrip()


def packaged_presets_dir() -> Path:
    """The presets shipped with the package: ``rga_tui/presets``, in a wheel (``pip install .``)
    a copy of the repository's ``presets/`` folder, in a checkout a link to it (resolved, so that
    paths read ``presets/demo/...``)."""
    return (Path(__file__).resolve().parent / "presets").resolve()


def default_preset_dirs() -> list[Path]:
    """The packaged folder and ``./presets``, those that exist, without duplicates."""
    out: list[Path] = []
    for d in (packaged_presets_dir(), Path.cwd() / "presets"):
        if d.is_dir() and all(d.resolve() != o.resolve() for o in out):
            out.append(d)
    return out


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[0] if lines else ""


def _skipped(rel: Path) -> bool:
    if rel.name.startswith("_"):
        return True
    return any(part.startswith(("_", ".")) for part in rel.parts[:-1])


def load_info(path: Path, name: str) -> PresetInfo:
    """Read one preset's headline fields; a preset that does not load carries its error."""
    group = name.split("/", 1)[0] if "/" in name else ""
    info = PresetInfo(name=name, group=group, path=path)
    try:
        from rga_engine import config

        cfg = config.load(path, allow_remote_code=True)  # listing builds no model: nothing runs
    except Exception as e:  # noqa: BLE001 - a broken preset is listed, never fatal
        info.error = _one_line(str(e)) or type(e).__name__
        return info
    info.dataset = cfg.data.dataset
    info.attack = cfg.attack.name
    info.model = cfg.model.name
    info.methods = list(cfg.unlearn.methods)
    info.description = _one_line(cfg.description)
    try:
        info.recommended = config.load_raw_file(path).get("recommended") is True
    except Exception:  # noqa: BLE001 - it loaded a moment ago; a race is not worth an error
        info.recommended = False
    return info


def discover_presets(extra_dirs: Iterable[str | Path] = (), *, strict: bool = False) -> list[PresetInfo]:
    """Every preset under the default folders and `extra_dirs`, in folder order, then by name.

    A file reachable from two folders is listed once.  With ``strict`` a missing extra folder
    raises :class:`PresetDirError`; otherwise it is ignored.
    """
    dirs = default_preset_dirs()
    for d in extra_dirs:
        p = Path(d).expanduser()
        if not p.is_dir():
            if strict:
                raise PresetDirError(f"--presets {d}: no such folder")
            continue
        dirs.append(p)
    seen: set[Path] = set()
    out: list[PresetInfo] = []
    for root in dirs:
        found = []
        for f in sorted(root.rglob("*.toml")):
            rel = f.relative_to(root)
            if _skipped(rel) or not f.is_file():
                continue
            real = f.resolve()
            if real in seen:
                continue
            seen.add(real)
            found.append((rel.with_suffix("").as_posix(), f))
        out.extend(load_info(f, name) for name, f in sorted(found))
    return out


def resolve_preset(text: str | Path, extra_dirs: Iterable[str | Path] = ()) -> Path:
    """A preset argument as a path: an existing file, else a discovered preset's name
    (``demo/sst2-badnets``, with or without ``.toml``).  Unknown names come back unchanged, so
    that loading them gives the usual "no such file" error."""
    p = Path(text).expanduser()
    if p.is_file():
        return p
    key = str(text).removesuffix(".toml")
    for info in discover_presets(extra_dirs):
        if info.name == key:
            return info.path
    return p
