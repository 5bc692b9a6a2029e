# tests/: Check unit tests (one runner, one suite per file) and integration tests
# that drive the real broker binary with real clients.

if HAVE_CHECK
check_PROGRAMS += tests/unit/check_midge
TESTS += tests/unit/check_midge
tests_unit_check_midge_SOURCES = \
	tests/unit/check_main.c tests/unit/tests.h \
	tests/unit/test_packet.c tests/unit/test_property.c tests/unit/test_codec.c \
	tests/unit/test_topic.c tests/unit/test_subtree.c tests/unit/test_ev.c \
	tests/unit/test_config.c
tests_unit_check_midge_CPPFLAGS = $(AM_CPPFLAGS) -DTEST_DATA_DIR='"$(abs_top_srcdir)/tests/unit/data"'
tests_unit_check_midge_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_unit_check_midge_LDADD = libmidgecore.la $(CHECK_LIBS)
endif
EXTRA_DIST += tests/unit/data
