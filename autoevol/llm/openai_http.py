"""The OpenAI-compatible HTTP backend (hosted OpenAI, vLLM, llama.cpp server, Ollama, ...).

Contract: one non-streaming `POST {base_url}/chat/completions` per `complete()` call, with the
wire format of the OpenAI API (JSON body; `Authorization: Bearer KEY`; the answer's `choices`,
`usage` and, on failure, `{"error": {"message": ...}}` with `Retry-After` headers).

The transport is a bare aiohttp session, not the `openai` SDK: at hundreds of requests in flight
the SDK's request building (pydantic transforms per call) and httpx's connection-pool bookkeeping
(a scan of every pooled connection per request) cost more CPU than everything else autoevol does
per call; aiohttp's pool hands out an idle connection in constant time (`bench/throughput.py`
measures both sides). There are no client-side retries here and the socket timeouts are only a
far backstop: the `Endpoint` owns retries, deadlines and concurrency. Every failure becomes an
autoevol error in exactly two functions, `_convert_status` (an HTTP answer that is not 200) and
`_convert_error` (no usable answer), and no message they build ever contains the API key.
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
from collections.abc import Mapping
from typing import Any

import aiohttp

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

#: Sent when no key is configured: local servers accept anything, hosted ones answer 401.
PLACEHOLDER_KEY = "not-set"
#: The Endpoint's deadline fires long before these; they only stop a socket from hanging forever.
_BACKSTOP_S, _CONNECT_S = 3600.0, 60.0
#: Connections kept per session; the Endpoint's concurrency (at most 4096) is the real bound.
_MAX_CONNECTIONS = 4096
_CONTEXT_WORDS = re.compile(
    r"context.{0,3}(length|window|size)|context_length_exceeded|too many tokens|prompt is too long|"
    r"input is too long|exceeds? the (model'?s? )?context",
    re.IGNORECASE,
)
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class OpenAIBackend:
    """Chat completions over HTTP on one aiohttp session (built lazily, per event loop)."""

    def __init__(self, base_url: str, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key or PLACEHOLDER_KEY
        self._url = self.base_url + "/chat/completions"
        self._where = _origin(self.base_url)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"OpenAIBackend(base_url={self.base_url!r})"

    def __getstate__(self) -> dict[str, Any]:
        # Picklable as configuration (e.g. shipped to a worker process); the session is rebuilt there.
        return self.__dict__ | {"_session": None, "_loop": None}

    @property
    def identity(self) -> str:
        return "openai:" + self.base_url

    def _client(self) -> aiohttp.ClientSession:
        # Built on first use so the backend stays a cheap, picklable value until it talks, and
        # rebuilt under a new event loop (a second `asyncio.run`): pooled connections belong to
        # the loop that opened them.
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop:
            connector = aiohttp.TCPConnector(limit=_MAX_CONNECTIONS, limit_per_host=0, ttl_dns_cache=300)
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=_CONNECT_S, sock_read=_BACKSTOP_S)
            headers = {"Authorization": f"Bearer {self._api_key}", "Content-Type": "application/json",
                       "Accept": "application/json", "User-Agent": "autoevol"}
            # No cookie jar: an API is stateless, and a jar is per-response work for nothing.
            self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers,
                                                  cookie_jar=aiohttp.DummyCookieJar())
            self._loop = loop
        return self._session

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
            async with self._client().post(self._url, data=_dumps(params).encode()) as response:
                status, headers = response.status, response.headers
                raw = await response.read()
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            # ClientError: refused, reset, closed early, a truncated body, the backstop timeout
            # (aiohttp's are TimeoutErrors too; the Endpoint's own deadline arrives as a cancellation).
            raise _convert_error(error, where=self._where, secret=self._api_key) from None
        if status != 200:
            raise _convert_status(status, raw, headers, secret=self._api_key)
        return _to_completion(raw, request, time.monotonic() - started, secret=self._api_key)

    async def aclose(self) -> None:
        session, loop = self._session, self._loop
        self._session = self._loop = None
        if session is None or loop is not asyncio.get_running_loop():
            return  # never used, or its connections died with the loop that opened them
        await session.close()


def _to_completion(raw: bytes, request: CompletionRequest, latency_s: float, *, secret: str) -> Completion:
    """Read the parts we need defensively: a server sends whatever it sends."""
    try:
        body = json.loads(raw)
    except ValueError as error:  # also UnicodeDecodeError
        raise TransportError(f"malformed response body: {_redact(str(error), secret)[:200]}") from None
    choices = body.get("choices") if isinstance(body, dict) else None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise TransportError("malformed response: no choices")
    choice = choices[0]
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    text = message.get("content")
    finish = choice.get("finish_reason") or "unknown"
    if text is None and isinstance(message.get("refusal"), str):
        # A refusal is an answer (the caller records it as a per-item failure), not a transport fault.
        text, finish = message["refusal"], "refusal"
    if not isinstance(text, str):
        raise TransportError("malformed response: no message content")
    usage = body.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    return Completion(
        text=text,
        finish_reason=str(finish),
        usage=Usage(prompt_tokens=_count(usage.get("prompt_tokens")),
                    completion_tokens=_count(usage.get("completion_tokens"))),
        latency_s=latency_s,
        model=str(body.get("model") or request.model),
    )


def _count(value: object) -> int:
    try:
        return int(value or 0)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


def _convert_status(status: int, raw: bytes, headers: Mapping[str, str] | None, *, secret: str | None = None
                    ) -> BackendError:
    """An HTTP answer other than 200 as an autoevol error; `secret` is scrubbed from the server's text."""
    detail = _redact(_server_message(raw, status), secret)
    retry_after = _retry_after(headers)
    if status == 429:
        return RateLimitError(f"rate limited (HTTP 429): {detail}", retry_after=retry_after)
    if status >= 500:
        return ServerError(f"server error (HTTP {status}): {detail}", retry_after=retry_after)
    if status in (401, 403):
        return AuthError(f"authentication failed (HTTP {status}): {detail}; check the API key environment variable")
    if status == 408:
        return TransportError(f"the server timed out reading the request (HTTP 408): {detail}")
    if status == 404:
        return ModelNotFoundError(f"model or endpoint not found (HTTP {status}): {detail}")
    if status in (400, 413, 422) and _CONTEXT_WORDS.search(detail):
        return ContextWindowError(f"prompt does not fit the model's context (HTTP {status}): {detail}")
    if 200 <= status < 400:
        return TransportError(f"unexpected HTTP {status} for a chat completion: {detail}")
    return BadRequestError(f"request rejected (HTTP {status}): {detail}")


def _convert_error(exc: BaseException, *, where: str = "the server", secret: str | None = None) -> BackendError:
    """A request that got no usable HTTP answer (refused, reset, cut short, timed out) as a TransportError."""
    detail = _redact(str(exc) or type(exc).__name__, secret)[:500]
    if isinstance(exc, TimeoutError):
        return TransportError(f"HTTP timeout talking to {where}: {detail}")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        return TransportError(f"malformed response from {where}: {detail}")
    cause = exc.__cause__ or exc.__context__
    extra = _redact(str(cause), secret)[:200] if cause is not None and str(cause) not in detail else ""
    return TransportError(f"connection to {where} failed: {detail}" + (f" ({extra})" if extra else ""))


def _server_message(raw: bytes, status: int) -> str:
    """The server's own error text when it sent the OpenAI error shape, else the start of its body."""
    try:
        body = json.loads(raw)
    except ValueError:
        text = raw[:500].decode("utf-8", "replace").strip()
        return text or f"HTTP {status}"
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return str(message)[:500]
    return raw[:500].decode("utf-8", "replace")


def _origin(base_url: str) -> str:
    """scheme://host:port of the server (never a path, query or userinfo), for messages."""
    parts = urllib.parse.urlsplit(base_url)
    host = parts.hostname or "the server"
    try:
        port = parts.port
    except ValueError:
        port = None
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "") if parts.scheme else host


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
