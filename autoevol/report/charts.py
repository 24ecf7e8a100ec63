"""The report's charts: small hand-written SVG, embedded inline in the page.

Three simple chart kinds do not justify a plotting library (matplotlib cost about half a second of
import at the end of every run). Every string from the caller is XML-escaped before it enters the
markup, and nothing here emits a script, a link or an external reference, so the page's CSP holds.
The output is a pure function of the input: same data, same bytes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Literal

WIDTH, HEIGHT = 720, 326  # px; the page scales the chart down on narrow screens
FONT = 11  # px
# No font metrics without a layout engine: budget text by an average glyph advance of the sans-serif
# fallback (DejaVu Sans is the widest usual one), generous enough that labels do not collide.
CHAR = 0.62 * FONT
PALETTE = ("#2f6db5", "#e3872d", "#3c9d5d", "#8e5bb5", "#c7a22b",
           "#2aa3b3", "#d0668f", "#7d6b58", "#8a9a2f", "#6b7a8f")
SELECTED = "#d62020"  # not in the palette, so a ring never reads as a candidate
INK, GRID = "#333333", "#e4e4e4"
LEGEND_CHARS = 28  # longer legend labels are cut, so a long name cannot squeeze the plot away
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # not allowed in XML 1.0


def _text(value: object) -> str:
    """Markup-safe text: escaped, and without the control characters that would make the SVG unparsable."""
    return escape(_CONTROL.sub("", str(value)), quote=True)


def _fit(label: str, chars: int) -> str:
    return label if len(label) <= chars else label[:max(chars - 1, 1)] + "…"


def _num(x: float) -> str:
    """A coordinate to 0.1 px without a trailing ".0": small markup, stable bytes."""
    out = f"{x:.1f}"
    out = out[:-2] if out.endswith(".0") else out
    return "0" if out == "-0" else out


def nice_ticks(high: float, *, integer: bool = False, most: int = 8) -> list[float]:
    """Ticks from 0 to at least `high`, at most `most` intervals of 1, 2, 2.5 or 5 times a power of ten.

    Empty, all-zero or non-finite data get a 0..1 axis rather than a zero-height one, and counts
    never get a fractional step.
    """
    if not math.isfinite(high) or high <= 0:
        return [0.0, 1.0] if integer else [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    raw = high / most
    magnitude = 10.0 ** math.floor(math.log10(raw))
    factors = (1.0, 2.0, 5.0, 10.0) if integer else (1.0, 2.0, 2.5, 5.0, 10.0)
    step = next(f * magnitude for f in factors if raw <= f * magnitude * (1 + 1e-9))
    if integer:
        step = max(step, 1.0)
    count = math.ceil(high / step - 1e-9)
    return [round(i * step, 10) for i in range(count + 1)]


def _tick_label(value: float, step: float) -> str:
    """As many decimals as the step needs, the same for every tick (0.0, 0.2, … not 0, 0.2, …)."""
    decimals = next((d for d in range(7) if abs(round(step, d) - step) < 1e-9), 6)
    return f"{value:,.{decimals}f}"


@dataclass(frozen=True, slots=True)
class _Entry:
    """One legend line: its label and the shape of its swatch."""

    label: str
    shape: Literal["bar", "dot", "square", "ring"]
    color: str


class _Frame:
    """A plot area with categorical slots on x and a linear y axis, plus the legend at its right.

    Chart functions map data with `x` and `y` and `add` their marks; `svg` lays grid and marks under
    the axes and labels.
    """

    def __init__(self, title: str, slots: Sequence[str], ticks: Sequence[float], ylabel: str,
                 legend: Sequence[_Entry], *, xlabel: str = "", pad: float = 0.0) -> None:
        self.title, self.slots, self.ticks, self.ylabel, self.xlabel = title, list(slots), list(ticks), ylabel, xlabel
        step = self.ticks[1] - self.ticks[0] if len(self.ticks) > 1 else 1.0
        self.tick_labels = [_tick_label(t, step) for t in self.ticks]
        span = self.ticks[-1] - self.ticks[0] or 1.0
        # `pad` lifts markers off the axis lines (a λ of exactly 0 or 1 would otherwise sit on them).
        self.low, self.high = self.ticks[0] - pad * span, self.ticks[-1] + pad * span
        self.legend = [_Entry(_fit(e.label, LEGEND_CHARS), e.shape, e.color) for e in legend]
        legend_chars = max((len(e.label) for e in self.legend), default=0)
        self.legend_left = WIDTH - 12 - (26 + legend_chars * CHAR if self.legend else 0)
        self.left = 30 + max(len(label) for label in self.tick_labels) * CHAR
        self.right = self.legend_left - 16
        self.top = 18.0
        self.bottom = HEIGHT - (44.0 if xlabel else 28.0)
        self.marks: list[str] = []

    @property
    def slot_width(self) -> float:
        return (self.right - self.left) / max(len(self.slots), 1)

    def x(self, slot: float) -> float:
        """Pixel x of a position in slot units: slot i spans [i, i + 1), its centre is i + 0.5."""
        return self.left + slot * self.slot_width

    def y(self, value: float) -> float:
        # Clamped, so a stray value stays inside the plot instead of drawing over the legend or labels.
        value = value if math.isfinite(value) else self.low
        share = (min(max(value, self.low), self.high) - self.low) / (self.high - self.low)
        return self.bottom - share * (self.bottom - self.top)

    def add(self, markup: str) -> None:
        self.marks.append(markup)

    def svg(self) -> str:
        title = _text(self.title)
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
                f'height="{HEIGHT}" role="img" aria-label="{title}" font-family="system-ui, sans-serif" '
                f'font-size="{FONT}" fill="{INK}"><title>{title}</title>'
                f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>')
        return "".join([head, *self._grid(), *self.marks, *self._axes(), *self._legend(), "</svg>"])

    def _grid(self) -> list[str]:
        return [f'<path d="{"".join(f"M{_num(self.left)} {_num(self.y(t))}H{_num(self.right)}" for t in self.ticks)}"'
                f' stroke="{GRID}" fill="none"/>']

    def _axes(self) -> list[str]:
        left, right, bottom = _num(self.left), _num(self.right), _num(self.bottom)
        out = [f'<path d="M{left} {_num(self.top)}V{bottom}H{right}" stroke="{INK}" fill="none"/>']
        for tick, label in zip(self.ticks, self.tick_labels, strict=True):
            y = self.y(tick)
            out.append(f'<path d="M{left} {_num(y)}h-4" stroke="{INK}"/>'
                       f'<text x="{_num(self.left - 7)}" y="{_num(y + FONT * 0.35)}" text-anchor="end">{label}</text>')
        chars = max(int(self.slot_width / CHAR), 2)
        for i, name in enumerate(self.slots):
            x = _num(self.x(i + 0.5))
            out.append(f'<path d="M{x} {bottom}v4" stroke="{INK}"/><text x="{x}" y="{_num(self.bottom + 17)}" '
                       f'text-anchor="middle">{_text(_fit(name, chars))}</text>')
        middle = _num((self.top + self.bottom) / 2)
        ylabel = _fit(self.ylabel, int((self.bottom - self.top + 20) / CHAR))  # it runs along the axis
        out.append(f'<text x="16" y="{middle}" transform="rotate(-90 16 {middle})" text-anchor="middle">'
                   f'{_text(ylabel)}</text>')
        if self.xlabel:
            out.append(f'<text x="{_num((self.left + self.right) / 2)}" y="{HEIGHT - 8}" text-anchor="middle">'
                       f'{_text(self.xlabel)}</text>')
        return out

    def _legend(self) -> list[str]:
        # Rows of 18 px centred on the plot; what does not fit is summed up in a last line.
        room = int((self.bottom - self.top) // 18)
        entries = self.legend if len(self.legend) <= room else self.legend[:room - 1]
        lines: list[tuple[str, _Entry | None]] = [(e.label, e) for e in entries]
        if len(entries) < len(self.legend):
            lines.append((f"… {len(self.legend) - len(entries)} more", None))
        y0 = (self.top + self.bottom) / 2 - 18 * (len(lines) - 1) / 2
        out = []
        for k, (label, entry) in enumerate(lines):
            y, x = y0 + 18 * k, self.legend_left
            if entry is not None:
                out.append(_swatch(entry, x + 8, y))
            out.append(f'<text x="{_num(x + 22)}" y="{_num(y + FONT * 0.35)}">{_text(label)}</text>')
        return out


def _swatch(entry: _Entry, x: float, y: float) -> str:
    if entry.shape == "bar":
        return f'<rect x="{_num(x - 6)}" y="{_num(y - 5)}" width="12" height="10" fill="{entry.color}"/>'
    if entry.shape == "ring":
        return _ring(x, y, 6, counted=False)
    stem = f'<path d="M{_num(x)} {_num(y - 7)}V{_num(y + 7)}" stroke="{entry.color}"/>'
    return stem + _marker(entry.shape, x, y, entry.color, counted=False)


def _marker(shape: Literal["dot", "square"], x: float, y: float, color: str, *, counted: bool = True) -> str:
    tag = _tag("point", counted)
    if shape == "square":
        return f'<rect{tag} x="{_num(x - 4)}" y="{_num(y - 4)}" width="8" height="8" fill="{color}"/>'
    return f'<circle{tag} cx="{_num(x)}" cy="{_num(y)}" r="4" fill="{color}"/>'


def _ring(x: float, y: float, r: float, *, counted: bool = True) -> str:
    return (f'<circle{_tag("ring", counted)} cx="{_num(x)}" cy="{_num(y)}" r="{_num(r)}" fill="none" '
            f'stroke="{SELECTED}" stroke-width="1.5"/>')


def _tag(mark: str, counted: bool) -> str:
    """`data-mark` on the data's marks, not on legend swatches: tests and readers of the SVG can find them."""
    return f' data-mark="{mark}"' if counted else ""


@dataclass(frozen=True, slots=True)
class LambdaPoint:
    step: int
    who: int  # candidate index; -1 the incumbent
    rate: float
    low: float
    high: float
    selected: bool


def lambda_chart(points: Sequence[LambdaPoint], steps: int) -> str:
    """λ with its 95 % interval per step for every scored candidate and the incumbent."""
    whos = sorted({p.who for p in points})
    colors = {who: "#000000" if who < 0 else PALETTE[who % len(PALETTE)] for who in whos}
    legend = [_Entry("selected", "ring", SELECTED)] if any(p.selected for p in points) else []
    legend += [_Entry("incumbent" if who < 0 else f"candidate {who}", "square" if who < 0 else "dot", colors[who])
               for who in whos]
    frame = _Frame("Dev failure rate λ with its 95% interval, per optimisation step",
                   [str(s) for s in range(1, max(steps, 1) + 1)], nice_ticks(1.0), "dev failure rate λ (95% CI)",
                   legend, xlabel="optimisation step", pad=0.03)
    share = 0.7 / max(len(whos), 1)  # of a step's slot, side by side in `whos` order
    for p in points:
        x = frame.x(p.step - 1 + 0.15 + share * (whos.index(p.who) + 0.5))
        # The interval is drawn around the point even when float rounding puts a Wilson bound a hair on
        # the wrong side of λ (at λ = 1 the upper bound can be 0.9999999999999999).
        top, bottom = frame.y(max(p.high, p.rate)), frame.y(min(p.low, p.rate))
        frame.add(f'<path data-mark="err" d="M{_num(x)} {_num(bottom)}V{_num(top)}M{_num(x - 3)} {_num(top)}h6'
                  f'M{_num(x - 3)} {_num(bottom)}h6" stroke="{colors[p.who]}" stroke-width="1.5" fill="none"/>')
        frame.add(_marker("square" if p.who < 0 else "dot", x, frame.y(p.rate), colors[p.who]))
        if p.selected:
            frame.add(_ring(x, frame.y(p.rate), 9))
    return frame.svg()


def stacked_bars(groups: Sequence[str], counts: Mapping[str, Sequence[int]], ylabel: str) -> str:
    """One bar per group, stacked by category (e.g. failure categories per step or round)."""
    categories = sorted(counts.items())
    totals = [sum(values[i] for _, values in categories) for i in range(len(groups))]
    legend = [_Entry(name, "bar", PALETTE[k % len(PALETTE)]) for k, (name, _) in enumerate(categories)]
    frame = _Frame(f"{ylabel}, by category", groups, nice_ticks(max(totals, default=0), integer=True), ylabel, legend)
    for i in range(len(groups)):
        base = 0.0
        for k, (_, values) in enumerate(categories):
            if values[i] > 0:
                top, bottom = frame.y(base + values[i]), frame.y(base)
                frame.add(f'<rect data-mark="bar" x="{_num(frame.x(i + 0.1))}" y="{_num(top)}" '
                          f'width="{_num(frame.slot_width * 0.8)}" height="{_num(bottom - top)}" '
                          f'fill="{PALETTE[k % len(PALETTE)]}"/>')
                base += values[i]
    if not counts:
        frame.add(f'<text x="{_num((frame.left + frame.right) / 2)}" y="{_num((frame.top + frame.bottom) / 2)}" '
                  f'text-anchor="middle">no failures</text>')
    return frame.svg()


def grouped_bars(groups: Sequence[str], series: Mapping[str, Sequence[float | None]], ylabel: str) -> str:
    """Side-by-side bars per group (e.g. text statistics: seeds, round 1, round 2)."""
    names = list(series)
    high = max((v for values in series.values() for v in values if v is not None), default=0.0)
    legend = [_Entry(name, "bar", PALETTE[k % len(PALETTE)]) for k, name in enumerate(names)]
    frame = _Frame(f"{ylabel}, per group", groups, nice_ticks(high), ylabel, legend)
    share = 0.8 / max(len(names), 1)
    for k, name in enumerate(names):
        for i, value in enumerate(series[name]):
            if value:  # None (not measured) and 0 both draw nothing
                top = frame.y(value)
                frame.add(f'<rect data-mark="bar" x="{_num(frame.x(i + 0.1 + share * k))}" y="{_num(top)}" '
                          f'width="{_num(frame.slot_width * share)}" height="{_num(frame.bottom - top)}" '
                          f'fill="{PALETTE[k % len(PALETTE)]}"/>')
    return frame.svg()
