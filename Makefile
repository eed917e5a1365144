# driftless — build, test, demo, benchmarks.
GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
DIST      ?= dist
PREFIX    ?= /usr/local
SYSCONFDIR ?= /etc
UNITDIR   ?= $(PREFIX)/lib/systemd/system
DATADIR   ?= /var/lib/driftless

.PHONY: all build test test-short fuzz vet bench bench-scheduler demo demo-stop compat deb install clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/driftless ./cmd/driftless
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
	cd packaging && $(GO) vet ./...

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

# The Debian package $(DIST)/driftless_<version>_<arch>.deb of the binary
# `make build` makes: nfpm as a library, from the module of its own in
# packaging/ (so the root module does not depend on it). The version is
# VERSION in Debian form (v1.2.3-4-gabcdef0 is 1.2.3+4.gabcdef0), the
# architecture GOARCH's.
deb: build
	cd packaging && $(GO) run ./nfpm -version '$(VERSION)' -arch "$$($(GO) env GOARCH)" \
		-binary '$(abspath $(BIN))/driftless' -out '$(abspath $(DIST))'

# The binary, the systemd unit (run from PREFIX) and the example
# configuration, which never replaces one already there. DESTDIR is
# prepended to every path.
install: build
	install -d '$(DESTDIR)$(PREFIX)/bin' '$(DESTDIR)$(UNITDIR)' '$(DESTDIR)$(SYSCONFDIR)/driftless'
	install -d -m 0700 '$(DESTDIR)$(DATADIR)'
	install -m 0755 '$(BIN)/driftless' '$(DESTDIR)$(PREFIX)/bin/driftless'
	sed -e 's|/usr/bin/driftless|$(PREFIX)/bin/driftless|g' -e 's|/etc/driftless/|$(SYSCONFDIR)/driftless/|g' \
		packaging/driftless.service > '$(DESTDIR)$(UNITDIR)/driftless.service'
	chmod 0644 '$(DESTDIR)$(UNITDIR)/driftless.service'
	@if [ -e '$(DESTDIR)$(SYSCONFDIR)/driftless/agent.yaml' ]; then \
		echo "kept $(DESTDIR)$(SYSCONFDIR)/driftless/agent.yaml"; \
	else \
		install -m 0644 packaging/agent.yaml '$(DESTDIR)$(SYSCONFDIR)/driftless/agent.yaml'; \
	fi
	@echo "edit $(SYSCONFDIR)/driftless/agent.yaml, then: systemctl daemon-reload && systemctl enable --now driftless"

clean:
	rm -rf $(BIN) $(DIST)
