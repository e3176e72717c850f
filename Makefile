# agentguard — `make run` starts the server on the embedded defaults; `make test` runs every test.
GO ?= go
PKGS := ./...
export AGENTGUARD_TEST_DATABASE_URL ?= $(shell pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && echo postgres://postgres@127.0.0.1:5432/test?sslmode=disable)

.PHONY: run build test test-short bench fmt vet demo

run:
	$(GO) run ./cmd/agentguard serve

# demo: the walkthrough on this machine (agentguard, a fake LLM, a weather MCP
# server, an enterprise service, the demo agent and a web app to chat in); see
# docs/sdk.md. DEMO_FLAGS="-once" exits after the scripted part, "-mode machine"
# has the agent act as itself.
DEMO_FLAGS ?=
demo:
	$(GO) run ./examples/demo $(DEMO_FLAGS)

build:
	$(GO) build -o bin/agentguard ./cmd/agentguard

# The SDK (sdk/) is its own Go module, so ./... of the main module does not reach
# it: each target runs it too.
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(PKGS)
	cd sdk && $(GO) vet ./... && $(GO) test -race -count=1 ./...

test-short:
	$(GO) test -count=1 $(PKGS)
	cd sdk && $(GO) test -count=1 ./...

# bench: Go micro-benchmarks, then the load tool (bench/load) against the real binary
# on SQLite and on PostgreSQL (a fresh schema). BENCH_DURATION per scenario.
BENCH_DURATION ?= 5s
BENCH_PG_URL ?= postgres://postgres@127.0.0.1:5432/test?sslmode=disable
bench: build
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
	cd sdk && $(GO) test -run '^$$' -bench . -benchmem ./...
	$(GO) run ./bench/load -binary bin/agentguard -duration $(BENCH_DURATION) -format markdown
	if pg_isready -q -h 127.0.0.1 -p 5432; then \
		$(GO) run ./bench/load -binary bin/agentguard -duration $(BENCH_DURATION) -format markdown -database-url '$(BENCH_PG_URL)'; \
	else echo "PostgreSQL is not running on 127.0.0.1:5432: skipping the PostgreSQL load run"; fi

fmt:
	gofmt -w .
