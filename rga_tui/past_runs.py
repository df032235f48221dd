"""Past runs for the home screen: the run folders under the output folder, with their status."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass
class RunInfo:
    path: Path
    name: str
    status: str
    mtime: float


def _has_finished(events_file: Path) -> bool:
    """Whether the last part of an events.jsonl holds a run_finished event (cheap: reads the tail)."""
    try:
        with events_file.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 65536))
            return b'"run_finished"' in f.read()
    except OSError:
        return False


def list_runs(out_dir: Path) -> list[RunInfo]:
    """Run folders (with an events.jsonl) under ``out_dir``, newest first."""
    runs = []
    if not out_dir.is_dir():
        return runs
    from rga_engine.runinfo import effective_status, process_alive, writer_from_events

    for ev in out_dir.glob("*/events.jsonl"):
        d = ev.parent
        status = "partial"
        summ = d / "summary.json"
        if summ.is_file():
            try:
                summary = json.loads(summ.read_text(encoding="utf-8"))
                status = (effective_status(summary) if isinstance(summary, dict) else "") or "finished"
            except (OSError, ValueError):
                status = "?"
        elif _has_finished(ev):
            status = "finished"
        elif process_alive(writer_from_events(ev)) is False:
            status = "stopped"  # died before its first summary (while loading the data)
        try:
            mtime = ev.stat().st_mtime
        except OSError:
            mtime = 0.0
        runs.append(RunInfo(d, d.name, status, mtime))
    runs.sort(key=lambda r: (-r.mtime, r.name))
    return runs
