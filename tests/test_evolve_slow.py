"""Three real GSM8K seeds through the embedded SmolLM2-135M model with the `demo` preset.

The 135M model mostly fails to follow the method's format, so quality is not asserted: only that
every seed is accounted for, with lineage, and that the files agree with the summary.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from autoevol.api import Roles, evolve_async, resolve_methods
from autoevol.config import ExecSettings, evolve_settings
from autoevol.data.source import DataSource
from autoevol.llm.spec import parse_model_spec
from autoevol.methods import load_method

pytestmark = pytest.mark.slow


async def test_three_gsm8k_seeds_through_the_embedded_model(tmp_path: Path, bundled_model: Path) -> None:
    sample = Path(str(resources.files("autoevol.data").joinpath("samples/gsm8k_train_sample.jsonl")))
    settings = evolve_settings("demo")
    result = await evolve_async(
        DataSource(sample, limit=3), methods=resolve_methods("initial", settings),
        roles=Roles(evol=parse_model_spec("local")), out=tmp_path / "run", settings=settings,
        exec_settings=ExecSettings(quiet=True),
    )
    (round1,) = result.summary["rounds"]
    assert round1["inputs"] == 3 == round1["accepted"] + round1["rejected"] + round1["failed"]

    out = tmp_path / "run" / "output"
    rows = [json.loads(line) for name in ("evolved.jsonl", "rejected.jsonl")
            for line in (out / name).read_text().splitlines()]
    assert sorted(r["seed_id"] for r in rows) == ["gsm8k_train_sample:1", "gsm8k_train_sample:2",
                                                  "gsm8k_train_sample:3"]
    questions = [json.loads(line)["question"] for line in sample.read_text().splitlines()[:3]]
    for row in rows:
        assert row["round"] == 1 and row["parent_id"] is None and row["id"] == f"{row['seed_id']}#r1"
        assert row["method_id"] == load_method("initial").id
        assert row["evol_model"] == row["responder_model"] == "local:smollm2-135m-instruct-q4_1"
        assert row["parent_instruction"] == questions[int(row["seed_id"].rsplit(":", 1)[1]) - 1]
        assert row["status"] in ("accepted", "rejected", "failed")
        assert (row["failure_category"] is None) == (row["status"] == "accepted")
        if row["status"] != "failed":
            assert row["prompt_tokens"] > 0 and row["completion_tokens"] > 0
    assert result.summary["training_rows"] == round1["accepted"]
    assert result.summary["rejected_or_failed_rows"] == round1["rejected"] + round1["failed"]
