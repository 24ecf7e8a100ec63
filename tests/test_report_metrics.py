"""The report's measures on small hand-made sets whose answers are known."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from autoevol.quality.contamination import Benchmark, gsm8k_test, humaneval, overlap
from autoevol.quality.dedup import near_copies_of, near_duplicates
from autoevol.quality.metrics import distinct_n, text_stats
from autoevol.quality.tags import normalise, parse_tags, tag_stats

# -- text statistics ------------------------------------------------------------------------------


def test_text_stats_on_a_hand_counted_set() -> None:
    stats = text_stats(["a b a", "c d"], parents=["a", None])
    assert stats.words_mean == 2.5
    assert stats.tokens_mean == 2.5
    assert stats.distinct_1 == pytest.approx(4 / 5)  # a b c d over 5 words
    assert stats.distinct_2 == pytest.approx(3 / 3)  # (a b) (b a) (c d)
    assert stats.distinct_3 == 1.0  # one trigram only
    assert stats.type_token_ratio == pytest.approx((2 / 3 + 1) / 2)
    assert stats.length_ratio == 3.0  # only the first row has a parent: 3 words / 1


def test_tokens_count_punctuation_and_distinct_n_ignores_case() -> None:
    assert text_stats(["x+1=2?"]).tokens_mean == 6
    assert distinct_n(["The cat", "the CAT"], 2) == 0.5
    assert distinct_n(["one"], 2) is None
    assert text_stats([]).words_mean is None


# -- tags -----------------------------------------------------------------------------------------


def test_tags_are_parsed_from_json_bullets_or_a_comma_line_and_normalised() -> None:
    assert parse_tags('Sure:\n```json\n[{"tag": "Multi-step reasoning.", "explanation": "x"}, '
                      '{"tag": "multi_step_reasoning"}, {"tag": "Arithmetic"}]\n```') == ["multi step reasoning",
                                                                                           "arithmetic"]
    assert parse_tags('["Math", "math ", "unit conversion"]') == ["math", "unit conversion"]
    assert parse_tags("- Arithmetic: adds numbers\n- Word problem\n2) Money") == ["arithmetic", "word problem", "money"]
    assert parse_tags("arithmetic, money, time") == ["arithmetic", "money", "time"]
    assert parse_tags("I cannot help with that.\nReally.") == []
    assert parse_tags('[{"tag": "' + "x" * 80 + '"}]') == []  # a sentence is not a tag
    assert normalise("  **Python_Function**! ") == "python function"


def test_tag_complexity_and_diversity_on_a_set_with_known_tags() -> None:
    tagged = [["math", "money"], ["math"], ["math", "time", "money"], ["code"]]
    stats = tag_stats(tagged)
    assert stats.distinct_tags == 4
    assert stats.complexity == pytest.approx(7 / 4)
    assert stats.diversity == pytest.approx(4 / 4)
    assert stats.top[0] == ("math", 3)


def test_tagging_goes_through_the_cache(tmp_path: Path) -> None:
    from autoevol.config import ExecSettings
    from autoevol.llm.fake import ScriptedBackend
    from autoevol.llm.spec import parse_model_spec
    from autoevol.quality.tags import PHASE, measure
    from autoevol.session import open_pool

    replies = {"apples": '[{"tag": "arithmetic"}, {"tag": "fruit"}]', "code": '[{"tag": "python"}]'}
    backend = ScriptedBackend(lambda r: next(v for k, v in replies.items() if k in r.messages[-1].content))
    spec = parse_model_spec("openai:tagger", base_url="http://127.0.0.1:9/v1")

    async def once() -> dict[str, object]:
        async with open_pool(ExecSettings()) as pool:
            stats = await measure(pool.llm(spec, backend=backend), ["Count apples", "Write code", "More apples"])
            assert pool.meter.total(phase=PHASE).calls == 3
            return stats.to_dict()

    first = asyncio.run(once())
    assert first["complexity"] == pytest.approx(5 / 3, abs=1e-4) and first["diversity"] == 1.0
    assert backend.calls == 3
    assert asyncio.run(once()) == first
    assert backend.calls == 3  # the second time every answer came from the response cache


# -- near-duplicates ------------------------------------------------------------------------------

BASE = [
    "Write a short poem about the sea at night, mentioning the moon, the tide and a lonely lighthouse keeper.",
    "Explain how a binary search works on a sorted array and give its time complexity in big O notation.",
    "List three differences between mitochondria and chloroplasts in plant cells, with one sentence each.",
    "A train leaves at 3 pm travelling at 60 miles per hour; how far has it gone by half past five?",
]


def test_planted_near_duplicates_are_found_and_nothing_else() -> None:
    planted = BASE[0] + " Thanks!"  # 17 of its 18 word 3-grams are BASE[0]'s: Jaccard 17/18
    texts = [*BASE, planted, BASE[1].upper(), "Something entirely different about cooking pasta al dente tonight."]
    pairs = near_duplicates(texts, threshold=0.7)
    assert {(p.row, p.other) for p in pairs} == {(4, 0), (5, 1)}
    assert next(p for p in pairs if p.row == 4).similarity == pytest.approx(17 / 18)
    assert next(p for p in pairs if p.row == 5).similarity == 1.0  # case is ignored
    assert near_duplicates(texts, threshold=0.95) == [p for p in pairs if p.row == 5]


def test_copies_of_seeds_are_matched_to_the_right_seed() -> None:
    evolved = [BASE[2] + " Also explain.", "Totally new instruction about writing a cover letter for a job in Rome."]
    pairs = near_copies_of(evolved, BASE, threshold=0.7)
    assert [(p.row, p.other) for p in pairs] == [(0, 2)]


# -- contamination --------------------------------------------------------------------------------


def test_a_known_13_gram_overlap_is_found_and_a_12_gram_one_is_not() -> None:
    shared13 = "one two three four five six seven eight nine ten eleven twelve thirteen"
    bench = Benchmark("b", ("b:1", "b:2"), (f"Start {shared13} end.", "unrelated words only here"))
    rows = [f"Prefix, {shared13.upper()}! suffix", "one two three four five six seven eight nine ten eleven twelve",
            "nothing"]
    thirteen = overlap(rows, bench, 13)
    assert (thirteen.rows, thirteen.items) == (1, 1)
    assert thirteen.matches[0].row == 0 and thirteen.matches[0].item == "b:1"
    assert thirteen.matches[0].ngram == shared13
    eight = overlap(rows, bench, 8)
    assert (eight.rows, eight.items) == (2, 1)


def test_bundled_benchmarks_load() -> None:
    gsm = gsm8k_test()
    assert len(gsm.texts) == 1319 and gsm.texts[0].startswith("Janet")
    he = humaneval()
    assert he is not None and len(he.texts) == 164
    # A test question copied into training data is caught at 13-gram.
    assert overlap(["Here is one: " + gsm.texts[5]], gsm, 13).rows == 1


def test_stats_command_reports_and_drops(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from autoevol.cli import app

    gsm = gsm8k_test()
    rows = [{"question": t} for t in [*BASE, BASE[0], gsm.texts[3]]]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    kept = tmp_path / "kept.jsonl"
    result = CliRunner().invoke(app, ["stats", str(data), "--json", "--drop-duplicates", "--drop-contaminated",
                                      "--write", str(kept)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["rows"] == 6 and out["duplicates"]["within"]["rows"] == 1
    gsm13 = next(o for o in out["contamination"]["overlaps"] if o["benchmark"] == "gsm8k_test" and o["n"] == 13)
    assert gsm13["rows"] == 1
    assert out["written"] == {"kept": 4, "dropped": 2}
    assert len(kept.read_text().splitlines()) == 4


def test_lambda_chart_draws_intervals_that_touch_the_bounds() -> None:
    from autoevol.optimization.score import wilson
    from autoevol.report.charts import LambdaPoint, lambda_chart

    low, high = wilson(6, 6)  # λ = 1 on 6 items: the upper bound is 0.9999999999999999
    assert high < 1.0
    svg = lambda_chart([LambdaPoint(1, -1, 1.0, low, high, True), LambdaPoint(1, 0, 0.0, 0.0, 0.43, False)], 1)
    assert svg.startswith("<svg") and "</svg>" in svg
