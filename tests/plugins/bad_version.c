/*
 * bad_version.c: a plugin the broker must refuse (tests/integration/test_20_plugins.py).
 *
 * Its midge_plugin_version() claims ABI version 999 whatever the broker
 * offers, so loading it has to fail with "unsupported ABI version" and the
 * broker has to refuse to start. Everything else about it is well formed.
 */
#include <midge/plugin.h>

#include <stddef.h>

MIDGE_PLUGIN_EXPORT int midge_plugin_version(int count, const int *versions)
{
	(void)count;
	(void)versions;
	return 999;
}

MIDGE_PLUGIN_EXPORT int midge_plugin_init(midge_plugin *self, const struct midge_broker_api *api,
					  const struct midge_option *options, int option_count,
					  void **plugin_data)
{
	(void)self;
	(void)api;
	(void)options;
	(void)option_count;
	*plugin_data = NULL;
	return MIDGE_OK;
}

MIDGE_PLUGIN_EXPORT void midge_plugin_cleanup(void *plugin_data, const struct midge_option *options,
					      int option_count)
{
	(void)plugin_data;
	(void)options;
	(void)option_count;
}
