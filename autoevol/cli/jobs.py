"""The three job commands: `evolve`, `optimize` and `run` (optimise, then evolve everything).

Each command turns its options into typed settings and makes one call into `autoevol.api`; the
coroutine runs here, at the edge, under `guarded` (one line per error, an exit code). `--dry-run`
makes `plan.dry_run` the call instead: the data is read and checked, nothing is sent.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from autoevol.cli.options import (
    ApiKeyEnvOpt,
    BadRowOpt,
    BaseUrlOpt,
    BatchOpt,
    CandidatesOpt,
    ConcurrencyOpt,
    ConfigOpt,
    DataArg,
    DevSizeOpt,
    DryRunOpt,
    EncodingOpt,
    EngineOpt,
    ExportFormat,
    ExportOpt,
    FieldOpt,
    HubPrivateOpt,
    IdFieldOpt,
    InitialOpt,
    JudgeOpt,
    LimitOpt,
    MathOpt,
    MaxCallsOpt,
    MaxTokensOpt,
    MixOpt,
    ModelOpt,
    OptimizerOpt,
    OutOpt,
    OverwriteOpt,
    PatienceOpt,
    PoolOpt,
    PresetOpt,
    PriceInOpt,
    PriceOutOpt,
    PushOpt,
    QuietOpt,
    RayAddressOpt,
    ResponderOpt,
    RetryFailedOpt,
    RoundsOpt,
    RuleSetOpt,
    SchemaOpt,
    ScreenOpt,
    SplitOpt,
    StepsOpt,
    TimeoutOpt,
    TrajectoryOpt,
)
from autoevol.cli.support import (
    describe_outcome,
    guarded,
    model_spec,
    print_data,
    print_dry_run,
    print_outcome,
    print_step,
    print_summary,
)

if TYPE_CHECKING:  # the API stack loads only when a command runs, so `--help` stays fast
    from autoevol.config import Export
    from autoevol.data.source import DataSource
    from autoevol.llm.spec import ModelSpec, Roles

MethodOpt = Annotated[
    str | None, typer.Option("--method", help="built-in method name or a method file [default: initial]")
]


def resolve_model(model: str | None, base_url: str | None, api_key_env: str | None) -> str:
    """The evol model the user meant: as given, else the only model at the base URL, else `local`.

    A base URL is never ignored: without --model it names an OpenAI-compatible server to ask.
    """
    import os

    from autoevol.probe import served_model_spec

    if model is not None:
        return model
    url = base_url or os.environ.get("OPENAI_BASE_URL")
    if not url:
        return "local"
    chosen = served_model_spec(url, api_key_env)
    typer.echo(f"model: {chosen} (the only model served at {url})", err=True)
    return chosen


def roles(
    model: str | None, *, responder: str | None = None, optimizer: str | None = None, judge: str | None = None,
    base_url: str | None, api_key_env: str | None, concurrency: int | None, timeout: float | None,
) -> Roles:
    """The models of a job; a role left unset falls back to the evol LLM (`Roles.resolved`)."""
    from autoevol.llm.spec import Roles

    def spec(text: str | None) -> ModelSpec | None:
        return model_spec(text, base_url, api_key_env, concurrency, timeout) if text else None

    evol = model_spec(resolve_model(model, base_url, api_key_env), base_url, api_key_env, concurrency, timeout)
    return Roles(evol=evol, responder=spec(responder), optimizer=spec(optimizer), judge=spec(judge))


def source(
    data: Path, *, schema: str, field: str | None, id_field: str | None, on_bad_row: str, limit: int | None,
    encoding: str | None, split: str | None,
) -> DataSource:
    from autoevol.data.hub import is_hub_name, local_copy
    from autoevol.data.readers import OnBadRow
    from autoevol.data.source import DataSource

    policy: OnBadRow = "skip" if on_bad_row == "skip" else "fail"  # typer has checked the choice already
    if is_hub_name(str(data)):
        # A local copy of the split: the run hashes, resumes and re-reads a file like any other.
        data, split = local_copy(str(data), split), None
    return DataSource(data, schema=schema, field=field, id_field=id_field, on_bad_row=policy, limit=limit,
                      encoding=encoding, split=split)


def evolve(
    data: DataArg,
    out: OutOpt,
    method: MethodOpt = None,
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
    split: SplitOpt = None,
    limit: LimitOpt = None,
    export: ExportOpt = None,
    push_to_hub: PushOpt = None,
    hub_private: HubPrivateOpt = False,
    quiet: QuietOpt = False,
    max_calls: MaxCallsOpt = None,
    max_tokens: MaxTokensOpt = None,
    retry_failed: RetryFailedOpt = False,
    overwrite: OverwriteOpt = False,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    dry_run: DryRunOpt = False,
    price_in: PriceInOpt = None,
    price_out: PriceOutOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Evolve every seed with one method, answer it, filter failures; resumable in --out."""
    from autoevol import api, plan
    from autoevol.config import ExecSettings, evolve_settings

    settings = guarded(lambda: evolve_settings(preset, rounds=rounds, mix=mix, rule_set=rule_set,
                                               math_answers=math_answers))
    seeds = guarded(lambda: source(data, schema=schema, field=field, id_field=id_field, on_bad_row=on_bad_row,
                                   limit=limit, encoding=encoding, split=split))
    check_push(push_to_hub)
    if dry_run:
        def checked() -> plan.DryRun:
            api.resolve_methods(method, settings)  # a wrong --method is found now, before any estimate
            return plan.dry_run(seeds, None, settings, with_evolve=True)

        return print_dry_run(guarded(checked), price_in, price_out)

    def go() -> api.EvolveResult:
        models = roles(model, responder=responder_model, judge=judge_model, base_url=base_url,
                       api_key_env=api_key_env, concurrency=concurrency, timeout=request_timeout)
        exec_settings = ExecSettings(quiet=quiet, max_calls=max_calls, max_tokens=max_tokens,
                                     retry_failed=retry_failed, overwrite=overwrite, export=exports(export),
                                     engine=engine, ray_address=ray_address)
        if not quiet:
            print_data(seeds)
        return asyncio.run(api.evolve_async(seeds, methods=api.resolve_methods(method, settings), roles=models,
                                            out=out, settings=settings, exec_settings=exec_settings))

    result = guarded(go)
    print_summary(result.summary, quiet=quiet, run_dir=result.run_dir)
    push(result.run_dir, push_to_hub, hub_private)


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
    rule_set: RuleSetOpt = None,
    math_answers: MathOpt = None,
    schema: SchemaOpt = "auto",
    field: FieldOpt = None,
    id_field: IdFieldOpt = None,
    on_bad_row: BadRowOpt = "fail",
    encoding: EncodingOpt = None,
    split: SplitOpt = None,
    limit: LimitOpt = None,
    quiet: QuietOpt = False,
    max_calls: MaxCallsOpt = None,
    max_tokens: MaxTokensOpt = None,
    overwrite: OverwriteOpt = False,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    dry_run: DryRunOpt = False,
    price_in: PriceInOpt = None,
    price_out: PriceOutOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Search for the evolving method with the lowest dev failure rate; writes output/best_method.json."""
    from autoevol import api, plan
    from autoevol.config import ExecSettings, evolve_settings, optimize_settings
    from autoevol.optimization.job import OptimizeOutcome

    opt = guarded(lambda: optimize_settings(
        preset, steps=steps, candidates=candidates, dev_size=dev_size, batch_size=batch_size, pool_size=pool_size,
        patience=patience, screen_size=screen_size, initial_method=initial_method,
        trajectory_rounds=trajectory_rounds, rule_set=rule_set))
    evo = guarded(lambda: evolve_settings(preset, math_answers=math_answers))
    seeds = guarded(lambda: source(data, schema=schema, field=field, id_field=id_field, on_bad_row=on_bad_row,
                                   limit=limit, encoding=encoding, split=split))
    if dry_run:
        return print_dry_run(guarded(lambda: plan.dry_run(seeds, opt, evo, with_evolve=False)), price_in, price_out)

    def go() -> OptimizeOutcome:
        models = roles(model, optimizer=optimizer_model, base_url=base_url, api_key_env=api_key_env,
                       concurrency=concurrency, timeout=request_timeout)
        exec_settings = ExecSettings(quiet=quiet, max_calls=max_calls, max_tokens=max_tokens, overwrite=overwrite,
                                     engine=engine, ray_address=ray_address)
        if not quiet:
            print_data(seeds)
            print_estimate(plan.estimate_for(seeds, opt, evo, with_evolve=False).lines(price_in, price_out))
        return asyncio.run(api.optimize_async(seeds, roles=models, out=out, settings=opt, evolve_settings=evo,
                                              exec_settings=exec_settings, on_step=None if quiet else print_step))

    outcome = guarded(go)
    print_outcome(outcome, quiet=quiet)
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
    rule_set: RuleSetOpt = None,
    math_answers: MathOpt = None,
    schema: SchemaOpt = "auto",
    field: FieldOpt = None,
    id_field: IdFieldOpt = None,
    on_bad_row: BadRowOpt = "fail",
    encoding: EncodingOpt = None,
    split: SplitOpt = None,
    limit: LimitOpt = None,
    export: ExportOpt = None,
    push_to_hub: PushOpt = None,
    hub_private: HubPrivateOpt = False,
    quiet: QuietOpt = False,
    max_calls: MaxCallsOpt = None,
    max_tokens: MaxTokensOpt = None,
    retry_failed: RetryFailedOpt = False,
    overwrite: OverwriteOpt = False,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    dry_run: DryRunOpt = False,
    price_in: PriceInOpt = None,
    price_out: PriceOutOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Optimise an evolving method, then evolve the whole dataset with it (one resumable run)."""
    from autoevol import api, plan
    from autoevol.config import ExecSettings, evolve_settings, optimize_settings

    # --rule-set judges both phases alike: λ measures the filter the final pass will apply.
    opt = guarded(lambda: optimize_settings(
        preset, steps=steps, candidates=candidates, dev_size=dev_size, batch_size=batch_size, pool_size=pool_size,
        patience=patience, screen_size=screen_size, initial_method=initial_method,
        trajectory_rounds=trajectory_rounds, rule_set=rule_set))
    evo = guarded(lambda: evolve_settings(preset, rounds=rounds, mix=mix, rule_set=rule_set, math_answers=math_answers))
    seeds = guarded(lambda: source(data, schema=schema, field=field, id_field=id_field, on_bad_row=on_bad_row,
                                   limit=limit, encoding=encoding, split=split))
    check_push(push_to_hub)
    if dry_run:
        return print_dry_run(guarded(lambda: plan.dry_run(seeds, opt, evo, with_evolve=True)), price_in, price_out)

    def go() -> api.EvolveResult:
        models = roles(model, responder=responder_model, optimizer=optimizer_model, judge=judge_model,
                       base_url=base_url, api_key_env=api_key_env, concurrency=concurrency, timeout=request_timeout)
        exec_settings = ExecSettings(quiet=quiet, max_calls=max_calls, max_tokens=max_tokens,
                                     retry_failed=retry_failed, overwrite=overwrite, export=exports(export),
                                     engine=engine, ray_address=ray_address)
        if not quiet:
            print_data(seeds)
            print_estimate(plan.estimate_for(seeds, opt, evo, with_evolve=True).lines(price_in, price_out))
        return asyncio.run(api.run_async(seeds, roles=models, out=out, settings=opt, evolve_settings=evo,
                                         exec_settings=exec_settings, on_step=None if quiet else print_step))

    result = guarded(go)
    if result.optimization is not None:
        print_outcome(result.optimization, quiet=quiet)
        typer.echo(f"selected method {describe_outcome(result.optimization)}")
    print_summary(result.summary, quiet=quiet, run_dir=result.run_dir)
    push(result.run_dir, push_to_hub, hub_private)


def check_push(repo: str | None) -> None:
    """Before anything is spent: a run must not finish only to find it cannot be pushed."""
    if repo is not None:
        from autoevol.report.publish import check_push as check

        guarded(lambda: check(repo))


def push(run_dir: Path, repo: str | None, private: bool) -> None:
    """After the outputs are written; a refusal is one line and exit code 8, the run stays finished."""
    if repo is not None:
        from autoevol import api

        url = guarded(lambda: api.push_to_hub(run_dir, repo, private=private))
        typer.echo(f"pushed to the Hub: {url}")


def exports(formats: list[ExportFormat] | None) -> tuple[Export, ...]:
    return tuple("alpaca" if f is ExportFormat.alpaca else "sharegpt" for f in formats or ())


def print_estimate(lines: list[str]) -> None:
    for line in lines:
        typer.echo(f"estimate: {line}")
