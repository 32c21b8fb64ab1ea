# cellwarden developer targets. CI runs .ci/run, which uses the same commands.

GO          ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build test test-race bench bench-replay lint fmt golden

build:
	$(GO) build ./...

# The README's test command.
test:
	$(GO) test ./...

test-race:
	$(GO) test -race -count=1 ./...

# Every benchmark, then the 5-million-row replay on one core.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
	$(MAKE) bench-replay

# Replays a generated 5,000,000-row CSV with GOMAXPROCS=1 and reports rows/s.
bench-replay:
	$(GO) test -run '^$$' -bench 'BenchmarkReplay5M' -benchtime 3x -cpu 1 ./cmd/cellwarden

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(STATICCHECK) ./...

fmt:
	gofmt -w .

# Rewrites the golden files under testdata/ from the current code.
golden:
	$(GO) test ./... -update
