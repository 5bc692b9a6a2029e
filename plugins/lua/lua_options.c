/*
 * lua_options.c: the Lua plugin's options (scripts, limits, cache, on_error,
 * allow_modules) parsed into a struct lua_conf, shared by reference between
 * the plugin and its workers' states and replaced whole on reload.
 */
#define _POSIX_C_SOURCE 200809L

#include "lua_plugin.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void lua_conf_unref(struct lua_conf *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	for (size_t i = 0; i < c->nscripts; i++)
		free(c->scripts[i]);
	for (size_t i = 0; i < c->nmodules; i++)
		free(c->allow_modules[i]);
	free(c->scripts);
	free(c->allow_modules);
	free(c);
}

struct lua_conf *lua_conf_ref(struct lua_conf *c)
{
	atomic_fetch_add(&c->refs, 1);
	return c;
}

/* Adds the words of value (separated by blanks or commas) to a list. */
static int add_words(char ***list, size_t *n, const char *value)
{
	const char *p = value;

	while (*p) {
		while (*p && (isspace((unsigned char)*p) || *p == ','))
			p++;
		size_t len = 0;
		while (p[len] && !isspace((unsigned char)p[len]) && p[len] != ',')
			len++;
		if (!len)
			break;
		char **grown = realloc(*list, (*n + 1) * sizeof(**list));
		if (!grown)
			return -1;
		*list = grown;
		if (!(grown[*n] = strndup(p, len)))
			return -1;
		(*n)++;
		p += len;
	}
	return 0;
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);

	if (errno || end == s)
		return -1;
	switch (tolower((unsigned char)*end)) {
	case 'k': v <<= 10; end++; break;
	case 'm': v <<= 20; end++; break;
	case 'g': v <<= 30; end++; break;
	default: break;
	}
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end || v < (256u << 10))
		return -1; /* less than 256 KiB cannot even hold the libraries */
	*out = (size_t)v;
	return 0;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);

	if (errno || end == s || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

struct lua_conf *lua_conf_parse(struct lua_plugin *p, const struct midge_option *opts,
				   int n)
{
	struct lua_conf *c = calloc(1, sizeof(*c));
	uint64_t v;
	int bad = 0;

	if (!c)
		return NULL;
	atomic_init(&c->refs, 1);
	c->timeout_ms = 100;
	c->max_instructions = 10000000;
	c->memory_limit = 64u << 20;
	c->on_error = MIDGE_DENY;
	for (int i = 0; i < n && !bad; i++) {
		const char *k = opts[i].key, *val = opts[i].value ? opts[i].value : "";
		if (strcmp(k, "scripts") == 0 || strcmp(k, "script") == 0) {
			bad = add_words(&c->scripts, &c->nscripts, val) < 0;
		} else if (strcmp(k, "allow_modules") == 0) {
			bad = add_words(&c->allow_modules, &c->nmodules, val) < 0;
		} else if (strcmp(k, "timeout_ms") == 0) {
			bad = parse_uint(val, 600000, &v) < 0 || v == 0;
			c->timeout_ms = (uint32_t)v;
		} else if (strcmp(k, "max_instructions") == 0) {
			bad = parse_uint(val, UINT64_MAX / 2, &v) < 0 || v < 1000;
			c->max_instructions = v;
		} else if (strcmp(k, "memory_limit") == 0) {
			bad = parse_size(val, &c->memory_limit) < 0;
		} else if (strcmp(k, "cache_ttl") == 0) {
			bad = parse_uint(val, 86400 * 365, &v) < 0;
			c->cache_ttl = (uint32_t)v;
		} else if (strcmp(k, "on_error") == 0) {
			if (strcmp(val, "deny") == 0)
				c->on_error = MIDGE_DENY;
			else if (strcmp(val, "allow") == 0)
				c->on_error = MIDGE_ALLOW;
			else if (strcmp(val, "defer") == 0)
				c->on_error = MIDGE_DEFER;
			else
				bad = 1;
		} else {
			p->api->log(p->self, MIDGE_LOG_WARNING, "unknown option '%s' ignored", k);
			continue;
		}
		if (bad)
			p->api->log(p->self, MIDGE_LOG_ERR, "option %s: bad value '%s'", k, val);
	}
	if (!bad && c->nscripts == 0) {
		p->api->log(p->self, MIDGE_LOG_ERR, "no scripts: give the option 'scripts'");
		bad = 1;
	}
	if (bad) {
		lua_conf_unref(c);
		return NULL;
	}
	return c;
}
