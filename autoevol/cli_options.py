"""Options shared by every command, spelled the same way everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "--evol-model",
        "-m",
        help="evol LLM: `local`, `local:PATH.gguf`, `openai:MODEL` or a .toml/.json spec file "
        "(default: the only model served at --base-url / OPENAI_BASE_URL if one is set, else `local`)",
    ),
]
ResponderOpt = Annotated[
    str | None, typer.Option("--responder-model", help="model that writes the responses (default: the evol LLM)")
]
JudgeOpt = Annotated[
    str | None, typer.Option("--judge-model", help="model for the 'equal / not equal' judgement (default: evol LLM)")
]
OptimizerOpt = Annotated[
    str | None, typer.Option("--optimizer-model", help="model that analyses and rewrites methods (default: evol LLM)")
]
BaseUrlOpt = Annotated[
    str | None, typer.Option("--base-url", help="OpenAI-compatible base URL for `openai:` models (e.g. vLLM, Ollama)")
]
ApiKeyEnvOpt = Annotated[
    str | None, typer.Option("--api-key-env", help="environment variable holding the API key (default OPENAI_API_KEY)")
]
ConcurrencyOpt = Annotated[
    int | None, typer.Option("--concurrency", "-j", min=1, help="requests in flight per endpoint (local: 1)")
]
TimeoutOpt = Annotated[float | None, typer.Option("--request-timeout", min=0.1, help="per-request deadline in seconds")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="run directory (created, or resumed if it exists)")]
PresetOpt = Annotated[str, typer.Option("--preset", help="paper | default | demo | evol-instruct")]
OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="start --out afresh; removes only files autoevol wrote there")
]
RetryFailedOpt = Annotated[
    bool, typer.Option("--retry-failed", help="also retry rows the server rejected (400, 413, context too long)")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no progress display (events.jsonl still written)")]
MaxCallsOpt = Annotated[int | None, typer.Option("--max-calls", min=1, help="stop cleanly after N paid calls")]
MaxTokensOpt = Annotated[int | None, typer.Option("--max-tokens", min=1, help="stop cleanly after N paid tokens")]
SchemaOpt = Annotated[str, typer.Option("--schema", help="auto | instruction | alpaca | sharegpt | messages")]
FieldOpt = Annotated[str | None, typer.Option("--field", help="instruction field name (e.g. question)")]
IdFieldOpt = Annotated[str | None, typer.Option("--id-field", help="field holding a stable row id")]
BadRowOpt = Annotated[
    Literal["fail", "skip"], typer.Option("--on-bad-row", help="fail: stop at a bad row; skip: record it as failed")
]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, help="use only the first N rows")]
EncodingOpt = Annotated[
    str | None, typer.Option("--encoding", help="text encoding of a JSON/CSV data file, e.g. latin-1 [default: UTF-8]")
]
EngineOpt = Annotated[
    Literal["local", "ray"],
    typer.Option("--engine", help="where units run: local (this process) or ray (Ray actors; needs the ray extra)"),
]
RayAddressOpt = Annotated[
    str | None, typer.Option("--ray-address", help="Ray cluster to join with --engine ray (e.g. auto, ray://HOST:10001)")
]
