/*
 * conf_schema.h: the option table and the setter interface, private to the
 * configuration module (conf.c, conf_schema.c, conf_mosq.c, conf_yaml.c).
 *
 * Owns the description of every option (name, type, the struct and offset
 * of its field, default, range, flags, help) and the parse context that
 * setters work on. It reads no files: the front ends turn text into
 * conf_apply() calls; conf.c resolves where a value goes, reports errors,
 * merges the global security settings into listeners and validates.
 */
#ifndef MIDGE_CONF_SCHEMA_H
#define MIDGE_CONF_SCHEMA_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

/* Listener fields merged from a global default hold this until the merge. */
#define CONF_UNSET_INT INT_MIN

enum conf_type {
	CONF_T_BOOL,     /* bool */
	CONF_T_TRIBOOL,  /* int: -1 unset, 0, 1 */
	CONF_T_INT,      /* int, .min..max; .names may give words for values */
	CONF_T_UINT32,   /* uint32_t, .min..max */
	CONF_T_SIZE,     /* uint64_t byte count */
	CONF_T_DURATION, /* int64_t seconds, written <n>h|d|w|m|y as in mosquitto */
	CONF_T_STRING,   /* char *; .names, if set, lists the accepted words */
	CONF_T_ENUM,     /* int (or an enum), from .names */
	CONF_T_STRLIST,  /* struct config_strlist */
	CONF_T_SPECIAL,  /* only .set knows the value's shape */
	CONF_T_SECTION,  /* a YAML structure key: listeners, bridges, plugins, topics */
	CONF_T_LEGACY,   /* accepted and ignored with a warning */
};

/* The struct an option's field lives in. */
enum conf_scope {
	CONF_SC_GLOBAL,   /* struct config */
	CONF_SC_LISTENER, /* struct config_listener */
	CONF_SC_SECURITY, /* struct config_security, global or per listener */
	CONF_SC_BRIDGE,   /* struct config_bridge */
	CONF_SC_NONE,     /* special setters that find their own target */
};

enum {
	CONF_F_RELOADABLE = 1u << 0,  /* may change on SIGHUP */
	CONF_F_REPEATABLE = 1u << 1,  /* each occurrence adds a value */
	CONF_F_DEPRECATED = 1u << 2,  /* accepted with a warning */
	CONF_F_ALIAS = 1u << 3,       /* another name for .alias_of */
	CONF_F_MERGED = 1u << 4,      /* .off2: the global default (listener options) or
				       * the listener copy (global options) */
	CONF_F_CLAMP = 1u << 5,       /* mosquitto.conf: below .min becomes .min, with a warning */
	CONF_F_PREFIX = 1u << 6,      /* the name is a prefix (plugin_opt_...) */
	CONF_F_MOSQ_ONLY = 1u << 7,   /* mosquitto.conf syntax only */
	CONF_F_YAML_ONLY = 1u << 8,   /* YAML syntax only */
	CONF_F_NEED_LISTENER = 1u << 9, /* mosquitto.conf: only after a 'listener' line */
	CONF_F_ONCE = 1u << 10,       /* a second value in the same place is an error */
	CONF_F_SPLIT = 1u << 11,      /* list value: split on commas and blanks */
	CONF_F_MOSQ_GLOBAL = 1u << 12, /* mosquitto.conf: global even with per_listener_settings */
	CONF_F_ZERO_OK = 1u << 13,    /* 0 ("no limit") is accepted below .min */
	CONF_F_LIST = 1u << 14,       /* a YAML sequence gives several values (address) */
	CONF_F_DEFLT = 1u << 15,      /* mosquitto.conf: always the default listener */
	CONF_F_CLUSTER = 1u << 16,    /* cluster_<key>: YAML writes <key> in 'cluster:' */
};

enum conf_syntax { CONF_SYNTAX_MOSQ, CONF_SYNTAX_YAML };

/* Where the YAML walker is; mosquitto.conf always reads at the top level. */
enum conf_section { CONF_SEC_TOP, CONF_SEC_LISTENER, CONF_SEC_BRIDGE };

struct conf_name {
	const char *name;
	int value;
};

struct conf_value {
	const char *text;   /* NUL-terminated; mosquitto.conf: the rest of the line */
	struct config_loc loc;
	const char *key;    /* the option name as written (an alias stays an alias) */
	struct config_loc kloc; /* where that name is */
	const char *suffix; /* prefix options: what follows the prefix */
};

/* Who owns a target: used for duplicate detection and plugin bookkeeping. */
enum conf_owner { CONF_OWN_GLOBAL, CONF_OWN_DEFAULT, CONF_OWN_LISTENER, CONF_OWN_BRIDGE };

struct conf_target {
	void *base;            /* struct the field lives in (see enum conf_scope) */
	size_t off;            /* offset of the field in *base */
	enum conf_scope scope; /* the struct type of *base */
	enum conf_owner owner;
	size_t idx;            /* listener or bridge index */
};

struct conf_ctx;
struct conf_option;

typedef int (*conf_set_fn)(struct conf_ctx *ctx, const struct conf_option *opt,
			   const struct conf_target *t, const struct conf_value *v);
/* Returns NULL when the string is acceptable, otherwise what is wrong with it. */
typedef const char *(*conf_check_fn)(const char *s);

struct conf_option {
	const char *name;
	enum conf_type type;
	enum conf_scope scope;
	uint32_t flags;
	size_t off;
	size_t off2;                   /* CONF_F_MERGED */
	const char *def;               /* default as written in a file; NULL = unset */
	int64_t min, max;
	const struct conf_name *names; /* NULL-terminated */
	conf_set_fn set;               /* overrides the generic setter */
	conf_check_fn check;           /* extra check of string values */
	const char *alias_of;
	const char *group;             /* heading in etc/midge.yaml */
	const char *help;
};

/* Per-load state; conf.c owns it, setters read and update it. */
struct conf_ctx {
	struct config *cfg;
	struct config_diag *diag;
	/* Per file (saved and restored around include_dir). */
	enum conf_syntax syntax;
	const char *file;
	int depth;
	enum conf_section section;
	long listener; /* current listener index, -1 none */
	long bridge;   /* current bridge index, -1 none */
	struct {
		bool valid;
		enum conf_owner owner;
		size_t owner_idx;
		size_t idx;
	} plugin;      /* the plugin plugin_opt_* applies to */
	/* Whole load. */
	struct config_listener deflt; /* mosquitto's default listener (port, bind_address) */
	bool deflt_used;
	bool security_seen;           /* for the per_listener_settings ordering rule */
	uint32_t log_dest, log_type;
	bool log_dest_set, log_type_set;
	bool mosq_seen;             /* a mosquitto.conf file was read */
	struct config_loc *seen_global, *seen_deflt;
	struct config_loc **seen_listener, **seen_bridge;
	size_t nseen_listener, nseen_bridge;
};

/* Table (conf_schema.c). */
size_t conf_schema_count(void);
const struct conf_option *conf_schema_at(size_t i);
size_t conf_schema_index(const struct conf_option *opt);
/* Exact name, then prefix entries; aliases are returned as such. */
const struct conf_option *conf_schema_find(const char *name);
/* Follows .alias_of. */
const struct conf_option *conf_schema_canonical(const struct conf_option *opt);
/* The closest name usable in that syntax, or NULL when none is close. */
const char *conf_schema_suggest(const char *name, enum conf_syntax syntax);
/* The candidate closest to name by edit distance, or NULL when none is close. */
const char *conf_closest(const char *name, const char *const *cands, size_t n);

/* Default values into a fresh struct (listener: merged fields left unset). */
void conf_schema_defaults_global(struct config *cfg);
void conf_schema_defaults_listener(struct config_listener *l);
void conf_schema_defaults_bridge(struct config_bridge *b);
/* Frees every string and list field the table describes for that struct. */
void conf_schema_free_fields(enum conf_scope scope, void *base);
/* Fills the listener's unset fields from the global values. */
void conf_schema_merge_listener(struct config_listener *l, const struct config *cfg);

/* The generic setter for every non-special type. */
int conf_set_generic(struct conf_ctx *ctx, const struct conf_option *opt,
		     const struct conf_target *t, const struct conf_value *v);
/* Parses a boolean the way the current syntax spells it. */
int conf_parse_bool(struct conf_ctx *ctx, const char *key, const struct conf_value *v,
		    bool *out);
/* Parses one decimal integer token within [min, max]; -1 with an error otherwise. */
int conf_parse_int(struct conf_ctx *ctx, const char *key, const char *tok,
		   const struct config_loc *loc, int64_t min, int64_t max, int64_t *out);
#define CONF_MAX_TOKENS 32

/* A value cut into blank-separated tokens, each with its place. */
struct conf_split {
	char *buf;
	size_t n;
	char *tok[CONF_MAX_TOKENS];
	size_t at[CONF_MAX_TOKENS]; /* offset of each token in the value's text */
	struct config_loc loc[CONF_MAX_TOKENS];
};
/*
 * (conf_mosq.c) Splits v into at most max tokens; in mosquitto.conf a later
 * token that starts with '#' ends the value (a comment). More tokens than
 * max is an error, reported. Returns the count or -1; always conf_split_free().
 */
int conf_split(struct conf_ctx *ctx, const struct conf_value *v, size_t max, struct conf_split *s);
void conf_split_free(struct conf_split *s);
void strlist_free(struct config_strlist *l);
int strlist_add(struct config_strlist *l, const char *s);

/* Special setters (conf.c, conf_mosq.c). */
int conf_set_listener(struct conf_ctx *, const struct conf_option *, const struct conf_target *,
		      const struct conf_value *);
int conf_set_connection(struct conf_ctx *, const struct conf_option *, const struct conf_target *,
			const struct conf_value *);
int conf_set_default_listener(struct conf_ctx *, const struct conf_option *,
			      const struct conf_target *, const struct conf_value *);
int conf_set_log_dest(struct conf_ctx *, const struct conf_option *, const struct conf_target *,
		      const struct conf_value *);
int conf_set_log_type(struct conf_ctx *, const struct conf_option *, const struct conf_target *,
		      const struct conf_value *);
int conf_set_per_listener(struct conf_ctx *, const struct conf_option *,
			  const struct conf_target *, const struct conf_value *);
int conf_set_plugin(struct conf_ctx *, const struct conf_option *, const struct conf_target *,
		    const struct conf_value *);
int conf_set_plugin_load(struct conf_ctx *, const struct conf_option *,
			 const struct conf_target *, const struct conf_value *);
int conf_set_plugin_use(struct conf_ctx *, const struct conf_option *, const struct conf_target *,
			const struct conf_value *);
int conf_set_plugin_opt(struct conf_ctx *, const struct conf_option *, const struct conf_target *,
			const struct conf_value *);
int conf_set_plugin_name(struct conf_ctx *, const struct conf_option *,
			 const struct conf_target *, const struct conf_value *);
int conf_set_deny_special(struct conf_ctx *, const struct conf_option *,
			  const struct conf_target *, const struct conf_value *);
int conf_set_include_dir(struct conf_ctx *, const struct conf_option *,
			 const struct conf_target *, const struct conf_value *);
int conf_set_address(struct conf_ctx *, const struct conf_option *, const struct conf_target *,
		     const struct conf_value *);
int conf_set_topic(struct conf_ctx *, const struct conf_option *, const struct conf_target *,
		   const struct conf_value *);
int conf_set_restart_timeout(struct conf_ctx *, const struct conf_option *,
			     const struct conf_target *, const struct conf_value *);
int conf_set_tcp_keepalive(struct conf_ctx *, const struct conf_option *,
			   const struct conf_target *, const struct conf_value *);
int conf_set_proxy_protocol(struct conf_ctx *, const struct conf_option *,
			    const struct conf_target *, const struct conf_value *);

/* Services of conf.c (conf_bridge_topic: conf_mosq.c) for setters and front ends. */
void conf_error(struct conf_ctx *ctx, const struct config_loc *loc, const char *key,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void conf_warn(struct conf_ctx *ctx, const struct config_loc *loc, const char *key,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/*
 * Applies `key` with one or more values (a YAML sequence gives several) at
 * the current place. Reports every problem itself; returns -1 on error.
 */
int conf_apply(struct conf_ctx *ctx, const char *key, const struct config_loc *kloc,
	       const struct conf_value *vals, size_t nvals);
/* Appends a listener or bridge with its defaults; returns its index or -1. */
long conf_new_listener(struct conf_ctx *ctx, const struct config_loc *loc);
long conf_new_bridge(struct conf_ctx *ctx, const struct config_loc *loc);
/* Opens a listener or bridge section (YAML mapping) and closes it. */
int conf_section_begin(struct conf_ctx *ctx, enum conf_section sec, const struct config_loc *loc);
void conf_section_end(struct conf_ctx *ctx);
/* Notes that the cluster is configured, at loc (the first cluster key wins). */
void conf_cluster_seen(struct conf_ctx *ctx, const char *key, const struct config_loc *loc);
/* Forgets the current plugin (end of a YAML plugins: entry). */
void conf_plugin_done(struct conf_ctx *ctx);
/* Parts of a bridge topic, in mosquitto's order: pattern direction qos local remote. */
enum { CONF_TOPIC_PATTERN, CONF_TOPIC_DIRECTION, CONF_TOPIC_QOS, CONF_TOPIC_LOCAL,
       CONF_TOPIC_REMOTE, CONF_TOPIC_NPARTS };
/* Adds a bridge topic from its parts (NULL = not given; "" or \"\" = empty prefix). */
int conf_bridge_topic(struct conf_ctx *ctx, const char *const parts[CONF_TOPIC_NPARTS],
		      const struct config_loc locs[CONF_TOPIC_NPARTS]);
/* Loads one more file (include_dir) with the front end its name calls for. */
int conf_load_file(struct conf_ctx *ctx, const char *path, enum config_format format,
		   const struct config_loc *from);
/* Interns a file name for struct config_loc. */
const char *conf_intern_file(struct conf_ctx *ctx, const char *path);

/* Front ends: parse a whole file held in memory (NUL-terminated). */
int conf_mosq_parse(struct conf_ctx *ctx, const char *text, size_t len);
int conf_yaml_parse(struct conf_ctx *ctx, const char *text, size_t len);

#endif
