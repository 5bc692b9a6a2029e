/*
 * http.h: the broker's small HTTP side: GET /metrics (Prometheus), /health
 * (the process answers) and /ready (listeners up, store open), on a listener
 * with `protocol: http` and on the HTTP port of a websockets listener.
 * One request per connection, answered and closed (no keep-alive).
 */
#ifndef MIDGE_HTTP_H
#define MIDGE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broker;
struct client;
struct textbuf;

/* The largest request head read (request line and headers). */
#define HTTP_MAX_REQUEST 8192

/*
 * The whole response (status line, headers, body) to `method target` in out.
 * Returns false when the path is not one of ours (the caller answers, e.g. a
 * websockets listener refusing a plain request).
 */
bool http_answer(struct broker *b, const char *method, size_t mlen, const char *target,
		 size_t tlen, struct textbuf *out);

/* ws_options.http: the answer to a plain GET on a websockets listener (ctx: the broker). */
char *http_ws_answer(void *ctx, const char *target, size_t tlen, size_t *len);

/* Input of a client on an http listener; returns the bytes consumed. */
size_t http_process(struct client *c, const uint8_t *buf, size_t len);

#endif
