/*
 * send.h: encoders of the packets the broker sends to a client.
 *
 * Each function sizes its packet exactly, reserves it in the client's
 * output queue and writes it (codec.h does the byte layout); the worker
 * writes the queue to the socket before it sleeps. They return 0, or -1
 * when the output could not be queued (no memory): the caller closes.
 */
#ifndef MIDGE_SEND_H
#define MIDGE_SEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

struct client;
struct message;

int send_connack(struct client *c, bool session_present, uint8_t code, struct mqtt_bytes props);

/* Sends m with this delivery's QoS, packet id, DUP and retain flags. */
int send_publish(struct client *c, struct message *m, uint8_t qos, uint16_t mid, bool dup,
		 bool retain, uint32_t subid);

/* PUBACK / PUBREC / PUBREL / PUBCOMP (reason is used by MQTT 5 only). */
int send_ack(struct client *c, uint8_t type, uint16_t mid, uint8_t reason);

/* SUBACK with one code per filter, or UNSUBACK (codes ignored before MQTT 5). */
int send_suback(struct client *c, uint8_t type, uint16_t mid, const uint8_t *codes, uint32_t n);

int send_pingresp(struct client *c);

/* MQTT 5 only: a server DISCONNECT with a reason code (no-op for older clients). */
int send_disconnect(struct client *c, uint8_t reason);
/* The same with a Reason String (when the client wants problem information). */
int send_disconnect_why(struct client *c, uint8_t reason, const char *why);

/* MQTT 5 AUTH with the Authentication Method and (when data) Authentication Data. */
int send_auth(struct client *c, uint8_t reason, const char *method, const void *data,
	      uint32_t len);

/* The method / data properties into buf; {0} when they do not fit. */
struct mqtt_bytes auth_props_encode(const char *method, const void *data, uint32_t len,
				    uint8_t *buf, size_t size);

#endif
