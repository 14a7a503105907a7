# anklume — build, test and fuzz targets. Run `make help` for the list.

GO       ?= go
FUZZTIME ?= 30s
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: all build demo test vet fmt-check staticcheck bench bench-e2e bench-cluster bench-scale e2e-setup cluster-up cluster-down cluster-member-stop cluster-member-start fuzz lint clean help

all: build

help:
	@echo "build      static binary in bin/anklume (CGO_ENABLED=0)"
	@echo "demo       init + sync the embedded default example into ./demo (no Incus needed)"
	@echo "test       go vet, gofmt check, go test ./..."
	@echo "bench      benchmarks with allocation counts"
	@echo "e2e-setup  as root (sudo when needed): install and start Incus 6.0 LTS, pool and test image"
	@echo "bench-e2e  live apply benchmarks on the local Incus daemon (after e2e-setup)"
	@echo "bench-cluster live apply on the test cluster vs the single daemon (as root)"
	@echo "bench-scale live benchmark of a 100 x 3 container lab (300 instances, 100 bridges)"
	@echo "            on a daemon of its own (scripts/scale-daemon.sh), removed afterwards"
	@echo "cluster-up  as root: a 3-member Incus test cluster (m1 m2 m3, group lab = m2 m3);"
	@echo "            prints the export lines to use it: eval \"\$$(make -s cluster-up)\""
	@echo "cluster-member-stop M=m3 / cluster-member-start M=m3   stop / restart one member"
	@echo "cluster-down  remove the test cluster and everything on it"
	@echo "fuzz       every fuzz target for FUZZTIME (default 30s) each"
	@echo "lint       go vet, gofmt check and staticcheck (pinned, run by make test too)"
	@echo "clean      remove bin/"

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/anklume ./cmd/anklume

vet:
	$(GO) vet ./...

fmt-check:
	@out="$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

# -p 1: the live tests of several packages (internal/incusx, e2e) share one
# Incus daemon and the host's nftables; running them one package at a time
# keeps them from tripping over each other.
test: vet fmt-check staticcheck
	$(GO) test -p 1 -timeout 60m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The e2e harness: scripts/incus-test-env.sh installs Incus 6.0 LTS and the
# test tools, starts incusd, creates the storage pool and imports the local
# busybox image "anklume-test". It needs root; sudo is used when not root.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

e2e-setup:
	$(SUDO) bash scripts/incus-test-env.sh

# Live apply benchmarks (anklume apply vs the Incus API, no-op apply and its
# request count); they skip without the daemon, so run e2e-setup first.
bench-e2e:
	$(GO) test ./e2e -run '^$$' -bench '^BenchmarkApply$$' -benchtime 1x -timeout 30m -v

# The same infrastructure applied on the test cluster and on the single
# daemon (brings the test cluster up when it is not).
bench-cluster:
	$(GO) test ./e2e -run '^$$' -bench '^BenchmarkClusterApply$$' -benchtime 1x -timeout 30m -v

# Live benchmark of a teacher's lab, 100 domains x 3 containers (300
# instances, 100 bridges in 10.160.0-99.0/24): create vs the Incus API,
# no-op apply (each request timed), status, plan after one change, peak
# RSS. It runs on a standalone daemon of its own (scripts/scale-daemon.sh,
# INCUS_DIR /var/lib/anklume-scale, own network and mount namespace), never
# on the shared one, and removes it afterwards (SCALE_KEEP=1 keeps it;
# ANKLUME_BENCH_DOMAINS=N for a smaller lab). Heavy: about 30 minutes.
bench-scale:
	@$(SUDO) bash scripts/scale-daemon.sh up >/tmp/anklume-scale.env
	@. /tmp/anklume-scale.env && $(GO) test ./e2e -run '^$$' -bench Scale -benchtime 1x -timeout 90m -v; \
	rc=$$?; [ -n "$(SCALE_KEEP)" ] || $(SUDO) bash scripts/scale-daemon.sh down; exit $$rc

# The test cluster (scripts/cluster-up.sh): three incusd, each in its own
# network and mount namespace with its own INCUS_DIR below
# ANKLUME_CLUSTER_DIR (default /var/lib/anklume-cluster), beside the host's
# daemon, which it never touches. cluster-up prints on stdout only the lines
# that point incus and anklume at it: eval "$$(make -s cluster-up)".
M ?=
cluster-up:
	@$(SUDO) bash scripts/cluster-up.sh

cluster-down:
	@$(SUDO) bash scripts/cluster-down.sh

cluster-member-stop:
	@$(SUDO) bash scripts/cluster-member.sh stop "$(M)"

cluster-member-start:
	@$(SUDO) bash scripts/cluster-member.sh start "$(M)"

# Each fuzz target runs alone: `go test -fuzz` accepts one target per package.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "==> $$pkg $$target ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

# staticcheck at a pinned version, fetched through the Go module proxy on
# first use (go run caches the build).
STATICCHECK_VERSION = v0.7.0

staticcheck:
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

lint: vet fmt-check staticcheck

# The main job on the embedded default example, with no set-up: a starter
# infra.yml (anklume init), validated and compiled into the Ansible tree,
# nftables ruleset and Incus preseed (anklume sync), in ./demo.
demo: build
	rm -rf demo && mkdir demo
	cd demo && ../bin/anklume init && ../bin/anklume validate && ../bin/anklume sync

clean:
	rm -rf bin demo
