"""The OpenAI-compatible HTTP backend (hosted OpenAI, vLLM, llama.cpp server, Ollama, ...).

Contract: one non-streaming `POST {base_url}/chat/completions` per `complete()` call. The SDK's
own retries are off and its timeout is only a far backstop: the `Endpoint` owns retries,
deadlines and concurrency. Every SDK/httpx exception is converted to the autoevol taxonomy in
exactly one function, `_convert_error`, and no message it builds ever contains the API key.
The identity (the cache's notion of "which server") is the base URL, never the key.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import functools
import json
import re
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

import openai

from autoevol.errors import (
    AuthError,
    BackendError,
    BadRequestError,
    ContextWindowError,
    ModelNotFoundError,
    RateLimitError,
    ServerError,
    TransportError,
)
from autoevol.types import Completion, CompletionRequest, Usage

if TYPE_CHECKING:
    from openai import AsyncOpenAI

#: Sent when no key is configured: local servers accept anything, hosted ones answer 401.
PLACEHOLDER_KEY = "not-set"
#: The Endpoint's deadline fires long before this; it only stops a socket from hanging forever.
_BACKSTOP_S, _CONNECT_S = 3600.0, 60.0
_MAX_CONNECTIONS, _MAX_KEEPALIVE = 1024, 256
_CONTEXT_WORDS = re.compile(
    r"context.{0,3}(length|window|size)|context_length_exceeded|too many tokens|prompt is too long|"
    r"input is too long|exceeds? the (model'?s? )?context",
    re.IGNORECASE,
)


class OpenAIBackend:
    """Chat completions over HTTP with the official `openai` SDK (client built lazily, per event loop)."""

    def __init__(self, base_url: str, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key or PLACEHOLDER_KEY
        self._client: AsyncOpenAI | None = None
        self._http: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"OpenAIBackend(base_url={self.base_url!r})"

    def __getstate__(self) -> dict[str, Any]:
        # Picklable as configuration (e.g. shipped to a worker process); clients are rebuilt there.
        return self.__dict__ | {"_client": None, "_http": None, "_loop": None}

    @property
    def identity(self) -> str:
        return "openai:" + self.base_url

    def _sdk(self) -> AsyncOpenAI:
        # Built on first use so the backend stays a cheap, picklable value until it talks, and
        # rebuilt under a new event loop (a second `asyncio.run`): pooled connections belong to
        # the loop that opened them. The SDK's HTTP library (httpx in openai 1.x, httpx2 later)
        # supplies the value types, taken from the SDK's exports so either works.
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            limits_type = type(openai.DEFAULT_CONNECTION_LIMITS)
            limits = limits_type(max_connections=_MAX_CONNECTIONS, max_keepalive_connections=_MAX_KEEPALIVE)
            timeout = openai.Timeout(_BACKSTOP_S, connect=_CONNECT_S)
            self._http = openai.DefaultAsyncHttpxClient(limits=limits, timeout=timeout)
            self._client = openai.AsyncOpenAI(
                base_url=self.base_url,
                api_key=self._api_key,
                max_retries=0,
                timeout=timeout,
                http_client=self._http,
            )
            self._loop = loop
        return self._client

    async def complete(self, request: CompletionRequest) -> Completion:
        params: dict[str, Any] = {
            "model": request.model,
            "messages": [m.to_dict() for m in request.messages],
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
        }
        if request.stop:
            params["stop"] = list(request.stop)
        if request.seed is not None:
            params["seed"] = request.seed
        started = time.monotonic()
        try:
            response = await self._sdk().chat.completions.create(**params)
        except (openai.OpenAIError, ValueError, OSError) as error:
            # ValueError: an unparsable JSON body or pydantic rejecting it; OSError: a raw socket fault.
            raise _convert_error(error, secret=self._api_key) from None
        return _to_completion(response, request, time.monotonic() - started)

    async def aclose(self) -> None:
        client, http, loop = self._client, self._http, self._loop
        self._client = self._http = self._loop = None
        if client is None or loop is not asyncio.get_running_loop():
            return  # never used, or its connections died with the loop that opened them
        await client.close()
        await http.aclose()


def _to_completion(response: object, request: CompletionRequest, latency_s: float) -> Completion:
    """Read the parts we need defensively: a non-strict SDK hands back whatever the server sent."""
    choices = getattr(response, "choices", None)
    if not choices:
        raise TransportError("malformed response: no choices")
    choice = choices[0]
    message = getattr(choice, "message", None)
    text = getattr(message, "content", None)
    finish = getattr(choice, "finish_reason", None) or "unknown"
    if text is None and isinstance(getattr(message, "refusal", None), str):
        # A refusal is an answer (the caller records it as a per-item failure), not a transport fault.
        text, finish = message.refusal, "refusal"  # type: ignore[union-attr]
    if not isinstance(text, str):
        raise TransportError("malformed response: no message content")
    usage = getattr(response, "usage", None)
    return Completion(
        text=text,
        finish_reason=str(finish),
        usage=Usage(
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        ),
        latency_s=latency_s,
        model=str(getattr(response, "model", "") or request.model),
    )


def _convert_error(exc: BaseException, *, secret: str | None = None) -> BackendError:
    """The one place SDK/httpx exceptions become autoevol errors; `secret` is scrubbed from text."""
    status = getattr(exc, "status_code", None)
    detail = _redact(_server_message(exc), secret)
    if isinstance(exc, openai.APIResponseValidationError | ValueError):
        return TransportError(f"malformed response body: {detail}")
    if isinstance(exc, openai.APITimeoutError):
        return TransportError(f"HTTP timeout talking to {_where(exc)}: {detail}")
    if isinstance(exc, openai.APIConnectionError | OSError):
        cause = _redact(str(exc.__cause__ or ""), secret)
        return TransportError(f"connection to {_where(exc)} failed: {detail}" + (f" ({cause})" if cause else ""))
    if not isinstance(status, int):
        return TransportError(f"{type(exc).__name__}: {detail}")
    retry_after = _retry_after(getattr(getattr(exc, "response", None), "headers", None))
    if status == 429:
        return RateLimitError(f"rate limited (HTTP 429): {detail}", retry_after=retry_after)
    if status >= 500:
        return ServerError(f"server error (HTTP {status}): {detail}", retry_after=retry_after)
    if status in (401, 403):
        return AuthError(f"authentication failed (HTTP {status}): {detail}; check the API key environment variable")
    if status == 408:
        return TransportError(f"the server timed out reading the request (HTTP 408): {detail}")
    if status == 404:
        return ModelNotFoundError(f"model or endpoint not found (HTTP 404): {detail}")
    if status in (400, 413, 422) and _CONTEXT_WORDS.search(detail):
        return ContextWindowError(f"prompt does not fit the model's context (HTTP {status}): {detail}")
    return BadRequestError(f"request rejected (HTTP {status}): {detail}")


def _server_message(exc: BaseException) -> str:
    """The server's own error text when it sent the OpenAI error shape, else the exception text."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return str(message)[:500]
    return (str(exc) or type(exc).__name__)[:500]


def _where(exc: BaseException) -> str:
    """scheme://host:port of the failed request (never the path's query or any userinfo)."""
    url = getattr(getattr(exc, "request", None), "url", None)
    if url is None:
        return "the server"
    return f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")


def _redact(text: str, secret: str | None) -> str:
    """`text` with every form of `secret` a server or a library could echo replaced by `[redacted]`."""
    if not secret or secret == PLACEHOLDER_KEY or len(secret) < 4:
        return text
    forms, runs = _secret_forms(secret)
    for form in forms:
        text = text.replace(form, "[redacted]")
    if runs is None:
        return text
    # A server may echo the key in part (masked in the middle, cut short): hide any long run of it.
    covered = bytearray(len(text))
    for match in runs.finditer(text):
        covered[match.start():match.start() + _RUN] = b"\x01" * _RUN
    if not any(covered):
        return text
    out, i = [], 0
    while i < len(text):
        if covered[i]:
            while i < len(text) and covered[i]:
                i += 1
            out.append("[redacted]")
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


#: Keys at least this long also have every run of this many consecutive characters redacted.
_RUN = 8


@functools.lru_cache(maxsize=8)
def _secret_forms(secret: str) -> tuple[tuple[str, ...], re.Pattern[str] | None]:
    """The encodings of `secret` that end up in error text, longest first, and a pattern of its runs."""
    forms = {
        secret,
        secret.strip(),
        secret.encode("unicode_escape").decode("ascii"),  # repr() of bytes or str, \r as backslash-r
        json.dumps(secret)[1:-1],
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
    }
    # Base64 (Basic auth, tokens inside a JWT-like echo): the key's bytes at each of the three
    # alignments it can have inside a longer encoded string, minus the edge characters that
    # depend on its neighbours.
    raw = secret.encode("utf-8", "replace")
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw).decode("ascii")
        # Characters are 6-bit groups: keep those whose bits all come from the key.
        core = encoded[-(-8 * pad // 6):(8 * (pad + len(raw))) // 6]
        if len(core) >= _RUN:
            forms.add(core)
    ordered = tuple(sorted((f for f in forms if len(f) >= 4), key=len, reverse=True))
    core_key = secret.strip()
    if len(core_key) < 2 * _RUN:
        return ordered, None
    windows = sorted({core_key[i:i + _RUN] for i in range(len(core_key) - _RUN + 1)})
    return ordered, re.compile("(?=(?:" + "|".join(map(re.escape, windows)) + "))")


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms`, `Retry-After: <seconds>` or `Retry-After: <HTTP date>`."""
    if headers is None or not hasattr(headers, "get"):
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())
