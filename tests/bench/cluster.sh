#!/usr/bin/env bash
# tests/bench/cluster.sh: cross-node throughput and latency of a midge cluster.
#
# Starts two nats-servers (JetStream on) routed into one NATS cluster, two midge
# nodes (A on the first, B on the second) and a midge without a cluster section,
# all on free loopback ports, then runs midge_bench three ways: on the broker
# alone (the baseline), on node A only (what being in a cluster costs a node:
# QoS 1 acknowledgements wait for JetStream), and with publishers on A and
# subscribers on B (every message crosses NATS: A -> nats0 -> nats1 -> B), for
# pairs and fan-out at QoS 0 and 1. Prints one line per run: delivered/s and
# latency p50/p99. Everything shares this machine's cores, so the figures show
# what the cluster costs here, not what separate machines would do.
#
#   tests/bench/cluster.sh              # build first: make -j2 midge midge_bench
#   N=50000 tests/bench/cluster.sh      # messages per run (default 20000)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MIDGE_BIN=${MIDGE_BIN:-$ROOT/midge}
MIDGE_BENCH_BIN=${MIDGE_BENCH_BIN:-$ROOT/midge_bench}
NATS_BIN=${NATS_BIN:-$(command -v nats-server || echo /usr/sbin/nats-server)}
N=${N:-20000}

say() { printf '%s\n' "$*" >&2; }
for f in "$MIDGE_BIN" "$MIDGE_BENCH_BIN" "$NATS_BIN"; do
	[ -x "$f" ] || { say "$f not found (make -j2 midge midge_bench; apt-get install nats-server)"; exit 1; }
done
command -v python3 >/dev/null || { say "python3 is needed"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/midge-cluster-bench.XXXXXX")
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mapfile -t P < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(7)]
for s in ss:
    s.bind(("127.0.0.1", 0))
for s in ss:
    print(s.getsockname()[1])')

wait_port() {
	local i
	for ((i = 0; i < 100; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	say "nothing listens on port $1; the logs' last lines:"
	tail -n 5 "$WORK"/*.log >&2
	exit 1
}

# nats0: client P0, route P1; nats1: client P2, route P3; node A: P4; node B: P5.
"$NATS_BIN" -a 127.0.0.1 -p "${P[0]}" -n nats0 --cluster_name bench --cluster "nats://127.0.0.1:${P[1]}" \
	--routes "nats://127.0.0.1:${P[3]}" -js -sd "$WORK/nats0-js" > "$WORK/nats0.log" 2>&1 &
PIDS+=($!)
"$NATS_BIN" -a 127.0.0.1 -p "${P[2]}" -n nats1 --cluster_name bench --cluster "nats://127.0.0.1:${P[3]}" \
	--routes "nats://127.0.0.1:${P[1]}" -js -sd "$WORK/nats1-js" > "$WORK/nats1.log" 2>&1 &
PIDS+=($!)
wait_port "${P[0]}"
wait_port "${P[2]}"
sleep 1 # the route

node() { # name mqtt-port [nats-port: none for a broker alone]
	cat > "$WORK/$1.yaml" <<YAML
persistence: false
max_queued_messages: 10000
listeners:
  - {port: $2, bind_address: 127.0.0.1, allow_anonymous: true}
YAML
	[ -n "${3:-}" ] && printf 'cluster:\n  node_name: %s\n  nats_servers: [nats://127.0.0.1:%s]\n' \
		"$1" "$3" >> "$WORK/$1.yaml"
	[ "$(id -u)" -eq 0 ] && echo "user: root" >> "$WORK/$1.yaml"
	"$MIDGE_BIN" -c "$WORK/$1.yaml" > "$WORK/$1.log" 2>&1 &
	PIDS+=($!)
	wait_port "$2"
}
node node-a "${P[4]}" "${P[0]}"
node node-b "${P[5]}" "${P[2]}"
node alone "${P[6]}"
# QoS 1/2 messages go through JetStream once its stream is there (a leader is elected first).
for n in node-a node-b; do
	for ((i = 0; i < 300; i++)); do
		grep -q "message stream ready" "$WORK/$n.log" && break
		sleep 0.1
	done
	grep -q "message stream ready" "$WORK/$n.log" || {
		say "$n: no JetStream stream after 30 s; its log's last lines:"
		tail -n 5 "$WORK/$n.log" >&2
		exit 1
	}
done

run() { # label pub-port sub-port args...
	local label=$1 pub=$2 sub=$3 out
	shift 3
	if ! out=$("$MIDGE_BENCH_BIN" "$@" -n "$N" -p "$pub" --sub-port "$sub" --duration 10 --json \
		2>"$WORK/bench.err"); then
		say "$label: midge_bench failed: $(cat "$WORK/bench.err")"
		return 0
	fi
	python3 -c '
import json, sys
r = json.loads(sys.argv[2])
g = lambda k: r.get(k) or 0
print("%-34s %9.0f msgs/s  p50 %8.0f us  p99 %8.0f us  lost %d" % (sys.argv[1],
      g("delivered_per_s"), g("lat_p50_us"), g("lat_p99_us"), g("lost")))' "$label" "$out"
}

printf '%s messages per run: a broker alone; a cluster node (publishers and subscribers on A);\n' "$N"
printf 'across nodes (publishers on A, subscribers on B)\n'
A=${P[4]} B=${P[5]} ALONE=${P[6]}
for q in 0 1; do
	run "pairs x10 QoS $q, alone" "$ALONE" "$ALONE" pairs --pairs 10 -q "$q"
	run "pairs x10 QoS $q, cluster A -> A" "$A" "$A" pairs --pairs 10 -q "$q"
	run "pairs x10 QoS $q, cluster A -> B" "$A" "$B" pairs --pairs 10 -q "$q"
	run "fanout 1 -> 50 QoS $q, alone" "$ALONE" "$ALONE" fanout --subscribers 50 -q "$q"
	run "fanout 1 -> 50 QoS $q, cluster A -> A" "$A" "$A" fanout --subscribers 50 -q "$q"
	run "fanout 1 -> 50 QoS $q, cluster A -> B" "$A" "$B" fanout --subscribers 50 -q "$q"
done
