/*
 * lua_plugin.h: private types shared by the Lua plugin's files.
 *
 * The plugin keeps one configuration (options parsed once, replaced as a
 * whole on reload) and, per worker thread, one Lua state built from it:
 * every script loaded into its own environment over a read-only sandbox,
 * a capped allocator, and a call budget (instructions and time) that a
 * script cannot catch with pcall. Files: lua_plugin.c (entry points and
 * events), lua_options.c (options), lua_args.c (the tables hooks get),
 * lua_sandbox.c (states and scripts), lua_call.c (budgeted calls),
 * lua_api.c (the `midge` module), lua_cache.c (decision cache and
 * midge.cache), lua_json.c (midge.json).
 */
#ifndef MIDGE_LUA_PLUGIN_H
#define MIDGE_LUA_PLUGIN_H

#include <lauxlib.h>
#include <lua.h>
#include <midge/plugin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The hooks a script may define, in the order of this table. */
enum lua_hook {
	LH_AUTH_ON_REGISTER = 0,
	LH_AUTH_ON_SUBSCRIBE,
	LH_AUTH_ON_UNSUBSCRIBE,
	LH_AUTH_ON_PUBLISH,
	LH_ON_DELIVER,
	LH_ON_CONNECT,
	LH_ON_DISCONNECT,
	LH_ON_SUBSCRIBE,
	LH_ON_RELOAD,
	LH_COUNT,
};
extern const char *const lua_hook_names[LH_COUNT];

/* Options, parsed once per (re)load; immutable and shared by reference. */
struct lua_conf {
	_Atomic unsigned refs;
	char **scripts;
	size_t nscripts;
	uint32_t timeout_ms;
	uint64_t max_instructions;
	size_t memory_limit;
	uint32_t cache_ttl;          /* seconds; 0: no decision cache */
	int on_error;                /* MIDGE_DENY, MIDGE_ALLOW or MIDGE_DEFER */
	char **allow_modules;
	size_t nmodules;
};

struct lua_plugin {
	midge_plugin *self;
	const struct midge_broker_api *api;
	pthread_mutex_t lock;        /* guards conf */
	struct lua_conf *conf;
	_Atomic unsigned generation; /* bumped when a reload brings new scripts */
	_Atomic uint64_t cache_hits;
	_Atomic uint64_t cache_misses;
	bool defines[LH_COUNT];      /* some script defines this hook (checked at load) */
};

struct decision_cache;

/* What a budgeted call ended with. */
enum lua_outcome {
	LO_OK = 0,     /* returned; results on the stack */
	LO_ERROR,      /* raised an error (message in lw->error) */
	LO_TIMEOUT,    /* ran out of instructions or time */
	LO_MEMORY,     /* hit the memory limit */
};

/* One worker's Lua: the state and what its calls need. */
struct lua_worker {
	struct lua_plugin *plugin;
	unsigned index;
	lua_State *L;
	struct lua_conf *conf;       /* the configuration L was built from */
	unsigned generation;
	int *envs;                   /* registry refs of each script's environment */
	lua_State *co;               /* the coroutine calls run in (registry ref co_ref) */
	int co_ref;
	size_t nenvs;
	/* Allocator */
	size_t mem_used;
	size_t mem_limit;
	bool mem_exceeded;
	/* Call budget */
	bool in_call;
	bool top_level;              /* loading: midge.read_file is allowed */
	bool timed_out;
	uint64_t deadline_ns;
	uint64_t instructions;
	char where[256];             /* script:line where a timeout struck */
	bool explain;                /* a dry run asks why: note where hooks return */
	char returned_at[256];
	char error[512];
	/* A publish rewrite decided at ACL time, applied in MESSAGE_IN. */
	struct {
		bool set;
		const void *client;
		char *topic_in;
		char *topic;
		char *payload;
		size_t payload_len;
		bool has_payload;
		int qos;
		int retain;
	} rewrite;
	char *out_topic;             /* on_deliver's changes, valid until the next call */
	char *out_payload;
	struct decision_cache *cache;
};

/* lua_options.c */
/* Parses the plugin's options; NULL (logged) when one is wrong or no script is given. */
struct lua_conf *lua_conf_parse(struct lua_plugin *p, const struct midge_option *opts, int n);
struct lua_conf *lua_conf_ref(struct lua_conf *c);
void lua_conf_unref(struct lua_conf *c);

/* lua_args.c */
/* Pushes a client table (password only for auth_on_register). */
void lua_push_client(struct lua_worker *lw, midge_client *c, const char *id,
		     const char *username, const void *password, size_t pwlen);
/* Pushes the table of connected clients' tables (creating it if asked). */
bool lua_client_tables(lua_State *L, bool create);
/* c disconnected: its kept table goes. */
void lua_forget_client(struct lua_worker *lw, midge_client *c);
void lua_push_message(lua_State *L, const char *topic, const void *payload, size_t len,
		      int qos, bool retain, const struct midge_property *pr, uint32_t n);
/* Makes the table on top refuse new keys. */
void lua_lock_table(lua_State *L);

/* lua_sandbox.c */
/* Builds lw->L from conf: sandbox, every script loaded and its top level run.
 * Returns 0, or -1 with the reason in err ("file:line: message"). */
int lua_worker_build(struct lua_worker *lw, struct lua_conf *conf, char *err, size_t errlen);
void lua_worker_close(struct lua_worker *lw);
/* Which hooks the scripts of conf define; compiles and runs them in a scratch
 * state (the reload check). Returns 0 or -1 with err. */
int lua_conf_check(struct lua_plugin *p, struct lua_conf *conf, bool defines[LH_COUNT],
		   char *err, size_t errlen);
uint64_t lua_now_ns(void);

/* lua_call.c */
/*
 * Calls the function on top of L's stack with nargs arguments under the
 * budget; on LO_OK, nres results are left on L's stack (the caller pops
 * them). On the other outcomes nothing is left and lw->error says what and
 * where.
 */
enum lua_outcome lua_budget_call(struct lua_worker *lw, int nargs, int nres);

/* lua_api.c */
/* Pushes the `midge` module table. */
void lua_api_push(struct lua_worker *lw);
/* The worker of a state (kept in its extra space). */
struct lua_worker *lua_worker_of(lua_State *L);

/* lua_cache.c */
struct decision_cache *decision_cache_new(void);
void decision_cache_free(struct decision_cache *c);
/* A cached answer for key (MIDGE_ALLOW / MIDGE_DENY + reason), or false. */
bool decision_cache_get(struct decision_cache *c, const char *key, size_t klen, int *result,
			uint8_t *reason, uint64_t now_ns);
void decision_cache_put(struct decision_cache *c, const char *key, size_t klen, int result,
			uint8_t reason, uint64_t expires_ns);
void decision_cache_clear(struct decision_cache *c);
/* midge.cache.get / set (values are Lua strings, numbers or booleans). */
void lua_cache_push_module(lua_State *L);

#include "lua_json.h"

#endif
