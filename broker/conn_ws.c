/*
 * conn_ws.c: the WebSocket transport, RFC 6455 over an inner connection.
 *
 * Reads perform the upgrade handshake first, then decode frames in the
 * caller's buffer and return the bytes of the data messages: the MQTT layer
 * sees a byte stream, whatever the framing. Pings are answered here; a close
 * frame is answered and ends the stream. Writes wrap application bytes in
 * one binary frame per call and remember a partly written frame, so the next
 * call continues it. An idle connection holds only struct ws_state: the
 * request buffer and the control output exist only while in use.
 */
#include "config.h"

#include "conn_ws.h"

#include "alloc.h"
#include "ev.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/*
 * Control output holds at most: the handshake response (or, later, a pong)
 * being sent, one pong waiting (a newer ping replaces it, RFC 6455 5.5.3)
 * and our close frame.
 */
#define CTL_CAP (WS_RESPONSE_MAX + 2 + WS_CONTROL_MAX + 4)
#define REQ_INITIAL 512u
/* Application iovecs wrapped in one frame per write. */
#define IOV_BATCH 64
/* Inner reads per call that may yield only framing (control frames, empty
 * frames) before the loop gives the worker back; the socket stays readable. */
#define READS_PER_CALL 16

enum ws_phase {
	PH_HANDSHAKE, /* reading the upgrade request */
	PH_OPEN,
	PH_CLOSED,    /* the peer's close frame arrived: reads return 0 */
	PH_FAILED,    /* refused handshake or protocol error: reads fail with EPROTO */
};

struct ws_state {
	struct conn inner;
	const struct ws_options *opts;
	struct ws_decoder dec;
	struct ws_request req;
	char *reqbuf;            /* the upgrade request, during the handshake only */
	uint32_t req_len;
	uint32_t req_cap;
	uint8_t *early;          /* bytes that followed the request: the first frames */
	uint32_t early_len;
	uint32_t early_off;
	uint8_t *ctl;            /* control output (CTL_CAP bytes) while some is unsent */
	uint16_t ctl_off;
	uint16_t ctl_len;
	uint16_t ctl_tried;      /* end of what writes have been offered (TLS may repeat it) */
	int16_t pong_at;         /* offset of the waiting pong, or -1 */
	uint8_t phase;
	bool close_queued;       /* our close frame is queued: no data frame may follow */
	uint8_t fhdr[WS_FRAME_HEADER_MAX]; /* header of the data frame being written */
	uint8_t fhdr_len;
	uint8_t fhdr_off;
	uint64_t frame_left;     /* its payload bytes not yet written */
	char *origin;
	char *forwarded_for;
	/* Why the connection failed, for error(): static text, formatted on demand
	 * so that no connection carries a message buffer. */
	const char *error_what;
	const char *error_detail;
	int error_status;
};

static struct ws_state *ws_of(const struct conn *c)
{
	return c->state;
}

/* what and detail must be static text. */
static void note(struct ws_state *s, const char *what, const char *detail, int status)
{
	s->error_what = what;
	s->error_detail = detail;
	s->error_status = status;
}

/* --- control output --- */

/* Whether a data frame is partly written: nothing else may go out until it ends. */
static bool frame_open(const struct ws_state *s)
{
	return s->fhdr_off < s->fhdr_len || s->frame_left > 0;
}

static void ctl_release(struct ws_state *s)
{
	mem_free(s->ctl);
	s->ctl = NULL;
	s->ctl_off = s->ctl_len = s->ctl_tried = 0;
	s->pong_at = -1;
}

static int ctl_append(struct ws_state *s, const void *p, size_t n)
{
	if (!s->ctl) {
		s->ctl = mem_malloc(CTL_CAP);
		if (!s->ctl)
			return -1;
	}
	if (s->ctl_len + n > CTL_CAP && s->ctl_off > 0) {
		memmove(s->ctl, s->ctl + s->ctl_off, s->ctl_len - s->ctl_off);
		if (s->pong_at >= 0)
			s->pong_at = (int16_t)(s->pong_at - s->ctl_off);
		s->ctl_len = (uint16_t)(s->ctl_len - s->ctl_off);
		s->ctl_tried = (uint16_t)(s->ctl_tried - s->ctl_off);
		s->ctl_off = 0;
	}
	/* Bounded by construction (see CTL_CAP); refusing is safer than growing. */
	if (s->ctl_len + n > CTL_CAP)
		return -1;
	memcpy(s->ctl + s->ctl_len, p, n);
	s->ctl_len = (uint16_t)(s->ctl_len + n);
	return 0;
}

static void queue_pong(struct ws_state *s, const uint8_t *payload, size_t n)
{
	uint8_t frame[2 + WS_CONTROL_MAX];
	size_t h;

	/* Nothing may follow our close frame. */
	if (s->close_queued)
		return;
	h = ws_frame_header(frame, WS_OP_PONG, true, n);
	memcpy(frame + h, payload, n);
	/*
	 * A waiting pong answers an older ping: the newer one replaces it, unless
	 * a write has been offered it already (TLS would send those bytes again).
	 */
	if (s->pong_at >= 0 && s->pong_at >= s->ctl_tried)
		s->ctl_len = (uint16_t)s->pong_at;
	if (ctl_append(s, frame, h + n) == 0)
		s->pong_at = (int16_t)(s->ctl_len - (h + n));
}

static void queue_close(struct ws_state *s, uint16_t status)
{
	uint8_t frame[4];

	if (s->close_queued)
		return;
	s->close_queued = true;
	s->pong_at = -1;
	(void)ctl_append(s, frame, ws_close_frame(frame, status));
}

/* Writes control output; 0 when none is left, else -1 with errno (EAGAIN: later). */
static int flush_ctl(struct ws_state *s)
{
	if (s->ctl_off == s->ctl_len) {
		if (s->ctl)
			ctl_release(s);
		return 0;
	}
	if (frame_open(s)) {
		errno = EAGAIN;
		return -1;
	}
	while (s->ctl_off < s->ctl_len) {
		struct iovec v;
		ssize_t n;

		/* What a failed write was offered is offered again alone (TLS wants the
		 * same bytes); newer bytes wait, so a newer pong can still replace its elder. */
		if (s->ctl_tried <= s->ctl_off)
			s->ctl_tried = s->ctl_len;
		v = (struct iovec){s->ctl + s->ctl_off, (size_t)(s->ctl_tried - s->ctl_off)};
		n = conn_writev(&s->inner, &v, 1);

		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EAGAIN;
			return -1;
		}
		s->ctl_off = (uint16_t)(s->ctl_off + (size_t)n);
	}
	ctl_release(s);
	return 0;
}

/* Best effort, for paths that return something else: errno stays the caller's. */
static void try_flush_ctl(struct ws_state *s)
{
	int saved = errno;

	(void)flush_ctl(s);
	errno = saved;
}

/* --- handshake --- */

static void request_release(struct ws_state *s)
{
	mem_free(s->reqbuf);
	s->reqbuf = NULL;
	s->req_len = s->req_cap = 0;
}

static char *span_dup(const struct ws_state *s, struct ws_span sp)
{
	return sp.len ? mem_strndup(s->reqbuf + sp.off, sp.len) : NULL;
}

/* Queues the answer to a complete request; the 101 opens the connection. */
static ssize_t answer(struct ws_state *s)
{
	char resp[WS_RESPONSE_MAX];
	size_t n, rest = s->req_len - s->req.length;

	/* A plain GET (no upgrade) may be for the broker's HTTP side: answered, then closed. */
	if ((s->req.status == 426 || s->req.status == 404) && s->opts->http) {
		size_t len = 0;
		char *page = s->opts->http(s->opts->http_ctx, s->reqbuf + s->req.target.off,
					   s->req.target.len, &len);
		if (page) {
			struct iovec iov = {page, len};
			for (size_t done = 0; done < len;) {
				iov.iov_base = page + done;
				iov.iov_len = len - done;
				ssize_t w = conn_writev(&s->inner, &iov, 1);
				if (w <= 0)
					break; /* best effort, as for a refusal */
				done += (size_t)w;
			}
			mem_free(page);
			goto fail;
		}
	}
	n = ws_response(&s->req, s->reqbuf, resp, sizeof(resp));
	if (n == 0 || ctl_append(s, resp, n) < 0) {
		note(s, "could not build the WebSocket handshake response", NULL, 0);
		goto fail;
	}
	if (s->req.status != 101) {
		note(s, "WebSocket handshake refused", s->req.reason, s->req.status);
		try_flush_ctl(s); /* best effort: the connection ends here */
		goto fail;
	}
	s->origin = span_dup(s, s->req.origin);
	s->forwarded_for = span_dup(s, s->req.forwarded_for);
	if ((s->req.origin.len && !s->origin) || (s->req.forwarded_for.len && !s->forwarded_for)) {
		note(s, "out of memory in the WebSocket handshake", NULL, 0);
		goto fail;
	}
	if (rest > 0) {
		/* A client that did not wait for the 101: its frames are kept, not lost. */
		s->early = mem_malloc(rest);
		if (!s->early) {
			note(s, "out of memory in the WebSocket handshake", NULL, 0);
			goto fail;
		}
		memcpy(s->early, s->reqbuf + s->req.length, rest);
		s->early_len = (uint32_t)rest;
		s->early_off = 0;
	}
	request_release(s);
	s->phase = PH_OPEN;
	if (flush_ctl(s) < 0 && errno != EAGAIN)
		return -1;
	return 1;
fail:
	request_release(s);
	s->phase = PH_FAILED;
	errno = EPROTO;
	return -1;
}

/* Reads the upgrade request: 1 once answered with a 101, else read()'s convention. */
static ssize_t handshake(struct ws_state *s)
{
	size_t max = ws_max_headers(s->opts);

	for (;;) {
		ssize_t n;

		if (s->req_len == s->req_cap) {
			/* ws_request_parse() refuses at max bytes, so the buffer stops there. */
			size_t cap = s->req_cap ? (size_t)s->req_cap * 2 : REQ_INITIAL;
			char *p;

			if (cap > max)
				cap = max;
			p = mem_realloc(s->reqbuf, cap);
			if (!p) {
				note(s, "out of memory reading the WebSocket handshake", NULL, 0);
				errno = ENOMEM;
				return -1;
			}
			s->reqbuf = p;
			s->req_cap = (uint32_t)cap;
		}
		n = conn_read(&s->inner, s->reqbuf + s->req_len, s->req_cap - s->req_len);
		if (n <= 0)
			return n;
		s->req_len += (uint32_t)n;
		if (ws_request_parse(&s->req, s->reqbuf, s->req_len, s->opts) == WS_REQ_DONE)
			return answer(s);
	}
}

/* --- reading frames --- */

static void on_control(struct ws_state *s)
{
	struct ws_decoder *d = &s->dec;

	switch (d->opcode) {
	case WS_OP_PING:
		queue_pong(s, d->ctl, d->ctl_len);
		break;
	case WS_OP_CLOSE: {
		uint16_t code = ws_close_code(d);

		/* Echo the status (RFC 6455 5.5.1); a close without one gets one without. */
		queue_close(s, code == WS_CLOSE_NO_STATUS ? 0 : code);
		s->phase = PH_CLOSED;
		break;
	}
	default:
		break; /* pongs: we send no pings, the MQTT keepalive does that job */
	}
}

/* Decodes got new bytes at buf[out]; returns the new end of the payload. */
static size_t decode(struct ws_state *s, uint8_t *buf, size_t out, size_t got)
{
	size_t in = out, o = out;
	int rc;

	while ((rc = ws_decode(&s->dec, buf, out + got, &in, &o)) == WS_DEC_CONTROL) {
		on_control(s);
		if (s->phase == PH_CLOSED)
			return o; /* whatever follows a close frame is ignored */
	}
	if (rc == WS_DEC_ERROR) {
		note(s, "WebSocket protocol error", s->dec.why, s->dec.error);
		queue_close(s, s->dec.error);
		s->phase = PH_FAILED;
	}
	return o;
}

/*
 * Fills buf with payload: reads until it is full, the inner connection has
 * nothing more, or the stream ends. Payload decoded before a close frame or
 * a protocol error is returned first; the end or the error comes next call.
 */
static ssize_t read_frames(struct ws_state *s, uint8_t *buf, size_t len)
{
	size_t out = 0;
	int reads = 0;

	while (out < len && s->phase == PH_OPEN) {
		size_t want = len - out, got;
		bool short_read = false;

		/* Bytes held here or in the inner transport raise no event: take them all. */
		if (reads++ >= READS_PER_CALL && !s->early && conn_pending(&s->inner) == 0)
			break;

		if (s->early) {
			got = s->early_len - s->early_off;
			if (got > want)
				got = want;
			memcpy(buf + out, s->early + s->early_off, got);
			s->early_off += (uint32_t)got;
			if (s->early_off == s->early_len) {
				mem_free(s->early);
				s->early = NULL;
			}
		} else {
			ssize_t n = conn_read(&s->inner, buf + out, want);

			if (n <= 0) {
				if (out > 0)
					break; /* the end or the error shows again next call */
				try_flush_ctl(s);
				return n;
			}
			got = (size_t)n;
			short_read = got < want;
		}
		out = decode(s, buf, out, got);
		/* A short read drained the socket; one that gave only framing reads again. */
		if (short_read && out > 0)
			break;
	}
	try_flush_ctl(s);
	if (out > 0)
		return (ssize_t)out;
	if (s->phase == PH_CLOSED)
		return 0;
	errno = s->phase == PH_FAILED ? EPROTO : EAGAIN;
	return -1;
}

static ssize_t ws_read(struct conn *c, void *buf, size_t len)
{
	struct ws_state *s = ws_of(c);

	if (s->phase == PH_FAILED) {
		try_flush_ctl(s);
		errno = EPROTO;
		return -1;
	}
	if (s->phase == PH_CLOSED) {
		try_flush_ctl(s);
		return 0;
	}
	/* The 101, a pong or a close left over from earlier goes first. */
	if (flush_ctl(s) < 0 && errno != EAGAIN)
		return -1;
	if (s->phase == PH_HANDSHAKE) {
		ssize_t rc = handshake(s);

		if (rc <= 0)
			return rc;
		/* Upgraded. Frames that came with the request are decoded now; else EAGAIN. */
	}
	if (len == 0)
		return 0;
	return read_frames(s, buf, len);
}

/* --- writing --- */

static ssize_t ws_writev(struct conn *c, const struct iovec *iov, int iovcnt)
{
	struct ws_state *s = ws_of(c);
	struct iovec v[IOV_BATCH + 1];
	size_t take, hdr_part, app;
	int k = 0;
	ssize_t n;

	if (s->phase == PH_HANDSHAKE) {
		errno = EAGAIN; /* nothing may precede the 101 */
		return -1;
	}
	if (!frame_open(s)) {
		size_t total = 0;

		if (flush_ctl(s) < 0)
			return -1;
		if (s->close_queued || s->phase != PH_OPEN) {
			errno = EPIPE;
			return -1;
		}
		for (int i = 0; i < iovcnt && i < IOV_BATCH; i++)
			total += iov[i].iov_len;
		if (total == 0)
			return 0;
		s->fhdr_len = (uint8_t)ws_frame_header(s->fhdr, WS_OP_BINARY, true, total);
		s->fhdr_off = 0;
		s->frame_left = total;
	}
	/* The same bytes in the same order every time: TLS may need a write repeated as it was. */
	if (s->fhdr_off < s->fhdr_len)
		v[k++] = (struct iovec){s->fhdr + s->fhdr_off, (size_t)(s->fhdr_len - s->fhdr_off)};
	take = s->frame_left;
	for (int i = 0; i < iovcnt && k < IOV_BATCH + 1 && take > 0; i++) {
		size_t l = iov[i].iov_len < take ? iov[i].iov_len : take;

		if (l == 0)
			continue;
		v[k++] = (struct iovec){iov[i].iov_base, l};
		take -= l;
	}
	if (k == 0) {
		errno = EAGAIN;
		return -1;
	}
	n = conn_writev(&s->inner, v, k);
	if (n < 0)
		return -1;
	hdr_part = (size_t)(s->fhdr_len - s->fhdr_off);
	if (hdr_part > (size_t)n)
		hdr_part = (size_t)n;
	s->fhdr_off = (uint8_t)(s->fhdr_off + hdr_part);
	app = (size_t)n - hdr_part;
	s->frame_left -= app;
	if (!frame_open(s))
		try_flush_ctl(s); /* a pong or close that waited for this frame */
	if (app == 0) {
		errno = EAGAIN;
		return -1;
	}
	return (ssize_t)app;
}

/* --- the rest of the vtable --- */

static void ws_close(struct conn *c)
{
	struct ws_state *s = ws_of(c);

	if (!s)
		return;
	/* A courteous close frame if it can go now; never wait for it. */
	if (s->phase == PH_OPEN && !frame_open(s))
		queue_close(s, WS_CLOSE_NORMAL);
	try_flush_ctl(s);
	conn_close(&s->inner);
	ctl_release(s);
	request_release(s);
	mem_free(s->early);
	mem_free(s->origin);
	mem_free(s->forwarded_for);
	mem_free(s);
	c->state = NULL;
}

static size_t ws_pending(const struct conn *c)
{
	const struct ws_state *s = ws_of(c);
	size_t n = conn_pending(&s->inner);

	if (s->early)
		n += s->early_len - s->early_off;
	/* An end or an error not reported yet: the next read says it. */
	if (s->phase == PH_CLOSED || s->phase == PH_FAILED)
		n += 1;
	return n;
}

static uint32_t ws_wants(const struct conn *c)
{
	const struct ws_state *s = ws_of(c);

	return (s->ctl_off < s->ctl_len ? EV_WRITE : 0) | conn_wants(&s->inner);
}

static const char *ws_identity(const struct conn *c, enum conn_identity kind)
{
	return conn_peer_identity(&ws_of(c)->inner, kind);
}

static const char *ws_error(const struct conn *c)
{
	/* Valid until the next call on this thread: long enough for a log line. */
	static __thread char text[160];
	const struct ws_state *s = ws_of(c);

	if (!s->error_what)
		return conn_error(&s->inner);
	if (!s->error_detail)
		return s->error_what;
	/* The status is HTTP's for a refused handshake, the close code for a protocol error. */
	snprintf(text, sizeof(text), "%s: %d %s", s->error_what, s->error_status, s->error_detail);
	return text;
}

const struct conn_type conn_type_ws = {
	.name = "websockets",
	.read = ws_read,
	.writev = ws_writev,
	.close = ws_close,
	.pending = ws_pending,
	.wants = ws_wants,
	.peer_identity = ws_identity,
	.error = ws_error,
};

int conn_ws_init(struct conn *c, struct conn inner, const struct ws_options *o)
{
	struct ws_state *s = mem_calloc(1, sizeof(*s));

	if (!s)
		return -1;
	s->inner = inner;
	s->opts = o;
	s->pong_at = -1;
	s->phase = PH_HANDSHAKE;
	ws_request_init(&s->req);
	/* The MQTT layer checks each packet against max_packet_size; this bounds a message. */
	ws_decoder_init(&s->dec, o->max_message, o->binary_only);
	c->type = &conn_type_ws;
	c->fd = inner.fd;
	c->state = s;
	return 0;
}

const char *conn_ws_origin(const struct conn *c)
{
	return c->type == &conn_type_ws && c->state ? ws_of(c)->origin : NULL;
}

const char *conn_ws_forwarded_for(const struct conn *c)
{
	return c->type == &conn_type_ws && c->state ? ws_of(c)->forwarded_for : NULL;
}
