"""Options shared by every command, spelled the same way everywhere.

Help texts are the settings' field descriptions (`autoevol/config.py`), so the command line, the
Python API and `autoevol presets` describe a setting in the same words.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import typer

from autoevol.cli.support import load_config
from autoevol.config import (
    DataOptions,
    EvolveSettings,
    ExecSettings,
    ModelOptions,
    OptimizeSettings,
    PlanOptions,
    PushOptions,
    describe,
)

DataArg = Annotated[Path, typer.Argument(
    metavar="DATA", help="JSONL, JSON, CSV, Parquet, a saved HF datasets directory, or hf:NAME (needs `datasets`)")]

ModelOpt = Annotated[
    str | None, typer.Option("--model", "--evol-model", "-m", help=describe(ModelOptions, "model"))
]
ResponderOpt = Annotated[
    str | None, typer.Option("--responder-model", help=describe(ModelOptions, "responder_model"))
]
JudgeOpt = Annotated[str | None, typer.Option("--judge-model", help=describe(ModelOptions, "judge_model"))]
OptimizerOpt = Annotated[
    str | None, typer.Option("--optimizer-model", help=describe(ModelOptions, "optimizer_model"))
]
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help=describe(ModelOptions, "base_url"))]
ApiKeyEnvOpt = Annotated[str | None, typer.Option("--api-key-env", help=describe(ModelOptions, "api_key_env"))]
ConcurrencyOpt = Annotated[
    int | None, typer.Option("--concurrency", "-j", min=1, help=describe(ModelOptions, "concurrency"))
]
TimeoutOpt = Annotated[
    float | None, typer.Option("--request-timeout", min=0.1, help=describe(ModelOptions, "request_timeout"))
]

OutOpt = Annotated[Path, typer.Option("--out", "-o", help="run directory (created, or resumed if it exists)")]
PresetOpt = Annotated[str, typer.Option("--preset", help="paper | default | demo | evol-instruct (`autoevol presets`)")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help=describe(ExecSettings, "overwrite"))]
RetryFailedOpt = Annotated[bool, typer.Option("--retry-failed", help=describe(ExecSettings, "retry_failed"))]
EngineOpt = Annotated[Literal["local", "ray"], typer.Option("--engine", help=describe(ExecSettings, "engine"))]
RayAddressOpt = Annotated[str | None, typer.Option("--ray-address", help=describe(ExecSettings, "ray_address"))]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help=describe(ExecSettings, "quiet"))]
MaxCallsOpt = Annotated[int | None, typer.Option("--max-calls", min=1, help=describe(ExecSettings, "max_calls"))]
MaxTokensOpt = Annotated[int | None, typer.Option("--max-tokens", min=1, help=describe(ExecSettings, "max_tokens"))]

SchemaOpt = Annotated[str, typer.Option("--schema", help=describe(DataOptions, "schema"))]
FieldOpt = Annotated[str | None, typer.Option("--field", help=describe(DataOptions, "field"))]
IdFieldOpt = Annotated[str | None, typer.Option("--id-field", help=describe(DataOptions, "id_field"))]
BadRowOpt = Annotated[Literal["fail", "skip"], typer.Option("--on-bad-row", help=describe(DataOptions, "on_bad_row"))]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help=describe(DataOptions, "limit"))]
EncodingOpt = Annotated[str | None, typer.Option("--encoding", help=describe(DataOptions, "encoding"))]

SplitOpt = Annotated[str | None, typer.Option("--split", help=describe(DataOptions, "split"))]

DryRunOpt = Annotated[bool, typer.Option("--dry-run", help=describe(PlanOptions, "dry_run"))]
PriceInOpt = Annotated[float | None, typer.Option("--price-in", min=0, help=describe(PlanOptions, "price_in"))]
PriceOutOpt = Annotated[float | None, typer.Option("--price-out", min=0, help=describe(PlanOptions, "price_out"))]
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", metavar="FILE.toml", is_eager=True, callback=load_config, help=describe(PlanOptions, "config"))]


PushOpt = Annotated[str | None, typer.Option("--push-to-hub", metavar="ORG/NAME",
                                             help=describe(PushOptions, "push_to_hub"))]
HubPrivateOpt = Annotated[bool, typer.Option("--hub-private", help=describe(PushOptions, "hub_private"))]


class ExportFormat(StrEnum):  # typer takes a list of enums, not of literals
    alpaca = "alpaca"
    sharegpt = "sharegpt"


ExportOpt = Annotated[list[ExportFormat] | None, typer.Option("--export", help=describe(ExecSettings, "export"))]

RoundsOpt = Annotated[int | None, typer.Option("--rounds", "-r", min=1, help=describe(EvolveSettings, "rounds"))]
MixOpt = Annotated[str | None, typer.Option("--mix", help=describe(EvolveSettings, "mix"))]
RuleSetOpt = Annotated[str | None, typer.Option("--rule-set", help=describe(EvolveSettings, "rule_set"))]
MathOpt = Annotated[bool | None, typer.Option("--math-answers/--no-math-answers",
                                              help=describe(EvolveSettings, "math_answers"))]
StepsOpt = Annotated[int | None, typer.Option("--steps", help=describe(OptimizeSettings, "steps"))]
CandidatesOpt = Annotated[int | None, typer.Option("--candidates", help=describe(OptimizeSettings, "candidates"))]
DevSizeOpt = Annotated[int | None, typer.Option("--dev-size", help=describe(OptimizeSettings, "dev_size"))]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", help=describe(OptimizeSettings, "batch_size"))]
PoolOpt = Annotated[int | None, typer.Option("--pool-size", help=describe(OptimizeSettings, "pool_size"))]
PatienceOpt = Annotated[int | None, typer.Option("--patience", help=describe(OptimizeSettings, "patience"))]
ScreenOpt = Annotated[int | None, typer.Option("--screen-size", help=describe(OptimizeSettings, "screen_size"))]
InitialOpt = Annotated[
    str | None, typer.Option("--initial-method", help=describe(OptimizeSettings, "initial_method"))
]
TrajectoryOpt = Annotated[
    int | None,
    typer.Option("--trajectory-rounds", min=1, max=3, help=describe(OptimizeSettings, "trajectory_rounds")),
]

EvolTemperatureOpt = Annotated[float | None, typer.Option(
    "--evol-temperature", min=0, max=2, help=describe(EvolveSettings, "evol_temperature"))]
EvolMaxTokensOpt = Annotated[int | None, typer.Option(
    "--evol-max-tokens", min=16, help=describe(EvolveSettings, "evol_max_tokens"))]
RespondTemperatureOpt = Annotated[float | None, typer.Option(
    "--respond-temperature", min=0, max=2, help=describe(EvolveSettings, "respond_temperature"))]
RespondMaxTokensOpt = Annotated[int | None, typer.Option(
    "--respond-max-tokens", min=16, help=describe(EvolveSettings, "respond_max_tokens"))]
ParseRetriesOpt = Annotated[int | None, typer.Option(
    "--parse-retries", min=0, max=5, help=describe(EvolveSettings, "parse_retries"))]
CutAnswersOpt = Annotated[str | None, typer.Option("--cut-answers", help=describe(EvolveSettings, "cut_answers"))]
JudgeMaxTokensOpt = Annotated[int | None, typer.Option(
    "--judge-max-tokens", min=8, help=describe(EvolveSettings, "judge_max_tokens"))]
ScoreParseRetriesOpt = Annotated[int | None, typer.Option(
    "--score-parse-retries", min=0, max=5, help=describe(OptimizeSettings, "score_parse_retries"))]
EvaluatorFeedbackOpt = Annotated[bool | None, typer.Option(
    "--evaluator-feedback/--no-evaluator-feedback", help=describe(OptimizeSettings, "evaluator_feedback"))]
OptimizerTemperatureOpt = Annotated[float | None, typer.Option(
    "--optimizer-temperature", min=0, max=2, help=describe(OptimizeSettings, "optimizer_temperature"))]
OptimizerTopPOpt = Annotated[float | None, typer.Option(
    "--optimizer-top-p", min=0, max=1, help=describe(OptimizeSettings, "optimizer_top_p"))]
OptimizerMaxTokensOpt = Annotated[int | None, typer.Option(
    "--optimizer-max-tokens", min=64, help=describe(OptimizeSettings, "optimizer_max_tokens"))]
SeedOpt = Annotated[int | None, typer.Option("--seed", help=describe(EvolveSettings, "seed"))]
TaggerOpt = Annotated[str | None, typer.Option("--tagger-model", help=describe(ModelOptions, "tagger_model"))]
MethodOpt = Annotated[
    str | None, typer.Option("--method", help="built-in method name or a method file [default: initial]")
]
