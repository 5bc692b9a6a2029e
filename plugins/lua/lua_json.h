/*
 * lua_json.h: JSON for the Lua plugin's scripts (midge.json).
 * midge_lua_json_open() pushes {encode = f, decode = f, null = <light
 * userdata>}; see lua_json.c for the exact rules. Plain Lua 5.4 C API:
 * nothing here knows about the broker.
 */
#ifndef MIDGE_LUA_JSON_H
#define MIDGE_LUA_JSON_H

#include <lua.h>

/* Maximum nesting of arrays and objects, for encode and decode alike. */
#define MIDGE_LUA_JSON_MAX_DEPTH 64

/* Pushes the module table {encode, decode, null}; returns 1 (a lua_CFunction). */
int midge_lua_json_open(lua_State *L);

/* Pushes json.null, the value that stands for JSON null inside tables. */
void midge_lua_json_push_null(lua_State *L);

/* Whether the value at idx is json.null. */
int midge_lua_json_isnull(lua_State *L, int idx);

#endif
