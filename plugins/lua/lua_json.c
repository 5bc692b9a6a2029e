/*
 * lua_json.c: midge.json for Lua scripts, strict RFC 8259 JSON on the plain
 * Lua 5.4 C API. encode(value) raises on what JSON cannot hold (functions,
 * NaN, invalid UTF-8, nesting deeper than 64, cycles); decode(text) never
 * raises for bad input: it returns nil, "<what> at byte N" instead. Every
 * string is built in a luaL_Buffer, so memory comes from the state's own
 * allocator (memory_limit) and an error frees it like any Lua value.
 */
#include "lua_json.h"

#include <lauxlib.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH MIDGE_LUA_JSON_MAX_DEPTH

/* json.null is a light userdata pointing here. */
static const char json_null_tag = 0;

void midge_lua_json_push_null(lua_State *L)
{
	lua_pushlightuserdata(L, (void *)&json_null_tag);
}

int midge_lua_json_isnull(lua_State *L, int idx)
{
	return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == &json_null_tag;
}

/*
 * Length of the well-formed UTF-8 sequence (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF) starting at s, whose first byte is
 * 0x80 or more; n bytes are available. 0 when it is not well formed.
 */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned lo = 0x80, hi = 0xBF;
	size_t len;

	if (s[0] >= 0xC2 && s[0] <= 0xDF) {
		len = 2;
	} else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		len = 3;
		if (s[0] == 0xE0)
			lo = 0xA0;
		else if (s[0] == 0xED)
			hi = 0x9F;
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		len = 4;
		if (s[0] == 0xF0)
			lo = 0x90;
		else if (s[0] == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xC0) != 0x80)
			return 0;
	return len;
}

/* Writes code point cp (at most U+10FFFF, no surrogate) as UTF-8; returns the length. */
static size_t utf8_put(unsigned long cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xE0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char)(0xF0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char)(0x80 | (cp & 0x3F));
	return 4;
}

/* ------------------------------------------------------------------ encode */

/*
 * The encoder keeps to luaL_Buffer's rule: a buffer operation only runs
 * when the stack top is where the previous one left it. So each table is
 * encoded into its own buffer, each element's text is pushed above that
 * buffer as a string, and luaL_addvalue() takes it in. Values being encoded
 * stay on the stack meanwhile: no pointer into a string is used after the
 * string could have been collected (a __gc metamethod may run whenever the
 * buffer grows).
 */

/*
 * A finite number as JSON: the shortest of %.15g, %.16g and %.17g that
 * reads back as the same double, with '.' whatever the C locale says.
 */
static size_t format_float(char *buf, size_t size, double v)
{
	char point = lua_getlocaledecpoint();
	int n = 0;

	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(buf, size, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	if (n < 0 || (size_t)n >= size)
		n = 0;
	if (point != '.')
		for (int i = 0; i < n; i++)
			if (buf[i] == point)
				buf[i] = '.';
	return (size_t)n;
}

/*
 * The JSON text of nil, a boolean, a number or json.null at idx, written
 * into buf (at least 64 bytes); 0 for any other value. Raises for NaN and
 * infinities.
 */
static size_t simple_text(lua_State *L, int idx, char *buf, size_t size)
{
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		memcpy(buf, "null", 4);
		return 4;
	case LUA_TBOOLEAN:
		if (lua_toboolean(L, idx)) {
			memcpy(buf, "true", 4);
			return 4;
		}
		memcpy(buf, "false", 5);
		return 5;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx)) {
			int n = snprintf(buf, size, LUA_INTEGER_FMT, (LUAI_UACINT)lua_tointeger(L, idx));
			return n > 0 && (size_t)n < size ? (size_t)n : 0;
		} else {
			double v = (double)lua_tonumber(L, idx);

			if (isnan(v))
				luaL_error(L, "json.encode: cannot encode NaN");
			if (isinf(v))
				luaL_error(L, "json.encode: cannot encode an infinite number");
			return format_float(buf, size, v);
		}
	case LUA_TLIGHTUSERDATA:
		if (lua_touserdata(L, idx) == &json_null_tag) {
			memcpy(buf, "null", 4);
			return 4;
		}
		return 0;
	default:
		return 0;
	}
}

/* Pushes the string at idx (absolute) as a quoted, escaped JSON string. */
static void push_quoted(lua_State *L, int idx)
{
	size_t len, i = 0, run = 0;
	const char *s = lua_tolstring(L, idx, &len);
	const unsigned char *u = (const unsigned char *)s;
	luaL_Buffer b;

	luaL_buffinit(L, &b);
	luaL_addchar(&b, '"');
	while (i < len) {
		unsigned char c = u[i];

		if (c >= 0x80) {
			size_t n = utf8_len(u + i, len - i);

			if (n == 0)
				luaL_error(L, "json.encode: invalid UTF-8 in a string (byte %I)",
					   (lua_Integer)i + 1);
			i += n;
			continue;
		}
		if (c >= 0x20 && c != '"' && c != '\\') {
			i++;
			continue;
		}
		luaL_addlstring(&b, s + run, i - run);
		if (c == '"') {
			luaL_addlstring(&b, "\\\"", 2);
		} else if (c == '\\') {
			luaL_addlstring(&b, "\\\\", 2);
		} else if (c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f') {
			/* The short escapes people expect to read. */
			char esc[2] = {'\\', c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't'
						: c == '\b' ? 'b' : 'f'};

			luaL_addlstring(&b, esc, sizeof(esc));
		} else {
			static const char hex[] = "0123456789abcdef";
			char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

			luaL_addlstring(&b, esc, sizeof(esc));
		}
		run = ++i;
	}
	luaL_addlstring(&b, s + run, len - run);
	luaL_addchar(&b, '"');
	luaL_pushresult(&b);
}

static void enc_value(lua_State *L, int idx, int depth);

/* Pushes a table key at idx (absolute): a string or a number, as a JSON string. */
static void push_key(lua_State *L, int idx)
{
	char buf[72];
	size_t n;

	if (lua_type(L, idx) == LUA_TSTRING) {
		push_quoted(L, idx);
		return;
	}
	/* A number: the caller checked the type. */
	n = simple_text(L, idx, buf + 1, sizeof(buf) - 2);
	buf[0] = '"';
	buf[n + 1] = '"';
	lua_pushlstring(L, buf, n + 2);
}

/* Pushes the JSON text of the value on top of the stack in its place (pops it). */
static void replace_top_with_text(lua_State *L, int depth)
{
	char buf[64];
	int t = lua_type(L, -1);
	size_t n = t == LUA_TSTRING || t == LUA_TTABLE ? 0 : simple_text(L, -1, buf, sizeof(buf));

	if (n > 0) {
		lua_pop(L, 1);
		lua_pushlstring(L, buf, n);
		return;
	}
	enc_value(L, lua_gettop(L), depth);
	lua_remove(L, -2);
}

/*
 * Whether the table at t is a sequence 1..n (n > 0): returns n, 0 for an
 * empty table, -1 for anything else. Raw access only: no metamethod runs.
 */
static lua_Integer sequence_length(lua_State *L, int t)
{
	lua_Integer count = 0, max = 0;
	int seq = 1;

	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		count++;
		if (!seq)
			continue;
		if (lua_isinteger(L, -1)) {
			lua_Integer k = lua_tointeger(L, -1);

			if (k < 1)
				seq = 0;
			else if (k > max)
				max = k;
		} else {
			seq = 0;
		}
	}
	if (count == 0)
		return 0;
	return seq && max == count ? count : -1;
}

/* Pushes the JSON text of the table at t (absolute); depth counts this table. */
static void enc_table(lua_State *L, int t, int depth)
{
	luaL_Buffer b;
	lua_Integer n;

	if (depth > MAX_DEPTH)
		luaL_error(L, "json.encode: nesting too deep");
	luaL_checkstack(L, 10, "json.encode: nesting too deep");
	n = sequence_length(L, t);
	if (n == 0) {
		lua_pushliteral(L, "{}");
		return;
	}
	if (n > 0) {
		luaL_buffinit(L, &b);
		luaL_addchar(&b, '[');
		for (lua_Integer i = 1; i <= n; i++) {
			if (i > 1)
				luaL_addchar(&b, ',');
			lua_rawgeti(L, t, i);
			replace_top_with_text(L, depth);
			luaL_addvalue(&b);
		}
		luaL_addchar(&b, ']');
		luaL_pushresult(&b);
		return;
	}

	/* An object: first the keys, checked, into a list below the buffer. */
	int keys;
	lua_Integer nkeys = 0;

	lua_newtable(L);
	keys = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, t)) {
		int kt;

		lua_pop(L, 1);
		kt = lua_type(L, -1);
		if (kt != LUA_TSTRING && kt != LUA_TNUMBER)
			luaL_error(L, "json.encode: cannot encode a table key of type %s",
				   lua_typename(L, kt));
		lua_pushvalue(L, -1);
		lua_rawseti(L, keys, ++nkeys);
	}
	luaL_buffinit(L, &b);
	luaL_addchar(&b, '{');
	for (lua_Integer i = 1; i <= nkeys; i++) {
		if (i > 1)
			luaL_addchar(&b, ',');
		lua_rawgeti(L, keys, i);            /* key */
		push_key(L, lua_gettop(L));         /* key, "key" */
		lua_pushvalue(L, -2);
		lua_rawget(L, t);                   /* key, "key", value */
		replace_top_with_text(L, depth);    /* key, "key", text */
		lua_remove(L, -3);                  /* "key", text */
		lua_pushliteral(L, ":");
		lua_insert(L, -2);
		lua_concat(L, 3);                   /* "key":text */
		luaL_addvalue(&b);
	}
	luaL_addchar(&b, '}');
	luaL_pushresult(&b);
	lua_remove(L, keys);
}

/* Pushes the JSON text of the value at idx (absolute); depth: tables around it. */
static void enc_value(lua_State *L, int idx, int depth)
{
	char buf[64];
	size_t n;

	switch (lua_type(L, idx)) {
	case LUA_TSTRING:
		push_quoted(L, idx);
		return;
	case LUA_TTABLE:
		enc_table(L, idx, depth + 1);
		return;
	default:
		n = simple_text(L, idx, buf, sizeof(buf));
		if (n == 0)
			luaL_error(L, "json.encode: cannot encode a %s", luaL_typename(L, idx));
		lua_pushlstring(L, buf, n);
	}
}

/* json.encode(value) -> string; raises on what JSON cannot represent. */
static int json_encode(lua_State *L)
{
	lua_settop(L, 1);
	enc_value(L, 1, 0);
	return 1;
}

/* ------------------------------------------------------------------ decode */

/*
 * A recursive descent parser over the argument string (which stays on the
 * stack, so its bytes stay valid). Each dec_* function pushes one value and
 * returns 0, or records the error and returns -1; json_decode then drops
 * whatever the failed parse left on the stack.
 */
struct dec {
	lua_State *L;
	const unsigned char *s;
	size_t len;
	size_t pos;
	size_t err_at;
	char err[80];
};

static int dec_fail(struct dec *d, size_t at, const char *what)
{
	d->err_at = at;
	snprintf(d->err, sizeof(d->err), "%s", what);
	return -1;
}

/* The byte at d->pos is not what the grammar allows here. */
static int dec_unexpected(struct dec *d, const char *expected)
{
	unsigned c;

	if (d->pos >= d->len)
		return dec_fail(d, d->pos, "unexpected end of input");
	c = d->s[d->pos];
	d->err_at = d->pos;
	if (c > 0x20 && c < 0x7F)
		snprintf(d->err, sizeof(d->err), "unexpected '%c'%s%s", (char)c,
			 expected ? ", expected " : "", expected ? expected : "");
	else
		snprintf(d->err, sizeof(d->err), "unexpected byte 0x%02X%s%s", c,
			 expected ? ", expected " : "", expected ? expected : "");
	return -1;
}

static void dec_skip_ws(struct dec *d)
{
	while (d->pos < d->len) {
		unsigned char c = d->s[d->pos];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			return;
		d->pos++;
	}
}

static int hex4(const unsigned char *p, unsigned long *out)
{
	unsigned long v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned c = p[i];

		if (c >= '0' && c <= '9')
			v = v * 16 + (c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v = v * 16 + (c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

/* A string starting at the '"' at d->pos. */
static int dec_string(struct dec *d)
{
	const unsigned char *s = d->s;
	size_t i = d->pos + 1, run = i;
	int buffered = 0;
	luaL_Buffer b;

	for (;;) {
		unsigned char c;

		if (i >= d->len)
			return dec_fail(d, i, "unterminated string");
		c = s[i];
		if (c == '"')
			break;
		if (c < 0x20)
			return dec_fail(d, i, "control character in a string");
		if (c >= 0x80) {
			size_t n = utf8_len(s + i, d->len - i);

			if (n == 0)
				return dec_fail(d, i, "invalid UTF-8 in a string");
			i += n;
			continue;
		}
		if (c != '\\') {
			i++;
			continue;
		}
		/* An escape: from here on the string is built in a buffer. */
		if (!buffered) {
			luaL_buffinit(d->L, &b);
			buffered = 1;
		}
		luaL_addlstring(&b, (const char *)s + run, i - run);
		if (i + 1 >= d->len)
			return dec_fail(d, i, "unterminated string");
		switch (s[i + 1]) {
		case '"': luaL_addchar(&b, '"'); break;
		case '\\': luaL_addchar(&b, '\\'); break;
		case '/': luaL_addchar(&b, '/'); break;
		case 'b': luaL_addchar(&b, '\b'); break;
		case 'f': luaL_addchar(&b, '\f'); break;
		case 'n': luaL_addchar(&b, '\n'); break;
		case 'r': luaL_addchar(&b, '\r'); break;
		case 't': luaL_addchar(&b, '\t'); break;
		case 'u': {
			unsigned long cp, lo;
			char out[4];

			if (d->len - i < 6 || hex4(s + i + 2, &cp))
				return dec_fail(d, i, "invalid \\u escape");
			if (cp >= 0xDC00 && cp <= 0xDFFF)
				return dec_fail(d, i, "unpaired surrogate in a \\u escape");
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (d->len - i < 12 || s[i + 6] != '\\' || s[i + 7] != 'u' ||
				    hex4(s + i + 8, &lo) || lo < 0xDC00 || lo > 0xDFFF)
					return dec_fail(d, i, "unpaired surrogate in a \\u escape");
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				i += 6;
			}
			luaL_addlstring(&b, out, utf8_put(cp, out));
			i += 4; /* plus the 2 below */
			break;
		}
		default:
			return dec_fail(d, i, "invalid escape in a string");
		}
		i += 2;
		run = i;
	}
	if (buffered) {
		luaL_addlstring(&b, (const char *)s + run, i - run);
		luaL_pushresult(&b);
	} else {
		lua_pushlstring(d->L, (const char *)s + run, i - run);
	}
	d->pos = i + 1;
	return 0;
}

static int is_digit(const struct dec *d, size_t i)
{
	return i < d->len && d->s[i] >= '0' && d->s[i] <= '9';
}

/* A number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int dec_number(struct dec *d)
{
	size_t start = d->pos, i = d->pos, n;

	if (i < d->len && d->s[i] == '-')
		i++;
	if (!is_digit(d, i))
		return dec_fail(d, i, "invalid number");
	if (d->s[i] == '0')
		i++;
	else
		while (is_digit(d, i))
			i++;
	if (i < d->len && d->s[i] == '.') {
		i++;
		if (!is_digit(d, i))
			return dec_fail(d, i, "invalid number");
		while (is_digit(d, i))
			i++;
	}
	if (i < d->len && (d->s[i] == 'e' || d->s[i] == 'E')) {
		i++;
		if (i < d->len && (d->s[i] == '+' || d->s[i] == '-'))
			i++;
		if (!is_digit(d, i))
			return dec_fail(d, i, "invalid number");
		while (is_digit(d, i))
			i++;
	}
	d->pos = i;
	n = i - start;
	if (n < 200) {
		/* Lua's own conversion: an integer when it fits, else a float. */
		char buf[200];

		memcpy(buf, d->s + start, n);
		buf[n] = '\0';
		if (lua_stringtonumber(d->L, buf) == 0)
			return dec_fail(d, start, "invalid number");
	} else {
		/* Longer than any lua_Integer: a float. The copy is a userdata, so
		 * that a memory error cannot leak it. */
		char point = lua_getlocaledecpoint();
		char *copy = lua_newuserdatauv(d->L, n + 1, 0);
		double v;

		memcpy(copy, d->s + start, n);
		copy[n] = '\0';
		if (point != '.') {
			char *dot = strchr(copy, '.');

			if (dot)
				*dot = point;
		}
		v = strtod(copy, NULL);
		lua_pop(d->L, 1);
		lua_pushnumber(d->L, (lua_Number)v);
	}
	return 0;
}

static int dec_literal(struct dec *d, const char *word, size_t n)
{
	if (d->len - d->pos < n || memcmp(d->s + d->pos, word, n) != 0)
		return dec_fail(d, d->pos, "invalid literal");
	d->pos += n;
	return 0;
}

static int dec_value(struct dec *d, int depth);

/* An array starting at the '[' at d->pos; depth counts it. */
static int dec_array(struct dec *d, int depth)
{
	if (depth > MAX_DEPTH || !lua_checkstack(d->L, 6))
		return dec_fail(d, d->pos, "nesting too deep");
	lua_newtable(d->L);
	d->pos++;
	dec_skip_ws(d);
	if (d->pos < d->len && d->s[d->pos] == ']') {
		d->pos++;
		return 0;
	}
	for (lua_Integer i = 1;; i++) {
		if (dec_value(d, depth))
			return -1;
		lua_rawseti(d->L, -2, i);
		dec_skip_ws(d);
		if (d->pos < d->len && d->s[d->pos] == ',') {
			d->pos++;
			continue;
		}
		if (d->pos < d->len && d->s[d->pos] == ']') {
			d->pos++;
			return 0;
		}
		return dec_unexpected(d, "',' or ']'");
	}
}

/* An object starting at the '{' at d->pos; depth counts it. Repeated keys: the last wins. */
static int dec_object(struct dec *d, int depth)
{
	if (depth > MAX_DEPTH || !lua_checkstack(d->L, 6))
		return dec_fail(d, d->pos, "nesting too deep");
	lua_newtable(d->L);
	d->pos++;
	dec_skip_ws(d);
	if (d->pos < d->len && d->s[d->pos] == '}') {
		d->pos++;
		return 0;
	}
	for (;;) {
		if (d->pos >= d->len || d->s[d->pos] != '"')
			return dec_unexpected(d, "a string (object key)");
		if (dec_string(d))
			return -1;
		dec_skip_ws(d);
		if (d->pos >= d->len || d->s[d->pos] != ':')
			return dec_unexpected(d, "':'");
		d->pos++;
		if (dec_value(d, depth))
			return -1;
		lua_rawset(d->L, -3);
		dec_skip_ws(d);
		if (d->pos < d->len && d->s[d->pos] == ',') {
			d->pos++;
			dec_skip_ws(d);
			continue;
		}
		if (d->pos < d->len && d->s[d->pos] == '}') {
			d->pos++;
			return 0;
		}
		return dec_unexpected(d, "',' or '}'");
	}
}

/* Any value, after optional white space; depth: the containers around it. */
static int dec_value(struct dec *d, int depth)
{
	dec_skip_ws(d);
	if (d->pos >= d->len)
		return dec_fail(d, d->pos, "unexpected end of input");
	switch (d->s[d->pos]) {
	case '{':
		return dec_object(d, depth + 1);
	case '[':
		return dec_array(d, depth + 1);
	case '"':
		return dec_string(d);
	case 't':
		if (dec_literal(d, "true", 4))
			return -1;
		lua_pushboolean(d->L, 1);
		return 0;
	case 'f':
		if (dec_literal(d, "false", 5))
			return -1;
		lua_pushboolean(d->L, 0);
		return 0;
	case 'n':
		if (dec_literal(d, "null", 4))
			return -1;
		midge_lua_json_push_null(d->L);
		return 0;
	case '-': case '0': case '1': case '2': case '3': case '4':
	case '5': case '6': case '7': case '8': case '9':
		return dec_number(d);
	default:
		return dec_unexpected(d, NULL);
	}
}

/* json.decode(text) -> value | nil, "message at byte N" (bytes count from 1). */
static int json_decode(lua_State *L)
{
	struct dec d;
	size_t len;

	if (lua_type(L, 1) != LUA_TSTRING) {
		lua_pushnil(L);
		lua_pushfstring(L, "json.decode: expected a string, got %s", luaL_typename(L, 1));
		return 2;
	}
	lua_settop(L, 1);
	memset(&d, 0, sizeof(d));
	d.L = L;
	d.s = (const unsigned char *)lua_tolstring(L, 1, &len);
	d.len = len;
	if (dec_value(&d, 0) == 0) {
		dec_skip_ws(&d);
		if (d.pos == d.len)
			return 1;
		dec_unexpected(&d, "the end of the input");
	}
	lua_settop(L, 1);
	lua_pushnil(L);
	lua_pushfstring(L, "%s at byte %I", d.err, (lua_Integer)d.err_at + 1);
	return 2;
}

/* ------------------------------------------------------------------ module */

int midge_lua_json_open(lua_State *L)
{
	static const luaL_Reg funcs[] = {
		{"encode", json_encode},
		{"decode", json_decode},
		{NULL, NULL},
	};

	luaL_newlib(L, funcs);
	midge_lua_json_push_null(L);
	lua_setfield(L, -2, "null");
	return 1;
}
