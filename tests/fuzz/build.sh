#!/usr/bin/env bash
# tests/fuzz/build.sh [OUTDIR]: builds the libFuzzer targets tests/fuzz/fuzz_*.c
# into OUTDIR (default tests/fuzz/bin) with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer. `make fuzz` runs it from a configured build.
#
# The broker's sources (broker/*.c but main.c) are compiled once with
# -fsanitize=fuzzer-no-link into OUTDIR/obj/libmidge-fuzz.a and recompiled only
# when a source or a header it includes changed; each target links that archive.
#
# config.h comes from MIDGE_CONFIG_H (make passes its own), else from a
# configured tree: the source tree's own (an in-tree configure), then build/config.h
# (scripts/test's build).
# CC (default clang) and FUZZ_JOBS (default: nproc) may be set.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
out=${1:-$here/bin}
cc=${CC:-clang}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}

config_h=${MIDGE_CONFIG_H:-}
if [ -z "$config_h" ]; then
	for f in "$src/config.h" "$src/build/config.h"; do
		if [ -f "$f" ]; then config_h=$f; break; fi
	done
fi
if [ -z "$config_h" ] || [ ! -f "$config_h" ]; then
	echo "build.sh: no config.h: run configure (or scripts/test) first, or set MIDGE_CONFIG_H" >&2
	exit 1
fi
if ! command -v "$cc" >/dev/null 2>&1; then
	echo "build.sh: $cc not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2
	exit 1
fi

obj=$out/obj
mkdir -p "$obj/include"
# A private include directory holding only config.h, refreshed when it changed.
cmp -s "$config_h" "$obj/include/config.h" 2>/dev/null || cp "$config_h" "$obj/include/config.h"

san="address,undefined"
common=(-std=c11 -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=undefined
	-I"$obj/include" -I"$src/include" -I"$src/broker"
	-DSYSCONFDIR='"/etc/midge"' -DPLUGINDIR='"/usr/lib/midge"')
libs=(-lyaml -lssl -lcrypto -largon2 -llmdb -ldl -lm -lpthread)
# The cluster over NATS when configure found libnats (as broker/local.mk); its stubs otherwise.
have_nats=0
if grep -q '^#define HAVE_NATS 1' "$config_h"; then
	have_nats=1
	libs+=(-lnats)
fi

# stale OBJ SRC: whether OBJ must be rebuilt (missing, or older than anything in its .d file).
stale() {
	local o=$1 s=$2 d=${1%.o}.d dep
	[ -f "$o" ] && [ -f "$d" ] || return 0
	[ "$s" -nt "$o" ] && return 0
	for dep in $(sed -e 's/^[^:]*://' -e 's/\\$//' "$d"); do
		[ "$dep" -nt "$o" ] && return 0
	done
	return 1
}

outdated=()
objs=()
# Every object depends on the ignore list too.
if [ "$here/ignorelist.txt" -nt "$obj/libmidge-fuzz.a" ]; then
	rm -f "$obj"/*.o
fi
for s in "$src"/broker/*.c; do
	name=$(basename "$s" .c)
	[ "$name" = main ] && continue
	if [ "$name" = ev_epoll ] && ! grep -q '^#define HAVE_SYS_EPOLL_H 1' "$config_h"; then
		continue
	fi
	case $name in
	cluster_nats | cluster_interest | cluster_jobs | cluster_qos) [ $have_nats -eq 1 ] || continue ;;
	cluster_stub) [ $have_nats -eq 0 ] || continue ;;
	esac
	o=$obj/$name.o
	objs+=("$o")
	if stale "$o" "$s"; then outdated+=("$s"); fi
done

compile_one() {
	local s=$1 o
	o=$FUZZ_OBJ/$(basename "$s" .c).o
	# shellcheck disable=SC2086
	$FUZZ_CC $FUZZ_CFLAGS -fsanitize=fuzzer-no-link,$FUZZ_SAN \
		-fsanitize-coverage-ignorelist="$FUZZ_HERE/ignorelist.txt" \
		-fsanitize-ignorelist="$FUZZ_HERE/ignorelist.txt" \
		-MMD -MF "${o%.o}.d" -c "$s" -o "$o"
}
if [ ${#outdated[@]} -gt 0 ]; then
	echo "build.sh: compiling ${#outdated[@]} broker sources with $cc ..." >&2
	# (The flags travel as one string: paths with blanks are not supported.)
	export -f compile_one
	export FUZZ_HERE=$here FUZZ_OBJ=$obj FUZZ_CC=$cc FUZZ_SAN=$san FUZZ_CFLAGS="${common[*]}"
	printf '%s\n' "${outdated[@]}" | xargs -P "$jobs" -n 1 bash -c 'compile_one "$0"'
	rm -f "$obj/libmidge-fuzz.a"
fi
if [ ! -f "$obj/libmidge-fuzz.a" ]; then
	ar rcs "$obj/libmidge-fuzz.a" "${objs[@]}"
fi

targets=()
for t in "$here"/fuzz_*.c; do
	name=$(basename "$t" .c)
	targets+=("$name")
	bin=$out/$name
	if [ -f "$bin" ] && [ "$bin" -nt "$t" ] && [ "$bin" -nt "$obj/libmidge-fuzz.a" ] &&
	   ! stale "$obj/$name.target.o" "$t"; then
		continue
	fi
	echo "build.sh: $name" >&2
	"$cc" "${common[@]}" -Wall -Wextra -Wno-unused-parameter -fsanitize=fuzzer,$san \
		-MMD -MF "$obj/$name.target.d" -c "$t" -o "$obj/$name.target.o"
	"$cc" -fsanitize=fuzzer,$san "$obj/$name.target.o" "$obj/libmidge-fuzz.a" "${libs[@]}" -o "$bin"
done
# Seed generators (gen_*.c): plain programs on the same archive, not fuzz targets.
for t in "$here"/gen_*.c; do
	[ -f "$t" ] || continue
	name=$(basename "$t" .c)
	bin=$out/$name
	if [ -f "$bin" ] && [ "$bin" -nt "$t" ] && [ "$bin" -nt "$obj/libmidge-fuzz.a" ]; then
		continue
	fi
	"$cc" "${common[@]}" -fsanitize=$san "$t" "$obj/libmidge-fuzz.a" "${libs[@]}" -o "$bin"
done
echo "build.sh: ${#targets[@]} targets in $out: ${targets[*]}" >&2
