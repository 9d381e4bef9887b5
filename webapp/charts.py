"""The geometry of the small charts the pages draw as server-rendered SVG (``templates/_charts.html``): plain
Python, no Flask, no SQL. Each function takes the numbers and returns a dict the macros render: ``empty`` (no
data: the page says "No data yet" instead of an empty drawing), the drawing's ``width``/``height``, and one
entry per point, cell or bar with its value, its label and where it goes. Labels are returned as given: the
templates escape them (Jinja's autoescape), so a label is never markup."""
from __future__ import annotations

import math
from typing import Iterable, Sequence

PAD = 4  # room around the drawing so that points and strokes are not cut
AXIS = 14  # room under the bars for their labels


def _scale(value: float, top: float, span: float) -> float:
    """``value`` of ``0..top`` as a length of ``0..span`` (a zero top draws nothing)."""
    return round(span * value / top, 2) if top > 0 else 0.0


def _every(n: int, most: int) -> int:
    """Label every k-th of ``n`` positions so that at most ``most`` labels show."""
    return max(1, math.ceil(n / most)) if n else 1


def sparkline(values: Sequence[float | None], labels: Sequence[str], *, width: int = 300,
              height: int = 48) -> dict:
    """A line through ``values`` (left to right, e.g. oldest to newest); ``None`` leaves a gap. The line spans
    the values' own range (min at the bottom, max at the top); equal values (or one) sit in the middle."""
    known = [v for v in values if v is not None]
    result = {"empty": not known, "width": width, "height": height, "points": [], "path": "",
              "min": min(known) if known else None, "max": max(known) if known else None}
    if not known:
        return result
    low, high, n = result["min"], result["max"], len(values)
    step = (width - 2 * PAD) / (n - 1) if n > 1 else 0
    path, pen_up = [], True
    for i, (value, label) in enumerate(zip(values, labels)):
        if value is None:
            pen_up = True
            continue
        x = round(PAD + i * step if n > 1 else width / 2, 2)
        y = round(height / 2 if high == low else PAD + (high - value) / (high - low) * (height - 2 * PAD), 2)
        result["points"].append({"x": x, "y": y, "value": value, "label": label})
        path.append(f"{'M' if pen_up else 'L'}{x},{y}")
        pen_up = False
    result["path"] = " ".join(path) if len(result["points"]) > 1 else ""
    return result


def strip(cells: Iterable[dict], *, cell: int = 14, gap: int = 2, height: int = 20) -> dict:
    """One square per cell, left to right. Each cell is a dict with at least ``label`` and ``state`` (its
    colour, a CSS class ``s-<state>``); ``href`` and ``current`` (this page's own cell, drawn marked) are
    kept as given."""
    placed = [{**c, "x": PAD + i * (cell + gap), "w": cell} for i, c in enumerate(cells)]
    width = PAD * 2 + len(placed) * (cell + gap) - gap if placed else 0
    return {"empty": not placed, "width": max(width, 0), "height": height + 2 * PAD, "cells": placed,
            "y": PAD, "h": height}


def bars(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], *,
         top: float | None = None, width: int = 600, height: int = 120, ticks: int = 12) -> dict:
    """Bars side by side for each label, one per series (``[(name, values)]``, values aligned with
    ``labels``; ``None`` counts as 0). Heights are proportional to ``top`` (default: the largest value).
    Empty when no value is above 0."""
    values = [[v or 0 for v in vals] for _, vals in series]
    largest = max((v for vals in values for v in vals), default=0)
    top = top if top is not None else largest
    plot = height - AXIS - PAD
    group = (width - 2 * PAD) / len(labels) if labels else 0
    bar = max(group * 0.8 / max(len(series), 1), 1)
    every = _every(len(labels), ticks)
    groups = []
    for i, label in enumerate(labels):
        x0 = PAD + i * group + group * 0.1
        members = []
        for k, (name, _) in enumerate(series):
            h = _scale(values[k][i], top, plot)
            members.append({"name": name, "value": series[k][1][i], "x": round(x0 + k * bar, 2),
                            "y": round(PAD + plot - h, 2), "w": round(bar, 2), "h": h, "series": k})
        groups.append({"label": label, "bars": members, "tick": i % every == 0,
                       "cx": round(PAD + (i + 0.5) * group, 2)})
    return {"empty": largest <= 0, "width": width, "height": height, "top": top, "base": PAD + plot,
            "groups": groups, "series": [name for name, _ in series]}


def stacked_bars(labels: Sequence[str], series: Sequence[tuple[str, Sequence[int]]], *, width: int = 600,
                 height: int = 140, ticks: int = 14) -> dict:
    """One bar per label, its series (``[(name, counts)]``) stacked from the bottom in the order given; the
    tallest bar fills the height. Empty when every total is 0."""
    totals = [sum(vals[i] or 0 for _, vals in series) for i in range(len(labels))]
    top = max(totals, default=0)
    plot = height - AXIS - PAD
    group = (width - 2 * PAD) / len(labels) if labels else 0
    every = _every(len(labels), ticks)
    groups = []
    for i, label in enumerate(labels):
        y, parts = PAD + plot, []
        for k, (name, vals) in enumerate(series):
            h = _scale(vals[i] or 0, top, plot)
            y = round(y - h, 2)
            parts.append({"name": name, "value": vals[i] or 0, "y": y, "h": h, "series": k})
        groups.append({"label": label, "total": totals[i], "x": round(PAD + i * group + group * 0.1, 2),
                       "w": round(group * 0.8, 2), "parts": parts, "tick": i % every == 0,
                       "cx": round(PAD + (i + 0.5) * group, 2)})
    return {"empty": top <= 0, "width": width, "height": height, "top": top, "base": PAD + plot,
            "groups": groups, "series": [name for name, _ in series]}


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile (0 < p ≤ 100) of ``values``; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)), 1) - 1]
