"""Model specs a user can type, and their config-file form.

Short forms:  `local` (the bundled SmolLM2-135M-Instruct), `local:PATH.gguf`, `openai:MODEL`
(with `--base-url`, or `OPENAI_BASE_URL`, else the hosted OpenAI API), or a path to a `.json` /
`.toml` file holding the same fields. The API key is never part of a spec: only the *name* of the
environment variable that holds it.

Credentials never travel inside a base URL: a URL is recorded in manifests and cache rows and shown
in messages, so `https://user:pass@host/v1` or `?api_key=...` is refused with a one-line ConfigError
(showing the URL with the credentials masked) that says to use `--api-key-env` instead. Refusing is
safer than stripping-and-using: a stripped credential could not survive `autoevol resume`, and a
half-working run would be worse than a clear stop before anything is sent or written.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from autoevol.errors import ConfigError

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
#: Query parameters that carry a credential (compared lower-case, with `-` read as `_`).
_SECRET_PARAMS = {"key", "api_key", "apikey", "token", "access_token", "auth", "auth_token", "password", "pass",
                  "passwd", "secret", "client_secret", "sig", "signature", "bearer", "x_api_key", "subscription_key"}
_MASK = "***"


def _is_secret_param(name: str) -> bool:
    name = name.lower().replace("-", "_")
    return name in _SECRET_PARAMS or name.endswith(("_key", "_token", "_secret", "password"))


def public_url(url: str) -> str:
    """`url` with any userinfo and credential-like query values replaced by `***` (the form safe to show)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    rest, hashmark, fragment = rest.partition("#")
    head, qmark, query = rest.partition("?")
    authority, slash, path = head.partition("/")
    if "@" in authority:
        authority = _MASK + "@" + authority.rpartition("@")[2]
    params = []
    for part in query.split("&") if query else []:
        name, eq, value = part.partition("=")
        params.append(f"{name}={_MASK}" if eq and _is_secret_param(name) and value else part)
    shown = (scheme + sep if sep else "") + authority + slash + path
    return shown + qmark + "&".join(params) + hashmark + ("" if not fragment else _MASK)


def url_credentials(url: str) -> list[str]:
    """What in `url` is a credential: 'user:password@', 'token@', or the names of credential query parameters."""
    rest = url.partition("://")[2] or url
    authority = rest.partition("/")[0].partition("?")[0]
    found = ["user:password@" if ":" in authority.rpartition("@")[0] else "user@"] if "@" in authority else []
    query = rest.partition("?")[2].partition("#")[0]
    for part in query.split("&") if query else []:
        name, eq, value = part.partition("=")
        if eq and value and _is_secret_param(name):
            found.append(f"?{name}=")
    if url.partition("#")[2]:
        # Never sent to a server, so it can only be something pasted there: often a token.
        found.append("a #fragment")
    return found


def refuse_url_credentials(url: str, where: str = "--base-url") -> None:
    """ConfigError (showing only the masked URL) if `url` carries credentials."""
    found = url_credentials(url)
    if found:
        raise ConfigError(
            f"{where} {public_url(url)} carries credentials ({', '.join(found)}), which autoevol would record with "
            "the run and the cache; remove them, put the key in an environment variable and name it with "
            "--api-key-env (it is sent as `Authorization: Bearer`)"
        )


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BASE62_RUN = re.compile(r"[A-Za-z0-9]{20,}")


def check_api_key_env(name: str) -> str:
    """`name` if it can be the name of the variable holding the key; else ValueError, whose message
    never shows `name` (when it is not a variable name, it is most likely the key itself)."""
    looks_like_key = name.startswith(("sk-", "hf_", "sk_")) or bool(_BASE62_RUN.fullmatch(name))
    if looks_like_key or not _ENV_NAME.fullmatch(name):
        why = "looks like an API key" if looks_like_key else "is not an environment variable name"
        raise ValueError(f"--api-key-env {why} (not shown, not recorded): give the NAME of the variable that "
                         "holds the key, e.g. --api-key-env OPENAI_API_KEY after `export OPENAI_API_KEY=...`")
    return name


def secret_fields(value: object, path: str = "") -> list[str]:
    """The dotted names of fields in `value` (nested dicts and lists) named like a credential."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            name = f"{path}.{key}" if path else str(key)
            if _is_secret_param(str(key)) or str(key).lower() in ("authorization", "headers"):
                found.append(name)
            else:
                found += secret_fields(inner, name)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += secret_fields(inner, f"{path}[{index}]")
    return found


def normalise_api_key(value: str | None, env_name: str) -> str | None:
    """The key as it must be sent: surrounding whitespace (a CRLF `.env` file) stripped, None if empty.

    A key with anything but printable ASCII inside (a control character, a space, a zero-width or
    other non-ASCII character) cannot be sent as an HTTP header and is a ConfigError that names the
    variable and the character's code point, never the key.
    """
    if value is None:
        return None
    key = value.strip()
    for position, char in enumerate(key, start=1):
        if not "\x21" <= char <= "\x7e":
            kind = "a space" if char == " " else (
                "a control character" if ord(char) < 0x20 or ord(char) == 0x7F else "a non-ASCII character")
            raise ConfigError(
                f"the API key in ${env_name} contains {kind} (U+{ord(char):04X}) at position {position} of "
                f"{len(key)}; keys are printable ASCII: copy it again or fix the file it was loaded from"
            )
    return key or None


def read_api_key(env_name: str) -> str | None:
    """The API key held by environment variable `env_name`, normalised (see `normalise_api_key`)."""
    return normalise_api_key(os.environ.get(env_name), env_name)


class ModelSpec(BaseModel):
    # Inputs are hidden from validation errors: a base URL may hold credentials until it is refused.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    kind: Literal["local", "openai"] = Field(description="`local` (llama.cpp in-process) or `openai` (HTTP)")
    model: str = Field("", description="model name on the server, or a .gguf path for `local` (empty: bundled)")
    base_url: str | None = Field(None, description="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    api_key_env: str = Field("OPENAI_API_KEY", description="environment variable holding the API key")
    concurrency: int = Field(8, ge=1, le=4096, description="requests in flight to this endpoint")
    request_timeout: float = Field(120.0, gt=0, description="per-request deadline in seconds")
    max_retries: int = Field(6, ge=0, le=50, description="retries for 429/5xx/transport errors")
    n_ctx: int = Field(4096, ge=256, description="context length for `local` models")
    n_threads: int | None = Field(None, ge=1, description="CPU threads for `local` models")
    # Quirks of a server's OpenAI-compatible API. Unset, they are learned from the first refusal
    # (see `autoevol.llm.openai_http`); declaring them saves that one refused request per endpoint.
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] | None = Field(
        None, description="the request field for the length limit (OpenAI's reasoning models want "
                          "max_completion_tokens); unset: max_tokens until the server refuses it")
    fixed_temperature: float | None = Field(
        None, ge=0.0, le=2.0, description="the only temperature the server accepts (1 for OpenAI's reasoning "
                                          "models): sent instead of the method's T = 0 / T = 0.6")
    extra_body: dict[str, Any] = Field(
        default_factory=dict, description="extra JSON fields merged into every request body, e.g. vLLM's "
                                          "guided_choice; they change answers, so they are part of the cache key")

    @field_validator("base_url")
    @classmethod
    def _no_credentials(cls, url: str | None) -> str | None:
        # The backstop for specs built in code or read from files; the CLI refuses earlier with its option name.
        if url is not None:
            try:
                refuse_url_credentials(url, "base_url")
            except ConfigError as error:
                raise ValueError(str(error)) from None
        return url

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, name: str) -> str:
        return check_api_key_env(name)

    def __hash__(self) -> int:
        # Frozen specs were hashable before `extra_body` (a dict) existed: keep them so.
        return hash(json.dumps(self.model_dump(), sort_keys=True, default=str))

    @field_validator("extra_body")
    @classmethod
    def _extra_fields(cls, extra: dict[str, Any]) -> dict[str, Any]:
        # These are autoevol's own: overriding them would break the wire contract or the cache's meaning.
        owned = sorted(set(extra) & {"model", "messages", "stream", "n", "temperature", "top_p", "max_tokens",
                                     "max_completion_tokens", "stop", "seed"})
        if owned:
            raise ValueError(f"extra_body cannot set {', '.join(owned)} (autoevol sends them; see "
                             "max_tokens_field and fixed_temperature)")
        secrets = secret_fields(extra)
        if secrets:
            # extra_body is recorded in manifests and reports: a credential there would reach disk.
            raise ValueError(f"extra_body field {', '.join(secrets)} is named like a credential, and extra_body "
                             "is recorded with the run; put the key in an environment variable and name it with "
                             "--api-key-env (it is sent as `Authorization: Bearer`)")
        return extra

    def semantic(self) -> dict[str, Any]:
        """The part that changes answers (recorded in manifests, hashed into configs)."""
        found: dict[str, Any] = {"kind": self.kind, "model": self.label, "base_url": self.base_url}
        # Only when set: a spec without them keeps the manifest (and so a run's resume check) it always had.
        if self.fixed_temperature is not None:
            found["fixed_temperature"] = self.fixed_temperature
        if self.extra_body:
            found["extra_body"] = self.extra_body
        return found

    @property
    def label(self) -> str:
        if self.kind == "local":
            return f"local:{Path(self.model).name if self.model else 'smollm2-135m-instruct-q4_1'}"
        return f"openai:{self.model}"


#: The parts a model can play; an unset one is played by the evol LLM.
ROLES = ("evol", "responder", "optimizer", "judge")


@dataclass(frozen=True, slots=True)
class Roles:
    """Which model plays which part; unset roles fall back to the evol LLM (`for_role`)."""

    evol: ModelSpec
    responder: ModelSpec | None = None
    optimizer: ModelSpec | None = None
    judge: ModelSpec | None = None

    def for_role(self, role: str) -> ModelSpec:
        """The spec that plays `role`: its own, else the evol LLM's."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        spec: ModelSpec | None = getattr(self, role)
        return spec or self.evol

    def resolved(self) -> dict[str, ModelSpec]:
        """Every role with the spec that plays it."""
        return {role: self.for_role(role) for role in ROLES}

    @classmethod
    def from_resolved(cls, specs: dict[str, ModelSpec]) -> Roles:
        """The inverse of `resolved` (as recorded in a manifest); missing roles fall back."""
        return cls(evol=specs["evol"], responder=specs.get("responder"), optimizer=specs.get("optimizer"),
                   judge=specs.get("judge"))


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
        spec = ModelSpec(**fields)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"invalid model spec {text!r}: {problems}") from None
    if spec.kind == "openai":
        read_api_key(spec.api_key_env)  # a key that cannot be sent stops here, before a run directory exists
    return spec


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
        refuse_url_credentials(url, "--base-url" if base_url else "OPENAI_BASE_URL")
        return {"kind": "openai", "model": rest, "base_url": url.rstrip("/")}
    if base_url:
        refuse_url_credentials(base_url)
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
    if isinstance(data.get("base_url"), str):
        refuse_url_credentials(data["base_url"], f"{path}: base_url")
    return data


def list_served_models(base_url: str, api_key: str | None = None, *, timeout: float = 15.0) -> list[str]:
    """The model ids an OpenAI-compatible server lists at `GET {base_url}/models` (ConfigError if it can't)."""
    import httpx

    refuse_url_credentials(base_url)
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
