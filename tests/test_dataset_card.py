"""The Hub's dataset card is a pure function of a run directory: these run directories (the checked-in
old runs and variants of them) give, byte for byte, the cards that `dataset_card` wrote while it was
an f-string (tests/data/cards, made with that code at 8055ded, before the card became a template)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from autoevol.methods import load_method
from autoevol.report.publish import dataset_card

OLD_RUNS = Path(__file__).parent / "data" / "old_runs"
CARDS = Path(__file__).parent / "data" / "cards"


def _edit_manifest(run_dir: Path, edit: Callable[[dict[str, object]], None]) -> None:
    path = run_dir / "manifest.json"
    found = json.loads(path.read_text(encoding="utf-8"))
    edit(found)
    path.write_text(json.dumps(found), encoding="utf-8")


def _two_methods(run_dir: Path) -> None:
    def edit(found: dict[str, object]) -> None:
        found["config"]["methods"].append(load_method("weak").to_dict())  # type: ignore[index]

    _edit_manifest(run_dir, edit)


def _no_summary(run_dir: Path) -> None:
    (run_dir / "output" / "summary.json").unlink()


def _no_lambda(run_dir: Path) -> None:
    path = run_dir / "output" / "best_method.json"
    best = json.loads(path.read_text(encoding="utf-8"))
    best.pop("lineage", None)
    path.write_text(json.dumps(best), encoding="utf-8")


#: card name -> (fixture, change made to a copy of it)
VARIANTS: dict[str, tuple[str, Callable[[Path], None] | None]] = {
    "evolve": ("evolve", None),
    "run": ("run", None),
    "evolve-two-methods": ("evolve", _two_methods),
    "evolve-no-summary": ("evolve", _no_summary),
    "run-no-lambda": ("run", _no_lambda),
}


def variant(name: str, tmp_path: Path) -> Path:
    fixture, change = VARIANTS[name]
    run_dir = tmp_path / name
    shutil.copytree(OLD_RUNS / fixture / "run", run_dir)
    if change is not None:
        change(run_dir)
    return run_dir


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_the_card_is_the_one_the_f_string_wrote(name: str, tmp_path: Path) -> None:
    card = dataset_card(variant(name, tmp_path))
    assert card == (CARDS / f"{name}.md").read_text(encoding="utf-8")
