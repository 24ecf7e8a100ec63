"""One option set for every entry: the command line, `--config` files (with per-command sections),
the notebook functions and `autoevol.entry` build the same settings, data source and roles, and
every role, cap and temperature is reachable from each. The API calls are replaced by a recorder,
so each test sees exactly what `autoevol.api` would have been called with."""

from __future__ import annotations

import inspect
import pydoc
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import autoevol
from autoevol import api, entry
from autoevol.cli import app
from autoevol.config import EvolveSettings, OptimizeSettings, evolve_settings
from autoevol.errors import ConfigError
from tests.fixtures.evolve_server import write_seeds

CONNECTION = ["--model", "openai:fake", "--base-url", "http://127.0.0.1:9/v1"]


class Captured(Exception):
    """Raised by the recorder instead of running: the call's arguments are what the test reads."""


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}

    def recorder(name: str) -> Any:
        async def call(source: Any, **kwargs: Any) -> Any:
            seen[name] = {"source": source, **kwargs}
            raise Captured(name)

        return call

    for name in ("evolve_async", "optimize_async", "run_async"):
        monkeypatch.setattr(api, name, recorder(name))
    return seen


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    return write_seeds(tmp_path / "seeds.jsonl", 4)


def invoke(command: str, seeds: Path, *args: str) -> Result:
    result = CliRunner().invoke(app, [command, str(seeds), "--out", str(seeds.parent / "run"), "--quiet",
                                      *CONNECTION, *args])
    assert isinstance(result.exception, Captured), result.output
    return result


def test_config_sections_give_each_command_its_own_values(
    tmp_path: Path, seeds: Path, calls: dict[str, dict[str, Any]]
) -> None:
    config = tmp_path / "jobs.toml"
    config.write_text('limit = 3\nrounds = 2\nevol-temperature = 0.3\n\n[evolve]\nrounds = 4\n\n'
                      '[run]\nlimit = 2\nsteps = 3\n', encoding="utf-8")
    invoke("evolve", seeds, "--config", str(config))
    invoke("run", seeds, "--config", str(config))
    invoke("optimize", seeds, "--config", str(config))  # `rounds` is not optimize's: it is skipped, not refused
    invoke("run", seeds, "--config", str(config), "--rounds", "5", "--limit", "1")  # the command line wins
    evolve, optimize = calls["evolve_async"], calls["optimize_async"]
    assert evolve["settings"].rounds == 4 and evolve["source"].limit == 3
    assert evolve["settings"].evol_temperature == 0.3  # a top-level key serves every command
    assert optimize["evolve_settings"].rounds == 1 and optimize["source"].limit == 3
    assert optimize["settings"].steps == 10 and optimize["evolve_settings"].evol_temperature == 0.3
    last_run = calls["run_async"]
    assert last_run["evolve_settings"].rounds == 5 and last_run["source"].limit == 1
    assert last_run["settings"].steps == 3


def test_run_section_values_without_the_command_line(
    tmp_path: Path, seeds: Path, calls: dict[str, dict[str, Any]]
) -> None:
    config = tmp_path / "jobs.toml"
    config.write_text('rounds = 2\n[evolve]\nrounds = 4\n[run]\nlimit = 2\nsteps = 3\n', encoding="utf-8")
    invoke("run", seeds, "--config", str(config))
    run = calls["run_async"]
    assert run["evolve_settings"].rounds == 2 and run["source"].limit == 2 and run["settings"].steps == 3


@pytest.mark.parametrize(("text", "named"), [
    ('[run]\nlimt = 2\n', ["unknown key 'limt'", "section [run]"]),
    ('[optimize]\nmix = "all"\n', ["unknown key 'mix'", "section [optimize]"]),  # evolve's, not optimize's
    ('[evolv]\nrounds = 2\n', ["unknown section [evolv]"]),
    ('limt = 2\n', ["unknown key 'limt'"]),
])
def test_an_unknown_key_or_section_names_the_file_section_and_key(
    tmp_path: Path, seeds: Path, calls: dict[str, dict[str, Any]], text: str, named: list[str]
) -> None:
    config = tmp_path / "typo.toml"
    config.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["evolve", str(seeds), "--out", str(tmp_path / "r"), "--config", str(config)])
    assert result.exit_code == 2 and not calls, result.output
    message = " ".join(result.output.split())  # click wraps the error box
    assert str(config.name) in message and all(part in message for part in named), message


@pytest.mark.parametrize(("command", "flag", "value", "where", "field"), [
    ("evolve", "--evol-temperature", "0.7", "settings", "evol_temperature"),
    ("evolve", "--evol-max-tokens", "700", "settings", "evol_max_tokens"),
    ("evolve", "--respond-temperature", "0.4", "settings", "respond_temperature"),
    ("evolve", "--respond-max-tokens", "99", "settings", "respond_max_tokens"),
    ("evolve", "--parse-retries", "3", "settings", "parse_retries"),
    ("evolve", "--seed", "7", "settings", "seed"),
    ("optimize", "--optimizer-temperature", "0.2", "settings", "optimizer_temperature"),
    ("optimize", "--optimizer-top-p", "0.5", "settings", "optimizer_top_p"),
    ("optimize", "--optimizer-max-tokens", "900", "settings", "optimizer_max_tokens"),
    ("optimize", "--evol-max-tokens", "700", "evolve_settings", "evol_max_tokens"),
    ("optimize", "--respond-temperature", "0.4", "evolve_settings", "respond_temperature"),
    ("run", "--respond-max-tokens", "99", "evolve_settings", "respond_max_tokens"),
    ("run", "--optimizer-top-p", "0.5", "settings", "optimizer_top_p"),
    ("run", "--parse-retries", "0", "evolve_settings", "parse_retries"),
    ("evolve", "--judge-max-tokens", "512", "settings", "judge_max_tokens"),
    ("evolve", "--cut-answers", "keep", "settings", "cut_answers"),
    ("optimize", "--cut-answers", "fail", "evolve_settings", "cut_answers"),
    ("optimize", "--score-parse-retries", "2", "settings", "score_parse_retries"),
    ("run", "--judge-max-tokens", "512", "evolve_settings", "judge_max_tokens"),
    ("run", "--score-parse-retries", "1", "settings", "score_parse_retries"),
])
def test_each_cap_and_temperature_option_reaches_the_settings(
    seeds: Path, calls: dict[str, dict[str, Any]], command: str, flag: str, value: str, where: str, field: str
) -> None:
    invoke(command, seeds, "--preset", "demo")
    untouched = getattr(calls.pop(f"{command}_async")[where], field)
    model = EvolveSettings if where == "evolve_settings" or command == "evolve" else OptimizeSettings
    preset = evolve_settings("demo") if model is EvolveSettings else None
    if preset is not None:
        assert untouched == getattr(preset, field)  # without the option, the preset's value
    invoke(command, seeds, "--preset", "demo", flag, value)
    given = getattr(calls[f"{command}_async"][where], field)
    assert given == type(untouched)(value) and given != untouched


def test_issue_15_settings_reach_the_job_from_config_and_notebook(
    tmp_path: Path, seeds: Path, calls: dict[str, dict[str, Any]]
) -> None:
    config = tmp_path / "jobs.toml"
    config.write_text('cut-answers = "keep"\n[run]\njudge-max-tokens = 300\nscore-parse-retries = 1\n',
                      encoding="utf-8")
    invoke("run", seeds, "--config", str(config))
    run = calls.pop("run_async")
    assert (run["evolve_settings"].cut_answers, run["evolve_settings"].judge_max_tokens) == ("keep", 300)
    assert run["settings"].score_parse_retries == 1
    with pytest.raises(Captured):
        autoevol.run(seeds, seeds.parent / "nb", model="openai:fake", cut_answers="fail", judge_max_tokens=200,
                     score_parse_retries=2)
    run = calls["run_async"]
    assert (run["evolve_settings"].cut_answers, run["evolve_settings"].judge_max_tokens) == ("fail", 200)
    assert run["settings"].score_parse_retries == 2


def test_lambda_and_the_final_filter_default_to_different_rule_sets_and_one_option_sets_both(
    seeds: Path, calls: dict[str, dict[str, Any]]
) -> None:
    invoke("run", seeds)
    run = calls.pop("run_async")
    assert (run["settings"].rule_set, run["evolve_settings"].rule_set) == ("reference", "extended")
    invoke("run", seeds, "--rule-set", "extended")
    run = calls["run_async"]
    assert (run["settings"].rule_set, run["evolve_settings"].rule_set) == ("extended", "extended")


def test_optimize_takes_every_model_it_uses(seeds: Path, calls: dict[str, dict[str, Any]]) -> None:
    invoke("optimize", seeds)
    assert calls.pop("optimize_async")["roles"].responder is None  # unset: the evol LLM answers
    invoke("optimize", seeds, "--responder-model", "openai:answers", "--judge-model", "openai:judge",
           "--optimizer-model", "openai:opt")
    roles = calls["optimize_async"]["roles"]
    assert (roles.responder.model, roles.judge.model, roles.optimizer.model) == ("answers", "judge", "opt")
    assert roles.judge.base_url == "http://127.0.0.1:9/v1"  # the connection options serve every role


def test_rule_set_is_the_optimisations_for_optimize_and_both_phases_for_run(
    seeds: Path, calls: dict[str, dict[str, Any]]
) -> None:
    invoke("optimize", seeds, "--rule-set", "paper")
    invoke("run", seeds, "--rule-set", "paper")
    optimize, run = calls["optimize_async"], calls["run_async"]
    assert optimize["settings"].rule_set == "paper" and optimize["evolve_settings"].rule_set == "extended"
    assert run["settings"].rule_set == "paper" and run["evolve_settings"].rule_set == "paper"


def test_job_commands_fit_the_function_size_rule() -> None:
    """The commands are made from one option table: no job function in cli/ grows past 60 lines."""
    from autoevol.cli import jobs

    for name, value in vars(jobs).items():
        if inspect.isfunction(value) and value.__module__ == jobs.__name__:
            lines, _ = inspect.getsourcelines(value)
            assert len(lines) <= 60, name
    assert list(inspect.signature(jobs.optimize).parameters)[:6] == [
        "data", "out", "model", "optimizer_model", "responder_model", "judge_model"]


def test_entry_refuses_an_unknown_option_and_a_bad_value(seeds: Path) -> None:
    with pytest.raises(ConfigError, match="unknown option 'temprature'"):
        entry.job("evolve", {"data": seeds, "out": "r", "temprature": 0.1})
    with pytest.raises(ConfigError, match="invalid data settings: on_bad_row"):
        entry.job("evolve", {"data": seeds, "out": "r", "on_bad_row": "maybe"})
    with pytest.raises(ConfigError, match="invalid evolve settings: evol_temperature"):
        entry.job("evolve", {"data": seeds, "out": "r", "evol_temperature": 9})
    built = entry.job("evolve", {"data": seeds, "out": "r", "on_bad_row": "skip", "schema": "instruction"})
    assert built.source.on_bad_row == "skip" and built.source.schema == "instruction" and built.optimize is None


def test_notebook_functions_have_real_signatures_and_documented_parameters() -> None:
    for function, names in ((autoevol.evolve, ("model", "preset", "rounds", "responder_model", "encoding")),
                            (autoevol.optimize, ("optimizer_model", "judge_model", "optimizer_top_p", "steps")),
                            (autoevol.run, ("evol_max_tokens", "respond_temperature", "optimizer_model"))):
        parameters = inspect.signature(function).parameters
        assert all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        assert set(names) <= set(parameters)
        page = pydoc.render_doc(function)
        assert "**kwargs" not in page and "responder_model" in page
        assert "responder_model: model that writes the responses (default: the evol LLM)" in page
        assert "encoding: text encoding of a JSON/CSV data file" in page


def test_notebook_reaches_every_role_encoding_cap_and_settings_object(
    seeds: Path, calls: dict[str, dict[str, Any]]
) -> None:
    with pytest.raises(Captured):
        autoevol.evolve(seeds, seeds.parent / "run", model="openai:fake", base_url="http://127.0.0.1:9/v1",
                        responder_model="openai:answers", judge_model="openai:judge", encoding="utf-8",
                        evol_temperature=0.5, preset="demo")
    evolve = calls["evolve_async"]
    assert evolve["roles"].responder.model == "answers" and evolve["roles"].judge.model == "judge"
    assert evolve["source"].encoding == "utf-8"
    assert evolve["settings"].evol_temperature == 0.5 and evolve["settings"].evol_max_tokens == 320  # demo
    with pytest.raises(Captured):
        autoevol.optimize(seeds, seeds.parent / "opt", model="openai:fake", optimizer_model="openai:opt",
                          optimize_settings=OptimizeSettings(steps=4, incumbent_competes=False), candidates=3,
                          evolve_settings={"respond_max_tokens": 50})
    optimize = calls["optimize_async"]
    assert optimize["roles"].optimizer.model == "opt"
    assert (optimize["settings"].steps, optimize["settings"].candidates) == (4, 3)
    assert optimize["settings"].incumbent_competes is False
    assert optimize["evolve_settings"].respond_max_tokens == 50
    with pytest.raises(ConfigError, match="invalid evolve settings"):
        autoevol.run(seeds, seeds.parent / "r", model="openai:fake", evolve_settings={"no_such_field": 1})
    with pytest.raises(TypeError):  # no catch-all: a misspelt parameter is refused by Python itself
        autoevol.evolve(seeds, seeds.parent / "run", model="openai:fake", evol_temprature=0.5)  # type: ignore[call-arg]


def test_caps_and_temperatures_reach_the_requests(tmp_path: Path, autoevol_home: Path, fake_server: Any) -> None:
    from tests.fixtures.evolve_server import reply

    fake_server.reply = reply
    seeds = write_seeds(tmp_path / "one.jsonl", 1)

    def evolve(out: str, *options: str) -> list[tuple[float, int]]:
        fake_server.bodies.clear()
        result = CliRunner().invoke(app, ["evolve", str(seeds), "--out", str(tmp_path / out), "--model", "openai:fake",
                                          "--base-url", fake_server.url, "--quiet", *options])
        assert result.exit_code == 0, result.output
        return [(body["temperature"], body["max_tokens"]) for body in fake_server.bodies]

    rewrite, answer = evolve("given", "--evol-temperature", "0.9", "--respond-temperature", "0.4",
                             "--respond-max-tokens", "77")
    assert rewrite[0] == 0.9 and answer == (0.4, 77)
    rewrite, answer = evolve("defaults")
    assert rewrite[0] == 0.0 and answer == (0.0, 1500)  # EvolveSettings' defaults (since issue 15: C's 1,500)


def test_the_readme_config_example_serves_all_three_commands(
    tmp_path: Path, seeds: Path, calls: dict[str, dict[str, Any]]
) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    paragraph = readme.split("`--config jobs.toml`", 1)[1]
    example = paragraph.split("```toml\n", 1)[1].split("```", 1)[0]
    config = tmp_path / "jobs.toml"
    config.write_text(example.replace('field = "question"', 'field = "instruction"'), encoding="utf-8")
    for command in ("evolve", "optimize", "run"):
        result = CliRunner().invoke(app, [command, str(seeds), "--out", str(tmp_path / command), "--quiet",
                                          "--config", str(config)])
        assert isinstance(result.exception, Captured), result.output
    assert calls["evolve_async"]["settings"].rounds == 3 and calls["run_async"]["settings"].steps == 5
    assert calls["run_async"]["evolve_settings"].rule_set == "paper"
    assert calls["optimize_async"]["evolve_settings"].respond_max_tokens == 768


def test_roles_probe_the_base_url_without_a_model_and_fall_back_to_local(
    autoevol_home: Path, fake_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autoevol.config import ModelOptions

    heard: list[str] = []
    served = entry.roles(ModelOptions(base_url=fake_server.url, judge_model="openai:judge"), heard.append)
    assert (served.evol.kind, served.evol.model) == ("openai", "fake-model") and served.judge is not None
    assert heard == [f"model: openai:fake-model (the only model served at {fake_server.url})"]
    heard.clear()
    assert entry.roles(ModelOptions(), heard.append).evol.kind == "local" and not heard  # no URL anywhere
    monkeypatch.setenv("OPENAI_BASE_URL", fake_server.url)  # the environment's URL is asked too
    assert entry.roles(ModelOptions()).evol.model == "fake-model"
    assert entry.roles(ModelOptions(model="openai:given", base_url=fake_server.url)).evol.model == "given"


def test_evaluator_feedback_is_an_option_of_the_optimising_commands_and_the_notebook(
    seeds: Path, calls: dict[str, dict[str, Any]]
) -> None:
    invoke("optimize", seeds)
    assert calls.pop("optimize_async")["settings"].shows_feedback is True
    invoke("optimize", seeds, "--no-evaluator-feedback")
    assert calls.pop("optimize_async")["settings"].shows_feedback is False
    invoke("run", seeds, "--preset", "paper", "--evaluator-feedback")
    chosen = calls.pop("run_async")["settings"]
    assert (chosen.evaluator_feedback, chosen.shows_feedback) == (True, True)
    with pytest.raises(Captured):
        autoevol.optimize(seeds, seeds.parent / "nb", model="openai:fake", evaluator_feedback=False)
    assert calls["optimize_async"]["settings"].shows_feedback is False
