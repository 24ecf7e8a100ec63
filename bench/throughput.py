"""Throughput benchmark: requests/s through `autoevol evolve` (evolve + answer per seed) against a
raw async OpenAI client, both against the same fake OpenAI-compatible server with fixed latency.

    python -m bench.throughput [--latency 0.1] [--concurrency 64] [--seeds 512]

The raw client is the ceiling: it only sends requests. autoevol adds what a real run needs per
request (cache lookup and write, retries, accounting, parsing, failure rules, state and output
writes), so the ratio shows what that costs. Baselines measured earlier on this machine at 100 ms
latency: a raw async client 585 requests/s at concurrency 64; distilabel 1.5.3 EvolInstruct 154.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autoevol.api import Roles, evolve_async
from autoevol.config import ExecSettings, evolve_settings
from autoevol.data.source import DataSource
from autoevol.llm.spec import parse_model_spec
from autoevol.methods import load_method

HERE = Path(__file__).resolve().parent


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    script = f"pyfile:{HERE / 'throughput_script.py'}:reply"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.fake_openai_server", "--script", script, "--latency", str(latency)],
        stdout=subprocess.PIPE, text=True, cwd=HERE.parent,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit(f"fake server did not start: {line!r}")
    return proc, line.removeprefix("READY ")


async def raw_client(url: str, requests: int, concurrency: int) -> float:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url, api_key="bench", max_retries=0)
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await client.chat.completions.create(
                model="fake", messages=[{"role": "user", "content": f"question {i}"}], max_tokens=64
            )

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(requests)))
    elapsed = time.perf_counter() - started
    await client.close()
    return requests / elapsed


async def through_autoevol(url: str, seeds: int, concurrency: int, work: Path) -> tuple[float, int]:
    data = work / "seeds.jsonl"
    data.write_text("".join(json.dumps({"question": f"Tom has {i} apples. How many pears?"}) + "\n"
                            for i in range(seeds)))
    os.environ["AUTOEVOL_HOME"] = str(work / "home")  # empty cache: every request is paid
    spec = parse_model_spec("openai:fake", base_url=url, concurrency=concurrency)
    started = time.perf_counter()
    result = await evolve_async(
        DataSource(data, schema="instruction", field="question"), methods=(load_method("weak"),),
        roles=Roles(evol=spec), out=work / "run", settings=evolve_settings("default"),
        exec_settings=ExecSettings(quiet=True),
    )
    elapsed = time.perf_counter() - started
    calls = sum(int(u["paid_calls"]) for u in result.usage)  # type: ignore[call-overload]
    accepted = result.summary["rounds"][0]["accepted"]
    return calls / elapsed, accepted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=512)
    args = parser.parse_args(argv)
    proc, url = start_server(args.latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            raw = asyncio.run(raw_client(url, 2 * args.seeds, args.concurrency))
            ours, accepted = asyncio.run(through_autoevol(url, args.seeds, args.concurrency, Path(tmp)))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"latency {args.latency * 1000:.0f} ms, concurrency {args.concurrency}, {args.seeds} seeds "
          f"({2 * args.seeds} requests each side)")
    print(f"raw async client     {raw:8.1f} requests/s")
    print(f"autoevol evolve      {ours:8.1f} requests/s  ({accepted}/{args.seeds} seeds accepted)")
    print(f"ratio autoevol/raw   {ours / raw:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
