/*
 * lua_cache.c: two caches of one worker.
 *
 * The decision cache remembers register / subscribe / publish answers for
 * cache_ttl seconds, so a client that reconnects or publishes to the same
 * topic again does not run the scripts again. It is a fixed-size table in
 * C (a full table overwrites), keyed by the hook and everything the answer
 * depends on. midge.cache is the scripts' own key/value store with
 * expiry, kept inside the Lua state (so it counts against memory_limit).
 */
#define _POSIX_C_SOURCE 200809L

#include "lua_plugin.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CACHE_SLOTS 4096
#define LUA_CACHE_MAX 100000 /* midge.cache entries before it starts over */

struct cache_slot {
	char *key;
	size_t klen;
	int result;
	uint8_t reason;
	uint64_t expires_ns;
};

struct decision_cache {
	struct cache_slot slots[CACHE_SLOTS];
};

static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
	return h;
}

struct decision_cache *decision_cache_new(void)
{
	return calloc(1, sizeof(struct decision_cache));
}

void decision_cache_clear(struct decision_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < CACHE_SLOTS; i++) {
		free(c->slots[i].key);
		c->slots[i] = (struct cache_slot){0};
	}
}

void decision_cache_free(struct decision_cache *c)
{
	decision_cache_clear(c);
	free(c);
}

bool decision_cache_get(struct decision_cache *c, const char *key, size_t klen, int *result,
			uint8_t *reason, uint64_t now_ns)
{
	struct cache_slot *s = &c->slots[hash_bytes(key, klen) % CACHE_SLOTS];

	if (!s->key || s->klen != klen || memcmp(s->key, key, klen) != 0 || now_ns >= s->expires_ns)
		return false;
	*result = s->result;
	*reason = s->reason;
	return true;
}

void decision_cache_put(struct decision_cache *c, const char *key, size_t klen, int result,
			uint8_t reason, uint64_t expires_ns)
{
	struct cache_slot *s = &c->slots[hash_bytes(key, klen) % CACHE_SLOTS];
	char *copy = malloc(klen ? klen : 1);

	if (!copy)
		return;
	memcpy(copy, key, klen);
	free(s->key);
	*s = (struct cache_slot){copy, klen, result, reason, expires_ns};
}

/* --- midge.cache --- */

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The store: registry["midge.cache"] = {values = {}, expires = {}, n = count} */
static void push_store(lua_State *L)
{
	if (lua_getfield(L, LUA_REGISTRYINDEX, "midge.cache") == LUA_TTABLE)
		return;
	lua_pop(L, 1);
	lua_createtable(L, 0, 3);
	lua_newtable(L);
	lua_setfield(L, -2, "values");
	lua_newtable(L);
	lua_setfield(L, -2, "expires");
	lua_pushinteger(L, 0);
	lua_setfield(L, -2, "n");
	lua_pushvalue(L, -1);
	lua_setfield(L, LUA_REGISTRYINDEX, "midge.cache");
}

static void check_key(lua_State *L)
{
	int t = lua_type(L, 1);

	luaL_argcheck(L, t == LUA_TSTRING || t == LUA_TNUMBER, 1, "a string or number key");
}

/* midge.cache.get(key) -> value | nil */
static int l_cache_get(lua_State *L)
{
	check_key(L);
	push_store(L);
	lua_getfield(L, -1, "expires");
	lua_pushvalue(L, 1);
	if (lua_rawget(L, -2) == LUA_TNUMBER && lua_tonumber(L, -1) <= wall_now()) {
		lua_pushnil(L);
		return 1; /* expired: set() overwrites it later */
	}
	lua_pop(L, 2);
	lua_getfield(L, -1, "values");
	lua_pushvalue(L, 1);
	lua_rawget(L, -2);
	return 1;
}

/* midge.cache.set(key, value [, ttl_s]): nil value deletes. */
static int l_cache_set(lua_State *L)
{
	int vt = lua_type(L, 2);
	lua_Number ttl = luaL_optnumber(L, 3, 0);
	lua_Integer n;

	check_key(L);
	luaL_argcheck(L, vt == LUA_TNIL || vt == LUA_TSTRING || vt == LUA_TNUMBER ||
				 vt == LUA_TBOOLEAN,
		      2, "a string, number, boolean or nil");
	push_store(L);
	int store = lua_gettop(L);
	lua_getfield(L, store, "n");
	n = lua_tointeger(L, -1);
	lua_pop(L, 1);
	if (n >= LUA_CACHE_MAX && vt != LUA_TNIL) {
		/* Full: start over rather than grow without end. */
		lua_newtable(L);
		lua_setfield(L, store, "values");
		lua_newtable(L);
		lua_setfield(L, store, "expires");
		n = 0;
	}
	lua_getfield(L, store, "values");
	lua_pushvalue(L, 1);
	bool had = lua_rawget(L, -2) != LUA_TNIL;
	lua_pop(L, 1);
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 2);
	lua_rawset(L, -3);
	lua_pop(L, 1);
	lua_getfield(L, store, "expires");
	lua_pushvalue(L, 1);
	if (vt != LUA_TNIL && ttl > 0)
		lua_pushnumber(L, wall_now() + ttl);
	else
		lua_pushnil(L);
	lua_rawset(L, -3);
	lua_pop(L, 1);
	n += (vt != LUA_TNIL && !had) ? 1 : (vt == LUA_TNIL && had) ? -1 : 0;
	lua_pushinteger(L, n);
	lua_setfield(L, store, "n");
	return 0;
}

void lua_cache_push_module(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{"get", l_cache_get},
		{"set", l_cache_set},
		{NULL, NULL},
	};

	luaL_newlib(L, fns);
}
