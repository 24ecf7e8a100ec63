"""Run configuration: what is hashed (it decides the output) and what is not (how fast we get it).

`EvolveSettings` and `OptimizeSettings` are semantic: they go into the run manifest and their hash
guards resume. `ExecSettings` are operational knobs that may change between a run and its resume.
Presets expand into explicit fields; the manifest records every resolved value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autoevol.errors import ConfigError

Mix = Literal["last", "all", "last+seed", "all+seed"]
OnBadRow = Literal["fail", "skip"]
Export = Literal["alpaca", "sharegpt"]
RuleSetName = Literal["paper", "extended", "default", "reference", "elimination", "none"]
CutAnswers = Literal["reask", "keep", "fail"]
S = TypeVar("S", bound=BaseModel)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Fields added after run schema 2: each enters the hash only when it differs from its default,
    #: so a run directory written before the field existed still hashes to what it recorded.
    LATE_FIELDS: ClassVar[tuple[str, ...]] = ()

    def hashed(self) -> dict[str, Any]:
        """The settings as a run's manifest hashes them (every field, late ones only when set)."""
        dumped = self.model_dump(mode="json")
        for name in self.LATE_FIELDS:
            if getattr(self, name) == type(self).model_fields[name].default:
                dumped.pop(name)
        return dumped


class EvolveSettings(_Frozen):
    rounds: int = Field(1, ge=1, le=20, description="evolution rounds; round k evolves round k-1's accepted rows")
    mix: Mix = Field("last", description="what the final dataset holds: last round or all rounds, +seed adds seeds")
    rule_set: RuleSetName = Field(
        "extended", description="failure rules applied to each response; 'none' keeps every usable row (the paper); "
        "on `run` it sets the optimisation's rules too"
    )
    operations: tuple[str, ...] = Field(
        (), description="evolve with one of these methods picked at random per row and round (Evol-Instruct)"
    )
    failed_back_to_pool: bool = Field(
        False, description="a rejected row's parent goes on to the next round (Evol-Instruct's pool)"
    )
    judge_information_gain: bool | None = Field(
        None, description="ask the judge whether an evolution changed anything (default: with the elimination rules)"
    )
    evol_temperature: float = Field(0.0, ge=0, le=2, description="evol LLM temperature when rewriting")
    evol_max_tokens: int = Field(
        1536, ge=16, description="token ceiling for one rewrite; a first attempt is capped lower, by the method's "
        "steps, and one cut off there is asked again at this ceiling"
    )
    respond_temperature: float = Field(0.0, ge=0, le=2, description="temperature when answering")
    respond_max_tokens: int = Field(1500, ge=16, description="token cap for one answer (the reference code's 1,500)")
    cut_answers: CutAnswers = Field(
        "reask", description="an answer cut at its token cap: reask once at twice the cap before it counts as "
        "truncated; keep it, flagged answer_cut (the paper); or fail it"
    )
    judge_max_tokens: int = Field(
        64, ge=8, description="token cap for the equal/not-equal judge; a reply cut there passes as judge_unparsable"
    )
    math_answers: bool = Field(False, description="ask answers to end with 'The answer is: N'")
    parse_retries: int = Field(1, ge=0, le=5, description="re-ask the evol LLM when its rewrite cannot be parsed")
    seed: int = Field(0, description="seed for every random choice")

    LATE_FIELDS: ClassVar[tuple[str, ...]] = ("cut_answers", "judge_max_tokens")

    @property
    def judges(self) -> bool:
        """W1 belongs to Evol-Instruct's elimination rules: on with them unless turned off."""
        if self.judge_information_gain is not None:
            return self.judge_information_gain
        return self.rule_set == "elimination"


class OptimizeSettings(_Frozen):
    pool_size: int = Field(2000, ge=2, description="items sampled from the data for optimisation")
    dev_size: int = Field(50, ge=1, description="held-out dev items scoring each candidate")
    batch_size: int = Field(10, ge=1, description="training minibatch per step")
    steps: int = Field(10, ge=1, description="optimisation steps T")
    candidates: int = Field(5, ge=1, description="analysis+rewrite samples m per step")
    trajectory_rounds: int = Field(1, ge=1, le=3, description="rounds l each minibatch item is evolved")
    patience: int | None = Field(None, ge=1, description="stop after this many steps without a better method")
    optimizer_temperature: float = Field(0.6, ge=0, le=2, description="optimizer LLM temperature when analysing "
                                         "and rewriting methods")
    optimizer_top_p: float = Field(0.95, gt=0, le=1, description="optimizer LLM nucleus sampling (top_p)")
    optimizer_max_tokens: int = Field(2048, ge=64, description="token cap for one analysis or method rewrite")
    incumbent_competes: bool = Field(True, description="re-score the current method and keep it unless beaten")
    return_best: bool = Field(True, description="return the best method seen, not the last one selected")
    tie_break: Literal["index", "length_ratio"] = Field("length_ratio", description="how equal λ are ordered")
    hygiene: bool = Field(True, description="repair or discard candidates that lost the slot or final marker")
    count_parse_failures: bool = Field(True, description="an unparsable rewrite counts as a failure in λ")
    screen_size: int | None = Field(None, ge=1, description="screen candidates on this many dev items first")
    rule_set: RuleSetName = Field(
        "reference", description="failure rules deciding λ (default: the reference code's plain substrings)"
    )
    initial_method: str = Field("initial", description="the method e0 the loop starts from")
    score_math_answers: bool = Field(
        False, description="dev-scoring answers end with 'The answer is: N' too (biases λ toward 0; off in the paper)"
    )
    score_parse_retries: int = Field(
        0, ge=0, le=5, description="sampled re-asks of an unparsable rewrite while scoring a dev item (the spec: none)"
    )
    evaluator_feedback: bool | None = Field(
        None, description="show the optimizer the checks' verdict beside each trajectory stage and the current "
        "method's failed dev items (default: on, except with the paper's λ rules, rule set 'paper')"
    )

    LATE_FIELDS: ClassVar[tuple[str, ...]] = ("score_parse_retries", "evaluator_feedback")

    @property
    def shows_feedback(self) -> bool:
        """Evaluator feedback on or off. Unset, the paper's λ rules mean the paper's plain trajectory: so
        the `paper` preset needs no value of its own, and a `paper` run started before the field
        existed hashes, resumes and prompts as it did (a preset value would enter the hash)."""
        if self.evaluator_feedback is not None:
            return self.evaluator_feedback
        return self.rule_set != "paper"


class ExecSettings(_Frozen):
    """Not hashed: may differ between a run and its resume."""

    quiet: bool = Field(False, description="no progress display (events.jsonl is still written)")
    max_calls: int | None = Field(None, ge=1, description="stop cleanly after N paid calls")
    max_tokens: int | None = Field(None, ge=1, description="stop cleanly after N paid tokens")
    workers: int | None = Field(None, ge=1, description="units in progress at once (default: from concurrency)")
    overwrite: bool = Field(False, description="start the run directory afresh (removes only autoevol's files)")
    retry_failed: bool = Field(
        False, description="also retry rows the server rejected outright (400, 413, context too long)"
    )
    max_consecutive_errors: int = Field(
        25, ge=1, description="stop (resumably) after this many rows in a row fail on model errors"
    )
    export: tuple[Export, ...] = Field(
        (), description="also write the training set as output/evolved.FORMAT.jsonl (alpaca, sharegpt); repeatable"
    )
    progress_interval_s: float | None = Field(
        None, gt=0, description="seconds between plain progress lines when stderr is not a terminal "
        "(default: $AUTOEVOL_PROGRESS_INTERVAL, else 10)"
    )
    engine: Literal["local", "ray"] = Field("local", description="where units run: this process, or Ray actors")
    ray_address: str | None = Field(None, description="Ray cluster to join (e.g. auto, ray://HOST:10001)")
    ray_workers: int | None = Field(None, ge=1, description="Ray actors (default: the cluster's CPUs)")


class PlanOptions(_Frozen):
    """Options about a command rather than a run: they decide nothing that is recorded."""

    dry_run: bool = Field(
        False, description="validate the data, print the detected schema, the split and the estimate; send nothing"
    )
    price_in: float | None = Field(None, ge=0, description="$ per million prompt tokens, to price the estimate")
    price_out: float | None = Field(None, ge=0, description="$ per million completion tokens, to price the estimate")
    config: str | None = Field(
        None, description="TOML file of option values (keys as the long option names; an [evolve], [optimize] "
        "or [run] section overrides the top-level keys for that command); the command line wins"
    )


class PushOptions(_Frozen):
    """Publishing a finished run: not recorded, since a push changes nothing in the run directory."""

    push_to_hub: str | None = Field(
        None, description="when the run is finished, push output/evolved.parquet and a dataset card to this "
        "Hugging Face dataset repository (ORG/NAME; token from $HF_TOKEN, endpoint from $HF_ENDPOINT)"
    )
    hub_private: bool = Field(False, description="create the Hub repository as private (an existing one is kept as is)")


class DataOptions(_Frozen):
    """How the seed data is read: the command-line face of `DataSource` (its help text lives here)."""

    schema_: str = Field("auto", alias="schema", description="auto | instruction | alpaca | sharegpt | messages")
    field: str | None = Field(None, description="instruction field name (e.g. question)")
    id_field: str | None = Field(None, description="field holding a stable row id")
    on_bad_row: OnBadRow = Field("fail", description="fail: stop at a bad row; skip: record it as failed")
    limit: int | None = Field(None, ge=1, description="use only the first N rows")
    encoding: str | None = Field(
        None, description="text encoding of a JSON/CSV data file, e.g. latin-1 [default: UTF-8]"
    )
    split: str | None = Field(None, description="split of a Hugging Face DatasetDict or hf:NAME [default: train]")


class ModelOptions(_Frozen):
    """Which models play which part, as the command line names them (specs: `autoevol.llm.spec`)."""

    model: str | None = Field(
        None,
        description="evol LLM: `local`, `local:PATH.gguf`, `openai:MODEL` or a .toml/.json spec file "
        "(default: the only model served at --base-url / OPENAI_BASE_URL if one is set, else `local`)",
    )
    responder_model: str | None = Field(None, description="model that writes the responses (default: the evol LLM)")
    judge_model: str | None = Field(
        None, description="model for the 'equal / not equal' judgement (default: the evol LLM)"
    )
    optimizer_model: str | None = Field(
        None, description="model that analyses and rewrites methods (default: the evol LLM)"
    )
    tagger_model: str | None = Field(
        None, description="model that tags instructions (InsTag-style complexity and diversity); off if unset"
    )
    base_url: str | None = Field(None, description="OpenAI-compatible base URL for `openai:` models (vLLM, Ollama)")
    api_key_env: str | None = Field(
        None, description="environment variable holding the API key (default OPENAI_API_KEY)"
    )
    concurrency: int | None = Field(None, ge=1, description="requests in flight per endpoint (local: 1)")
    request_timeout: float | None = Field(None, ge=0.1, description="per-request deadline in seconds")


def describe(model: type[BaseModel], name: str) -> str:
    """A settings field's description: the one source of the matching command-line option's help."""
    info = model.model_fields.get(name) or model.model_fields.get(name + "_")
    if info is None or not info.description:
        raise KeyError(f"{model.__name__}.{name} has no description")  # a typo in an option must not ship
    return info.description


PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {
        # The paper keeps every row of its final pass: no rule filters it, a cut-off answer is kept
        # (flagged), and only a rewrite with no usable text is dropped.
        "evolve": {"rule_set": "none", "rounds": 1, "mix": "last", "parse_retries": 0, "cut_answers": "keep"},
        # "Stop when λ no longer decreases": one step without a new lowest λ ends the search.
        "optimize": {
            "incumbent_competes": False, "return_best": False, "tie_break": "index", "hygiene": False,
            "count_parse_failures": False, "rule_set": "paper", "patience": 1,  # and so no evaluator feedback
        },
    },
    "default": {"evolve": {}, "optimize": {}},
    "demo": {
        "evolve": {"evol_max_tokens": 320, "respond_max_tokens": 160},
        "optimize": {
            "pool_size": 40, "dev_size": 6, "batch_size": 3, "steps": 2, "candidates": 2,
            "optimizer_max_tokens": 600,
        },
    },
    "evol-instruct": {
        "evolve": {
            "rounds": 4, "mix": "all+seed", "rule_set": "elimination", "failed_back_to_pool": True,
            "judge_information_gain": True,
            # WizardLM's decoding: a row sent back to the pool must be able to come out differently.
            "evol_temperature": 1.0,
            "operations": (
                "evol-constraints", "evol-deepen", "evol-concretize", "evol-reasoning",
                "evol-complicate-input", "evol-breadth",
            ),
        },
        "optimize": {},
    },
}


def build(model: type[S], section: str, fields: Mapping[str, Any]) -> S:
    """`model(**fields)`, a validation error as one ConfigError line naming each bad field."""
    try:
        return model.model_validate(dict(fields))
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"invalid {section} settings: {problems}") from None


def _resolve(model: type[S], preset: str, section: str, overrides: dict[str, Any], base: S | None) -> S:
    """Preset values (or, when given, every value of `base`), then explicit overrides (None means 'not given')."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    start = dict(base) if base is not None else dict(PRESETS[preset][section])
    return build(model, section, start | {k: v for k, v in overrides.items() if v is not None})


def evolve_settings(preset: str, base: EvolveSettings | None = None, **overrides: Any) -> EvolveSettings:
    return _resolve(EvolveSettings, preset, "evolve", overrides, base)


def optimize_settings(preset: str, base: OptimizeSettings | None = None, **overrides: Any) -> OptimizeSettings:
    return _resolve(OptimizeSettings, preset, "optimize", overrides, base)


def config_hash(config: dict[str, Any]) -> str:
    payload = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "c-" + hashlib.sha256(payload.encode()).hexdigest()[:16]
