"""The report's charts: matplotlib figures rendered to SVG text, embedded inline in the page.

Text is drawn as paths (`svg.fonttype = path`), so a chart needs no font at view time and no
string from the data ends up as SVG markup; every label here is a number or one of our own
category names anyway.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

WIDTH, HEIGHT = 7.5, 3.4  # inches at 96 dpi: 720 x 326 px
_STYLE: Any = {"svg.fonttype": "path", "svg.hashsalt": "autoevol", "font.size": 9, "axes.spines.top": False,
          "axes.spines.right": False}


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches=None)
    plt.close(fig)
    text = buffer.getvalue()
    # Only the <svg> element goes into the page: the XML prolog and DOCTYPE are not valid there.
    return text[text.index("<svg"):]


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
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT), dpi=96)
        whos = sorted({p.who for p in points})
        width = 0.7 / max(len(whos), 1)
        for k, who in enumerate(whos):
            mine = [p for p in points if p.who == who]
            xs = [p.step - 0.35 + width * (k + 0.5) for p in mine]
            ys = [p.rate for p in mine]
            # The Wilson bounds are clamped to [0, 1] in floats: at λ = 1 the upper bound can sit a
            # rounding error below λ, and matplotlib refuses a negative error bar.
            err = [[max(0.0, p.rate - p.low) for p in mine], [max(0.0, p.high - p.rate) for p in mine]]
            style: dict[str, Any] = ({"marker": "s", "color": "black"} if who < 0
                                     else {"marker": "o", "color": f"C{who % 10}"})
            ax.errorbar(xs, ys, yerr=err, linestyle="none", capsize=2, markersize=5,
                        label="incumbent" if who < 0 else f"candidate {who}", **style)
            chosen = [(x, p.rate) for x, p in zip(xs, mine, strict=True) if p.selected]
            if chosen:
                ax.scatter([c[0] for c in chosen], [c[1] for c in chosen], s=180, facecolors="none",
                           edgecolors="red", linewidths=1.5, zorder=5)
        if any(p.selected for p in points):  # one legend entry for all the rings
            ax.scatter([], [], s=180, facecolors="none", edgecolors="red", linewidths=1.5, label="selected")
        ax.set_xlim(0.5, max(steps, 1) + 0.5)
        ax.set_xticks(range(1, max(steps, 1) + 1))
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("optimisation step")
        ax.set_ylabel("dev failure rate λ (95% CI)")
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
        fig.tight_layout()
        return _svg(fig)


def stacked_bars(groups: Sequence[str], counts: Mapping[str, Sequence[int]], ylabel: str) -> str:
    """One bar per group, stacked by category (e.g. failure categories per step or round)."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT), dpi=96)
        bottom = [0] * len(groups)
        for k, (name, values) in enumerate(sorted(counts.items())):
            ax.bar(list(groups), list(values), bottom=bottom, label=name, color=f"C{k % 10}")
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_ylabel(ylabel)
        if counts:
            ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
        else:
            ax.text(0.5, 0.5, "no failures", ha="center", va="center", transform=ax.transAxes)
        fig.tight_layout()
        return _svg(fig)


def grouped_bars(groups: Sequence[str], series: Mapping[str, Sequence[float | None]], ylabel: str) -> str:
    """Side-by-side bars per group (e.g. text statistics: seeds, round 1, round 2)."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(WIDTH, HEIGHT), dpi=96)
        width = 0.8 / max(len(series), 1)
        for k, (name, values) in enumerate(series.items()):
            xs = [i - 0.4 + width * (k + 0.5) for i in range(len(groups))]
            ax.bar(xs, [v or 0.0 for v in values], width=width, label=name, color=f"C{k % 10}")
        ax.set_xticks(range(len(groups)), list(groups))
        ax.set_ylabel(ylabel)
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
        fig.tight_layout()
        return _svg(fig)
