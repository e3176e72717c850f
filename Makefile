# agentguard — `make run` starts the server on the embedded defaults; `make test` runs every test.
GO ?= go
PKGS := ./...
export AGENTGUARD_TEST_DATABASE_URL ?= $(shell pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && echo postgres://postgres@127.0.0.1:5432/test?sslmode=disable)

.PHONY: run build test test-short bench fmt vet

run:
	$(GO) run ./cmd/agentguard serve

build:
	$(GO) build -o bin/agentguard ./cmd/agentguard

test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(PKGS)

test-short:
	$(GO) test -count=1 $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

fmt:
	gofmt -w .
