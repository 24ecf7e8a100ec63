"""Synchronous `autoevol.evolve` / `optimize` / `run` for notebooks and scripts.

They take a path (or `hf:NAME`), a list of dicts, a pandas DataFrame or a `datasets.Dataset`, and
keep the command line's run-directory semantics: in-memory rows are first written to a JSONL file
named by their content, so calling again with the same rows and `out` resumes the same run.
`evolve` and `run` return the training rows as a `datasets.Dataset`; `optimize` returns the outcome
(the best method and its dev λ). Inside a running event loop (Jupyter) the work runs on a worker
thread, since `asyncio.run` cannot nest.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import datasets

    from autoevol.data.source import DataSource
    from autoevol.llm.spec import Roles
    from autoevol.optimization.job import OptimizeOutcome

T = TypeVar("T")


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


def _source(data: Any, schema: str, field: str | None, id_field: str | None, on_bad_row: str,
            limit: int | None, split: str | None) -> DataSource:
    from autoevol.data.hub import is_hub_name, local_copy, materialize
    from autoevol.data.readers import OnBadRow
    from autoevol.data.source import DataSource
    from autoevol.errors import ConfigError

    if isinstance(data, str | os.PathLike):
        path = Path(data)
        if is_hub_name(str(data)):
            path, split = local_copy(str(data), split), None
    else:
        path = materialize(data)
    if on_bad_row not in ("fail", "skip"):
        raise ConfigError(f"on_bad_row must be 'fail' or 'skip', got {on_bad_row!r}")
    policy: OnBadRow = "skip" if on_bad_row == "skip" else "fail"
    return DataSource(path, schema=schema, field=field, id_field=id_field, on_bad_row=policy, limit=limit,
                      split=split)


def _roles(model: str | None, base_url: str | None, api_key_env: str | None, concurrency: int | None,
           request_timeout: float | None) -> Roles:
    from autoevol.llm.spec import Roles, parse_model_spec
    from autoevol.probe import served_model_spec

    url = base_url or os.environ.get("OPENAI_BASE_URL")
    text = model or (served_model_spec(url, api_key_env) if url else "local")
    return Roles(evol=parse_model_spec(text, base_url=base_url, api_key_env=api_key_env, concurrency=concurrency,
                                       request_timeout=request_timeout))


def _dataset(run_dir: Path) -> datasets.Dataset:
    import datasets
    import pyarrow.parquet as pq

    return datasets.Dataset(pq.read_table(run_dir / "output" / "evolved.parquet"))


def evolve(
    data: Any, out: str | os.PathLike[str], *, model: str | None = None, base_url: str | None = None,
    api_key_env: str | None = None, method: str | None = None, preset: str = "default", schema: str = "auto",
    field: str | None = None, id_field: str | None = None, on_bad_row: str = "fail", limit: int | None = None,
    split: str | None = None, concurrency: int | None = None, request_timeout: float | None = None,
    quiet: bool = True, max_calls: int | None = None, max_tokens: int | None = None, overwrite: bool = False,
    **settings: Any,
) -> datasets.Dataset:
    """Evolve every row with one method (`autoevol evolve`); `settings` are `EvolveSettings` fields."""
    from autoevol import api
    from autoevol.config import ExecSettings, evolve_settings

    evo = evolve_settings(preset, **settings)
    result = _run(api.evolve_async(
        _source(data, schema, field, id_field, on_bad_row, limit, split), methods=api.resolve_methods(method, evo),
        roles=_roles(model, base_url, api_key_env, concurrency, request_timeout), out=Path(out), settings=evo,
        exec_settings=ExecSettings(quiet=quiet, max_calls=max_calls, max_tokens=max_tokens, overwrite=overwrite),
    ))
    return _dataset(result.run_dir)


def optimize(
    data: Any, out: str | os.PathLike[str], *, model: str | None = None, base_url: str | None = None,
    api_key_env: str | None = None, preset: str = "default", schema: str = "auto", field: str | None = None,
    id_field: str | None = None, on_bad_row: str = "fail", limit: int | None = None, split: str | None = None,
    concurrency: int | None = None, request_timeout: float | None = None, quiet: bool = True,
    max_calls: int | None = None, max_tokens: int | None = None, overwrite: bool = False, **settings: Any,
) -> OptimizeOutcome:
    """Search for the best evolving method (`autoevol optimize`); `settings` are `OptimizeSettings` fields."""
    from autoevol import api
    from autoevol.config import ExecSettings, evolve_settings, optimize_settings

    return _run(api.optimize_async(
        _source(data, schema, field, id_field, on_bad_row, limit, split),
        roles=_roles(model, base_url, api_key_env, concurrency, request_timeout), out=Path(out),
        settings=optimize_settings(preset, **settings), evolve_settings=evolve_settings(preset),
        exec_settings=ExecSettings(quiet=quiet, max_calls=max_calls, max_tokens=max_tokens, overwrite=overwrite),
    ))


def run(
    data: Any, out: str | os.PathLike[str], *, model: str | None = None, base_url: str | None = None,
    api_key_env: str | None = None, preset: str = "default", schema: str = "auto", field: str | None = None,
    id_field: str | None = None, on_bad_row: str = "fail", limit: int | None = None, split: str | None = None,
    concurrency: int | None = None, request_timeout: float | None = None, quiet: bool = True,
    max_calls: int | None = None, max_tokens: int | None = None, overwrite: bool = False,
    optimize_settings: dict[str, Any] | None = None, evolve_settings: dict[str, Any] | None = None,
) -> datasets.Dataset:
    """Optimise a method, then evolve every row with it (`autoevol run`); the settings dicts override the preset."""
    from autoevol import api
    from autoevol import config as cfg

    result = _run(api.run_async(
        _source(data, schema, field, id_field, on_bad_row, limit, split),
        roles=_roles(model, base_url, api_key_env, concurrency, request_timeout), out=Path(out),
        settings=cfg.optimize_settings(preset, **(optimize_settings or {})),
        evolve_settings=cfg.evolve_settings(preset, **(evolve_settings or {})),
        exec_settings=cfg.ExecSettings(quiet=quiet, max_calls=max_calls, max_tokens=max_tokens, overwrite=overwrite),
    ))
    return _dataset(result.run_dir)
