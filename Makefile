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
CHROMIUM  := tools/devenv/chromium.sh
DEPLOYTOOLS := tools/deploytools/build.sh
TEST_TIMEOUT ?= 25m

.PHONY: help
help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: up
up: build ## start PostgreSQL/Redis if absent, migrate, run every service and print URL and admin PAK; then a local kube-apiserver and one agent (built in the background on first run)
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
	$(CHROMIUM) >/dev/null; \
	$(DEPLOYTOOLS) helm >&2; \
	$(MAKE) --no-print-directory check-generated; \
	$(MAKE) --no-print-directory lint; \
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(PACKAGES); \
	$(MAKE) --no-print-directory fuzz-short

.PHONY: chaos
chaos: ## full chaos suite (~15 min): SIGKILL every service, restart Redis empty and PostgreSQL, 3 rounds under load; see docs/reliability.md
	@$(TESTENV_BUILD) >&2
	@mkdir -p .brokkr
	BROKKR_CHAOS=full BROKKR_CHAOS_REPORT=$(CURDIR)/.brokkr/chaos-report.md \
		$(GO) test -count=1 -timeout 40m -run '^TestChaos$$' -v ./tools/chaos/

.PHONY: test-short
test-short: ## unit tests only (no PostgreSQL/Redis/kube-apiserver)
	$(GO) test -short -count=1 $(PACKAGES)

.PHONY: bench
bench: ## run the benchmarks recorded in docs/benchmarks.md
	@set -a; eval "$$($(DEVENV) up)"; set +a; \
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $(PACKAGES)

# The fleet simulator's default scenario; see docs/benchmarks.md for others.
LOADTEST_ARGS ?= -agents 1000 -throughput 10s -duration 30s -change-every 5s -label-churn 1 -restarts 1 -env BROKKR__DATABASE__MAX_OPEN_CONNS=10

.PHONY: loadtest
loadtest: build ## fleet simulator (tools/loadgen) against auth + api it starts on loopback and a fresh database; LOADTEST_ARGS to vary
	@set -a; eval "$$($(DEVENV) up)"; set +a; \
	$(GO) run ./tools/cmd/loadgen -spawn -bin $(BIN) $(LOADTEST_ARGS)

# Fuzz targets: every parser of untrusted input (name:package).
FUZZ_TARGETS := \
	FuzzParseHeader:./pkg/domain/pak/ \
	FuzzSplitYAML:./pkg/domain/stack/ \
	FuzzMatchPattern:./pkg/domain/webhook/ \
	FuzzValidateSchema:./pkg/adapters/jsonschema/ \
	FuzzRender:./pkg/adapters/gonja/ \
	FuzzCheckTarget:./pkg/adapters/webhookhttp/ \
	FuzzCheckJSONText:./pkg/platform/httpserver/ \
	FuzzPrepare:./services/agent/internal/reconcile/
FUZZTIME ?= 10m

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 10m; 0 crashes expected)
	@GO=$(GO) tools/fuzz/run.sh $(FUZZTIME) $(FUZZ_TARGETS)

.PHONY: fuzz-short
fuzz-short: ## 20,000 inputs of each fuzz target (part of make test; a count has no deadline to race)
	@$(MAKE) --no-print-directory fuzz FUZZTIME=20000x

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
lint: ## gofmt, go vet, staticcheck, go mod tidy, docs cite only the repository (tools/doccheck)
	@test -z "$$(gofmt -l migrations pkg services tools)" || { gofmt -l migrations pkg services tools; exit 1; }
	$(GO) test -count=1 ./tools/doccheck/
	$(GO) vet $(PACKAGES)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PACKAGES)
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy -diff >/dev/null) || { echo "$$m: go.mod/go.sum not tidy: run 'make tidy'" >&2; exit 1; }; done

.PHONY: tidy
tidy: ## go mod tidy in every module
	@for m in $(MODULES); do (cd $$m && $(GO) mod tidy); done

.PHONY: test-console
test-console: ## the fleet console's browser test (headless Chromium); screenshots into $$BROKKR_CONSOLE_SCREENSHOTS
	@set -a; eval "$$($(DEVENV) up)"; set +a; \
	$(TESTENV_BUILD) >&2; \
	$(CHROMIUM) >/dev/null; \
	$(GO) test -count=1 -v -run TestConsoleInTheBrowser ./tools/consoletest/
.PHONY: images
images: ## build the six service images as docker-archive tarballs in .brokkr/images (no Docker needed; build/images.yaml)
	$(GO) run ./tools/cmd/imagebuild build -out $(CURDIR)/.brokkr/images

.PHONY: dockerfile
dockerfile: ## regenerate build/Dockerfile from build/images.yaml
	$(GO) run ./tools/cmd/imagebuild dockerfile > build/Dockerfile

.PHONY: deploy-tools
deploy-tools: ## build (cached) helm, helm 3 (for skaffold) and skaffold into ~/.cache/brokkr
	@$(DEPLOYTOOLS) helm >&2
	@$(DEPLOYTOOLS) helm3 >&2
	@$(DEPLOYTOOLS) skaffold >&2 || echo "skaffold could not be built; tools/deploytools/README.md" >&2

.PHONY: test-charts
test-charts: ## helm lint/template/dry-run/install/upgrade/uninstall of both charts on the local kube-apiserver, skaffold render of every profile, and the images
	@$(TESTENV_BUILD) >&2; $(DEPLOYTOOLS) helm >&2; $(DEPLOYTOOLS) helm3 >&2; $(DEPLOYTOOLS) skaffold >&2
	BROKKR_REQUIRE_SKAFFOLD=1 $(GO) test -count=1 -timeout 30m ./tools/images/ ./tools/charts/

.PHONY: testenv-up
testenv-up: ## build (cached) and start a local kube-apiserver + etcd; prints KUBECONFIG
	@$(TESTENV_BUILD) >&2
	$(GO) run ./tools/cmd/testenv up --dir $(CURDIR)/.brokkr/testenv

.PHONY: testenv-down
testenv-down: ## stop the local kube-apiserver
	$(GO) run ./tools/cmd/testenv down --dir $(CURDIR)/.brokkr/testenv
