/*
 * bridge_int.h: what the bridge files share (bridge.c: lifecycle,
 * bridge_proto.c: the protocol towards the remote, bridge_topic.c: topic
 * mapping, bridge_tls.c: TLS). Not for the rest of the broker (bridge.h).
 */
#ifndef MIDGE_BRIDGE_INT_H
#define MIDGE_BRIDGE_INT_H

#include "bridge.h"
#include "conf.h"
#include "ev.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

typedef struct ssl_ctx_st SSL_CTX;

/* One "topic" line: pattern, direction, QoS and the two prefixes. */
struct bridge_topic {
	enum bridge_direction direction;
	uint8_t qos;
	char *local_filter;    /* local_prefix + pattern */
	char *remote_filter;   /* remote_prefix + pattern */
	char *local_prefix;
	char *remote_prefix;
};

enum bridge_state {
	BRIDGE_IDLE = 0,       /* not connected; a timer (restart, lazy check) may be running */
	BRIDGE_RESOLVING,      /* a thread resolves the host name */
	BRIDGE_CONNECTING,     /* TCP/TLS connecting, CONNECT sent, waiting for CONNACK */
	BRIDGE_UP,             /* CONNACK 0: messages cross */
	BRIDGE_STOPPED,        /* start_type once after its connection ended, or shutting down */
};

struct bridge {
	struct broker *broker;
	struct worker *worker;
	unsigned index;
	/* Settings: copies of the configuration, which a reload may free. */
	char *name;
	char *remote_id;
	char *local_id;
	char *notify_topic;        /* NULL without notifications */
	bool notify_local_only;
	char **hosts;
	int *ports;
	size_t naddrs;
	bool round_robin;
	struct bridge_topic *topics;
	size_t ntopics;
	char *username, *password;
	bool clean_remote;
	bool clean_local;
	uint16_t keepalive;
	enum bridge_start_type start_type;
	int restart_base, restart_cap;
	int idle_timeout;
	int threshold;
	bool try_private;
	uint8_t protocol;          /* 3, 4 or 5 */
	bool outgoing_retain;
	bool attempt_unsubscribe;
	uint32_t max_packet_size;
	uint32_t session_expiry;   /* MQTT 5 */
	uint16_t receive_maximum;  /* MQTT 5 */
	char *bind_address;
	SSL_CTX *tls;              /* NULL: plain TCP */
	bool tls_verify_name;

	/* State (owner worker's thread). */
	enum bridge_state state;
	struct session *session;
	struct client *client;
	struct ev_timer timer;     /* restart back-off, lazy threshold checks, idle */
	size_t addr_next;          /* the address to try next */
	const char *addr_host;     /* the address of the current attempt */
	int addr_port;
	int backoff;               /* seconds before the next attempt */
	bool private_refused;      /* the remote refused try_private: plain protocol from now on */
	bool stopping;
	int64_t last_traffic;      /* loop time of the last message either way (idle_timeout) */
	uint16_t next_mid;         /* SUBSCRIBE / UNSUBSCRIBE ids */
	uint64_t resolve_gen;      /* a resolution that comes back for an older attempt is dropped */
	pthread_t resolver;        /* resolving a host name (joined when its answer arrives) */
	bool resolver_running;

	/* Counters ($SYS, read by other threads). */
	_Atomic bool connected;
	_Atomic uint64_t messages_out, messages_in, connects;
};

/* bridge_topic.c */
int bridge_topics_init(struct bridge *br, const struct config_bridge *cb);
void bridge_topics_free(struct bridge *br);
/* The local topic of a message the remote sent on `topic`, or NULL (no "in" rule; malloc'd). */
char *bridge_topic_in(const struct bridge *br, const char *topic, size_t len, uint8_t *qos);

/* bridge_proto.c */
int bridge_send_connect(struct bridge *br);
int bridge_send_subscriptions(struct bridge *br);
int bridge_send_notification(struct bridge *br, bool up);

/* bridge.c */
void bridge_up(struct bridge *br);
void bridge_refused(struct bridge *br, uint8_t code);
void bridge_notify_local(struct bridge *br, bool up);
/* Fires MIDGE_EVT_BRIDGE (hooks.c). */
int bridge_event(struct bridge *br, int what, bool outgoing, const char **topic,
		 const void **payload, uint32_t *payload_len, uint8_t qos, bool retain);

/* bridge_tls.c: the client context of a bridge's TLS options; NULL + err when they fail. */
SSL_CTX *bridge_tls_ctx(const struct config_bridge *cb, char *err, size_t errlen);
void bridge_tls_free(SSL_CTX *ctx);

#endif
