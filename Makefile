# driftless — build, test, demo, benchmarks.
GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)

.PHONY: all build test test-short fuzz vet bench bench-scheduler demo demo-stop compat clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/driftless ./cmd/driftless
	$(GO) build -o $(BIN)/driftless-mkimage ./cmd/driftless-mkimage

# Every test, the containerd and multi-process ones included. Needs root
# (containerd) and the packages scripts/install-deps.sh installs. Under
# CI=true a test that cannot get containerd fails instead of skipping.
test:
	scripts/install-deps.sh
	GO=$(GO) scripts/test.sh
	$(MAKE) fuzz

# A bounded run of every fuzz target (the committed seeds under
# testdata/fuzz run with every plain `go test` too).
FUZZ_TIME ?= 10s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZ_TIME) ./manifest
	$(GO) test -run '^$$' -fuzz '^FuzzParseBundleHeader$$' -fuzztime $(FUZZ_TIME) ./sources/git
	$(GO) test -run '^$$' -fuzz '^FuzzParseAllowedSigners$$' -fuzztime $(FUZZ_TIME) ./sources/git
	$(GO) test -run '^$$' -fuzz '^FuzzCheckWebhook$$' -fuzztime $(FUZZ_TIME) ./agent

# Pure-logic tests only (no containerd, no root).
test-short:
	$(GO) test -short -count=1 ./manifest/... ./scheduler/... ./reconcile

vet:
	gofmt -l $$(git ls-files '*.go')
	$(GO) vet ./...

# Benchmarks, printed as a table.
bench: build
	scripts/bench.sh

# The scheduler benchmarks alone, summed up in one line.
bench-scheduler:
	@$(GO) test -run '^$$' -bench 'Schedule5k|Reschedule5kNodeLoss' -benchtime 3x -count=1 ./scheduler | tee /dev/stderr | \
	awk '/^BenchmarkSchedule5k/ { for (i = 2; i <= NF; i++) { if ($$i == "placements/s") r = $$(i-1); if ($$i == "placed") p = $$(i-1); if ($$i == "pending") q = $$(i-1) } } \
	     /^BenchmarkReschedule5kNodeLoss/ { for (i = 2; i <= NF; i++) { if ($$i == "ms/pass") m = $$(i-1); if ($$i == "moved") v = $$(i-1) } } \
	     END { printf "scheduler: %d placements/s (5000 nodes, 100000 replicas, %d placed, %d pending); node loss: %s ms to re-place %d replicas\n", r, p, q, m, v }'

# Regenerate docs/compatibility.md and the pinned outcomes of the
# Kubernetes example corpus.
compat:
	$(GO) test ./manifest -run Compat -count=1 -update

# A private containerd, examples-repo/ served as a Git repository, one agent.
demo: build
	scripts/demo.sh

demo-stop:
	scripts/demo.sh stop

clean:
	rm -rf $(BIN)
