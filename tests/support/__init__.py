"""Test helpers shared by the test suite and the benchmarks (importable as `tests.support`).

`tests.support.fake_openai_server` holds the fake OpenAI-compatible server; it is not re-exported
here so that `python -m tests.support.fake_openai_server` runs without a double import.
"""
