"""`--base-url` without `--model` means the server's model: its only one from `/v1/models` (said on
stderr), or a clear error listing them; never the embedded model, and never a silent fallback.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.fixtures.evolve_server import run_cli, write_seeds
from tests.support.fake_openai_server import FakeOpenAIServer


def test_ping_with_only_a_base_url_uses_the_servers_single_model(
    tmp_path: Path, fake_server: FakeOpenAIServer, autoevol_home: Path
) -> None:
    result = run_cli(["ping", "--base-url", fake_server.url, "--max-tokens", "8"], home=autoevol_home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"model: openai:fake-model (the only model served at {fake_server.url})\n"
    assert "-- openai:fake-model:" in result.stdout
    assert fake_server.requests == 1 and fake_server.bodies[0]["model"] == "fake-model"


def test_evolve_with_only_a_base_url_records_the_servers_model(
    tmp_path: Path, fake_server: FakeOpenAIServer, autoevol_home: Path
) -> None:
    data = write_seeds(tmp_path / "seeds.jsonl", 2)
    result = run_cli(["evolve", str(data), "--out", str(tmp_path / "run"), "--base-url", fake_server.url, "-q"],
                     home=autoevol_home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["config"]["models"]["evol"] == {
        "kind": "openai", "model": "openai:fake-model", "base_url": fake_server.url,
    }
    assert fake_server.requests == 2 * 2 and {b["model"] for b in fake_server.bodies} == {"fake-model"}


class _Models(BaseHTTPRequestHandler):
    names: tuple[str, ...] = ()

    def do_GET(self) -> None:
        body = json.dumps({"object": "list", "data": [{"id": n, "object": "model"} for n in self.names]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def models_server() -> Iterator[tuple[str, type[_Models]]]:
    handler = type("Handler", (_Models,), {})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize(("names", "listed"), [(("qwen-7b", "llama-8b"), "llama-8b, qwen-7b"), ((), "none")])
def test_a_server_without_exactly_one_model_is_a_clear_error(
    tmp_path: Path, autoevol_home: Path, models_server: tuple[str, type[_Models]], names: tuple[str, ...],
    listed: str,
) -> None:
    url, handler = models_server
    handler.names = names
    result = run_cli(["ping", "--base-url", url], home=autoevol_home, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"error: {url} serves {len(names)} models ({listed}); "
                             "choose one with --model openai:NAME\n")


def test_an_unreachable_base_url_is_an_error_not_the_embedded_model(tmp_path: Path, autoevol_home: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    result = run_cli(["ping", "--base-url", url], home=autoevol_home, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (f"error: cannot list the models served at {url}/models (ConnectError); "
                             "pass --model openai:NAME\n")
