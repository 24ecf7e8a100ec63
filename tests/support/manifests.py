"""A small real manifest for tests that open a run directory without running a command."""

from __future__ import annotations

from pathlib import Path

from autoevol.config import EvolveSettings
from autoevol.data.source import DataSource
from autoevol.llm.spec import Roles, parse_model_spec
from autoevol.methods import load_method
from autoevol.store.manifest import Manifest


def small_manifest(data: Path, rounds: int = 1) -> Manifest:
    """An `evolve` manifest over a two-row file written at `data` (if it is not there yet)."""
    if not data.exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        data.write_text('{"instruction": "Add 1 and 2"}\n{"instruction": "Add 2 and 4"}\n', encoding="utf-8")
    roles = Roles(evol=parse_model_spec("openai:fake", base_url="http://127.0.0.1:9/v1"))
    return Manifest.new("evolve", DataSource(data), roles, EvolveSettings(rounds=rounds),
                        methods=(load_method("initial"),))
