/*
 * conf_emit.c: a loaded configuration written back as midge YAML (`midge
 * --convert mosquitto.conf`). It writes what the configuration means, not
 * what the file said: every option that differs from its default, from the
 * schema table, so the YAML loads into the same struct config (a unit test
 * checks that on every sample file).
 */
#include "config.h"

#include "conf.h"
#include "conf_schema.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const void *at(const void *base, size_t off)
{
	return (const char *)base + off;
}

/* A YAML scalar: plain when safe, else double-quoted. */
static void scalar(FILE *f, const char *s)
{
	bool plain = *s && !strchr(":#{}[],&*!|>'\"%@`", s[0]) && s[0] != '-' && s[0] != ' ' &&
		     s[strlen(s) - 1] != ' ' && !strstr(s, ": ") && !strstr(s, " #") &&
		     strcmp(s, "true") && strcmp(s, "false") && strcmp(s, "yes") && strcmp(s, "no") &&
		     strcmp(s, "null") && strcmp(s, "~") && strcmp(s, "on") && strcmp(s, "off") &&
		     strcmp(s, "y") && strcmp(s, "n") && strspn(s, "0123456789.-+") != strlen(s);

	for (const char *p = s; plain && *p; p++)
		if ((unsigned char)*p < 0x20 || *p == '$')
			plain = false;
	if (plain) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\x%02x", (unsigned char)*s);
		else if (*s == '$')
			fputs("$$", f); /* ${...} would be expanded */
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static const char *enum_name(const struct conf_option *o, int v)
{
	for (const struct conf_name *n = o->names; n && n->name; n++)
		if (n->value == v)
			return n->name;
	return NULL;
}

static bool same(const struct conf_option *o, const void *a, const void *b)
{
	switch (o->type) {
	case CONF_T_BOOL:
		return *(const bool *)a == *(const bool *)b;
	case CONF_T_TRIBOOL:
	case CONF_T_INT:
	case CONF_T_ENUM:
		return *(const int *)a == *(const int *)b;
	case CONF_T_UINT32:
		return *(const uint32_t *)a == *(const uint32_t *)b;
	case CONF_T_SIZE:
	case CONF_T_DURATION:
		return *(const int64_t *)a == *(const int64_t *)b;
	case CONF_T_STRING: {
		const char *x = *(char *const *)a, *y = *(char *const *)b;
		return (!x && !y) || (x && y && strcmp(x, y) == 0);
	}
	case CONF_T_STRLIST: {
		const struct config_strlist *x = a, *y = b;
		if (x->count != y->count)
			return false;
		for (size_t i = 0; i < x->count; i++)
			if (strcmp(x->items[i], y->items[i]) != 0)
				return false;
		return true;
	}
	default:
		return true;
	}
}

/* "  name: value" for one field; false when its type is not written generically. */
static void field(FILE *f, const char *indent, const struct conf_option *o, const void *v)
{
	fprintf(f, "%s%s: ", indent, o->name);
	switch (o->type) {
	case CONF_T_BOOL:
		fputs(*(const bool *)v ? "true" : "false", f);
		break;
	case CONF_T_TRIBOOL:
		fputs(*(const int *)v ? "true" : "false", f);
		break;
	case CONF_T_INT:
	case CONF_T_ENUM: {
		const char *n = enum_name(o, *(const int *)v);
		if (n && o->type == CONF_T_ENUM)
			scalar(f, n);
		else
			fprintf(f, "%d", *(const int *)v);
		break;
	}
	case CONF_T_UINT32:
		fprintf(f, "%" PRIu32, *(const uint32_t *)v);
		break;
	case CONF_T_SIZE:
		fprintf(f, "%" PRIu64, *(const uint64_t *)v);
		break;
	case CONF_T_DURATION:
		fprintf(f, "%" PRId64 "s", *(const int64_t *)v);
		break;
	case CONF_T_STRING:
		scalar(f, *(char *const *)v);
		break;
	case CONF_T_STRLIST: {
		const struct config_strlist *l = v;
		fputc('[', f);
		for (size_t i = 0; i < l->count; i++) {
			if (i)
				fputs(", ", f);
			scalar(f, l->items[i]);
		}
		fputc(']', f);
		break;
	}
	default:
		break;
	}
	fputc('\n', f);
}

static bool generic(const struct conf_option *o)
{
	return !(o->flags & (CONF_F_ALIAS | CONF_F_MOSQ_ONLY | CONF_F_CLUSTER)) &&
	       o->type != CONF_T_SPECIAL &&
	       o->type != CONF_T_SECTION && o->type != CONF_T_LEGACY;
}

/* Every field of scope that differs between base and def. */
static void fields(FILE *f, const char *indent, enum conf_scope scope, const void *base,
		   const void *def, const char *skip)
{
	for (size_t i = 0; i < conf_schema_count(); i++) {
		const struct conf_option *o = conf_schema_at(i);
		if (o->scope != scope || !generic(o) || (skip && strstr(skip, o->name)))
			continue;
		const void *v = at(base, o->off), *d = at(def, o->off);
		if (o->type == CONF_T_STRING && !*(char *const *)v)
			continue;
		if (!same(o, v, d))
			field(f, indent, o, v);
	}
}

static void plugin_list(FILE *f, const char *indent, const struct config_security *s)
{
	if (!s->nplugins)
		return;
	fprintf(f, "%splugins:\n", indent);
	for (size_t i = 0; i < s->nplugins; i++) {
		const struct config_plugin *p = &s->plugins[i];
		fprintf(f, "%s  - ", indent);
		if (p->path) {
			fputs("path: ", f);
			scalar(f, p->path);
		} else {
			fputs("name: ", f);
			scalar(f, p->name);
		}
		fputc('\n', f);
		if (p->deny_special_chars == 0)
			fprintf(f, "%s    deny_special_chars: false\n", indent);
		if (p->label) {
			fprintf(f, "%s    label: ", indent);
			scalar(f, p->label);
			fputc('\n', f);
		}
		if (p->nopts) {
			fprintf(f, "%s    options:\n", indent);
			for (size_t k = 0; k < p->nopts; k++) {
				fprintf(f, "%s      ", indent);
				scalar(f, p->opts[k].key);
				fputs(": ", f);
				scalar(f, p->opts[k].value);
				fputc('\n', f);
			}
		}
	}
}

static void log_settings(FILE *f, const struct config *cfg, const struct config *def)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} dests[] = {{LOG_DEST_STDOUT, "stdout"}, {LOG_DEST_STDERR, "stderr"},
		     {LOG_DEST_SYSLOG, "syslog"}, {LOG_DEST_TOPIC, "topic"}, {LOG_DEST_DLT, "dlt"}},
	  types[] = {{LOG_T_ERR, "error"},	   {LOG_T_WARNING, "warning"},
		     {LOG_T_NOTICE, "notice"},	   {LOG_T_INFO, "information"},
		     {LOG_T_DEBUG, "debug"},	   {LOG_T_SUBSCRIBE, "subscribe"},
		     {LOG_T_UNSUBSCRIBE, "unsubscribe"}, {LOG_T_WEBSOCKETS, "websockets"},
		     {LOG_T_INTERNAL, "internal"}};
	const char *sep = "";

	if (cfg->log_dest != def->log_dest || cfg->log_file) {
		fputs("log_dest: [", f);
		if (!cfg->log_dest)
			fputs("none", f);
		for (size_t i = 0; i < sizeof(dests) / sizeof(dests[0]); i++)
			if (cfg->log_dest & dests[i].bit) {
				fprintf(f, "%s%s", sep, dests[i].name);
				sep = ", ";
			}
		if ((cfg->log_dest & LOG_DEST_FILE) && cfg->log_file) {
			fputs(sep, f);
			char line[4200];
			snprintf(line, sizeof(line), "file %s", cfg->log_file);
			scalar(f, line);
		}
		fputs("]\n", f);
	}
	if (cfg->log_type != def->log_type) {
		sep = "";
		fputs("log_type: [", f);
		if (!cfg->log_type)
			fputs("none", f);
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (cfg->log_type & types[i].bit) {
				fprintf(f, "%s%s", sep, types[i].name);
				sep = ", ";
			}
		fputs("]\n", f);
	}
}

static void listeners(FILE *f, const struct config *cfg)
{
	struct config_listener dl;

	if (!cfg->nlisteners)
		return;
	fputs("listeners:\n", f);
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct config_listener *l = &cfg->listeners[i];
		memset(&dl, 0, sizeof(dl));
		conf_schema_defaults_listener(&dl);
		/* the port first: it starts the entry */
		fprintf(f, "  - port: %d\n", l->port);
		fields(f, "    ", CONF_SC_LISTENER, l, &dl, "port ");
		/* per-listener security: what differs from the global settings it inherits */
		fields(f, "    ", CONF_SC_SECURITY, &l->security, &cfg->security, NULL);
		if (l->security.nplugins != cfg->security.nplugins)
			plugin_list(f, "    ", &l->security);
		conf_schema_free_fields(CONF_SC_LISTENER, &dl);
	}
}

static void bridges(FILE *f, const struct config *cfg)
{
	struct config_bridge db;
	static const char *const dirs[] = {"out", "in", "both"};

	if (!cfg->nbridges)
		return;
	fputs("bridges:\n", f);
	for (size_t i = 0; i < cfg->nbridges; i++) {
		const struct config_bridge *b = &cfg->bridges[i];
		memset(&db, 0, sizeof(db));
		conf_schema_defaults_bridge(&db);
		fputs("  - name: ", f);
		scalar(f, b->name);
		fputs("\n    addresses: [", f);
		for (size_t k = 0; k < b->naddresses; k++) {
			char a[300];
			snprintf(a, sizeof(a), strchr(b->addresses[k].host, ':') ? "[%s]:%d" : "%s:%d",
				 b->addresses[k].host, b->addresses[k].port);
			fputs(k ? ", " : "", f);
			scalar(f, a);
		}
		fputs("]\n    topics:\n", f);
		for (size_t k = 0; k < b->ntopics; k++) {
			const struct config_bridge_topic *t = &b->topics[k];
			fputs("      - {pattern: ", f);
			scalar(f, t->pattern ? t->pattern : "");
			fprintf(f, ", direction: %s, qos: %d, local_prefix: ", dirs[t->direction],
				t->qos);
			scalar(f, t->local_prefix ? t->local_prefix : "");
			fputs(", remote_prefix: ", f);
			scalar(f, t->remote_prefix ? t->remote_prefix : "");
			fputs("}\n", f);
		}
		if (b->restart_timeout_base != db.restart_timeout_base ||
		    b->restart_timeout_cap != db.restart_timeout_cap) {
			if (b->restart_timeout_cap)
				fprintf(f, "    restart_timeout: \"%d %d\"\n", b->restart_timeout_base,
					b->restart_timeout_cap);
			else
				fprintf(f, "    restart_timeout: %d\n", b->restart_timeout_base);
		}
		if (b->tcp_keepalive)
			fprintf(f, "    bridge_tcp_keepalive: \"%d %d %d\"\n", b->tcp_keepalive,
				b->tcp_keepalive_interval, b->tcp_keepalive_count);
		fields(f, "    ", CONF_SC_BRIDGE, b, &db, "name ");
		conf_schema_free_fields(CONF_SC_BRIDGE, &db);
	}
}

/* cluster: with the option names less 'cluster_', nats_tls_<x> under nats_tls:. */
static void cluster(FILE *f, const struct config *cfg, const struct config *def)
{
	static const char tls[] = "cluster_nats_tls_";
	bool tls_open = false;

	if (!cfg->cluster.enabled)
		return;
	fputs("cluster:\n", f);
	for (size_t i = 0; i < conf_schema_count(); i++) {
		const struct conf_option *o = conf_schema_at(i);
		if (!(o->flags & CONF_F_CLUSTER))
			continue;
		const void *v = at(cfg, o->off), *d = at(def, o->off);
		if ((o->type == CONF_T_STRING && !*(char *const *)v) || same(o, v, d))
			continue;
		struct conf_option c = *o;
		bool in_tls = strncmp(o->name, tls, sizeof(tls) - 1) == 0;
		c.name = o->name + (in_tls ? sizeof(tls) - 1 : strlen("cluster_"));
		if (in_tls && !tls_open) {
			fputs("  nats_tls:\n", f);
			tls_open = true;
		}
		field(f, in_tls ? "    " : "  ", &c, v);
	}
}

int config_emit_yaml(const struct config *cfg, FILE *f)
{
	struct config def;

	config_init(&def);
	fputs("# midge configuration (written by midge --convert)\n", f);
	fields(f, "", CONF_SC_GLOBAL, cfg, &def, NULL);
	log_settings(f, cfg, &def);
	fields(f, "", CONF_SC_SECURITY, &cfg->security, &def.security, NULL);
	plugin_list(f, "", &cfg->security);
	listeners(f, cfg);
	bridges(f, cfg);
	cluster(f, cfg, &def);
	config_free(&def);
	return ferror(f) ? -1 : 0;
}
