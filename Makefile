# honora-tts: `make verify` sets everything up and runs deploy verification (against localpod
# unless RUNPOD_ENDPOINT_ID and RUNPOD_API_KEY are set); `make test` runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
LOCK_FLAGS := --python-version 3.11 --python-platform x86_64-manylinux_2_28

.PHONY: setup test verify bench reliability lint lock clean

setup:
	@VENV="$(VENV)" bash scripts/setup.sh

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

verify: setup
	$(PY) -m honora_tts.cli verify

bench: setup
	$(PY) -m benchmarks

# The reliability suite alone (make test runs it too); figures in artifacts/reliability/report.json.
reliability: setup
	$(PY) -m pytest -m reliability $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check honora_tts worker tests benchmarks tts_engines
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint Dockerfile.runpod

# Re-resolve both lock files after editing pyproject.toml (needs the package registry).
lock:
	uv pip compile pyproject.toml --extra all --extra dev $(LOCK_FLAGS) -o requirements.lock
	uv pip compile pyproject.toml --extra worker $(LOCK_FLAGS) -c requirements.lock -o requirements-worker.lock

clean:
	rm -rf artifacts .pytest_cache
