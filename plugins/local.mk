# plugins/: each plugin is a libtool module installed into $(plugindir).
plugindir = @plugindir@
plugin_LTLIBRARIES =
