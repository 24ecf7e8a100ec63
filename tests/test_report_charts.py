"""The report's SVG charts: well-formed, escaped, free of active content, and drawn where the data says."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from autoevol.report.charts import (
    HEIGHT,
    SELECTED,
    WIDTH,
    LambdaPoint,
    grouped_bars,
    lambda_chart,
    nice_ticks,
    stacked_bars,
)

NS = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>1</script> & "q" \'s\'\x01'  # short enough to be drawn whole in the legend'


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    assert root.get("role") == "img" and root.get("aria-label")
    assert root.find(f"{NS}title") is not None
    assert (root.get("width"), root.get("height"), root.get("viewBox")) == (str(WIDTH), str(HEIGHT),
                                                                           f"0 0 {WIDTH} {HEIGHT}")
    for element in root.iter():
        tag = element.tag.removeprefix(NS)
        assert tag not in {"script", "image", "foreignObject", "a", "use", "style"}, tag
        for name in element.attrib:
            assert not name.lower().startswith("on") and "href" not in name.lower(), name
    return root


def marks(root: ET.Element, kind: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("data-mark") == kind]


def texts(root: ET.Element) -> list[str]:
    return [e.text or "" for e in root.iter(f"{NS}text")]


SAMPLES = {
    "lambda": lambda: lambda_chart([LambdaPoint(1, -1, 0.3, 0.1, 0.6, False), LambdaPoint(1, 0, 0.2, 0.05, 0.5, True),
                                    LambdaPoint(2, -1, 0.2, 0.06, 0.5, True)], 2),
    "lambda-empty": lambda: lambda_chart([], 0),
    "stacked": lambda: stacked_bars(["step 1", "step 2"], {"b": [1, 0], "a": [3, 4]}, "failed"),
    "stacked-empty": lambda: stacked_bars([], {}, ""),
    "stacked-no-failures": lambda: stacked_bars(["round 1"], {}, "rejected"),
    "stacked-all-zero": lambda: stacked_bars(["a", "b"], {"x": [0, 0]}, "rejected"),
    "grouped": lambda: grouped_bars(["seeds", "round 1"], {"words": [12.5, 30.0], "tokens": [None, 41.0]}, "mean"),
    "grouped-empty": lambda: grouped_bars([], {}, ""),
    "grouped-all-zero": lambda: grouped_bars(["a", "b"], {"s": [0.0, None]}, "ratio"),
    "many-categories": lambda: stacked_bars(["r"], {f"category {k} " + "x" * k: [k] for k in range(40)}, "n"),
}


@pytest.mark.parametrize("name", SAMPLES)
def test_every_chart_is_valid_svg_of_the_page_size_without_active_content(name: str) -> None:
    parse(SAMPLES[name]())


@pytest.mark.parametrize("name", SAMPLES)
def test_output_is_deterministic(name: str) -> None:
    assert SAMPLES[name]() == SAMPLES[name]()


def test_category_order_does_not_change_the_bytes() -> None:
    assert stacked_bars(["g"], {"a": [1], "b": [2]}, "n") == stacked_bars(["g"], {"b": [2], "a": [1]}, "n")


def test_every_caller_string_is_escaped() -> None:
    for svg in (stacked_bars([HOSTILE, "a & b"], {HOSTILE: [1, 2]}, HOSTILE),
                grouped_bars([HOSTILE, "a & b"], {HOSTILE: [0.5, 0.2]}, HOSTILE)):
        assert "<script" not in svg and "&lt;script&gt;" in svg and "a &amp; b" in svg
        assert '"q"' not in svg  # quotes too: a label never closes an attribute
        root = parse(svg)
        clean = HOSTILE.replace("\x01", "")  # a control character is dropped: XML 1.0 has no place for it
        assert clean in texts(root) and clean in root.get("aria-label", "")


def test_empty_stacked_bars_say_no_failures_and_all_zero_data_gets_a_unit_axis() -> None:
    assert "no failures" in texts(parse(stacked_bars(["round 1"], {}, "rejected")))
    root = parse(stacked_bars(["a", "b"], {"x": [0, 0]}, "rejected"))
    assert marks(root, "bar") == [] and {"0", "1"} <= set(texts(root))


def test_nice_ticks() -> None:
    assert nice_ticks(1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(13, integer=True) == [0, 2, 4, 6, 8, 10, 12, 14]
    assert nice_ticks(3, integer=True) == [0, 1, 2, 3]  # counts never get a step of 0.5
    assert nice_ticks(120, integer=True)[-1] >= 120 and len(nice_ticks(120, integer=True)) <= 9
    assert nice_ticks(0.37) == [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4]
    for empty in (0, 0.0, -1.0, float("nan"), float("inf")):
        assert nice_ticks(empty)[0] == 0 and nice_ticks(empty)[-1] > 0
        assert nice_ticks(empty, integer=True) == [0, 1]


def test_lambda_points_and_error_bars_sit_where_the_data_says() -> None:
    points = [LambdaPoint(1, 0, 0.0, 0.0, 0.3, False), LambdaPoint(1, 1, 0.5, 0.2, 0.9, False),
              LambdaPoint(1, 2, 1.0, 0.7, 1.0, False)]
    root = parse(lambda_chart(points, 1))
    ys = [float(p.get("cy", "nan")) for p in marks(root, "point")]
    assert len(ys) == 3
    zero, one = ys[0], ys[2]
    assert zero > one  # λ = 0 is drawn lower on screen (a larger y) than λ = 1
    unit = zero - one  # pixels per unit of λ
    assert ys[1] == pytest.approx(zero - 0.5 * unit, abs=0.2)
    for point, bar in zip(points, marks(root, "err"), strict=True):
        # "M x bottom V top M ...": the bar spans the interval's pixels exactly
        bottom, top = map(float, re.match(r"M[\d.]+ ([\d.]+)V([\d.]+)", bar.get("d", "")).groups())  # type: ignore[union-attr]
        assert bottom == pytest.approx(zero - point.low * unit, abs=0.2)
        assert top == pytest.approx(zero - point.high * unit, abs=0.2)
    # The axis agrees with the marks: the "1.0" tick label is level with λ = 1.
    label = next(e for e in root.iter(f"{NS}text") if e.text == "1.0")
    assert float(label.get("y", "nan")) == pytest.approx(one, abs=6)


def test_lambda_bounds_rounded_past_the_point_still_draw_around_it() -> None:
    root = parse(lambda_chart([LambdaPoint(1, -1, 1.0, 0.6, 0.9999999999999999, False)], 1))
    bar = marks(root, "err")[0].get("d", "")
    assert re.match(r"M[\d.]+ [\d.]+V[\d.]+", bar)


def test_selected_candidate_gets_a_red_ring_around_its_point() -> None:
    points = [LambdaPoint(1, -1, 0.4, 0.2, 0.6, False), LambdaPoint(1, 0, 0.1, 0.0, 0.3, True)]
    root = parse(lambda_chart(points, 1))
    rings, dots = marks(root, "ring"), marks(root, "point")
    assert len(rings) == 1 and rings[0].get("stroke") == SELECTED and rings[0].get("fill") == "none"
    selected = dots[1]
    assert (rings[0].get("cx"), rings[0].get("cy")) == (selected.get("cx"), selected.get("cy"))
    assert "selected" in texts(root)
    unselected = parse(lambda_chart([LambdaPoint(1, 0, 0.1, 0.0, 0.3, False)], 1))
    assert marks(unselected, "ring") == [] and "selected" not in texts(unselected)


def test_stacked_bar_heights_are_proportional_to_the_counts() -> None:
    root = parse(stacked_bars(["g1", "g2", "g3"], {"x": [1, 4, 0], "y": [2, 2, 0]}, "n"))
    bars = marks(root, "bar")
    heights: dict[str, list[float]] = {}
    for bar in bars:
        heights.setdefault(bar.get("x", ""), []).append(float(bar.get("height", "nan")))
    assert len(heights) == 2  # the empty group draws nothing
    first, second = (sum(h) for h in heights.values())
    assert second / first == pytest.approx(6 / 3, rel=0.01)
    x1, y1 = heights[bars[0].get("x", "")]
    assert y1 / x1 == pytest.approx(2, rel=0.01)
    # Stacked, not overlapping: each segment starts where the one below it ends.
    lower, upper = bars[0], bars[1]
    assert float(upper.get("y", "nan")) + float(upper.get("height", "nan")) == pytest.approx(
        float(lower.get("y", "nan")), abs=0.11)


def test_grouped_bars_side_by_side_and_proportional() -> None:
    root = parse(grouped_bars(["a", "b"], {"s": [1.0, 3.0], "t": [2.0, None]}, "v"))
    bars = marks(root, "bar")
    assert len(bars) == 3  # None draws no bar
    h = [float(b.get("height", "nan")) for b in bars]
    assert h[1] / h[0] == pytest.approx(3, rel=0.01) and h[2] / h[0] == pytest.approx(2, rel=0.01)
    xs = [float(b.get("x", "nan")) for b in bars]
    assert xs[0] < xs[2] < xs[1]  # a's two bars side by side, then b's
    assert {"s", "t", "a", "b", "v"} <= set(texts(root))
