/*
 * lua_api.c: the `midge` module scripts see: logging, password hashes,
 * topic matching, a per-worker cache, JSON, publishing, kicking clients,
 * the clock, and reading a file while a script loads.
 */
#define _POSIX_C_SOURCE 200809L

#include "lua_plugin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct lua_worker *lua_worker_of(lua_State *L)
{
	return *(struct lua_worker **)lua_getextraspace(L);
}

static int level_of(lua_State *L, int idx)
{
	static const char *const names[] = {"error", "warning", "notice", "info", "debug", NULL};
	static const int levels[] = {MIDGE_LOG_ERR, MIDGE_LOG_WARNING, MIDGE_LOG_NOTICE,
				     MIDGE_LOG_INFO, MIDGE_LOG_DEBUG};

	if (lua_type(L, idx) == LUA_TNUMBER) {
		lua_Integer n = lua_tointeger(L, idx);
		return n >= MIDGE_LOG_ERR && n <= MIDGE_LOG_DEBUG ? (int)n : MIDGE_LOG_INFO;
	}
	return levels[luaL_checkoption(L, idx, "info", names)];
}

/* midge.log(level, ...) */
static int l_log(lua_State *L)
{
	struct lua_worker *lw = lua_worker_of(L);
	int level = level_of(L, 1);
	int n = lua_gettop(L);
	luaL_Buffer b;
	lua_Debug ar;

	luaL_buffinit(L, &b);
	/* Say where the line comes from: script and line. */
	if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
		lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
		luaL_addvalue(&b);
	}
	for (int i = 2; i <= n; i++) {
		if (i > 2)
			luaL_addchar(&b, ' ');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	lw->plugin->api->log(lw->plugin->self, level, "%s", lua_tostring(L, -1));
	return 0;
}

/* midge.password_check(hash, password) -> boolean */
static int l_password_check(lua_State *L)
{
	struct lua_worker *lw = lua_worker_of(L);
	const char *hash = luaL_checkstring(L, 1);
	size_t len;
	const char *pw = luaL_optlstring(L, 2, NULL, &len);
	int rc;

	if (!pw) {
		lua_pushboolean(L, 0);
		return 1;
	}
	/* A slow hash (PBKDF2, argon2id) is the operator's choice, not the script's
	 * loop: its time does not count against the call's budget. */
	uint64_t t0 = lua_now_ns();
	rc = lw->plugin->api->password_verify(hash, pw, len);
	lw->deadline_ns += lua_now_ns() - t0;
	if (rc < 0)
		return luaL_error(L, "not a password hash ($7$, $6$ or $argon2id$)");
	lua_pushboolean(L, rc == 1);
	return 1;
}

/* midge.password_hash(password [, method]) -> string */
static int l_password_hash(lua_State *L)
{
	struct lua_worker *lw = lua_worker_of(L);
	size_t len;
	const char *pw = luaL_checklstring(L, 1, &len);
	const char *method = luaL_optstring(L, 2, "pbkdf2");
	char out[256];
	uint64_t t0 = lua_now_ns();

	int rc = lw->plugin->api->password_hash(pw, len, method, out, sizeof(out));
	lw->deadline_ns += lua_now_ns() - t0;
	if (rc != MIDGE_OK)
		return luaL_error(L, "cannot hash with method '%s' (pbkdf2, sha512 or argon2id)",
				  method);
	lua_pushstring(L, out);
	return 1;
}

/* midge.topic_matches(filter, topic) -> boolean */
static int l_topic_matches(lua_State *L)
{
	struct lua_worker *lw = lua_worker_of(L);
	const char *filter = luaL_checkstring(L, 1);
	const char *topic = luaL_checkstring(L, 2);

	lua_pushboolean(L, lw->plugin->api->topic_matches(filter, topic));
	return 1;
}

/* midge.publish(topic, payload [, qos [, retain]]) -> true | nil, message */
static int l_publish(lua_State *L)
{
	struct lua_worker *lw = lua_worker_of(L);
	const char *topic = luaL_checkstring(L, 1);
	size_t len = 0;
	const char *payload = luaL_optlstring(L, 2, "", &len);
	lua_Integer qos = luaL_optinteger(L, 3, 0);
	int retain = lua_toboolean(L, 4);

	if (len > UINT32_MAX)
		return luaL_error(L, "payload too large");
	if (lw->plugin->api->publish(lw->plugin->self, topic, payload, (uint32_t)len, (int)qos,
				     retain != 0, NULL, 0) != MIDGE_OK) {
		luaL_pushfail(L);
		lua_pushliteral(L, "invalid topic or QoS");
		return 2;
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* midge.kick(client_id [, send_will]) */
static int l_kick(lua_State *L)
{
	struct lua_worker *lw = lua_worker_of(L);
	const char *id = luaL_checkstring(L, 1);

	lw->plugin->api->kick_client(lw->plugin->self, id, lua_toboolean(L, 2) != 0);
	return 0;
}

/* midge.now() -> seconds since the epoch, with fractions */
static int l_now(lua_State *L)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
	return 1;
}

/* midge.read_file(path) -> string: only while a script loads (its top level). */
static int l_read_file(lua_State *L)
{
	struct lua_worker *lw = lua_worker_of(L);
	const char *path = luaL_checkstring(L, 1);
	struct stat st;
	char *buf;
	size_t n;
	FILE *f;

	if (!lw->top_level)
		return luaL_error(L, "midge.read_file is only available while a script loads");
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
		int err = errno;
		luaL_pushfail(L);
		lua_pushfstring(L, "%s: %s", path,
				access(path, F_OK) == 0 ? "not a regular file" : strerror(err));
		return 2;
	}
	if (st.st_size > (16 << 20))
		return luaL_error(L, "%s: larger than 16 MiB", path);
	/* The buffer belongs to Lua before the file is opened: nothing leaks if Lua
	 * raises (out of memory) while the file is open. */
	buf = lua_newuserdatauv(L, (size_t)st.st_size + 1, 0);
	f = fopen(path, "rb");
	if (!f) {
		luaL_pushfail(L);
		lua_pushfstring(L, "%s: %s", path, strerror(errno));
		return 2;
	}
	n = fread(buf, 1, (size_t)st.st_size + 1, f);
	fclose(f);
	if (n > (size_t)st.st_size)
		return luaL_error(L, "%s: changed while being read", path);
	lua_pushlstring(L, buf, n);
	return 1;
}

void lua_api_push(struct lua_worker *lw)
{
	static const luaL_Reg fns[] = {
		{"log", l_log},
		{"password_check", l_password_check},
		{"password_hash", l_password_hash},
		{"topic_matches", l_topic_matches},
		{"publish", l_publish},
		{"kick", l_kick},
		{"now", l_now},
		{"read_file", l_read_file},
		{NULL, NULL},
	};
	lua_State *L = lw->L;

	luaL_newlib(L, fns);
	lua_cache_push_module(L);
	lua_setfield(L, -2, "cache");
	midge_lua_json_open(L);
	lua_setfield(L, -2, "json");
}
