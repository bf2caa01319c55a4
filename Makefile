# Strata build targets. `make run` starts the embedded server, `make test` runs every test.
GO ?= go
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
STATICCHECK_VERSION := v0.8.2
VERSITYGW_VERSION := v1.8.0
GOBIN ?= $(shell $(GO) env GOPATH)/bin
# VERSION is the build a node reports (internal/buildinfo, `strata cluster status`); the
# go command's own VCS stamp is off where GOFLAGS has -buildvcs=false.
VERSION ?= $(shell git describe --always --dirty 2>/dev/null)
VERSION_LDFLAGS := -X github.com/strata-mail/strata/internal/buildinfo.stamped=$(VERSION)

.PHONY: build run test test-go test-helm jepsen proto proto-check lint fuzz fuzz-build fuzz-run bench e2e tools tools-s3 image \
	cluster-images cluster-up cluster-down cluster-test bench-compare-cycle bench-cluster-cycle \
	bench-populate-bigmailbox bench-populate-bigmailbox-fast bench-bigmailbox-rounds

build:
	$(GO) build -ldflags='$(VERSION_LDFLAGS)' -o bin/strata ./cmd/strata

# ARGS are passed to `strata serve`, e.g. make run ARGS='--no-demo --data /tmp/strata'.
ARGS ?=
run: build
	./bin/strata serve $(ARGS)

# Fuzzing budgets are execution counts, not durations: a -fuzztime duration can end a clean
# run with "context deadline exceeded" when it expires while the coordinator is busy.
FUZZ_PARSER_EXECS ?= 400000x
FUZZ_MESSAGE_EXECS ?= 40000x
FUZZ_SESSION_EXECS ?= 20x
FUZZ_INFLATE_EXECS ?= 100000x
FUZZ_OUTBOUND_EXECS ?= 100000x
FUZZ_HISTORY_EXECS ?= 50000x
FUZZ_SIEVE_EXECS ?= 100000x
FUZZ_SPAM_EXECS ?= 50000x
FUZZ_LDAP_EXECS ?= 20000x

# The fuzz targets' instrumented test binaries build at the lowest CPU priority while the Go
# tests run (they take only the CPU the tests leave idle: the e2e tests mostly wait on
# processes); the fuzzing itself runs after the tests and the chart's render tests.
test: tools-s3
	@mkdir -p bin; nice -n 19 $(MAKE) --no-print-directory fuzz-build >bin/fuzz-build.log 2>&1 & build=$$!; \
	status=0; $(MAKE) --no-print-directory test-go || status=$$?; \
	if ! wait $$build; then echo "--- fuzz-build FAILED" >&2; cat bin/fuzz-build.log >&2; status=1; fi; \
	exit $$status
	$(MAKE) test-helm
	$(MAKE) fuzz-run

# The Go tests of the main module (unit, real-socket, crash, cluster and e2e).
test-go: tools-s3
	$(GO) test -count=1 -timeout 60m ./...

# Render tests of the Helm chart (deploy/helm/strata), in their own Go module so that the
# Helm SDK and the k8s.io modules stay out of the strata binary's dependencies.
test-helm:
	cd deploy/helm && $(GO) test -count=1 -timeout 20m ./...

# The long consistency run (issue 13): SEEDS seeded workloads of DURATION each through a real
# cluster under faults, checked by jepsen/checker; every seed's history goes to bin/jepsen/
# and the report of them all to docs/jepsen.md. JOBS test processes run the seeds side by
# side (each its own cluster; JOBS=2 finishes 100 seeds of 60 s in about 1.5 h on 2 cores,
# JOBS=1 in about 2.5 h); the report is then made from the saved histories by
# jepsen/checker's TestRecheck. `make test` runs the short one (TestJepsen's defaults).
SEEDS ?= 100
FIRST_SEED ?= 1
DURATION ?= 60s
JOBS ?= 1
JEPSEN_FAULTS ?=
jepsen: tools-s3
	rm -rf bin/jepsen && mkdir -p bin/jepsen
	$(GO) test -c -o bin/jepsen/e2e.test ./e2e
	set -e; per=$$(( ($(SEEDS) + $(JOBS) - 1) / $(JOBS) )); pids=""; \
	for j in $$(seq 0 $$(( $(JOBS) - 1 ))); do \
		first=$$(( $(FIRST_SEED) + j * per )); n=$$(( $(SEEDS) - j * per )); [ $$n -gt $$per ] && n=$$per; \
		[ $$n -gt 0 ] || continue; \
		(cd e2e && ../bin/jepsen/e2e.test -test.count=1 -test.timeout=0 -test.v -test.run '^TestJepsen$$' \
			-jepsen.seeds=$$n -jepsen.first-seed=$$first -jepsen.duration=$(DURATION) \
			-jepsen.faults=$(JEPSEN_FAULTS) -jepsen.histories=$(CURDIR)/bin/jepsen \
			> $(CURDIR)/bin/jepsen/job-$$j.log 2>&1) & pids="$$pids $$!"; \
	done; \
	status=0; for p in $$pids; do wait $$p || status=1; done; \
	grep -h -e '--- FAIL' -e 'jepsen_test.go.*anomalies' bin/jepsen/job-*.log || true; \
	$(GO) test -count=1 -timeout 0 -run '^TestRecheck$$' ./jepsen/checker -args \
		-history '$(CURDIR)/bin/jepsen/jepsen-seed-*.jsonl' -report $(CURDIR)/docs/jepsen.md \
		-report-title 'Consistency under faults: $(SEEDS) seeds of $(DURATION)' \
		-report-preface "Made by \`make jepsen SEEDS=$(SEEDS) FIRST_SEED=$(FIRST_SEED) DURATION=$(DURATION) JOBS=$(JOBS) JEPSEN_FAULTS=$(JEPSEN_FAULTS)\` at commit $$(git rev-parse --short HEAD), finished $$(date -u '+%Y-%m-%d %H:%M UTC') on $$(nproc) cores (load average $$(cut -d' ' -f1-3 /proc/loadavg) at the end). The logs of the test processes are in bin/jepsen/job-*.log, every seed's history in bin/jepsen/ (\`go test ./jepsen/checker -run TestRecheck -args -history FILE\` checks one again)."; \
	exit $$status

# The fuzz targets, PACKAGE:TARGET:BUDGET. Each runs for its execution budget (the seeds run in
# every `go test`).
FUZZ_TARGETS := \
	frontend/imap/imapwire:FuzzParseCommand:$(FUZZ_PARSER_EXECS) \
	frontend/message:FuzzParse:$(FUZZ_MESSAGE_EXECS) \
	frontend/imap:FuzzSequences:$(FUZZ_SESSION_EXECS) \
	frontend/imap/inflate:FuzzReader:$(FUZZ_INFLATE_EXECS) \
	frontend/outbound:FuzzBuild:$(FUZZ_OUTBOUND_EXECS) \
	jepsen/history:FuzzLoad:$(FUZZ_HISTORY_EXECS) \
	sieve:FuzzCompile:$(FUZZ_SIEVE_EXECS) \
	frontend/managesieve/sievewire:FuzzReadCommand:$(FUZZ_SIEVE_EXECS) \
	frontend/lmtp:FuzzSpamVerdict:$(FUZZ_SPAM_EXECS) \
	frontend/ldapauth:FuzzLoginEscaping:$(FUZZ_LDAP_EXECS)
FUZZ_BIN := bin/fuzz
# fuzz_each runs its argument, a shell command, once per target with $$pkg, $$fn and $$budget set.
fuzz_each = set -e; for t in $(FUZZ_TARGETS); do \
	pkg=$${t%%:*}; rest=$${t\#*:}; fn=$${rest%%:*}; budget=$${rest\#*:}; $(1); done

# `go test -fuzz` in two steps: fuzz-build compiles every target's test binary with the
# coverage instrumentation fuzzing needs (what `go test -fuzz` would build) into bin/fuzz,
# fuzz-run runs them as `go test` does, in the package's directory with the go command's fuzz
# cache. .ci/run builds while the tests run, and fuzzes beside the compose cluster test.
fuzz: fuzz-build
	$(MAKE) --no-print-directory fuzz-run

fuzz-build:
	@mkdir -p $(FUZZ_BIN)
	@$(call fuzz_each,$(GO) test -c -fuzz "^$$fn\$$" -o $(FUZZ_BIN)/$$fn.test ./$$pkg)

fuzz-run:
	@cache=$$($(GO) env GOCACHE)/fuzz; $(call fuzz_each,echo "--- $$fn ($$pkg) $$budget"; \
		(cd $$pkg && $(CURDIR)/$(FUZZ_BIN)/$$fn.test -test.run '^$$' -test.fuzz "^$$fn\$$" \
			-test.fuzztime $$budget -test.fuzzcachedir $$cache -test.paniconexit0 -test.timeout 30m))

tools:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

# The S3 server the tests run (internal/s3test), a process rather than a module dependency.
# Installs only when GOBIN lacks it: a build takes about two minutes. What it installs is the
# static build the compose image copies (cluster-images), so a fresh machine compiles
# versitygw once for both.
tools-s3:
	@test -x $(GOBIN)/versitygw || { $(MAKE) --no-print-directory bin/versitygw-$(VERSITYGW_VERSION)-static && \
		install -D -m 755 bin/versitygw-$(VERSITYGW_VERSION)-static $(GOBIN)/versitygw; }

# Regenerates proto/metadatapb from proto/*.proto with Debian's protoc and the pinned plugins.
proto: tools
	PATH="$(GOBIN):$$PATH" protoc -Iproto \
		--go_out=. --go_opt=module=github.com/strata-mail/strata \
		--go-grpc_out=. --go-grpc_opt=module=github.com/strata-mail/strata \
		proto/*.proto

# Fails when the committed generated code differs from what `make proto` produces.
proto-check: proto
	git diff --exit-code -- proto/

lint:
	gofmt -l $$(git ls-files '*.go') | (! grep .)
	$(GO) vet ./...
	cd deploy/helm && $(GO) vet ./...
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN)/staticcheck ./...
	cd deploy/helm && $(GOBIN)/staticcheck ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Builds the FROM scratch image strata:dev from a static binary.
image:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w $(VERSION_LDFLAGS)' -o bin/strata-static ./cmd/strata
	docker build -f deploy/Dockerfile -t strata:dev .

# IMAP scenarios with `strata bench` (bench/scenario.sh starts and stops the servers on
# 127.0.0.1; reports go to $(BENCH_OUT)). Figures: docs/benchmarks.md.
BIG ?= 1000000
CONNS ?= 10000
TLS ?=
MESSAGES ?= 0
DOVECOT_HIBERNATE ?= 5s
BENCH_DURATION ?= 30s
BENCH_OUT ?= /tmp/strata-bench
# bench-compare: empty RATE runs the mixed step in a closed loop; RATE="400 800" open-loop at
# each of those operations per second (ARRIVALS poisson or uniform).
RATE ?=
ARRIVALS ?= poisson

bench-mixed: build
	OUT=$(BENCH_OUT) DURATION=$(BENCH_DURATION) bench/scenario.sh mixed

bench-bigmailbox: build
	OUT=$(BENCH_OUT) BIG=$(BIG) bench/scenario.sh bigmailbox

# Catch-up after CHANGES changes with QRESYNC/CONDSTORE on a BIG mailbox, Strata and Dovecot.
CHANGES ?= 10
bench-compare-resync: build
	OUT=$(BENCH_OUT) BIG=$(BIG) CHANGES=$(CHANGES) bench/scenario.sh compare-resync

# CONNS connections in IDLE; TLS=1 over IMAPS, MESSAGES=n messages in every INBOX.
bench-idle: build
	OUT=$(BENCH_OUT) CONNS=$(CONNS) TLS=$(TLS) MESSAGES=$(MESSAGES) bench/scenario.sh idle

bench-append: build
	OUT=$(BENCH_OUT) DURATION=$(BENCH_DURATION) bench/scenario.sh append

bench-compare: build
	OUT=$(BENCH_OUT) DURATION=$(BENCH_DURATION) RATE="$(RATE)" ARRIVALS=$(ARRIVALS) bench/scenario.sh compare

# The APPEND steps of bench-compare alone (APPENDERS client counts, default "1 64");
# CPU_PROFILE=FILE profiles Strata's APPEND steps.
APPENDERS ?= 1 64
bench-compare-append: build
	OUT=$(BENCH_OUT) DURATION=$(BENCH_DURATION) APPENDERS="$(APPENDERS)" CPU_PROFILE=$(CPU_PROFILE) bench/scenario.sh compare-append

# Scenarios (b) and (c) against Strata and Dovecot in one run each, with the ratios.
bench-compare-bigmailbox: build
	OUT=$(BENCH_OUT) BIG=$(BIG) bench/scenario.sh compare-bigmailbox

# The same two servers filled once and kept in BIG_DIR (search index on), then the rounds
# re-run on them with bin/strata (docs/benchmarks.md "bench-bigmailbox kept and re-run").
BIG_DIR ?= /work/big1m
bench-populate-bigmailbox: build
	OUT=$(BENCH_OUT) BIG=$(BIG) BIG_CHUNK=100000 BIG_DIR=$(BIG_DIR) STRATA_FLAGS=--search-index bench/scenario.sh populate-bigmailbox

bench-populate-bigmailbox-fast: build
	OUT=$(BENCH_OUT) BIG=$(BIG) BIG_CHUNK=100000 BIG_DIR=$(BIG_DIR) STRATA_FLAGS=--search-index nice -n 10 bench/scenario.sh populate-bigmailbox-fast

bench-bigmailbox-rounds: build
	OUT=$(BENCH_OUT) BIG_DIR=$(BIG_DIR) ROUNDS=3 bench/scenario.sh bigmailbox-rounds

bench-compare-idle: build
	OUT=$(BENCH_OUT) CONNS=$(CONNS) DOVECOT_HIBERNATE=$(DOVECOT_HIBERNATE) bench/scenario.sh compare-idle

# The compose cluster of deploy/compose.yaml (etcd, versitygw, 3 metadata nodes, 2 frontends
# with IMAP on 127.0.0.1:11431 and :11432), every image FROM scratch with a static binary
# built here. The etcd and versitygw binaries are kept in bin/ under their version.
ETCD_VERSION := $(shell awk '$$1 == "go.etcd.io/etcd/server/v3" { print $$2 }' go.mod)

bin/etcd-$(ETCD_VERSION)-static: deploy/etcd/main.go
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $@ ./deploy/etcd

bin/versitygw-$(VERSITYGW_VERSION)-static:
	mkdir -p bin && tmp=$$(mktemp -d) && CGO_ENABLED=0 GOBIN=$$tmp $(GO) install -trimpath -ldflags='-s -w' \
		github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION) && \
		mv $$tmp/versitygw $@ && rmdir $$tmp

cluster-images: image bin/etcd-$(ETCD_VERSION)-static bin/versitygw-$(VERSITYGW_VERSION)-static
	ln -f bin/etcd-$(ETCD_VERSION)-static bin/etcd-static
	ln -f bin/versitygw-$(VERSITYGW_VERSION)-static bin/versitygw-static
	docker build -q -f deploy/etcd/Dockerfile -t strata-etcd:dev bin
	docker build -q -f deploy/versitygw/Dockerfile -t strata-versitygw:dev bin

# Starts the cluster, creates tenant example with demo@example.com (password demo) and waits
# until both frontends answer IMAP.
cluster-up: cluster-images
	deploy/cluster.sh up

# Removes the cluster's containers, network and volumes.
cluster-down:
	deploy/cluster.sh down

# Brings the cluster up, runs an IMAP session through each frontend, SIGKILLs the Raft
# leader's container, checks the same sessions still APPEND and FETCH, and tears it down.
cluster-test: cluster-images
	deploy/cluster.sh test

# LMTP delivery, Strata then Dovecot LMTP + Pigeonhole (maildir), 1 and 16 connections,
# 1 and 10 recipients; SIEVE=FILE gives every user that script in both servers.
bench-compare-lmtp: build
	OUT=$(BENCH_OUT) DURATION=$(BENCH_DURATION) SIEVE=$(SIEVE) CPU_PROFILE=$(CPU_PROFILE) bench/scenario.sh compare-lmtp

bench-lmtp: build
	OUT=$(BENCH_OUT) DURATION=$(BENCH_DURATION) SIEVE=$(SIEVE) CPU_PROFILE=$(CPU_PROFILE) bench/scenario.sh lmtp

# A login per session (each client repeats connect, LOGIN, SELECT, FETCH, STORE, APPEND,
# UID STORE \Deleted + UID EXPUNGE, LOGOUT; `strata bench cycle`), CYCLE_CLIENTS clients over
# 16 users populated as bench-compare does, against `strata serve` and Dovecot in one run;
# bench-cluster-cycle against a 3-node cluster with S3 on this machine (etcd, versitygw,
# three `strata metadata`, one `strata frontend`) and Dovecot. CPU_PROFILE=FILE profiles
# Strata's cycle run.
CYCLE_CLIENTS ?= 50
bench-compare-cycle: build
	OUT=$(BENCH_OUT) DURATION=$(BENCH_DURATION) CLIENTS=$(CYCLE_CLIENTS) CPU_PROFILE=$(CPU_PROFILE) bench/scenario.sh compare-cycle

bench-cluster-cycle: build tools-s3 bin/etcd-$(ETCD_VERSION)-static
	OUT=$(BENCH_OUT) DURATION=$(BENCH_DURATION) CLIENTS=$(CYCLE_CLIENTS) CPU_PROFILE=$(CPU_PROFILE) \
		ETCD=bin/etcd-$(ETCD_VERSION)-static VERSITYGW=$(GOBIN)/versitygw bench/scenario.sh cluster-cycle
