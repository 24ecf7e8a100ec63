"""`python -m bench` (or `make bench`): every benchmark, one after another."""

from bench import dedup, killsuite, memory, screening, throughput

if __name__ == "__main__":
    print("== screening (SPEC §7.3) ==")
    screening.main([])
    print("\n== near-duplicate search ==")
    failed = dedup.main([])
    print("\n== throughput ==")
    failed = throughput.main([]) or failed
    print("\n== memory (10k and 100k seeds; the 1M run: python -m bench.memory --seeds 1000000) ==")
    failed = memory.main([]) or failed
    print("\n== fault-and-kill suite ==")
    raise SystemExit(failed or killsuite.main([]))
