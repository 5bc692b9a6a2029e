/*
 * conf_yaml.c: the YAML front end (libyaml document API).
 *
 * Owns the YAML layout: a top-level mapping of the same option names as
 * mosquitto.conf, plus the sections listeners:, bridges:, plugins: and a
 * bridge's topics:, and ${NAME} / ${NAME:-default} expansion in values.
 * Every (key, value) becomes a conf_apply() call carrying the libyaml mark
 * (1-based line and column); types, ranges and errors are conf_schema.c's
 * and conf.c's. Structural mistakes (a mapping where a value belongs,
 * duplicate keys) are reported here.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "alloc.h"
#include "conf_schema.h"

struct walk {
	struct conf_ctx *ctx;
	yaml_document_t *doc;
};

static struct config_loc mark_loc(const struct walk *w, yaml_mark_t m)
{
	return (struct config_loc){w->ctx->file, (int)m.line + 1, (int)m.column + 1};
}

static yaml_node_t *node(const struct walk *w, int id)
{
	return yaml_document_get_node(w->doc, id);
}

static const char *scalar_text(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static const char *kind(const yaml_node_t *n)
{
	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	return n->type == YAML_SEQUENCE_NODE ? "a list" : "a value";
}

/* ---- ${NAME} and ${NAME:-default} ------------------------------------------ */

struct buf {
	char *p;
	size_t len, cap;
};

static int buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *grown = mem_realloc(b->p, cap);
		if (!grown)
			return -1;
		b->p = grown;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static bool valid_env_name(const char *s, size_t n)
{
	if (n == 0 || isdigit((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

/* Expands one ${...} at s (s[0] == '$'); returns its length in s, or 0 on error. */
static size_t expand_one(struct walk *w, const char *s, const struct config_loc *loc,
			 struct buf *out)
{
	const char *close = strchr(s + 2, '}');
	const char *def;
	char name[256];
	size_t nlen;
	const char *val;

	if (!close) {
		conf_error(w->ctx, loc, NULL, "unterminated '${' in value");
		return 0;
	}
	def = strstr(s + 2, ":-");
	if (def && def > close)
		def = NULL;
	nlen = (size_t)((def ? def : close) - (s + 2));
	if (nlen >= sizeof(name) || !valid_env_name(s + 2, nlen)) {
		conf_error(w->ctx, loc, NULL, "invalid environment variable name '%.*s'", (int)nlen,
			   s + 2);
		return 0;
	}
	memcpy(name, s + 2, nlen);
	name[nlen] = '\0';
	val = getenv(name);
	if (def && (!val || !*val))
		val = NULL; /* shell semantics: the default also covers an empty variable */
	if (!val && !def) {
		conf_error(w->ctx, loc, NULL, "environment variable '%s' is not set "
			   "(write ${%s:-default} to give a default)", name, name);
		return 0;
	}
	if (val ? buf_add(out, val, strlen(val)) : buf_add(out, def + 2, (size_t)(close - def - 2)))
		return 0;
	return (size_t)(close - s) + 1;
}

/* The scalar's text with variables expanded ("$${" stays "${"); NULL after an error. */
static char *expand(struct walk *w, const yaml_node_t *n, const struct config_loc *at)
{
	const char *s = scalar_text(n);
	size_t len = n->data.scalar.length;
	int quoted = n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
		     n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
	struct buf out = {0};
	size_t i = 0;

	if (strlen(s) != len) {
		conf_error(w->ctx, at, NULL, "NUL character in value");
		return NULL;
	}
	if (buf_add(&out, "", 0) < 0)
		return NULL;
	while (i < len) {
		struct config_loc loc = *at;
		size_t used;

		loc.column += quoted + (int)i;
		if (s[i] == '$' && s[i + 1] == '$' && s[i + 2] == '{') {
			used = buf_add(&out, "${", 2) < 0 ? 0 : 3;
		} else if (s[i] == '$' && s[i + 1] == '{') {
			used = expand_one(w, s + i, &loc, &out);
		} else {
			used = buf_add(&out, s + i, 1) < 0 ? 0 : 1;
		}
		if (used == 0) {
			mem_free(out.p);
			return NULL;
		}
		i += used;
	}
	return out.p;
}

/* A plain ~, null or empty scalar has no value. */
static bool is_null(const yaml_node_t *n)
{
	const char *s = scalar_text(n);

	return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (!*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
		strcmp(s, "NULL") == 0);
}

/* ---- Mappings ------------------------------------------------------------------ */

/* Whether the key of `pair` repeats an earlier key of the same mapping. */
static bool duplicate_key(struct walk *w, const yaml_node_t *map, const yaml_node_pair_t *pair)
{
	const yaml_node_t *k = node(w, pair->key);

	for (const yaml_node_pair_t *p = map->data.mapping.pairs.start; p < pair; p++) {
		const yaml_node_t *e = node(w, p->key);
		if (e->type == YAML_SCALAR_NODE && strcmp(scalar_text(e), scalar_text(k)) == 0) {
			struct config_loc loc = mark_loc(w, k->start_mark);
			conf_error(w->ctx, &loc, scalar_text(k),
				   "duplicate key '%s' (first at line %d)", scalar_text(k),
				   (int)e->start_mark.line + 1);
			return true;
		}
	}
	return false;
}

typedef int (*pair_fn)(struct walk *w, const char *key, const struct config_loc *kloc,
		       yaml_node_t *val, void *arg);

/* Calls fn for each (scalar key, value) of a mapping, reporting bad and repeated keys. */
static int each_pair(struct walk *w, yaml_node_t *map, pair_fn fn, void *arg)
{
	int rc = 0;

	yaml_node_pair_t *end = map->data.mapping.pairs.top;

	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < end; p++) {
		yaml_node_t *k = node(w, p->key);
		struct config_loc kloc = mark_loc(w, k->start_mark);

		if (k->type != YAML_SCALAR_NODE) {
			conf_error(w->ctx, &kloc, NULL, "expected an option name, found %s",
				   kind(k));
			rc = -1;
		} else if (duplicate_key(w, map, p)) {
			rc = -1;
		} else if (fn(w, scalar_text(k), &kloc, node(w, p->value), arg) < 0) {
			rc = -1;
		}
	}
	return rc;
}

/* A scalar value (or the scalars of a list) handed to conf_apply(). */
static int apply_values(struct walk *w, const char *key, const struct config_loc *kloc,
			yaml_node_t *val)
{
	yaml_node_t *one[1] = {val};
	yaml_node_t **items = one;
	size_t n = 1;
	struct conf_value *vals;
	int rc = -1;

	if (val->type == YAML_SEQUENCE_NODE) {
		n = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
		items = NULL;
	}
	vals = mem_calloc(n ? n : 1, sizeof(*vals));
	if (!vals)
		return -1;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *it = items ? items[i] : node(w, val->data.sequence.items.start[i]);
		struct config_loc loc = mark_loc(w, it->start_mark);

		if (it->type != YAML_SCALAR_NODE) {
			conf_error(w->ctx, &loc, key, "'%s' expects a value here, not %s", key,
				   kind(it));
			goto out;
		}
		vals[i].loc = loc;
		vals[i].text = is_null(it) ? mem_strdup("") : expand(w, it, &loc);
		if (!vals[i].text)
			goto out;
	}
	rc = conf_apply(w->ctx, key, kloc, vals, n);
out:
	for (size_t i = 0; i < n; i++)
		mem_free((char *)vals[i].text);
	mem_free(vals);
	return rc;
}

static int walk_section(struct walk *w, const struct conf_option *o, const char *key,
			const struct config_loc *kloc, yaml_node_t *val);

static int top_pair(struct walk *w, const char *key, const struct config_loc *kloc,
		    yaml_node_t *val, void *arg)
{
	const struct conf_option *o = conf_schema_canonical(conf_schema_find(key));

	(void)arg;
	if (o && o->type == CONF_T_SECTION)
		return walk_section(w, o, key, kloc, val);
	if (!o)
		return conf_apply(w->ctx, key, kloc, NULL, 0); /* reports the unknown key */
	if (val->type == YAML_MAPPING_NODE) {
		struct config_loc loc = mark_loc(w, val->start_mark);
		conf_error(w->ctx, &loc, key, "'%s' expects a value, not a mapping", key);
		return -1;
	}
	return apply_values(w, key, kloc, val);
}

/* ---- Sections -------------------------------------------------------------------- */

static const char *scalar_of(struct walk *w, yaml_node_t *val, const char *key)
{
	struct config_loc loc = mark_loc(w, val->start_mark);

	if (val->type != YAML_SCALAR_NODE) {
		conf_error(w->ctx, &loc, key, "'%s' expects a value, not %s", key, kind(val));
		return NULL;
	}
	return scalar_text(val);
}

static int unknown_subkey(struct walk *w, const char *key, const struct config_loc *kloc,
			  const char *where, const char *const *keys, size_t n)
{
	const char *close = conf_closest(key, keys, n);

	if (close)
		conf_error(w->ctx, kloc, key, "unknown key '%s' in %s (did you mean '%s'?)", key,
			   where, close);
	else
		conf_error(w->ctx, kloc, key, "unknown key '%s' in %s", key, where);
	return -1;
}

static int plugin_option(struct walk *w, const char *key, const struct config_loc *kloc,
			 yaml_node_t *val, void *arg)
{
	char name[256];

	(void)arg;
	if (snprintf(name, sizeof(name), "plugin_opt_%s", key) >= (int)sizeof(name)) {
		conf_error(w->ctx, kloc, key, "plugin option name '%s' is too long", key);
		return -1;
	}
	/* A list gives the option once per item (scripts: [a.lua, b.lua]). */
	if (val->type != YAML_SEQUENCE_NODE && !scalar_of(w, val, key))
		return -1;
	return apply_values(w, name, kloc, val);
}

static int plugin_pair(struct walk *w, const char *key, const struct config_loc *kloc,
		       yaml_node_t *val, void *arg)
{
	static const char *const keys[] = {"path", "options", "deny_special_chars", "name"};

	(void)arg;
	if (strcmp(key, "path") == 0)
		return 0; /* applied first, by walk_plugin() */
	if (strcmp(key, "name") == 0)
		return scalar_of(w, val, key) ? apply_values(w, "plugin_name", kloc, val) : -1;
	if (strcmp(key, "deny_special_chars") == 0)
		return scalar_of(w, val, key)
			       ? apply_values(w, "auth_plugin_deny_special_chars", kloc, val)
			       : -1;
	if (strcmp(key, "options") == 0) {
		if (val->type == YAML_MAPPING_NODE)
			return each_pair(w, val, plugin_option, NULL);
		if (val->type == YAML_SCALAR_NODE && is_null(val))
			return 0;
		conf_error(w->ctx, kloc, key, "'options' expects a mapping of key: value");
		return -1;
	}
	return unknown_subkey(w, key, kloc, "a plugin entry", keys, 4);
}

static int walk_plugin(struct walk *w, yaml_node_t *item)
{
	struct config_loc loc = mark_loc(w, item->start_mark);
	int rc = -1;

	if (item->type == YAML_SCALAR_NODE) {
		rc = apply_values(w, "plugin", &loc, item);
	} else if (item->type == YAML_MAPPING_NODE) {
		yaml_node_t *path = NULL, *name = NULL;
		struct config_loc ploc = loc, nloc = loc;

		for (yaml_node_pair_t *p = item->data.mapping.pairs.start;
		     p < item->data.mapping.pairs.top; p++) {
			yaml_node_t *k = node(w, p->key);
			if (k->type == YAML_SCALAR_NODE && strcmp(scalar_text(k), "path") == 0) {
				path = node(w, p->value);
				ploc = mark_loc(w, k->start_mark);
			}
			if (k->type == YAML_SCALAR_NODE && strcmp(scalar_text(k), "name") == 0) {
				name = node(w, p->value);
				nloc = mark_loc(w, k->start_mark);
			}
		}
		/* {name: lua} alone is the bundled plugin of that name. */
		if (!path && name && name->type == YAML_SCALAR_NODE) {
			path = name;
			ploc = nloc;
		}
		if (!path)
			conf_error(w->ctx, &loc, "plugins", "a plugin entry needs a 'path' (or a 'name')");
		else if (scalar_of(w, path, "path") && apply_values(w, "plugin", &ploc, path) == 0)
			rc = each_pair(w, item, plugin_pair, NULL);
	} else {
		conf_error(w->ctx, &loc, "plugins",
			   "a plugin entry is a path or a mapping with 'path'");
	}
	conf_plugin_done(w->ctx);
	return rc;
}

struct topic_parts {
	const char *parts[CONF_TOPIC_NPARTS];
	struct config_loc locs[CONF_TOPIC_NPARTS];
};

static int topic_pair(struct walk *w, const char *key, const struct config_loc *kloc,
		      yaml_node_t *val, void *arg)
{
	static const char *const keys[CONF_TOPIC_NPARTS] = {
		"pattern", "direction", "qos", "local_prefix", "remote_prefix"};
	struct topic_parts *tp = arg;

	for (size_t i = 0; i < CONF_TOPIC_NPARTS; i++) {
		if (strcmp(key, keys[i]) != 0)
			continue;
		tp->parts[i] = scalar_of(w, val, key);
		tp->locs[i] = mark_loc(w, val->start_mark);
		if (tp->parts[i] && is_null(val))
			tp->parts[i] = "";
		return tp->parts[i] ? 0 : -1;
	}
	return unknown_subkey(w, key, kloc, "a bridge topic", keys, CONF_TOPIC_NPARTS);
}

static int walk_topic(struct walk *w, yaml_node_t *item)
{
	struct config_loc loc = mark_loc(w, item->start_mark);
	struct topic_parts tp;

	if (item->type == YAML_SCALAR_NODE)
		return apply_values(w, "topic", &loc, item);
	if (item->type != YAML_MAPPING_NODE) {
		conf_error(w->ctx, &loc, "topics", "a bridge topic is a string or a mapping");
		return -1;
	}
	memset(&tp, 0, sizeof(tp));
	for (size_t i = 0; i < CONF_TOPIC_NPARTS; i++)
		tp.locs[i] = loc;
	if (each_pair(w, item, topic_pair, &tp) < 0)
		return -1;
	if (!tp.parts[CONF_TOPIC_PATTERN]) {
		conf_error(w->ctx, &loc, "topics", "a bridge topic needs a 'pattern'");
		return -1;
	}
	return conf_bridge_topic(w->ctx, tp.parts, tp.locs);
}

static int walk_mapping_item(struct walk *w, yaml_node_t *item, enum conf_section sec)
{
	struct config_loc loc = mark_loc(w, item->start_mark);
	int rc;

	if (item->type != YAML_MAPPING_NODE) {
		conf_error(w->ctx, &loc, NULL, "a %s entry must be a mapping of options, not %s",
			   sec == CONF_SEC_LISTENER ? "listener" : "bridge", kind(item));
		return -1;
	}
	if (conf_section_begin(w->ctx, sec, &loc) < 0)
		return -1;
	rc = each_pair(w, item, top_pair, NULL);
	conf_section_end(w->ctx);
	return rc;
}

static int walk_listener(struct walk *w, yaml_node_t *item)
{
	return walk_mapping_item(w, item, CONF_SEC_LISTENER);
}

static int walk_bridge(struct walk *w, yaml_node_t *item)
{
	return walk_mapping_item(w, item, CONF_SEC_BRIDGE);
}

/* The structure keys: where each may appear and what reads one list item. */
static const struct {
	const char *name;
	enum conf_section in, also;
	int (*item)(struct walk *w, yaml_node_t *item);
} sections[] = {
	{"listeners", CONF_SEC_TOP, CONF_SEC_TOP, walk_listener},
	{"bridges", CONF_SEC_TOP, CONF_SEC_TOP, walk_bridge},
	{"plugins", CONF_SEC_TOP, CONF_SEC_LISTENER, walk_plugin},
	{"topics", CONF_SEC_BRIDGE, CONF_SEC_BRIDGE, walk_topic},
};

/* The names a 'cluster:' mapping (prefix "cluster_") or its 'nats_tls:' mapping accepts. */
static size_t cluster_keys(const char *prefix, const char **keys, size_t max)
{
	size_t n = 0, plen = strlen(prefix);

	for (size_t i = 0; i < conf_schema_count() && n < max; i++) {
		const struct conf_option *o = conf_schema_at(i);
		if ((o->flags & CONF_F_CLUSTER) && strncmp(o->name, prefix, plen) == 0)
			keys[n++] = o->name + plen;
	}
	return n;
}

static int cluster_pair(struct walk *w, const char *key, const struct config_loc *kloc,
			yaml_node_t *val, void *arg)
{
	const char *prefix = arg, *keys[32];
	const struct conf_option *o;
	char name[128];
	size_t n;

	if (strcmp(prefix, "cluster_") == 0 && strcmp(key, "nats_tls") == 0) {
		if (val->type == YAML_MAPPING_NODE)
			return each_pair(w, val, cluster_pair, (void *)"cluster_nats_tls_");
		if (val->type == YAML_SCALAR_NODE && is_null(val))
			return 0;
		conf_error(w->ctx, kloc, key, "'nats_tls' expects a mapping of cafile, certfile, "
			   "keyfile");
		return -1;
	}
	snprintf(name, sizeof(name), "%s%s", prefix, key);
	o = conf_schema_find(name);
	if (!o || !(o->flags & CONF_F_CLUSTER) || strlen(name) >= sizeof(name) - 1) {
		n = cluster_keys(prefix, keys, sizeof(keys) / sizeof(keys[0]));
		if (strcmp(prefix, "cluster_") == 0 && n < sizeof(keys) / sizeof(keys[0]))
			keys[n++] = "nats_tls";
		return unknown_subkey(w, key, kloc, strcmp(prefix, "cluster_") == 0
				      ? "the cluster section" : "nats_tls", keys, n);
	}
	if (val->type == YAML_MAPPING_NODE) {
		struct config_loc loc = mark_loc(w, val->start_mark);
		conf_error(w->ctx, &loc, key, "'%s' expects a value, not a mapping", key);
		return -1;
	}
	return apply_values(w, name, kloc, val);
}

/* cluster: a mapping of cluster options (conf.h struct config_cluster). */
static int walk_cluster(struct walk *w, const char *key, const struct config_loc *kloc,
			yaml_node_t *val)
{
	if (w->ctx->section != CONF_SEC_TOP) {
		conf_error(w->ctx, kloc, key, "'%s' does not belong here", key);
		return -1;
	}
	conf_cluster_seen(w->ctx, key, kloc);
	if (val->type == YAML_SCALAR_NODE && is_null(val))
		return 0;
	if (val->type != YAML_MAPPING_NODE) {
		struct config_loc loc = mark_loc(w, val->start_mark);
		conf_error(w->ctx, &loc, key, "'%s' expects a mapping (node_name, nats_servers, ...), "
			   "not %s", key, kind(val));
		return -1;
	}
	return each_pair(w, val, cluster_pair, (void *)"cluster_");
}

static int walk_section(struct walk *w, const struct conf_option *o, const char *key,
			const struct config_loc *kloc, yaml_node_t *val)
{
	size_t n = sizeof(sections) / sizeof(sections[0]), i;

	if (strcmp(o->name, "cluster") == 0)
		return walk_cluster(w, key, kloc, val);
	enum conf_section here = w->ctx->section;
	yaml_node_item_t *end;
	int rc = 0;

	for (i = 0; i < n && strcmp(sections[i].name, o->name) != 0; i++)
		;
	if (i == n || (here != sections[i].in && here != sections[i].also)) {
		conf_error(w->ctx, kloc, key, "'%s' does not belong here", key);
		return -1;
	}
	if (val->type == YAML_SCALAR_NODE && is_null(val))
		return 0;
	if (val->type != YAML_SEQUENCE_NODE) {
		struct config_loc loc = mark_loc(w, val->start_mark);
		conf_error(w->ctx, &loc, key, "'%s' expects a list, not %s", key, kind(val));
		return -1;
	}
	end = val->data.sequence.items.top;
	for (yaml_node_item_t *it = val->data.sequence.items.start; it < end; it++)
		if (sections[i].item(w, node(w, *it)) < 0)
			rc = -1;
	return rc;
}

/* ---- Documents -------------------------------------------------------------------- */

int conf_yaml_parse(struct conf_ctx *ctx, const char *text, size_t len)
{
	yaml_parser_t parser;
	yaml_document_t doc, extra;
	struct walk w = {ctx, &doc};
	yaml_node_t *root;
	int rc = 0;

	if (!yaml_parser_initialize(&parser)) {
		conf_error(ctx, NULL, NULL, "out of memory");
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		struct config_loc loc = mark_loc(&w, parser.problem_mark);
		conf_error(ctx, &loc, NULL, "YAML syntax error: %s%s%s",
			   parser.problem ? parser.problem : "invalid document",
			   parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return -1;
	}
	root = yaml_document_get_root_node(&doc);
	if (root && root->type == YAML_MAPPING_NODE) {
		rc = each_pair(&w, root, top_pair, NULL);
	} else if (root && !(root->type == YAML_SCALAR_NODE && is_null(root))) {
		struct config_loc loc = mark_loc(&w, root->start_mark);
		conf_error(ctx, &loc, NULL, "the top level must be a mapping of 'option: value'");
		rc = -1;
	}
	if (yaml_parser_load(&parser, &extra)) {
		if (yaml_document_get_root_node(&extra)) {
			struct config_loc loc = mark_loc(&w, extra.start_mark);
			conf_error(ctx, &loc, NULL, "only one YAML document per file is read");
			rc = -1;
		}
		yaml_document_delete(&extra);
	}
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}
