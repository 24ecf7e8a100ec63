"""`autoevol report RUN_DIR` and `autoevol stats DATA`: see what a run or a data file contains."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from autoevol.cli.options import ApiKeyEnvOpt, BaseUrlOpt, ConcurrencyOpt, FieldOpt, TaggerOpt, TimeoutOpt
from autoevol.cli.support import guarded, model_spec

TagSampleOpt = Annotated[int, typer.Option("--tag-sample", min=1, help="instructions tagged per set (the paper: 100)")]
DecontaminateOpt = Annotated[list[Path] | None, typer.Option(
    "--decontaminate", help="another benchmark file to check against (besides GSM8K test and HumanEval); repeatable")]
DropDupOpt = Annotated[bool, typer.Option("--drop-duplicates", help="leave near-duplicate rows out of the clean file")]
DropContamOpt = Annotated[bool, typer.Option(
    "--drop-contaminated", help="leave rows with a 13-gram benchmark overlap out of the clean file")]


def _tag_sets(spec_text: str, sets: Mapping[str, Sequence[str]], size: int, base_url: str | None,
              api_key_env: str | None, concurrency: int | None, timeout: float | None) -> dict[str, Any]:
    from autoevol.config import ExecSettings
    from autoevol.quality.tags import measure
    from autoevol.session import open_pool

    spec = model_spec(spec_text, base_url, api_key_env, concurrency, timeout)

    async def go() -> dict[str, Any]:
        async with open_pool(ExecSettings()) as pool:
            llm = pool.llm(spec)
            return {name: (await measure(llm, texts, size)).to_dict() for name, texts in sets.items() if texts}

    return asyncio.run(go())


def _benchmarks(files: list[Path] | None) -> Any:
    from autoevol.errors import ConfigError
    from autoevol.quality.contamination import default_benchmarks

    for path in files or []:
        if not path.exists():
            raise ConfigError(f"--decontaminate {path}: file not found")
    return default_benchmarks(files or [])


def report(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="a run directory made by evolve/optimize/run")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file [default: RUN/output/report.html]")] = None,
    tagger_model: TaggerOpt = None,
    tag_sample: TagSampleOpt = 100,
    decontaminate: DecontaminateOpt = None,
    drop_duplicates: DropDupOpt = False,
    drop_contaminated: DropContamOpt = False,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = None,
    request_timeout: TimeoutOpt = None,
) -> None:
    """Write one self-contained HTML report of a run; optionally tag samples and write a cleaned training file."""
    from autoevol.report.build import training_rows
    from autoevol.report.collect import read_run
    from autoevol.report.html import write_report

    def go() -> None:
        benchmarks = _benchmarks(decontaminate)
        tags = None
        run = read_run(run_dir)
        training = training_rows(run)
        if tagger_model:
            sets = {"seeds": list(run.seeds.values())}
            for r in sorted(run.rounds):
                sets[f"round {r}"] = [x["instruction"] for x in run.rounds[r] if x["status"] == "accepted"]
            sets["training set"] = [x["instruction"] for x in training]
            tags = _tag_sets(tagger_model, sets, tag_sample, base_url, api_key_env, concurrency, request_timeout)
        path = write_report(run_dir, out, benchmarks=benchmarks, tags=tags)
        typer.echo(f"report -> {path}")
        if drop_duplicates or drop_contaminated:
            _write_clean(training, run.seeds, benchmarks, run_dir / "output" / "evolved.clean.jsonl",
                         drop_duplicates, drop_contaminated)

    guarded(go)


def _write_clean(rows: list[dict[str, Any]], seeds: Mapping[str, str], benchmarks: Any, target: Path,
                 near: bool, contam: bool) -> None:
    from autoevol.quality.figures import contaminated, duplicates
    from autoevol.quality.filtering import drop_ids, write_kept

    stats = {"duplicates": duplicates(rows, seeds), "contamination": contaminated(rows, benchmarks)}
    kept, dropped = write_kept(rows, drop_ids(stats, near_duplicates=near, contamination=contam), target)
    typer.echo(f"clean training rows: {kept} kept, {dropped} dropped -> {target}")


def stats(
    data: Annotated[Path, typer.Argument(metavar="DATA", help="any data file: an evolved.jsonl or a seed file")],
    field: FieldOpt = None,
    seeds: Annotated[Path | None, typer.Option("--seeds", help="seed file: also report copies of its rows")] = None,
    tagger_model: TaggerOpt = None,
    tag_sample: TagSampleOpt = 100,
    decontaminate: DecontaminateOpt = None,
    drop_duplicates: DropDupOpt = False,
    drop_contaminated: DropContamOpt = False,
    write: Annotated[Path | None, typer.Option("--write", help="write the kept rows here (with --drop-...)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the full JSON")] = False,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    concurrency: ConcurrencyOpt = None,
    request_timeout: TimeoutOpt = None,
) -> None:
    """Complexity, diversity, near-duplicates and benchmark overlap of a data file (no model unless --tagger-model)."""
    from autoevol.errors import ConfigError
    from autoevol.quality.filtering import drop_ids, file_stats, read_rows, write_kept

    def go() -> dict[str, Any]:
        if not data.exists():
            raise ConfigError(f"data file not found: {data}")
        if (drop_duplicates or drop_contaminated) and write is None:
            raise ConfigError("--drop-duplicates/--drop-contaminated need --write FILE for the kept rows")
        rows = read_rows(data, field=field)
        seed_rows = {str(r["id"]): str(r["instruction"]) for r in read_rows(seeds)} if seeds else None
        result = file_stats(rows, seed_rows, _benchmarks(decontaminate))
        if tagger_model:
            texts = [str(r["instruction"]) for r in rows]
            result["tags"] = _tag_sets(tagger_model, {"data": texts}, tag_sample, base_url, api_key_env,
                                       concurrency, request_timeout)["data"]
        if write is not None:
            drop = drop_ids(result, near_duplicates=drop_duplicates, contamination=drop_contaminated)
            result["written"] = dict(zip(("kept", "dropped"), write_kept(rows, drop, write), strict=True))
        return result

    result = guarded(go)
    if as_json:
        typer.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    _print_stats(result)


def _print_stats(result: Mapping[str, Any]) -> None:
    text = result["text"]
    typer.echo(f"rows: {result['rows']:,}")
    for name in ("words_mean", "tokens_mean", "distinct_1", "distinct_2", "distinct_3", "type_token_ratio",
                 "length_ratio"):
        value = text[name]
        typer.echo(f"{name:>18}: {'-' if value is None else value}")
    dup = result["duplicates"]
    typer.echo(f"near-duplicates (Jaccard >= {dup['threshold']}): {dup['within']['rows']} within, "
               f"{dup['seed_copies']['rows']} copies of seeds")
    for o in result["contamination"]["overlaps"]:
        typer.echo(f"{o['benchmark']} {o['n']}-gram overlap: {o['rows']} rows, {o['items']} benchmark items")
    if "tags" in result:
        t = result["tags"]
        typer.echo(f"tags ({t['n']} tagged): complexity {t['complexity']}, diversity {t['diversity']}")
    if "written" in result:
        typer.echo(f"kept {result['written']['kept']}, dropped {result['written']['dropped']}")
