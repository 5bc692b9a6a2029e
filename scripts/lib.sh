# scripts/lib.sh: shared steps of scripts/run and scripts/test (sourced, not run).
# Installs missing Debian packages (when root), configures and builds out of tree.

MIDGE_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Packages needed to build midge.
MIDGE_BUILD_DEPS="gcc make autoconf automake libtool pkg-config liblua5.4-dev libyaml-dev libssl-dev libargon2-dev liblmdb-dev check libnats-dev"
# Packages the test suite drives the broker with.
MIDGE_TEST_DEPS="python3 python3-paho-mqtt mosquitto mosquitto-clients openssl chromium nats-server"
# Packages the fuzz targets (tests/fuzz/) need besides the build's: clang (ensure_fuzz_deps
# adds the libFuzzer and sanitizer runtimes of its version, which clang only recommends).
MIDGE_FUZZ_DEPS="clang"

say() { printf '%s\n' "$*" >&2; }

# ensure_packages PKG...: installs those not yet installed (apt-get, as root).
ensure_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		say "Missing packages: ${missing[*]}"
		say "Install them with: sudo apt-get install ${missing[*]}"
		return 1
	fi
	say "Installing ${missing[*]} ..."
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	# A package's own service (mosquitto's) must not start on 1883 during the install.
	local policy=/usr/sbin/policy-rc.d added_policy=0
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && added_policy=1
	fi
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
	local rc=$?
	[ $added_policy -eq 1 ] && rm -f "$policy"
	return $rc
}

# ensure_fuzz_deps: clang, then libclang-rt-<its major version>-dev.
ensure_fuzz_deps() {
	local v
	ensure_packages $MIDGE_FUZZ_DEPS || return 1
	v=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
	[ -n "$v" ] || { say "clang does not say its version"; return 1; }
	ensure_packages "libclang-rt-$v-dev"
}

# ensure_browser_deps: MQTT.js and playwright-core for the browser test (npm ci in
# tests/browser). Node.js comes with the machine; without npm the test skips.
ensure_browser_deps() {
	local dir="$MIDGE_SRC/tests/browser"
	if ! command -v npm >/dev/null 2>&1; then
		say "npm not found: the browser test will be skipped."
		return 0
	fi
	if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
		say "Installing the browser test's packages (npm ci) ..."
		(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || {
			say "npm ci failed in tests/browser"; return 1; }
		touch "$dir/node_modules"
	fi
}

# configure_build DIR [CONFIGURE-ARGS...]: (re)configures DIR when needed.
configure_build() {
	local dir=$1; shift
	local want="$*"
	if [ -f "$MIDGE_SRC/config.status" ]; then
		# An in-tree configuration blocks out-of-tree builds; it holds only build products.
		say "Removing the in-tree build configuration (builds go to build directories)."
		(cd "$MIDGE_SRC" && make -s distclean >/dev/null 2>&1 || rm -f config.status)
	fi
	if [ ! -x "$MIDGE_SRC/configure" ] || [ "$MIDGE_SRC/configure.ac" -nt "$MIDGE_SRC/configure" ]; then
		(cd "$MIDGE_SRC" && ./autogen.sh >/dev/null 2>&1) || { say "autogen.sh failed"; return 1; }
	fi
	mkdir -p "$dir"
	if [ ! -f "$dir/Makefile" ] || [ "$(cat "$dir/.configure-args" 2>/dev/null)" != "$want" ] ||
	   [ "$MIDGE_SRC/configure" -nt "$dir/Makefile" ]; then
		(cd "$dir" && "$MIDGE_SRC/configure" -q "$@") || { say "configure failed (see $dir/config.log)"; return 1; }
		printf '%s' "$want" > "$dir/.configure-args"
	fi
}

# build DIR: compiles everything in DIR.
build() {
	make -s -C "$1" -j"$(nproc)" >/dev/null || make -C "$1"
}
