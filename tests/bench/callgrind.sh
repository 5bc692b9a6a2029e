#!/usr/bin/env bash
# tests/bench/callgrind.sh: instructions per delivered message, midge against
# mosquitto, counted by valgrind's callgrind (total Ir): a figure that does
# not depend on what else the machine runs.
#
# Each load runs twice on a fresh broker under callgrind, with SMALL and then
# LARGE messages; the difference of the two totals divided by the difference
# of the deliveries is the cost of one more delivered message, with start-up,
# connecting, subscribing and shutting down cancelled out.
#
#   tests/bench/callgrind.sh [--small N] [--large N]      (default 10000, 50000)
#
# Loads: fan-in QoS 0 (100 publishers -> 1 subscriber) and pairs QoS 1
# (100 publisher/subscriber pairs). A benchmark, not a test; slow (minutes).
set -euo pipefail

# shellcheck source=tests/bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SMALL=10000
LARGE=50000
while [ $# -gt 0 ]; do
	case $1 in
	--small) SMALL=$2; shift 2 ;;
	--large) LARGE=$2; shift 2 ;;
	-h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	*) say "unknown option $1"; exit 1 ;;
	esac
done
command -v valgrind >/dev/null || { say "valgrind is needed (apt-get install valgrind)"; exit 1; }

lib_setup
# Under valgrind a broker starts, answers and stops some 50 times slower.
WAIT_S=60
STOP_S=120

LOADS=(
	"fanin-q0|fanin --publishers 100 -q 0"
	"pairs-q1|pairs --pairs 100 -q 1"
)

# measure BROKER ARGS N: prints "IR DELIVERED" of one run of N messages.
measure() {
	local broker=$1 args=$2 n=$3 out json ir delivered
	out=$WORK/callgrind.out
	rm -f "$out"
	broker_start "$broker" "" valgrind --tool=callgrind --callgrind-out-file="$out" -q
	# shellcheck disable=SC2086 # $args is a list of options
	json=$(bench $args -n "$n" --duration 600 --timeout 60 --drain 120)
	broker_stop
	delivered=$(python3 -c 'import json, sys
d = json.loads(sys.argv[1])
print(d["delivered"] if d.get("ok") else "FAILED")' "$json")
	ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$out" 2>/dev/null || true)
	[ -n "$ir" ] || ir=FAILED
	echo "$ir $delivered"
}

printf '%s vs %s; callgrind, %s and %s messages per load\n\n' \
	"$("$MIDGE_BIN" --version 2>/dev/null | head -n 1)" \
	"$("$MOSQUITTO_BIN" -h 2>/dev/null | head -n 1)" "$SMALL" "$LARGE"
printf '%-10s %18s %18s %8s\n' load "midge Ir/msg" "mosquitto Ir/msg" ratio
for row in "${LOADS[@]}"; do
	IFS='|' read -r name args <<< "$row"
	declare -A per=()
	for broker in midge mosquitto; do
		say "$name: $broker, $SMALL then $LARGE messages under callgrind"
		read -r ir1 d1 <<< "$(measure "$broker" "$args" "$SMALL")"
		read -r ir2 d2 <<< "$(measure "$broker" "$args" "$LARGE")"
		say "  Ir $ir1 for $d1 deliveries, $ir2 for $d2"
		per[$broker]=$(python3 -c 'import sys
try:
    ir1, d1, ir2, d2 = map(int, sys.argv[1:])
    print("%.0f" % ((ir2 - ir1) / (d2 - d1)) if d2 > d1 else "-")
except ValueError:
    print("-")' "$ir1" "$d1" "$ir2" "$d2")
	done
	printf '%-10s %18s %18s %8s\n' "$name" "${per[midge]}" "${per[mosquitto]}" \
		"$(python3 -c 'import sys
try:
    print("%.2f" % (float(sys.argv[1]) / float(sys.argv[2])))
except (ValueError, ZeroDivisionError):
    print("-")' "${per[midge]}" "${per[mosquitto]}")"
	unset per
done
echo
echo "Ir/msg: instructions the broker executed per additional delivered message"
echo "(difference of a $LARGE- and a $SMALL-message run); ratio midge/mosquitto, lower is better."
