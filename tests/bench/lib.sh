# tests/bench/lib.sh: what compare.sh and callgrind.sh share. Sourced, not run.
#
# Brokers are started fresh, one per measurement, on a free loopback port,
# pinned to core 0 (BROKER_CPU) while midge_bench runs on core 1 (BENCH_CPU),
# so neither steals the other's cycles and per-CPU-second figures mean the same
# thing for both brokers.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MIDGE_BIN=${MIDGE_BIN:-$ROOT/midge}
MIDGE_BENCH_BIN=${MIDGE_BENCH_BIN:-$ROOT/midge_bench}
MOSQUITTO_BIN=${MOSQUITTO_BIN:-/usr/sbin/mosquitto}
BROKER_CPU=${BROKER_CPU:-0}
BENCH_CPU=${BENCH_CPU:-1}

say() { printf '%s\n' "$*" >&2; }

# lib_setup: checks the tools, makes $WORK (removed on exit), installs mosquitto if missing.
lib_setup() {
	local f
	for f in "$MIDGE_BIN" "$MIDGE_BENCH_BIN"; do
		if [ ! -x "$f" ]; then
			say "$f not found: build first (make -j2 midge midge_bench)."
			exit 1
		fi
	done
	if [ ! -x "$MOSQUITTO_BIN" ]; then
		if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
			say "installing mosquitto (apt-get install mosquitto)"
			apt-get install -y -q mosquitto >&2 || { say "cannot install mosquitto"; exit 1; }
		else
			say "$MOSQUITTO_BIN not found: apt-get install mosquitto"
			exit 1
		fi
	fi
	command -v python3 >/dev/null || { say "python3 is needed"; exit 1; }
	command -v taskset >/dev/null || { say "taskset (util-linux) is needed"; exit 1; }
	if [ "$(nproc)" -lt 2 ]; then
		say "Note: fewer than 2 CPUs; broker and generator share one."
		BENCH_CPU=$BROKER_CPU
	fi
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/midge-compare.XXXXXX")
	chmod 755 "$WORK"
	BROKER_PID=
	trap lib_cleanup EXIT
	trap 'exit 130' INT TERM
}

lib_cleanup() {
	broker_stop
	[ -n "${WORK:-}" ] && rm -rf "$WORK"
}

free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# As root the brokers would drop to a user who cannot read our temporary files.
user_line() {
	[ "$(id -u)" -eq 0 ] || return 0
	case $1 in
	yaml) echo "user: root" ;;
	conf) echo "user root" ;;
	esac
}

# midge_conf FILE PORT [persist]: one worker, no persistence (or sync: batch),
# no logging, and otherwise the defaults: max_queued_messages 1000 (a full
# queue slows QoS 1/2 publishers down: backpressure) and max_inflight_messages 20.
midge_conf() {
	{
		echo "listeners: [{port: $2, bind_address: 127.0.0.1}]"
		echo "allow_anonymous: true"
		echo "workers: 1"
		echo "log_dest: none"
		echo "connection_messages: false"
		if [ "${3:-}" = persist ]; then
			mkdir -p "$WORK/midge-store"
			echo "persistence: true"
			echo "persistence_location: $WORK/midge-store"
			echo "persistence_file: midge.db"
			echo "sync: batch"
		else
			echo "persistence: false"
		fi
		user_line yaml
	} > "$1"
}

# mosquitto_conf FILE PORT [persist]: the same for mosquitto 2.0 (single-threaded),
# with its default limits too: max_queued_messages 1000 (past it, it drops
# messages for that subscriber, QoS 1/2 included) and max_inflight_messages 20
# (it closes a publisher with more QoS 2 messages in flight: QoS 2 runs use
# --window 20).
mosquitto_conf() {
	{
		echo "listener $2 127.0.0.1"
		echo "allow_anonymous true"
		echo "log_dest none"
		echo "connection_messages false"
		if [ "${3:-}" = persist ]; then
			mkdir -p "$WORK/mosquitto-store"
			echo "persistence true"
			echo "persistence_location $WORK/mosquitto-store/"
		else
			echo "persistence false"
		fi
		user_line conf
	} > "$1"
}

# broker_start NAME [persist] [WRAPPER...]: a fresh broker NAME (midge or mosquitto)
# on core $BROKER_CPU; sets BROKER_PID and BROKER_PORT. WRAPPER (valgrind ...)
# goes between taskset and the broker. Waits up to WAIT_S s for the port.
broker_start() {
	local name=$1 mode=${2:-} conf
	shift 2 || shift $#
	rm -rf "$WORK/midge-store" "$WORK/mosquitto-store"
	BROKER_PORT=$(free_port)
	if [ "$name" = midge ]; then
		conf=$WORK/midge.yaml
		midge_conf "$conf" "$BROKER_PORT" "$mode"
		"$MIDGE_BIN" -t -c "$conf" > "$WORK/check.log" 2>&1 || {
			say "bad midge configuration:"; cat "$WORK/check.log" >&2; exit 1; }
		taskset -c "$BROKER_CPU" "$@" "$MIDGE_BIN" -c "$conf" > "$WORK/$name.log" 2>&1 &
	else
		conf=$WORK/mosquitto.conf
		mosquitto_conf "$conf" "$BROKER_PORT" "$mode"
		taskset -c "$BROKER_CPU" "$@" "$MOSQUITTO_BIN" -c "$conf" > "$WORK/$name.log" 2>&1 &
	fi
	BROKER_PID=$!
	for _ in $(seq $((${WAIT_S:-10} * 10))); do
		if ! kill -0 "$BROKER_PID" 2>/dev/null; then
			say "$name did not start; its log:"
			tail -n 20 "$WORK/$name.log" >&2
			exit 1
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	say "$name does not accept connections on port $BROKER_PORT; its log:"
	tail -n 20 "$WORK/$name.log" >&2
	exit 1
}

# broker_stop: SIGTERM, then up to STOP_S s (default 10) for it to exit, then SIGKILL.
broker_stop() {
	[ -n "${BROKER_PID:-}" ] || return 0
	kill -TERM "$BROKER_PID" 2>/dev/null || true
	for _ in $(seq $((${STOP_S:-10} * 10))); do
		kill -0 "$BROKER_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$BROKER_PID" 2>/dev/null || true
	wait "$BROKER_PID" 2>/dev/null || true
	BROKER_PID=
}

# bench ARGS...: midge_bench --json on core $BENCH_CPU against the running broker;
# prints its JSON line (a failed run still prints one, with ok false).
bench() {
	local out rc=0
	out=$(taskset -c "$BENCH_CPU" "$MIDGE_BENCH_BIN" "$@" -p "$BROKER_PORT" \
		--pid "$BROKER_PID" --json 2> "$WORK/bench.err") || rc=$?
	if [ -z "$out" ]; then
		out=$(python3 -c 'import json, sys; print(json.dumps({"ok": False, "error": sys.argv[1]}))' \
			"$(head -c 300 "$WORK/bench.err")")
	fi
	[ $rc -eq 0 ] || say "  FAILED (exit $rc): $(head -c 300 "$WORK/bench.err")"
	printf '%s\n' "$out"
}
