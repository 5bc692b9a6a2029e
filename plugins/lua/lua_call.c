/*
 * lua_call.c: calling script code under a budget it cannot escape.
 *
 * Each call runs in the worker's coroutine (reset after a failure). A count hook checks the
 * instruction count and the deadline; when either is spent it yields the
 * whole coroutine, which unwinds past any pcall in the script (an error
 * would be caught by them), and the coroutine is reset. A call that
 * hit the memory cap fails too, even if the script caught the error.
 */
#define _POSIX_C_SOURCE 200809L

#include "lua_plugin.h"

#include <stdio.h>
#include <string.h>

#define HOOK_EVERY 1000 /* instructions between budget checks */

static void budget_hook(lua_State *co, lua_Debug *ar)
{
	struct lua_worker *lw = lua_worker_of(co);
	lua_Debug outer;

	if (ar->event == LUA_HOOKRET) {
		/* Explaining a decision: the line where the hook function returned. */
		if (!lua_getstack(co, 1, &outer) && lua_getinfo(co, "Sl", ar) && ar->currentline > 0)
			snprintf(lw->returned_at, sizeof(lw->returned_at), "%s:%d", ar->short_src,
				 ar->currentline);
		return;
	}
	lw->instructions += HOOK_EVERY;
	if (!lw->timed_out && lw->instructions <= lw->conf->max_instructions &&
	    lua_now_ns() <= lw->deadline_ns)
		return;
	if (!lw->timed_out) {
		lw->timed_out = true;
		if (lua_getinfo(co, "Sl", ar))
			snprintf(lw->where, sizeof(lw->where), "%s:%d", ar->short_src, ar->currentline);
	}
	/* Yielding unwinds through pcall; where yielding is impossible (a
	 * metamethod called from C) the error ends that part, and the next
	 * check yields. */
	lua_yield(co, 0);
}

/* "script:line" of the innermost Lua function of a failed coroutine (its stack stays). */
static void failed_where(lua_State *co, char *out, size_t size)
{
	lua_Debug ar;

	out[0] = '\0';
	for (int level = 0; lua_getstack(co, level, &ar); level++) {
		if (lua_getinfo(co, "Sl", &ar) && ar.currentline > 0) {
			snprintf(out, size, "%s:%d", ar.short_src, ar.currentline);
			return;
		}
	}
}

static void close_thread(lua_State *co, lua_State *L)
{
#if LUA_VERSION_RELEASE_NUM >= 50406
	lua_closethread(co, L);
#else
	(void)L;
	lua_resetthread(co);
#endif
}

enum lua_outcome lua_budget_call(struct lua_worker *lw, int nargs, int nres)
{
	lua_State *L = lw->L;
	lua_State *co;
	int results = 0, st;
	enum lua_outcome o;

	lw->error[0] = '\0';
	lw->where[0] = '\0';
	lw->timed_out = false;
	lw->mem_exceeded = false;
	lw->instructions = 0;
	lw->deadline_ns = lua_now_ns() + (uint64_t)lw->conf->timeout_ms * 1000000u;
	if (!lw->co) {
		/* One coroutine per state, kept in the registry and reused call after call. */
		lw->co = lua_newthread(L);
		lw->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	co = lw->co;
	lua_settop(co, 0);
	lua_xmove(L, co, nargs + 1); /* function and arguments */
	lw->returned_at[0] = '\0';
	lua_sethook(co, budget_hook, LUA_MASKCOUNT | (lw->explain ? LUA_MASKRET : 0), HOOK_EVERY);
	lw->in_call = true;
	st = lua_resume(co, L, nargs, &results);
	lw->in_call = false;
	if (st == LUA_OK && !lw->mem_exceeded) {
		/* Exactly nres results, padded with nil or cut. */
		if (results > nres) {
			lua_pop(co, results - nres);
			results = nres;
		}
		lua_xmove(co, L, results);
		for (; results < nres; results++)
			lua_pushnil(L);
		lua_settop(co, 0);
		return LO_OK;
	}
	if (lw->timed_out) {
		o = LO_TIMEOUT;
		snprintf(lw->error, sizeof(lw->error), "%s: exceeded its budget (%u ms, %llu instructions)",
			 lw->where[0] ? lw->where : "?", lw->conf->timeout_ms,
			 (unsigned long long)lw->conf->max_instructions);
	} else if (lw->mem_exceeded || st == LUA_ERRMEM) {
		o = LO_MEMORY;
		failed_where(co, lw->where, sizeof(lw->where));
		snprintf(lw->error, sizeof(lw->error), "%s: exceeded memory_limit (%zu bytes)",
			 lw->where[0] ? lw->where : "?", lw->conf->memory_limit);
	} else if (st == LUA_YIELD) {
		o = LO_ERROR;
		snprintf(lw->error, sizeof(lw->error), "a hook may not yield");
	} else {
		o = LO_ERROR;
		const char *msg = lua_tostring(co, -1);
		failed_where(co, lw->where, sizeof(lw->where));
		/* error({}), error("x", 0), assert(false, "x"): say where anyway. */
		if (lw->where[0] && (!msg || strncmp(msg, lw->where, strlen(lw->where)) != 0))
			snprintf(lw->error, sizeof(lw->error), "%s: %s", lw->where,
				 msg ? msg : "error object is not a string");
		else
			snprintf(lw->error, sizeof(lw->error), "%s",
				 msg ? msg : "error object is not a string");
	}
	close_thread(co, L); /* reusable again, whatever state it was left in */
	lua_settop(co, 0);   /* a reset leaves the error object behind */
	return o;
}
