"""Data-quality figures of a run or a file, as plain dicts for summary.json, `stats` and the report.

Everything here is LLM-free and deterministic; the tag measure (which calls a model) is added by
the caller when a tagger model is given.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import pickle
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from autoevol.quality.contamination import MAX_EXAMPLES, Benchmark, contamination, default_benchmarks
from autoevol.quality.dedup import DEFAULT_THRESHOLD, near_duplicates_and_copies
from autoevol.quality.metrics import text_stats

MAX_PAIRS = 50  # duplicate pairs listed per check; the counts cover all of them

F = TypeVar("F", bound=Callable[..., dict[str, Any]])


def _memo(fn: F) -> F:
    """Remember the last few results by a digest of the arguments: a finished run asks the same
    questions of the same rows twice (summary.json's metrics, then the HTML report), and each
    answer costs a tenth of a second per few thousand rows. A copy is returned, so callers may edit it."""
    results: OrderedDict[str, dict[str, Any]] = OrderedDict()
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> dict[str, Any]:
        # Bound with defaults, so f(rows) and f(rows, None) are one question.
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        try:
            # Pickle, not sorted JSON: three times faster on a run's rows, and equal bytes still
            # mean equal arguments (equal arguments pickled differently only cost a recomputation).
            blob = pickle.dumps(bound.arguments, protocol=pickle.HIGHEST_PROTOCOL)
        except (TypeError, AttributeError, pickle.PicklingError):  # not plain data: just compute
            return fn(*args, **kwargs)
        key = hashlib.sha256(blob).hexdigest()
        if key not in results:
            results[key] = fn(*args, **kwargs)
            while len(results) > 8:
                results.popitem(last=False)
        return copy.deepcopy(results[key])

    return wrapper  # type: ignore[return-value]


@_memo
def set_stats(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Text statistics of output rows, with each row's parent instruction for the length ratio."""
    texts = [str(r.get("instruction") or "") for r in rows]
    parents = [r.get("parent_instruction") if r.get("round", 0) else None for r in rows]
    return text_stats(texts, parents).to_dict()


@_memo
def duplicates(rows: Sequence[Mapping[str, Any]], seeds: Mapping[str, str],
               threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """Near-duplicates within `rows` (round 0 seed rows are left out) and against the seeds."""
    evolved = [r for r in rows if r.get("round", 0) > 0]
    texts = [str(r["instruction"]) for r in evolved]
    seed_ids, seed_texts = list(seeds), list(seeds.values())
    within, copies = near_duplicates_and_copies(texts, seed_texts, threshold)
    return {
        "threshold": threshold, "rows_checked": len(evolved),
        "within": {"rows": len(within), "pairs": [
            {"id": evolved[p.row]["id"], "duplicate_of": evolved[p.other]["id"], "similarity": round(p.similarity, 4),
             "instruction": texts[p.row], "other_instruction": texts[p.other]} for p in within[:MAX_PAIRS]]},
        "seed_copies": {"rows": len(copies), "pairs": [
            {"id": evolved[p.row]["id"], "seed_id": seed_ids[p.other], "similarity": round(p.similarity, 4),
             "instruction": texts[p.row], "other_instruction": seed_texts[p.other],
             "own_seed": evolved[p.row].get("seed_id") == seed_ids[p.other]} for p in copies[:MAX_PAIRS]]},
        "drop_ids": sorted({evolved[p.row]["id"] for p in within} | {evolved[p.row]["id"] for p in copies}),
    }


@_memo
def contaminated(rows: Sequence[Mapping[str, Any]], benchmarks: Sequence[Benchmark] | None = None) -> dict[str, Any]:
    """n-gram overlap of the rows' instructions with each benchmark; the offending rows by id."""
    benches = default_benchmarks() if benchmarks is None else benchmarks
    texts = [str(r.get("instruction") or "") for r in rows]
    found = contamination(texts, benches)
    out = []
    for o in found:
        item = o.to_dict()
        item["examples"] = [{"id": rows[m.row].get("id"), "item": m.item, "ngram": m.ngram,
                             "instruction": texts[m.row]} for m in o.matches[:MAX_EXAMPLES]]
        item["ids"] = [rows[m.row].get("id") for m in o.matches]
        out.append(item)
    # Dropping uses the longest n (13): the usual decontamination bar; 8-gram hits are shown, and
    # many are shared phrasing ("how much money does she") rather than a leaked item.
    longest = max((o["n"] for o in out), default=0)
    return {"benchmarks": [b.name for b in benches], "overlaps": out,
            "drop_ids": sorted({str(i) for o in out if o["n"] == longest for i in o["ids"]})}
