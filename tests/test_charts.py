"""The charts' geometry (webapp/charts.py): no data, one point, many; heights in proportion; labels kept as
given and escaped only by the templates."""
from __future__ import annotations

import pytest
from jinja2 import Environment, FileSystemLoader, select_autoescape

from webapp import charts

TEMPLATES = Environment(loader=FileSystemLoader("templates"), autoescape=select_autoescape(["html"]))


def macro(name):
    return getattr(TEMPLATES.get_template("_charts.html").module, name)


@pytest.mark.parametrize("values", [[], [None], [None, None]])
def test_a_sparkline_without_values_is_empty(values):
    chart = charts.sparkline(values, ["a"] * len(values))
    assert chart["empty"] and chart["points"] == [] and chart["path"] == ""
    assert "No data yet" in str(macro("sparkline")(chart, "Durations", "d")) and "<svg" not in str(
        macro("sparkline")(chart, "Durations", "d"))


def test_one_value_is_one_point_in_the_middle_without_a_line():
    chart = charts.sparkline([3.5], ["#1"], width=100, height=40)
    assert not chart["empty"] and chart["path"] == ""
    assert chart["points"] == [{"x": 50, "y": 20, "value": 3.5, "label": "#1"}]


def test_many_values_span_the_height_oldest_left_and_gaps_lift_the_pen():
    chart = charts.sparkline([1, 5, None, 3], ["a", "b", "c", "d"], width=100, height=48)
    xs = [p["x"] for p in chart["points"]]
    ys = {p["label"]: p["y"] for p in chart["points"]}
    assert xs == sorted(xs) and xs[0] == charts.PAD and xs[-1] == 100 - charts.PAD
    assert ys["a"] == 48 - charts.PAD and ys["b"] == charts.PAD and ys["d"] == 24  # min low, max high
    assert chart["path"].count("M") == 2 and chart["path"].startswith("M4.0,44.0 L")
    assert (chart["min"], chart["max"]) == (1, 5)


def test_equal_values_sit_in_the_middle():
    chart = charts.sparkline([2, 2, 2], ["a", "b", "c"], height=40)
    assert {p["y"] for p in chart["points"]} == {20}


def test_a_strip_has_one_cell_per_run_in_order():
    assert charts.strip([])["empty"]
    chart = charts.strip([{"label": f"#{i}", "state": s, "href": f"/runs/{i}", "current": i == 2}
                          for i, s in enumerate(["success", "failed", "error"], 1)], cell=10, gap=2)
    assert [c["x"] for c in chart["cells"]] == [4, 16, 28] and chart["width"] == 4 + 34 + 4
    assert [c["current"] for c in chart["cells"]] == [False, True, False]
    one = charts.strip([{"label": "#1", "state": "success", "href": "/runs/1"}])
    assert len(one["cells"]) == 1 and not one["empty"]


def test_bars_are_proportional_to_the_top_and_zero_is_empty():
    assert charts.bars([], [("n", [])])["empty"]
    assert charts.bars(["a", "b"], [("n", [0, None])])["empty"]
    chart = charts.bars(["a", "b", "c"], [("busy", [25, 50, 100])], top=100, height=114)
    plot = 114 - charts.AXIS - charts.PAD
    heights = [g["bars"][0]["h"] for g in chart["groups"]]
    assert heights == [plot / 4, plot / 2, plot]
    assert all(round(b["y"] + b["h"], 2) == chart["base"] for g in chart["groups"] for b in g["bars"])
    one = charts.bars(["x"], [("n", [7])])
    assert one["groups"][0]["bars"][0]["h"] == 120 - charts.AXIS - charts.PAD  # its own top


def test_grouped_bars_sit_side_by_side_and_keep_none_as_no_value():
    chart = charts.bars(["d1", "d2"], [("p50", [1, None]), ("p95", [4, 2])])
    first, second = chart["groups"][0]["bars"]
    assert second["x"] > first["x"] and first["w"] == second["w"]
    assert chart["groups"][1]["bars"][0]["value"] is None and chart["groups"][1]["bars"][0]["h"] == 0
    assert chart["top"] == 4 and chart["series"] == ["p50", "p95"]


def test_stacked_bars_stack_from_the_bottom_and_the_tallest_fills_the_height():
    assert charts.stacked_bars(["a"], [("ok", [0])])["empty"]
    chart = charts.stacked_bars(["a", "b"], [("ok", [2, 1]), ("bad", [2, 0])], height=118)
    plot = 118 - charts.AXIS - charts.PAD
    a, b = chart["groups"]
    assert (a["total"], b["total"]) == (4, 1)
    assert [p["h"] for p in a["parts"]] == [plot / 2, plot / 2]
    assert a["parts"][0]["y"] == chart["base"] - plot / 2 and a["parts"][1]["y"] == charts.PAD
    assert b["parts"][0]["h"] == plot / 4 and b["parts"][1]["h"] == 0


def test_many_labels_show_only_some_ticks():
    chart = charts.bars([str(h) for h in range(24)], [("n", [1] * 24)], ticks=8)
    assert sum(g["tick"] for g in chart["groups"]) == 8


@pytest.mark.parametrize("values, p, expected", [([], 50, None), ([5], 95, 5), ([1, 2, 3, 4], 50, 2),
                                                 (list(range(1, 101)), 95, 95), ([3, 1, 2], 100, 3)])
def test_percentile_is_the_nearest_rank(values, p, expected):
    assert charts.percentile(values, p) == expected


def test_labels_are_kept_as_given_and_escaped_by_the_macros():
    evil = '<script>alert("x")</script>'
    chart = charts.sparkline([1, 2], [evil, "b"])
    assert chart["points"][0]["label"] == evil
    out = str(macro("sparkline")(chart, evil, evil))
    assert "<script>" not in out and "&lt;script&gt;" in out
    bar = str(macro("bars")(charts.bars([evil], [(evil, [1])]), "t", "d"))
    strip = str(macro("strip")(charts.strip([{"label": evil, "state": "x\"", "href": "/r"}]), "t", "d"))
    stacked = str(macro("stacked")(charts.stacked_bars([evil], [("ok", [1])]), "t", "d"))
    for markup in (bar, strip, stacked):
        assert "<script>" not in markup and "&lt;script&gt;" in markup and 'x"' not in markup
