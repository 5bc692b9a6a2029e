/*
 * dispatch.h: from a framed packet to its handler.
 *
 * Owns the table that maps packet type to handle_* function, the rules of
 * which packets a client may send in which state, and the one place where
 * an internal error becomes a log line, an MQTT 5 reason code and a closed
 * connection (client_fail).
 */
#ifndef MIDGE_DISPATCH_H
#define MIDGE_DISPATCH_H

#include <stdint.h>

#include "log.h"

struct client;

/* Handler results. */
enum {
	DISPATCH_CONTINUE = 0, /* read the next packet */
	DISPATCH_STOP = 1,     /* the client was closed or parked: stop reading */
};

/* Handles one complete packet (body borrowed for the call). */
int dispatch_packet(struct client *c, uint8_t first_byte, const uint8_t *body, uint32_t len);

/*
 * Closes c because of what it sent: logs "Client <id> disconnected: <why>."
 * sends an MQTT 5 DISCONNECT with `reason` (0 for none), publishes the will.
 * Returns DISPATCH_STOP.
 */
int client_fail(struct client *c, uint8_t reason, const char *fmt, ...) LOG_PRINTF(3, 4);

/* The handlers, one file each. */
int handle_connect(struct client *c, uint8_t flags, const uint8_t *body, uint32_t len);
int handle_publish(struct client *c, uint8_t flags, const uint8_t *body, uint32_t len);
int handle_ack(struct client *c, uint8_t type, uint8_t flags, const uint8_t *body, uint32_t len);
/* A decoded PUBACK / PUBREC / PUBREL / PUBCOMP applied to c's session (also for bridges,
 * whose remote broker sends them); -1 when out of memory. */
struct mqtt_ack;
int ack_apply(struct client *c, uint8_t type, const struct mqtt_ack *a);
int handle_subscribe(struct client *c, uint8_t flags, const uint8_t *body, uint32_t len);
int handle_unsubscribe(struct client *c, uint8_t flags, const uint8_t *body, uint32_t len);
int handle_ping(struct client *c, uint8_t flags, const uint8_t *body, uint32_t len);
int handle_disconnect(struct client *c, uint8_t flags, const uint8_t *body, uint32_t len);
int handle_auth(struct client *c, uint8_t flags, const uint8_t *body, uint32_t len);

/* Name of a packet type for logs. */
const char *packet_name(uint8_t type);

#endif
