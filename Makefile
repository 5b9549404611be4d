# Two commands matter on a fresh machine: `make up` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: up test install system-deps proto lint typecheck unit bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,report]'
	@touch $(STAMP)

install: $(STAMP)

up: install
	$(BIN)/mentoring up

test: install system-deps lint typecheck
	$(BIN)/python -m pytest

# Debian's prometheus (with promtool) and nginx, which tests/e2e run for real: installed with
# apt-get only when missing (sudo when not root). nginx lives in /usr/sbin, not on every PATH.
SYSTEM_PACKAGES := prometheus:promtool prometheus:prometheus nginx:nginx
system-deps:
	@missing=""; \
	for pair in $(SYSTEM_PACKAGES); do \
		package=$${pair%%:*}; binary=$${pair#*:}; \
		PATH="$$PATH:/usr/sbin:/sbin" command -v $$binary >/dev/null 2>&1 \
			|| case " $$missing " in *" $$package "*) ;; *) missing="$$missing $$package";; esac; \
	done; \
	if [ -n "$$missing" ]; then \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		echo "installing Debian packages:$$missing"; \
		$$sudo apt-get update -qq \
			&& $$sudo env DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq --no-install-recommends $$missing; \
	fi

lint: install
	$(BIN)/python scripts/gen_protos.py --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/python -m pytest tests/unit

proto: install
	$(BIN)/python scripts/gen_protos.py

bench: install
	$(BIN)/python bench/matching.py

clean:
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache
