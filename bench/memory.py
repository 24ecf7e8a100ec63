"""Memory benchmark: peak RSS of `autoevol evolve` as the dataset grows, and the on-disk cost.

    python -m bench.memory                    # 10k and 100k seeds (a few minutes on 2 cores)
    python -m bench.memory --seeds 1000000    # the 1M run on its own (see the README for its time)

Each N runs in a fresh child process (so one size's peak cannot hide another's) with an in-process,
zero-latency scripted backend: what is measured is autoevol's own memory (reader, state, cache,
executor, outputs, summary), not a server's or an HTTP stack's. One round, evolve + answer per seed,
default settings, the response cache on (it stores every response: its size is reported as is).

Printed per N: peak RSS (VmHWM), its ratio to the smallest N's, wall time, and bytes of state.db
and cache.db per 1,000 seeds. Exit status 1 if any peak is ≥ 1 GiB or grows more than 1.5x.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from autoevol.types import CompletionRequest

FINAL = "#Finally Rewritten Instruction#"
LIMIT_BYTES = 1 << 30
FLAT_RATIO = 1.5


def reply(request: CompletionRequest) -> str:
    """Evolve requests get a rewrite in the method's format, answer requests an answer."""
    last = request.messages[-1].content
    if request.messages[0].role == "system":
        return f"Answer to: {last[:200]}"
    instruction = last.split("#Instruction#:\n")[-1][:200]
    return f"Step 1 #Methods List#: add a step\nStep 4 {FINAL}: {instruction} Explain each step."


def write_seeds(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n):
            handle.write(json.dumps({"id": f"s{i:08d}", "instruction": f"Compute {i} plus {i * 7} step by step.",
                                     "output": str(i * 8)}) + "\n")


def peak_rss() -> int:
    """This process's peak resident set size in bytes (Linux VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def child(n: int, work: Path) -> dict[str, Any]:
    """One evolve run over n seeds, in this process; returns its measurements."""
    import asyncio

    from autoevol.api import Roles, evolve_async
    from autoevol.config import EvolveSettings, ExecSettings
    from autoevol.data.source import DataSource
    from autoevol.llm.fake import ScriptedBackend
    from autoevol.llm.spec import ModelSpec
    from autoevol.methods import load_method

    os.environ["AUTOEVOL_HOME"] = str(work / "home")
    data = work / "seeds.jsonl"
    write_seeds(data, n)
    spec = ModelSpec(kind="openai", model="bench", base_url="http://bench.invalid/v1", concurrency=64)
    started = time.monotonic()
    asyncio.run(evolve_async(
        DataSource(data), methods=(load_method("initial"),), roles=Roles(evol=spec), out=work / "run",
        settings=EvolveSettings(), exec_settings=ExecSettings(quiet=True),
        backends={"evol": ScriptedBackend(reply, identity="bench")},
    ))
    wall = time.monotonic() - started
    cache = work / "home" / "cache.db"
    return {
        "seeds": n, "peak_rss": peak_rss(), "seconds": round(wall, 1),
        "state_bytes": _db_bytes(work / "run" / "state.db"), "cache_bytes": _db_bytes(cache),
        "evolved_bytes": (work / "run" / "output" / "evolved.jsonl").stat().st_size,
    }


def _db_bytes(path: Path) -> int:
    """A SQLite file with its WAL (what the run leaves on disk)."""
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def measure(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix=f"autoevol-mem-{n}-") as tmp:
        cmd = [sys.executable, "-m", "bench.memory", "--child", str(n), "--work", tmp]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[10_000, 100_000], help="dataset sizes to run")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.child, args.work)))
        return 0
    results = []
    print(f"{'seeds':>9} {'peak RSS':>10} {'ratio':>6} {'wall s':>8} {'state/1k':>10} {'cache/1k':>10}")
    for n in sorted(args.seeds):
        r = measure(n)
        results.append(r)
        ratio = r["peak_rss"] / results[0]["peak_rss"]
        print(f"{n:>9,} {r['peak_rss'] / 2**20:>7.0f} MiB {ratio:>5.2f}x {r['seconds']:>8.1f} "
              f"{r['state_bytes'] / n * 1000 / 1024:>6.0f} KiB {r['cache_bytes'] / n * 1000 / 1024:>6.0f} KiB",
              flush=True)
    worst = max(r["peak_rss"] for r in results)
    flat = worst / results[0]["peak_rss"] <= FLAT_RATIO
    print(f"peak < 1 GiB: {'yes' if worst < LIMIT_BYTES else 'NO'}; flat (≤ {FLAT_RATIO}x the smallest N): "
          f"{'yes' if flat else 'NO'}")
    return 0 if worst < LIMIT_BYTES and flat else 1


if __name__ == "__main__":
    raise SystemExit(main())
