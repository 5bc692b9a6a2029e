/*
 * lua_plugin.c: the Lua plugin's entry points and events.
 *
 * Turns broker events into calls of the scripts' hook functions
 * (auth_on_register, auth_on_subscribe, auth_on_publish, on_deliver, ...),
 * in the configured order, and their return values into decisions: true
 * allows, false denies (with an optional reason code), nil leaves it to the
 * next script or plugin, a table allows with changes. A script that fails
 * in any way gets the on_error decision and one log line naming it. Owns
 * the options and their reload; the states live per worker (see
 * lua_plugin.h).
 */
#define _POSIX_C_SOURCE 200809L

#include "lua_plugin.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

MIDGE_PLUGIN_DECLARE_VERSION()

static uint8_t cache_key_secret[32]; /* HMAC key: passwords never sit in the cache */

/* --- per-worker state --- */

static struct lua_conf *current_conf(struct lua_plugin *p)
{
	struct lua_conf *c;

	pthread_mutex_lock(&p->lock);
	c = lua_conf_ref(p->conf);
	pthread_mutex_unlock(&p->lock);
	return c;
}

static void call_on_reload(struct lua_worker *lw);

/* The state is current: rebuilt after a reload or after it ran out of memory. */
static bool ensure_state(struct lua_worker *lw)
{
	struct lua_plugin *p = lw->plugin;
	unsigned gen = atomic_load(&p->generation);
	char err[512];

	if (lw->L && lw->generation == gen)
		return true;
	bool reloaded = lw->L && lw->generation != gen;
	struct lua_conf *old = lw->conf;
	struct lua_conf *c = current_conf(p);
	if (lua_worker_build(lw, c, err, sizeof(err)) < 0) {
		p->api->log(p->self, MIDGE_LOG_ERR, "worker %u: %s", lw->index, err);
		lw->conf = c;
		lw->generation = gen; /* do not retry on every call; the next reload does */
		lua_conf_unref(old);
		return false;
	}
	lw->generation = gen;
	lua_conf_unref(old);
	decision_cache_clear(lw->cache);
	if (reloaded)
		call_on_reload(lw);
	return true;
}

/* --- calling the scripts --- */

/* One hook call across the scripts; filled by the protected part. */
struct hook_call {
	struct lua_worker *lw;
	enum lua_hook hook;
	void *evt;
	int event;
	int result;             /* MIDGE_* */
	uint8_t reason;
	bool changed;           /* a table came back: its fields are applied by apply() */
	void (*push_args)(struct hook_call *hc, int *nargs);
	void (*apply)(struct hook_call *hc, int table_index);
};

static const char *result_name(int r)
{
	switch (r) {
	case MIDGE_ALLOW: return "allowed";
	case MIDGE_DENY: return "denied";
	case MIDGE_DEFER: return "deferred";
	default: return "?";
	}
}

/* Runs inside lua_pcall: memory errors while building arguments land there too. */
static int protected_hook(lua_State *L)
{
	struct hook_call *hc = lua_touserdata(L, 1);
	struct lua_worker *lw = hc->lw;
	bool defined = false;

	hc->result = MIDGE_ABSTAIN;
	for (size_t i = 0; i < lw->nenvs; i++) {
		int nargs = 0;

		lua_rawgeti(L, LUA_REGISTRYINDEX, lw->envs[i]);
		if (lua_getfield(L, -1, lua_hook_names[hc->hook]) != LUA_TFUNCTION) {
			lua_pop(L, 2);
			continue;
		}
		lua_remove(L, -2);
		defined = true;
		lw->explain = lw->plugin->api->explaining();
		hc->push_args(hc, &nargs);
		enum lua_outcome o = lua_budget_call(lw, nargs, 2);
		if (o != LO_OK) {
			hc->result = lw->conf->on_error;
			hc->reason = 0;
			if (lw->explain)
				lw->plugin->api->explain(lw->plugin->self, "%s (on_error)", lw->error);
			lw->plugin->api->log(lw->plugin->self, MIDGE_LOG_ERR, "%s (in %s; %s)", lw->error,
					     lua_hook_names[hc->hook], result_name(hc->result));
			return 0;
		}
		int t = lua_type(L, -2);
		if (lw->explain && t != LUA_TNIL)
			lw->plugin->api->explain(lw->plugin->self, "%s (%s)",
						 lw->returned_at[0] ? lw->returned_at : "?",
						 lua_hook_names[hc->hook]);
		if (t == LUA_TNIL) {
			lua_pop(L, 2);
			continue; /* no opinion: the next script */
		}
		if (t == LUA_TBOOLEAN && lua_toboolean(L, -2)) {
			hc->result = MIDGE_ALLOW;
		} else if (t == LUA_TBOOLEAN) {
			hc->result = MIDGE_DENY;
			if (lua_isinteger(L, -1)) {
				lua_Integer rc = lua_tointeger(L, -1);
				hc->reason = rc >= 0x80 && rc <= 0xFF ? (uint8_t)rc : 0;
			}
		} else if (t == LUA_TTABLE) {
			hc->result = MIDGE_ALLOW;
			hc->changed = true;
			if (hc->apply)
				hc->apply(hc, lua_absindex(L, -2));
		} else {
			hc->result = lw->conf->on_error;
			lw->plugin->api->log(lw->plugin->self, MIDGE_LOG_ERR,
					     "%s returned a %s (expected true, false, nil or a table; %s)",
					     lua_hook_names[hc->hook], lua_typename(L, t),
					     result_name(hc->result));
		}
		lua_pop(L, 2);
		return 0;
	}
	if (defined)
		hc->result = MIDGE_DEFER;
	return 0;
}

/* Builds a hook's arguments without calling anything (protected): for side effects. */
static int protected_args(lua_State *L)
{
	struct hook_call *hc = lua_touserdata(L, 1);
	int nargs = 0;

	hc->push_args(hc, &nargs);
	lua_pop(L, nargs);
	return 0;
}

static void run_protected_args(struct hook_call *hc)
{
	lua_State *L = hc->lw->L;

	lua_pushcfunction(L, protected_args);
	lua_pushlightuserdata(L, hc);
	if (lua_pcall(L, 1, 0, 0) != LUA_OK)
		lua_pop(L, 1);
}

static int run_hook(struct hook_call *hc)
{
	struct lua_worker *lw = hc->lw;
	lua_State *L;
	int st;

	if (!lw || !lw->plugin->defines[hc->hook])
		return MIDGE_ABSTAIN;
	if (!ensure_state(lw))
		return lw->conf ? lw->conf->on_error : MIDGE_DENY;
	L = lw->L;
	lua_pushcfunction(L, protected_hook);
	lua_pushlightuserdata(L, hc);
	st = lua_pcall(L, 1, 0, 0);
	if (st != LUA_OK) {
		lw->plugin->api->log(lw->plugin->self, MIDGE_LOG_ERR, "%s: %s (%s)",
				     lua_hook_names[hc->hook],
				     lua_tostring(L, -1) ? lua_tostring(L, -1) : "error",
				     result_name(lw->conf->on_error));
		lua_pop(L, 1);
		hc->result = lw->conf->on_error;
	}
	/* A state that hit its memory cap may hold garbage it cannot free: start afresh. */
	if (lw->mem_exceeded) {
		lua_worker_close(lw);
		lw->generation = (unsigned)-1;
	}
	return hc->result;
}

static void no_args(struct hook_call *hc, int *nargs)
{
	(void)hc;
	*nargs = 0;
}

static void call_on_reload(struct lua_worker *lw)
{
	struct hook_call hc = {.lw = lw, .hook = LH_ON_RELOAD, .push_args = no_args};
	lua_State *L = lw->L;

	if (!lw->plugin->defines[LH_ON_RELOAD])
		return;
	lua_pushcfunction(L, protected_hook);
	lua_pushlightuserdata(L, &hc);
	if (lua_pcall(L, 1, 0, 0) != LUA_OK)
		lua_pop(L, 1);
}

/* --- the decision cache --- */

struct cache_key {
	char buf[1024];
	size_t len;
	bool ok;
};

static void key_add(struct cache_key *k, const void *s, size_t n)
{
	if (!k->ok || k->len + n + 1 > sizeof(k->buf)) {
		k->ok = false;
		return;
	}
	memcpy(k->buf + k->len, s, n);
	k->len += n;
	k->buf[k->len++] = '\0';
}

static void key_str(struct cache_key *k, const char *s)
{
	key_add(k, s ? s : "", s ? strlen(s) : 0);
	if (!s)
		key_add(k, "\1", 1); /* NULL differs from "" */
}

static bool cache_lookup(struct lua_worker *lw, const struct cache_key *k, int *result,
			 uint8_t *reason)
{
	struct lua_plugin *p = lw->plugin;

	if (!lw->conf || !lw->conf->cache_ttl || !k->ok || !lw->cache)
		return false;
	if (lw->generation != atomic_load(&p->generation))
		return false; /* a reload may have changed the answers */
	if (decision_cache_get(lw->cache, k->buf, k->len, result, reason, lua_now_ns())) {
		atomic_fetch_add_explicit(&p->cache_hits, 1, memory_order_relaxed);
		return true;
	}
	atomic_fetch_add_explicit(&p->cache_misses, 1, memory_order_relaxed);
	return false;
}

static void cache_store(struct lua_worker *lw, const struct cache_key *k,
			const struct hook_call *hc)
{
	if (!lw->conf || !lw->conf->cache_ttl || !k->ok || !lw->cache || hc->changed ||
	    (hc->result != MIDGE_ALLOW && hc->result != MIDGE_DENY && hc->result != MIDGE_DEFER))
		return;
	decision_cache_put(lw->cache, k->buf, k->len, hc->result, hc->reason,
			   lua_now_ns() + (uint64_t)lw->conf->cache_ttl * 1000000000u);
}

/* --- events --- */

static void args_register(struct hook_call *hc, int *nargs)
{
	struct midge_evt_basic_auth *e = hc->evt;

	lua_push_client(hc->lw, e->client, NULL, e->username, e->password, e->password_len);
	*nargs = 1;
}

static void apply_register(struct hook_call *hc, int t)
{
	struct midge_evt_basic_auth *e = hc->evt;
	const struct midge_broker_api *api = hc->lw->plugin->api;
	lua_State *L = hc->lw->L;

	if (lua_getfield(L, t, "username") == LUA_TSTRING)
		api->client_set_username(e->client, lua_tostring(L, -1));
	lua_pop(L, 1);
	if (lua_getfield(L, t, "client_id") == LUA_TSTRING &&
	    api->client_set_id(e->client, lua_tostring(L, -1)) != MIDGE_OK)
		api->log(hc->lw->plugin->self, MIDGE_LOG_WARNING,
			 "auth_on_register: client_id '%s' refused", lua_tostring(L, -1));
	lua_pop(L, 1);
}

static int on_basic_auth(int event, void *data, void *userdata)
{
	struct midge_evt_basic_auth *e = data;
	struct lua_worker *lw = e->h.worker_data;
	struct hook_call hc = {.lw = lw, .hook = LH_AUTH_ON_REGISTER, .evt = e, .event = event,
			       .push_args = args_register, .apply = apply_register};
	struct cache_key k = {.ok = true};
	uint8_t mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	int r;

	(void)userdata;
	if (!lw || !lw->plugin->defines[LH_AUTH_ON_REGISTER])
		return MIDGE_ABSTAIN;
	key_str(&k, "register");
	key_str(&k, lw->plugin->api->client_id(e->client));
	key_str(&k, e->username);
	if (e->password)
		HMAC(EVP_sha256(), cache_key_secret, sizeof(cache_key_secret), e->password,
		     e->password_len, mac, &maclen);
	key_add(&k, mac, maclen);
	if (cache_lookup(lw, &k, &r, &e->reason))
		return r;
	r = run_hook(&hc);
	if (r == MIDGE_DENY)
		e->reason = hc.reason;
	cache_store(lw, &k, &hc);
	return r;
}

static void args_subscribe(struct hook_call *hc, int *nargs)
{
	struct midge_evt_acl *e = hc->evt;
	lua_State *L = hc->lw->L;

	lua_push_client(hc->lw, e->client, e->client_id, e->username, NULL, 0);
	lua_pushstring(L, e->topic);
	*nargs = 2;
	if (e->access == MIDGE_ACL_SUBSCRIBE) {
		lua_pushinteger(L, e->qos);
		*nargs = 3;
	}
}

static void apply_subscribe(struct hook_call *hc, int t)
{
	struct midge_evt_acl *e = hc->evt;
	struct lua_worker *lw = hc->lw;
	lua_State *L = lw->L;

	if (lua_getfield(L, t, "topic") == LUA_TSTRING) {
		free(lw->rewrite.topic);
		lw->rewrite.topic = strdup(lua_tostring(L, -1));
		e->new_topic = lw->rewrite.topic;
	}
	lua_pop(L, 1);
	if (lua_getfield(L, t, "qos") == LUA_TNUMBER && lua_isinteger(L, -1)) {
		lua_Integer q = lua_tointeger(L, -1);
		if (q >= 0 && q <= 2)
			e->new_qos = (int)q;
	}
	lua_pop(L, 1);
}

static void args_publish(struct hook_call *hc, int *nargs)
{
	struct midge_evt_acl *e = hc->evt;

	lua_push_client(hc->lw, e->client, e->client_id, e->username, NULL, 0);
	lua_push_message(hc->lw->L, e->topic, e->payload, e->payload_len, e->qos, e->retain,
		     e->properties, e->property_count);
	*nargs = 2;
}

/* A publish the script changed: kept until MESSAGE_IN applies it to this message. */
static void apply_publish(struct hook_call *hc, int t)
{
	struct midge_evt_acl *e = hc->evt;
	struct lua_worker *lw = hc->lw;
	lua_State *L = lw->L;
	size_t len;

	free(lw->rewrite.topic_in);
	free(lw->rewrite.topic);
	free(lw->rewrite.payload);
	memset(&lw->rewrite, 0, sizeof(lw->rewrite));
	lw->rewrite.client = e->client;
	lw->rewrite.topic_in = strdup(e->topic);
	lw->rewrite.qos = -1;
	lw->rewrite.retain = -1;
	if (lua_getfield(L, t, "topic") == LUA_TSTRING)
		lw->rewrite.topic = strdup(lua_tostring(L, -1));
	lua_pop(L, 1);
	if (lua_getfield(L, t, "payload") == LUA_TSTRING) {
		const char *s = lua_tolstring(L, -1, &len);
		lw->rewrite.payload = malloc(len ? len : 1);
		if (lw->rewrite.payload) {
			memcpy(lw->rewrite.payload, s, len);
			lw->rewrite.payload_len = len;
			lw->rewrite.has_payload = true;
		}
	}
	lua_pop(L, 1);
	if (lua_getfield(L, t, "qos") == LUA_TNUMBER && lua_isinteger(L, -1) &&
	    lua_tointeger(L, -1) >= 0 && lua_tointeger(L, -1) <= 2)
		lw->rewrite.qos = (int)lua_tointeger(L, -1);
	lua_pop(L, 1);
	if (lua_getfield(L, t, "retain") == LUA_TBOOLEAN)
		lw->rewrite.retain = lua_toboolean(L, -1);
	lua_pop(L, 1);
	lw->rewrite.set = lw->rewrite.topic_in != NULL;
}

static int on_acl_check(int event, void *data, void *userdata)
{
	struct midge_evt_acl *e = data;
	struct lua_worker *lw = e->h.worker_data;
	struct hook_call hc = {.lw = lw, .evt = e, .event = event};
	struct cache_key k = {.ok = true};
	char num[8];
	int r;

	(void)userdata;
	if (!lw)
		return MIDGE_ABSTAIN;
	switch (e->access) {
	case MIDGE_ACL_SUBSCRIBE:
		hc.hook = LH_AUTH_ON_SUBSCRIBE;
		hc.push_args = args_subscribe;
		hc.apply = apply_subscribe;
		break;
	case MIDGE_ACL_UNSUBSCRIBE:
		hc.hook = LH_AUTH_ON_UNSUBSCRIBE;
		hc.push_args = args_subscribe;
		break;
	case MIDGE_ACL_PUBLISH:
		hc.hook = LH_AUTH_ON_PUBLISH;
		hc.push_args = args_publish;
		hc.apply = apply_publish;
		break;
	default:
		return MIDGE_ABSTAIN; /* deliveries: on_deliver, through MESSAGE_OUT */
	}
	if (!lw->plugin->defines[hc.hook])
		return MIDGE_ABSTAIN;
	if (e->access != MIDGE_ACL_UNSUBSCRIBE && lw->conf && lw->conf->cache_ttl) {
		snprintf(num, sizeof(num), "%d%d", e->qos, e->retain);
		key_str(&k, lua_hook_names[hc.hook]);
		key_str(&k, e->client_id);
		key_str(&k, e->username);
		key_str(&k, e->topic);
		key_str(&k, num);
		if (cache_lookup(lw, &k, &r, &hc.reason)) {
			if (r == MIDGE_DENY)
				e->reason = hc.reason;
			return r;
		}
	}
	r = run_hook(&hc);
	if (r == MIDGE_DENY)
		e->reason = hc.reason;
	if (e->access != MIDGE_ACL_UNSUBSCRIBE)
		cache_store(lw, &k, &hc);
	return r;
}

static int on_message_in(int event, void *data, void *userdata)
{
	struct midge_evt_message *e = data;
	struct lua_worker *lw = e->h.worker_data;

	(void)event;
	(void)userdata;
	if (!lw || !lw->rewrite.set || lw->rewrite.client != e->client || !e->topic ||
	    strcmp(lw->rewrite.topic_in, e->topic) != 0)
		return MIDGE_DEFER;
	lw->rewrite.set = false;
	if (lw->rewrite.topic)
		e->topic = lw->rewrite.topic;
	if (lw->rewrite.has_payload) {
		e->payload = lw->rewrite.payload;
		e->payload_len = (uint32_t)lw->rewrite.payload_len;
	}
	if (lw->rewrite.qos >= 0)
		e->qos = (uint8_t)lw->rewrite.qos;
	if (lw->rewrite.retain >= 0)
		e->retain = lw->rewrite.retain != 0;
	return MIDGE_ALLOW;
}

static void args_deliver(struct hook_call *hc, int *nargs)
{
	struct midge_evt_message *e = hc->evt;

	lua_push_client(hc->lw, e->client, e->client_id, e->username, NULL, 0);
	lua_push_message(hc->lw->L, e->topic, e->payload, e->payload_len, e->qos, e->retain,
		     e->properties, e->property_count);
	*nargs = 2;
}

/* {topic=, payload=} from on_deliver: this subscriber's version of the message. */
static void apply_deliver(struct hook_call *hc, int t)
{
	struct midge_evt_message *e = hc->evt;
	struct lua_worker *lw = hc->lw;
	lua_State *L = lw->L;
	size_t len;

	if (lua_getfield(L, t, "topic") == LUA_TSTRING) {
		free(lw->out_topic);
		lw->out_topic = strdup(lua_tostring(L, -1));
		if (lw->out_topic)
			e->topic = lw->out_topic;
	}
	lua_pop(L, 1);
	if (lua_getfield(L, t, "payload") == LUA_TSTRING) {
		const char *s = lua_tolstring(L, -1, &len);
		free(lw->out_payload);
		lw->out_payload = malloc(len ? len : 1);
		if (lw->out_payload && len <= UINT32_MAX) {
			memcpy(lw->out_payload, s, len);
			e->payload = lw->out_payload;
			e->payload_len = (uint32_t)len;
		}
	}
	lua_pop(L, 1);
}

static int on_message_out(int event, void *data, void *userdata)
{
	struct midge_evt_message *e = data;
	struct hook_call hc = {.lw = e->h.worker_data, .hook = LH_ON_DELIVER, .evt = e,
			       .event = event, .push_args = args_deliver, .apply = apply_deliver};

	(void)userdata;
	return run_hook(&hc) == MIDGE_DENY ? MIDGE_DENY : MIDGE_ALLOW;
}

static void args_client(struct hook_call *hc, int *nargs)
{
	struct midge_evt_client *e = hc->evt;
	lua_State *L = hc->lw->L;

	lua_push_client(hc->lw, e->client, e->client_id, e->username, NULL, 0);
	if (hc->hook == LH_ON_CONNECT) {
		/* Kept for the connection's later hooks, which get copies; this call
		 * gets a copy too. */
		lua_client_tables(L, true);
		lua_pushvalue(L, -2);
		lua_rawsetp(L, -2, e->client);
		lua_pop(L, 2);
		lua_push_client(hc->lw, e->client, e->client_id, e->username, NULL, 0);
	}
	*nargs = 1;
	if (hc->hook == LH_ON_DISCONNECT) {
		lua_pushinteger(hc->lw->L, e->reason);
		*nargs = 2;
	}
}

static int on_client(int event, void *data, void *userdata)
{
	struct midge_evt_client *e = data;
	struct hook_call hc = {.lw = e->h.worker_data, .evt = e, .event = event,
			       .hook = event == MIDGE_EVT_CONNECT ? LH_ON_CONNECT : LH_ON_DISCONNECT,
			       .push_args = args_client};

	(void)userdata;
	if (!hc.lw)
		return MIDGE_OK;
	if (event == MIDGE_EVT_CONNECT) {
		struct hook_call remember = hc;
		/* The table is built and kept even when no script has on_connect. */
		if (!hc.lw->plugin->defines[LH_ON_CONNECT] && ensure_state(hc.lw)) {
			remember.hook = LH_ON_CONNECT;
			run_protected_args(&remember);
		}
	}
	(void)run_hook(&hc);
	if (event == MIDGE_EVT_DISCONNECT)
		lua_forget_client(hc.lw, e->client);
	return MIDGE_OK;
}

static void args_on_subscribe(struct hook_call *hc, int *nargs)
{
	struct midge_evt_subscribe *e = hc->evt;
	lua_State *L = hc->lw->L;

	lua_push_client(hc->lw, e->client, NULL, NULL, NULL, 0);
	lua_pushstring(L, e->filter);
	lua_pushinteger(L, e->qos);
	*nargs = 3;
}

static int on_subscribe(int event, void *data, void *userdata)
{
	struct midge_evt_subscribe *e = data;
	struct hook_call hc = {.lw = e->h.worker_data, .hook = LH_ON_SUBSCRIBE, .evt = e,
			       .event = event, .push_args = args_on_subscribe};

	(void)userdata;
	(void)run_hook(&hc);
	return MIDGE_OK;
}

static int on_worker(int event, void *data, void *userdata)
{
	struct midge_evt_worker *e = data;
	struct lua_plugin *p = userdata;
	struct lua_worker *lw = e->h.worker_data;

	if (event == MIDGE_EVT_WORKER_START) {
		lw = calloc(1, sizeof(*lw));
		if (!lw)
			return MIDGE_ERR_NOMEM;
		lw->plugin = p;
		lw->index = e->h.worker;
		lw->cache = decision_cache_new();
		lw->generation = (unsigned)-1;
		(void)ensure_state(lw);
		e->h.worker_data = lw;
		return MIDGE_OK;
	}
	if (!lw)
		return MIDGE_OK;
	lua_worker_close(lw);
	lua_conf_unref(lw->conf);
	decision_cache_free(lw->cache);
	free(lw->rewrite.topic_in);
	free(lw->rewrite.topic);
	free(lw->rewrite.payload);
	free(lw->out_topic);
	free(lw->out_payload);
	free(lw);
	e->h.worker_data = NULL;
	return MIDGE_OK;
}

/* SIGHUP: the new scripts replace the old ones only if they all load. */
static int on_reload(int event, void *data, void *userdata)
{
	struct midge_evt_reload *e = data;
	struct lua_plugin *p = userdata;
	struct lua_conf *c = lua_conf_parse(p, e->options, e->option_count);
	bool defines[LH_COUNT];
	char err[512];

	(void)event;
	if (!c) {
		p->api->log(p->self, MIDGE_LOG_ERR, "reload: bad options; the old scripts stay");
		return MIDGE_ERR_INVAL;
	}
	if (lua_conf_check(p, c, defines, err, sizeof(err)) < 0) {
		p->api->log(p->self, MIDGE_LOG_ERR, "reload: %s; the old scripts stay", err);
		lua_conf_unref(c);
		return MIDGE_ERR_INVAL;
	}
	pthread_mutex_lock(&p->lock);
	struct lua_conf *old = p->conf;
	p->conf = c;
	/* A hook a new script defines is called from now on; one it dropped abstains. */
	for (int h = 0; h < LH_COUNT; h++)
		p->defines[h] = defines[h];
	pthread_mutex_unlock(&p->lock);
	atomic_fetch_add(&p->generation, 1);
	lua_conf_unref(old);
	p->api->log(p->self, MIDGE_LOG_NOTICE, "reloaded %zu script(s)", c->nscripts);
	return MIDGE_OK;
}

static int on_tick(int event, void *data, void *userdata)
{
	struct midge_evt_tick *e = data;
	struct lua_plugin *p = userdata;
	struct lua_worker *lw = e->h.worker_data;
	char text[32];

	(void)event;
	e->next_ms = 10000;
	/* One worker reports the cache counters for everyone. */
	if (e->h.worker != 0 || !lw || !lw->conf || !lw->conf->cache_ttl)
		return MIDGE_OK;
	snprintf(text, sizeof(text), "%llu", (unsigned long long)atomic_load(&p->cache_hits));
	p->api->publish(p->self, "$SYS/broker/lua/cache/hits", text, (uint32_t)strlen(text), 0,
			true, NULL, 0);
	snprintf(text, sizeof(text), "%llu", (unsigned long long)atomic_load(&p->cache_misses));
	p->api->publish(p->self, "$SYS/broker/lua/cache/misses", text, (uint32_t)strlen(text), 0,
			true, NULL, 0);
	return MIDGE_OK;
}

int midge_plugin_init(midge_plugin *self, const struct midge_broker_api *api,
		      const struct midge_option *options, int option_count, void **plugin_data)
{
	static const struct {
		int event;
		midge_event_cb cb;
	} events[] = {
		{MIDGE_EVT_BASIC_AUTH, on_basic_auth},   {MIDGE_EVT_ACL_CHECK, on_acl_check},
		{MIDGE_EVT_MESSAGE_IN, on_message_in},   {MIDGE_EVT_MESSAGE_OUT, on_message_out},
		{MIDGE_EVT_CONNECT, on_client},          {MIDGE_EVT_DISCONNECT, on_client},
		{MIDGE_EVT_SUBSCRIBE, on_subscribe},     {MIDGE_EVT_RELOAD, on_reload},
		{MIDGE_EVT_WORKER_START, on_worker},     {MIDGE_EVT_WORKER_STOP, on_worker},
		{MIDGE_EVT_TICK, on_tick},
	};
	struct lua_plugin *p;
	char err[512];

	if (!MIDGE_HAS_FIELD(api->size, struct midge_broker_api, client_clean_start)) {
		api->log(self, MIDGE_LOG_ERR, "this broker is too old for the Lua plugin");
		return MIDGE_ERR_UNSUPPORTED;
	}
	if (RAND_bytes(cache_key_secret, sizeof(cache_key_secret)) != 1)
		return MIDGE_ERR_INVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return MIDGE_ERR_NOMEM;
	p->self = self;
	p->api = api;
	pthread_mutex_init(&p->lock, NULL);
	p->conf = lua_conf_parse(p, options, option_count);
	if (!p->conf || lua_conf_check(p, p->conf, p->defines, err, sizeof(err)) < 0) {
		if (p->conf)
			api->log(self, MIDGE_LOG_ERR, "%s", err);
		lua_conf_unref(p->conf);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return MIDGE_ERR_INVAL;
	}
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
		api->register_event(self, events[i].event, events[i].cb, p);
	api->log(self, MIDGE_LOG_INFO, "%zu script(s) loaded", p->conf->nscripts);
	*plugin_data = p;
	return MIDGE_OK;
}

void midge_plugin_cleanup(void *plugin_data, const struct midge_option *options,
			  int option_count)
{
	struct lua_plugin *p = plugin_data;

	(void)options;
	(void)option_count;
	if (!p)
		return;
	lua_conf_unref(p->conf);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
