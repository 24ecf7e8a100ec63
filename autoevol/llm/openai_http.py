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
The identity (the cache's notion of "which server") is the base URL, never the key, plus a hash
of the spec's `extra_body` fields when there are any (they change answers).

Hosted endpoints of today refuse parts of the classic request: OpenAI's reasoning models want
`max_completion_tokens` instead of `max_tokens` and accept no temperature but their default (1),
nor `top_p`. Such a 400 is not a failure of the model: the backend adapts the request once, remembers
the adaptation for its endpoint (later requests go adapted straight away) and sends it again at
once, inside the same attempt. A spec can declare the quirks (`max_tokens_field`,
`fixed_temperature`) to skip that first refusal. When the method's temperature (T = 0 evolution,
T = 0.6 sampling) cannot be applied, one warning says so; the cache still keys the answer under the
request autoevol asked for (so a run resumes against the same rows), although the server answered it
at its own temperature.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import logging
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
    MalformedReplyError,
    ModelNotFoundError,
    RateLimitError,
    ServerError,
    TransportError,
)
from autoevol.llm.finish import FinishReason, normalize_finish
from autoevol.redact import redact
from autoevol.types import Completion, CompletionRequest, Usage

#: Sent when no key is configured: local servers accept anything, hosted ones answer 401.
PLACEHOLDER_KEY = "not-set"
#: The Endpoint's deadline fires long before these; they only stop a socket from hanging forever.
_BACKSTOP_S, _CONNECT_S = 3600.0, 60.0
#: Connections kept per session; the Endpoint's concurrency (at most 4096) is the real bound.
_MAX_CONNECTIONS = 4096
#: The smallest response-size cap (see `body_cap`): error pages and short answers always fit.
_MIN_BODY_CAP = 1 << 20
_CONTEXT_WORDS = re.compile(
    r"context.{0,3}(length|window|size)|context_length_exceeded|too many tokens|prompt is too long|"
    r"input is too long|exceeds? the (model'?s? )?context",
    re.IGNORECASE,
)
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
log = logging.getLogger(__name__)
#: A 400 saying a field is not accepted, e.g. "Unsupported parameter: 'max_tokens' is not supported with
#: this model. Use 'max_completion_tokens' instead." or "Unsupported value: 'temperature' does not support
#: 0.6 with this model. Only the default (1) value is supported." (groups: the field's name, two spellings).
_REFUSED_FIELD = re.compile(
    r"""(?:unsupported (?:parameter|value)|not supported|does not support|only the default|unrecognized|"""
    r"""not allowed|use .?max_completion_tokens)""",
    re.IGNORECASE,
)
#: What the OpenAI API does with an omitted temperature: the value an adapted request is answered at.
_DEFAULT_TEMPERATURE = 1.0


class OpenAIBackend:
    """Chat completions over HTTP on one aiohttp session (built lazily, per event loop)."""

    def __init__(
        self, base_url: str, api_key: str | None = None, *, max_tokens_field: str | None = None,
        fixed_temperature: float | None = None, extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key or PLACEHOLDER_KEY
        self._url = self.base_url + "/chat/completions"
        self._where = _origin(self.base_url)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # What this endpoint accepts: declared by the spec, or learned from its refusals (then kept).
        self.max_tokens_field = max_tokens_field or "max_tokens"
        self.fixed_temperature = fixed_temperature
        self.omitted: set[str] = set()  # fields the server refused outright (temperature, top_p)
        self.extra_body = dict(extra_body or {})
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"OpenAIBackend(base_url={self.base_url!r})"

    def __getstate__(self) -> dict[str, Any]:
        # Picklable as configuration (e.g. shipped to a worker process); the session is rebuilt there.
        return self.__dict__ | {"_session": None, "_loop": None}

    @property
    def identity(self) -> str:
        if not self.extra_body:
            return "openai:" + self.base_url
        digest = hashlib.sha256(json.dumps(self.extra_body, sort_keys=True).encode()).hexdigest()[:16]
        return f"openai:{self.base_url}#extra={digest}"

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

    def _params(self, request: CompletionRequest) -> dict[str, Any]:
        """The body for `request` in the form this endpoint accepts (as far as it has told us)."""
        params: dict[str, Any] = {
            "model": request.model,
            "messages": [m.to_dict() for m in request.messages],
        }
        if self.fixed_temperature is not None:
            params["temperature"] = self.fixed_temperature
        elif "temperature" not in self.omitted:
            params["temperature"] = request.temperature
        if "top_p" not in self.omitted:
            params["top_p"] = request.top_p
        params[self.max_tokens_field] = request.max_tokens
        if request.stop:
            params["stop"] = list(request.stop)
        if request.seed is not None:
            params["seed"] = request.seed
        if self.extra_body:
            params |= self.extra_body
        return params

    async def complete(self, request: CompletionRequest) -> Completion:
        started = time.monotonic()
        # At most one adaptation per refusable field, then a refusal is the answer.
        for _ in range(4):
            params = self._params(request)
            try:
                async with self._client().post(self._url, data=_dumps(params).encode()) as response:
                    status, headers = response.status, response.headers
                    raw = await _read_capped(response, body_cap(request.max_tokens))
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                # ClientError: refused, reset, closed early, a truncated body, the backstop timeout
                # (aiohttp's are TimeoutErrors too; the Endpoint's own deadline arrives as a cancellation).
                raise _convert_error(error, where=self._where, secret=self._api_key) from None
            if status == 200 or status != 400 or not self._adapt(_server_message(raw, status), params):
                break
        if status != 200:
            raise _convert_status(status, raw, headers, secret=self._api_key)
        self._warn_unapplied(request)
        return _to_completion(raw, request, time.monotonic() - started, secret=self._api_key)

    def _adapt(self, message: str, sent: Mapping[str, Any]) -> bool:
        """Learn from a 400 refusing a field of `sent`; True if the request should go again (adapted).

        Requests in flight together may all be refused for the same field: the first one adapts the
        endpoint, the others only see that the body they sent is not the one sent now.
        """
        if not _REFUSED_FIELD.search(message):
            return False
        lowered = message.lower()
        if "max_tokens" in sent and "max_tokens" in lowered.replace("max_completion_tokens", ""):
            if self.max_tokens_field == "max_tokens":
                self.max_tokens_field = "max_completion_tokens"
                log.info("%s wants max_completion_tokens instead of max_tokens: sending that from now on",
                         self.base_url)
            return True
        for name in ("temperature", "top_p"):
            if name in sent and name in lowered and self.fixed_temperature is None:
                self.omitted.add(name)
                return True
        return False

    def _warn_unapplied(self, request: CompletionRequest) -> None:
        """One warning per endpoint and setting the method asked for but the server does not apply."""
        if self.fixed_temperature is not None or "temperature" in self.omitted:
            applied = _DEFAULT_TEMPERATURE if self.fixed_temperature is None else self.fixed_temperature
            if request.temperature != applied and "temperature" not in self._warned:
                self._warned.add("temperature")
                log.warning(
                    "%s (%s) does not accept temperature %g, which the method relies on (T = 0 evolution, "
                    "T = 0.6 sampling): its answers are sampled at T = %g; the cache keeps them under the "
                    "temperature asked", request.model, self.base_url, request.temperature, applied)
        if "top_p" in self.omitted and request.top_p != 1.0 and "top_p" not in self._warned:
            self._warned.add("top_p")
            log.warning("%s (%s) does not accept top_p %g: its answers are sampled without it",
                        request.model, self.base_url, request.top_p)

    async def aclose(self) -> None:
        session, loop = self._session, self._loop
        self._session = self._loop = None
        if session is None or loop is not asyncio.get_running_loop():
            return  # never used, or its connections died with the loop that opened them
        await session.close()


def body_cap(max_tokens: int) -> int:
    """The largest response body read: 16 bytes per token asked for (4 bytes a character, 4 characters a
    token) with room for JSON escapes, never below 1 MB. Beyond it the server is not answering the request."""
    return max(_MIN_BODY_CAP, 16 * max_tokens * 4)


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """The body, or `MalformedReplyError` as soon as it passes `cap` bytes (an endless body stops early)."""
    declared = response.content_length
    if declared is not None and declared > cap:
        raise MalformedReplyError(f"malformed response: a body of {declared} bytes is over the {cap}-byte cap")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > cap:
            raise MalformedReplyError(f"malformed response: the body passed the {cap}-byte cap")
        chunks.append(chunk)
    return b"".join(chunks)


def _to_completion(raw: bytes, request: CompletionRequest, latency_s: float, *, secret: str) -> Completion:
    """Read the parts we need defensively: a server sends whatever it sends. Anything that is no
    completion is a `MalformedReplyError` with a one-line reason (never another exception)."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as error:  # ValueError includes UnicodeDecodeError
        reason = _redact(str(error), secret)[:200] if isinstance(error, ValueError) else "nested too deeply"
        # The size tells a body cut at another byte each time (transient) from the same bad body again.
        raise MalformedReplyError(f"malformed response body ({len(raw)} bytes): {reason}") from None
    choices = body.get("choices") if isinstance(body, dict) else None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise MalformedReplyError("malformed response: no choices")
    choice = choices[0]
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    text, finish = _message_text(message, normalize_finish(choice.get("finish_reason")))
    usage = body.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("completion_tokens_details")
    details = details if isinstance(details, dict) else {}
    model = body.get("model")
    return Completion(
        text=text,
        finish_reason=finish,
        usage=Usage(prompt_tokens=_count(usage.get("prompt_tokens")),
                    completion_tokens=_count(usage.get("completion_tokens")),
                    reasoning_tokens=_count(details.get("reasoning_tokens"))),
        latency_s=latency_s,
        model=model[:200] if isinstance(model, str) and model else request.model,
    )


def _message_text(message: Mapping[str, Any], finish: FinishReason) -> tuple[str, FinishReason]:
    """The answer's text and finish reason: content as a string or a list of text parts (joined); no
    content is an empty answer when the reason explains it (a refusal, a reasoning model that spent
    its tokens thinking, a tool call), and malformed otherwise."""
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(_part_text(part) for part in content)
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal and not (isinstance(content, str) and content):
        return refusal, "refusal"  # the caller's checks fail a refusal; it is an answer, not a fault
    if isinstance(content, str):
        return content, finish
    if content is None and (finish in ("length", "content_filter", "tool_calls") or message.get("tool_calls")):
        return "", "tool_calls" if finish == "stop" else finish
    raise MalformedReplyError("malformed response: no message content")


def _part_text(part: object) -> str:
    """One element of a list-valued `content`: a string, or `{"type": "text", "text": ...}`; others add nothing."""
    if isinstance(part, str):
        return part
    if isinstance(part, dict) and part.get("type", "text") in ("text", "output_text"):
        text = part.get("text")
        return text if isinstance(text, str) else ""
    return ""


def _count(value: object) -> int:
    """A token count as the server reported it; anything that is no count (a string, a list, NaN,
    infinity, a negative number) is 0; a numeric string counts, so usage accounting never fails on it."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return 0
    try:
        return max(0, int(value))
    except (OverflowError, ValueError):
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
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        text = _one_line(raw[:500].decode("utf-8", "replace"))
        return text or f"HTTP {status}"
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            shown = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)[:500]
            return _one_line(shown[:500]) or f"HTTP {status}"
    return _one_line(raw[:500].decode("utf-8", "replace")) or f"HTTP {status}"


def _one_line(text: str) -> str:
    """A server's text as one line of an error message (the CLI prints errors as one line)."""
    return " ".join(text.split())


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
    """`redact`, except for the placeholder sent when no key is set (it hides nothing)."""
    return text if secret == PLACEHOLDER_KEY else redact(text, secret)


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
