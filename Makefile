# braid — see README.md. Every target works on a fresh machine with Go installed.
GO       ?= go
BIN      := bin/braid
PKGS     := ./...
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
FUZZTIME ?= 20s

.PHONY: all build run test test-short bench lint fuzz soak clean

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

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./bond/

lint:
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin
