/*
 * lua_sandbox.c: Lua states for scripts, built so that a script can reach
 * nothing dangerous.
 *
 * A state gets a capped allocator, the safe parts of the standard library
 * (no io, no os.execute, no package loading, no debug, no bytecode), the
 * `midge` module, and one environment per script over a read-only base,
 * so scripts cannot break the libraries for each other. Scripts load as
 * text only, and their top level runs under the same budget as any call.
 */
#define _POSIX_C_SOURCE 200809L

#include "lua_plugin.h"

#include <errno.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const lua_hook_names[LH_COUNT] = {
	"auth_on_register", "auth_on_subscribe", "auth_on_unsubscribe", "auth_on_publish",
	"on_deliver",       "on_connect",        "on_disconnect",       "on_subscribe",
	"on_reload",
};

uint64_t lua_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Every allocation of the state goes through here: the cap holds for all
 * of it. It uses the C library directly: a state has its own cap, and the
 * broker's accounting would cost on each of Lua's many small allocations.
 */
static void *capped_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct lua_worker *lw = ud;
	size_t old = ptr ? osize : 0;
	void *p;

	if (nsize == 0) {
		free(ptr);
		lw->mem_used -= old;
		return NULL;
	}
	if (nsize > old && lw->mem_used + (nsize - old) > lw->mem_limit) {
		lw->mem_exceeded = true;
		return NULL;
	}
	p = realloc(ptr, nsize);
	if (!p)
		return NULL;
	lw->mem_used = lw->mem_used - old + nsize;
	return p;
}

static int read_only_write(lua_State *L)
{
	return luaL_error(L, "attempt to change a read-only table");
}

/* Replaces the table on top with a proxy that reads it and refuses writes. */
static void make_read_only(lua_State *L)
{
	lua_newtable(L);                          /* lib proxy */
	lua_newtable(L);                          /* lib proxy mt */
	lua_pushvalue(L, -3);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, read_only_write);
	lua_setfield(L, -2, "__newindex");
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");       /* getmetatable() says nothing */
	lua_setmetatable(L, -2);
	lua_remove(L, -2);
}

/* Copies field `name` of the table at index `from` into the table on top. */
static void copy_field(lua_State *L, int from, const char *name)
{
	lua_getfield(L, from, name);
	lua_setfield(L, -2, name);
}

/* load(chunk [, chunkname [, mode [, env]]]) that only ever takes text. */
static int safe_load(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	const char *name = luaL_optstring(L, 2, "=(load)");
	int has_env = !lua_isnone(L, 4);

	if (luaL_loadbufferx(L, s, len, name, "t") != LUA_OK) {
		luaL_pushfail(L);
		lua_insert(L, -2);
		return 2;
	}
	if (has_env) {
		lua_pushvalue(L, 4);
		if (!lua_setupvalue(L, -2, 1))
			lua_pop(L, 1);
	}
	return 1;
}

/* collectgarbage("count") only: scripts do not steer the collector. */
static int safe_collectgarbage(lua_State *L)
{
	const char *opt = luaL_optstring(L, 1, "count");

	if (strcmp(opt, "count") != 0)
		return luaL_error(L, "collectgarbage('%s') is not available to scripts", opt);
	lua_pushnumber(L, (lua_Number)lua_gc(L, LUA_GCCOUNT, 0) +
			      (lua_Number)lua_gc(L, LUA_GCCOUNTB, 0) / 1024.0);
	return 1;
}

/* print(...) goes to the broker's log. */
static int safe_print(lua_State *L)
{
	struct lua_worker *lw = lua_worker_of(L);
	luaL_Buffer b;
	int n = lua_gettop(L);

	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, '\t');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	lw->plugin->api->log(lw->plugin->self, MIDGE_LOG_INFO, "%s", lua_tostring(L, -1));
	return 0;
}

/* require(name) for the modules the operator allowed, and nothing else. */
static int safe_require(lua_State *L)
{
	struct lua_worker *lw = lua_worker_of(L);
	const char *name = luaL_checkstring(L, 1);

	for (size_t i = 0; i < lw->conf->nmodules; i++) {
		if (strcmp(lw->conf->allow_modules[i], name) != 0)
			continue;
		/* The real require lives in the registry, out of the scripts' reach. */
		lua_getfield(L, LUA_REGISTRYINDEX, "midge.require");
		lua_pushvalue(L, 1);
		lua_call(L, 1, 1);
		return 1;
	}
	return luaL_error(L, "module '%s' is not allowed (allow_modules)", name);
}

/*
 * The base every script environment reads from: safe globals, read-only
 * library tables, and `midge`. Pushes it.
 */
static void push_base(struct lua_worker *lw)
{
	lua_State *L = lw->L;
	static const char *const globals[] = {
		"assert", "error", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget",
		"rawlen", "rawset", "select", "setmetatable", "getmetatable", "tonumber",
		"tostring", "type", "xpcall", "_VERSION",
	};
	static const char *const libs[] = {"string", "table", "math", "utf8", "coroutine"};
	static const char *const os_safe[] = {"time", "clock", "date", "difftime"};
	int g;

	lua_pushglobaltable(L);
	g = lua_gettop(L);
	lua_newtable(L);
	for (size_t i = 0; i < sizeof(globals) / sizeof(globals[0]); i++)
		copy_field(L, g, globals[i]);
	lua_pushcfunction(L, safe_load);
	lua_setfield(L, -2, "load");
	lua_pushcfunction(L, safe_collectgarbage);
	lua_setfield(L, -2, "collectgarbage");
	lua_pushcfunction(L, safe_print);
	lua_setfield(L, -2, "print");
	lua_pushcfunction(L, safe_require);
	lua_setfield(L, -2, "require");
	for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
		lua_getfield(L, g, libs[i]);
		make_read_only(L);
		lua_setfield(L, -2, libs[i]);
	}
	lua_newtable(L);
	lua_getfield(L, g, "os");
	for (size_t i = 0; i < sizeof(os_safe) / sizeof(os_safe[0]); i++) {
		lua_getfield(L, -1, os_safe[i]);
		lua_setfield(L, -3, os_safe[i]);
	}
	lua_pop(L, 1);
	make_read_only(L);
	lua_setfield(L, -2, "os");
	lua_api_push(lw);
	make_read_only(L);
	lua_setfield(L, -2, "midge");
	lua_remove(L, g);
}

/* Opens the libraries; hides what scripts must never reach. */
static void open_libraries(lua_State *L)
{
	luaL_openlibs(L);
	/* Bytecode: string.dump would let a script build it; it goes everywhere. */
	lua_getglobal(L, "string");
	lua_pushnil(L);
	lua_setfield(L, -2, "dump");
	lua_pop(L, 1);
	/* The strings' metatable cannot be fetched and changed. */
	lua_pushliteral(L, "");
	if (lua_getmetatable(L, -1)) {
		lua_pushboolean(L, 0);
		lua_setfield(L, -2, "__metatable");
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	/* require of allowed modules goes through the registry copy. */
	lua_getglobal(L, "require");
	lua_setfield(L, LUA_REGISTRYINDEX, "midge.require");
}

static int read_script(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			char *grown = realloc(buf, ncap);
			if (!grown || ncap > (64u << 20)) {
				free(grown ? grown : buf);
				fclose(f);
				snprintf(err, errlen, "%s: too large or out of memory", path);
				return -1;
			}
			buf = grown;
			cap = ncap;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		snprintf(err, errlen, "%s: read error", path);
		return -1;
	}
	fclose(f);
	*out = buf;
	*len = n;
	return 0;
}

/* Loads one script into a fresh environment and runs its top level. */
static int load_script(struct lua_worker *lw, const char *path, int *env_ref, char *err,
		       size_t errlen)
{
	lua_State *L = lw->L;
	char chunkname[512];
	char *src;
	size_t len;

	if (read_script(path, &src, &len, err, errlen) < 0)
		return -1;
	snprintf(chunkname, sizeof(chunkname), "@%s", path);
	int rc = luaL_loadbufferx(L, src, len, chunkname, "t");
	free(src);
	if (rc != LUA_OK) {
		snprintf(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "load error");
		lua_pop(L, 1);
		return -1;
	}
	/* env = setmetatable({}, {__index = base}) */
	lua_newtable(L);
	lua_newtable(L);
	lua_getfield(L, LUA_REGISTRYINDEX, "midge.base");
	lua_setfield(L, -2, "__index");
	lua_setmetatable(L, -2);
	lua_pushvalue(L, -1);
	*env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_setupvalue(L, -2, 1); /* the chunk's _ENV */
	lw->top_level = true;
	enum lua_outcome o = lua_budget_call(lw, 0, 0);
	lw->top_level = false;
	if (o != LO_OK) {
		snprintf(err, errlen, "%s", lw->error);
		return -1;
	}
	return 0;
}

void lua_worker_close(struct lua_worker *lw)
{
	if (lw->L)
		lua_close(lw->L);
	lw->L = NULL;
	lw->co = NULL;
	free(lw->envs);
	lw->envs = NULL;
	lw->nenvs = 0;
	lw->mem_used = 0;
}

int lua_worker_build(struct lua_worker *lw, struct lua_conf *conf, char *err, size_t errlen)
{
	lua_State *L;

	lua_worker_close(lw);
	lw->conf = conf;
	lw->mem_limit = conf->memory_limit;
	lw->mem_exceeded = false;
	L = lua_newstate(capped_alloc, lw);
	if (!L) {
		snprintf(err, errlen, "cannot create a Lua state (memory_limit %zu)", conf->memory_limit);
		return -1;
	}
	lw->L = L;
	*(struct lua_worker **)lua_getextraspace(L) = lw;
	open_libraries(L);
	push_base(lw);
	make_read_only(L);
	lua_setfield(L, LUA_REGISTRYINDEX, "midge.base");
	lw->envs = calloc(conf->nscripts ? conf->nscripts : 1, sizeof(*lw->envs));
	if (!lw->envs) {
		snprintf(err, errlen, "out of memory");
		lua_worker_close(lw);
		return -1;
	}
	for (size_t i = 0; i < conf->nscripts; i++) {
		if (load_script(lw, conf->scripts[i], &lw->envs[i], err, errlen) < 0) {
			lua_worker_close(lw);
			return -1;
		}
		lw->nenvs++;
	}
	return 0;
}

int lua_conf_check(struct lua_plugin *p, struct lua_conf *conf, bool defines[LH_COUNT],
		   char *err, size_t errlen)
{
	struct lua_worker scratch = {.plugin = p, .index = (unsigned)-1};
	int rc = lua_worker_build(&scratch, conf, err, errlen);

	for (int h = 0; h < LH_COUNT; h++)
		defines[h] = false;
	for (size_t i = 0; rc == 0 && i < scratch.nenvs; i++) {
		lua_rawgeti(scratch.L, LUA_REGISTRYINDEX, scratch.envs[i]);
		for (int h = 0; h < LH_COUNT; h++) {
			if (lua_getfield(scratch.L, -1, lua_hook_names[h]) == LUA_TFUNCTION)
				defines[h] = true;
			lua_pop(scratch.L, 1);
		}
		lua_pop(scratch.L, 1);
	}
	lua_worker_close(&scratch);
	return rc;
}
