# hydrascope — the two commands of the README, and their parts.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
PYTEST_ARGS ?= -n 2 --dist loadfile

.PHONY: setup system demo test neo4j-start neo4j-stop clean

$(BIN)/hydrascope: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(BIN)/hydrascope

# Debian's headless Chromium for the browser tests (no browser download from elsewhere)
system:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; fi; }

demo: setup
	$(BIN)/hydrascope demo --out runs/demo

neo4j-start: setup
	scripts/neo4j start

neo4j-stop:
	scripts/neo4j stop

# the README's test command: browser, Neo4j (started if needed, from Maven Central jars), then pytest
test: setup system neo4j-start
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf runs artifacts .pytest_cache
