# facegate: `make demo` and `make test` each set up .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: .venv demo test lint typecheck unit bench package container clean

.venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	# The peer the benchmarks compare with; it asks for the `dlib` sdist, dlib-bin provides the module.
	$(BIN)/python -m pip install -q --no-deps face-recognition==1.3.0
	touch $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/demo.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench .ci
	$(BIN)/ruff format --check src tests bench .ci

typecheck: $(STAMP)
	$(BIN)/mypy src

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest -m unit

package: $(STAMP)
	bash .ci/package_smoke.sh

# The container image (Containerfile), built with buildah and smoke-tested inside; as root.
container:
	bash .ci/container_smoke.sh

bench: $(STAMP)
	cd bench && ../$(BIN)/python run_all.py

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
