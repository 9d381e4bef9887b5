"""A small server-rendered line chart of a test's durations (no JavaScript): the template draws the SVG from
these numbers, with a text alternative and the same numbers in a table."""
from __future__ import annotations

import math

WIDTH, HEIGHT, PAD = 600, 140, 24


def _nice(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    step = 10.0 ** math.floor(math.log10(value))
    for factor in (1, 2, 2.5, 5, 10):
        if value <= step * factor * (1 + 1e-9):
            return float(f"{step * factor:.6g}")
    return float(f"{step * 10:.6g}")


def durations(points: list[dict]) -> dict:
    """``points``: oldest first, each ``{"run_id", "duration", "outcome"}``. Gives the chart's geometry:
    ``line`` (the polyline's points), ``dots`` (x, y, a title), ``top`` (the axis maximum) and ``summary``."""
    values = [float(p["duration"] or 0.0) for p in points]
    top = _nice(max(values, default=0.0))
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    step = inner_w / (len(values) - 1) if len(values) > 1 else 0
    dots = []
    for i, (point, value) in enumerate(zip(points, values)):
        x = PAD + (i * step if len(values) > 1 else inner_w / 2)
        y = PAD + inner_h - (value / top) * inner_h
        title = f"Run #{point['run_id']}: {value:.3f} s ({point['outcome']})"
        dots.append({"x": round(x, 1), "y": round(y, 1), "run_id": point["run_id"], "value": value,
                     "outcome": point["outcome"], "title": title})
    if values:
        summary = (f"Duration of the last {len(values)} results: from {min(values):.3f} s to {max(values):.3f} s, "
                   f"latest {values[-1]:.3f} s.")
    else:
        summary = "No durations recorded yet."
    return {"width": WIDTH, "height": HEIGHT, "pad": PAD, "top": top, "bottom": HEIGHT - PAD, "right": WIDTH - PAD,
            "line": " ".join(f"{d['x']},{d['y']}" for d in dots), "dots": dots, "summary": summary}
