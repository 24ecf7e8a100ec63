"""`python -m bench` (or `make bench`): every benchmark, one after another."""

from bench import screening, throughput

if __name__ == "__main__":
    print("== screening (SPEC §7.3) ==")
    screening.main([])
    print("\n== throughput ==")
    raise SystemExit(throughput.main([]))
