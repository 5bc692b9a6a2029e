/*
 * client_events.h: clients coming and going as MQTT messages (client_events
 * true): $SYS/broker/clients/connected/<id> and .../disconnected/<id>, a JSON
 * object each, QoS 0, not retained, for dashboards. '+' and '#' in a client id
 * become '_' in the topic; the payload has the id as it is.
 */
#ifndef MIDGE_CLIENT_EVENTS_H
#define MIDGE_CLIENT_EVENTS_H

struct client;

void client_event_connected(struct client *c);
/* reason: why the connection ended (NULL: the client disconnected). */
void client_event_disconnected(struct client *c, const char *reason);

#endif
