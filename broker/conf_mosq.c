/*
 * conf_mosq.c: the mosquitto.conf front end, and mosquitto's value rules.
 *
 * Owns the line format (comments, "key value...", blanks), the splitting of
 * values into words, and the setters that follow mosquitto's grammar or
 * ordering: listener, connection, port/bind_address, log_dest, log_type,
 * plugin/plugin_opt_* (an option belongs to the plugin above it), address,
 * topic, restart_timeout, bridge_tcp_keepalive, enable_proxy_protocol. YAML
 * reuses them for the same options. Where a value goes, error collection
 * and the option table are conf.c's and conf_schema.c's.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "conf_schema.h"
#include "topic.h"

static void oom(struct conf_ctx *ctx, const struct config_loc *loc)
{
	conf_error(ctx, loc, NULL, "out of memory");
}

static bool blank(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return *s == '\0';
}

/* ---- Tokens ------------------------------------------------------------------- */

int conf_split(struct conf_ctx *ctx, const struct conf_value *v, size_t max, struct conf_split *s)
{
	char *q;

	memset(s, 0, sizeof(*s));
	s->buf = mem_strdup(v->text);
	if (!s->buf) {
		conf_error(ctx, &v->loc, v->key, "out of memory");
		return -1;
	}
	for (q = s->buf;;) {
		size_t len;

		while (*q == ' ' || *q == '\t')
			q++;
		if (!*q || (*q == '#' && s->n > 0 && ctx->syntax == CONF_SYNTAX_MOSQ))
			break;
		len = strcspn(q, " \t");
		if (s->n == max || s->n == CONF_MAX_TOKENS) {
			struct config_loc loc = v->loc;
			loc.column += (int)(q - s->buf);
			q[len] = '\0';
			conf_error(ctx, &loc, v->key, "unexpected '%s' after the value of '%s'", q,
				   v->key);
			return -1;
		}
		s->at[s->n] = (size_t)(q - s->buf);
		s->loc[s->n] = v->loc;
		s->loc[s->n].column += (int)(q - s->buf);
		s->tok[s->n++] = q;
		q += len;
		if (*q)
			*q++ = '\0';
	}
	return (int)s->n;
}

void conf_split_free(struct conf_split *s)
{
	mem_free(s->buf);
	s->buf = NULL;
}

/* ---- Lines --------------------------------------------------------------------- */

static int parse_line(struct conf_ctx *ctx, char *line, int lineno)
{
	char *s = line;
	int col = 1;
	size_t klen;
	struct config_loc kloc;
	struct conf_value v;

	/* mosquitto wants the key in column 1; indentation is accepted here. */
	while (*s == ' ' || *s == '\t') {
		s++;
		col++;
	}
	if (!*s || *s == '#')
		return 0;
	klen = strcspn(s, " \t");
	kloc = (struct config_loc){ctx->file, lineno, col};
	memset(&v, 0, sizeof(v));
	v.text = s + klen;
	v.loc = kloc;
	v.loc.column = col + (int)klen;
	while (*v.text == ' ' || *v.text == '\t') {
		v.text++;
		v.loc.column++;
	}
	s[klen] = '\0';
	return conf_apply(ctx, s, &kloc, &v, 1);
}

int conf_mosq_parse(struct conf_ctx *ctx, const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0;
	int rc = 0;

	if (memchr(text, '\0', len)) {
		conf_error(ctx, NULL, NULL, "not a text file (it contains a NUL byte)");
		return -1;
	}
	if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
		p += 3; /* UTF-8 byte order mark */
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		lineno++;
		if (n + 1 > cap) {
			char *grown = mem_realloc(line, n + 1);
			if (!grown) {
				conf_error(ctx, NULL, NULL, "out of memory");
				rc = -1;
				break;
			}
			line = grown;
			cap = n + 1;
		}
		memcpy(line, p, n);
		while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
			n--;
		line[n] = '\0';
		if (parse_line(ctx, line, lineno) < 0)
			rc = -1;
		p = nl ? nl + 1 : end;
	}
	mem_free(line);
	return rc;
}

/* ---- Values with several words --------------------------------------------- */

static void missing(struct conf_ctx *ctx, const struct conf_value *v)
{
	conf_error(ctx, &v->loc, v->key, "missing value for '%s'", v->key);
}

/* Splits v, reporting an empty value; returns the token count or -1. */
static int split(struct conf_ctx *ctx, const struct conf_value *v, size_t max,
		 struct conf_split *sp)
{
	int n = conf_split(ctx, v, max, sp);

	if (n == 0)
		missing(ctx, v);
	return n > 0 ? n : -1;
}

/* listener <port> [<bind address> | <unix socket path>] */
int conf_set_listener(struct conf_ctx *ctx, const struct conf_option *opt,
		      const struct conf_target *t, const struct conf_value *v)
{
	struct conf_split sp;
	struct config_listener *l;
	int64_t port;
	long idx;
	int rc = -1;

	(void)opt;
	(void)t;
	if (split(ctx, v, 2, &sp) < 0 ||
	    conf_parse_int(ctx, v->key, sp.tok[0], &sp.loc[0], 0, 65535, &port) < 0)
		goto out;
	if (port == 0 && sp.n < 2) {
		conf_error(ctx, &sp.loc[0], v->key,
			   "a listener on port 0 needs a unix socket path");
		goto out;
	}
	idx = conf_new_listener(ctx, &v->kloc);
	if (idx < 0)
		goto out;
	l = &ctx->cfg->listeners[idx];
	l->port = (int)port;
	if (sp.n == 2 && port == 0)
		l->unix_path = mem_strdup(sp.tok[1]);
	else if (sp.n == 2)
		l->bind_address = mem_strdup(sp.tok[1]);
	ctx->listener = idx;
	rc = 0;
out:
	conf_split_free(&sp);
	return rc;
}

/* connection <name> */
int conf_set_connection(struct conf_ctx *ctx, const struct conf_option *opt,
			const struct conf_target *t, const struct conf_value *v)
{
	struct conf_split sp;
	long idx;
	int rc = -1;

	(void)opt;
	(void)t;
	if (split(ctx, v, 1, &sp) < 0)
		goto out;
	idx = conf_new_bridge(ctx, &v->kloc);
	if (idx < 0)
		goto out;
	ctx->cfg->bridges[idx].name = mem_strdup(sp.tok[0]);
	ctx->bridge = idx;
	rc = 0;
out:
	conf_split_free(&sp);
	return rc;
}

/* port and bind_address: in mosquitto.conf, the deprecated default listener */
int conf_set_default_listener(struct conf_ctx *ctx, const struct conf_option *opt,
			      const struct conf_target *t, const struct conf_value *v)
{
	struct conf_option o = *opt;

	if (ctx->syntax == CONF_SYNTAX_MOSQ) {
		conf_warn(ctx, &v->loc, v->key, "'%s' is deprecated and sets the default "
			  "listener: use 'listener' instead", v->key);
		o.min = 1; /* mosquitto refuses port 0 here */
	}
	return conf_set_generic(ctx, &o, t, v);
}

static int word_value(const struct conf_name *names, const char *s, uint32_t *out)
{
	for (; names->name; names++) {
		if (strcmp(names->name, s) == 0) {
			*out = (uint32_t)names->value;
			return 0;
		}
	}
	return -1;
}

/* log_dest stdout|stderr|syslog|topic|dlt|none ... | file <path> */
int conf_set_log_dest(struct conf_ctx *ctx, const struct conf_option *opt,
		      const struct conf_target *t, const struct conf_value *v)
{
	static const struct conf_name dests[] = {
		{"stdout", LOG_DEST_STDOUT}, {"stderr", LOG_DEST_STDERR},
		{"syslog", LOG_DEST_SYSLOG}, {"topic", LOG_DEST_TOPIC}, {"dlt", LOG_DEST_DLT},
		{"file", LOG_DEST_FILE}, {"none", LOG_DEST_NONE}, {NULL, 0}};
	struct conf_split sp;
	uint32_t bit;
	int rc = -1;

	(void)opt;
	(void)t;
	if (split(ctx, v, CONF_MAX_TOKENS, &sp) < 0)
		goto out;
	for (size_t i = 0; i < sp.n; i++) {
		if (word_value(dests, sp.tok[i], &bit) < 0) {
			conf_error(ctx, &sp.loc[i], v->key,
				   "invalid value '%s' for '%s' (accepted: stdout, stderr, syslog, "
				   "topic, dlt, none, file <path>)", sp.tok[i], v->key);
			goto out;
		}
		ctx->log_dest_set = true;
		ctx->log_dest = bit == LOG_DEST_NONE ? 0 : ctx->log_dest | bit;
		if (bit != LOG_DEST_FILE)
			continue;
		if (i + 1 == sp.n) {
			conf_error(ctx, &sp.loc[i], v->key, "'log_dest file' needs a file name");
			goto out;
		}
		if (ctx->cfg->log_file) {
			conf_error(ctx, &sp.loc[i], v->key,
				   "only one 'log_dest file' may be given");
			goto out;
		}
		ctx->cfg->log_file = mem_strdup(v->text + sp.at[i + 1]);
		break; /* the file name is the rest of the value */
	}
	rc = 0;
out:
	conf_split_free(&sp);
	return rc;
}

/* log_type debug|error|warning|notice|information|subscribe|unsubscribe|websockets|none|all ... */
int conf_set_log_type(struct conf_ctx *ctx, const struct conf_option *opt,
		      const struct conf_target *t, const struct conf_value *v)
{
	static const struct conf_name types[] = {
		{"debug", LOG_T_DEBUG}, {"error", LOG_T_ERR}, {"warning", LOG_T_WARNING},
		{"notice", LOG_T_NOTICE}, {"information", LOG_T_INFO},
		{"subscribe", LOG_T_SUBSCRIBE}, {"unsubscribe", LOG_T_UNSUBSCRIBE},
		{"websockets", LOG_T_WEBSOCKETS},
		{"internal", LOG_T_INTERNAL}, {"all", LOG_T_ALL}, {"none", 0}, {NULL, 0}};
	struct conf_split sp;
	uint32_t bit;
	int rc = -1;

	(void)opt;
	(void)t;
	if (split(ctx, v, CONF_MAX_TOKENS, &sp) < 0)
		goto out;
	for (size_t i = 0; i < sp.n; i++) {
		if (word_value(types, sp.tok[i], &bit) < 0) {
			conf_error(ctx, &sp.loc[i], v->key,
				   "invalid value '%s' for '%s' (accepted: debug, error, warning, "
				   "notice, information, subscribe, unsubscribe, websockets, none, "
				   "all)", sp.tok[i], v->key);
			goto out;
		}
		/* the first log_type replaces the default set */
		ctx->log_type_set = true;
		ctx->log_type = bit == 0 ? 0 : ctx->log_type | bit;
	}
	rc = 0;
out:
	conf_split_free(&sp);
	return rc;
}

/* host, host:port, a:b::c:port (the last colon starts the port) or [v6]:port */
static int host_port(struct conf_ctx *ctx, const struct conf_value *v, char *tok,
		     const struct config_loc *loc, struct config_bridge_address *a)
{
	char *host = tok, *port = NULL;
	int64_t n = 1883;

	if (tok[0] == '[') {
		char *close = strchr(tok, ']');
		if (!close || (close[1] && close[1] != ':')) {
			conf_error(ctx, loc, v->key, "invalid address '%s' for '%s'", tok, v->key);
			return -1;
		}
		host = tok + 1;
		*close = '\0';
		port = close[1] ? close + 2 : NULL;
	} else if ((port = strrchr(tok, ':')) != NULL) {
		*port++ = '\0';
	}
	if (!*host) {
		conf_error(ctx, loc, v->key, "missing host in the value of '%s'", v->key);
		return -1;
	}
	if (port && conf_parse_int(ctx, v->key, port, loc, 1, 65535, &n) < 0)
		return -1;
	a->host = mem_strdup(host);
	a->port = (int)n;
	return a->host ? 0 : -1;
}

/* address host[:port] [host[:port]]... */
int conf_set_address(struct conf_ctx *ctx, const struct conf_option *opt,
		     const struct conf_target *t, const struct conf_value *v)
{
	struct config_bridge *b = t->base;
	struct conf_split sp;
	int rc = -1;

	(void)opt;
	if (split(ctx, v, CONF_MAX_TOKENS, &sp) < 0)
		goto out;
	for (size_t i = 0; i < sp.n; i++) {
		struct config_bridge_address *grown =
			mem_realloc(b->addresses, (b->naddresses + 1) * sizeof(*grown));
		if (!grown)
			goto out;
		b->addresses = grown;
		if (host_port(ctx, v, sp.tok[i], &sp.loc[i], &grown[b->naddresses]) < 0)
			goto out;
		b->naddresses++;
	}
	rc = 0;
out:
	conf_split_free(&sp);
	return rc;
}

/* topic <pattern> [[[out|in|both] <qos>] <local prefix> <remote prefix>], "" = empty */
int conf_set_topic(struct conf_ctx *ctx, const struct conf_option *opt,
		   const struct conf_target *t, const struct conf_value *v)
{
	const char *parts[CONF_TOPIC_NPARTS] = {NULL};
	struct config_loc locs[CONF_TOPIC_NPARTS];
	struct conf_split sp;
	int rc = -1;

	(void)opt;
	(void)t;
	if (split(ctx, v, CONF_TOPIC_NPARTS, &sp) < 0)
		goto out;
	for (size_t i = 0; i < CONF_TOPIC_NPARTS; i++) {
		parts[i] = i < sp.n ? sp.tok[i] : NULL;
		locs[i] = i < sp.n ? sp.loc[i] : sp.loc[sp.n - 1];
	}
	rc = conf_bridge_topic(ctx, parts, locs);
out:
	conf_split_free(&sp);
	return rc;
}

/* restart_timeout <seconds> | <base> <cap> */
int conf_set_restart_timeout(struct conf_ctx *ctx, const struct conf_option *opt,
			     const struct conf_target *t, const struct conf_value *v)
{
	struct config_bridge *b = t->base;
	struct conf_split sp;
	int64_t base, cap = 0;
	int rc = -1;

	(void)opt;
	if (split(ctx, v, 2, &sp) < 0 ||
	    conf_parse_int(ctx, v->key, sp.tok[0], &sp.loc[0], INT_MIN, INT_MAX, &base) < 0)
		goto out;
	if (base < 1 && ctx->syntax == CONF_SYNTAX_MOSQ) {
		conf_warn(ctx, &sp.loc[0], v->key, "value %s for '%s' is below 1; using 1",
			  sp.tok[0], v->key);
		base = 1;
	} else if (base < 1) {
		conf_error(ctx, &sp.loc[0], v->key,
			   "value %s for '%s' is out of range (accepted: 1..%d)", sp.tok[0], v->key,
			   INT_MAX);
		goto out;
	}
	if (sp.n == 2) {
		if (conf_parse_int(ctx, v->key, sp.tok[1], &sp.loc[1], 0, INT_MAX, &cap) < 0)
			goto out;
		if (cap < base) {
			conf_error(ctx, &sp.loc[1], v->key,
				   "the back-off cap (%s) of '%s' is lower than its base (%lld)",
				   sp.tok[1], v->key, (long long)base);
			goto out;
		}
	}
	b->restart_timeout_base = (int)base;
	b->restart_timeout_cap = (int)cap;
	rc = 0;
out:
	conf_split_free(&sp);
	return rc;
}

/* bridge_tcp_keepalive <idle> <interval> <count> */
int conf_set_tcp_keepalive(struct conf_ctx *ctx, const struct conf_option *opt,
			   const struct conf_target *t, const struct conf_value *v)
{
	struct config_bridge *b = t->base;
	struct conf_split sp;
	int64_t x[3];
	int rc = -1;

	(void)opt;
	if (split(ctx, v, 3, &sp) < 0)
		goto out;
	if (sp.n != 3) {
		conf_error(ctx, &v->loc, v->key, "expected '%s <idle> <interval> <count>'", v->key);
		goto out;
	}
	for (size_t i = 0; i < 3; i++)
		if (conf_parse_int(ctx, v->key, sp.tok[i], &sp.loc[i], 1, INT_MAX, &x[i]) < 0)
			goto out;
	b->tcp_keepalive = (int)x[0];
	b->tcp_keepalive_interval = (int)x[1];
	b->tcp_keepalive_count = (int)x[2];
	rc = 0;
out:
	conf_split_free(&sp);
	return rc;
}

/* enable_proxy_protocol 1|2 */
int conf_set_proxy_protocol(struct conf_ctx *ctx, const struct conf_option *opt,
			    const struct conf_target *t, const struct conf_value *v)
{
	struct config_listener *l = t->base;
	struct conf_split sp;
	int64_t version;
	int rc = -1;

	(void)opt;
	if (split(ctx, v, 1, &sp) < 0 ||
	    conf_parse_int(ctx, v->key, sp.tok[0], &sp.loc[0], 1, 2, &version) < 0)
		goto out;
	l->enable_proxy_protocol = true;
	l->proxy_protocol_version = (int)version;
	rc = 0;
out:
	conf_split_free(&sp);
	return rc;
}

/* ---- Plugins: plugin_opt_* follows the last plugin ------------------------- */

static struct config_security *owner_security(struct conf_ctx *ctx, enum conf_owner owner,
					      size_t idx)
{
	if (owner == CONF_OWN_LISTENER)
		return &ctx->cfg->listeners[idx].security;
	if (owner == CONF_OWN_DEFAULT)
		return &ctx->deflt.security;
	return &ctx->cfg->security;
}

static int add_plugin(struct conf_ctx *ctx, const struct conf_target *t, const char *name,
		      const char *path, const struct config_loc *loc, bool current)
{
	struct config_security *sec = owner_security(ctx, t->owner, t->idx);
	struct config_plugin *grown =
		mem_realloc(sec->plugins, (sec->nplugins + 1) * sizeof(*grown));
	struct config_plugin *p;

	if (!grown) {
		oom(ctx, loc);
		return -1;
	}
	sec->plugins = grown;
	p = &grown[sec->nplugins++];
	memset(p, 0, sizeof(*p));
	p->path = path ? mem_strdup(path) : NULL;
	p->name = name ? mem_strdup(name) : NULL;
	p->deny_special_chars = -1;
	p->loc = *loc;
	if (current) {
		ctx->plugin.valid = true;
		ctx->plugin.owner = t->owner;
		ctx->plugin.owner_idx = t->idx;
		ctx->plugin.idx = sec->nplugins - 1;
	}
	return 0;
}

int conf_set_plugin(struct conf_ctx *ctx, const struct conf_option *opt,
		    const struct conf_target *t, const struct conf_value *v)
{
	if (blank(v->text)) {
		conf_error(ctx, &v->loc, v->key, "missing value for '%s'", v->key);
		return -1;
	}
	(void)opt;
	return add_plugin(ctx, t, NULL, v->text, &v->loc, true);
}

int conf_set_plugin_load(struct conf_ctx *ctx, const struct conf_option *opt,
			 const struct conf_target *t, const struct conf_value *v)
{
	const struct config_security *sec = &ctx->cfg->security;
	struct conf_split sp;
	int rc = -1;

	(void)opt;
	if (conf_split(ctx, v, CONF_MAX_TOKENS, &sp) < 2) {
		if (sp.buf)
			conf_error(ctx, &v->loc, v->key, "expected '%s <name> <path>'", v->key);
		goto out;
	}
	for (size_t i = 0; i < sec->nplugins; i++) {
		if (sec->plugins[i].name && strcmp(sec->plugins[i].name, sp.tok[0]) == 0) {
			conf_error(ctx, &v->loc, v->key, "a plugin named '%s' is already loaded",
				   sp.tok[0]);
			goto out;
		}
	}
	/* the path is the rest of the value, blanks included */
	rc = add_plugin(ctx, t, sp.tok[0], v->text + sp.at[1], &v->loc, true);
out:
	conf_split_free(&sp);
	return rc;
}

int conf_set_plugin_use(struct conf_ctx *ctx, const struct conf_option *opt,
			const struct conf_target *t, const struct conf_value *v)
{
	struct conf_target lt = *t;
	struct conf_split sp;
	int rc = -1;

	(void)opt;
	if (conf_split(ctx, v, 1, &sp) == 1) {
		lt.base = &((struct config_listener *)t->base)->security;
		rc = add_plugin(ctx, &lt, sp.tok[0], NULL, &v->loc, false);
	} else if (sp.n == 0 && sp.buf) {
		conf_error(ctx, &v->loc, v->key, "expected '%s <name>'", v->key);
	}
	conf_split_free(&sp);
	return rc;
}

static struct config_plugin *current_plugin(struct conf_ctx *ctx)
{
	struct config_security *sec;

	if (!ctx->plugin.valid)
		return NULL;
	sec = owner_security(ctx, ctx->plugin.owner, ctx->plugin.owner_idx);
	return &sec->plugins[ctx->plugin.idx];
}

static void no_plugin(struct conf_ctx *ctx, const struct conf_value *v)
{
	conf_error(ctx, &v->kloc, v->key, "'%s' needs a plugin: put it after a 'plugin' line%s",
		   v->key, ctx->syntax == CONF_SYNTAX_YAML ? " or in a 'plugins:' entry" : "");
}

int conf_set_plugin_opt(struct conf_ctx *ctx, const struct conf_option *opt,
			const struct conf_target *t, const struct conf_value *v)
{
	struct config_plugin *p = current_plugin(ctx);
	struct config_plugin_opt *grown;
	const char *value = v->text;

	(void)opt;
	(void)t;
	if (!p) {
		no_plugin(ctx, v);
		return -1;
	}
	if (!v->suffix || !*v->suffix) {
		conf_error(ctx, &v->loc, v->key, "'%s' needs a key after the prefix", v->key);
		return -1;
	}
	while (*value == ' ' || *value == '\t')
		value++;
	if (!*value) {
		conf_error(ctx, &v->loc, v->key, "missing value for '%s'", v->key);
		return -1;
	}
	grown = mem_realloc(p->opts, (p->nopts + 1) * sizeof(*grown));
	if (!grown) {
		oom(ctx, &v->loc);
		return -1;
	}
	p->opts = grown;
	grown[p->nopts].key = mem_strdup(v->suffix);
	grown[p->nopts].value = mem_strdup(value);
	p->nopts++;
	return 0;
}

int conf_set_plugin_name(struct conf_ctx *ctx, const struct conf_option *opt,
			 const struct conf_target *t, const struct conf_value *v)
{
	struct config_plugin *p = current_plugin(ctx);

	(void)opt;
	(void)t;
	if (!p) {
		no_plugin(ctx, v);
		return -1;
	}
	if (blank(v->text) || strpbrk(v->text, "/+#")) {
		conf_error(ctx, &v->loc, v->key, "a plugin name is one topic level: no '/', '+' or '#'");
		return -1;
	}
	mem_free(p->label);
	p->label = mem_strdup(v->text);
	if (!p->label) {
		oom(ctx, &v->loc);
		return -1;
	}
	return 0;
}

int conf_set_deny_special(struct conf_ctx *ctx, const struct conf_option *opt,
			  const struct conf_target *t, const struct conf_value *v)
{
	struct config_plugin *p = current_plugin(ctx);
	bool b;

	(void)t;
	if (conf_parse_bool(ctx, v->key, v, &b) < 0)
		return -1;
	if (p) {
		p->deny_special_chars = b;
		return 0;
	}
	if (ctx->syntax == CONF_SYNTAX_YAML) {
		/* YAML, outside a plugin: the default for every plugin */
		*(bool *)((char *)ctx->cfg + opt->off) = b;
		return 0;
	}
	no_plugin(ctx, v);
	return -1;
}

/* ---- Bridge topics ------------------------------------------------------------ */

static bool empty_part(const char *s)
{
	return !s || !*s || strcmp(s, "\"\"") == 0;
}

static int topic_check(struct conf_ctx *ctx, const char *const parts[],
		       const struct config_loc locs[], enum bridge_direction *dir, int *qos)
{
	static const struct {
		const char *name;
		enum bridge_direction dir;
	} dirs[] = {{"out", BRIDGE_OUT}, {"in", BRIDGE_IN}, {"both", BRIDGE_BOTH}};
	const char *pattern = parts[CONF_TOPIC_PATTERN];
	int64_t q = 0;
	size_t i;

	*dir = BRIDGE_OUT;
	if (parts[CONF_TOPIC_DIRECTION]) {
		for (i = 0; i < 3; i++)
			if (strcasecmp(parts[CONF_TOPIC_DIRECTION], dirs[i].name) == 0)
				break;
		if (i == 3) {
			conf_error(ctx, &locs[CONF_TOPIC_DIRECTION], "topic",
				   "invalid topic direction '%s' (accepted: out, in, both)",
				   parts[CONF_TOPIC_DIRECTION]);
			return -1;
		}
		*dir = dirs[i].dir;
	}
	if (parts[CONF_TOPIC_QOS] && conf_parse_int(ctx, "topic", parts[CONF_TOPIC_QOS],
						    &locs[CONF_TOPIC_QOS], 0, 2, &q) < 0)
		return -1;
	*qos = (int)q;
	for (i = CONF_TOPIC_LOCAL; i <= CONF_TOPIC_REMOTE; i++) {
		if (!empty_part(parts[i]) && !topic_name_valid(parts[i], strlen(parts[i]))) {
			conf_error(ctx, &locs[i], "topic",
				   "invalid %s prefix '%s': a prefix must not contain '+' or '#'",
				   i == CONF_TOPIC_LOCAL ? "local" : "remote", parts[i]);
			return -1;
		}
	}
	if (empty_part(pattern)) {
		if (empty_part(parts[CONF_TOPIC_LOCAL]) || empty_part(parts[CONF_TOPIC_REMOTE])) {
			conf_error(ctx, &locs[CONF_TOPIC_PATTERN], "topic",
				   "an empty topic pattern needs both a local and a remote prefix");
			return -1;
		}
	} else if (!topic_filter_valid(pattern, strlen(pattern))) {
		conf_error(ctx, &locs[CONF_TOPIC_PATTERN], "topic", "invalid topic pattern '%s'",
			   pattern);
		return -1;
	}
	return 0;
}

int conf_bridge_topic(struct conf_ctx *ctx, const char *const parts[CONF_TOPIC_NPARTS],
		      const struct config_loc locs[CONF_TOPIC_NPARTS])
{
	struct config_bridge *b;
	struct config_bridge_topic *grown, *tp;
	enum bridge_direction dir;
	int qos;

	if (ctx->bridge < 0) {
		conf_error(ctx, &locs[0], "topic", "'topic' is a bridge option");
		return -1;
	}
	if (topic_check(ctx, parts, locs, &dir, &qos) < 0)
		return -1;
	b = &ctx->cfg->bridges[ctx->bridge];
	grown = mem_realloc(b->topics, (b->ntopics + 1) * sizeof(*grown));
	if (!grown) {
		oom(ctx, &locs[0]);
		return -1;
	}
	b->topics = grown;
	tp = &grown[b->ntopics++];
	memset(tp, 0, sizeof(*tp));
	tp->pattern = mem_strdup(empty_part(parts[CONF_TOPIC_PATTERN]) ? ""
								: parts[CONF_TOPIC_PATTERN]);
	tp->direction = dir;
	tp->qos = qos;
	if (!empty_part(parts[CONF_TOPIC_LOCAL]))
		tp->local_prefix = mem_strdup(parts[CONF_TOPIC_LOCAL]);
	if (!empty_part(parts[CONF_TOPIC_REMOTE]))
		tp->remote_prefix = mem_strdup(parts[CONF_TOPIC_REMOTE]);
	return 0;
}
