# cellwarden developer targets. CI runs .ci/run, which uses the same commands.

GO          ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build test test-race bench bench-replay bench-peers lint fmt golden quality robustness fuzz soak

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

# cellwarden beside Prometheus + Alertmanager, mqtt2prometheus and a bare
# goburrow client, in one run (installs the peers from Debian; about 12 min).
# Prints the comparison table and rewrites docs/benchmarks.md.
bench-peers:
	bench/peers.sh

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(STATICCHECK) ./...

fmt:
	gofmt -w .

# Every fuzz target for FUZZTIME each (5m by default; .ci/run: 5s).
FUZZTIME ?= 5m
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz

# The soak test: SOAK_CELLS cells published through mosquitto every
# SOAK_INTERVAL to cellwarden serve for SOAK_DURATION; heap, goroutines
# and every sample accounted for (docs/reliability.md). .ci/run runs a
# 60 s, 10 240-cell version.
SOAK_DURATION ?= 30m
SOAK_CELLS    ?= 100000
SOAK_INTERVAL ?= 10s
soak:
	CELLWARDEN_SOAK_DURATION=$(SOAK_DURATION) CELLWARDEN_SOAK_CELLS=$(SOAK_CELLS) CELLWARDEN_SOAK_INTERVAL=$(SOAK_INTERVAL) \
		$(GO) test -tags integration -count=1 -v -timeout 0 -run '^TestReliabilitySoak$$' ./internal/e2e/

# Rewrites the golden files under testdata/ from the current code.
golden:
	$(GO) test ./... -update

# The detection-quality loop: simulate the scenario suite, replay it with
# cellwarden's rules and with the static BMS baseline, score both and write
# the report.
QUALITY_SEED ?= 1
QUALITY_DIR  ?= $(CURDIR)/.quality
QUALITY_MD   ?= docs/quality.md
quality:
	$(GO) build -o $(QUALITY_DIR)/cellwarden ./cmd/cellwarden
	rm -rf $(QUALITY_DIR)/scenarios
	$(QUALITY_DIR)/cellwarden sim scenarios --out $(QUALITY_DIR)/scenarios --seed $(QUALITY_SEED)
	set -e; args=""; \
	for d in $(QUALITY_DIR)/scenarios/*/; do \
		$(QUALITY_DIR)/cellwarden replay --input $$d/telemetry.csv.gz --inventory $$d/inventory.yaml \
			--alerts-out $$d/alerts.ndjson 2> $$d/replay.log; \
		$(QUALITY_DIR)/cellwarden replay --baseline --input $$d/telemetry.csv.gz --inventory $$d/inventory.yaml \
			--alerts-out $$d/baseline.ndjson 2> $$d/baseline.log; \
		args="$$args --labels $$d/labels.json --alerts $$d/alerts.ndjson --baseline-alerts $$d/baseline.ndjson"; \
	done; \
	$(QUALITY_DIR)/cellwarden score $$args --seed $(QUALITY_SEED) --markdown $(QUALITY_MD)
	@echo "wrote $(QUALITY_MD)"

# Robustness: the scenario suite regenerated with other physics, one change
# at a time (docs/robustness.md: TAG:KEY=VALUE; "std:" is the standard
# physics), replayed with the default rules and scored. Writes
# ROBUSTNESS_DIR/TAG/score.md and prints one line per variant: false alerts
# per 1000 cell-days and by alert name, and the runaway's minimum lead.
ROBUSTNESS_SEED ?= 1
ROBUSTNESS_DIR  ?= $(QUALITY_DIR)/robustness
ROBUSTNESS_JOBS ?= 2
ROBUSTNESS_VARIANTS ?= std: q1:temp_quantum=1 q05:temp_quantum=0.5 n2:noise_scale=2 n05:noise_scale=0.5 \
	p10:poll_seconds=10 tau:tau_spread=0.4 tau2:tau_scale=2 tau05:tau_scale=0.5 c2:discharge_c=2 j2:joule_scale=2 \
	nb:neighbour_heat=0.3 step:step_faults=true m10:missing_scale=10 hvac6:hvac_step=6 hvac4:hvac_step=4 fast:precursor_speed=2 nosag:no_sag=true \
	v5:volt_quantum=0.005 v10:volt_quantum=0.01 w3:wander_scale=3 o3:offset_scale=3 d4:daily_swing=4 d6:daily_swing=6 \
	hc3:hvac_cycle=3 r3:resist_scale=3 rt2:room_tau_scale=2 s127:sentinel_celsius=127 c6:cells_per_module=6 c24:cells_per_module=24 m3:modules_per_string=3 m16:modules_per_string=16
robustness:
	$(GO) build -o $(ROBUSTNESS_DIR)/cellwarden ./cmd/cellwarden
	@set -e; cw=$(ROBUSTNESS_DIR)/cellwarden; \
	for v in $(ROBUSTNESS_VARIANTS); do \
		tag=$${v%%:*}; phy=$${v#*:}; dir=$(ROBUSTNESS_DIR)/$$tag; \
		rm -rf $$dir; \
		$$cw sim scenarios --out $$dir --seed $(ROBUSTNESS_SEED) $${phy:+--physics $$phy} > /dev/null; \
		ls -d $$dir/*/ | xargs -P $(ROBUSTNESS_JOBS) -I{} sh -c \
			'"$$0" replay --input "$$1/telemetry.csv.gz" --inventory "$$1/inventory.yaml" --alerts-out "$$1/alerts.ndjson" 2> "$$1/replay.log"' $$cw {}; \
		args=""; for d in $$dir/*/; do args="$$args --labels $$d/labels.json --alerts $$d/alerts.ndjson"; done; \
		$$cw score $$args --seed $(ROBUSTNESS_SEED) --markdown $$dir/score.md > /dev/null; \
		printf '%-6s %-20s ' $$tag "$${phy:-standard}"; \
		awk -F' *[|] *' '$$2=="false alerts"{f=$$3} $$2~/^warning per/{w=$$3} $$2~/^critical per/{c=$$3} $$2=="min lead"{l=$$3} \
			$$2~/[(]count[)]$$/ && $$3>0 {sub(/ [(]count[)]/,"",$$2); n=n" "$$2"="$$3} \
			END{printf "false alerts %s (per 1000 cell-days: warning %s, critical %s)%s; runaway min lead %s\n", f, w, c, n, l}' $$dir/score.md; \
	done
