"""No credential ever reaches a file, an event, the cache or a message: keys read from a CRLF `.env`,
keys with hidden characters, keys echoed back by a server in other encodings, and credentials typed
into `--base-url`. Driven through the real CLI in a subprocess against a fake server over HTTP.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from autoevol.errors import ConfigError
from autoevol.llm.openai_http import _convert_status, _redact
from autoevol.llm.spec import normalise_api_key, public_url
from tests.fixtures.evolve_server import CLI, cli_env, reply, write_seeds
from tests.support.fake_openai_server import FakeOpenAIServer, Fault

CANARY = "sk-canary-7f3a9c1e5b2d4f60XYZ"
#: A recognisable part of the canary: any leak of the key, whole or encoded, contains it.
CORE = "7f3a9c1e5b2d4f60"


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(reply) as running:
        yield running


def run(args: list[str], cwd: Path, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=cli_env(home) | env, capture_output=True, text=True,
                          timeout=120, check=False)


def evolve_args(url: str, *extra: str) -> list[str]:
    return ["evolve", "seeds.jsonl", "--base-url", url, "--out", "runs/x", "--quiet", "-j", "4", *extra]


def assert_nowhere(secret: str, result: subprocess.CompletedProcess[str], *roots: Path) -> None:
    """`secret` is in neither output stream nor any file under `roots` (raw or escaped as JSON)."""
    escaped = json.dumps(secret)[1:-1]
    assert secret not in result.stdout + result.stderr and escaped not in result.stdout + result.stderr
    for root in roots:
        for path in (p for p in root.rglob("*") if p.is_file()):
            data = path.read_bytes()
            assert secret.encode() not in data and escaped.encode() not in data, path


@pytest.mark.parametrize("tail", ["\r", "\n", "\r\n", "  \t"], ids=["cr", "lf", "crlf", "blanks"])
def test_a_key_read_from_a_crlf_env_file_is_stripped_and_never_written(
    tmp_path: Path, server: FakeOpenAIServer, autoevol_home: Path, tail: str
) -> None:
    write_seeds(tmp_path / "seeds.jsonl", 6)
    result = run(evolve_args(server.url, "--model", "openai:fake"), tmp_path, autoevol_home,
                 OPENAI_API_KEY=" " + CANARY + tail)
    assert result.returncode == 0, result.stderr
    # The key the server received is the stripped one, on every request.
    assert server.requests == 12 and {h["authorization"] for h in server.headers} == {f"Bearer {CANARY}"}
    assert_nowhere(CORE, result, tmp_path / "runs", autoevol_home)


@pytest.mark.parametrize("key", [CANARY[:10] + "\r" + CANARY[10:], CANARY + "\u200b",
                                 CANARY[:10] + "\x1b" + CANARY[10:]], ids=["inner-cr", "zero-width", "escape"])
def test_a_key_with_a_hidden_character_inside_is_refused_without_showing_it(
    tmp_path: Path, server: FakeOpenAIServer, autoevol_home: Path, key: str
) -> None:
    write_seeds(tmp_path / "seeds.jsonl", 3)
    result = run(evolve_args(server.url, "--model", "openai:fake", "--api-key-env", "MY_KEY"), tmp_path,
                 autoevol_home, MY_KEY=key)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert "MY_KEY" in result.stderr and "character" in result.stderr
    assert server.requests == 0
    assert_nowhere(CANARY[:8], result, tmp_path, autoevol_home)


def test_normalise_api_key() -> None:
    assert normalise_api_key(f"\t{CANARY}\r\n", "K") == CANARY
    assert normalise_api_key("  ", "K") is None and normalise_api_key(None, "K") is None
    for bad in (CANARY[:8] + "\x00" + CANARY[8:], CANARY[:8] + " " + CANARY[8:], "sk-\u00e9t\u00e9-key"):
        with pytest.raises(ConfigError) as info:
            normalise_api_key(bad, "K")
        assert CANARY[:8] not in str(info.value) and "\u00e9t\u00e9" not in str(info.value)


def test_a_server_echoing_the_key_in_any_encoding_is_redacted() -> None:
    user_pass = base64.b64encode(f"user:{CANARY}".encode()).decode()
    echoes = [CANARY, quote(CANARY + "/="), quote_plus(CANARY), repr(CANARY + "\r"), json.dumps(CANARY),
              f"Basic {user_pass}", CANARY[3:]]
    for echo in echoes:
        text = f"Incorrect API key provided: {echo}. Check it."
        assert CORE not in _redact(text, CANARY), echo
        for body in (json.dumps({"error": {"message": text}}), json.dumps({"message": text}), text):
            error = _convert_status(401, body.encode(), {}, secret=CANARY)
            assert CORE not in str(error) and "[redacted]" in str(error), body


def test_a_401_echoing_the_key_shows_it_redacted(tmp_path: Path, server: FakeOpenAIServer, autoevol_home: Path) -> None:
    server.inject(Fault.unauthorized(), times=None)
    write_seeds(tmp_path / "seeds.jsonl", 3)
    result = run(evolve_args(server.url, "--model", "openai:fake"), tmp_path, autoevol_home,
                 OPENAI_API_KEY=CANARY + "\r\n")
    assert result.returncode == 6 and "[redacted]" in result.stderr, result.stderr
    assert_nowhere(CORE, result, tmp_path / "runs", autoevol_home)


def _credential_urls(url: str) -> list[str]:
    host = url.removeprefix("http://")
    return [f"http://user:{CANARY}@{host}", f"http://{CANARY}@{host}", f"{url}?api_key={CANARY}",
            f"{url}?key={CANARY}", f"{url}?api-version=1&access_token={quote(CANARY)}"]


@pytest.mark.parametrize("which", range(5), ids=["userinfo", "user-only", "api_key", "key", "token"])
@pytest.mark.parametrize("how", ["flag", "flag-no-model", "env", "ping"])
def test_credentials_in_the_base_url_are_refused_and_never_recorded(
    tmp_path: Path, server: FakeOpenAIServer, autoevol_home: Path, which: int, how: str
) -> None:
    url = _credential_urls(server.url)[which]
    write_seeds(tmp_path / "seeds.jsonl", 3)
    env: dict[str, str] = {}
    if how == "flag":
        args = evolve_args(url, "--model", "openai:fake")
    elif how == "flag-no-model":
        args = evolve_args(url)
    elif how == "env":
        args = ["evolve", "seeds.jsonl", "--model", "openai:fake", "--out", "runs/x", "--quiet"]
        env["OPENAI_BASE_URL"] = url
    else:
        args = ["ping", "--model", "openai:fake", "--base-url", url]
    result = run(args, tmp_path, autoevol_home, **env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert "credentials" in result.stderr and "--api-key-env" in result.stderr
    assert "127.0.0.1" in result.stderr  # the URL is named, without what it carried
    assert server.requests == 0 and not server.headers
    assert_nowhere(CORE, result, tmp_path, autoevol_home)


def test_credentials_in_a_spec_file_base_url_are_refused(tmp_path: Path, autoevol_home: Path) -> None:
    spec = tmp_path / "model.json"
    spec.write_text(json.dumps({"kind": "openai", "model": "m", "base_url": f"https://u:{CANARY}@example.com/v1"}))
    result = run(["ping", "--model", str(spec)], tmp_path, autoevol_home)
    assert result.returncode == 2 and "credentials" in result.stderr, result.stderr
    assert CORE not in result.stdout + result.stderr


def test_public_url_drops_credentials_only() -> None:
    assert public_url(f"https://user:{CANARY}@host:8443/v1?api-version=2&api_key={CANARY}") == (
        "https://***@host:8443/v1?api-version=2&api_key=***"
    )
    assert public_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
