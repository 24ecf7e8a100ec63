# Two entry points for a fresh machine: `make demo` and `make test`. Each builds .venv on first use.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
# A portable llama.cpp build (no -march=native) without the multimodal helper, which we never use.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF

.PHONY: demo test lint bench clean browser docs

# The report's browser test drives Debian's chromium (never a browser downloaded by Playwright).
# Installed only where apt and root are available and chromium is missing: a no-op everywhere else.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium not installed: the report's browser test will be skipped"

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,local]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python -m autoevol.demo

test: $(BIN)/.installed browser
	$(BIN)/ruff check autoevol tests bench
	$(BIN)/mypy autoevol
	$(BIN)/pytest -q

bench: $(BIN)/.installed
	$(BIN)/python -m bench

# docs/cli.md from the CLI's own --help (tests/test_cli_docs.py fails when they drift apart).
docs: $(BIN)/.installed
	$(BIN)/python -m tests.support.cli_docs docs/cli.md

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
