/*
 * no_init.c: a plugin the broker must refuse (tests/integration/test_20_plugins.py).
 *
 * It agrees on the ABI version but exports no midge_plugin_init, so loading
 * it has to fail with "missing symbol midge_plugin_init" and the broker has
 * to refuse to start.
 */
#include <midge/plugin.h>

MIDGE_PLUGIN_DECLARE_VERSION()

MIDGE_PLUGIN_EXPORT void midge_plugin_cleanup(void *plugin_data, const struct midge_option *options,
					      int option_count)
{
	(void)plugin_data;
	(void)options;
	(void)option_count;
}
