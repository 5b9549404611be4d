# Two commands matter on a fresh machine: `make up` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: up test install codegen-tools engines engine-deps system-deps apt-missing proto lint typecheck unit bench reset clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,report]'
	@touch $(STAMP)

install: $(STAMP)

# The protoc plugins behind the OpenAPI document and the TypeScript client
# (scripts/gen_protos.py). The Go one is built from the pinned tools/openapi/go.mod: the module
# proxy refuses the version lookup `go install pkg@version` needs. The npm ones come from
# examples/portal's lock, which also pins the example page's bundler and type checker. Each is
# redone only when its pins change.
OPENAPI_PLUGIN := $(BIN)/protoc-gen-connect-openapi
PORTAL := examples/portal
PORTAL_STAMP := $(PORTAL)/node_modules/.installed-stamp

$(OPENAPI_PLUGIN): tools/openapi/go.mod tools/openapi/go.sum | $(STAMP)
	@echo "building protoc-gen-connect-openapi (a few minutes on a cold Go cache)"
	cd tools/openapi && go build -mod=readonly -trimpath -o $(abspath $@) \
		github.com/sudorandom/protoc-gen-connect-openapi
	@touch $@

# --ignore-scripts: esbuild's postinstall only re-checks the binary its platform package holds.
$(PORTAL_STAMP): $(PORTAL)/package.json $(PORTAL)/package-lock.json
	npm ci --prefix $(PORTAL) --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

codegen-tools: $(OPENAPI_PLUGIN) $(PORTAL_STAMP)

up: install engines
	$(BIN)/mentoring up

test: install codegen-tools system-deps engines lint typecheck
	$(BIN)/python -m pytest

# Apache Kafka's jars (Maven Central, ~46 MB) and the MongoDB-wire server (built from crates.io
# with cargo, about ten minutes on two cores) into the engines cache, once per machine. See
# README.md, "Storage and messaging".
engines: install engine-deps
	$(BIN)/mentoring engines install

# Debian packages installed with apt-get only when missing (sudo when not root), as
# package:binary pairs. Java and Maven run Kafka; prometheus (with promtool) is run for real by
# tests/e2e, and chromium loads the example portal page. The gateway's nginx is an engine
# (Debian 13's, for `http2 on`): `mentoring engines install` fetches it.
ENGINE_PACKAGES := default-jre-headless:java maven:mvn
TEST_PACKAGES := prometheus:promtool prometheus:prometheus chromium:chromium

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

lint: install codegen-tools
	$(BIN)/python scripts/gen_protos.py --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install codegen-tools
	$(BIN)/mypy
	npm run --prefix $(PORTAL) --silent typecheck

unit: install codegen-tools
	$(BIN)/python -m pytest tests/unit

proto: install codegen-tools
	$(BIN)/python scripts/gen_protos.py

bench: install
	$(BIN)/python bench/matching.py

# Wipes what `make up` stored (Kafka's topics, every service's database); logs stay.
reset:
	rm -rf .run/data

clean:
	rm -rf $(VENV) .run .pytest_cache .mypy_cache .ruff_cache $(PORTAL)/node_modules $(PORTAL)/dist
