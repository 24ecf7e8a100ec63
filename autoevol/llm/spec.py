"""Model specs a user can type, and their config-file form.

Short forms:  `local` (the bundled SmolLM2-135M-Instruct), `local:PATH.gguf`, `openai:MODEL`
(with `--base-url`, or `OPENAI_BASE_URL`, else the hosted OpenAI API), or a path to a `.json` /
`.toml` file holding the same fields. The API key is never part of a spec: only the *name* of the
environment variable that holds it.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autoevol.errors import ConfigError

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"


class ModelSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["local", "openai"] = Field(description="`local` (llama.cpp in-process) or `openai` (HTTP)")
    model: str = Field("", description="model name on the server, or a .gguf path for `local` (empty: bundled)")
    base_url: str | None = Field(None, description="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the API key")
    concurrency: int = Field(8, ge=1, le=4096, description="requests in flight to this endpoint")
    request_timeout: float = Field(120.0, gt=0, description="per-request deadline in seconds")
    max_retries: int = Field(6, ge=0, le=50, description="retries for 429/5xx/transport errors")
    n_ctx: int = Field(4096, ge=256, description="context length for `local` models")
    n_threads: int | None = Field(None, ge=1, description="CPU threads for `local` models")

    def semantic(self) -> dict[str, Any]:
        """The part that changes answers (recorded in manifests, hashed into configs)."""
        return {"kind": self.kind, "model": self.label, "base_url": self.base_url}

    @property
    def label(self) -> str:
        if self.kind == "local":
            return f"local:{Path(self.model).name if self.model else 'smollm2-135m-instruct-q4_1'}"
        return f"openai:{self.model}"


def parse_model_spec(
    text: str,
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
    concurrency: int | None = None,
    request_timeout: float | None = None,
) -> ModelSpec:
    """Turn a typed spec plus command-line overrides into a ModelSpec (ConfigError on nonsense)."""
    fields = _spec_fields(text.strip(), base_url)
    overrides = {"api_key_env": api_key_env, "concurrency": concurrency, "request_timeout": request_timeout}
    fields |= {k: v for k, v in overrides.items() if v is not None}
    if fields.get("kind") == "local":
        fields.setdefault("concurrency", 1)
    try:
        return ModelSpec(**fields)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"invalid model spec {text!r}: {problems}") from None


def _spec_fields(text: str, base_url: str | None) -> dict[str, Any]:
    if not text:
        raise ConfigError("empty model spec; try `local` or `openai:MODEL --base-url URL`")
    if text.endswith((".json", ".toml")) and not text.startswith(("local:", "openai:")):
        return _load_spec_file(Path(text), base_url)
    kind, _, rest = text.partition(":")
    if kind == "local":
        if rest and not Path(rest).expanduser().is_file():
            raise ConfigError(f"model file not found: {rest}")
        return {"kind": "local", "model": str(Path(rest).expanduser()) if rest else ""}
    if kind == "openai":
        if not rest:
            raise ConfigError("`openai:` needs a model name, e.g. openai:gpt-4o-mini")
        url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_BASE_URL
        return {"kind": "openai", "model": rest, "base_url": url.rstrip("/")}
    if base_url:
        return {"kind": "openai", "model": text, "base_url": base_url.rstrip("/")}
    raise ConfigError(
        f"unknown model spec {text!r}: use `local`, `local:PATH.gguf`, `openai:MODEL` or a .json/.toml file"
    )


def _load_spec_file(path: Path, base_url: str | None) -> dict[str, Any]:
    try:
        raw = path.read_text(encoding="utf-8")
        data = tomllib.loads(raw) if path.suffix == ".toml" else json.loads(raw)
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read model spec file {path}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a model spec file must hold a table/object of fields")
    if base_url:
        data["base_url"] = base_url
    if data.get("kind") == "openai" and not data.get("base_url"):
        data["base_url"] = os.environ.get("OPENAI_BASE_URL") or DEFAULT_OPENAI_BASE_URL
    return data


def list_served_models(base_url: str, api_key: str | None = None, *, timeout: float = 15.0) -> list[str]:
    """The model ids an OpenAI-compatible server lists at `GET {base_url}/models` (ConfigError if it can't)."""
    import httpx

    url = base_url.rstrip("/") + "/models"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(url, headers=headers, timeout=timeout)
        response.raise_for_status()
        entries = response.json()["data"]
        return sorted(str(entry["id"]) for entry in entries)
    except httpx.HTTPStatusError as error:
        problem = f"HTTP {error.response.status_code}"
    except httpx.HTTPError as error:
        problem = type(error).__name__  # the message could echo request headers; the type is enough
    except (ValueError, KeyError, TypeError):
        problem = "the answer is not an OpenAI model list"
    raise ConfigError(f"cannot list the models served at {url} ({problem}); pass --model openai:NAME")
