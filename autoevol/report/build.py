"""From a run's data to the report's context: every number and text the page shows, as plain data.

Kept apart from the HTML so it can be tested without a template, and so `summary.json` and the
page can never disagree about a figure.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from autoevol.optimization.records import StepRecord
from autoevol.quality.contamination import Benchmark
from autoevol.quality.figures import contaminated, duplicates, set_stats
from autoevol.quality.metrics import text_stats
from autoevol.report import charts
from autoevol.report.collect import RunData

EXAMPLES = 3  # examples per failure category
LINEAGES = 6


def diff_lines(before: str, after: str) -> list[tuple[str, str]]:
    """A line diff as (kind, text), kind in {"same", "add", "del"}: readable without a diff tool."""
    out: list[tuple[str, str]] = []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        tag, text = line[:2], line[2:]
        if tag == "? ":
            continue  # ndiff's intraline hints are noise in a page
        out.append(({"+ ": "add", "- ": "del"}.get(tag, "same"), text))
    return out


def _dev_stats(run: RunData, method_id: str) -> dict[str, Any] | None:
    verdicts = run.dev_verdicts.get(method_id, {})
    usable = [(v["instruction"], run.seeds.get(sid)) for sid, v in verdicts.items() if v.get("instruction")]
    if not usable:
        return None
    texts, parents = zip(*usable, strict=True)
    return text_stats(list(texts), list(parents)).to_dict()


def _score(entry_score: Any) -> dict[str, Any]:
    return {"lambda": entry_score.rate, "low": entry_score.low, "high": entry_score.high,
            "failures": entry_score.failures, "n": entry_score.n}


def _step(run: RunData, record: StepRecord, parent: Any) -> dict[str, Any]:
    scores = {e.index: e.score for e in record.scores}
    why = {o.index: o for o in record.outcomes}
    rows = []
    incumbent = scores.get(-1)
    if incumbent is not None:
        rows.append({"who": "incumbent", "method_id": incumbent.method_id, "score": _score(incumbent),
                     "outcome": "selected" if record.selected is None else "lost",
                     "why": "kept: no candidate did better" if record.selected is None else "a candidate did better",
                     "dev": _dev_stats(run, incumbent.method_id), "feedback": None, "diff": None})
    for c in record.candidates:
        o = why.get(c.index)
        row: dict[str, Any] = {
            "who": f"candidate {c.index}", "method_id": c.method.id if c.method else None,
            "score": _score(scores[c.index]) if c.index in scores else None,
            "outcome": o.outcome if o else ("discarded" if c.rejected else "not scored"),
            "why": o.detail if o else (c.rejected or ""), "repaired": c.repaired,
            "dev": _dev_stats(run, c.method.id) if c.method else None, "feedback": c.feedback,
            "diff": diff_lines(parent.template, c.method.template) if c.method else None,
            # What the optimizer really said (None when the turn was never answered, or in older runs).
            "analysis_reply": c.analysis_reply, "rewrite_reply": c.rewrite_reply,
        }
        rows.append(row)
    cats: Counter[str] = Counter()
    examples: dict[str, list[dict[str, str]]] = {}
    for method_id in {s.method_id for s in scores.values()}:
        for sid, v in run.dev_verdicts.get(method_id, {}).items():
            if v.get("failed"):
                cat = v.get("category") or "unknown"
                cats[cat] += 1
                if len(examples.setdefault(cat, [])) < EXAMPLES:
                    examples[cat].append({"seed": run.seeds.get(sid, ""), "instruction": v.get("instruction", ""),
                                          "response": v.get("response", ""), "rule": v.get("rule") or ""})
    return {"step": record.step, "selected": record.selected_label, "decided_by": record.decided_by,
            "lambda": record.rate, "method_id": record.method.id, "parent_id": parent.id, "rows": rows,
            "categories": dict(cats), "examples": examples,
            "selected_diff": diff_lines(parent.template, record.method.template)
            if record.method.id != parent.id else None}


def optimisation(run: RunData) -> dict[str, Any] | None:
    if not run.steps:
        return None
    from autoevol.methods import load_method
    from autoevol.methods.method import EvolvingMethod

    initial = run.manifest.optimize.initial_method if run.manifest.optimize is not None else "initial"
    try:
        parent: EvolvingMethod = load_method(initial)
    except Exception:  # a method file that moved: diff the first step against nothing
        parent = EvolvingMethod(name="unknown", template="")
    steps, points = [], []
    for record in run.steps:
        steps.append(_step(run, record, parent))
        for e in record.scores:
            kept = e.index < 0 and record.selected is None and record.score is not None
            chosen = e.index == record.selected or kept
            points.append(charts.LambdaPoint(record.step, e.index, e.score.rate, e.score.low, e.score.high, chosen))
        parent = record.method
    step_names = [f"step {s['step']}" for s in steps]
    cats = sorted({c for s in steps for c in s["categories"]})
    return {"steps": steps, "lambda_chart": charts.lambda_chart(points, len(steps)),
            "failure_chart": charts.stacked_bars(step_names, {c: [s["categories"].get(c, 0) for s in steps]
                                                              for c in cats}, "failed dev evolutions"),
            "best": run.optimization.get("best_lambda") if run.optimization else None}


def _round_examples(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        if row["status"] != "accepted":
            bucket = out.setdefault(row.get("failure_category") or "unknown", [])
            if len(bucket) < EXAMPLES:
                bucket.append(row)
    return out


def evolution(run: RunData) -> dict[str, Any] | None:
    if not run.rounds:
        return None
    rounds = []
    for r in sorted(run.rounds):
        rows = run.rounds[r]
        cats = Counter(row.get("failure_category") or "unknown" for row in rows if row["status"] != "accepted")
        rounds.append({"round": r, "inputs": len(rows), "accepted": sum(x["status"] == "accepted" for x in rows),
                       "categories": dict(cats), "examples": _round_examples(rows),
                       "notes": {k: sum(bool(x.get(k)) for x in rows) for k in ("answer_cut", "judge_unparsable")},
                       "stats": set_stats([x for x in rows if x["status"] == "accepted"])})
    names = [f"round {x['round']}" for x in rounds]
    seen = sorted({c for x in rounds for c in x["categories"]})
    return {"rounds": rounds, "failure_chart": charts.stacked_bars(
        names, {c: [x["categories"].get(c, 0) for x in rounds] for c in seen}, "rejected or failed rows")}


def lineages(run: RunData, limit: int = LINEAGES) -> list[dict[str, Any]]:
    """A few seeds followed through every round; rows whose last round was accepted come first."""
    by_seed: dict[str, dict[int, Mapping[str, Any]]] = {}
    for r, rows in run.rounds.items():
        for row in rows:
            by_seed.setdefault(row["seed_id"], {})[r] = row
    last = max(run.rounds, default=0)
    position = {sid: i for i, sid in enumerate(run.seeds)}
    order = sorted(by_seed, key=lambda sid: (by_seed[sid].get(last, {}).get("status") != "accepted",
                                             position.get(sid, 0)))
    return [{"seed_id": sid, "seed": run.seeds.get(sid, ""), "seed_response": run.seed_responses.get(sid, ""),
             "rounds": [by_seed[sid].get(r) for r in range(1, last + 1)]} for sid in order[:limit]]


def training_rows(run: RunData) -> list[dict[str, Any]]:
    path = run.path / "output" / "evolved.jsonl"
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def quality(run: RunData, benchmarks: Sequence[Benchmark] | None,
            tags: Mapping[str, Any] | None) -> dict[str, Any]:
    training = training_rows(run)
    sets: list[tuple[str, dict[str, Any]]] = [("seeds", set_stats([{"instruction": t} for t in run.seeds.values()]))]
    for r in sorted(run.rounds):
        sets.append((f"round {r}", set_stats([x for x in run.rounds[r] if x["status"] == "accepted"])))
    if training:
        sets.append(("training set", set_stats(training)))
    names = [name for name, _ in sets]
    chart = charts.grouped_bars(names, {k: [s[k] for _, s in sets] for k in ("distinct_1", "distinct_2", "distinct_3",
                                                                              "type_token_ratio")}, "ratio")
    length_chart = charts.grouped_bars(names, {"words per instruction": [s["words_mean"] for _, s in sets],
                                               "tokens per instruction": [s["tokens_mean"] for _, s in sets]},
                                       "mean count")
    return {"sets": sets, "chart": chart, "length_chart": length_chart, "tags": dict(tags or {}),
            "duplicates": duplicates(training, run.seeds) if training else None,
            "contamination": contaminated(training, benchmarks) if training else None}


def usage(run: RunData) -> dict[str, Any]:
    summary = run.summary or {}
    phases = summary.get("usage")
    if phases is None:  # an optimise-only run has no summary: its last event carries the usage
        phases = next((e.get("usage") for e in reversed(run.events) if e.get("usage")), [])
    times = [e["ts"] for e in run.events if "ts" in e]
    split = next((e["ts"] for e in run.events if e.get("event") == "split"), None)
    steps = [e["ts"] for e in run.events if e.get("event") == "step_finished"]
    rounds = [{"round": e["round"], "seconds": e.get("seconds")} for e in run.events
              if e.get("event") == "round_finished"]
    return {"phases": phases, "rounds": rounds, "total_seconds": summary.get("seconds"),
            "optimise_seconds": round(steps[-1] - split, 1) if split and steps else None,
            "events_span": round(times[-1] - times[0], 1) if len(times) > 1 else None}


def context(run: RunData, *, benchmarks: Sequence[Benchmark] | None = None,
            tags: Mapping[str, Any] | None = None) -> dict[str, Any]:
    manifest = run.manifest
    config = manifest.config()
    return {
        "run": {"path": str(run.path), "command": manifest.command, "status": manifest.status,
                "reason": manifest.reason, "created_at": manifest.created_at,
                "data": config["data"], "models": config["models"],
                "training_rows": (run.summary or {}).get("training_rows")},
        "optimisation": optimisation(run),
        "evolution": evolution(run),
        "quality": quality(run, benchmarks, tags),
        "lineages": lineages(run),
        "usage": usage(run),
        "config": json.dumps(config, indent=2, ensure_ascii=False, sort_keys=True),
    }
