"""Run by the throughput benchmark inside distilabel's own virtual environment (never imported by
autoevol): distilabel's `EvolInstruct` (one evolution, answers generated) over the same seeds and
fake server, `input_batch_size` = the concurrency. Prints one JSON line: seconds and CPU seconds.

    python bench/distilabel_evol.py URL SEEDS_JSONL CONCURRENCY
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    url, seeds_path, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.environ.setdefault("DISTILABEL_LOG_LEVEL", "ERROR")
    from distilabel.models import OpenAILLM
    from distilabel.pipeline import Pipeline
    from distilabel.steps import LoadDataFromDicts
    from distilabel.steps.tasks import EvolInstruct

    with open(seeds_path, encoding="utf-8") as handle:
        data = [{"instruction": json.loads(line)["question"]} for line in handle]
    with Pipeline(name="autoevol-throughput-bench") as pipeline:
        load = LoadDataFromDicts(data=data, batch_size=concurrency)
        evolve = EvolInstruct(
            llm=OpenAILLM(model="fake", base_url=url, api_key="bench", max_retries=0, timeout=120),
            num_evolutions=1, generate_answers=True, input_batch_size=concurrency, seed=0,
        )
        load >> evolve
    started, cpu = time.perf_counter(), time.process_time()
    distiset = pipeline.run(use_cache=False)
    seconds = time.perf_counter() - started
    rows = sum(len(split) for config in distiset.values() for split in config.values())
    # distilabel runs steps in child processes: their CPU is in the children's rusage.
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"seconds": seconds, "cpu_s": time.process_time() - cpu + children.ru_utime + children.ru_stime,
                      "rows": rows}), flush=True)


if __name__ == "__main__":
    main()
