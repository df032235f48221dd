"""Text from presets and datasets, made safe to print: control characters escaped.

A preset's description or a dataset row can hold terminal escape sequences (set the window
title, clear the screen, move the cursor) or bidirectional overrides; printed raw, the terminal
obeys them. :func:`printable` shows them as ``\\x1b``, ``\\u202e`` instead. Pure Python.
"""

from __future__ import annotations

import re

__all__ = ["json_printable", "printable"]

# C0 and C1 control characters, DEL, and the bidirectional embeddings / overrides / isolates
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match) -> str:
    c = m.group(0)
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def printable(text: object, keep: str = "") -> str:
    """``text`` with every control character escaped, except those in ``keep`` (e.g. ``"\\n"``)."""
    s = str(text)
    if keep:
        return _CONTROL.sub(lambda m: m.group(0) if m.group(0) in keep else _escape(m), s)
    return _CONTROL.sub(_escape, s)


_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def json_printable(text: str) -> str:
    """A JSON document (``ensure_ascii=False``) with the control characters JSON leaves raw (DEL,
    C1, bidi overrides) written as ``\\uXXXX`` escapes: the same JSON value, safe on a terminal."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)
