"""parse_model_spec: every form a user can type, and the errors for the ones that make no sense."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoevol.errors import ConfigError
from autoevol.llm.spec import DEFAULT_OPENAI_BASE_URL, parse_model_spec


def test_local_is_the_bundled_model_with_one_slot() -> None:
    spec = parse_model_spec("local")
    assert (spec.kind, spec.model, spec.base_url) == ("local", "", None)
    assert spec.concurrency == 1
    assert spec.label == "local:smollm2-135m-instruct-q4_1"


def test_local_path(tmp_path: Path) -> None:
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    spec = parse_model_spec(f"local:{gguf}")
    assert spec.kind == "local"
    assert spec.model == str(gguf)
    assert spec.label == "local:tiny.gguf"


def test_local_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model file not found"):
        parse_model_spec(f"local:{tmp_path / 'absent.gguf'}")


def test_openai_with_base_url_and_overrides() -> None:
    spec = parse_model_spec(
        "openai:qwen2.5-7b",
        base_url="http://127.0.0.1:8000/v1/",
        api_key_env="MY_KEY",
        concurrency=32,
        request_timeout=5,
    )
    assert (spec.kind, spec.model, spec.base_url) == ("openai", "qwen2.5-7b", "http://127.0.0.1:8000/v1")
    assert (spec.api_key_env, spec.concurrency, spec.request_timeout) == ("MY_KEY", 32, 5)
    assert spec.label == "openai:qwen2.5-7b"
    assert spec.semantic() == {"kind": "openai", "model": "openai:qwen2.5-7b", "base_url": spec.base_url}


def test_openai_model_names_may_hold_colons() -> None:
    assert parse_model_spec("openai:llama3:8b", base_url="http://x/v1").model == "llama3:8b"


def test_openai_base_url_from_env_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_model_spec("openai:gpt-4o-mini").base_url == DEFAULT_OPENAI_BASE_URL
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env-host:9000/v1")
    assert parse_model_spec("openai:gpt-4o-mini").base_url == "http://env-host:9000/v1"
    assert parse_model_spec("openai:m", base_url="http://flag/v1").base_url == "http://flag/v1"


def test_bare_name_with_base_url_means_openai() -> None:
    spec = parse_model_spec("mistral-7b", base_url="http://127.0.0.1:8080/v1")
    assert (spec.kind, spec.model) == ("openai", "mistral-7b")


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "evolver.toml"
    path.write_text('kind = "openai"\nmodel = "m1"\nbase_url = "http://h:1/v1"\nconcurrency = 64\n')
    spec = parse_model_spec(str(path))
    assert (spec.kind, spec.model, spec.base_url, spec.concurrency) == ("openai", "m1", "http://h:1/v1", 64)


def test_json_file_gets_base_url_from_flag(tmp_path: Path) -> None:
    path = tmp_path / "optimizer.json"
    path.write_text(json.dumps({"kind": "openai", "model": "m2", "max_retries": 2}))
    spec = parse_model_spec(str(path), base_url="http://flag:2/v1")
    assert (spec.model, spec.base_url, spec.max_retries) == ("m2", "http://flag:2/v1", 2)


def test_local_spec_file_defaults_to_one_slot(tmp_path: Path) -> None:
    path = tmp_path / "local.json"
    path.write_text(json.dumps({"kind": "local", "n_ctx": 2048}))
    spec = parse_model_spec(str(path))
    assert (spec.kind, spec.n_ctx, spec.concurrency) == ("local", 2048, 1)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty model spec"),
        ("   ", "empty model spec"),
        ("openai:", "needs a model name"),
        ("gpt-4o", "unknown model spec 'gpt-4o'"),
        ("ollama:llama3", "unknown model spec"),
    ],
)
def test_bad_short_forms(text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_model_spec(text)


def test_unknown_form_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        parse_model_spec("vllm:foo")
    assert "local" in str(info.value) and "openai:MODEL" in str(info.value) and ".toml" in str(info.value)


def test_out_of_range_override_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"invalid model spec 'openai:m'.*concurrency"):
        parse_model_spec("openai:m", base_url="http://h/v1", concurrency=0)


def test_file_with_unknown_field_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('kind = "openai"\nmodel = "m"\napi_key = "sk-should-not-be-here"\n')
    with pytest.raises(ConfigError, match="api_key") as info:
        parse_model_spec(str(path))
    assert "sk-should-not-be-here" not in str(info.value)


def test_file_with_bad_kind(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"kind": "anthropic", "model": "m"}))
    with pytest.raises(ConfigError, match="kind"):
        parse_model_spec(str(path))


def test_unreadable_and_non_table_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read model spec file"):
        parse_model_spec(str(tmp_path / "absent.toml"))
    broken = tmp_path / "broken.toml"
    broken.write_text("kind = = openai")
    with pytest.raises(ConfigError, match="cannot read model spec file"):
        parse_model_spec(str(broken))
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="table/object"):
        parse_model_spec(str(listing))


def test_spec_is_frozen() -> None:
    spec = parse_model_spec("local")
    with pytest.raises(ValueError):
        spec.concurrency = 4  # type: ignore[misc]
