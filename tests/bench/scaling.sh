#!/usr/bin/env bash
# tests/bench/scaling.sh: does midge use more cores with `workers: 2`?
#
# Runs the same loads against midge with one worker and with two, unpinned
# (broker and midge_bench share every core), alternately 1 2 1 2 for --reps
# repetitions, and prints medians of delivered messages per wall second, the
# cores the broker kept busy (its CPU seconds / wall seconds) and the
# generator's share. On a small machine the generator competes for the same
# cores, so two loads are run:
#
#   lua:   a Lua ACL check on every PUBLISH (plugins/lua): the broker does
#          much more work per message than midge_bench, which is then not
#          the limit, and a second worker should raise throughput;
#   plain: no plugin: midge_bench needs about as much CPU as the broker, and
#          its own core use shows when it, not the broker, is the limit.
#
# A benchmark, not a test: nothing in `make check` runs it.
#
#   tests/bench/scaling.sh [--reps N] [--quick]
set -euo pipefail

# shellcheck source=tests/bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REPS=3
QUICK=0
while [ $# -gt 0 ]; do
	case $1 in
	--reps) REPS=$2; shift 2 ;;
	--quick) QUICK=1; shift ;;
	-h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	*) say "unknown option $1"; exit 1 ;;
	esac
done
MSGS=$([ $QUICK -eq 1 ] && echo 200000 || echo 1000000)
LUA_SO=${MIDGE_LUA_PLUGIN:-$ROOT/plugins/lua/.libs/lua.so}
[ -f "$LUA_SO" ] || { say "$LUA_SO not found: build the Lua plugin (make)"; exit 1; }

# Unpinned: every core for both.
ALL_CPUS=0-$(($(nproc) - 1))
BROKER_CPU=$ALL_CPUS
BENCH_CPU=$ALL_CPUS
lib_setup

cat > "$WORK/acl.lua" <<'EOF'
-- Work per PUBLISH that a real policy might do: a few topic checks.
function auth_on_publish(client, msg)
  local ok = midge.topic_matches("bench/#", msg.topic)
  for _ = 1, 20 do ok = ok and midge.topic_matches("bench/+/#", msg.topic) end
  return ok
end
EOF
chmod 644 "$WORK/acl.lua"

# start WORKERS LOAD: a fresh midge; sets BROKER_PID and BROKER_PORT.
start() {
	local conf=$WORK/midge-$1-$2.yaml
	BROKER_PORT=$(free_port)
	{
		echo "listeners: [{port: $BROKER_PORT, bind_address: 127.0.0.1}]"
		echo "allow_anonymous: true"
		echo "workers: $1"
		echo "log_dest: none"
		echo "persistence: false"
		if [ "$2" = lua ]; then
			echo "plugins: [{path: $LUA_SO, options: {scripts: [$WORK/acl.lua]}}]"
		fi
		user_line yaml
	} > "$conf"
	"$MIDGE_BIN" -c "$conf" > "$WORK/midge.log" 2>&1 &
	BROKER_PID=$!
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null && return 0
		kill -0 "$BROKER_PID" 2>/dev/null || break
		sleep 0.1
	done
	say "midge did not start:"; cat "$WORK/midge.log" >&2; exit 1
}

RESULTS=$WORK/results
: > "$RESULTS"
printf '%s; %s CPUs, broker and midge_bench unpinned; %s repetitions\n' \
	"$("$MIDGE_BIN" --version 2>/dev/null | head -n 1)" "$(nproc)" "$REPS"
for load in lua plain; do
	for rep in $(seq "$REPS"); do
		for workers in 1 2; do
			say "$load rep $rep/$REPS: workers $workers"
			start "$workers" "$load"
			json=$(bench pairs --pairs 100 --window 500 -q 0 -n "$MSGS" --duration 60)
			broker_stop
			printf '%s\t%s\t%s\n' "$load" "$workers" "$json" >> "$RESULTS"
		done
	done
done

python3 - "$RESULTS" <<'EOF'
import json, statistics, sys

rows = {}
for line in open(sys.argv[1]):
    load, workers, js = line.rstrip("\n").split("\t", 2)
    rows.setdefault((load, workers), []).append(json.loads(js))

def med(rs, f):
    vals = [f(r) for r in rs if r.get("ok") and r.get("wall_s")]
    return statistics.median(vals) if vals else float("nan")

print()
print("%-6s %-8s %14s %14s %16s" % ("load", "workers", "delivered/s", "broker cores", "midge_bench cores"))
for load in ("lua", "plain"):
    base = None
    for workers in ("1", "2"):
        rs = rows.get((load, workers), [])
        rate = med(rs, lambda r: r["delivered_per_s"])
        cores = med(rs, lambda r: r["broker_cpu_s"] / r["wall_s"])
        gen = med(rs, lambda r: r["bench_cpu_s"] / r["wall_s"])
        gain = "" if base is None else "  x%.2f" % (rate / base)
        base = base or rate
        print("%-6s %-8s %14.0f %14.2f %16.2f%s" % (load, workers, rate, cores, gen, gain))
print()
print("Medians; cores = CPU seconds / wall seconds. Where midge_bench's cores")
print("approach what is left of the machine, the generator is the limit.")
EOF
