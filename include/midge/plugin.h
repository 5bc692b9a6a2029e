/*
 * midge/plugin.h: the plugin ABI of the midge MQTT broker.
 *
 * This header is the whole contract between the broker and a plugin: a
 * shared object loaded with dlopen(). A plugin links against nothing of the
 * broker; everything it may call reaches it as a table of function pointers
 * (struct midge_broker_api), and everything the broker tells it arrives as
 * one typed struct per event. Build a plugin with
 *
 *     cc $(pkg-config --cflags midge-plugin) -shared -fPIC -o my.so my.c
 *
 * ---------------------------------------------------------------------------
 * Life of a plugin
 * ---------------------------------------------------------------------------
 *  1. midge_plugin_version(count, versions): the broker lists the ABI
 *     versions it speaks; the plugin returns the one it implements, or -1.
 *     MIDGE_PLUGIN_DECLARE_VERSION() writes this function for you.
 *  2. midge_plugin_init(self, api, options, noptions, &plugin_data): once, on
 *     the main thread, before any client connects. Register events here with
 *     api->register_event(). Return MIDGE_OK, or anything else to refuse to
 *     start (the broker then does not start either).
 *  3. Events, on the worker threads (see "Threads" below).
 *  4. midge_plugin_cleanup(plugin_data, options, noptions): once, on the main
 *     thread, after every worker stopped (or when a reload removed the plugin
 *     from the configuration and no worker can call it any more).
 *
 * ---------------------------------------------------------------------------
 * Versions and growth
 * ---------------------------------------------------------------------------
 *  - MIDGE_PLUGIN_ABI_VERSION only changes when something incompatible does.
 *    The broker keeps accepting older versions it lists in
 *    midge_plugin_version(); a plugin refuses versions it does not know.
 *  - Every struct crossing the boundary starts with its size (`size` in
 *    the API table, `h.size` in events) and ends with reserved room. New
 *    fields only ever go into that room or past the end, so a plugin built
 *    against an older header keeps working. Before reading a field newer
 *    than your oldest supported broker, test it with MIDGE_HAS_FIELD().
 *  - Event ids are explicit and only appended; a broker that does not know
 *    an event refuses its registration with MIDGE_ERR_UNSUPPORTED.
 *
 * ---------------------------------------------------------------------------
 * Threads
 * ---------------------------------------------------------------------------
 * The broker runs one event loop per worker thread. A client lives on one
 * worker, and every event about it is delivered on that worker's thread.
 * Each plugin gets a state pointer per worker (set it in
 * MIDGE_EVT_WORKER_START, read it as h.worker_data in every event), so a
 * plugin that keeps its per-connection or cached state there needs no
 * locks. Only these API functions may be called from any thread, at any
 * time: log, the memory functions, publish, kick_client and complete.
 * Everything else is for the worker thread inside a callback (or a timer
 * or tick of that worker).
 *
 * ---------------------------------------------------------------------------
 * Decisions and chaining
 * ---------------------------------------------------------------------------
 * Plugins are called in the order the configuration lists them (global
 * plugins first, then the listener's own, then the built-in password-file
 * and ACL-file checks when those are configured). For a decision event a
 * callback returns:
 *   MIDGE_ALLOW    decided: allowed; later plugins are not asked.
 *   MIDGE_DENY     decided: refused; later plugins are not asked.
 *   MIDGE_DEFER    no opinion: the next plugin decides.
 *   MIDGE_ABSTAIN  not my kind of question: as if this plugin had not
 *                  registered the event (a plugin that registers ACL_CHECK
 *                  for subscriptions but has nothing to say on deliveries).
 *   MIDGE_DELAYED  the answer comes later through api->complete(h.request,
 *                  ...), from any thread. Only BASIC_AUTH, EXT_AUTH_* and
 *                  ACL_CHECK for MIDGE_ACL_SUBSCRIBE may be delayed. The
 *                  client's input waits meanwhile; after `plugin_timeout`
 *                  seconds (configuration, default 10) the answer is DENY.
 * When every plugin defers the answer is DENY, with two exceptions written
 * down here: an UNSUBSCRIBE check is allowed (leaving a subscription never
 * widens access), and a listener with no handler at all for an event (or
 * whose handlers all ABSTAIN) keeps the broker's own rule (allow_anonymous
 * for authentication, everything allowed for ACL checks).
 * A negative return (an MIDGE_ERR_* code) counts as an error in the
 * plugin's statistics and is treated as DENY.
 *
 * ---------------------------------------------------------------------------
 * Ownership (the default for every function and event field)
 * ---------------------------------------------------------------------------
 *  - Everything the broker passes in is borrowed for the duration of the
 *    callback. To keep a string or a client handle's data, copy it.
 *  - A midge_client handle is valid during the callback that passed it,
 *    and in later callbacks about the same connection until its
 *    MIDGE_EVT_DISCONNECT returns. Never keep one across threads.
 *  - Values a plugin writes into an event (a rewritten topic, payload,
 *    properties, authentication data) stay the plugin's: the broker copies
 *    them before it calls the next plugin, so stack or static buffers are
 *    fine as long as they live until the callback returns.
 *  - Memory from api->malloc/calloc/realloc/strdup is freed with api->free
 *    and counts against the broker's memory_limit.
 *  - A function that takes a callback and returns an error never calls
 *    that callback.
 *  - Per-client plugin data (api->client_set_data) is freed with the
 *    free function you give, when the connection is gone.
 */
#ifndef MIDGE_PLUGIN_H
#define MIDGE_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <midge/mqtt.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. */
#define MIDGE_PLUGIN_ABI_VERSION 1

#if defined(__GNUC__)
#define MIDGE_PLUGIN_EXPORT __attribute__((visibility("default")))
#define MIDGE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MIDGE_PLUGIN_EXPORT
#define MIDGE_PRINTF(f, a)
#endif

/* Whether a struct whose first member says its size carries `field`. */
#define MIDGE_HAS_FIELD(sz, type, field) \
	((size_t)(sz) >= offsetof(type, field) + sizeof(((type *)0)->field))

/* One loaded plugin (opaque; given to init, passed back to the API). */
typedef struct midge_plugin midge_plugin;
/* One client connection (opaque; see "Ownership" for how long it lives). */
typedef struct midge_client midge_client;

/* Results of callbacks and API functions. */
enum midge_result {
	MIDGE_OK = 0,
	MIDGE_ALLOW = 0,
	MIDGE_DENY = 1,
	MIDGE_DEFER = 2,
	MIDGE_DELAYED = 3,
	MIDGE_CONTINUE = 4,        /* EXT_AUTH_*: send AUTH (continue) with out_data */
	MIDGE_ABSTAIN = 5,         /* no say on this question at all (see "Decisions") */
	MIDGE_ERR_INVAL = -1,      /* an argument is wrong */
	MIDGE_ERR_NOMEM = -2,
	MIDGE_ERR_NOT_FOUND = -3,  /* no such client, request or timer */
	MIDGE_ERR_STATE = -4,      /* not allowed now (wrong event, wrong thread) */
	MIDGE_ERR_UNSUPPORTED = -5 /* this broker does not offer it */
};

/* Event ids: explicit, append-only. */
enum midge_event {
	MIDGE_EVT_BASIC_AUTH = 1,        /* struct midge_evt_basic_auth */
	MIDGE_EVT_EXT_AUTH_START = 2,    /* struct midge_evt_ext_auth */
	MIDGE_EVT_EXT_AUTH_CONTINUE = 3, /* struct midge_evt_ext_auth */
	MIDGE_EVT_ACL_CHECK = 4,         /* struct midge_evt_acl */
	MIDGE_EVT_MESSAGE_IN = 5,        /* struct midge_evt_message */
	MIDGE_EVT_MESSAGE_OUT = 6,       /* struct midge_evt_message */
	MIDGE_EVT_CONNECT = 7,           /* struct midge_evt_client */
	MIDGE_EVT_DISCONNECT = 8,        /* struct midge_evt_client */
	MIDGE_EVT_SUBSCRIBE = 9,         /* struct midge_evt_subscribe */
	MIDGE_EVT_UNSUBSCRIBE = 10,      /* struct midge_evt_subscribe */
	MIDGE_EVT_WILL = 11,             /* struct midge_evt_message */
	MIDGE_EVT_TICK = 12,             /* struct midge_evt_tick */
	MIDGE_EVT_RELOAD = 13,           /* struct midge_evt_reload */
	MIDGE_EVT_BRIDGE = 14,           /* struct midge_evt_bridge */
	MIDGE_EVT_PSK_KEY = 15,          /* struct midge_evt_psk_key */
	MIDGE_EVT_WORKER_START = 16,     /* struct midge_evt_worker */
	MIDGE_EVT_WORKER_STOP = 17,      /* struct midge_evt_worker */
};
/* One past the highest id this header knows (grows; never a stored value). */
#define MIDGE_EVT_LIMIT 18

/* Log levels for api->log. */
enum midge_log_level {
	MIDGE_LOG_ERR = 1,
	MIDGE_LOG_WARNING = 2,
	MIDGE_LOG_NOTICE = 3,
	MIDGE_LOG_INFO = 4,
	MIDGE_LOG_DEBUG = 5,
};

/* A "key value" option from the configuration (plugins[].options, plugin_opt_*). */
struct midge_option {
	const char *key;
	const char *value;
};

/*
 * An MQTT 5 property of a message. `identifier` is an MQTT_PROP_* value.
 * Integers are in `number`; strings and binary data in value/value_len
 * (not NUL-terminated); a user property has its name in name/name_len.
 * Messages show payload format, content type, response topic, correlation
 * data, user properties and, when the message expires, the message expiry
 * interval left (seconds). A rewrite may set the first five; the expiry
 * is not taken from a rewrite.
 */
struct midge_property {
	uint8_t identifier;
	uint32_t number;
	const char *name;
	uint32_t name_len;
	const void *value;
	uint32_t value_len;
};

/* First member of every event. */
struct midge_evt_header {
	uint32_t size;           /* bytes of the whole event struct the broker filled */
	uint32_t event;          /* enum midge_event */
	midge_plugin *plugin;    /* the plugin being called */
	void *worker_data;       /* this plugin's state on this worker (WORKER_START sets it) */
	unsigned worker;         /* index of the calling worker, 0..worker_count-1 */
	uint64_t request;        /* where DELAYED is allowed: the id for api->complete() */
	void *reserved[4];
};

/*
 * MIDGE_EVT_BASIC_AUTH: a CONNECT's user name and password. ALLOW, DENY,
 * DEFER or DELAYED. A plugin may rename the user or the client through
 * api->client_set_username / client_set_id during this event.
 */
struct midge_evt_basic_auth {
	struct midge_evt_header h;
	midge_client *client;
	const char *username;     /* NULL when the CONNECT has none */
	const void *password;     /* NULL when the CONNECT has none; not NUL-terminated */
	uint32_t password_len;
	uint8_t reason;           /* out, on DENY: MQTT 5 reason code (default 0x86, or
				   * 0x87 without a user name); mapped for older clients */
	void *reserved[8];
};

/*
 * MIDGE_EVT_EXT_AUTH_START (CONNECT with an Authentication Method, or AUTH
 * with reason 0x19 on a connected client: `reauth`) and
 * MIDGE_EVT_EXT_AUTH_CONTINUE (the client's next AUTH, delivered only to the
 * plugin that answered CONTINUE). ALLOW (success; out_data goes in the
 * CONNACK or AUTH), CONTINUE (out_data goes to the client in AUTH 0x18),
 * DENY, DEFER (START only) or DELAYED. When every plugin defers a START the
 * client gets 0x8C (bad authentication method).
 */
struct midge_evt_ext_auth {
	struct midge_evt_header h;
	midge_client *client;
	const char *method;       /* Authentication Method */
	const void *data;         /* Authentication Data, NULL when absent */
	uint32_t data_len;
	bool reauth;
	const void *out_data;     /* out: data for the client (the broker copies it) */
	uint32_t out_data_len;
	uint8_t reason;           /* out, on DENY: reason code (default 0x87) */
	void *reserved[8];
};

/* What an ACL check asks about. */
enum midge_acl_access {
	MIDGE_ACL_SUBSCRIBE = 1,   /* the client subscribes to `topic` (a filter) */
	MIDGE_ACL_UNSUBSCRIBE = 2, /* the client unsubscribes from `topic` (a filter) */
	MIDGE_ACL_PUBLISH = 3,     /* the client publishes to `topic` */
	MIDGE_ACL_DELIVER = 4,     /* a message on `topic` goes to the client */
};

/*
 * MIDGE_EVT_ACL_CHECK. ALLOW, DENY or DEFER; DELAYED for SUBSCRIBE only.
 * For DELIVER to a session whose client is offline, `client` is NULL and
 * client_id / username describe the session.
 */
struct midge_evt_acl {
	struct midge_evt_header h;
	midge_client *client;     /* may be NULL (DELIVER to an offline session) */
	const char *client_id;
	const char *username;     /* NULL when none */
	int access;               /* enum midge_acl_access */
	const char *topic;        /* topic, or filter for (UN)SUBSCRIBE */
	const void *payload;      /* PUBLISH / DELIVER: the message; NULL otherwise */
	uint32_t payload_len;
	uint8_t qos;              /* PUBLISH / DELIVER: message QoS; SUBSCRIBE: requested */
	bool retain;
	/*
	 * out, SUBSCRIBE with ALLOW: subscribe to new_topic instead (the broker
	 * copies it and checks it again; a second rewrite is not taken), and/or
	 * grant at most new_qos (-1, the default: unchanged).
	 */
	const char *new_topic;
	int new_qos;
	/* PUBLISH / DELIVER: the message's properties (as in struct midge_evt_message). */
	const struct midge_property *properties;
	uint32_t property_count;
	/* out, on DENY: the MQTT 5 reason code for the PUBACK / PUBREC / SUBACK /
	 * UNSUBACK (>= 0x80; default 0x87, not authorized). */
	uint8_t reason;
	void *reserved[8];
};

/*
 * MIDGE_EVT_MESSAGE_IN (a client or the broker publishes), MIDGE_EVT_WILL
 * (a will is about to be published) and MIDGE_EVT_MESSAGE_OUT (a message is
 * about to go to one subscriber).
 *
 * MESSAGE_IN may rewrite: point topic, payload or properties at new values
 * (valid until the callback returns), or change qos / retain. A rewritten
 * topic is checked against the ACL again. Return ALLOW (or DEFER: same
 * here, the next plugin sees the message as it is now) to go on, or DENY
 * to drop it; the publisher's PUBACK / PUBREC then carries `reason`
 * (MQTT 5; default 0x87).
 * WILL: return DENY to suppress the will; rewrites are not taken.
 * MESSAGE_OUT: return DENY to skip this subscriber; a new topic or payload
 * (not QoS, retain or properties) goes to this subscriber only.
 */
struct midge_evt_message {
	struct midge_evt_header h;
	midge_client *client;     /* publisher (IN, WILL) or subscriber (OUT); NULL for the
				   * broker's own messages or an offline subscriber */
	const char *client_id;    /* NULL for the broker's own messages */
	const char *username;
	const char *topic;
	const void *payload;
	uint32_t payload_len;
	uint8_t qos;
	bool retain;
	const struct midge_property *properties; /* MQTT 5 message properties */
	uint32_t property_count;
	uint8_t reason;           /* out, on DENY (MESSAGE_IN) */
	void *reserved[8];
};

/* MIDGE_EVT_CONNECT (after CONNACK) and MIDGE_EVT_DISCONNECT. Return values are ignored. */
struct midge_evt_client {
	struct midge_evt_header h;
	midge_client *client;
	const char *client_id;
	const char *username;
	uint8_t reason;           /* DISCONNECT: MQTT 5 reason of the ending (0 normal) */
	bool will_sent;           /* DISCONNECT: the will was published */
	bool session_present;     /* CONNECT: an old session was resumed */
	void *reserved[8];
};

/*
 * MIDGE_EVT_SUBSCRIBE (after a subscription was granted) and
 * MIDGE_EVT_UNSUBSCRIBE (after it was removed). Return values are ignored.
 */
struct midge_evt_subscribe {
	struct midge_evt_header h;
	midge_client *client;
	const char *filter;
	uint8_t qos;              /* granted QoS (SUBSCRIBE) */
	uint8_t options;          /* MQTT 5 subscription options byte */
	uint32_t subscription_id; /* 0 when none */
	void *reserved[8];
};

/* MIDGE_EVT_TICK: periodic, per worker. Set next_ms for the next call (default 1000). */
struct midge_evt_tick {
	struct midge_evt_header h;
	int64_t now_ms;           /* the loop's clock (monotonic) */
	uint32_t next_ms;         /* in: 1000; out: milliseconds until the next tick */
	void *reserved[8];
};

/*
 * MIDGE_EVT_RELOAD: the configuration was reloaded (SIGHUP); these are the
 * plugin's new options. Main thread, while workers run: guard what workers
 * read. Returning an error keeps the broker running on the new configuration
 * and logs it.
 */
struct midge_evt_reload {
	struct midge_evt_header h;
	const struct midge_option *options;
	int option_count;
	void *reserved[8];
};

/* What a MIDGE_EVT_BRIDGE reports. */
enum midge_bridge_what {
	MIDGE_BRIDGE_CONNECTING = 1, /* about to connect to `address`:`port` */
	MIDGE_BRIDGE_STATE = 2,      /* `connected` changed */
	MIDGE_BRIDGE_MESSAGE = 3,    /* a message crosses: `outgoing` says which way */
};

/*
 * MIDGE_EVT_BRIDGE, through the global plugins, on the bridge's worker. For
 * MESSAGE (`topic` is the one it will have on the other side), DENY stops
 * the message from crossing, and a plugin may rewrite it by pointing `topic`
 * (and `payload`, `payload_len`) at its own version, which must stay valid
 * until the plugin is called again (the broker copies it); the next plugin
 * sees the rewrite. Other answers, and the other kinds, change nothing.
 */
struct midge_evt_bridge {
	struct midge_evt_header h;
	const char *name;         /* the bridge's connection name */
	int what;                 /* enum midge_bridge_what */
	const char *address;
	int port;
	bool connected;
	bool outgoing;
	const char *topic;
	const void *payload;
	uint32_t payload_len;
	uint8_t qos;
	bool retain;
	void *reserved[8];
};

/*
 * MIDGE_EVT_PSK_KEY: a TLS-PSK client offers `identity`. Write the key
 * (raw bytes, at most key_max) into `key`, set key_len and return ALLOW;
 * DENY refuses the identity; DEFER asks the next plugin and then the
 * listener's psk_file. Never DELAYED (it runs inside the TLS handshake).
 */
struct midge_evt_psk_key {
	struct midge_evt_header h;
	const char *identity;
	const char *hint;         /* the listener's psk_hint */
	int listener_port;
	uint8_t *key;             /* out */
	uint32_t key_max;
	uint32_t key_len;         /* out */
	void *reserved[8];
};

/*
 * MIDGE_EVT_WORKER_START / WORKER_STOP: once per worker thread, on that
 * thread, before its first and after its last event. Set h.worker_data in
 * START; free it in STOP.
 */
struct midge_evt_worker {
	struct midge_evt_header h;
	unsigned worker_count;
	void *reserved[8];
};

/* The callback every event goes to. userdata is what register_event was given. */
typedef int (*midge_event_cb)(int event, void *event_data, void *userdata);

/* Extra results for api->complete() (NULL when there are none). */
struct midge_completion {
	uint32_t size;            /* sizeof(struct midge_completion) */
	uint8_t reason;           /* on DENY: reason code, 0 for the event's default */
	const void *auth_data;    /* EXT_AUTH: data for the client (copied) */
	uint32_t auth_data_len;
	const char *username;     /* BASIC_AUTH / EXT_AUTH: rename the user (copied), or NULL */
	void *reserved[8];
};

/*
 * The broker's services. A plugin receives it in init; it stays valid until
 * cleanup returns. `size` tells which functions exist: test with
 * MIDGE_HAS_FIELD(api->size, struct midge_broker_api, name).
 */
struct midge_broker_api {
	uint32_t size;
	uint32_t abi_version;      /* the version agreed in midge_plugin_version() */
	const char *broker_version;

	/*
	 * Asks for `event` to call cb(event, data, userdata). Only during init.
	 * One callback per plugin and event: a second call replaces the first.
	 * Returns MIDGE_OK, MIDGE_ERR_UNSUPPORTED (unknown event) or
	 * MIDGE_ERR_STATE (not in init).
	 */
	int (*register_event)(midge_plugin *self, int event, midge_event_cb cb, void *userdata);

	/* Logs one line, prefixed with the plugin's name. Any thread. */
	void (*log)(midge_plugin *self, int level, const char *fmt, ...) MIDGE_PRINTF(3, 4);

	/* Memory counted against memory_limit. Any thread. free(NULL) is fine. */
	void *(*malloc)(size_t size);
	void *(*calloc)(size_t n, size_t size);
	void *(*realloc)(void *p, size_t size);
	void (*free)(void *p);
	char *(*strdup)(const char *s);

	/*
	 * Client getters: worker thread, handle from a callback. Strings are
	 * borrowed (valid while the handle is). NULL / -1 when unknown: the
	 * client id before CONNECT, the certificate subject without a
	 * certificate, the port of a unix socket.
	 */
	const char *(*client_id)(const midge_client *c);
	const char *(*client_username)(const midge_client *c);
	const char *(*client_address)(const midge_client *c);
	int (*client_port)(const midge_client *c);
	int (*client_protocol)(const midge_client *c);      /* 3, 4 or 5 */
	int (*client_listener_port)(const midge_client *c);
	const char *(*client_cert_subject)(const midge_client *c);
	int (*client_keepalive)(const midge_client *c);     /* seconds */

	/*
	 * Renames the client's user (NULL: none) or client id during
	 * BASIC_AUTH / EXT_AUTH_START of a CONNECT; the value is copied and
	 * takes effect if the client is allowed in (a renamed id takes over a
	 * session of that id like any CONNECT). The user name may also change
	 * in EXT_AUTH_CONTINUE. MIDGE_ERR_STATE in any other event (and for
	 * the id in EXT_AUTH_CONTINUE or re-authentication).
	 */
	int (*client_set_username)(midge_client *c, const char *username);
	int (*client_set_id)(midge_client *c, const char *client_id);

	/*
	 * Per-client data of this plugin. set replaces (freeing the old value
	 * with its free function); free_fn (may be NULL) runs when the
	 * connection is freed.
	 */
	void *(*client_data)(const midge_client *c, midge_plugin *self);
	int (*client_set_data)(midge_client *c, midge_plugin *self, void *data,
			       void (*free_fn)(void *data));

	/*
	 * Publishes a message as the broker. Any thread. Topic, payload and
	 * properties are copied. Like the broker's own messages it skips ACL
	 * checks and MESSAGE_IN (so a plugin cannot loop through itself);
	 * subscribers' MESSAGE_OUT and ACL DELIVER checks still apply. It is
	 * routed soon after the call, not inside it. Returns MIDGE_OK,
	 * MIDGE_ERR_INVAL (bad topic or QoS) or MIDGE_ERR_NOMEM.
	 */
	int (*publish)(midge_plugin *self, const char *topic, const void *payload,
		       uint32_t payload_len, int qos, bool retain,
		       const struct midge_property *properties, uint32_t property_count);

	/*
	 * Disconnects the client with this id (MQTT 5 clients get DISCONNECT
	 * 0x98, administrative action), with or without its will. Any thread;
	 * happens soon after the call. MIDGE_OK even when no such client is
	 * connected (the kick then does nothing).
	 */
	int (*kick_client)(midge_plugin *self, const char *client_id, bool send_will);

	/* Topic helpers (pure; any thread). */
	bool (*topic_matches)(const char *filter, const char *topic);
	bool (*topic_valid)(const char *topic);
	bool (*filter_valid)(const char *filter);

	/*
	 * Completes a decision a callback answered with MIDGE_DELAYED: result
	 * is ALLOW, DENY, or for EXT_AUTH CONTINUE. Any thread, exactly once
	 * per DELAYED. A completion after the timeout, or for a client that
	 * went away, is ignored (MIDGE_OK: the plugin cannot know in time).
	 * extra may be NULL.
	 */
	int (*complete)(uint64_t request, int result, const struct midge_completion *extra);

	/*
	 * One-shot timer on the calling worker: cb(arg) runs on this thread
	 * after delay_ms. Returns an id (> 0), or 0 when it could not be set
	 * (and cb is never called). Cancel on the same thread; cancelling a
	 * timer that fired or an unknown id does nothing.
	 */
	uint64_t (*timer_start)(midge_plugin *self, uint32_t delay_ms, void (*cb)(void *arg),
				void *arg);
	void (*timer_cancel)(midge_plugin *self, uint64_t timer_id);

	/* The plugin's name (its configured name, or its file name). */
	const char *(*plugin_name)(const midge_plugin *self);
	/* How many workers (threads running events) the broker has. */
	unsigned (*worker_count)(void);

	/*
	 * Password hashes in the formats password files hold ("$7$" PBKDF2,
	 * "$6$" salted SHA-512, "$argon2id$"). password_verify returns 1
	 * (match), 0 (no match) or MIDGE_ERR_INVAL (not such a hash); it costs
	 * what the hash asks (milliseconds for PBKDF2 or argon2id). password_hash
	 * writes a new hash with a random salt into out (NUL-terminated; 256
	 * bytes are enough); method "pbkdf2" (the default, NULL), "sha512" or
	 * "argon2id"; returns MIDGE_OK or MIDGE_ERR_INVAL. Any thread.
	 */
	int (*password_verify)(const char *hash, const void *password, size_t password_len);
	int (*password_hash)(const void *password, size_t password_len, const char *method,
			     char *out, size_t out_size);

	/* Whether the CONNECT asked for a clean start (clean session); worker thread. */
	int (*client_clean_start)(const midge_client *c);

	/*
	 * Dry runs (midge --test-auth / --test-acl) print why a decision was
	 * taken. Inside a decision callback, explaining() says whether anyone
	 * listens (so a plugin can skip costly bookkeeping otherwise) and
	 * explain() records one line ("users.lua:12", "rule 'admins'") for the
	 * answer the callback is about to give. Worker thread.
	 */
	int (*explaining)(void);
	void (*explain)(midge_plugin *self, const char *fmt, ...) MIDGE_PRINTF(2, 3);

	void *reserved[19];
};

/*
 * The three symbols a plugin exports (MIDGE_PLUGIN_EXPORT keeps them
 * visible when the plugin builds with -fvisibility=hidden).
 */
typedef int (*midge_plugin_version_fn)(int count, const int *versions);
typedef int (*midge_plugin_init_fn)(midge_plugin *self, const struct midge_broker_api *api,
				    const struct midge_option *options, int option_count,
				    void **plugin_data);
typedef void (*midge_plugin_cleanup_fn)(void *plugin_data, const struct midge_option *options,
					int option_count);

/* Prototypes of the exported symbols (keeps -Wmissing-prototypes quiet). */
MIDGE_PLUGIN_EXPORT int midge_plugin_version(int count, const int *versions);
MIDGE_PLUGIN_EXPORT int midge_plugin_init(midge_plugin *self, const struct midge_broker_api *api,
					  const struct midge_option *options, int option_count,
					  void **plugin_data);
MIDGE_PLUGIN_EXPORT void midge_plugin_cleanup(void *plugin_data,
					      const struct midge_option *options,
					      int option_count);

/* Writes midge_plugin_version() for a plugin built against this header. */
#define MIDGE_PLUGIN_DECLARE_VERSION()                                                 \
	MIDGE_PLUGIN_EXPORT int midge_plugin_version(int count, const int *versions)   \
	{                                                                              \
		for (int i_ = 0; i_ < count; i_++)                                     \
			if (versions[i_] == MIDGE_PLUGIN_ABI_VERSION)                  \
				return MIDGE_PLUGIN_ABI_VERSION;                       \
		return -1;                                                             \
	}

#ifdef __cplusplus
}
#endif

#endif
