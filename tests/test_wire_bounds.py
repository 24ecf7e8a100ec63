"""Bounds and secrets (issue 17 item 8; reliability review B12, B13, B14, B15, B22).

Secrets typed where they do not belong (an `extra_body` field, a URL fragment, the key given as
`--api-key-env`) are refused before anything is written, naming the option and never the value; a
reply body has a size cap; the limiter's cancel path raises nothing but CancelledError; model text
printed to a terminal carries no control sequences; the Hub card shows names as text.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoevol.cli.support import terminal_text
from autoevol.errors import MalformedReplyError
from autoevol.llm.endpoint import AdaptiveLimiter, Endpoint, RetryPolicy
from autoevol.llm.openai_http import OpenAIBackend, body_cap
from autoevol.report.publish import dataset_card
from autoevol.types import CompletionRequest, user
from tests.fixtures.evolve_server import CLI, cli_env, reply, write_seeds
from tests.support.fake_openai_server import FakeOpenAIServer, Fault

CANARY = "sk-FAKE-canary-0123456789abcdef"
CORE = "0123456789abcdef"


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(reply) as running:
        yield running


def run(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=cli_env(home), capture_output=True, text=True,
                          timeout=120, check=False)


def assert_nowhere(secret: str, result: subprocess.CompletedProcess[str], *roots: Path) -> None:
    """Not in the output, nor in any file under `roots` but the model spec file the test wrote."""
    assert secret not in result.stdout + result.stderr
    for root in roots:
        for path in (p for p in root.rglob("*") if p.is_file() and p.name != "model.json"):
            assert secret.encode() not in path.read_bytes(), path


def _refused(tmp_path: Path, home: Path, server: FakeOpenAIServer, args: list[str]) -> str:
    write_seeds(tmp_path / "seeds.jsonl", 3)
    result = run(["evolve", "seeds.jsonl", "--out", "runs/k", "--quiet", *args], tmp_path, home)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert server.requests == 0
    assert_nowhere(CORE, result, tmp_path, home)
    return result.stderr


@pytest.mark.parametrize("value", [CANARY, "hf_0123456789abcdefQRSTuvwx", "AbCdEf0123456789abcdefGH",
                                   "OPENAI API KEY", "1KEY"])
def test_a_key_typed_as_api_key_env_is_refused_without_being_shown(
    tmp_path: Path, autoevol_home: Path, server: FakeOpenAIServer, value: str
) -> None:
    write_seeds(tmp_path / "seeds.jsonl", 3)
    result = run(["evolve", "seeds.jsonl", "--out", "runs/k", "--quiet", "--model", "openai:m",
                  "--base-url", server.url, "--api-key-env", value], tmp_path, autoevol_home)
    assert result.returncode == 2 and "--api-key-env" in result.stderr, result.stderr
    assert server.requests == 0 and value not in result.stderr
    assert not (tmp_path / "runs/k/manifest.json").exists()


def test_a_real_variable_name_is_still_accepted(tmp_path: Path, autoevol_home: Path, server: FakeOpenAIServer) -> None:
    write_seeds(tmp_path / "seeds.jsonl", 2)
    result = run(["evolve", "seeds.jsonl", "--out", "runs/k", "--quiet", "--model", "openai:m",
                  "--base-url", server.url, "--api-key-env", "MY_VERY_LONG_SERVICE_API_KEY"], tmp_path, autoevol_home)
    assert result.returncode == 0, result.stderr


def test_a_url_fragment_is_refused(tmp_path: Path, autoevol_home: Path, server: FakeOpenAIServer) -> None:
    stderr = _refused(tmp_path, autoevol_home, server,
                      ["--model", "openai:m", "--base-url", f"{server.url}#{CANARY}"])
    assert "--base-url" in stderr and "fragment" in stderr


@pytest.mark.parametrize("extra", [{"api_key": CANARY}, {"metadata": {"auth_token": CANARY}},
                                   {"headers": {"Authorization": f"Bearer {CANARY}"}}])
def test_a_credential_in_extra_body_is_refused(
    tmp_path: Path, autoevol_home: Path, server: FakeOpenAIServer, extra: dict[str, object]
) -> None:
    spec = tmp_path / "model.json"
    spec.write_text(json.dumps({"kind": "openai", "model": "m", "base_url": server.url, "extra_body": extra}))
    stderr = _refused(tmp_path, autoevol_home, server, ["--model", str(spec)])
    assert "extra_body" in stderr and "credential" in stderr


def test_ordinary_extra_body_fields_still_go_out(tmp_path: Path, autoevol_home: Path, server: FakeOpenAIServer) -> None:
    spec = tmp_path / "model.json"
    spec.write_text(json.dumps({"kind": "openai", "model": "m", "base_url": server.url,
                                "extra_body": {"guided_choice": None, "top_k": 20}}))
    write_seeds(tmp_path / "seeds.jsonl", 1)
    result = run(["evolve", "seeds.jsonl", "--out", "runs/k", "--quiet", "--model", str(spec)], tmp_path, autoevol_home)
    assert result.returncode == 0, result.stderr
    assert all(body.get("top_k") == 20 for body in server.bodies)


def _request(max_tokens: int) -> CompletionRequest:
    return CompletionRequest(messages=(user("hi"),), model="m", max_tokens=max_tokens)


@pytest.mark.parametrize("size", [(1 << 20) + 64, 8 << 20])
async def test_a_body_over_the_cap_is_a_transport_error(server: FakeOpenAIServer, size: int) -> None:
    server.inject(Fault.raw(b'{"choices": [{"message": {"content": "' + b"a" * size + b'"}}]}'), times=None)
    backend = OpenAIBackend(server.url)
    try:
        with pytest.raises(MalformedReplyError, match="cap"):
            await Endpoint(backend, retry=RetryPolicy(malformed_retries=0)).complete(_request(64))
    finally:
        await backend.aclose()
    assert body_cap(64) == 1 << 20 and body_cap(100_000) == 6_400_000


async def test_a_body_under_the_cap_is_read(server: FakeOpenAIServer) -> None:
    text = "b" * 900_000
    server.inject(Fault.choice({"content": text}))
    backend = OpenAIBackend(server.url)
    try:
        completion = await Endpoint(backend).complete(_request(64))
    finally:
        await backend.aclose()
    assert completion.text == text


async def test_cancelling_waiters_while_slots_are_released_raises_only_cancelled_error() -> None:
    """Review B14: `_hand_over` pops a waiter cancelled a moment before, then its own cancel path ran."""
    limiter = AdaptiveLimiter(4)
    for _ in range(4):
        await limiter.__aenter__()

    async def wait() -> None:
        async with limiter:
            await asyncio.sleep(10)

    waiters = [asyncio.create_task(wait()) for _ in range(16)]
    await asyncio.sleep(0)  # all queued
    for task in waiters:
        task.cancel()  # cancels each one's future now; their except blocks run later
    for _ in range(4):
        await limiter.__aexit__(None, None, None)  # releases without yielding: pops cancelled waiters
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results), results
    assert limiter.in_flight == 0 and not limiter._waiters


ESCAPES = "\x1b]52;c;Y2FuYXJ5\x07\x1b]0;owned\x1b\\\x1b[8mhidden\x1b[0m\x9b31m\r"


def test_terminal_text_keeps_newlines_and_tabs_only() -> None:
    assert terminal_text(f"a\tb\n{ESCAPES}c") == "a\tb\n]52;c;Y2FuYXJ5]0;owned\\[8mhidden[0m31mc"
    assert terminal_text("plain é — text\n") == "plain é — text\n"


def test_methods_show_prints_no_control_characters(tmp_path: Path, autoevol_home: Path) -> None:
    from autoevol.methods import load_method

    method = load_method("weak").to_dict()
    method["name"] = f"evil{ESCAPES}"
    method["template"] = method["template"].replace("#Instruction#", f"{ESCAPES}#Instruction#", 1)
    del method["id"]  # the template changed: a saved method's id must be dropped to accept it
    (tmp_path / "m.json").write_text(json.dumps(method))
    result = run(["methods", "show", "m.json"], tmp_path, autoevol_home)
    assert result.returncode == 0, result.stderr
    assert "evil" in result.stdout and not any(c in result.stdout for c in "\x1b\x07\x9b\r")


def test_the_printed_method_diff_carries_no_escapes() -> None:
    import io

    from autoevol.cli.explain import print_outcome
    from autoevol.methods import load_method
    from autoevol.optimization.job import OptimizeOutcome

    parent = load_method("weak")
    child = parent.derive(parent.template + f"\nAlso {ESCAPES} be careful.")
    out = io.StringIO()
    print_outcome(OptimizeOutcome(best=child, best_lambda=0.1, history=[], initial=parent), stream=out)
    assert "be careful" in out.getvalue() and not any(c in out.getvalue() for c in "\x1b\x07\x9b\r")


def test_the_hub_card_shows_a_method_name_as_text(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(Path(__file__).parent / "data" / "old_runs" / "evolve" / "run", run_dir)
    path = run_dir / "manifest.json"
    found = json.loads(path.read_text(encoding="utf-8"))
    found["config"]["methods"][0]["name"] = "m<b onmouseover=alert(19)>) [x](javascript:alert(1)) `y`"
    path.write_text(json.dumps(found), encoding="utf-8")
    card = dataset_card(run_dir)
    assert not re.search(r"(?<!\\)<b", card) and not re.search(r"(?<!\\)\]\(javascript", card)
    assert r"m\<b onmouseover=alert\(19\)\>\)" in card
