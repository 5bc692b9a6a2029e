/*
 * lua_args.c: the tables hooks receive: a client (kept per connection from
 * CONNECT to DISCONNECT and copied per call, so a script's writes stay in
 * that call), a message with its properties (one shared, locked table for
 * messages without any).
 */
#define _POSIX_C_SOURCE 200809L

#include "lua_plugin.h"

#include <string.h>

static void set_str(lua_State *L, const char *k, const char *v)
{
	if (!v)
		return;
	lua_pushstring(L, v);
	lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
	lua_pushinteger(L, v);
	lua_setfield(L, -2, k);
}

/*
 * The table of connected clients' tables (registry "midge.clients", keyed
 * by handle): a client's table is built once at CONNECT and handed to every
 * later hook, and dropped at DISCONNECT. Pushes it (creating it if asked).
 */
bool lua_client_tables(lua_State *L, bool create)
{
	if (lua_getfield(L, LUA_REGISTRYINDEX, "midge.clients") == LUA_TTABLE)
		return true;
	lua_pop(L, 1);
	if (!create)
		return false;
	lua_newtable(L);
	lua_pushvalue(L, -1);
	lua_setfield(L, LUA_REGISTRYINDEX, "midge.clients");
	return true;
}

void lua_forget_client(struct lua_worker *lw, midge_client *c)
{
	lua_State *L = lw->L;

	if (!L || !lua_client_tables(L, false))
		return;
	lua_pushnil(L);
	lua_rawsetp(L, -2, c);
	lua_pop(L, 1);
}

/* The client table (password only for auth_on_register). */
void lua_push_client(struct lua_worker *lw, midge_client *c, const char *id,
			const char *username, const void *password, size_t pwlen)
{
	const struct midge_broker_api *api = lw->plugin->api;
	lua_State *L = lw->L;

	if (c && !password && lua_client_tables(L, false)) {
		if (lua_rawgetp(L, -1, c) == LUA_TTABLE) {
			/* A copy of the kept one: what a script writes into its client
			 * stays in this call. */
			int kept = lua_gettop(L);
			lua_createtable(L, 0, 12);
			lua_pushnil(L);
			while (lua_next(L, kept)) {
				lua_pushvalue(L, -2);
				lua_insert(L, -2);
				lua_rawset(L, -4);
			}
			lua_replace(L, kept - 1);
			lua_settop(L, kept - 1);
			return;
		}
		lua_pop(L, 2);
	}
	lua_createtable(L, 0, 10);
	set_str(L, "client_id", id ? id : c ? api->client_id(c) : NULL);
	set_str(L, "username", username ? username : c ? api->client_username(c) : NULL);
	if (password) {
		lua_pushlstring(L, password, pwlen);
		lua_setfield(L, -2, "password");
	}
	if (!c)
		return;
	set_str(L, "address", api->client_address(c));
	set_int(L, "port", api->client_port(c));
	set_int(L, "protocol", api->client_protocol(c));
	set_int(L, "listener", api->client_listener_port(c));
	set_str(L, "cert_subject", api->client_cert_subject(c));
	lua_pushboolean(L, api->client_clean_start(c) == 1);
	lua_setfield(L, -2, "clean_start");
	set_int(L, "keepalive", api->client_keepalive(c));
}

static int refuse_write(lua_State *L)
{
	return luaL_error(L, "this table is shared: copy it to change it");
}

/* Makes the table on top refuse new keys (its existing ones stay readable). */
void lua_lock_table(lua_State *L)
{
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, refuse_write);
	lua_setfield(L, -2, "__newindex");
	lua_setmetatable(L, -2);
}

static void push_properties(lua_State *L, const struct midge_property *pr, uint32_t n)
{
	if (n == 0) {
		/* Most messages have none: one shared, read-only {user = {}} serves them all. */
		if (lua_getfield(L, LUA_REGISTRYINDEX, "midge.noprops") == LUA_TTABLE)
			return;
		lua_pop(L, 1);
		lua_createtable(L, 0, 1);
		lua_newtable(L);
		lua_lock_table(L);
		lua_setfield(L, -2, "user");
		lua_lock_table(L);
		lua_pushvalue(L, -1);
		lua_setfield(L, LUA_REGISTRYINDEX, "midge.noprops");
		return;
	}
	lua_createtable(L, 0, 6);
	lua_newtable(L);
	for (uint32_t i = 0; i < n; i++) {
		if (pr[i].identifier != MQTT_PROP_USER_PROPERTY)
			continue;
		lua_pushlstring(L, pr[i].name, pr[i].name_len);
		lua_pushlstring(L, pr[i].value, pr[i].value_len);
		lua_rawset(L, -3);
	}
	lua_setfield(L, -2, "user");
	for (uint32_t i = 0; i < n; i++) {
		const char *k = NULL;
		switch (pr[i].identifier) {
		case MQTT_PROP_CONTENT_TYPE: k = "content_type"; break;
		case MQTT_PROP_RESPONSE_TOPIC: k = "response_topic"; break;
		case MQTT_PROP_CORRELATION_DATA: k = "correlation_data"; break;
		case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL:
			set_int(L, "message_expiry", pr[i].number);
			continue;
		case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
			set_int(L, "payload_format", pr[i].number);
			continue;
		default: continue;
		}
		lua_pushlstring(L, pr[i].value, pr[i].value_len);
		lua_setfield(L, -2, k);
	}
}

void lua_push_message(lua_State *L, const char *topic, const void *payload, size_t len,
			 int qos, bool retain, const struct midge_property *pr, uint32_t n)
{
	lua_createtable(L, 0, 5);
	set_str(L, "topic", topic);
	lua_pushlstring(L, payload ? payload : "", payload ? len : 0);
	lua_setfield(L, -2, "payload");
	set_int(L, "qos", qos);
	lua_pushboolean(L, retain);
	lua_setfield(L, -2, "retain");
	push_properties(L, pr, n);
	lua_setfield(L, -2, "properties");
}
