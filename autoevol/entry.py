"""One option set for every entry: the option values of a job, as the command line, a `--config`
file or a notebook call gives them, become the live values `autoevol.api` takes.

Each value belongs to exactly one of the option models of `autoevol.config` (found by field name),
so an option is declared once, there, and every entry builds the same things from it: the
`DataSource`, the `Roles`, the hashed settings (preset first, explicit values over it) and the
operational ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from autoevol.config import (
    DataOptions,
    EvolveSettings,
    ExecSettings,
    ModelOptions,
    OptimizeSettings,
    PlanOptions,
    PushOptions,
    build,
    evolve_settings,
    optimize_settings,
)
from autoevol.errors import ConfigError

if TYPE_CHECKING:
    from autoevol.data.source import DataSource
    from autoevol.llm.spec import Roles

Kind = Literal["evolve", "optimize", "run"]

#: Values that are no model's field: the data, the run directory, the method and the preset.
JOB_KEYS = frozenset({"data", "out", "method", "preset", "config"})
_SIDE_MODELS: tuple[type[BaseModel], ...] = (DataOptions, ModelOptions, ExecSettings, PlanOptions, PushOptions)


@dataclass(frozen=True, slots=True)
class Job:
    """Everything one job call needs, built from its option values."""

    kind: Kind
    source: DataSource
    out: Path
    method: str | None
    models: ModelOptions
    evolve: EvolveSettings
    optimize: OptimizeSettings | None  # None for `evolve`
    exec: ExecSettings
    plan: PlanOptions
    push: PushOptions


def _names(model: type[BaseModel]) -> set[str]:
    """A model's option names: the alias where it has one (`schema`), else the field name."""
    return {info.alias or name for name, info in model.model_fields.items()}


def _pick(model: type[BaseModel], values: Mapping[str, Any]) -> dict[str, Any]:
    """The values that are `model`'s fields; None means 'not given' (the field's default applies)."""
    names = _names(model)
    return {key: value for key, value in values.items() if key in names and value is not None}


def settings_values(kind: Kind, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(evolve, optimize) overrides. `rule_set` judges both phases of `run` alike (λ measures the
    filter the final pass applies); for `optimize` it is the optimisation's only."""
    evolve = _pick(EvolveSettings, values)
    optimize = _pick(OptimizeSettings, values) if kind != "evolve" else {}
    if kind == "optimize":
        evolve.pop("rule_set", None)
    return evolve, optimize


def job(
    kind: Kind, values: Mapping[str, Any], *, evolve_base: EvolveSettings | None = None,
    optimize_base: OptimizeSettings | None = None,
) -> Job:
    """Build a job from its option values (`data` and `out` among them). A `*_base` settings object
    replaces the preset as the starting point; an unknown name is refused, never ignored."""
    from autoevol.data.source import source_from_options

    models: tuple[type[BaseModel], ...] = (*_SIDE_MODELS, EvolveSettings, OptimizeSettings)
    known = JOB_KEYS.union(*(_names(m) for m in models))
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r} for {kind}")
    preset = str(values.get("preset") or "default")
    evolve_over, optimize_over = settings_values(kind, values)
    # The settings first: a wrong value is reported before an hf:NAME split is downloaded.
    evolve = evolve_settings(preset, evolve_base, **evolve_over)
    optimize = optimize_settings(preset, optimize_base, **optimize_over) if kind != "evolve" else None
    exec_settings = build(ExecSettings, "exec", _pick(ExecSettings, values))
    model_options = build(ModelOptions, "model", _pick(ModelOptions, values))
    data_options = build(DataOptions, "data", _pick(DataOptions, values))
    return Job(
        kind=kind,
        source=source_from_options(values["data"], data_options),
        out=Path(values["out"]),
        method=values.get("method"),
        models=model_options,
        evolve=evolve,
        optimize=optimize,
        exec=exec_settings,
        plan=build(PlanOptions, "plan", _pick(PlanOptions, values)),
        push=build(PushOptions, "push", _pick(PushOptions, values)),
    )


def resolve_model(
    model: str | None, base_url: str | None, api_key_env: str | None, announce: Callable[[str], None] | None = None
) -> str:
    """The evol model the user meant: as given, else the only model at the base URL, else `local`.

    A base URL is never ignored: without a model it names an OpenAI-compatible server to ask.
    `announce` hears which model was found (the command line prints it).
    """
    from autoevol.probe import served_model_spec

    if model is not None:
        return model
    url = base_url or os.environ.get("OPENAI_BASE_URL")
    if not url:
        return "local"
    chosen = served_model_spec(url, api_key_env)
    if announce is not None:
        announce(f"model: {chosen} (the only model served at {url})")
    return chosen


def roles(options: ModelOptions, announce: Callable[[str], None] | None = None) -> Roles:
    """The models of a job; a role left unset falls back to the evol LLM (`Roles.resolved`)."""
    from autoevol.llm.spec import ModelSpec, Roles, parse_model_spec

    def spec(text: str) -> ModelSpec:
        return parse_model_spec(text, base_url=options.base_url, api_key_env=options.api_key_env,
                                concurrency=options.concurrency, request_timeout=options.request_timeout)

    def role(text: str | None) -> ModelSpec | None:
        return spec(text) if text else None

    evol = spec(resolve_model(options.model, options.base_url, options.api_key_env, announce))
    return Roles(evol=evol, responder=role(options.responder_model), optimizer=role(options.optimizer_model),
                 judge=role(options.judge_model))
