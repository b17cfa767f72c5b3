# tracecar — build, test, demo.
#   make demo    build everything and run the local demo (sidecar + demo app + Jaeger)
#   make test    lint, then every test (unit, proxy, e2e) with -race
#   make bench   the benchmark beside direct, nginx and HAProxy (~10 min; not part of test)
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# grpcnotrace leaves out golang.org/x/net/trace, whose html/template use
# (reflect method lookup) keeps every exported method in the binary: the
# sidecar is 8 MB smaller and maps 2 MB less (grpc-go's documented tag).
BUILDTAGS := grpcnotrace
GOLANGCI_LINT_VERSION := v2.15.0
GOBIN := $(CURDIR)/bin
export GOTOOLCHAIN := local

.PHONY: all build demo test unit allocs e2e lint fmt vet fuzz clean bench bench-quick

all: build

build: bin/sidecar

bin/sidecar: FORCE
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(BUILDTAGS)' -ldflags '$(LDFLAGS)' -o $@ ./cmd/sidecar

bin/demo-app: FORCE
	$(GO) build -o $@ ./deploy/demo/app

# Jaeger v1.76.0 (cmd/jaeger, the OpenTelemetry-collector based Jaeger) from
# the Go module proxy, pinned by the separate module in deploy/jaeger so the
# product's go.mod stays small. A source build has no UI assets.
bin/jaeger: deploy/jaeger/go.mod deploy/jaeger/go.sum
	cd deploy/jaeger && $(GO) build -o $(CURDIR)/bin/jaeger github.com/jaegertracing/jaeger/cmd/jaeger

bin/golangci-lint:
	GOBIN=$(GOBIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

demo: bin/sidecar bin/demo-app bin/jaeger
	./deploy/demo/run.sh --no-build

test: lint unit allocs e2e

unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /e2e)

# Allocation guards of the hot paths (testing.AllocsPerRun), without the race
# detector, which changes allocation counts. Timings never gate tests.
allocs:
	$(GO) test -count=1 -run 'Alloc' $$($(GO) list ./... | grep -v /e2e)

e2e: bin/jaeger
	TRACECAR_JAEGER_BIN=$(CURDIR)/bin/jaeger $(GO) test -race -count=1 -timeout 10m ./e2e/...

lint: bin/golangci-lint
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	./bin/golangci-lint run ./...

# Run each fuzz target for FUZZTIME (default 20s).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# The benchmark (bench/): tracecar beside a direct connection, nginx and
# HAProxy (installed with apt-get when missing), in shuffled rounds on
# loopback; writes bench/results/latest.md and its raw per-round JSON.
# Stops by itself within about 10 minutes. bench-quick is a short smoke run
# (about a minute and a half) that writes bench/results/quick.md.
# BENCH_FLAGS passes more flags (bin/bench/benchrun -h lists them).
BENCH_FLAGS ?=
bench: bin/sidecar bin/bench
	./bin/bench/benchrun -bin bin/bench -sidecar bin/sidecar $(BENCH_FLAGS)

bench-quick: bin/sidecar bin/bench
	./bin/bench/benchrun -quick -bin bin/bench -sidecar bin/sidecar $(BENCH_FLAGS)

bin/bench: FORCE
	$(GO) build -o bin/bench/ ./bench/cmd/...

clean:
	rm -rf bin

FORCE:
