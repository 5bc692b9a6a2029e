/*
 * conf.h: the broker's configuration: one schema table, two front ends.
 *
 * Owns the in-memory configuration (struct config and the per-listener and
 * per-bridge sections), the schema table that names every option with its
 * type, default, range and flags, and the two front ends that fill it: YAML
 * (conf_yaml.c) and the mosquitto.conf syntax (conf_mosq.c). Front ends
 * only produce (key, value, location) events; conversion, range checks and
 * error messages live in one place (conf.c). It does not open sockets or
 * act on any value: the broker reads the struct after config_load().
 */
#ifndef MIDGE_CONF_H
#define MIDGE_CONF_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

/* log_dest bits */
enum {
	LOG_DEST_NONE = 0,
	LOG_DEST_STDOUT = 1u << 0,
	LOG_DEST_STDERR = 1u << 1,
	LOG_DEST_FILE = 1u << 2,
	LOG_DEST_SYSLOG = 1u << 3,
	LOG_DEST_TOPIC = 1u << 4,
	LOG_DEST_DLT = 1u << 5,
};

/* log_type bits (also the levels of log.h) */
enum {
	LOG_T_ERR = 1u << 0,
	LOG_T_WARNING = 1u << 1,
	LOG_T_NOTICE = 1u << 2,
	LOG_T_INFO = 1u << 3,
	LOG_T_DEBUG = 1u << 4,
	LOG_T_SUBSCRIBE = 1u << 5,
	LOG_T_UNSUBSCRIBE = 1u << 6,
	LOG_T_WEBSOCKETS = 1u << 7,
	LOG_T_INTERNAL = 1u << 8,
	LOG_T_ALL = 0x1FF,
};

enum listener_protocol {
	LISTENER_MQTT = 0,
	LISTENER_WEBSOCKETS = 1,
	LISTENER_HTTP = 2,          /* /metrics, /health, /ready (http.h) */
};

enum socket_domain {
	SOCKET_DOMAIN_ANY = 0,
	SOCKET_DOMAIN_IPV4 = 4,
	SOCKET_DOMAIN_IPV6 = 6,
};

/* Where a value came from, for messages that name file and line. */
struct config_loc {
	const char *file; /* interned in struct config; never freed separately */
	int line;
	int column;
};

/* A list of strings (repeatable options, plugin options, ...). */
struct config_strlist {
	char **items;
	size_t count;
};

/* "key value" plugin options (plugin_opt_* / auth_opt_*). */
struct config_plugin_opt {
	char *key;
	char *value;
};

struct config_plugin {
	char *path;                     /* NULL for a plugin_use reference */
	struct config_plugin_opt *opts;
	size_t nopts;
	struct config_loc loc;
	char *name;                     /* plugin_load name, or the one plugin_use refers to */
	char *label;                    /* plugin_name: the name in logs and $SYS */
	int deny_special_chars;         /* auth_plugin_deny_special_chars; -1 until merged */
};

/*
 * Security settings. They exist globally and per listener: a listener's
 * copy starts unset (-1 / NULL) and config_load() merges the global value
 * into it, so users of a listener never consult the global copy.
 */
struct config_security {
	int allow_anonymous;            /* -1 unset, 0, 1 */
	int allow_zero_length_clientid; /* -1 unset, 0, 1 */
	char *auto_id_prefix;
	char *password_file;
	char *acl_file;
	char *psk_file;
	struct config_strlist clientid_prefixes;
	/* Plugins are not merged: the global list applies to every listener,
	 * a listener's own list only to that listener. */
	struct config_plugin *plugins;
	size_t nplugins;
};

struct config_listener {
	struct config_loc loc;         /* where the listener was declared */
	int port;                      /* 0 = pick a free port (tests) */
	char *bind_address;            /* NULL = every address */
	char *bind_interface;
	char *unix_path;               /* unix socket listener ("listener 0 /path") */
	enum socket_domain socket_domain;
	enum listener_protocol protocol;
	int max_connections;           /* -1 unlimited */
	int max_qos;                   /* 0..2 */
	int max_topic_alias;           /* inbound aliases (v5) */
	int max_topic_alias_broker;    /* outbound aliases (v5) */
	char *mount_point;
	bool use_username_as_clientid;
	char *http_dir;
	int websockets_headers_size;
	char *websockets_origin;
	struct config_strlist accept_protocol_versions;
	bool enable_proxy_protocol;
	int proxy_protocol_version;     /* 1 or 2 when enable_proxy_protocol */
	bool proxy_protocol_v2_require_tls;
	/* TLS / PSK */
	char *cafile;
	char *capath;
	char *certfile;
	char *keyfile;
	char *ciphers;
	char *ciphers_tls13;
	char *crlfile;
	char *dhparamfile;
	char *tls_version;
	char *tls_engine;
	char *tls_keyform;
	char *tls_engine_kpass_sha1;
	char *psk_hint;
	bool require_certificate;
	bool use_identity_as_username;
	bool use_subject_as_username;
	bool disable_client_cert_date_checks;
	struct config_security security;
};

enum bridge_direction { BRIDGE_OUT = 0, BRIDGE_IN = 1, BRIDGE_BOTH = 2 };
/* Log lines as text (mosquitto's) or one JSON object each. */
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON = 1 };

/* When a change is on disk: each commit synced, commits grouped per sync, or a timer. */
enum store_sync { STORE_SYNC_DEFAULT = 0, STORE_SYNC_ALWAYS, STORE_SYNC_BATCH, STORE_SYNC_PERIODIC };

enum bridge_start_type { BRIDGE_START_AUTOMATIC = 0, BRIDGE_START_LAZY, BRIDGE_START_ONCE };
enum bridge_reload_type { BRIDGE_RELOAD_LAZY = 0, BRIDGE_RELOAD_IMMEDIATE = 1 };

struct config_bridge_topic {
	char *pattern;          /* may be "" when both prefixes are given */
	enum bridge_direction direction;
	int qos;
	char *local_prefix;
	char *remote_prefix;
};

struct config_bridge_address {
	char *host;
	int port;
};

struct config_bridge {
	struct config_loc loc;
	char *name;
	struct config_bridge_address *addresses;
	size_t naddresses;
	struct config_bridge_topic *topics;
	size_t ntopics;
	bool round_robin;
	char *remote_clientid;
	char *local_clientid;
	bool cleansession;
	int local_cleansession;         /* -1 = same as cleansession */
	bool notifications;
	char *notification_topic;
	bool notifications_local_only;
	int keepalive_interval;
	enum bridge_start_type start_type;
	int restart_timeout_base;
	int restart_timeout_cap;        /* 0 = constant restart_timeout_base */
	int idle_timeout;
	int threshold;
	char *remote_username;
	char *remote_password;
	char *local_username;
	char *local_password;
	bool try_private;
	int protocol_version;           /* 3, 4 or 5 */
	bool outgoing_retain;
	uint32_t max_packet_size;
	bool attempt_unsubscribe;
	char *bind_address;
	char *cafile;
	char *capath;
	char *certfile;
	char *keyfile;
	char *alpn;
	bool insecure;
	bool require_ocsp;
	char *tls_version;
	char *ciphers;
	char *ciphers_tls13;
	char *identity;
	char *psk;
	int receive_maximum;
	uint32_t session_expiry_interval;
	int max_topic_alias;
	int tcp_keepalive;              /* idle seconds before probes, 0 = off */
	int tcp_user_timeout;
	bool tls_use_os_certs;
	int tcp_keepalive_interval;     /* seconds between probes */
	int tcp_keepalive_count;        /* probes before the connection is dropped */
	enum bridge_reload_type reload_type;
};

/*
 * The cluster section (cluster.h): several midge nodes sharing routing over
 * NATS. Off unless a 'cluster:' section (YAML) or a cluster_* option
 * (mosquitto.conf) was read; then nats_servers is required.
 */
struct config_cluster {
	bool enabled;
	struct config_loc loc;          /* the 'cluster' key, or the first cluster_* option */
	char key[48];                   /* that key as written, for errors */
	char *node_name;                /* default: the host name */
	struct config_strlist nats_servers; /* nats://host:port or tls://host:port */
	char *nats_user;
	char *nats_password;
	char *nats_token;
	char *nats_tls_cafile;
	char *nats_tls_certfile;
	char *nats_tls_keyfile;
	char *subject_prefix;           /* first subject token(s), default "midge" */
	int replicas;                   /* JetStream replicas; 0 = min(3, servers listed) */
	int64_t stream_max_age;         /* seconds QoS 1/2 messages stay in JetStream; 0 = 1 hour */
	int node_timeout;               /* seconds: a silent node is gone, its wills fire */
};

struct config {
	/* Files read, in order; config_loc.file points into these. */
	struct config_strlist files;

	/* Process */
	char *pid_file;
	char *user;
	int workers;                    /* 0 = one per core */
	bool daemon;

	/* Logging */
	uint32_t log_dest;
	char *log_file;                 /* for LOG_DEST_FILE */
	char *log_facility;
	uint32_t log_type;
	bool connection_messages;
	bool log_timestamp;
	char *log_timestamp_format;
	int log_format;                 /* enum log_format */
	bool client_events;             /* $SYS/broker/clients/{connected,disconnected}/<id> */
	int websockets_log_level;

	/* Limits and protocol */
	bool per_listener_settings;
	bool check_retain_source;
	int max_inflight_messages;      /* 0 = unlimited */
	uint64_t max_inflight_bytes;    /* 0 = unlimited */
	int max_queued_messages;        /* 0 = unlimited */
	uint64_t max_queued_bytes;      /* 0 = unlimited */
	bool queue_qos0_messages;
	bool backpressure;              /* slow publishers down for full queues (throttle.h) */
	int backpressure_timeout;       /* seconds a publisher waits for a subscriber */
	uint32_t message_size_limit;    /* payload bytes, 0 = unlimited */
	uint32_t max_packet_size;       /* 0 = unlimited (up to the protocol's 268435455 + 5) */
	int max_keepalive;              /* 0..65535 */
	int max_connections;            /* global default for listeners, -1 unlimited */
	bool upgrade_outgoing_qos;
	bool retain_available;
	char *server_moved;             /* MQTT 5 Server Reference: moved for good (0x9D) */
	char *use_another_server;       /* ... or for now (0x9C) */
	char *response_information;     /* CONNACK Response Information when requested */
	int64_t persistent_client_expiration; /* seconds, 0 = never */
	uint64_t memory_limit;          /* bytes, 0 = unlimited */
	bool set_tcp_nodelay;
	int sys_interval;               /* seconds, 0 = no $SYS updates */
	int connect_timeout;            /* seconds a socket may take to send CONNECT */
	int plugin_timeout;             /* seconds a DELAYED plugin decision may take */
	char *plugin_dir;               /* NULL: PLUGINDIR; where "path: <name>" plugins are */
	int global_max_clients;         /* -1 unlimited */
	int global_max_connections;     /* -1 unlimited */
	int retain_expiry_interval;     /* seconds, 0 = never */
	int max_topic_alias;            /* default for listeners */
	int max_qos;                    /* default for listeners */
	bool auth_plugin_deny_special_chars;
	bool enable_control_api;
	uint32_t packet_buffer_size;
	int websockets_headers_size;    /* default for listeners, 0 = library default */

	/* Persistence (mosquitto names; the store maps them) */
	bool persistence;
	char *persistence_file;
	char *persistence_location;
	int autosave_interval;
	bool autosave_on_changes;
	int sync;                       /* enum store_sync; DEFAULT: periodic from a mosquitto.conf, else batch */
	bool persistence_recover;       /* start on a damaged store after repairing it */
	uint64_t persistence_max_size;  /* the most the store may grow to, bytes */

	/* Security defaults, merged into every listener */
	struct config_security security;

	struct config_listener *listeners;
	size_t nlisteners;
	struct config_bridge *bridges;
	size_t nbridges;

	struct config_cluster cluster;
};

/* One problem found while loading; config_load() collects them all. */
struct config_error {
	struct config_loc loc;
	char *key;
	char *message; /* e.g. "unknown option 'max_inflight_mesages' (did you mean 'max_inflight_messages'?)" */
};

struct config_diag {
	struct config_error *errors;
	size_t nerrors;
	struct config_error *warnings;
	size_t nwarnings;
	struct config_strlist files;    /* loc.file of errors points here, so diag outlives cfg */
};

enum config_format { CONFIG_FORMAT_AUTO = 0, CONFIG_FORMAT_YAML, CONFIG_FORMAT_MOSQUITTO };

/* Fills *cfg with every default (no listener: the broker adds the loopback one). */
void config_init(struct config *cfg);
void config_free(struct config *cfg);

/* Writes cfg as midge YAML that loads back into the same configuration (midge --convert). */
int config_emit_yaml(const struct config *cfg, FILE *f);

/*
 * Loads a file into *cfg (already config_init()ed), detecting the format
 * from the extension (.yaml/.yml, .conf) or, failing that, the content.
 * Follows include_dir. Returns 0 when no error was found; otherwise -1, with
 * every error (file, line, column, key, message) in *diag. Warnings (legacy
 * options that no longer apply) go to diag->warnings in both cases.
 */
int config_load(struct config *cfg, const char *path, enum config_format format,
		struct config_diag *diag);

/* Formats "file:line:column: message" for each error into stream-ready lines. */
void config_diag_print(const struct config_diag *diag, void *stream /* FILE * */);
void config_diag_free(struct config_diag *diag);

/* Adds the default listener (127.0.0.1 on port, or 1883) when none is configured. */
void config_add_default_listener(struct config *cfg, int port);
/* Adds a listener on every address for port (midge -p with -c) unless one exists; -1 on OOM. */
int config_add_port_listener(struct config *cfg, int port);

/*
 * The listeners the command line asks for, after config_load(): -p with a
 * file adds that port on every address; otherwise, when the configuration
 * has no listener, the loopback default (on -p's port, or 1883).
 */
int config_apply_command_line(struct config *cfg, int port, bool from_file);

/* Whether option `name` may change on SIGHUP without a restart. */
bool config_option_reloadable(const char *name);

#endif
