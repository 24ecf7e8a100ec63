# Two entry points for a fresh machine: `make demo` and `make test`. Each builds .venv on first use.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
# A portable llama.cpp build (no -march=native) without the multimodal helper, which we never use.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF

.PHONY: demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python -m autoevol.demo

test: $(BIN)/.installed
	$(BIN)/ruff check autoevol tests bench
	$(BIN)/mypy autoevol
	$(BIN)/pytest -q

bench: $(BIN)/.installed
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
