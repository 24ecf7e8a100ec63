"""Synchronous `autoevol.evolve` / `optimize` / `run` for notebooks and scripts.

They take a path (or `hf:NAME`), a list of dicts, a pandas DataFrame or a `datasets.Dataset`, and
keep the command line's run-directory semantics: in-memory rows are first written to a JSONL file
named by their content, so calling again with the same rows and `out` resumes the same run.
`evolve` and `run` return the training rows as a `datasets.Dataset`; `optimize` returns the outcome
(the best method and its dev λ). Inside a running event loop (Jupyter) the work runs on a worker
thread, since `asyncio.run` cannot nest.

The keyword parameters are the command line's options under their field names (`autoevol.entry`
builds both); each function's docstring lists them with the settings' own descriptions. A setting
without a parameter of its own is reached through `evolve_settings` / `optimize_settings`.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from autoevol.config import (
    CutAnswers,
    DataOptions,
    EvolveSettings,
    ExecSettings,
    Mix,
    ModelOptions,
    OnBadRow,
    OptimizeSettings,
    RuleSetName,
    describe,
)

if TYPE_CHECKING:
    import datasets

    from autoevol.entry import Job, Kind
    from autoevol.optimization.job import OptimizeOutcome

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
EvolveBase = EvolveSettings | Mapping[str, Any] | None
OptimizeBase = OptimizeSettings | Mapping[str, Any] | None

#: The parameters that are no settings field; the others are described by their field.
_HELP = {
    "data": "a data file (JSONL, JSON, CSV, Parquet, a saved HF datasets directory), hf:NAME, a list of dicts, "
            "a pandas DataFrame or a datasets.Dataset",
    "out": "run directory (created, or resumed if it exists)",
    "method": "built-in method name or a method file [default: initial]",
    "preset": "paper | default | demo | evol-instruct (`autoevol presets`): the settings left unset",
    "evolve_settings": "an EvolveSettings (used instead of the preset) or a dict of its fields (over the preset); "
                       "the keyword arguments override either",
    "optimize_settings": "an OptimizeSettings (used instead of the preset) or a dict of its fields (over the "
                         "preset); the keyword arguments override either",
}
_MODELS: tuple[type[BaseModel], ...] = (DataOptions, ModelOptions, EvolveSettings, OptimizeSettings, ExecSettings)


def _help(name: str) -> str:
    if name in _HELP:
        return _HELP[name]
    for model in _MODELS:
        try:
            return describe(model, name)
        except KeyError:
            continue
    raise KeyError(f"no description for the notebook parameter {name!r}")  # found by the tests, not by a user


def _documented(fn: F) -> F:
    """Append a `Parameters` section, one line per parameter, in the words of the option models."""
    lines = [f"    {name}: {_help(name)}" for name in inspect.signature(fn).parameters]
    fn.__doc__ = f"{inspect.cleandoc(fn.__doc__ or '')}\n\nParameters:\n" + "\n".join(lines)
    return fn


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # A notebook's loop is running in this thread: run ours to completion on another one.
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as error:  # re-raised in the caller's thread
            box["error"] = error

    thread = threading.Thread(target=work, name="autoevol")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def _job(kind: Kind, values: dict[str, Any]) -> Job:
    """The same job the command line builds; in-memory rows become a file named by their content."""
    from autoevol import config, entry
    from autoevol.data.hub import materialize

    given = dict(values)
    preset = str(given.get("preset") or "default")
    evo, opt = given.pop("evolve_settings", None), given.pop("optimize_settings", None)
    if isinstance(evo, Mapping):
        evo = config.evolve_settings(preset, **evo)
    if isinstance(opt, Mapping):
        opt = config.optimize_settings(preset, **opt)
    if not isinstance(given["data"], str | os.PathLike):
        given["data"] = materialize(given["data"])
    return entry.job(kind, given, evolve_base=evo, optimize_base=opt)


def _call(kind: Kind, values: dict[str, Any]) -> Any:
    from autoevol import api
    from autoevol.entry import roles

    job = _job(kind, values)
    common: dict[str, Any] = {"roles": roles(job.models), "out": job.out, "exec_settings": job.exec}
    if job.optimize is None:
        methods = api.resolve_methods(job.method, job.evolve)
        return _run(api.evolve_async(job.source, methods=methods, settings=job.evolve, **common))
    call = api.optimize_async if kind == "optimize" else api.run_async
    return _run(call(job.source, settings=job.optimize, evolve_settings=job.evolve, **common))


def _dataset(run_dir: Path) -> datasets.Dataset:
    import datasets
    import pyarrow.parquet as pq

    return datasets.Dataset(pq.read_table(run_dir / "output" / "evolved.parquet"))


@_documented
def evolve(
    data: Any, out: str | os.PathLike[str], *, method: str | None = None, preset: str = "default",
    evolve_settings: EvolveBase = None, rounds: int | None = None, mix: Mix | None = None,
    rule_set: RuleSetName | None = None, math_answers: bool | None = None, evol_temperature: float | None = None,
    evol_max_tokens: int | None = None, respond_temperature: float | None = None,
    respond_max_tokens: int | None = None, cut_answers: CutAnswers | None = None, parse_retries: int | None = None,
    judge_max_tokens: int | None = None, seed: int | None = None,
    model: str | None = None, responder_model: str | None = None, judge_model: str | None = None,
    base_url: str | None = None, api_key_env: str | None = None, concurrency: int | None = None,
    request_timeout: float | None = None, schema: str = "auto", field: str | None = None,
    id_field: str | None = None, on_bad_row: OnBadRow = "fail", limit: int | None = None,
    encoding: str | None = None, split: str | None = None, quiet: bool = True, max_calls: int | None = None,
    max_tokens: int | None = None, overwrite: bool = False, retry_failed: bool = False,
) -> datasets.Dataset:
    """Evolve every row with one method, answer it and filter failures (`autoevol evolve`).

    Returns the training rows as a `datasets.Dataset`; the run directory `out` keeps everything.
    """
    result = _call("evolve", dict(locals()))
    return _dataset(result.run_dir)


@_documented
def optimize(
    data: Any, out: str | os.PathLike[str], *, preset: str = "default", optimize_settings: OptimizeBase = None,
    evolve_settings: EvolveBase = None, steps: int | None = None, candidates: int | None = None,
    dev_size: int | None = None, batch_size: int | None = None, pool_size: int | None = None,
    patience: int | None = None, screen_size: int | None = None, initial_method: str | None = None,
    trajectory_rounds: int | None = None, optimizer_temperature: float | None = None,
    optimizer_top_p: float | None = None, optimizer_max_tokens: int | None = None,
    score_parse_retries: int | None = None, evaluator_feedback: bool | None = None,
    rule_set: RuleSetName | None = None, math_answers: bool | None = None, evol_temperature: float | None = None,
    evol_max_tokens: int | None = None, respond_temperature: float | None = None,
    respond_max_tokens: int | None = None, cut_answers: CutAnswers | None = None, parse_retries: int | None = None,
    seed: int | None = None,
    model: str | None = None, optimizer_model: str | None = None, responder_model: str | None = None,
    judge_model: str | None = None, base_url: str | None = None, api_key_env: str | None = None,
    concurrency: int | None = None, request_timeout: float | None = None, schema: str = "auto",
    field: str | None = None, id_field: str | None = None, on_bad_row: OnBadRow = "fail", limit: int | None = None,
    encoding: str | None = None, split: str | None = None, quiet: bool = True, max_calls: int | None = None,
    max_tokens: int | None = None, overwrite: bool = False,
) -> OptimizeOutcome:
    """Search for the evolving method with the lowest dev failure rate (`autoevol optimize`).

    Returns the outcome: the best method and its dev λ (also in `out`/output/best_method.json).
    `rule_set` is the optimisation's; the evolve settings give the trajectories' caps and temperatures.
    """
    outcome: OptimizeOutcome = _call("optimize", dict(locals()))
    return outcome


@_documented
def run(
    data: Any, out: str | os.PathLike[str], *, preset: str = "default", optimize_settings: OptimizeBase = None,
    evolve_settings: EvolveBase = None, steps: int | None = None, candidates: int | None = None,
    dev_size: int | None = None, batch_size: int | None = None, pool_size: int | None = None,
    patience: int | None = None, screen_size: int | None = None, initial_method: str | None = None,
    trajectory_rounds: int | None = None, optimizer_temperature: float | None = None,
    optimizer_top_p: float | None = None, optimizer_max_tokens: int | None = None,
    score_parse_retries: int | None = None, evaluator_feedback: bool | None = None, rounds: int | None = None,
    mix: Mix | None = None, rule_set: RuleSetName | None = None, math_answers: bool | None = None,
    evol_temperature: float | None = None, evol_max_tokens: int | None = None,
    respond_temperature: float | None = None, respond_max_tokens: int | None = None,
    cut_answers: CutAnswers | None = None, parse_retries: int | None = None, judge_max_tokens: int | None = None,
    seed: int | None = None, model: str | None = None,
    optimizer_model: str | None = None, responder_model: str | None = None, judge_model: str | None = None,
    base_url: str | None = None, api_key_env: str | None = None, concurrency: int | None = None,
    request_timeout: float | None = None, schema: str = "auto", field: str | None = None,
    id_field: str | None = None, on_bad_row: OnBadRow = "fail", limit: int | None = None,
    encoding: str | None = None, split: str | None = None, quiet: bool = True, max_calls: int | None = None,
    max_tokens: int | None = None, overwrite: bool = False, retry_failed: bool = False,
) -> datasets.Dataset:
    """Optimise a method, then evolve every row with it (`autoevol run`): one resumable run.

    Returns the training rows as a `datasets.Dataset`. `rule_set` judges both phases alike.
    """
    result = _call("run", dict(locals()))
    return _dataset(result.run_dir)
