#!/usr/bin/env bash
# make bench-peers: measures cellwarden beside the tools users would pick
# instead, in one run on this machine (method: docs/benchmarks.md).
#
# Installs the peers from Debian when missing (idempotent), builds
# cellwarden and the harness (bench/cmd/peers), waits up to
# BENCH_LOAD_WAIT seconds (default 0) for the 1-minute load average to
# drop below 1.0, runs every phase, prints the comparison table and writes
# the results into docs/benchmarks.md between its results markers (with
# the plot docs/benchmarks-scale.svg). Arguments go to the harness:
#   bench/peers.sh --quick                    # check the harness (~2 min); docs untouched
#   bench/peers.sh --phases modbus,mqtt       # some phases only; docs untouched
#   bench/peers.sh --phases scale --scale-cells 100000   # one fleet size
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v prometheus-mqtt-exporter >/dev/null 2>&1 || need+=(prometheus-mqtt-exporter)
if [ ${#need[@]} -gt 0 ]; then
	echo "installing from Debian: ${need[*]}"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go build -o "$out/cellwarden" ./cmd/cellwarden
go build -o "$out/peers" ./bench/cmd/peers

wait_s=${BENCH_LOAD_WAIT:-0}
while :; do
	load=$(cut -d' ' -f1 /proc/loadavg)
	if awk -v l="$load" 'BEGIN { exit !(l < 1.0) }' || [ "$wait_s" -le 0 ]; then
		break
	fi
	echo "load average $load: waiting for it to drop below 1.0 (${wait_s}s left)"
	sleep 15
	wait_s=$((wait_s - 15))
done
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"

"$out/peers" --cellwarden "$out/cellwarden" --repo . --out "$out" "$@"

# Only a full run (no arguments) replaces the results in the docs.
if [ $# -eq 0 ]; then
	awk -v res="$out/results.md" '
		/<!-- results:begin -->/ { print; while ((getline line < res) > 0) print line; skip = 1; next }
		/<!-- results:end -->/ { skip = 0 }
		!skip { print }
	' docs/benchmarks.md > "$out/benchmarks.md"
	cp "$out/benchmarks.md" docs/benchmarks.md
	cp "$out/benchmarks-scale.svg" docs/benchmarks-scale.svg
	echo "wrote docs/benchmarks.md and docs/benchmarks-scale.svg"
fi
