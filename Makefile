# braid — see README.md. Every target works on a fresh machine with Go installed.
GO       ?= go
BIN      := bin/braid
PKGS     := ./...
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
FUZZTIME ?= 20s

.PHONY: all build run test test-short bench bench-isolation lint fuzz soak clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/braid

# Starts an exit and a client on this machine, bonded over two loopback links;
# SOCKS5 on 127.0.0.1:1080. Try: curl --socks5-hostname 127.0.0.1:1080 https://example.com
run: build
	./scripts/run-local.sh

# The test command CI runs: unit, fuzz-seed, race and end-to-end tests.
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

test-short:
	$(GO) test -short -count=1 $(PKGS)

# Benchmarks: bond's in-process figures (docs/BENCH-BOND.md), then the
# network-namespace suite against single links and kernel MPTCP (needs root;
# about 10 minutes; docs/BENCHMARKS.md and docs/bench/*.png).
bench: build
	./scripts/bench-bond.sh
	BRAID_BENCH_CMD='make bench' BRAID_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 60m -v -run '^TestSuite$$' ./bench/ -suite

# Soak (not in CI): 1,000 transfers with flapping links for BRAID_SOAK_DURATION (default 10m).
soak: build
	BRAID_SOAK=1 $(GO) test -count=1 -timeout 0 -v -run '^TestSoak$$' ./e2e/

# Isolation: one unread stream beside a 1 GiB transfer (ratio to solo).
bench-isolation:
	$(GO) test -run '^$$' -bench Isolation -benchtime 1x -timeout 30m ./e2e/

lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin
