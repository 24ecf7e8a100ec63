"""The benchmarks' fake OpenAI-compatible server on aiohttp: the same replies as
`tests.support.fake_openai_server` (same reply scripts, same JSON, same `stop`/`max_tokens` rules)
but served from one event loop instead of a thread per connection, so that at concurrency 256 the
server is not the ceiling and the benchmark measures the client.

    python -m bench.fast_server --script pyfile:PATH:FUNC --latency 0.1

prints `READY http://127.0.0.1:PORT/v1` once listening and `STATS {"requests": N}` on SIGTERM;
`GET /stats` answers the same counters while it runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from typing import Any

from aiohttp import web

from tests.support.fake_openai_server import Reply, _apply_limits, _words, make_reply


def answer(reply: Reply, body: dict[str, Any], number: int) -> dict[str, Any]:
    """The chat completion the test server would send for `body` (see FakeOpenAIServer._send_answer)."""
    text, finish = _apply_limits(reply(body), body)
    prompt = sum(_words(str(m.get("content", ""))) for m in body.get("messages", []))
    return {
        "id": f"chatcmpl-fake-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or "fake-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish,
                     "logprobs": None}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": _words(text), "total_tokens": prompt + _words(text)},
    }


def build_app(reply: Reply, latency_s: float) -> tuple[web.Application, dict[str, int]]:
    stats = {"requests": 0}

    async def chat(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        stats["requests"] += 1
        number = stats["requests"]
        if latency_s:
            await asyncio.sleep(latency_s)
        return web.Response(body=json.dumps(answer(reply, body, number)).encode(), content_type="application/json")

    async def counters(_request: web.Request) -> web.Response:
        return web.json_response(stats)

    async def models(_request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/stats", counters)
    return app, stats


async def serve(script: str, latency_s: float, host: str, port: int) -> dict[str, int]:
    app, stats = build_app(make_reply(script), latency_s)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"READY http://{host}:{bound}/v1", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await stopping.wait()
    await runner.cleanup()
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fast_server", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", default="echo-last", help="echo-last | fixed:TEXT | pyfile:PATH:FUNC")
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args(argv)
    stats = asyncio.run(serve(args.script, args.latency, args.host, args.port))
    print("STATS " + json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
