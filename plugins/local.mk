# plugins/: each plugin is a libtool module installed into $(plugindir).
plugindir = @plugindir@
plugin_LTLIBRARIES =

# The plugin SDK: <midge/plugin.h> (in midgeinclude_HEADERS, Makefile.am) and
# midge-plugin.pc, so that an out-of-tree plugin builds with
#   cc $(pkg-config --cflags midge-plugin) -shared -fPIC -o my.so my.c
pkgconfigdir = $(libdir)/pkgconfig
pkgconfig_DATA = midge-plugin.pc
EXTRA_DIST += midge-plugin.pc.in

# Example plugins (plugins/examples/<name>/): documentation that compiles.
# They are built with everything else, so they cannot rot, but not installed;
# -rpath makes libtool link a real shared module (.libs/<name>.so) anyway.
# Their include path is the public header only: an example that reached for
# broker internals would not build.
noinst_LTLIBRARIES += \
	plugins/examples/auth_static/auth_static.la \
	plugins/examples/acl_prefix/acl_prefix.la \
	plugins/examples/rewrite/rewrite.la \
	plugins/examples/delayed_auth/delayed_auth.la
EXAMPLE_PLUGIN_CPPFLAGS = -I$(top_srcdir)/include

plugins_examples_auth_static_auth_static_la_SOURCES = plugins/examples/auth_static/auth_static.c
plugins_examples_auth_static_auth_static_la_CPPFLAGS = $(EXAMPLE_PLUGIN_CPPFLAGS)
plugins_examples_auth_static_auth_static_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared -rpath /nowhere

plugins_examples_acl_prefix_acl_prefix_la_SOURCES = plugins/examples/acl_prefix/acl_prefix.c
plugins_examples_acl_prefix_acl_prefix_la_CPPFLAGS = $(EXAMPLE_PLUGIN_CPPFLAGS)
plugins_examples_acl_prefix_acl_prefix_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared -rpath /nowhere

plugins_examples_rewrite_rewrite_la_SOURCES = plugins/examples/rewrite/rewrite.c
plugins_examples_rewrite_rewrite_la_CPPFLAGS = $(EXAMPLE_PLUGIN_CPPFLAGS)
plugins_examples_rewrite_rewrite_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared -rpath /nowhere

plugins_examples_delayed_auth_delayed_auth_la_SOURCES = plugins/examples/delayed_auth/delayed_auth.c
plugins_examples_delayed_auth_delayed_auth_la_CPPFLAGS = $(EXAMPLE_PLUGIN_CPPFLAGS)
plugins_examples_delayed_auth_delayed_auth_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared -rpath /nowhere

# Each example's configuration and README.
EXTRA_DIST += \
	plugins/examples/auth_static/auth_static.yaml plugins/examples/auth_static/README.md \
	plugins/examples/acl_prefix/acl_prefix.yaml plugins/examples/acl_prefix/README.md \
	plugins/examples/rewrite/rewrite.yaml plugins/examples/rewrite/README.md \
	plugins/examples/delayed_auth/delayed_auth.yaml plugins/examples/delayed_auth/README.md

# The bundled Lua 5.4 plugin: operators' authentication, ACL and message policy in Lua.
plugin_LTLIBRARIES += plugins/lua/lua.la
plugins_lua_lua_la_SOURCES = \
	plugins/lua/lua_plugin.c plugins/lua/lua_plugin.h \
	plugins/lua/lua_options.c plugins/lua/lua_args.c \
	plugins/lua/lua_sandbox.c plugins/lua/lua_call.c plugins/lua/lua_api.c \
	plugins/lua/lua_cache.c plugins/lua/lua_json.c plugins/lua/lua_json.h
plugins_lua_lua_la_CPPFLAGS = -I$(top_srcdir)/include
plugins_lua_lua_la_CFLAGS = $(AM_CFLAGS) $(LUA_CFLAGS) $(OPENSSL_CFLAGS) -pthread
plugins_lua_lua_la_LIBADD = $(LUA_LIBS) $(OPENSSL_LIBS)
plugins_lua_lua_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared
EXTRA_DIST += plugins/lua/README.md
