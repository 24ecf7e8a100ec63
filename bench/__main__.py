"""`python -m bench` (or `make bench`): every benchmark, one after another."""

from bench import killsuite, screening, throughput

if __name__ == "__main__":
    print("== screening (SPEC §7.3) ==")
    screening.main([])
    print("\n== throughput ==")
    failed = throughput.main([])
    print("\n== fault-and-kill suite ==")
    raise SystemExit(failed or killsuite.main([]))
