"""CUBE's detection in the run folder: ``detection.csv`` (one line per ``train_poisoned`` row) and
``detection.svg`` (the 2-D scatter), written by the ``detect`` stage (``unlearn.forget_set = "cube"``).

``detection.csv``: ``row,label,poisoned,flagged,x,y`` -- the row's index in ``train_poisoned``, its
training label, 1/0 for truly poisoned and for flagged by CUBE, and its 2-D coordinates
(:func:`rga_engine.cube.project_2d`: a 2-component UMAP of the space HDBSCAN clustered). ``x`` and
``y`` are empty for rows outside the drawn sample (more than ``cube.SCATTER_ROWS`` rows) and for a
detection without a picture (umap-learn missing, or loaded from a cache file written before the
picture existed).

``detection.svg`` is hand-written SVG (no plotting library): clean rows, clean rows flagged,
poisoned rows missed and poisoned rows flagged, each in its own colour, with the scores above.

Pure Python (csv, no numpy): the app reads the CSV with :func:`read_points`.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

from rga_engine.report import write_text_atomic

CSV_NAME = "detection.csv"
SVG_NAME = "detection.svg"
COLUMNS = ("row", "label", "poisoned", "flagged", "x", "y")

# (key, legend label, SVG colour), in drawing order: the rare kinds go on top
KINDS: tuple[tuple[str, str, str], ...] = (
    ("clean", "clean", "#9aa7b8"),
    ("false_alarm", "clean · flagged", "#f28e2b"),
    ("missed", "poisoned · missed", "#d62728"),
    ("caught", "poisoned · flagged", "#2ca02c"),
)
KIND_LABELS = {k: label for k, label, _ in KINDS}


def kind(poisoned: bool, flagged: bool) -> str:
    """``clean``, ``false_alarm`` (clean, flagged), ``missed`` (poisoned, kept) or ``caught``."""
    if poisoned:
        return "caught" if flagged else "missed"
    return "false_alarm" if flagged else "clean"


def write_csv(path: Path, labels: Sequence[int], poisoned: Sequence[bool], flagged: Sequence[bool],
              rows: Iterable[int] | None = None, xy: Sequence[Sequence[float]] | None = None) -> None:
    """``detection.csv``: every row, with coordinates for ``rows`` (``xy[i]`` belongs to ``rows[i]``)."""
    coords: dict[int, tuple[float, float]] = {}
    if rows is not None and xy is not None:
        coords = {int(r): (float(p[0]), float(p[1])) for r, p in zip(rows, xy)}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for i, (lab, p, f) in enumerate(zip(labels, poisoned, flagged)):
        x, y = (f"{coords[i][0]:.4f}", f"{coords[i][1]:.4f}") if i in coords else ("", "")
        w.writerow((i, int(lab), int(bool(p)), int(bool(f)), x, y))
    write_text_atomic(Path(path), buf.getvalue())


def read_points(path: Path) -> tuple[list[tuple[float, float, str]], dict[str, int]]:
    """``(points, counts)`` from a ``detection.csv``: ``(x, y, kind)`` for every row with finite
    coordinates, in file order, and the number of rows of each kind over all rows. A row without
    coordinates counts but is not drawn; a missing file raises ``OSError``, a file that is not
    CSV text ``ValueError``."""
    points: list[tuple[float, float, str]] = []
    counts = {k: 0 for k, _, _ in KINDS}
    with Path(path).open(encoding="utf-8", newline="") as fh:
        try:
            for rec in csv.DictReader(fh):
                k = kind(rec.get("poisoned") == "1", rec.get("flagged") == "1")
                counts[k] += 1
                try:
                    x, y = float(rec["x"]), float(rec["y"])
                except (KeyError, TypeError, ValueError):
                    continue
                if math.isfinite(x) and math.isfinite(y):
                    points.append((x, y, k))
        except csv.Error as e:
            raise ValueError(f"{Path(path).name}: {e}") from None
    return points, counts


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def svg_text(points: Sequence[tuple[float, float, str]], counts: dict[str, int], title: str,
             subtitle: str = "", width: int = 640, height: int = 520) -> str:
    """The scatter as an SVG document (deterministic: same input, same bytes)."""
    top, pad, legend_h = 52, 16, 28
    plot_w, plot_h = width - 2 * pad, height - top - pad - legend_h
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif">',
           f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
           f'<text x="{pad}" y="22" font-size="15" font-weight="bold">{_esc(title)}</text>']
    if subtitle:
        out.append(f'<text x="{pad}" y="42" font-size="12" fill="#444444">{_esc(subtitle)}</text>')
    out.append(f'<rect x="{pad}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#cccccc"/>')
    if points:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        sx = (plot_w - 12) / (x1 - x0) if x1 > x0 else 0.0
        sy = (plot_h - 12) / (y1 - y0) if y1 > y0 else 0.0
        for k, _, colour in KINDS:
            pts = [p for p in points if p[2] == k]
            if not pts:
                continue
            out.append(f'<g fill="{colour}" fill-opacity="0.75">')
            for x, y, _ in pts:
                cx = pad + 6 + (x - x0) * sx if sx else pad + plot_w / 2
                cy = top + plot_h - 6 - (y - y0) * sy if sy else top + plot_h / 2
                out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2"/>')
            out.append("</g>")
    else:
        out.append(f'<text x="{width / 2:.0f}" y="{top + plot_h / 2:.0f}" font-size="13" text-anchor="middle" '
                   f'fill="#666666">no 2-D coordinates (umap-learn missing, or an older cached detection)</text>')
    lx, ly = pad, height - pad - 6
    for k, label, colour in KINDS:
        text = f"{label} {counts.get(k, 0)}"
        out.append(f'<circle cx="{lx + 5}" cy="{ly - 4}" r="5" fill="{colour}"/>')
        out.append(f'<text x="{lx + 14}" y="{ly}" font-size="12">{_esc(text)}</text>')
        lx += 24 + 7 * len(text)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_files(run_dir: Path, labels: Sequence[int], poisoned: Sequence[bool], flagged: Sequence[bool],
                projection: tuple[Any, Any] | None, title: str, subtitle: str = "") -> None:
    """``detection.csv`` and ``detection.svg`` in ``run_dir`` (``projection``: ``(rows, xy)`` or None)."""
    run_dir = Path(run_dir)
    rows, xy = projection if projection is not None else (None, None)
    write_csv(run_dir / CSV_NAME, labels, poisoned, flagged, rows, xy)
    points, counts = read_points(run_dir / CSV_NAME)
    drawn = f" · {len(points)} of {len(poisoned)} rows drawn" if points and len(points) < len(poisoned) else ""
    write_text_atomic(run_dir / SVG_NAME, svg_text(points, counts, title, subtitle + drawn))
