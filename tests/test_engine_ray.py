"""`--engine ray`: the same job on the local engine and on a local Ray instance (bound to
127.0.0.1, no dashboard) writes byte-identical outputs, a Ray run stopped by its budget resumes
to the same bytes, and a missing Ray is one line (exit 2).

Each Ray run starts its own private Ray instance inside the `autoevol` process (5-10 s on 2 cores),
so the two end-to-end tests (six Ray runs, about 1.5 min) are marked slow: `make test` runs them,
`-m 'not slow'` leaves them out.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autoevol.engines.ray import MISSING, import_ray, share, split_limit
from autoevol.errors import ConfigError
from autoevol.llm.spec import ModelSpec
from tests.fixtures.evolve_server import CLI, fake_server, run_cli, write_seeds
from tests.support.optimize_script import write_data
from tests.test_optimize_resume import env_for, optimize_cmd, server  # noqa: F401  (server: a fixture)
from tests.test_optimize_resume import outputs as optimize_outputs

needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")

N = 24


def tags(i: int) -> str:
    return "[reject]" if i % 7 == 3 else "[parse]" if i % 11 == 5 else ""


def args(url: str, out: str, *more: str) -> list[str]:
    return ["evolve", "seeds.jsonl", "--model", "openai:fake", "--base-url", url, "--out", out,
            "--concurrency", "4", "--rounds", "2", "--quiet", *more]


def outputs(run: Path) -> dict[str, bytes]:
    return {name: (run / "output" / name).read_bytes() for name in ("evolved.jsonl", "rejected.jsonl")}


@needs_ray
@pytest.mark.slow
def test_ray_writes_what_the_local_engine_writes_and_resumes_the_same(tmp_path: Path) -> None:
    write_seeds(tmp_path / "seeds.jsonl", N, tags)
    with fake_server(latency=0.01) as srv:
        local = run_cli(args(srv.url, "local"), home=tmp_path / "h1", cwd=tmp_path)
        assert local.returncode == 0, local.stderr
        ray = run_cli(args(srv.url, "ray", "--engine", "ray"), home=tmp_path / "h2", cwd=tmp_path, timeout=300)
        assert ray.returncode == 0, ray.stderr
        # Stopped by its budget (split across the workers), then resumed on Ray: same bytes again.
        stopped = run_cli(args(srv.url, "part", "--engine", "ray", "--max-calls", "20"), home=tmp_path / "h3",
                          cwd=tmp_path, timeout=300)
        assert stopped.returncode == 5, stopped.stderr
        resumed = run_cli(args(srv.url, "part", "--engine", "ray"), home=tmp_path / "h3", cwd=tmp_path,
                          timeout=300)
        assert resumed.returncode == 0, resumed.stderr

    reference = outputs(tmp_path / "local")
    assert reference["rejected.jsonl"] and reference["evolved.jsonl"]
    assert outputs(tmp_path / "ray") == reference
    assert outputs(tmp_path / "part") == reference
    summaries = [json.loads((tmp_path / name / "output" / "summary.json").read_text()) for name in ("local", "ray")]
    assert summaries[0]["rounds"] == summaries[1]["rounds"]
    # Remote calls are counted by the driver: the same requests, so the same usage.
    calls = [sum(entry["calls"] for entry in s["usage"]) for s in summaries]
    assert calls[0] == calls[1] > 0


def test_workers_share_the_budget_instead_of_multiplying_it() -> None:
    spec = ModelSpec(kind="openai", model="m", base_url="http://x.invalid/v1", concurrency=64)
    assert share(spec, 4).concurrency == 16
    assert share(spec, 100).concurrency == 1
    assert split_limit(None, 3) is None and split_limit(10, 3) == 4 and split_limit(1, 8) == 1


def test_missing_ray_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError) as caught:
        import_ray()
    assert str(caught.value) == MISSING and caught.value.exit_code == 2


@needs_ray
@pytest.mark.slow
def test_dev_scoring_on_ray_selects_what_local_scoring_selects(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """The scripted optimisation world (`tests.support.optimize_script`), scored locally and on Ray."""
    url, _ = request.getfixturevalue("server")
    data = write_data(tmp_path / "data.jsonl", 30)
    results = []
    for name, engine in (("local", []), ("ray", ["--engine", "ray"])):
        cmd = [*optimize_cmd(data, url, tmp_path / name), *engine]
        done = subprocess.run(cmd, env=env_for(tmp_path / f"home-{name}"), capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        optimization, best = optimize_outputs(tmp_path / name)
        results.append((optimization["steps"], optimization["lambda_history"], best["id"], best["template"]))
    assert results[0] == results[1]


def test_without_ray_the_cli_says_so_in_one_line_before_touching_the_run(tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "ray"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('hidden for this test')\n", encoding="utf-8")
    write_seeds(tmp_path / "seeds.jsonl", 2)
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(shadow.parent), str(Path(__file__).parents[1])]),
                        "AUTOEVOL_HOME": str(tmp_path / "home")}
    done = subprocess.run([*CLI, *args("http://127.0.0.1:9/v1", "run", "--engine", "ray")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {MISSING}"
    assert not (tmp_path / "run").exists()
