# Brokkr in Go. `make up` runs the whole stack locally; `make test` runs every
# test against real PostgreSQL, Redis and (for the agent) a local
# kube-apiserver. Slow builds are cached under $(HOME)/.cache/brokkr.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
BIN       := $(CURDIR)/.brokkr/bin
MODULES   := ./migrations ./pkg ./services/api ./services/auth ./services/templating ./services/work-order-scheduler ./services/webhook-dispatch ./services/agent ./tools ./tools/brokkr
PACKAGES  := github.com/brokkr-go/brokkr/...
DEVENV    := tools/devenv/devenv.sh
STACK     := tools/devenv/stack.sh
TESTENV_BUILD := tools/testenv/build.sh
TEST_TIMEOUT ?= 25m

.PHONY: help
help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: up
up: build ## start PostgreSQL/Redis if absent, migrate, run every service, a local kube-apiserver and one agent; print URL and admin PAK
	@$(TESTENV_BUILD) >&2
	@$(STACK) up

.PHONY: down
down: ## stop everything `make up` started
	@$(STACK) down

.PHONY: build
build: ## build every service binary and the brokkr CLI into .brokkr/bin
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./services/api/cmd/api ./services/auth/cmd/auth ./services/templating/cmd/templating \
		./services/work-order-scheduler/cmd/work-order-scheduler ./services/webhook-dispatch/cmd/webhook-dispatch \
		./services/agent/cmd/agent
	$(GO) build -o $(BIN)/brokkr ./tools/brokkr

.PHONY: test
test: ## run the whole test suite (starts what it needs)
	@set -a; eval "$$($(DEVENV) up)"; set +a; \
	$(TESTENV_BUILD) >&2; \
	$(MAKE) --no-print-directory check-generated; \
	$(MAKE) --no-print-directory lint; \
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(PACKAGES)

.PHONY: test-short
test-short: ## unit tests only (no PostgreSQL/Redis/kube-apiserver)
	$(GO) test -short -count=1 $(PACKAGES)

.PHONY: bench
bench: ## run the benchmarks recorded in docs/benchmarks.md
	@set -a; eval "$$($(DEVENV) up)"; set +a; \
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $(PACKAGES)

.PHONY: fuzz
fuzz: ## run each fuzz target briefly
	$(GO) test -run '^$$' -fuzz FuzzParseHeader -fuzztime 30s ./pkg/domain/pak/
	$(GO) test -run '^$$' -fuzz FuzzSplitYAML -fuzztime 30s ./pkg/domain/stack/
	$(GO) test -run '^$$' -fuzz FuzzPrepare -fuzztime 30s ./services/agent/internal/reconcile/

.PHONY: generate
generate: ## regenerate wire_gen.go files, embedded copies and the CLI's API client (oapi-codegen)
	cd services/api && $(GO) run github.com/google/wire/cmd/wire ./cmd/api
	cd services/auth && $(GO) run github.com/google/wire/cmd/wire ./cmd/auth
	cd services/templating && $(GO) run github.com/google/wire/cmd/wire ./cmd/templating
	cd services/work-order-scheduler && $(GO) run github.com/google/wire/cmd/wire ./cmd/work-order-scheduler
	cd services/webhook-dispatch && $(GO) run github.com/google/wire/cmd/wire ./cmd/webhook-dispatch
	cd services/agent && $(GO) run github.com/google/wire/cmd/wire ./cmd/agent
	$(GO) generate ./services/api/internal/apidocs/
	$(GO) generate ./tools/brokkr/internal/apiclient/

.PHONY: check-generated
check-generated: ## fail when generated files are stale
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	for m in api auth templating work-order-scheduler webhook-dispatch agent; do cp services/$$m/cmd/$$m/wire_gen.go "$$tmp/$$m.go"; done; \
	cp tools/brokkr/internal/apiclient/client.gen.go "$$tmp/client.gen.go"; \
	$(MAKE) --no-print-directory generate >/dev/null; \
	for m in api auth templating work-order-scheduler webhook-dispatch agent; do \
	  if ! diff -q "$$tmp/$$m.go" services/$$m/cmd/$$m/wire_gen.go >/dev/null; then \
	    echo "services/$$m/cmd/$$m/wire_gen.go is stale: run 'make generate'" >&2; exit 1; fi; \
	done; \
	if ! diff -q "$$tmp/client.gen.go" tools/brokkr/internal/apiclient/client.gen.go >/dev/null; then \
	  echo "tools/brokkr/internal/apiclient/client.gen.go is stale (api-spec/openapi.yaml changed): run 'make generate'" >&2; exit 1; fi

.PHONY: lint
lint: ## gofmt, go vet, staticcheck, go mod tidy
	@test -z "$$(gofmt -l migrations pkg services tools)" || { gofmt -l migrations pkg services tools; exit 1; }
	$(GO) vet $(PACKAGES)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PACKAGES)
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy -diff >/dev/null) || { echo "$$m: go.mod/go.sum not tidy: run 'make tidy'" >&2; exit 1; }; done

.PHONY: tidy
tidy: ## go mod tidy in every module
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy); done

.PHONY: testenv-up
testenv-up: ## build (cached) and start a local kube-apiserver + etcd; prints KUBECONFIG
	@$(TESTENV_BUILD) >&2
	$(GO) run ./tools/cmd/testenv up --dir $(CURDIR)/.brokkr/testenv

.PHONY: testenv-down
testenv-down: ## stop the local kube-apiserver
	$(GO) run ./tools/cmd/testenv down --dir $(CURDIR)/.brokkr/testenv
