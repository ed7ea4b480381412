# Two commands on a fresh machine:
#   make run    install everything, prepare the embedded database, ingest docs/, and serve the
#               playground at http://127.0.0.1:8000/ (`make chat` asks in the terminal instead)
#   make test   install everything and run the whole test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch for the `local` extra (sentence-transformers); never a multi-GB GPU build.
TORCH := torch==2.13.0

.PHONY: install prepare run chat test bench clean chromium

$(BIN)/docrag: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(TORCH)" -e ".[dev,local]"
	touch $@

install: $(BIN)/docrag

prepare: install
	$(BIN)/docrag db upgrade
	$(BIN)/docrag ingest docs/

run: prepare
	$(BIN)/docrag serve

chat: prepare
	$(BIN)/docrag chat

# The browser tests drive Debian's Chromium headless.
chromium:
	command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

test: install chromium
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/retrieval_eval.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/query.py

clean:
	rm -rf $(VENV) .docrag
