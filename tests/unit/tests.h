/*
 * tests.h: the unit test suites and small helpers shared by them.
 * Every tests/unit/test_<area>.c defines one suite_<area>() listed here and
 * in check_main.c.
 */
#ifndef MIDGE_TESTS_H
#define MIDGE_TESTS_H

#include <check.h>

Suite *suite_packet(void);
Suite *suite_property(void);
Suite *suite_codec(void);
Suite *suite_topic(void);
Suite *suite_subtree(void);
Suite *suite_ev(void);
Suite *suite_config(void);

/* Directory holding test data files (tests/unit/data), from the build. */
const char *test_data_dir(void);

#endif
