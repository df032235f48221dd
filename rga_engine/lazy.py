"""``torch`` and ``torch.nn.functional`` imported on first use, for the unlearning methods' files.

Every ``config.load`` validates ``[methods.<name>]`` through the methods' ``Params`` dataclasses,
which live in the methods' files (one file per method). With torch imported at the top of those
files, listing the presets, the app's check of the preset the user picks and every bad-input
error of the CLI waited for torch (2-4 s on a 2-core CPU) and used none of it. The methods' code
reads ``torch.x`` / ``F.x`` as before; the first such read imports the module (the normal import,
through ``sys.modules``) and keeps the attribute, so a training step pays nothing.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """A stand-in for the module ``name`` that imports it on the first attribute read."""

    def __init__(self, name: str):
        self.__dict__["_name"] = name

    def _module(self) -> ModuleType:
        return importlib.import_module(self.__dict__["_name"])

    def __getattr__(self, attr: str) -> Any:  # only for attributes not yet kept
        value = getattr(self._module(), attr)
        self.__dict__[attr] = value  # the next read is a plain attribute read
        return value

    def __repr__(self) -> str:
        return f"<lazy module {self.__dict__['_name']!r}>"


torch = LazyModule("torch")
F = LazyModule("torch.nn.functional")

__all__ = ["F", "LazyModule", "torch"]
