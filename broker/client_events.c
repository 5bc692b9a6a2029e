/*
 * client_events.c: lifecycle events as messages (see client_events.h).
 */
#include "config.h"

#include "client_events.h"

#include "client.h"
#include "conf.h"
#include "message.h"
#include "metrics.h"
#include "worker.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static void json_string(struct textbuf *t, const char *s)
{
	textbuf_printf(t, "\"");
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			textbuf_printf(t, "\\%c", ch);
		else if (ch < 0x20)
			textbuf_printf(t, "\\u%04x", ch);
		else
			textbuf_printf(t, "%c", ch);
	}
	textbuf_printf(t, "\"");
}

static void publish_event(struct client *c, const char *kind, struct textbuf *payload)
{
	char topic[320];
	size_t n = (size_t)snprintf(topic, sizeof(topic), "$SYS/broker/clients/%s/", kind);
	const char *id = c->id ? c->id : "";

	for (; *id && n + 1 < sizeof(topic); id++)
		topic[n++] = *id == '+' || *id == '#' ? '_' : *id;
	topic[n] = '\0';
	if (!payload->failed) {
		struct message *m = message_new(topic, n, payload->p, payload->len, 0, false, NULL, 0);
		/* Routed before the loop sleeps: a close may happen in the middle of routing. */
		if (m)
			worker_defer_publish(c->worker, m);
	}
	textbuf_free(payload);
}

static void common(struct textbuf *t, const struct client *c)
{
	textbuf_printf(t, "{\"client_id\":");
	json_string(t, c->id);
	textbuf_printf(t, ",\"address\":");
	char a[CLIENT_ADDRSTRLEN];
	json_string(t, client_format_address(c, a));
	textbuf_printf(t, ",\"port\":%u,\"username\":", c->port);
	if (c->username)
		json_string(t, c->username);
	else
		textbuf_printf(t, "null");
	textbuf_printf(t, ",\"time\":%lld", (long long)time(NULL));
}

void client_event_connected(struct client *c)
{
	struct textbuf t = {0};

	if (!c->worker->cfg->client_events)
		return;
	common(&t, c);
	textbuf_printf(&t, ",\"protocol\":%u,\"clean_start\":%s,\"keepalive\":%u}", c->protocol,
		       client_clean_start(c) ? "true" : "false", c->keepalive);
	publish_event(c, "connected", &t);
}

void client_event_disconnected(struct client *c, const char *reason)
{
	struct textbuf t = {0};

	if (!c->worker->cfg->client_events)
		return;
	char why[160];
	size_t n;

	common(&t, c);
	/* The log's sentence, without its full stop. */
	snprintf(why, sizeof(why), "%s", reason ? reason : "disconnected");
	n = strlen(why);
	if (n > 0 && why[n - 1] == '.')
		why[n - 1] = '\0';
	textbuf_printf(&t, ",\"reason\":");
	json_string(&t, why);
	textbuf_printf(&t, "}");
	publish_event(c, "disconnected", &t);
}
