/*
 * conf_reload.c: keeps the options that need a restart when the
 * configuration is reloaded (see conf_reload.h). Which options those are
 * comes from the schema table (no CONF_F_RELOADABLE flag); the listeners'
 * identity (address, port, socket) is checked here as well.
 */
#include "config.h"

#include "conf_reload.h"

#include "alloc.h"
#include "conf_schema.h"

#include <stdio.h>
#include <string.h>

static void *field(void *base, size_t off)
{
	return (char *)base + off;
}

static const void *cfield(const void *base, size_t off)
{
	return (const char *)base + off;
}

static bool same_string(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_strlist(const struct config_strlist *a, const struct config_strlist *b)
{
	if (a->count != b->count)
		return false;
	for (size_t i = 0; i < a->count; i++)
		if (strcmp(a->items[i], b->items[i]) != 0)
			return false;
	return true;
}

/* Size of a plain (non-pointer) field of this type; 0 for the others. */
static size_t plain_size(enum conf_type type)
{
	switch (type) {
	case CONF_T_BOOL: return sizeof(bool);
	case CONF_T_TRIBOOL:
	case CONF_T_INT:
	case CONF_T_ENUM: return sizeof(int);
	case CONF_T_UINT32: return sizeof(uint32_t);
	case CONF_T_SIZE: return sizeof(uint64_t);
	case CONF_T_DURATION: return sizeof(int64_t);
	default: return 0;
	}
}

/*
 * Makes dst's field equal to src's (deep copy); returns 1 when it changed,
 * 0 when equal, -1 when out of memory.
 */
static int keep_field(const struct conf_option *o, void *dst, const void *src)
{
	size_t n = plain_size(o->type);

	if (n) {
		if (memcmp(dst, src, n) == 0)
			return 0;
		memcpy(dst, src, n);
		return 1;
	}
	if (o->type == CONF_T_STRING) {
		char **d = dst;
		char *const *s = src;
		if (same_string(*d, *s))
			return 0;
		char *copy = *s ? mem_strdup(*s) : NULL;
		if (*s && !copy)
			return -1;
		mem_free(*d);
		*d = copy;
		return 1;
	}
	if (o->type == CONF_T_STRLIST) {
		struct config_strlist *d = dst;
		const struct config_strlist *s = src;
		if (same_strlist(d, s))
			return 0;
		strlist_free(d);
		for (size_t i = 0; i < s->count; i++)
			if (strlist_add(d, s->items[i]) < 0)
				return -1;
		return 1;
	}
	return 0;
}

static bool needs_restart(const struct conf_option *o)
{
	return !(o->flags & (CONF_F_RELOADABLE | CONF_F_ALIAS)) && o->scope != CONF_SC_SECURITY &&
	       o->scope != CONF_SC_NONE && o->type != CONF_T_SPECIAL && o->type != CONF_T_SECTION &&
	       o->type != CONF_T_LEGACY;
}

static void add_diag(struct config_diag *diag, bool error, const char *key, const char *msg)
{
	struct config_error **list = error ? &diag->errors : &diag->warnings;
	size_t *n = error ? &diag->nerrors : &diag->nwarnings;
	struct config_error *grown = mem_realloc(*list, (*n + 1) * sizeof(**list));

	if (!grown)
		return;
	*list = grown;
	grown[*n] = (struct config_error){.key = mem_strdup(key), .message = mem_strdup(msg)};
	(*n)++;
}

static bool same_socket(const struct config_listener *a, const struct config_listener *b)
{
	return a->port == b->port && a->protocol == b->protocol &&
	       a->socket_domain == b->socket_domain && same_string(a->bind_address, b->bind_address) &&
	       same_string(a->unix_path, b->unix_path) && same_string(a->bind_interface, b->bind_interface);
}

int config_reload_merge(struct config *next, const struct config *current,
			struct config_diag *diag)
{
	char msg[256];

	if (next->nlisteners != current->nlisteners) {
		snprintf(msg, sizeof(msg), "the file now has %zu listeners instead of %zu; "
			 "listeners change only with a restart", next->nlisteners, current->nlisteners);
		add_diag(diag, true, "listener", msg);
		return -1;
	}
	for (size_t i = 0; i < next->nlisteners; i++) {
		if (same_socket(&next->listeners[i], &current->listeners[i]))
			continue;
		snprintf(msg, sizeof(msg), "listener %zu changed its address or port; "
			 "listeners change only with a restart", i + 1);
		add_diag(diag, true, "listener", msg);
		return -1;
	}
	for (size_t k = 0; k < conf_schema_count(); k++) {
		const struct conf_option *o = conf_schema_at(k);
		int changed = 0;

		if (!needs_restart(o))
			continue;
		if (o->scope == CONF_SC_GLOBAL) {
			changed = keep_field(o, field(next, o->off), cfield(current, o->off));
		} else if (o->scope == CONF_SC_LISTENER) {
			size_t sec = offsetof(struct config_listener, security);
			if (o->off >= sec && o->off < sec + sizeof(struct config_security))
				continue; /* security settings reload */
			for (size_t i = 0; i < next->nlisteners && changed >= 0; i++) {
				int c = keep_field(o, field(&next->listeners[i], o->off),
						   cfield(&current->listeners[i], o->off));
				changed = c < 0 ? -1 : (changed || c);
			}
		}
		if (changed < 0) {
			add_diag(diag, true, o->name, "out of memory");
			return -1;
		}
		if (changed) {
			snprintf(msg, sizeof(msg), "'%s' changes only with a restart; keeping the value in use",
				 o->name);
			add_diag(diag, false, o->name, msg);
		}
	}
	/* Joining or leaving a cluster takes a restart too (the options above warned). */
	next->cluster.enabled = current->cluster.enabled;
	return 0;
}
