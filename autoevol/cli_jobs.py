"""The three job commands: `evolve`, `optimize` and `run` (optimise, then evolve everything)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from autoevol.cli_options import (
    ApiKeyEnvOpt,
    BadRowOpt,
    BaseUrlOpt,
    ConcurrencyOpt,
    EncodingOpt,
    EngineOpt,
    FieldOpt,
    IdFieldOpt,
    JudgeOpt,
    LimitOpt,
    MaxCallsOpt,
    MaxTokensOpt,
    ModelOpt,
    OptimizerOpt,
    OutOpt,
    OverwriteOpt,
    PresetOpt,
    QuietOpt,
    RayAddressOpt,
    ResponderOpt,
    RetryFailedOpt,
    SchemaOpt,
    TimeoutOpt,
)
from autoevol.cli_support import describe_outcome, guarded, model_spec, print_step, print_summary

DataArg = Annotated[Path, typer.Argument(help="JSONL, JSON, CSV, Parquet or a saved HF datasets directory")]
RoundsOpt = Annotated[int | None, typer.Option("--rounds", "-r", min=1, help="evolution rounds of the final pass")]
MixOpt = Annotated[str | None, typer.Option(help="final dataset: last | all | last+seed | all+seed")]
RuleSetOpt = Annotated[str | None, typer.Option(help="failure rules: paper | extended | elimination | none")]
MathOpt = Annotated[bool | None, typer.Option(help="answers end with 'The answer is: N' (math data)")]
StepsOpt = Annotated[int | None, typer.Option(help="optimisation steps T")]
CandidatesOpt = Annotated[int | None, typer.Option(help="candidate methods m per step")]
DevSizeOpt = Annotated[int | None, typer.Option(help="dev set size scoring each candidate")]
BatchOpt = Annotated[int | None, typer.Option(help="training minibatch per step")]
PoolOpt = Annotated[int | None, typer.Option(help="items sampled from the data for optimisation")]
PatienceOpt = Annotated[int | None, typer.Option(help="stop after N steps without a better method")]
ScreenOpt = Annotated[int | None, typer.Option(help="screen candidates on N dev items before the full dev set")]
InitialOpt = Annotated[
    str | None, typer.Option(help="method e0 the search starts from: a name (initial, weak) or a method file")
]
TrajectoryOpt = Annotated[
    int | None, typer.Option(min=1, max=3, help="rounds l each minibatch item is evolved for the optimizer")
]


def resolve_model(model: str | None, base_url: str | None, api_key_env: str | None) -> str:
    """The evol model the user meant: as given, else the only model at the base URL, else `local`.

    A base URL is never ignored: without --model it names an OpenAI-compatible server to ask.
    """
    import os

    from autoevol.api import served_model_spec

    if model is not None:
        return model
    url = base_url or os.environ.get("OPENAI_BASE_URL")
    if not url:
        return "local"
    chosen = served_model_spec(url, api_key_env)
    typer.echo(f"model: {chosen} (the only model served at {url})", err=True)
    return chosen


def _roles(model: str | None, responder: str | None, optimizer: str | None, base_url: str | None,
           api_key_env: str | None, concurrency: int | None, timeout: float | None, judge: str | None = None) -> Any:
    from autoevol.api import Roles

    def spec(text: str | None) -> Any:
        return model_spec(text, base_url, api_key_env, concurrency, timeout) if text else None

    evol = resolve_model(model, base_url, api_key_env)
    return Roles(evol=spec(evol), responder=spec(responder), optimizer=spec(optimizer), judge=spec(judge))


def evolve(
    data: DataArg,
    out: OutOpt,
    method: Annotated[
        str | None, typer.Option("--method", help="built-in method name or a method file [default: initial]")
    ] = None,
    model: ModelOpt = None,
    responder_model: ResponderOpt = None,
    judge_model: JudgeOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = None,
    request_timeout: TimeoutOpt = None,
    preset: PresetOpt = "default",
    rounds: RoundsOpt = None,
    mix: MixOpt = None,
    rule_set: RuleSetOpt = None,
    math_answers: MathOpt = None,
    schema: SchemaOpt = "auto",
    field: FieldOpt = None,
    id_field: IdFieldOpt = None,
    on_bad_row: BadRowOpt = "fail",
    encoding: EncodingOpt = None,
    limit: LimitOpt = None,
    quiet: QuietOpt = False,
    max_calls: MaxCallsOpt = None,
    max_tokens: MaxTokensOpt = None,
    retry_failed: RetryFailedOpt = False,
    overwrite: OverwriteOpt = False,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
) -> None:
    """Evolve every seed with one method, answer it, filter failures; resumable in --out."""
    from autoevol import api
    from autoevol.config import ExecSettings, evolve_settings
    from autoevol.data.source import DataSource

    def go() -> api.EvolveResult:
        roles = _roles(model, responder_model, None, base_url, api_key_env, concurrency, request_timeout, judge_model)
        settings = evolve_settings(preset, rounds=rounds, mix=mix, rule_set=rule_set, math_answers=math_answers)
        source = DataSource(data, schema=schema, field=field, id_field=id_field, on_bad_row=on_bad_row, limit=limit,
                            encoding=encoding)
        return api.evolve(source, methods=api.resolve_methods(method, settings), roles=roles, out=out,
                          settings=settings,
                          exec_settings=ExecSettings(quiet=quiet, max_calls=max_calls, max_tokens=max_tokens,
                                                     retry_failed=retry_failed, overwrite=overwrite,
                                                     engine=engine, ray_address=ray_address))

    result = guarded(go)
    print_summary(result.summary, quiet=quiet, run_dir=result.run_dir)


def optimize(
    data: DataArg,
    out: OutOpt,
    model: ModelOpt = None,
    optimizer_model: OptimizerOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = None,
    request_timeout: TimeoutOpt = None,
    preset: PresetOpt = "default",
    steps: StepsOpt = None,
    candidates: CandidatesOpt = None,
    dev_size: DevSizeOpt = None,
    batch_size: BatchOpt = None,
    pool_size: PoolOpt = None,
    patience: PatienceOpt = None,
    screen_size: ScreenOpt = None,
    initial_method: InitialOpt = None,
    trajectory_rounds: TrajectoryOpt = None,
    math_answers: MathOpt = None,
    schema: SchemaOpt = "auto",
    field: FieldOpt = None,
    encoding: EncodingOpt = None,
    quiet: QuietOpt = False,
    max_calls: MaxCallsOpt = None,
    max_tokens: MaxTokensOpt = None,
    overwrite: OverwriteOpt = False,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
) -> None:
    """Search for the evolving method with the lowest dev failure rate; writes output/best_method.json."""
    job = _job(locals(), with_evolve=False)
    outcome = guarded(job)
    typer.echo(f"best method {describe_outcome(outcome)} -> {out / 'output' / 'best_method.json'}")


def run(
    data: DataArg,
    out: OutOpt,
    model: ModelOpt = None,
    optimizer_model: OptimizerOpt = None,
    responder_model: ResponderOpt = None,
    judge_model: JudgeOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = None,
    request_timeout: TimeoutOpt = None,
    preset: PresetOpt = "default",
    steps: StepsOpt = None,
    candidates: CandidatesOpt = None,
    dev_size: DevSizeOpt = None,
    batch_size: BatchOpt = None,
    pool_size: PoolOpt = None,
    patience: PatienceOpt = None,
    screen_size: ScreenOpt = None,
    initial_method: InitialOpt = None,
    trajectory_rounds: TrajectoryOpt = None,
    rounds: RoundsOpt = None,
    mix: MixOpt = None,
    math_answers: MathOpt = None,
    schema: SchemaOpt = "auto",
    field: FieldOpt = None,
    encoding: EncodingOpt = None,
    limit: LimitOpt = None,
    quiet: QuietOpt = False,
    max_calls: MaxCallsOpt = None,
    max_tokens: MaxTokensOpt = None,
    retry_failed: RetryFailedOpt = False,
    overwrite: OverwriteOpt = False,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
) -> None:
    """Optimise an evolving method, then evolve the whole dataset with it (one resumable run)."""
    result = guarded(_job(locals(), with_evolve=True))
    if result.optimization is not None:
        typer.echo(f"selected method {describe_outcome(result.optimization)}")
    print_summary(result.summary, quiet=quiet, run_dir=result.run_dir)


def _job(opts: dict[str, Any], *, with_evolve: bool) -> Any:
    """Build the optimise (or optimise+evolve) call from a command's options."""
    import asyncio

    from autoevol import api
    from autoevol.config import ExecSettings, evolve_settings, optimize_settings
    from autoevol.data.source import DataSource

    def go() -> Any:
        roles = _roles(opts["model"], opts.get("responder_model"), opts["optimizer_model"], opts["base_url"],
                       opts["api_key_env"], opts["concurrency"], opts["request_timeout"], opts.get("judge_model"))
        names = ("steps", "candidates", "dev_size", "batch_size", "pool_size", "patience", "screen_size",
                 "initial_method", "trajectory_rounds")
        opt = optimize_settings(opts["preset"], **{n: opts[n] for n in names})
        evo = evolve_settings(opts["preset"], rounds=opts.get("rounds"), mix=opts.get("mix"),
                              math_answers=opts["math_answers"])
        source = DataSource(opts["data"], schema=opts["schema"], field=opts["field"], on_bad_row="skip",
                            limit=opts.get("limit"), encoding=opts["encoding"])
        exec_settings = ExecSettings(quiet=opts["quiet"], max_calls=opts["max_calls"], max_tokens=opts["max_tokens"],
                                     retry_failed=opts.get("retry_failed", False), overwrite=opts["overwrite"],
                                     engine=opts["engine"], ray_address=opts["ray_address"])
        if not opts["quiet"]:
            for line in api.estimate_for(source, opt, evo, with_evolve=with_evolve).lines():
                typer.echo(f"estimate: {line}")
        call = api.run_async if with_evolve else api.optimize_async
        return asyncio.run(call(source, roles=roles, out=opts["out"], settings=opt, evolve_settings=evo,
                                exec_settings=exec_settings, on_step=None if opts["quiet"] else print_step))

    return go
