"""What won the optimisation and why, for the terminal at the end of `optimize` / `run`.

A table of steps (the incumbent's dev λ, each candidate's λ or the reason it was discarded, who was
selected and what decided it), then the selected method's id and a short unified diff of its
template against its parent's: the artifact Auto Evol-Instruct produces is that diff.
"""

from __future__ import annotations

import difflib
import shutil
import sys
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING

from autoevol.cli.support import terminal_text
from autoevol.methods.method import EvolvingMethod
from autoevol.optimization.records import StepRecord

if TYPE_CHECKING:
    from autoevol.optimization.job import OptimizeOutcome

DIFF_LINES = 40  # a longer diff is cut; best_method.json and `methods show` hold the whole template
_SHORT = {"selected": "selected", "higher_lambda": "higher λ", "lost_tie_break": "lost tie-break",
          "screened_out": "screened out", "discarded": "discarded"}


def _lam(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def candidate_cell(record: StepRecord, index: int) -> str:
    """'c0 0.125 ✓', 'c1 0.250 higher λ', 'c2 discarded: no_optimized_method_block', 'c3 screened out 3/4'."""
    scores = {e.index: e.score for e in record.scores}
    outcome = next((o for o in record.outcomes if o.index == index), None)
    candidate = next(c for c in record.candidates if c.index == index)
    if candidate.method is None:
        return f"c{index} discarded: {candidate.rejected}"
    screened = next((s for s in record.screened_out if s.index == index), None)
    if screened is not None:
        return f"c{index} screened out ({screened.slice_failures}/{screened.slice_size} failed)"
    score = scores.get(index)
    mark = " ✓" if record.selected == index else ""
    why = f" {_SHORT.get(outcome.outcome, outcome.outcome)}" if outcome and record.selected != index else ""
    return f"c{index} {_lam(score.rate if score else None)}{mark}{why}"


def step_rows(history: Iterable[StepRecord]) -> list[tuple[str, str, str, str, str]]:
    """(step, incumbent λ, candidates, selected, decided by) per step."""
    rows = []
    for record in history:
        incumbent = next((e.score for e in record.scores if e.index < 0), None)
        cells = "; ".join(candidate_cell(record, c.index) for c in record.candidates) or "none proposed"
        chosen = f"candidate {record.selected}" if record.selected is not None else str(record.selected_label)
        rows.append((str(record.step), _lam(incumbent.rate) if incumbent else "not scored", cells,
                     f"{chosen} (λ {_lam(record.rate)})", record.decided_by))
    return rows


def find_parent(method: EvolvingMethod, history: Iterable[StepRecord],
                initial: EvolvingMethod | None) -> EvolvingMethod | None:
    if method.parent_id is None:
        return None
    known = {initial.id: initial} if initial is not None else {}
    for record in history:
        known[record.method.id] = record.method
        known.update({c.method.id: c.method for c in record.candidates if c.method is not None})
    return known.get(method.parent_id)


def template_diff(parent: EvolvingMethod, child: EvolvingMethod, limit: int = DIFF_LINES) -> list[str]:
    lines = list(difflib.unified_diff(parent.template.splitlines(), child.template.splitlines(),
                                      f"{parent.name} {parent.id}", f"selected {child.id}", n=1, lineterm=""))
    if len(lines) > limit:
        lines = [*lines[:limit], f"... ({len(lines) - limit} more diff lines; see best_method.json)"]
    return lines


def print_outcome(outcome: OptimizeOutcome, *, quiet: bool = False, stream: IO[str] | None = None) -> None:
    """The step table, the selected method and its diff; nothing under --quiet."""
    if quiet:
        return
    from rich.console import Console
    from rich.table import Table

    out = stream or sys.stdout
    # A log file gets a table wide enough not to wrap each candidate over several lines.
    width = None if out.isatty() else max(120, shutil.get_terminal_size((120, 24)).columns)
    console = Console(file=out, width=width, highlight=False, soft_wrap=False)
    table = Table(title="optimisation: dev failure rate λ per step (lower is better)", title_justify="left")
    for name in ("step", "incumbent λ", "candidates (λ, or why discarded)", "selected", "decided by"):
        table.add_column(name, overflow="fold")
    for row in step_rows(outcome.history):
        table.add_row(*map(terminal_text, row))
    console.print(table)
    best = outcome.best
    parent = find_parent(best, outcome.history, outcome.initial)
    if best.parent_id is None or (outcome.initial is not None and best.id == outcome.initial.id):
        console.print(terminal_text(f"selected: {best.id} = the starting method ({best.name}); no candidate beat it"),
                      markup=False)
        return
    console.print(f"selected: {best.id} (dev λ {_lam(outcome.best_lambda)}), derived from {best.parent_id}")
    if parent is None:
        return
    for line in map(terminal_text, template_diff(parent, best)):  # model-written: no escapes reach the tty
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else None
        console.print(line, style=style, markup=False, soft_wrap=True)
