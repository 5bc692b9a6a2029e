#!/usr/bin/env bash
# tests/bench/compare.sh: midge against Debian's mosquitto, scenario by scenario.
#
# For each scenario and each of --reps repetitions it runs midge, then
# mosquitto (A B A B ...: slow drifts of the machine hit both alike), each a
# fresh broker on core 0 with midge_bench on core 1, and prints the medians:
# deliveries (or connections) per broker CPU-second, bytes of broker RSS per
# idle connection, p99 latency of the open-loop runs, with the ratio
# midge/mosquitto and the lost/duplicate/out-of-order totals. Per-CPU-second
# figures are the ones to compare: wall-clock rates depend on what else runs.
#
# A benchmark, not a test: nothing in `make check` runs it. Run it from
# anywhere after `make midge midge_bench`.
#
#   tests/bench/compare.sh [--reps N] [--only fanin-q0,pairs-q1,...] [--quick] [--persist]
#
# Broker settings: see tests/bench/lib.sh (one worker, no persistence, no
# logging, default queue and in-flight limits for both).
set -euo pipefail

# shellcheck source=tests/bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPS=5
ONLY=
QUICK=0
PERSIST=0

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
	echo "Scenarios: fanin-q0 fanout-q0 pairs-q1 fanin-q1 pairs-q2 connect idle idle-sub"
	echo "           lat-q0 lat-q1 (and persist-q1 with --persist)"
}

while [ $# -gt 0 ]; do
	case $1 in
	--reps) REPS=$2; shift 2 ;;
	--reps=*) REPS=${1#*=}; shift ;;
	--only) ONLY=$2; shift 2 ;;
	--only=*) ONLY=${1#*=}; shift ;;
	--quick) QUICK=1; shift ;;
	--persist) PERSIST=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) say "unknown option $1"; usage >&2; exit 1 ;;
	esac
done
case $REPS in
'' | *[!0-9]* | 0) say "--reps needs a positive number"; exit 1 ;;
esac

# scale FULL QUICK: a count for this run.
scale() { if [ $QUICK -eq 1 ]; then echo "$2"; else echo "$1"; fi; }

# The matrix: NAME|METRIC|midge_bench arguments. METRIC is the JSON key the
# table compares (higher is better, except rss_per_conn and lat_p99_us).
SCENARIOS=(
	"fanin-q0|delivered_per_cpu_s|fanin --publishers 100 -q 0 -n $(scale 2000000 300000)"
	"fanout-q0|delivered_per_cpu_s|fanout --subscribers 1000 -q 0 -n $(scale 2000 300)"
	"pairs-q1|delivered_per_cpu_s|pairs --pairs 500 -q 1 -n $(scale 300000 50000)"
	"fanin-q1|delivered_per_cpu_s|fanin --publishers 100 -q 1 -n $(scale 500000 100000)"
	"pairs-q2|delivered_per_cpu_s|pairs --pairs 500 -q 2 --window 20 -n $(scale 200000 30000)"
	"connect|connections_per_cpu_s|connect --connections 10000 --concurrency 100"
	"idle|rss_per_conn|idle --connections $(scale 10000 10000) --concurrency 100"
	"idle-sub|rss_per_conn|idle --connections $(scale 10000 10000) --concurrency 100 --subscribe"
	"lat-q0|lat_p99_us|pairs --pairs 100 --rate 10000 -q 0 -n $(scale 100000 30000)"
	"lat-q1|lat_p99_us|pairs --pairs 100 --rate 10000 -q 1 -n $(scale 100000 30000)"
)
[ $PERSIST -eq 0 ] || SCENARIOS+=(
	"persist-q1|delivered_per_cpu_s|pairs --pairs 500 -q 1 --persistent-sub -n $(scale 200000 30000)")

selected() {
	[ -z "$ONLY" ] && return 0
	case ",$ONLY," in *",$1,"*) return 0 ;; esac
	return 1
}

lib_setup
RESULTS=$WORK/results
: > "$RESULTS"
DURATION=$(scale 60 30)

printf '%s vs %s; %s CPUs (brokers on core %s, midge_bench on core %s); %s repetitions%s\n' \
	"$("$MIDGE_BIN" --version 2>/dev/null | head -n 1)" \
	"$("$MOSQUITTO_BIN" -h 2>/dev/null | head -n 1)" "$(nproc)" "$BROKER_CPU" "$BENCH_CPU" \
	"$REPS" "$([ $QUICK -eq 0 ] || echo ', --quick counts')"

for row in "${SCENARIOS[@]}"; do
	IFS='|' read -r name metric args <<< "$row"
	selected "$name" || continue
	mode=
	[ "$name" != persist-q1 ] || mode=persist
	for rep in $(seq "$REPS"); do
		for broker in midge mosquitto; do
			say "$name rep $rep/$REPS: $broker: midge_bench $args"
			broker_start "$broker" "$mode"
			# shellcheck disable=SC2086 # $args is a list of options
			json=$(bench $args --duration "$DURATION" --timeout 10 --drain 20)
			broker_stop
			printf '%s\t%s\t%s\t%s\n' "$name" "$metric" "$broker" "$json" >> "$RESULTS"
		done
	done
done

python3 - "$RESULTS" <<'EOF'
import json, statistics, sys

LOWER_BETTER = {"rss_per_conn", "lat_p99_us"}
UNITS = {"delivered_per_cpu_s": "msgs/broker CPU-s", "connections_per_cpu_s": "conns/broker CPU-s",
         "rss_per_conn": "RSS bytes/conn", "lat_p99_us": "p99 latency us"}
runs = {}
order = []
for line in open(sys.argv[1]):
    name, metric, broker, js = line.rstrip("\n").split("\t", 3)
    if name not in runs:
        order.append(name)
        runs[name] = {"metric": metric, "midge": [], "mosquitto": []}
    runs[name][broker].append(json.loads(js))

def measured(r):
    return r.get("ok") or (r.get("delivered") or 0) > 0 and r.get("broker_cpu_s") is not None


def med(rs, key):
    # A run that lost messages still measured what the broker did (mosquitto
    # drops QoS 1/2 past its queue limit); runs that broke off measured nothing.
    vals = [r[key] for r in rs if measured(r) and r.get(key) is not None]
    return statistics.median(vals) if vals else None

def fmt(v):
    if v is None:
        return "-"
    return "%.0f" % v if abs(v) >= 100 else "%.1f" % v

def errs(rs):
    t = [sum(r.get(k) or 0 for r in rs) for k in ("lost", "duplicates", "reordered")]
    failed = sum(1 for r in rs if not measured(r))
    return "%d/%d/%d" % tuple(t) + (" %dF" % failed if failed else "")

print()
print("%-11s %-19s %12s %12s %8s  %-14s %-14s %s" % (
    "scenario", "metric", "midge", "mosquitto", "ratio", "midge l/d/r", "mosq l/d/r", "wall msgs/s or conns/s midge, mosquitto"))
for name in order:
    r = runs[name]
    m, q = med(r["midge"], r["metric"]), med(r["mosquitto"], r["metric"])
    ratio = "%.2f" % (m / q) if m is not None and q else "-"
    if r["metric"] in LOWER_BETTER and ratio != "-":
        ratio += "*"
    wall = {"delivered_per_cpu_s": "delivered_per_s", "connections_per_cpu_s": "connections_per_s",
            "lat_p99_us": "lat_p50_us"}.get(r["metric"])
    extra = ""
    if wall:
        extra = "%s, %s" % (fmt(med(r["midge"], wall)), fmt(med(r["mosquitto"], wall)))
        if r["metric"] == "lat_p99_us":
            extra = "p50 us: " + extra
    print("%-11s %-19s %12s %12s %8s  %-14s %-14s %s" % (
        name, UNITS[r["metric"]], fmt(m), fmt(q), ratio, errs(r["midge"]), errs(r["mosquitto"]), extra))
print()
print("Medians over the repetitions; ratio = midge/mosquitto (* lower is better there,")
print("else higher is). l/d/r: lost/duplicate/out-of-order messages summed over the")
print("repetitions (QoS 0 loss is allowed; QoS 1/2 loss is a broker dropping messages);")
print("nF: runs that broke off, left out of the medians.")
EOF
