# Two commands matter on a fresh machine: `make up` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: up test install engines engine-deps system-deps apt-missing proto lint typecheck unit bench reset clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,report]'
	@touch $(STAMP)

install: $(STAMP)

up: install engines
	$(BIN)/mentoring up

test: install system-deps engines lint typecheck
	$(BIN)/python -m pytest

# Apache Kafka's jars (Maven Central, ~46 MB) and the MongoDB-wire server (built from crates.io
# with cargo, about ten minutes on two cores) into the engines cache, once per machine. See
# README.md, "Storage and messaging".
engines: install engine-deps
	$(BIN)/mentoring engines install

# Debian packages installed with apt-get only when missing (sudo when not root), as
# package:binary pairs. Java and Maven run Kafka; prometheus (with promtool) and nginx are run
# for real by tests/e2e. nginx lives in /usr/sbin, not on every PATH.
ENGINE_PACKAGES := default-jre-headless:java maven:mvn
TEST_PACKAGES := prometheus:promtool prometheus:prometheus nginx:nginx

engine-deps:
	@$(MAKE) --no-print-directory apt-missing PAIRS="$(ENGINE_PACKAGES)"

system-deps: engine-deps
	@$(MAKE) --no-print-directory apt-missing PAIRS="$(TEST_PACKAGES)"

apt-missing:
	@missing=""; \
	for pair in $(PAIRS); do \
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

# Wipes what `make up` stored (Kafka's topics, every service's database); logs stay.
reset:
	rm -rf .run/data

clean:
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache
