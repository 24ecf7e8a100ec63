"""A small OpenAI-compatible HTTP server for tests and benchmarks (stdlib only).

Serves `POST /v1/chat/completions` (non-streaming) and `GET /v1/models` on 127.0.0.1 from a
background thread. Answers come from a `reply(request_json) -> str` callable; faults are queued
per test with `inject(Fault..., times=K)` and are served before normal answers, in order.
Counters: `requests`, `in_flight`, `peak_in_flight`; every request body and header set is kept.
`max_concurrent=N` models a server with N workers: it processes N requests at a time and queues the
rest, and like most servers it does not notice a client that gave up while its request waited.
`stop()` never hangs: hanging handlers wake up and open sockets are shut down.
`reasoning_model = True` behaves like OpenAI's reasoning models: `max_tokens`, `top_p` and any
temperature but 1 are refused with their 400 messages (one field at a time), and usage reports
`reasoning_tokens` reasoning tokens inside `completion_tokens_details`.

Standalone (for end-to-end and kill tests):
    python -m tests.support.fake_openai_server --port 0 --script echo-last --latency 0.1
prints `READY http://127.0.0.1:PORT/v1` once listening and `STATS {...}` when stopped (SIGTERM).

Random faults (`RandomFaults`, `--p500 .2 --p429 .2 --pgarbage .05 --phang .03 --fault-seed 1`): each
request draws its fault from a hash of the seed, its body and how many times that body was seen
before, so a given request meets the same sequence of faults whatever the order or timing of the
others (and whether its client was killed and resumed in between). `GET /stats?since=T` returns the
counters, with `answered_since`: the well-formed answers finished at or after `time.monotonic()` T.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import signal
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Reply = Callable[[dict[str, Any]], str]
_CHAT_PATHS = {"/v1/chat/completions", "/chat/completions"}
_MODELS_PATHS = {"/v1/models", "/models"}


_CUT_BODY = b'{"id": "chatcmpl-broken", "choices": [{"index": 0, "message": {"role": "assistant", "content": "Th'


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted misbehaviour. `kind`: status | malformed | no_choices | hang | drop | raw."""

    kind: str
    status: int = 500
    message: str = "injected fault"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @classmethod
    def raw(cls, body: bytes, status: int = 200) -> Fault:
        """Exactly these bytes as the body (odd shapes, invalid UTF-8, huge replies)."""
        return cls("raw", status, body=body)

    @classmethod
    def choice(cls, message: dict[str, Any], finish_reason: object = "stop", **extra: Any) -> Fault:
        """HTTP 200 with a well-formed completion whose only choice is `message` (e.g. a refusal,
        null content, content as a list of parts) and `finish_reason` (any provider's word)."""
        body = {"id": "chatcmpl-odd", "object": "chat.completion", "created": 0, "model": "fake-model",
                "choices": [{"index": 0, "message": {"role": "assistant", **message},
                             "finish_reason": finish_reason}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}} | extra
        return cls.raw(json.dumps(body).encode())

    @classmethod
    def rate_limit(cls, retry_after: float | str | None = 1) -> Fault:
        headers = () if retry_after is None else (("Retry-After", _header_value(retry_after)),)
        return cls("status", 429, "Rate limit reached, please retry later", headers)

    @classmethod
    def server_error(cls, status: int = 500, retry_after: float | str | None = None) -> Fault:
        headers = () if retry_after is None else (("Retry-After", _header_value(retry_after)),)
        return cls("status", status, "The server had an error while processing your request", headers)

    @classmethod
    def unauthorized(cls, status: int = 401) -> Fault:
        # The message echoes the bearer token on purpose: clients must scrub it from errors.
        return cls("status", status, "Incorrect API key provided: {token}")

    @classmethod
    def not_found(cls) -> Fault:
        return cls("status", 404, "The model `{model}` does not exist or you do not have access to it.")

    @classmethod
    def context_window(cls) -> Fault:
        return cls(
            "status",
            400,
            "This model's maximum context length is 2048 tokens. However, your messages "
            "resulted in 5000 tokens. Please reduce the length of the messages.",
        )

    @classmethod
    def bad_request(cls, message: str = "Invalid value for 'temperature'", status: int = 400) -> Fault:
        return cls("status", status, message)

    @classmethod
    def malformed(cls) -> Fault:
        """HTTP 200 with a JSON body cut short, at a point that differs from one request to the next."""
        return cls("malformed", 200)

    @classmethod
    def no_choices(cls) -> Fault:
        """HTTP 200 with valid JSON that has an empty `choices` list."""
        return cls("no_choices", 200)

    @classmethod
    def hang(cls) -> Fault:
        """Never answer; the handler sleeps until the server stops."""
        return cls("hang", 0)

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without any response."""
        return cls("drop", 0)


@dataclass(frozen=True, slots=True)
class RandomFaults:
    """Probabilities of a fault per request, drawn deterministically per (seed, body, occurrence).
    A hang lasts `hang_s` and then drops the connection (a client deadline should fire first)."""

    p500: float = 0.0
    p429: float = 0.0
    pgarbage: float = 0.0
    phang: float = 0.0
    seed: int = 0
    hang_s: float = 10.0
    _seen: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def draw(self, raw: bytes) -> Fault | None:
        """Called under the server's lock: counts this body's occurrence, returns its fault if any."""
        body_key = hashlib.sha256(raw).hexdigest()
        occurrence = self._seen.get(body_key, 0)
        self._seen[body_key] = occurrence + 1
        digest = hashlib.sha256(f"{self.seed}|{occurrence}|{body_key}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        for p, fault in ((self.p500, Fault.server_error()), (self.p429, Fault.rate_limit(None)),
                         (self.pgarbage, Fault.malformed()), (self.phang, Fault("hang_for", 0))):
            if u < p:
                return fault
            u -= p
        return None


def _header_value(value: float | str) -> str:
    return value if isinstance(value, str) else f"{value:g}"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    fake: FakeOpenAIServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (deadline, cancel) is normal traffic here, not a fault to print.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like real servers; every answer has Content-Length
    disable_nagle_algorithm = True  # small replies would otherwise wait ~40 ms for a delayed ACK
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        return None  # quiet: tests read counters, not logs

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        if path in _MODELS_PATHS and not (self.server.fake.v1_only and not path.startswith("/v1/")):
            self.send_json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        elif path == "/health":
            self.send_json(200, {"status": "ok"})
        elif path == "/stats":
            query = self.path.partition("?")[2]
            since = dict(part.partition("=")[::2] for part in query.split("&") if part).get("since")
            self.send_json(200, self.server.fake.stats(float(since) if since else None))
        else:
            self.send_json(404, _error_body(f"no route {path}", 404))

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?")[0].rstrip("/")
        if path not in _CHAT_PATHS or (self.server.fake.v1_only and not path.startswith("/v1/")):
            self.send_json(404, _error_body(f"no route {path}", 404))
            return
        try:
            self.server.fake._serve_chat(self, raw)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (deadline, cancel): nothing to say

    def send_json(self, status: int, body: object, headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.send_raw(status, json.dumps(body).encode(), headers)

    def send_raw(self, status: int, data: bytes, headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _error_body(message: str, status: int) -> dict[str, Any]:
    kinds = {
        400: "invalid_request_error",
        401: "invalid_request_error",
        404: "invalid_request_error",
        429: "requests",
        500: "server_error",
    }
    return {"error": {"message": message, "type": kinds.get(status, "error"), "code": None}}


def echo_last(body: dict[str, Any]) -> str:
    """The content of the last user message."""
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    return str(users[-1].get("content", "")) if users else ""


def make_reply(spec: str) -> Reply:
    """`echo-last`, `fixed:TEXT` or `pyfile:PATH:FUNC` (FUNC(request_json) -> str)."""
    if spec == "echo-last":
        return echo_last
    if spec.startswith("fixed:"):
        text = spec.removeprefix("fixed:")
        return lambda _body: text
    if spec.startswith("pyfile:"):
        path, _, func = spec.removeprefix("pyfile:").rpartition(":")
        if not path or not func:
            raise ValueError(f"expected pyfile:PATH:FUNC, got {spec!r}")
        module_spec = importlib.util.spec_from_file_location("_fake_server_script", Path(path))
        if module_spec is None or module_spec.loader is None:
            raise ValueError(f"cannot import {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module  # dataclasses look their module up while the file runs
        module_spec.loader.exec_module(module)
        fn: Reply = getattr(module, func)
        return fn
    raise ValueError(f"unknown script {spec!r}: use echo-last, fixed:TEXT or pyfile:PATH:FUNC")


def _words(text: str) -> int:
    return len(text.split())


class FakeOpenAIServer:
    """Start with `start()` or `with FakeOpenAIServer(...) as server:`; `url` is the base URL."""

    def __init__(
        self, reply: Reply | None = None, *, latency_s: float = 0.0, host: str = "127.0.0.1", port: int = 0,
        max_concurrent: int | None = None,
    ) -> None:
        self.reply: Reply = reply or echo_last
        self.latency_s = latency_s
        #: Serve only the /v1/... routes, like vLLM: a base URL without /v1 then meets 404s.
        self.v1_only = False
        self._workers = threading.Semaphore(max_concurrent) if max_concurrent else None
        self._address = (host, port)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._faults: deque[list[Any]] = deque()  # [fault, remaining or None]
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.requests = 0
        #: Requests the server did the work for (with max_concurrent: those that got a worker).
        self.processed = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.random_faults: RandomFaults | None = None
        self.answered = 0  # well-formed answers sent (what a client pays for)
        self.answered_at: list[float] = []  # their time.monotonic() finish times
        self.hanging = 0  # requests held by a hang fault right now (part of in_flight)
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.reasoning_model = False
        self.reasoning_tokens = 7

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        self._httpd = _HTTPServer(self._address, _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._httpd is None:
            return
        self._closing.set()  # wakes hanging and sleeping handlers
        self._httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # idle keep-alive sockets would otherwise block their threads
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout)
        self._httpd = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- configuration ---------------------------------------------------------------------
    def inject(self, fault: Fault, times: int | None = 1) -> None:
        """Serve `fault` to the next `times` chat requests (None: to every request from now on)."""
        if times is not None and times < 1:
            raise ValueError(f"times must be >= 1 or None, got {times}")
        with self._lock:
            self._faults.append([fault, times])

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def stats(self, since: float | None = None) -> dict[str, int]:
        with self._lock:
            found = {"requests": self.requests, "processed": self.processed, "peak_in_flight": self.peak_in_flight,
                     "in_flight": self.in_flight}
            if self.random_faults is not None or since is not None:
                found |= {"answered": self.answered, "hanging": self.hanging}
            if since is not None:
                found["answered_since"] = sum(1 for t in self.answered_at if t >= since)
            return found

    # -- serving ---------------------------------------------------------------------------
    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _next_fault(self) -> Fault | None:
        if not self._faults:
            return None
        entry = self._faults[0]
        if entry[1] is not None:
            entry[1] -= 1
            if entry[1] == 0:
                self._faults.popleft()
        fault: Fault = entry[0]
        return fault

    def _serve_chat(self, handler: _Handler, raw: bytes) -> None:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            fault = self._next_fault()
            if fault is None and self.random_faults is not None:
                fault = self.random_faults.draw(raw)
            self.bodies.append(body if isinstance(body, dict) else {})
            self.headers.append({k.lower(): v for k, v in handler.headers.items()})
        try:
            if self._workers is not None:
                while not self._workers.acquire(timeout=0.05):  # queued for a worker; stop() still wakes it
                    if self._closing.is_set():
                        return
                self._serve_with_worker(handler, fault, body)
            else:
                self._serve(handler, fault, body)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _serve_with_worker(self, handler: _Handler, fault: Fault | None, body: Any) -> None:
        assert self._workers is not None
        try:
            self._serve(handler, fault, body)
        finally:
            self._workers.release()

    def _serve(self, handler: _Handler, fault: Fault | None, body: Any) -> None:
        if self.latency_s:
            self._closing.wait(self.latency_s)
        with self._lock:
            self.processed += 1
        if fault is not None:
            self._send_fault(handler, fault, body if isinstance(body, dict) else {})
        elif not isinstance(body, dict):
            handler.send_json(400, _error_body("request body is not a JSON object", 400))
        elif self.reasoning_model and (refusal := _reasoning_refusal(body)):
            handler.send_json(400, {"error": {"message": refusal, "type": "invalid_request_error",
                                              "param": refusal.split("'")[1], "code": "unsupported_parameter"}})
        else:
            self._send_answer(handler, body)

    def _send_answer(self, handler: _Handler, body: dict[str, Any]) -> None:
        try:
            text = self.reply(body)
        except Exception as error:  # a broken script is a 500 with the reason, not a dead thread
            handler.send_json(500, _error_body(f"reply script failed: {error!r}", 500))
            return
        text, finish = _apply_limits(text, body)
        prompt = sum(_words(str(m.get("content", ""))) for m in body.get("messages", []))
        usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": _words(text),
                                 "total_tokens": prompt + _words(text)}
        if self.reasoning_model:
            usage["completion_tokens"] += self.reasoning_tokens
            usage["total_tokens"] += self.reasoning_tokens
            usage["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        self._send_counted(
            handler,
            200,
            {
                "id": f"chatcmpl-fake-{self.requests}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model") or "fake-model",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": finish,
                        "logprobs": None,
                    }
                ],
                "usage": usage,
            },
        )

    def _send_counted(self, handler: _Handler, status: int, body: dict[str, Any]) -> None:
        handler.send_json(status, body)
        with self._lock:
            self.answered += 1
            self.answered_at.append(time.monotonic())

    def _send_fault(self, handler: _Handler, fault: Fault, body: dict[str, Any]) -> None:
        if fault.kind == "hang":
            self._closing.wait()
            handler.close_connection = True
        elif fault.kind == "hang_for":
            with self._lock:
                self.hanging += 1
            try:
                self._closing.wait(self.random_faults.hang_s if self.random_faults else 0)
            finally:
                with self._lock:
                    self.hanging -= 1
            handler.close_connection = True
        elif fault.kind == "drop":
            handler.close_connection = True
        elif fault.kind == "raw":
            handler.send_raw(fault.status, fault.body, fault.headers)
        elif fault.kind == "malformed":
            # A connection cut mid-body stops at another byte each time: a transient fault, not a model's output.
            handler.send_raw(200, _CUT_BODY[: 40 + self.requests % 40])
        elif fault.kind == "no_choices":
            handler.send_json(
                200,
                {
                    "id": "chatcmpl-empty",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body.get("model", ""),
                    "choices": [],
                },
            )
        else:
            token = handler.headers.get("Authorization", "").removeprefix("Bearer ")
            message = fault.message.replace("{token}", token).replace("{model}", str(body.get("model", "")))
            handler.send_json(fault.status, _error_body(message, fault.status), fault.headers)


def _reasoning_refusal(body: dict[str, Any]) -> str | None:
    """What OpenAI's reasoning models answer to a classic request (the first refused field), if anything."""
    if "max_tokens" in body:
        return ("Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.")
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        return (f"Unsupported value: 'temperature' does not support {temperature} with this model. "
                "Only the default (1) value is supported.")
    if body.get("top_p") not in (None, 1):
        return "Unsupported parameter: 'top_p' is not supported with this model."
    return None


def _apply_limits(text: str, body: dict[str, Any]) -> tuple[str, str]:
    """Honour `stop` strings and `max_tokens` (counted in whitespace words), like a real server."""
    stops = body.get("stop") or []
    for stop in [stops] if isinstance(stops, str) else stops:
        if stop and stop in text:
            text = text[: text.index(stop)]
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    if isinstance(max_tokens, int) and _words(text) > max_tokens:
        return " ".join(text.split()[:max_tokens]), "length"
    return text, "stop"


_FAULTS: dict[str, Callable[[], Fault]] = {
    "rate_limit": Fault.rate_limit,
    "server_error": Fault.server_error,
    "malformed": Fault.malformed,
    "no_choices": Fault.no_choices,
    "hang": Fault.hang,
    "drop": Fault.drop,
    "unauthorized": Fault.unauthorized,
    "not_found": Fault.not_found,
    "context_window": Fault.context_window,
}


def _parse_fault(text: str) -> tuple[Fault, int | None]:
    """`KIND` (every request) or `KIND:TIMES`."""
    kind, _, times = text.partition(":")
    if kind not in _FAULTS:
        raise argparse.ArgumentTypeError(f"unknown fault {kind!r}; choose from {', '.join(sorted(_FAULTS))}")
    return _FAULTS[kind](), int(times) if times else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.fake_openai_server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--script", default="echo-last", help="echo-last | fixed:TEXT | pyfile:PATH:FUNC")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every chat request")
    parser.add_argument("--max-concurrency", type=int, default=None,
                        help="process this many chat requests at a time and queue the rest")
    parser.add_argument(
        "--fault",
        type=_parse_fault,
        action="append",
        default=[],
        help="KIND[:TIMES], served in order before normal answers; repeatable",
    )
    parser.add_argument("--p500", type=float, default=0.0, help="probability of an HTTP 500 per request")
    parser.add_argument("--p429", type=float, default=0.0, help="probability of an HTTP 429 per request")
    parser.add_argument("--pgarbage", type=float, default=0.0, help="probability of a truncated 200 body")
    parser.add_argument("--phang", type=float, default=0.0, help="probability of a request hanging --hang-seconds")
    parser.add_argument("--hang-seconds", type=float, default=10.0)
    parser.add_argument("--fault-seed", type=int, default=0, help="seed of the random faults")
    args = parser.parse_args(argv)

    server = FakeOpenAIServer(make_reply(args.script), latency_s=args.latency, host=args.host, port=args.port,
                              max_concurrent=args.max_concurrency)
    if args.p500 or args.p429 or args.pgarbage or args.phang:
        server.random_faults = RandomFaults(args.p500, args.p429, args.pgarbage, args.phang, args.fault_seed,
                                            args.hang_seconds)
    for fault, times in args.fault:
        server.inject(fault, times)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    server.start()
    print(f"READY http://{args.host}:{server.port}/v1", flush=True)
    while not stopping.wait(0.5):
        pass
    stats = server.stats()
    server.stop()
    print("STATS " + json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
