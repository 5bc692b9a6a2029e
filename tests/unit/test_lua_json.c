/*
 * test_lua_json.c: midge.json, the Lua plugin's JSON module, driven from
 * a bare Lua state: round trips, the exact text encode writes, strict
 * decoding with error positions, depth limits and hostile input.
 */
#include "config.h"

#include "tests.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <string.h>

#include "../../plugins/lua/lua_json.h"

static lua_State *L;

static void setup(void)
{
	L = luaL_newstate();
	luaL_openlibs(L);
	midge_lua_json_open(L);
	lua_setglobal(L, "json");
}

static void teardown(void)
{
	lua_close(L);
}

/* Runs a chunk that returns one string; returns it (valid until the next run). */
static const char *run(const char *code)
{
	lua_settop(L, 0);
	if (luaL_dostring(L, code) != LUA_OK)
		ck_abort_msg("lua error: %s", lua_tostring(L, -1));
	return lua_tostring(L, -1);
}

START_TEST(test_encode_exact_text)
{
	ck_assert_str_eq(run("return json.encode({1, 2, 3})"), "[1,2,3]");
	ck_assert_str_eq(run("return json.encode({})"), "{}");
	ck_assert_str_eq(run("return json.encode({a = true})"), "{\"a\":true}");
	ck_assert_str_eq(run("return json.encode('q\"\\\\\\n\\1')"), "\"q\\\"\\\\\\n\\u0001\"");
	ck_assert_str_eq(run("return json.encode(json.null)"), "null");
	ck_assert_str_eq(run("return json.encode(0.5)"), "0.5");
	ck_assert_str_eq(run("return json.encode(-7)"), "-7");
	ck_assert_str_eq(run("return json.encode('\\u{e9}')"), "\"\xc3\xa9\"");
}
END_TEST

START_TEST(test_round_trip)
{
	ck_assert_str_eq(run("local v = json.decode('{\"a\":[1,2,{\"b\":null}],\"c\":\"x\"}')\n"
			     "return tostring(v.a[2]) .. v.c .. tostring(v.a[3].b == json.null)"),
			 "2xtrue");
	ck_assert_str_eq(run("local t = json.decode(json.encode({n = 1.25, s = 'hi', l = {1, 2}}))\n"
			     "return t.n .. t.s .. #t.l"),
			 "1.25hi2");
	ck_assert_str_eq(run("return math.type(json.decode('42')) .. math.type(json.decode('4.5'))"),
			 "integerfloat");
	ck_assert_str_eq(run("return json.decode('\"\\\\ud83d\\\\ude00\"')"), "\xf0\x9f\x98\x80");
}
END_TEST

START_TEST(test_decode_refuses_with_position)
{
	static const char *const bad[] = {
		"[1,2,]", "{\"a\":1,}", "// c\n1", "[1 2]", "{a:1}", "'x'", "01", "1.",
		"\"\\ud800\"", "tru", "[", "\"\x01\"", "", "1 2", "{\"a\" 1}", "nan",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		lua_settop(L, 0);
		lua_getglobal(L, "json");
		lua_getfield(L, -1, "decode");
		lua_pushstring(L, bad[i]);
		ck_assert_int_eq(lua_pcall(L, 1, 2, 0), LUA_OK); /* never raises for bad input */
		ck_assert_msg(lua_isnil(L, -2), "accepted %s", bad[i]);
		ck_assert_msg(lua_isstring(L, -1) && strstr(lua_tostring(L, -1), "byte"),
			      "no position for %s", bad[i]);
	}
}
END_TEST

START_TEST(test_limits_and_refusals)
{
	/* Nesting beyond the limit is refused both ways, not a crash. */
	ck_assert_str_eq(run("local s = string.rep('[', 65) .. string.rep(']', 65)\n"
			     "local v, err = json.decode(s) return tostring(v) .. ' ' .. tostring(err ~= nil)"),
			 "nil true");
	ck_assert_str_eq(run("local s = string.rep('[', 64) .. string.rep(']', 64)\n"
			     "return type(json.decode(s))"),
			 "table");
	ck_assert_str_eq(run("local t = {} t.self = t\n"
			     "return tostring(pcall(json.encode, t))"),
			 "false");
	ck_assert_str_eq(run("return tostring(pcall(json.encode, 0/0))"), "false");
	ck_assert_str_eq(run("return tostring(pcall(json.encode, '\\xff'))"), "false");
	ck_assert_str_eq(run("return tostring(pcall(json.encode, {[true] = 1}))"), "false");
}
END_TEST

START_TEST(test_random_bytes_never_crash)
{
	test_rng_seed(7);
	for (int i = 0; i < 2000; i++) {
		char buf[64];
		size_t n = test_rng(sizeof(buf));
		static const char alphabet[] = "[]{}\":,0123456789.eE+-tfnrulsa\\u \x01\xff";
		for (size_t k = 0; k < n; k++)
			buf[k] = alphabet[test_rng(sizeof(alphabet) - 1)];
		lua_settop(L, 0);
		lua_getglobal(L, "json");
		lua_getfield(L, -1, "decode");
		lua_pushlstring(L, buf, n);
		ck_assert_int_eq(lua_pcall(L, 1, 2, 0), LUA_OK);
	}
}
END_TEST

Suite *suite_lua_json(void)
{
	Suite *s = suite_create("lua_json");
	TCase *tc = tcase_create("json");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_encode_exact_text);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_decode_refuses_with_position);
	tcase_add_test(tc, test_limits_and_refusals);
	tcase_add_test(tc, test_random_bytes_never_crash);
	suite_add_tcase(s, tc);
	return s;
}
