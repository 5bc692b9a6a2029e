# tests/: Check unit tests (one runner, one suite per file) and integration tests
# that drive the real broker binary with real clients.

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_midge
TESTS += tests/unit/check_midge
tests_unit_check_midge_SOURCES = \
	tests/unit/check_main.c tests/unit/tests.h tests/unit/helpers.c \
	tests/unit/test_packet.c tests/unit/test_property.c tests/unit/test_codec.c \
	tests/unit/test_topic.c tests/unit/test_subtree.c tests/unit/test_ev.c \
	tests/unit/test_config.c tests/unit/test_security.c tests/unit/test_ws.c
tests_unit_check_midge_CPPFLAGS = $(AM_CPPFLAGS) -DTEST_DATA_DIR='"$(abs_top_srcdir)/tests/unit/data"'
tests_unit_check_midge_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_midge_LDADD = libmidgecore.la $(CHECK_LIBS)
endif
EXTRA_DIST += tests/unit/data

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
	tests/integration/test_19_unix_socket.py
TESTS += $(INTEGRATION_TESTS)
TEST_EXTENSIONS = .py
PY_LOG_COMPILER = $(PYTHON3)
AM_TESTS_ENVIRONMENT = \
	MIDGE_BIN='$(abs_top_builddir)/midge'; export MIDGE_BIN; \
	MIDGE_SRCDIR='$(abs_top_srcdir)'; export MIDGE_SRCDIR; \
	PYTHONDONTWRITEBYTECODE=1; export PYTHONDONTWRITEBYTECODE;
EXTRA_DIST += tests/integration/midgetest.py $(INTEGRATION_TESTS) \
	tests/browser/package.json tests/browser/package-lock.json tests/browser/page.html \
	tests/browser/run.mjs
