/*
 * http.c: one HTTP/1.x request per connection on an http listener, and the
 * answers to /metrics, /health and /ready (see http.h).
 */
#include "config.h"

#include "http.h"

#include "broker.h"
#include "client.h"
#include "log.h"
#include "metrics.h"
#include "worker.h"

#include <stdio.h>
#include <string.h>

static void respond(struct textbuf *out, int status, const char *reason, const char *type,
		    const char *body, size_t blen, bool head_only)
{
	textbuf_printf(out,
		       "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		       "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
		       status, reason, type, blen);
	if (!head_only && blen)
		textbuf_printf(out, "%.*s", (int)blen, body);
}

static bool is(const char *s, size_t len, const char *word)
{
	return len == strlen(word) && memcmp(s, word, len) == 0;
}

bool http_answer(struct broker *b, const char *method, size_t mlen, const char *target,
		 size_t tlen, struct textbuf *out)
{
	const char *q = memchr(target, '?', tlen);
	size_t plen = q ? (size_t)(q - target) : tlen;
	bool head = is(method, mlen, "HEAD");
	const char *why;

	if (!is(target, plen, "/metrics") && !is(target, plen, "/health") &&
	    !is(target, plen, "/ready"))
		return false;
	if (!head && !is(method, mlen, "GET")) {
		respond(out, 405, "Method Not Allowed", "text/plain", "GET or HEAD\n", 12, false);
		return true;
	}
	if (is(target, plen, "/health")) {
		if (metrics_degraded(b, &why)) {
			/* 503: a load balancer sends new clients to nodes that still reach the
			 * cluster; this node goes on serving the clients it has. */
			char body[160];
			int n = snprintf(body, sizeof(body), "degraded: %s\n", why);
			respond(out, 503, "Service Unavailable", "text/plain", body, (size_t)n, head);
		} else {
			respond(out, 200, "OK", "text/plain", "ok\n", 3, head);
		}
	} else if (is(target, plen, "/ready")) {
		if (metrics_ready(b, &why)) {
			respond(out, 200, "OK", "text/plain", "ready\n", 6, head);
		} else {
			char body[128];
			int n = snprintf(body, sizeof(body), "not ready: %s\n", why);
			respond(out, 503, "Service Unavailable", "text/plain", body, (size_t)n, head);
		}
	} else {
		struct textbuf m = {0};
		metrics_render(b, &m);
		if (m.failed)
			respond(out, 500, "Internal Server Error", "text/plain", "out of memory\n", 14,
				false);
		else
			respond(out, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", m.p, m.len,
				head);
		textbuf_free(&m);
	}
	return true;
}

char *http_ws_answer(void *ctx, const char *target, size_t tlen, size_t *len)
{
	struct textbuf out = {0};

	if (!http_answer(ctx, "GET", 3, target, tlen, &out) || out.failed) {
		textbuf_free(&out);
		return NULL;
	}
	*len = out.len;
	return out.p; /* mem_malloc'd: the caller frees it with mem_free */
}

/* Finds the end of the request head; 0 while incomplete. */
static size_t head_end(const uint8_t *buf, size_t len)
{
	for (size_t i = 3; i < len; i++)
		if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
			return i + 1;
	return 0;
}

static void send_and_close(struct client *c, struct textbuf *out)
{
	uint8_t *p = out->failed ? NULL : client_out(c, out->len);

	if (p)
		memcpy(p, out->p, out->len);
	textbuf_free(out);
	c->flags |= CLIENT_F_CLOSE_AFTER_FLUSH;
	worker_schedule_flush(c->worker, c);
}

size_t http_process(struct client *c, const uint8_t *buf, size_t len)
{
	struct textbuf out = {0};
	size_t end = head_end(buf, len);
	const char *line = (const char *)buf, *sp1, *sp2, *eol;

	if (c->flags & CLIENT_F_CLOSE_AFTER_FLUSH)
		return len; /* answered: what follows is ignored */
	if (!end) {
		if (len < HTTP_MAX_REQUEST)
			return 0;
		respond(&out, 431, "Request Header Fields Too Large", "text/plain", "", 0, false);
		send_and_close(c, &out);
		return len;
	}
	eol = memchr(line, '\r', end);
	sp1 = memchr(line, ' ', (size_t)(eol - line));
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (!sp1 || !sp2 || (size_t)(eol - sp2 - 1) < 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		respond(&out, 400, "Bad Request", "text/plain", "bad request\n", 12, false);
	} else if (!http_answer(c->worker->broker, line, (size_t)(sp1 - line), sp1 + 1,
				(size_t)(sp2 - sp1 - 1), &out)) {
		respond(&out, 404, "Not Found", "text/plain", "not found: /metrics, /health, /ready\n",
			37, false);
	}
	send_and_close(c, &out);
	return len;
}
