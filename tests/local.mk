# tests/: Check unit tests (one runner, one suite per file) and integration tests
# that drive the real broker binary with real clients.

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_midge
TESTS += tests/unit/check_midge
tests_unit_check_midge_SOURCES = \
	tests/unit/check_main.c tests/unit/tests.h tests/unit/helpers.c \
	tests/unit/test_packet.c tests/unit/test_property.c tests/unit/test_codec.c \
	tests/unit/test_topic.c tests/unit/test_subtree.c tests/unit/test_ev.c \
	tests/unit/test_config.c tests/unit/test_security.c tests/unit/test_ws.c \
	tests/unit/test_plugin.c tests/unit/test_lua_json.c plugins/lua/lua_json.c \
	tests/unit/test_persist.c tests/unit/test_persist_writer.c tests/unit/test_cluster.c \
	tests/unit/test_cluster_shared.c tests/unit/test_cluster_session.c tests/unit/test_cluster_qos.c
tests_unit_check_midge_CPPFLAGS = $(AM_CPPFLAGS) -DTEST_DATA_DIR='"$(abs_top_srcdir)/tests/unit/data"' \
	-DTEST_PLUGIN_DIR='"$(abs_top_builddir)/tests/plugins/.libs"'
tests_unit_check_midge_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(LUA_CFLAGS) $(LMDB_CFLAGS)
tests_unit_check_midge_LDADD = libmidgecore.la $(CHECK_LIBS) $(LUA_LIBS) $(LMDB_LIBS)
endif
EXTRA_DIST += tests/unit/data

# Plugins for the plugin tests (test_20_plugins.py): probe.so answers and logs
# every event as its options say; bad_version.so and no_init.so must be
# refused. Built for `make check` only; -rpath makes them real shared modules
# (tests/plugins/.libs/<name>.so, found by midgetest.plugin_path()).
check_LTLIBRARIES += tests/plugins/probe.la tests/plugins/bad_version.la tests/plugins/no_init.la
TEST_PLUGIN_CPPFLAGS = -I$(top_srcdir)/include
tests_plugins_probe_la_SOURCES = tests/plugins/probe.c
tests_plugins_probe_la_CPPFLAGS = $(TEST_PLUGIN_CPPFLAGS)
tests_plugins_probe_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared -rpath /nowhere
tests_plugins_bad_version_la_SOURCES = tests/plugins/bad_version.c
tests_plugins_bad_version_la_CPPFLAGS = $(TEST_PLUGIN_CPPFLAGS)
tests_plugins_bad_version_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared -rpath /nowhere
tests_plugins_no_init_la_SOURCES = tests/plugins/no_init.c
tests_plugins_no_init_la_CPPFLAGS = $(TEST_PLUGIN_CPPFLAGS)
tests_plugins_no_init_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared -rpath /nowhere

# Integration tests: each script starts the real broker on a free loopback port.
INTEGRATION_TESTS = \
	tests/integration/test_01_connect.py \
	tests/integration/test_02_publish.py \
	tests/integration/test_03_subscribe.py \
	tests/integration/test_04_retain.py \
	tests/integration/test_05_will.py \
	tests/integration/test_06_session.py \
	tests/integration/test_07_limits.py \
	tests/integration/test_08_sys.py \
	tests/integration/test_09_malformed.py \
	tests/integration/test_10_clients.py \
	tests/integration/test_11_cli.py \
	tests/integration/test_12_process.py \
	tests/integration/test_13_passwd_tool.py \
	tests/integration/test_14_auth.py \
	tests/integration/test_15_acl.py \
	tests/integration/test_16_tls.py \
	tests/integration/test_17_websockets.py \
	tests/integration/test_18_browser.py \
	tests/integration/test_19_unix_socket.py \
	tests/integration/test_20_plugins.py \
	tests/integration/test_21_examples.py \
	tests/integration/test_22_plugin_sdk.py \
	tests/integration/test_23_lua.py \
	tests/integration/test_24_topic_alias.py \
	tests/integration/test_25_mqtt5_messages.py \
	tests/integration/test_26_mqtt5_limits.py \
	tests/integration/test_27_bench_tool.py \
	tests/integration/test_28_persistence.py \
	tests/integration/test_29_bridges.py \
	tests/integration/test_30_robustness.py \
	tests/integration/test_31_cli_tools.py \
	tests/integration/test_32_operations.py \
	tests/integration/test_33_cluster.py \
	tests/integration/test_34_cluster_qos.py \
	tests/integration/test_35_cluster_retained_wills.py \
	tests/integration/test_36_cluster_sessions.py \
	tests/integration/test_37_cluster_shared.py \
	tests/integration/test_38_cluster_failover.py
TESTS += $(INTEGRATION_TESTS)
TEST_EXTENSIONS = .py
PY_LOG_COMPILER = $(PYTHON3)
AM_TESTS_ENVIRONMENT = \
	MIDGE_BIN='$(abs_top_builddir)/midge'; export MIDGE_BIN; \
	MIDGE_SRCDIR='$(abs_top_srcdir)'; export MIDGE_SRCDIR; \
	MIDGE_PLUGIN_DIR='$(abs_top_builddir)'; export MIDGE_PLUGIN_DIR; \
	PYTHONDONTWRITEBYTECODE=1; export PYTHONDONTWRITEBYTECODE;
EXTRA_DIST += tests/integration/midgetest.py tests/integration/clustertest.py tests/integration/natsreq.py $(INTEGRATION_TESTS) \
	tests/browser/package.json tests/browser/package-lock.json tests/browser/page.html \
	tests/browser/run.mjs

# Benchmarks against mosquitto (not run by make check): scenario medians and
# callgrind instruction counts, both driving midge_bench.
EXTRA_DIST += tests/bench/lib.sh tests/bench/compare.sh tests/bench/scaling.sh tests/bench/callgrind.sh \
	tests/bench/cluster.sh

# The example Lua scripts (etc/lua/, documented in plugins/lua/README.md):
# test_23_lua.py runs each of them as shipped.
EXTRA_DIST += etc/lua/auth.lua etc/lua/acl.lua etc/lua/rewrite_json.lua \
	etc/lua/ratelimit.lua etc/lua/users_json.lua etc/lua/users.json
