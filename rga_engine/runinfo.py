"""Who writes a run folder, and whether that process is still alive.

The pipeline records a *process tag* -- ``{"pid", "host", "start"}`` (``start``: the process's
start time in clock ticks on Linux, so that a reused pid is not taken for the run) -- in the
``run_started`` event and in ``summary.json``.  A reader on the same host can then tell a run
that is still going from one whose process died without a word (SIGKILL, power loss, OOM
killer): its summary still says ``"running"``, but :func:`effective_status` says ``"stopped"``.
On another host the answer is unknown and the recorded status is shown as it is.

Pure standard library (``report``, the TUI's state and the home screen all use it).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

__all__ = ["effective_status", "process_alive", "process_tag", "writer_from_events"]


def _stat_fields(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2:].split()


def _start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None  # field 22 of stat: starttime
    except (IndexError, ValueError):
        return None


def process_tag() -> dict[str, Any]:
    """This process: pid, host name and (Linux) start time."""
    tag: dict[str, Any] = {"pid": os.getpid(), "host": socket.gethostname()}
    start = _start_ticks(os.getpid())
    if start is not None:
        tag["start"] = start
    return tag


def process_alive(tag: Any) -> bool | None:
    """True / False for a tagged process on this host; None when it cannot be known (no tag,
    another host, a platform without signals)."""
    if not isinstance(tag, dict):
        return None
    pid, host = tag.get("pid"), tag.get("host")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0 or host != socket.gethostname():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    except (OSError, AttributeError, ValueError):
        return None
    fields = _stat_fields(pid)
    if fields:
        if fields[0] in (b"Z", b"X"):  # killed, not yet reaped by its parent
            return False
        start = tag.get("start")
        if isinstance(start, int) and _start_ticks(pid) not in (None, start):
            return False  # the pid now belongs to another process
    return True


def effective_status(summary: Any) -> str:
    """A summary's ``status``, with ``"running"`` turned into ``"stopped"`` when its process is
    known to be gone."""
    if not isinstance(summary, dict):
        return ""
    status = str(summary.get("status") or "")
    if status == "running" and process_alive(summary.get("process")) is False:
        return "stopped"
    return status


def writer_from_events(path: str | Path, limit: int = 1 << 20) -> dict[str, Any] | None:
    """The process tag of the ``run_started`` event of an ``events.jsonl`` (read from its start)."""
    try:
        with Path(path).open("rb") as f:
            head = f.read(limit)
    except OSError:
        return None
    for line in head.splitlines():
        if b'"run_started"' not in line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            return None
        tag = event.get("process") if isinstance(event, dict) else None
        return tag if isinstance(tag, dict) else None
    return None
