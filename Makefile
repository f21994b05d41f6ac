# Everything a machine needs beyond a Rust toolchain is installed by these targets.
# `make` alone lists them.

BIN      := mcp-starter
BIND     ?= 127.0.0.1:8080
CARGO    ?= cargo
VERSION  := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
IMAGE    ?= $(subst _,-,$(BIN)):$(VERSION)
# Pinned check tools (scripts/tools), cached across runs and projects.
TOOLS    ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mcp-server-tools
export TOOLS
export PATH := $(TOOLS)/bin:$(PATH)

.DEFAULT_GOAL := help
.PHONY: help run run-stdio build release test redis python-interop observability-check lint fmt clean deny docker container-check conformance inspector inspector-check oauth-check bench abuse upgrade-kit

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## Run the server over HTTP on loopback (BIND=host:port to change), with readable logs
	@# The dependencies `make test` builds (dev-dependencies change shared crates' features), so
	@# tests after a run rebuild only this crate (with its test-only tool).
	$(CARGO) test --locked --no-run
	@echo
	@echo "MCP endpoint:  http://$(BIND)/mcp   (Streamable HTTP)"
	@echo "Health:        http://$(BIND)/healthz   http://$(BIND)/readyz"
	@echo "Inspector:     make inspector   (another terminal), then connect to http://$(BIND)/mcp"
	@echo "Stop:          Ctrl-C (drains in-flight calls, then exits)"
	target/debug/$(BIN) serve --transport http --bind $(BIND) --log-format pretty

run-stdio: ## Run the server over stdio, as an MCP client would spawn it
	$(CARGO) run --locked --quiet -- serve --transport stdio

build: ## Debug build
	$(CARGO) build --locked

release: ## Optimised build: target/release/mcp-starter
	$(CARGO) build --locked --release

test: redis ## Run every test: unit tests and the protocol suites against the built binary
	@# `fixtures` adds the test-only tool the upstream client's tests call (never in a release);
	@# `otel` the trace export its tests check.
	$(CARGO) test --locked --features fixtures,otel

redis: ## Install redis-server when missing (Debian's package), for the replica tests
	@scripts/tools redis-server

lint: ## Formatting, clippy with warnings denied, and actionlint on the CI workflow
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --all --manifest-path loadgen/Cargo.toml -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	$(CARGO) clippy --locked --all-targets --all-features -- -D warnings
	$(CARGO) clippy --locked --all-targets --manifest-path loadgen/Cargo.toml --target-dir target/loadgen -- -D warnings
	@scripts/tools actionlint
	actionlint

fmt: ## Format the code
	$(CARGO) fmt --all
	$(CARGO) fmt --all --manifest-path loadgen/Cargo.toml

clean: ## Remove build output
	$(CARGO) clean

deny: ## Dependency policy (deny.toml): advisories, licenses, bans, sources; DENY_FLAGS=--offline without network
	@scripts/tools cargo-deny
	@# Every crate of the lock file, for every platform: cargo-deny reads them all, and with
	@# --offline it cannot download the ones no build here needed.
	$(CARGO) fetch --locked --quiet
	$(CARGO) deny $(DENY_FLAGS) check
	scripts/deny-bans-check backoff

docker: ## Build the container image, tagged <name>:<version> (needs a Docker engine)
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

container-check: release ## Lint Dockerfile and deploy/, then run the release binary as the image would
	@scripts/tools container-linters
	hadolint Dockerfile
	trivy config --quiet --skip-check-update --exit-code 1 Dockerfile
	trivy config --quiet --skip-check-update --exit-code 1 deploy
	checkov --skip-download --quiet --compact -f Dockerfile -f deploy/kubernetes.yaml -f deploy/compose.yaml -f .github/workflows/ci.yml
	$(TOOLS)/container-linters/bin/python scripts/deploy-check $(IMAGE)
	scripts/container-smoke target/release/$(BIN)
# Node 22 and the pinned MCP tools (interop/package.json), installed once into a cache directory.
NODE_TOOLS := interop/node-tools.sh $(BIN)

conformance: ## The official MCP conformance suite over HTTP, 2026-07-28 and 2025-11-25: every scenario, and each revision's required set (with the Tasks extension's)
	@tools="$$($(NODE_TOOLS))" && PATH="$$tools/bin:$$PATH" \
		$(CARGO) test --locked --features conformance --test conformance -- --ignored --nocapture --test-threads 1

inspector: ## The pinned MCP Inspector's web UI (on the Node 22 make installs), for the server `make run` serves
	@tools="$$($(NODE_TOOLS))" && echo "Inspector: connect with transport Streamable HTTP and URL http://$(BIND)/mcp" \
		&& PATH="$$tools/bin:$$PATH" inspector

python-interop: redis ## The official MCP Python SDK client keeps its session across replicas and a restart (with Redis)
	@venv="$$(interop/python-tools.sh $(BIN))" && PATH="$$venv/bin:$$PATH" \
		$(CARGO) test --locked --features fixtures,otel --test replicas -- --ignored

observability-check: ## A real Prometheus (Debian's package, installed when missing) scrapes the server under load; PromQL finds the calls
	@scripts/tools prometheus
	$(CARGO) test --locked --features fixtures,otel --test metrics -- --ignored

inspector-check: ## The MCP Inspector's CLI lists and calls tools over stdio and over HTTP with a token
	@tools="$$($(NODE_TOOLS))" && PATH="$$tools/bin:$$PATH" \
		$(CARGO) test --locked --features fixtures,otel --test inspector -- --ignored

oauth-check: ## A real OpenID provider and the TypeScript SDK client's OAuth: registration, PKCE, audience, scope step-up
	@tools="$$($(NODE_TOOLS))" && PATH="$$tools/bin:$$PATH" \
		$(CARGO) test --locked --features fixtures,otel --test oauth -- --ignored

abuse: release ## Hostile load against the release build on loopback (not part of test): a table of figures against bounds
	$(CARGO) build --locked --release --manifest-path loadgen/Cargo.toml --target-dir target/loadgen -p loadgen
	ulimit -n 8192 2>/dev/null || true; target/loadgen/release/loadgen abuse target/release/$(BIN)

bench: redis ## Benchmark the release build on loopback beside a bare rmcp server and an axum floor, in memory and with Redis (not part of test): prints tables, writes target/benchmark/
	$(CARGO) build --locked --profile benchmark --features bench,otel
	@# The production build too, whose size the bench reports.
	$(CARGO) build --locked --release
	@# loadgen and the baselines it compares the server with (loadgen/baselines/), one workspace.
	$(CARGO) build --locked --release --manifest-path loadgen/Cargo.toml --target-dir target/loadgen
	target/loadgen/release/loadgen target/benchmark/$(BIN) target/benchmark

upgrade-kit: ## Take a newer kit: replace kit/ with TEMPLATE's (a checkout or git URL), then run the tests
	scripts/upgrade-kit "$(TEMPLATE)"
	$(MAKE) test

# template-only:begin
.PHONY: template-check twins

template-check: ## Prove the template: twins current; own name reproduces the repo; new names build and pass
	@scripts/tools cargo-generate@0.23.5 container-linters
	scripts/template-check

twins: ## Write the .liquid twins of the files that carry the project name (see cargo-generate.toml)
	scripts/twins
# template-only:end
