"""`python -m bench` (or `make bench`): every benchmark, one after another."""

from bench import screening

if __name__ == "__main__":
    raise SystemExit(screening.main([]))
