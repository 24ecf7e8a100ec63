"""Throughput benchmark: requests/s and client CPU per request, in one run, for three clients of
the same fake OpenAI-compatible server (fixed latency, `bench/throughput_script.py` replies):

- raw:        a bare aiohttp client sending the same number of requests (the ceiling);
- autoevol:   `evolve_async` with the `weak` method, evolve + answer per seed, empty cache;
- distilabel: distilabel 1.5.3 `EvolInstruct` (one evolution, answers generated, same seeds,
              input_batch_size = concurrency), installed on first use into its own virtual
              environment under $AUTOEVOL_BENCH_CACHE (default ~/.cache/autoevol-bench).

    python -m bench.throughput [--latency 0.1] [--concurrency 64 256] [--seeds 1500] [--repeat 1]
                               [--server aiohttp|stdlib] [--no-distilabel]

Each client runs in its own process, one at a time; requests are counted by the server. autoevol
is reported twice: over the whole `evolve_async` call (run directory, outputs, summary metrics and
HTML report included: the wall a user sees, minus interpreter start-up) and over its evolve phase
alone (requests in flight; what the transport and per-call bookkeeping decide). Imports are not
timed for any client (the raw client imports aiohttp before its clock starts, autoevol its HTTP
transport). CPU per call is
the client process's CPU time (user + system) over the same span divided by the requests it made.
Targets (issue 9): autoevol ≥ 0.9× raw at concurrency 64, ≥ 0.6× at 256, CPU ≤ raw + 0.3 ms per
call, ≥ 3× distilabel at both.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: distilabel 1.5.3 imports `requests` without declaring it.
DISTILABEL = ("distilabel[openai]==1.5.3", "requests")
SCRIPT = f"pyfile:{HERE / 'throughput_script.py'}:reply"


# -- the server --------------------------------------------------------------------------------
def start_server(kind: str, latency: float) -> tuple[subprocess.Popen[str], str]:
    module = "bench.fast_server" if kind == "aiohttp" else "tests.support.fake_openai_server"
    proc = subprocess.Popen([sys.executable, "-m", module, "--script", SCRIPT, "--latency", str(latency)],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit(f"fake server did not start: {line!r}")
    return proc, line.removeprefix("READY ")


def server_requests(url: str) -> int:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=10) as answer:
        return int(json.load(answer)["requests"])


# -- the clients, each in its own process --------------------------------------------------------
async def _raw(url: str, requests: int, concurrency: int) -> dict[str, float]:
    import aiohttp

    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(i: int) -> None:
            body = {"model": "fake", "messages": [{"role": "user", "content": f"Tom has {i} apples."}],
                    "max_tokens": 64}
            async with gate, session.post(url + "/chat/completions", json=body) as answer:
                data = await answer.json()
                assert data["choices"][0]["message"]["content"]

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(i) for i in range(requests)))
        return {"seconds": time.perf_counter() - started, "cpu_s": time.process_time() - cpu}


def _autoevol(url: str, seeds: Path, concurrency: int, work: Path) -> dict[str, float]:
    import autoevol.api as api
    import autoevol.llm.openai_http  # noqa: F401  the HTTP stack is imported untimed, as `_raw` imports aiohttp
    from autoevol.config import ExecSettings, evolve_settings
    from autoevol.data.source import DataSource
    from autoevol.llm.spec import parse_model_spec
    from autoevol.methods import load_method

    phase: dict[str, float] = {}
    evolve_dataset = api.evolve_dataset

    async def timed(*args: Any, **kwargs: Any) -> Any:
        # The evolve phase alone: every request is made in here, outputs and report come after.
        started, cpu = time.perf_counter(), time.process_time()
        try:
            return await evolve_dataset(*args, **kwargs)
        finally:
            phase.update(seconds=time.perf_counter() - started, cpu_s=time.process_time() - cpu)

    api.evolve_dataset = timed  # type: ignore[assignment]
    os.environ["AUTOEVOL_HOME"] = str(work / "home")  # an empty cache: every request is paid
    spec = parse_model_spec("openai:fake", base_url=url, concurrency=concurrency)
    started, cpu = time.perf_counter(), time.process_time()
    result = asyncio.run(api.evolve_async(
        DataSource(seeds, schema="instruction", field="question"), methods=(load_method("weak"),),
        roles=api.Roles(evol=spec), out=work / "run", settings=evolve_settings("default"),
        exec_settings=ExecSettings(quiet=True),
    ))
    assert result.summary["rounds"][0]["accepted"] > 0
    return {"seconds": time.perf_counter() - started, "cpu_s": time.process_time() - cpu,
            "phase_seconds": phase["seconds"], "phase_cpu_s": phase["cpu_s"]}


def child(argv: list[str]) -> int:
    kind, url, size, concurrency = argv[0], argv[1], argv[2], int(argv[3])
    if kind == "raw":
        out = asyncio.run(_raw(url, int(size), concurrency))
    else:
        out = _autoevol(url, Path(size), concurrency, Path(argv[4]))
    print(json.dumps(out), flush=True)
    return 0


def run_child(command: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, check=False, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])} failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def distilabel_python(cache: Path) -> Path:
    """distilabel's own virtual environment, created (once) under the cache directory."""
    venv = cache / "distilabel-1.5.3"
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists():
        print(f"installing {' '.join(DISTILABEL)} into {venv} (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *DISTILABEL], check=True)
        (venv / ".installed").touch()
    return python


# -- the report --------------------------------------------------------------------------------
def measure(label: str, url: str, command: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    before = server_requests(url)
    result = run_child(command, env)
    result["requests"] = server_requests(url) - before
    result["rps"] = result["requests"] / result["seconds"]
    result["cpu_ms"] = 1000 * result["cpu_s"] / result["requests"]
    if "phase_seconds" in result:
        result["phase_rps"] = result["requests"] / result["phase_seconds"]
        result["phase_cpu_ms"] = 1000 * result["phase_cpu_s"] / result["requests"]
    print(f"  {label:<11} {result['rps']:8.0f} req/s  {result['cpu_ms']:6.3f} ms CPU/call"
          + (f"   (evolve phase: {result['phase_rps']:.0f} req/s, {result['phase_cpu_ms']:.3f} ms CPU/call)"
             if "phase_rps" in result else ""), flush=True)
    return result


def verdict(value: float, target: float, *, at_most: bool = False) -> str:
    met = value <= target if at_most else value >= target
    return "met" if met else "MISSED"


def summarise(concurrency: int, runs: dict[str, list[dict[str, float]]]) -> None:
    best = {name: max(results, key=lambda r: r["rps"]) for name, results in runs.items()}
    spread = {name: (min(r["rps"] for r in rs), max(r["rps"] for r in rs)) for name, rs in runs.items()}
    raw, ours = best["raw"], best["autoevol"]
    ratio_wall, ratio_phase = ours["rps"] / raw["rps"], ours["phase_rps"] / raw["rps"]
    target = 0.9 if concurrency <= 64 else 0.6
    extra_cpu = ours["phase_cpu_ms"] - raw["cpu_ms"]
    print(f"c={concurrency}: autoevol/raw {ratio_wall:.2f} end to end, {ratio_phase:.2f} evolve phase "
          f"(target >= {target}: {verdict(ratio_wall, target)} end to end, {verdict(ratio_phase, target)} phase)")
    print(f"c={concurrency}: CPU/call beyond raw {extra_cpu:+.3f} ms in the evolve phase, "
          f"{ours['cpu_ms'] - raw['cpu_ms']:+.3f} ms end to end (target <= 0.3: {verdict(extra_cpu, 0.3, at_most=True)}"
          " phase)")
    if "distilabel" in best:
        vs = ours["rps"] / best["distilabel"]["rps"]
        print(f"c={concurrency}: autoevol/distilabel {vs:.2f}x end to end (target >= 3: {verdict(vs, 3.0)})")
    if any(len(rs) > 1 for rs in runs.values()):
        print(f"c={concurrency}: spread (req/s, min-max over repeats): "
              + ", ".join(f"{name} {lo:.0f}-{hi:.0f}" for name, (lo, hi) in spread.items()))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        return child(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--seeds", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=1, help="runs per client and concurrency (best is used)")
    parser.add_argument("--server", choices=("aiohttp", "stdlib"), default="aiohttp")
    parser.add_argument("--no-distilabel", action="store_true")
    args = parser.parse_args(argv)
    cache = Path(os.environ.get("AUTOEVOL_BENCH_CACHE", Path.home() / ".cache" / "autoevol-bench"))
    distilabel = None if args.no_distilabel else distilabel_python(cache)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    print(f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}; server: {args.server}, latency {args.latency * 1000:.0f} ms, "
          f"{args.seeds} seeds = {2 * args.seeds} requests per client", flush=True)
    proc, url = start_server(args.server, args.latency)
    try:
        with tempfile.TemporaryDirectory(prefix="autoevol-bench-") as tmp:
            seeds = Path(tmp) / "seeds.jsonl"
            seeds.write_text("".join(json.dumps({"question": f"Tom has {i} apples. How many pears?"}) + "\n"
                                     for i in range(args.seeds)))
            me = [sys.executable, "-m", "bench.throughput", "--child"]
            for concurrency in args.concurrency:
                print(f"concurrency {concurrency}:", flush=True)
                runs: dict[str, list[dict[str, float]]] = {"raw": [], "autoevol": []}
                for attempt in range(args.repeat):
                    work = Path(tmp) / f"c{concurrency}-{attempt}"
                    runs["raw"].append(measure("raw", url, [*me, "raw", url, str(2 * args.seeds), str(concurrency)],
                                               env))
                    runs["autoevol"].append(measure("autoevol", url, [*me, "autoevol", url, str(seeds),
                                                                      str(concurrency), str(work)], env))
                    if distilabel is not None:
                        runs.setdefault("distilabel", []).append(measure(
                            "distilabel", url, [str(distilabel), str(HERE / "distilabel_evol.py"), url, str(seeds),
                                                str(concurrency)]))
                summarise(concurrency, runs)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
