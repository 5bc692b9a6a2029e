/*
 * mqttc.h: a small blocking-I/O MQTT client for midge's command-line tools
 * (midge_pub, midge_sub), on the broker's own codec.
 *
 * Two parts:
 *  - mqttc_args.c: the command-line options both tools share, with
 *    mosquitto_pub / mosquitto_sub's names, defaults and error messages
 *    (connection, credentials, will, session, -D properties, TLS, -L URLs);
 *  - mqttc.c: one connection to a broker over TCP, a unix socket, TLS
 *    (OpenSSL) or WebSockets (client side of RFC 6455, over TCP or TLS),
 *    CONNECT/CONNACK, packets sent and received with timeouts, the QoS 1 and
 *    2 flows both ways, keepalive PINGREQs, topic aliases from the server,
 *    and libmosquitto's -d debug lines.
 *
 * Errors are printed to stderr (unless --quiet) where they happen; functions
 * that fail return the exit status the tool should end with, using
 * libmosquitto's numbers as mosquitto's tools do.
 */
#ifndef MIDGE_TOOLS_MQTTC_H
#define MIDGE_TOOLS_MQTTC_H

#include "codec.h"

#include <midge/mqtt.h>

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit statuses (libmosquitto's error numbers where mosquitto's tools return them). */
enum {
	MQTTC_EXIT_OK = 0,
	MQTTC_EXIT_ERROR = 1,      /* bad options, cannot connect, TLS failure, ... */
	MQTTC_EXIT_PROTOCOL = 2,   /* the broker broke the protocol */
	MQTTC_EXIT_NO_CONN = 4,
	MQTTC_EXIT_CONN_LOST = 7,  /* the broker closed the connection */
	MQTTC_EXIT_KEEPALIVE = 19, /* no PINGRESP in time */
	MQTTC_EXIT_TIMEOUT = 27,   /* midge_sub -W */
};

/* The packets -D may give properties to. */
enum mqttc_cmd {
	MQTTC_CMD_CONNECT,
	MQTTC_CMD_PUBLISH,
	MQTTC_CMD_SUBSCRIBE,
	MQTTC_CMD_UNSUBSCRIBE,
	MQTTC_CMD_DISCONNECT,
	MQTTC_CMD_WILL,
	MQTTC_CMD_COUNT,
};

/* A growable byte buffer. */
struct mqttc_buf {
	uint8_t *p;
	size_t len, cap;
};

/* What the shared options set. Strings borrow from argv unless noted. */
struct mqttc_cfg {
	const char *tool;          /* "midge_pub" or "midge_sub", in messages */
	bool is_sub;
	/* Where. */
	const char *host;          /* default "localhost" */
	int port;                  /* 0: 1883, or 8883 with TLS (80 / 443 for ws / wss) */
	const char *unix_path;     /* --unix */
	const char *bind_address;  /* -A */
	bool ws;                   /* -L ws:// or wss:// */
	const char *ws_path;       /* the URL's path for ws(s), default "/mqtt" */
	bool nodelay;
	/* Session. */
	int protocol;              /* MQTT_PROTO_V31 / V311 / V5 */
	bool protocol_given;       /* -V given (else -D switches to MQTT 5) */
	const char *id;
	const char *id_prefix;
	char *id_owned;            /* generated id (-I, or random for MQTT 3.1) */
	int keepalive;
	bool clean;                /* false with -c */
	uint32_t session_expiry;   /* -x (MQTT 5) */
	bool session_expiry_given;
	const char *username;
	const char *password;
	int qos;
	/* Will. */
	const char *will_topic;
	const char *will_payload;
	int will_qos;
	bool will_retain;
	bool will_payload_given;
	bool will_retain_given;
	bool will_qos_given;
	/* TLS. */
	bool tls;                  /* any TLS option, or mqtts:// / wss:// */
	bool tls_url;              /* mqtts:// or wss:// */
	const char *cafile, *capath, *certfile, *keyfile;
	const char *tls_version;   /* the minimum: tlsv1.3, tlsv1.2 (default) or tlsv1.1 */
	const char *ciphers;
	const char *alpn;
	const char *psk;           /* hexadecimal */
	const char *psk_identity;
	bool insecure;             /* no host name check */
	bool os_certs;             /* --tls-use-os-certs */
	/* Output. */
	bool debug;
	bool quiet;
	/* -D: encoded properties (without the length) per packet. */
	struct mqttc_buf props[MQTTC_CMD_COUNT];
	uint64_t props_seen[MQTTC_CMD_COUNT]; /* single-valued identifiers given */
	bool props_given;
	uint16_t topic_alias_max;  /* what -D connect topic-alias-maximum asked for */
	/* -L */
	char *url_copy;            /* owned: host, user, password, topic point into it */
	const char *url_topic;     /* the topic of an mqtt(s):// URL */
};

void mqttc_cfg_init(struct mqttc_cfg *cfg, const char *tool, bool is_sub);
void mqttc_cfg_free(struct mqttc_cfg *cfg);

/*
 * Parses the shared option at argv[*i]. Returns 1 when it was one (with *i
 * on its last value), 0 when the option is not a shared one, -1 after
 * printing the error.
 */
int mqttc_cfg_option(struct mqttc_cfg *cfg, int argc, char **argv, int *i);

/* Checks the shared options together and fills in defaults; -1 after printing the error. */
int mqttc_cfg_finish(struct mqttc_cfg *cfg);

/* "Error: <message>\n" then the hint to use --help, on stderr (mosquitto's format). */
__attribute__((format(printf, 2, 3)))
void mqttc_usage_error(const struct mqttc_cfg *cfg, const char *fmt, ...);

/* An error at run time: to stderr, unless --quiet. */
__attribute__((format(printf, 2, 3)))
void mqttc_err(const struct mqttc_cfg *cfg, const char *fmt, ...);

/* Parses an unsigned decimal number within [min, max]. */
bool mqttc_parse_uint(const char *s, unsigned long long min, unsigned long long max,
		      unsigned long long *out);

/* --- The connection --- */

/* An outgoing QoS 1/2 message not acknowledged yet. */
struct mqttc_inflight {
	uint16_t mid;
	uint8_t qos;
	bool pubrec; /* QoS 2: PUBREC came, PUBREL sent */
};

/* An incoming QoS 2 message held until its PUBREL (as libmosquitto does). */
struct mqttc_held {
	uint16_t mid;
	uint8_t flags;
	uint8_t *body;             /* the PUBLISH body, then the resolved topic */
	uint32_t len;
	uint32_t topic_len;
};

struct mqttc {
	const struct mqttc_cfg *cfg;
	int fd;
	void *ssl_ctx;             /* SSL_CTX * */
	void *ssl;                 /* SSL * */
	bool ws;
	struct mqttc_buf raw;      /* WebSocket bytes not yet unframed */
	struct mqttc_buf in;       /* MQTT bytes received */
	size_t in_off;             /* bytes of `in` already handed out */
	struct mqttc_buf out;      /* scratch for encoding */
	int protocol;
	const char *name;          /* for -d lines: the client id, "(null)" when empty */
	char *assigned_id;         /* owned: MQTT 5 assigned client identifier */
	uint64_t last_out;         /* ms, monotonic: for keepalive */
	uint64_t ping_sent;
	bool ping_pending;
	uint16_t keepalive;        /* in force (the server may set it in MQTT 5) */
	uint16_t next_mid;
	/* The server's limits (MQTT 5 CONNACK). */
	uint16_t server_receive_max;
	uint32_t server_max_packet;
	uint8_t server_max_qos;
	bool server_retain;
	/* Topic aliases the server may use towards us. */
	struct mqttc_buf *aliases; /* [1 .. topic_alias_max] */
	struct mqttc_inflight *inflight;
	size_t n_inflight, cap_inflight;
	struct mqttc_held *held;
	size_t n_held, cap_held;
	struct mqttc_held current; /* a released QoS 2 message being handed out (owned) */
	struct mqttc_buf topic;    /* the topic of the message handed out (alias resolved) */
	const sigset_t *poll_mask; /* signals to accept while waiting (ppoll), or NULL */
	int watch_fd;              /* also wait for this one to be readable (-1: none) */
	bool watch_ready;          /* mqttc_poll() returned because watch_fd is readable */
	bool closed;               /* the connection is gone */
};

/* What mqttc_poll() returns. */
enum mqttc_ev_type {
	MQTTC_EV_NONE,       /* time out, a signal, or watch_fd readable (watch_ready) */
	MQTTC_EV_MESSAGE,    /* ev->msg */
	MQTTC_EV_PUBLISHED,  /* an outgoing QoS 1/2 message completed: ev->mid, ev->reason */
	MQTTC_EV_SUBACK,     /* ev->mid, ev->codes */
	MQTTC_EV_UNSUBACK,   /* ev->mid, ev->codes (MQTT 5) */
	MQTTC_EV_DISCONNECT, /* the server sent DISCONNECT: ev->reason; the connection is closed */
};

struct mqttc_event {
	enum mqttc_ev_type type;
	uint16_t mid;
	uint8_t reason;
	struct mqtt_bytes codes;
	struct mqtt_publish msg;   /* msg.topic is the resolved topic */
};

/* Prints a -d line ("Client <name> ...") to stdout when debugging. */
__attribute__((format(printf, 2, 3)))
void mqttc_debug(const struct mqttc *c, const char *fmt, ...);

/*
 * Connects (transport, TLS, WebSocket upgrade), sends CONNECT and waits for
 * CONNACK. *connack gets the CONNACK's code (0 on success; the exit status
 * is that code when the broker refused). Returns 0 or an exit status.
 */
int mqttc_open(struct mqttc *c, const struct mqttc_cfg *cfg, uint8_t *connack);

/* Closes the connection and frees everything (c may be half open). */
void mqttc_close(struct mqttc *c);

/* A new packet identifier (never 0, not in flight). */
uint16_t mqttc_next_mid(struct mqttc *c);

/* Number of outgoing QoS 1/2 messages waiting for acknowledgement. */
static inline size_t mqttc_inflight_count(const struct mqttc *c)
{
	return c->n_inflight;
}

/* How many messages may be in flight: the smaller of `want` and the server's receive maximum. */
size_t mqttc_inflight_limit(const struct mqttc *c, size_t want);

/*
 * Sends a PUBLISH (QoS 1/2: tracked until acknowledged, reported as
 * MQTTC_EV_PUBLISHED). props: an encoded v5 block (may be empty).
 * *mid gets the packet identifier (0 for QoS 0). Returns 0 or an exit status.
 */
int mqttc_publish(struct mqttc *c, const char *topic, const void *payload, uint32_t len,
		  int qos, bool retain, struct mqtt_bytes props, uint16_t *mid);

/* SUBSCRIBE with every filter (one packet), QoS qos; props as for publish. */
int mqttc_subscribe(struct mqttc *c, const char *const *filters, size_t n, int qos,
		    uint8_t options, struct mqtt_bytes props, uint16_t *mid);

/* UNSUBSCRIBE one filter. */
int mqttc_unsubscribe(struct mqttc *c, const char *filter, struct mqtt_bytes props, uint16_t *mid);

/* DISCONNECT (reason code for MQTT 5); the connection stays open until mqttc_close(). */
int mqttc_disconnect(struct mqttc *c, uint8_t reason, struct mqtt_bytes props);

/*
 * Waits up to timeout_ms (-1: no limit) for something to happen, sending
 * PINGREQs as keepalive asks and answering the QoS flows. Returns 0 with
 * ev->type MQTTC_EV_NONE on a time out or a signal, 0 with an event, or an
 * exit status when the connection failed (printed). Spans in *ev are valid
 * until the next call.
 */
int mqttc_poll(struct mqttc *c, int timeout_ms, struct mqttc_event *ev);

/* Milliseconds of a monotonic clock. */
uint64_t mqttc_now_ms(void);

/* The text mosquitto gives for a CONNACK code or reason code. */
const char *mqttc_connack_string(int protocol, uint8_t code);
const char *mqttc_reason_string(uint8_t code);

#endif
