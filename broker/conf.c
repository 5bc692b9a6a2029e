/*
 * conf.c: loading a configuration: files and formats, where each value
 * goes, the global -> listener merge, validation and diagnostics.
 *
 * Owns config_load() and the rest of conf.h's API, the parse context, the
 * decision of which struct each value goes to, duplicate detection, the
 * include_dir walk and per_listener_settings' ordering rule. It does not
 * parse text: conf_mosq.c and conf_yaml.c do, and the option table with its
 * generic setters is conf_schema.c. Nothing here acts on a value.
 */
#include "config.h"

#include "conf.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "conf_schema.h"

#define MAX_FILE_SIZE (16u << 20)

/* ---- Diagnostics ---------------------------------------------------------- */

static const char *intern(struct config_strlist *files, const char *name)
{
	for (size_t i = 0; i < files->count; i++)
		if (strcmp(files->items[i], name) == 0)
			return files->items[i];
	if (strlist_add(files, name) < 0)
		return NULL;
	return files->items[files->count - 1];
}

const char *conf_intern_file(struct conf_ctx *ctx, const char *path)
{
	return intern(&ctx->cfg->files, path);
}

static void diag_add(struct conf_ctx *ctx, bool warning, const struct config_loc *loc,
		     const char *key, const char *fmt, va_list ap)
	__attribute__((format(printf, 5, 0)));

static void diag_add(struct conf_ctx *ctx, bool warning, const struct config_loc *loc,
		     const char *key, const char *fmt, va_list ap)
{
	struct config_diag *d = ctx->diag;
	struct config_error **arr = warning ? &d->warnings : &d->errors;
	size_t *n = warning ? &d->nwarnings : &d->nerrors;
	struct config_error *grown = mem_realloc(*arr, (*n + 1) * sizeof(**arr));
	struct config_error *e;
	char msg[512];

	if (!grown)
		return;
	*arr = grown;
	e = &grown[(*n)++];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	e->loc = loc ? *loc : (struct config_loc){ctx->file, 0, 0};
	e->loc.file = e->loc.file ? intern(&d->files, e->loc.file) : NULL;
	e->key = key ? mem_strdup(key) : NULL;
	e->message = mem_strdup(msg);
}

void conf_error(struct conf_ctx *ctx, const struct config_loc *loc, const char *key,
		const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_add(ctx, false, loc, key, fmt, ap);
	va_end(ap);
}

void conf_warn(struct conf_ctx *ctx, const struct config_loc *loc, const char *key,
	       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_add(ctx, true, loc, key, fmt, ap);
	va_end(ap);
}

static void oom(struct conf_ctx *ctx, const struct config_loc *loc)
{
	conf_error(ctx, loc, NULL, "out of memory");
}

/* ---- Sections ------------------------------------------------------------ */

static int grow_seen(struct conf_ctx *ctx, struct config_loc ***arr, size_t *n, size_t want)
{
	struct config_loc **grown;

	if (*n >= want)
		return 0;
	grown = mem_realloc(*arr, want * sizeof(*grown));
	if (!grown)
		return -1;
	for (size_t i = *n; i < want; i++)
		grown[i] = NULL;
	*arr = grown;
	*n = want;
	(void)ctx;
	return 0;
}

long conf_new_listener(struct conf_ctx *ctx, const struct config_loc *loc)
{
	struct config *cfg = ctx->cfg;
	struct config_listener *grown =
		mem_realloc(cfg->listeners, (cfg->nlisteners + 1) * sizeof(*grown));
	struct config_listener *l;

	if (!grown || grow_seen(ctx, &ctx->seen_listener, &ctx->nseen_listener,
				cfg->nlisteners + 1) < 0) {
		if (grown)
			cfg->listeners = grown;
		oom(ctx, loc);
		return -1;
	}
	cfg->listeners = grown;
	l = &grown[cfg->nlisteners];
	memset(l, 0, sizeof(*l));
	conf_schema_defaults_listener(l);
	l->port = -1; /* unset until validation */
	l->loc = *loc;
	return (long)cfg->nlisteners++;
}

long conf_new_bridge(struct conf_ctx *ctx, const struct config_loc *loc)
{
	struct config *cfg = ctx->cfg;
	struct config_bridge *grown =
		mem_realloc(cfg->bridges, (cfg->nbridges + 1) * sizeof(*grown));
	struct config_bridge *b;

	if (!grown ||
	    grow_seen(ctx, &ctx->seen_bridge, &ctx->nseen_bridge, cfg->nbridges + 1) < 0) {
		if (grown)
			cfg->bridges = grown;
		oom(ctx, loc);
		return -1;
	}
	cfg->bridges = grown;
	b = &grown[cfg->nbridges];
	memset(b, 0, sizeof(*b));
	conf_schema_defaults_bridge(b);
	b->restart_timeout_base = 5; /* jittered back-off from 5 s up to 30 s */
	b->restart_timeout_cap = 30;
	b->loc = *loc;
	return (long)cfg->nbridges++;
}

int conf_section_begin(struct conf_ctx *ctx, enum conf_section sec, const struct config_loc *loc)
{
	long idx = sec == CONF_SEC_LISTENER ? conf_new_listener(ctx, loc)
					    : conf_new_bridge(ctx, loc);

	if (idx < 0)
		return -1;
	ctx->section = sec;
	ctx->listener = sec == CONF_SEC_LISTENER ? idx : -1;
	ctx->bridge = sec == CONF_SEC_BRIDGE ? idx : -1;
	ctx->plugin.valid = false;
	return 0;
}

void conf_section_end(struct conf_ctx *ctx)
{
	ctx->section = CONF_SEC_TOP;
	ctx->listener = -1;
	ctx->bridge = -1;
	ctx->plugin.valid = false;
}

void conf_plugin_done(struct conf_ctx *ctx)
{
	ctx->plugin.valid = false;
}

/* ---- Where a value goes ----------------------------------------------------- */

static void target_listener(struct conf_ctx *ctx, struct conf_target *t)
{
	t->base = &ctx->cfg->listeners[ctx->listener];
	t->owner = CONF_OWN_LISTENER;
	t->idx = (size_t)ctx->listener;
	t->scope = CONF_SC_LISTENER;
}

/* mosquitto's implicit listener, built from options given before any 'listener'. */
static void target_default(struct conf_ctx *ctx, const char *key, const struct config_loc *loc,
			   struct conf_target *t)
{
	if (!ctx->deflt_used) {
		ctx->deflt_used = true;
		ctx->deflt.loc = *loc;
		if (strcmp(key, "port") != 0 && strcmp(key, "bind_address") != 0)
			conf_warn(ctx, loc, key, "'%s' before any 'listener' line configures the "
				  "default listener (port 1883 on every address unless "
				  "'port'/'bind_address' say otherwise)", key);
	}
	t->base = &ctx->deflt;
	t->owner = CONF_OWN_DEFAULT;
	t->scope = CONF_SC_LISTENER;
}

static int target_security(struct conf_ctx *ctx, const struct conf_option *o, const char *key,
			   const struct config_loc *loc, struct conf_target *t)
{
	bool yaml = ctx->syntax == CONF_SYNTAX_YAML;
	bool per_listener = yaml ? ctx->section == CONF_SEC_LISTENER
				 : ctx->cfg->per_listener_settings &&
					   !(o->flags & CONF_F_MOSQ_GLOBAL);

	if (yaml && ctx->section == CONF_SEC_BRIDGE) {
		conf_error(ctx, loc, key, "'%s' is a security option: put it at the top level "
			   "or in a 'listeners:' entry", key);
		return -1;
	}
	if (!yaml && !(o->flags & CONF_F_MOSQ_GLOBAL))
		ctx->security_seen = true;
	if (!per_listener) {
		t->base = &ctx->cfg->security;
		t->owner = CONF_OWN_GLOBAL;
	} else if (ctx->listener >= 0) {
		target_listener(ctx, t);
		t->base = &ctx->cfg->listeners[ctx->listener].security;
	} else {
		target_default(ctx, key, loc, t);
		t->base = &ctx->deflt.security;
	}
	t->scope = CONF_SC_SECURITY;
	return 0;
}

static int resolve_target(struct conf_ctx *ctx, const struct conf_option *o, const char *key,
			  const struct config_loc *loc, struct conf_target *t)
{
	bool yaml = ctx->syntax == CONF_SYNTAX_YAML;

	memset(t, 0, sizeof(*t));
	t->base = ctx->cfg;
	t->off = o->off;
	t->scope = CONF_SC_GLOBAL;
	switch (o->scope) {
	case CONF_SC_NONE:
		return 0;
	case CONF_SC_GLOBAL:
		if (!yaml || ctx->section == CONF_SEC_TOP)
			return 0;
		if (ctx->section == CONF_SEC_LISTENER && (o->flags & CONF_F_MERGED)) {
			target_listener(ctx, t);
			t->off = o->off2;
			return 0;
		}
		conf_error(ctx, loc, key, "'%s' is a global option: move it to the top level", key);
		return -1;
	case CONF_SC_LISTENER:
		if (yaml) {
			if (ctx->section == CONF_SEC_LISTENER) {
				target_listener(ctx, t);
				return 0;
			}
			if (ctx->section == CONF_SEC_TOP && (o->flags & CONF_F_MERGED)) {
				t->off = o->off2;
				return 0;
			}
			conf_error(ctx, loc, key, "'%s' is a listener option: "
				   "put it in a 'listeners:' entry", key);
			return -1;
		}
		if ((o->flags & CONF_F_NEED_LISTENER) && ctx->listener < 0) {
			conf_error(ctx, loc, key, "'%s' must follow a 'listener' line", key);
			return -1;
		}
		if (ctx->listener >= 0 && !(o->flags & CONF_F_DEFLT))
			target_listener(ctx, t);
		else
			target_default(ctx, key, loc, t);
		return 0;
	case CONF_SC_SECURITY:
		return target_security(ctx, o, key, loc, t);
	case CONF_SC_BRIDGE:
		if (yaml ? ctx->section == CONF_SEC_BRIDGE : ctx->bridge >= 0) {
			t->base = &ctx->cfg->bridges[ctx->bridge];
			t->owner = CONF_OWN_BRIDGE;
			t->idx = (size_t)ctx->bridge;
			t->scope = CONF_SC_BRIDGE;
			return 0;
		}
		if (yaml)
			conf_error(ctx, loc, key,
				   "'%s' is a bridge option: put it in a 'bridges:' entry", key);
		else
			conf_error(ctx, loc, key, "'%s' is a bridge option: "
				   "it must follow a 'connection' line", key);
		return -1;
	}
	return 0;
}

/* Where an option was first set in this place, for duplicate detection. */
static struct config_loc *seen_slot(struct conf_ctx *ctx, const struct conf_target *t,
				    const struct conf_option *o)
{
	struct config_loc **arr = &ctx->seen_global;

	if (t->owner == CONF_OWN_DEFAULT)
		arr = &ctx->seen_deflt;
	else if (t->owner == CONF_OWN_LISTENER)
		arr = &ctx->seen_listener[t->idx];
	else if (t->owner == CONF_OWN_BRIDGE)
		arr = &ctx->seen_bridge[t->idx];
	if (!*arr)
		*arr = mem_calloc(conf_schema_count(), sizeof(**arr));
	return *arr ? &(*arr)[conf_schema_index(o)] : NULL;
}

static bool blank(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return *s == '\0';
}

static int unknown_option(struct conf_ctx *ctx, const char *key, const struct config_loc *loc)
{
	const char *close = conf_schema_suggest(key, ctx->syntax);

	if (close)
		conf_error(ctx, loc, key, "unknown option '%s' (did you mean '%s'?)", key, close);
	else
		conf_error(ctx, loc, key, "unknown option '%s'", key);
	return -1;
}

/* Checks that do not depend on the value: syntax, legacy, list or scalar. */
static int admit(struct conf_ctx *ctx, const struct conf_option *opt, const struct conf_option *o,
		 const char *key, const struct config_loc *kloc, size_t nvals)
{
	bool yaml = ctx->syntax == CONF_SYNTAX_YAML;

	if ((opt->flags | o->flags) & (yaml ? CONF_F_MOSQ_ONLY : CONF_F_YAML_ONLY)) {
		if (yaml)
			conf_error(ctx, kloc, key, "'%s' is mosquitto.conf syntax: YAML declares "
				   "listeners and bridges under 'listeners:' and 'bridges:'", key);
		else
			conf_error(ctx, kloc, key, "'%s' is only valid in YAML files", key);
		return -1;
	}
	if (o->type == CONF_T_LEGACY) {
		conf_warn(ctx, kloc, key, "'%s' no longer applies and is ignored (%s)", key,
			  o->help);
		return 0;
	}
	if (o->type == CONF_T_SECTION) {
		conf_error(ctx, kloc, key, "'%s' expects a list of mappings", key);
		return -1;
	}
	if (o->flags & CONF_F_DEPRECATED)
		conf_warn(ctx, kloc, key,
			  "'%s' is deprecated and will be removed in a future version", key);
	if (nvals == 0 || (nvals > 1 && o->type != CONF_T_STRLIST &&
			   !(o->flags & (CONF_F_REPEATABLE | CONF_F_LIST)))) {
		conf_error(ctx, kloc, key, nvals ? "'%s' takes a single value, not a list"
						 : "missing value for '%s'", key);
		return -1;
	}
	return 1;
}

int conf_apply(struct conf_ctx *ctx, const char *key, const struct config_loc *kloc,
	       const struct conf_value *vals, size_t nvals)
{
	const struct conf_option *opt = conf_schema_find(key);
	const struct conf_option *o = conf_schema_canonical(opt);
	struct conf_target t;
	struct config_loc *seen;
	int rc;

	if (!opt)
		return unknown_option(ctx, key, kloc);
	rc = admit(ctx, opt, o, key, kloc, nvals);
	if (rc <= 0)
		return rc;
	if (resolve_target(ctx, o, key, kloc, &t) < 0)
		return -1;
	if (o->flags & CONF_F_CLUSTER)
		conf_cluster_seen(ctx, key, kloc);
	if (!(o->flags & CONF_F_REPEATABLE) &&
	    (o->type == CONF_T_STRING || o->type == CONF_T_STRLIST || (o->flags & CONF_F_ONCE))) {
		seen = seen_slot(ctx, &t, o);
		if (seen && seen->line) {
			conf_error(ctx, kloc, key, "duplicate value for '%s' (first set at %s:%d)",
				   key, seen->file, seen->line);
			return -1;
		}
		if (seen)
			*seen = *kloc;
	}
	rc = 0;
	for (size_t i = 0; i < nvals; i++) {
		struct conf_value v = vals[i];

		v.key = key;
		v.kloc = *kloc;
		v.suffix = (opt->flags & CONF_F_PREFIX) ? key + strlen(opt->name) : NULL;
		if (o->type != CONF_T_SPECIAL && blank(v.text)) {
			conf_error(ctx, &v.loc, key, "missing value for '%s'", key);
			rc = -1;
			continue;
		}
		if ((o->set ? o->set : conf_set_generic)(ctx, o, &t, &v) < 0)
			rc = -1;
	}
	return rc;
}

void conf_cluster_seen(struct conf_ctx *ctx, const char *key, const struct config_loc *loc)
{
	struct config_cluster *cl = &ctx->cfg->cluster;

	if (cl->enabled)
		return;
	cl->enabled = true;
	cl->loc = *loc;
	snprintf(cl->key, sizeof(cl->key), "%s", key);
}

/* ---- Setters that keep state across lines ------------------------------- */

int conf_set_per_listener(struct conf_ctx *ctx, const struct conf_option *opt,
			  const struct conf_target *t, const struct conf_value *v)
{
	bool b;

	if (conf_parse_bool(ctx, v->key, v, &b) < 0)
		return -1;
	if (ctx->cfg->per_listener_settings)
		return 0; /* mosquitto: once true, it stays true */
	if (b && ctx->syntax == CONF_SYNTAX_MOSQ && ctx->security_seen) {
		conf_error(ctx, &v->loc, v->key,
			   "'per_listener_settings' must come before every other security option");
		return -1;
	}
	ctx->cfg->per_listener_settings = b;
	(void)opt;
	(void)t;
	return 0;
}

/* ---- Files ---------------------------------------------------------------- */

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

/* The first significant line looks like YAML: "key:", "---", "- item", "%YAML". */
static enum config_format sniff(const char *text)
{
	const char *p = text;

	while (*p) {
		const char *line = p;
		size_t n;

		while (*line == ' ' || *line == '\t')
			line++;
		n = strcspn(line, "\r\n");
		p = line + n + (line[n] ? 1 : 0);
		if (n == 0 || *line == '#')
			continue;
		if (strncmp(line, "---", 3) == 0 || strncmp(line, "%YAML", 5) == 0 ||
		    (line[0] == '-' && (n == 1 || line[1] == ' ')) || line[0] == '{')
			return CONFIG_FORMAT_YAML;
		n = strcspn(line, " \t\r\n");
		return n > 1 && line[n - 1] == ':' ? CONFIG_FORMAT_YAML : CONFIG_FORMAT_MOSQUITTO;
	}
	return CONFIG_FORMAT_MOSQUITTO;
}

static enum config_format format_of(const char *path, const char *text)
{
	if (has_suffix(path, ".yaml") || has_suffix(path, ".yml"))
		return CONFIG_FORMAT_YAML;
	if (has_suffix(path, ".conf"))
		return CONFIG_FORMAT_MOSQUITTO;
	return sniff(text);
}

static int read_file(struct conf_ctx *ctx, const char *path, const struct config_loc *from,
		     char **out, size_t *len)
{
	struct config_loc loc = from ? *from : (struct config_loc){path, 0, 0};
	struct stat st;
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	int rc = -1;

	if (!f) {
		conf_error(ctx, &loc, NULL, "cannot open configuration file '%s': %s", path,
			   strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) < 0 || S_ISDIR(st.st_mode) || st.st_size > MAX_FILE_SIZE) {
		conf_error(ctx, &loc, NULL, "cannot read configuration file '%s': %s", path,
			   S_ISDIR(st.st_mode) ? "it is a directory" : "too large");
		goto out;
	}
	buf = mem_malloc((size_t)st.st_size + 1);
	if (!buf) {
		oom(ctx, &loc);
		goto out;
	}
	*len = fread(buf, 1, (size_t)st.st_size, f);
	if (ferror(f)) {
		conf_error(ctx, &loc, NULL, "cannot read configuration file '%s'", path);
		goto out;
	}
	buf[*len] = '\0';
	*out = buf;
	buf = NULL;
	rc = 0;
out:
	mem_free(buf);
	fclose(f);
	return rc;
}

int conf_load_file(struct conf_ctx *ctx, const char *path, enum config_format format,
		   const struct config_loc *from)
{
	struct conf_ctx saved = *ctx;
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (read_file(ctx, path, from, &text, &len) < 0)
		return -1;
	if (format == CONFIG_FORMAT_AUTO)
		format = format_of(path, text);
	ctx->file = conf_intern_file(ctx, path);
	ctx->syntax = format == CONFIG_FORMAT_YAML ? CONF_SYNTAX_YAML : CONF_SYNTAX_MOSQ;
	if (ctx->syntax == CONF_SYNTAX_MOSQ)
		ctx->mosq_seen = true;
	ctx->depth++;
	conf_section_end(ctx);
	if (!ctx->file)
		rc = -1;
	else if (ctx->syntax == CONF_SYNTAX_YAML)
		rc = conf_yaml_parse(ctx, text, len);
	else
		rc = conf_mosq_parse(ctx, text, len);
	mem_free(text);
	/* Per-file state comes back; what the file configured stays. */
	ctx->syntax = saved.syntax;
	ctx->file = saved.file;
	ctx->depth = saved.depth;
	ctx->section = saved.section;
	ctx->listener = saved.listener;
	ctx->bridge = saved.bridge;
	ctx->plugin = saved.plugin;
	return rc;
}

/*
 * mosquitto's include_dir order: letters compare case-insensitively first,
 * and the upper case letter sorts before the lower case one (00, A, a, B, b).
 */
static int include_order(const void *a, const void *b)
{
	const unsigned char *s = *(const unsigned char *const *)a;
	const unsigned char *t = *(const unsigned char *const *)b;

	for (; *s && *t; s++, t++) {
		int d = toupper(*s) - toupper(*t);
		if (d == 0)
			d = *s - *t;
		if (d)
			return d;
	}
	return *s - *t;
}

static int list_dir(struct conf_ctx *ctx, const char *dir, const struct config_loc *loc,
		    struct config_strlist *names)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d) {
		conf_error(ctx, loc, "include_dir", "cannot open include_dir '%s': %s", dir,
			   strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		bool wanted = has_suffix(de->d_name, ".conf");

		if (ctx->syntax == CONF_SYNTAX_YAML)
			wanted = wanted || has_suffix(de->d_name, ".yaml") ||
				 has_suffix(de->d_name, ".yml");
		if (wanted && strlist_add(names, de->d_name) < 0) {
			oom(ctx, loc);
			break;
		}
	}
	closedir(d);
	if (names->count)
		qsort(names->items, names->count, sizeof(char *), include_order);
	return 0;
}

int conf_set_include_dir(struct conf_ctx *ctx, const struct conf_option *opt,
			 const struct conf_target *t, const struct conf_value *v)
{
	struct config_strlist names = {0};
	int rc = 0;

	(void)opt;
	(void)t;
	if (blank(v->text)) {
		conf_error(ctx, &v->loc, v->key, "missing value for '%s'", v->key);
		return -1;
	}
	if (ctx->depth > 0) {
		conf_warn(ctx, &v->loc, v->key,
			  "'include_dir' is only read in the main configuration file; ignored");
		return 0;
	}
	if (list_dir(ctx, v->text, &v->loc, &names) < 0)
		return -1;
	for (size_t i = 0; i < names.count; i++) {
		size_t n = strlen(v->text) + strlen(names.items[i]) + 2;
		char *path = mem_malloc(n);

		if (!path) {
			oom(ctx, &v->loc);
			rc = -1;
			break;
		}
		snprintf(path, n, "%s/%s", v->text, names.items[i]);
		if (conf_load_file(ctx, path, CONFIG_FORMAT_AUTO, &v->loc) < 0)
			rc = -1;
		mem_free(path);
	}
	strlist_free(&names);
	return rc;
}

/* ---- After parsing: merge and validate --------------------------------------- */

static void listener_name(const struct config_listener *l, char *buf, size_t size)
{
	if (l->unix_path)
		snprintf(buf, size, "listener on %s", l->unix_path);
	else
		snprintf(buf, size, "listener on port %d", l->port);
}

static void finish_listener(struct conf_ctx *ctx, struct config_listener *l)
{
	char name[300];

	conf_schema_merge_listener(l, ctx->cfg);
	if (l->security.allow_anonymous < 0)
		l->security.allow_anonymous = 0; /* mosquitto 2.0: false once listeners exist */
	if (l->unix_path) {
		if (l->port > 0)
			conf_error(ctx, &l->loc, NULL, "a unix socket listener takes no port");
		l->port = 0;
	} else if (l->port < 0) {
		conf_error(ctx, &l->loc, NULL, "listener has no 'port'");
	}
	listener_name(l, name, sizeof(name));
	if (!l->certfile != !l->keyfile)
		conf_error(ctx, &l->loc, l->certfile ? "certfile" : "keyfile",
			   "%s: '%s' is set but '%s' is missing", name,
			   l->certfile ? "certfile" : "keyfile",
			   l->certfile ? "keyfile" : "certfile");
	if (l->psk_hint && (l->certfile || l->cafile || l->capath))
		conf_error(ctx, &l->loc, "psk_hint",
			   "%s: cannot use both certificate and PSK encryption", name);
}

static void check_listener_clash(struct conf_ctx *ctx, size_t i)
{
	const struct config_listener *a = &ctx->cfg->listeners[i];

	for (size_t j = 0; j < i; j++) {
		const struct config_listener *b = &ctx->cfg->listeners[j];
		bool same;

		if (a->unix_path || b->unix_path)
			same = a->unix_path && b->unix_path &&
			       strcmp(a->unix_path, b->unix_path) == 0;
		else
			same = a->port > 0 && a->port == b->port &&
			       !a->bind_address == !b->bind_address &&
			       (!a->bind_address || strcmp(a->bind_address, b->bind_address) == 0);
		if (same) {
			conf_error(ctx, &a->loc, NULL,
				   "this listener is declared twice (first at %s:%d)",
				   b->loc.file ? b->loc.file : "?", b->loc.line);
			return;
		}
	}
}

static void finish_bridge(struct conf_ctx *ctx, size_t i)
{
	const struct config_bridge *b = &ctx->cfg->bridges[i];
	const char *n = b->name ? b->name : "?";

	if (!b->name)
		conf_error(ctx, &b->loc, NULL, "bridge has no 'name'");
	for (size_t j = 0; b->name && j < i; j++) {
		const struct config_bridge *o = &ctx->cfg->bridges[j];
		if (o->name && strcmp(o->name, b->name) == 0) {
			conf_error(ctx, &b->loc, NULL,
				   "duplicate bridge name '%s' (first at %s:%d)", b->name,
				   o->loc.file ? o->loc.file : "?", o->loc.line);
			break;
		}
	}
	if (!b->naddresses)
		conf_error(ctx, &b->loc, NULL, "bridge '%s' has no 'address'", n);
	if (!b->ntopics)
		conf_error(ctx, &b->loc, NULL, "bridge '%s' has no 'topic'", n);
	if (!b->psk != !b->identity)
		conf_error(ctx, &b->loc, NULL,
			   "bridge '%s': 'bridge_psk' and 'bridge_identity' go together", n);
	if (b->psk && (b->cafile || b->capath || b->certfile || b->keyfile))
		conf_error(ctx, &b->loc, NULL,
			   "bridge '%s': cannot use both certificate and PSK encryption", n);
	if (!b->certfile != !b->keyfile)
		conf_error(ctx, &b->loc, NULL, "bridge '%s': '%s' is set but '%s' is missing", n,
			   b->certfile ? "bridge_certfile" : "bridge_keyfile",
			   b->certfile ? "bridge_keyfile" : "bridge_certfile");
	if (b->remote_password && !b->remote_username)
		conf_warn(ctx, &b->loc, NULL, "bridge '%s': 'remote_password' without "
			  "'remote_username' is not sent", n);
}

/* A plugin given by name ("lua", "lua.so") is the installed one of that name. */
static void resolve_plugin_path(struct conf_ctx *ctx, struct config_plugin *p)
{
	const char *dir = ctx->cfg->plugin_dir ? ctx->cfg->plugin_dir : PLUGINDIR;
	size_t len;
	char *full;

	if (!p->path || strchr(p->path, '/') || !*p->path)
		return;
	len = strlen(p->path);
	bool has_so = len > 3 && strcmp(p->path + len - 3, ".so") == 0;
	full = mem_malloc(strlen(dir) + len + 5);
	if (!full) {
		oom(ctx, &p->loc);
		return;
	}
	sprintf(full, "%s/%s%s", dir, p->path, has_so ? "" : ".so");
	if (!p->label && !p->name)
		p->label = mem_strndup(p->path, has_so ? len - 3 : len);
	mem_free(p->path);
	p->path = full;
}

static void finish_plugins(struct conf_ctx *ctx, struct config_security *sec)
{
	const struct config_security *global = &ctx->cfg->security;

	for (size_t i = 0; i < sec->nplugins; i++) {
		struct config_plugin *p = &sec->plugins[i];
		bool found = p->path != NULL;

		resolve_plugin_path(ctx, p);
		if (p->deny_special_chars < 0)
			p->deny_special_chars = ctx->cfg->auth_plugin_deny_special_chars;
		for (size_t j = 0; !found && j < global->nplugins; j++)
			found = global->plugins[j].name && global->plugins[j].path &&
				strcmp(global->plugins[j].name, p->name) == 0;
		if (!found)
			conf_error(ctx, &p->loc, "plugin_use", "no 'plugin_load' named '%s'",
				   p->name);
	}
}

/* Where cluster option `name` was set, or the cluster section itself. */
static const struct config_loc *cluster_loc(struct conf_ctx *ctx, const char *name,
					    const char **key)
{
	const struct conf_option *o = conf_schema_find(name);
	const struct config_loc *l;

	l = o && ctx->seen_global ? &ctx->seen_global[conf_schema_index(o)] : NULL;
	if (l && l->line) {
		*key = name;
		return l;
	}
	*key = ctx->cfg->cluster.key;
	return &ctx->cfg->cluster.loc;
}

/* Letters, digits, '-' and '_': what a node name (a NATS subject token) may hold. */
static bool node_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
			return false;
	return true;
}

/* Dot-separated non-empty tokens without NATS wildcards or blanks. */
static bool subject_prefix_ok(const char *s)
{
	bool empty = true;

	for (; *s; s++) {
		if (*s == '.') {
			if (empty)
				return false;
			empty = true;
			continue;
		}
		if (*s == '*' || *s == '>' || (unsigned char)*s <= ' ' || *s == 0x7f)
			return false;
		empty = false;
	}
	return !empty;
}

static void finish_cluster(struct conf_ctx *ctx)
{
	struct config_cluster *cl = &ctx->cfg->cluster;
	const struct config_loc *loc;
	const char *key;

#ifndef HAVE_NATS
	conf_error(ctx, &cl->loc, cl->key, "'%s': this midge was built without NATS support, so it "
		   "cannot join a cluster (install libnats-dev and configure --with-nats)", cl->key);
	return;
#endif
	if (cl->nats_servers.count == 0)
		conf_error(ctx, &cl->loc, cl->key, "'%s' needs nats_servers (e.g. "
			   "nats://127.0.0.1:4222)", cl->key);
	for (size_t i = 0; i < cl->nats_servers.count; i++) {
		const char *u = cl->nats_servers.items[i];
		if (strncmp(u, "nats://", 7) != 0 && strncmp(u, "tls://", 6) != 0) {
			loc = cluster_loc(ctx, "cluster_nats_servers", &key);
			conf_error(ctx, loc, key, "'%s': NATS server '%s' must be nats://host:port or "
				   "tls://host:port", key, u);
		}
	}
	if (cl->nats_token && (cl->nats_user || cl->nats_password)) {
		loc = cluster_loc(ctx, "cluster_nats_token", &key);
		conf_error(ctx, loc, key, "'%s': give either a token or a user and password", key);
	}
	if (!cl->nats_user != !cl->nats_password) {
		loc = cluster_loc(ctx, cl->nats_user ? "cluster_nats_user" : "cluster_nats_password",
				  &key);
		conf_error(ctx, loc, key, "'%s': nats_user and nats_password go together", key);
	}
	if (!cl->nats_tls_certfile != !cl->nats_tls_keyfile) {
		loc = cluster_loc(ctx, cl->nats_tls_certfile ? "cluster_nats_tls_certfile"
							     : "cluster_nats_tls_keyfile", &key);
		conf_error(ctx, loc, key, "'%s': the NATS client certificate and key go together",
			   key);
	}
	if (cl->node_name && !node_name_ok(cl->node_name)) {
		loc = cluster_loc(ctx, "cluster_node_name", &key);
		conf_error(ctx, loc, key, "'%s': a node name is 1 to 64 letters, digits, '-' or '_'",
			   key);
	}
	if (!subject_prefix_ok(cl->subject_prefix)) {
		loc = cluster_loc(ctx, "cluster_subject_prefix", &key);
		conf_error(ctx, loc, key, "'%s': a subject prefix is NATS tokens separated by '.', "
			   "without blanks, '*' or '>'", key);
	}
}

static void finish(struct conf_ctx *ctx)
{
	struct config *cfg = ctx->cfg;

	if (ctx->deflt_used) {
		struct config_listener *grown =
			mem_realloc(cfg->listeners, (cfg->nlisteners + 1) * sizeof(*grown));
		if (grown) {
			if (ctx->deflt.port < 0)
				ctx->deflt.port = 1883;
			cfg->listeners = grown;
			grown[cfg->nlisteners++] = ctx->deflt; /* ownership moves */
			memset(&ctx->deflt, 0, sizeof(ctx->deflt));
			ctx->deflt_used = false;
		} else {
			oom(ctx, &ctx->deflt.loc);
		}
	}
	if (ctx->log_dest_set)
		cfg->log_dest = ctx->log_dest;
	if (ctx->log_type_set)
		cfg->log_type = ctx->log_type;
	/* mosquitto.conf users asked for saves every autosave_interval; YAML means crash-safe. */
	if (cfg->sync == STORE_SYNC_DEFAULT)
		cfg->sync = ctx->mosq_seen ? STORE_SYNC_PERIODIC : STORE_SYNC_BATCH;
	finish_plugins(ctx, &cfg->security);
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		finish_listener(ctx, &cfg->listeners[i]);
		finish_plugins(ctx, &cfg->listeners[i].security);
		check_listener_clash(ctx, i);
	}
	for (size_t i = 0; i < cfg->nbridges; i++)
		finish_bridge(ctx, i);
	if (cfg->cluster.enabled)
		finish_cluster(ctx);
}

/* ---- Public API -------------------------------------------------------------- */

static void free_security(struct config_security *s)
{
	conf_schema_free_fields(CONF_SC_SECURITY, s);
	for (size_t i = 0; i < s->nplugins; i++) {
		struct config_plugin *p = &s->plugins[i];
		for (size_t j = 0; j < p->nopts; j++) {
			mem_free(p->opts[j].key);
			mem_free(p->opts[j].value);
		}
		mem_free(p->opts);
		mem_free(p->path);
		mem_free(p->name);
		mem_free(p->label);
	}
	mem_free(s->plugins);
	s->plugins = NULL;
	s->nplugins = 0;
}

static void free_listener(struct config_listener *l)
{
	conf_schema_free_fields(CONF_SC_LISTENER, l);
	free_security(&l->security);
}

static void free_bridge(struct config_bridge *b)
{
	conf_schema_free_fields(CONF_SC_BRIDGE, b);
	for (size_t i = 0; i < b->naddresses; i++)
		mem_free(b->addresses[i].host);
	mem_free(b->addresses);
	for (size_t i = 0; i < b->ntopics; i++) {
		mem_free(b->topics[i].pattern);
		mem_free(b->topics[i].local_prefix);
		mem_free(b->topics[i].remote_prefix);
	}
	mem_free(b->topics);
}

void config_init(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	conf_schema_defaults_global(cfg);
	/* log_dest and log_type are special setters: their defaults are here */
	cfg->log_dest = LOG_DEST_STDERR;
	cfg->log_type = LOG_T_ERR | LOG_T_WARNING | LOG_T_NOTICE | LOG_T_INFO;
}

void config_free(struct config *cfg)
{
	conf_schema_free_fields(CONF_SC_GLOBAL, cfg);
	free_security(&cfg->security);
	for (size_t i = 0; i < cfg->nlisteners; i++)
		free_listener(&cfg->listeners[i]);
	mem_free(cfg->listeners);
	for (size_t i = 0; i < cfg->nbridges; i++)
		free_bridge(&cfg->bridges[i]);
	mem_free(cfg->bridges);
	mem_free(cfg->log_file);
	strlist_free(&cfg->files);
	memset(cfg, 0, sizeof(*cfg));
}

static void ctx_free(struct conf_ctx *ctx)
{
	mem_free(ctx->seen_global);
	mem_free(ctx->seen_deflt);
	for (size_t i = 0; i < ctx->nseen_listener; i++)
		mem_free(ctx->seen_listener[i]);
	mem_free(ctx->seen_listener);
	for (size_t i = 0; i < ctx->nseen_bridge; i++)
		mem_free(ctx->seen_bridge[i]);
	mem_free(ctx->seen_bridge);
	free_listener(&ctx->deflt);
}

/*
 * Thread: the loading thread only. *cfg must come from config_init(); on
 * failure it holds whatever was read and must still be config_free()d.
 * *diag is overwritten and must be released with config_diag_free().
 */
int config_load(struct config *cfg, const char *path, enum config_format format,
		struct config_diag *diag)
{
	struct conf_ctx ctx;

	memset(diag, 0, sizeof(*diag));
	memset(&ctx, 0, sizeof(ctx));
	ctx.cfg = cfg;
	ctx.diag = diag;
	ctx.depth = -1;
	ctx.listener = -1;
	ctx.bridge = -1;
	conf_schema_defaults_listener(&ctx.deflt);
	ctx.deflt.port = -1;
	conf_load_file(&ctx, path, format, NULL);
	finish(&ctx);
	ctx_free(&ctx);
	return diag->nerrors ? -1 : 0;
}

static void print_one(FILE *f, const struct config_error *e, const char *kind)
{
	if (e->loc.file && e->loc.line > 0 && e->loc.column > 0)
		fprintf(f, "%s:%d:%d: ", e->loc.file, e->loc.line, e->loc.column);
	else if (e->loc.file && e->loc.line > 0)
		fprintf(f, "%s:%d: ", e->loc.file, e->loc.line);
	else if (e->loc.file)
		fprintf(f, "%s: ", e->loc.file);
	fprintf(f, "%s%s\n", kind, e->message ? e->message : "out of memory");
}

void config_diag_print(const struct config_diag *diag, void *stream)
{
	FILE *f = stream ? stream : stderr;

	for (size_t i = 0; i < diag->nerrors; i++)
		print_one(f, &diag->errors[i], "error: ");
	for (size_t i = 0; i < diag->nwarnings; i++)
		print_one(f, &diag->warnings[i], "warning: ");
}

void config_diag_free(struct config_diag *diag)
{
	for (size_t i = 0; i < diag->nerrors; i++) {
		mem_free(diag->errors[i].key);
		mem_free(diag->errors[i].message);
	}
	for (size_t i = 0; i < diag->nwarnings; i++) {
		mem_free(diag->warnings[i].key);
		mem_free(diag->warnings[i].message);
	}
	mem_free(diag->errors);
	mem_free(diag->warnings);
	strlist_free(&diag->files);
	memset(diag, 0, sizeof(*diag));
}

/* Appends a listener built after parsing: defaults, then the global merge. */
static struct config_listener *append_listener(struct config *cfg, int port, const char *bind)
{
	struct config_listener *grown, *l;

	grown = mem_realloc(cfg->listeners, (cfg->nlisteners + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	cfg->listeners = grown;
	l = &grown[cfg->nlisteners];
	memset(l, 0, sizeof(*l));
	conf_schema_defaults_listener(l);
	l->port = port;
	if (bind && !(l->bind_address = mem_strdup(bind)))
		return NULL;
	conf_schema_merge_listener(l, cfg);
	cfg->nlisteners++;
	return l;
}

/*
 * When the configuration has no listener, adds mosquitto 2.0's local-only
 * one: 127.0.0.1 on `port` (1883 when port <= 0), anonymous clients allowed
 * unless allow_anonymous was set explicitly. Call after config_load().
 */
void config_add_default_listener(struct config *cfg, int port)
{
	struct config_listener *l;

	if (cfg->nlisteners)
		return;
	l = append_listener(cfg, port > 0 ? port : 1883, "127.0.0.1");
	if (l && cfg->security.allow_anonymous < 0)
		l->security.allow_anonymous = 1; /* loopback only, as mosquitto 2.0 */
}

/*
 * Adds a listener on every address for `port` (midge -p with -c), with the
 * global settings, unless one is already configured there. Returns -1 only
 * when memory runs out.
 */
int config_add_port_listener(struct config *cfg, int port)
{
	struct config_listener *l;

	for (size_t i = 0; i < cfg->nlisteners; i++)
		if (cfg->listeners[i].port == port && !cfg->listeners[i].bind_address &&
		    !cfg->listeners[i].unix_path)
			return 0;
	l = append_listener(cfg, port, NULL);
	if (!l)
		return -1;
	if (l->security.allow_anonymous < 0)
		l->security.allow_anonymous = 0;
	return 0;
}

int config_apply_command_line(struct config *cfg, int port, bool from_file)
{
	if (port > 0 && from_file)
		return config_add_port_listener(cfg, port);
	config_add_default_listener(cfg, port);
	return 0;
}

bool config_option_reloadable(const char *name)
{
	const struct conf_option *o = conf_schema_canonical(conf_schema_find(name));

	return o && (o->flags & CONF_F_RELOADABLE);
}
