/*
 * check_main.c: the one runner for every unit test suite. Honours Check's
 * CK_RUN_SUITE / CK_RUN_CASE / CK_VERBOSITY / CK_TAP_LOG_FILE_NAME.
 */
#include "tests.h"

#include <stdlib.h>

static Suite *(*const suites[])(void) = {
	suite_packet, suite_property, suite_codec, suite_topic, suite_subtree, suite_ev,
	suite_config, suite_security, suite_ws, suite_plugin, suite_lua_json, suite_persist,
	suite_persist_writer, suite_cluster, suite_cluster_shared, suite_cluster_session,
	suite_cluster_qos,
};

const char *test_data_dir(void)
{
	const char *dir = getenv("MIDGE_TEST_DATA");
	return dir ? dir : TEST_DATA_DIR;
}

int main(void)
{
	SRunner *runner = srunner_create(NULL);
	int failed;

	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		srunner_add_suite(runner, suites[i]());
	srunner_run_all(runner, CK_ENV);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
