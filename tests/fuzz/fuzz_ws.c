/*
 * fuzz_ws.c: the WebSocket protocol of broker/ws.c: the HTTP upgrade request
 * parser (ws_request_parse), the answers (ws_response, ws_accept_value) and
 * the streaming frame decoder (ws_decoder_init / ws_decode / ws_close_code).
 *
 * Input: two bytes of settings, then what a client sends: an upgrade request
 * and, after its blank line, frames.
 *   byte 0: bit 0 path "/mqtt", bit 1 origin "http://example.com", bit 2
 *           binary only, bit 3 max_headers 200, bit 4 max_message 100,
 *           bits 5-7 chunking: 0 whole, else chunks of 1..2^n bytes;
 *   byte 1: seed of the chunk sizes.
 * The bytes are fed twice, in fuzzer-chosen chunks (each chunk in its own heap
 * block, as a read delivers it) and all at once: both runs must accept the
 * request alike and decode the same payload bytes, control frames and error.
 */
#include "config.h"

#include "fuzz.h"
#include "ws.h"

#include <stdbool.h>
#include <string.h>

/* What a run produced, for comparing the chunked and the whole one. */
struct result {
	struct ws_request req;
	bool done;
	uint8_t *payload;
	size_t npayload;
	uint8_t *events; /* per control frame: opcode, length, bytes; then the end */
	size_t nevents;
	uint16_t error;
};

static void append(uint8_t **buf, size_t *n, const void *p, size_t len)
{
	if (len == 0)
		return;
	*buf = realloc(*buf, *n + len);
	CHECK(*buf);
	memcpy(*buf + *n, p, len);
	*n += len;
}

struct chunker {
	unsigned max;   /* 0: everything at once */
	uint32_t state;
};

static size_t next_chunk(struct chunker *c, size_t left)
{
	if (c->max == 0)
		return left;
	c->state = c->state * 1103515245u + 12345u;
	size_t n = 1 + (c->state >> 16) % c->max;
	return n < left ? n : left;
}

/* Checks a finished request and its answer. */
static void check_request(const struct ws_request *r, const char *buf, size_t held,
			  const struct ws_options *o)
{
	char out[WS_RESPONSE_MAX];

	CHECK(r->status == 101 || r->status == 400 || r->status == 403 || r->status == 404 ||
	      r->status == 426 || r->status == 431);
	CHECK(r->length <= held && r->length <= ws_max_headers(o));
	size_t n = ws_response(r, buf, out, sizeof(out));
	CHECK(n > 0 && n < sizeof(out));
	CHECK(memcmp(out, "HTTP/1.1 ", 9) == 0);
	if (r->status != 101) {
		CHECK(r->reason != NULL);
		CHECK(ws_response_error(r->status, r->reason, out, sizeof(out)) == n);
		return;
	}
	CHECK(r->reason == NULL);
	CHECK(r->key.off + (size_t)r->key.len <= r->length);
	CHECK(r->target.off + (size_t)r->target.len <= r->length);
	CHECK(r->origin.off + (size_t)r->origin.len <= r->length);
	CHECK(r->forwarded_for.off + (size_t)r->forwarded_for.len <= r->length);
	char accept[29];
	CHECK(ws_accept_value(buf + r->key.off, r->key.len, accept) == 0);
	CHECK(strlen(accept) == 28 && memmem(out, n, accept, 28) != NULL);
	if (r->protocol)
		CHECK(strcmp(r->protocol, WS_PROTO_MQTT) == 0 || strcmp(r->protocol, WS_PROTO_MQTT31) == 0);
}

static void run(const uint8_t *data, size_t size, const struct ws_options *o, struct chunker ch,
		struct result *res)
{
	char *req = NULL;
	size_t held = 0, pos = 0;

	/* The handshake: the request grows chunk by chunk, in an exact-size block. */
	ws_request_init(&res->req);
	while (pos < size) {
		size_t n = next_chunk(&ch, size - pos);
		char *grown = malloc(held + n);
		CHECK(grown);
		if (held)
			memcpy(grown, req, held);
		memcpy(grown + held, data + pos, n);
		free(req);
		req = grown;
		held += n;
		pos += n;
		if (ws_request_parse(&res->req, req, held, o) == WS_REQ_DONE) {
			res->done = true;
			break;
		}
		CHECK(held < ws_max_headers(o));
	}
	if (!res->done) {
		free(req);
		return;
	}
	check_request(&res->req, req, held, o);
	if (res->req.status != 101) {
		free(req);
		return;
	}
	/* Frames: what followed the request, then the rest of the input. */
	struct ws_decoder d;
	ws_decoder_init(&d, o->max_message, o->binary_only);
	size_t early = held - res->req.length;
	const uint8_t *p = (const uint8_t *)req + res->req.length;
	bool first = true, closed = false;
	int rc = WS_DEC_MORE;
	while (!closed && rc != WS_DEC_ERROR) {
		size_t n = first ? early : next_chunk(&ch, size - pos);
		if (!first && n == 0)
			break;
		uint8_t *buf = malloc(n ? n : 1);
		CHECK(buf);
		memcpy(buf, first ? p : data + pos, n);
		if (!first)
			pos += n;
		first = false;
		size_t in = 0, out = 0;
		while ((rc = ws_decode(&d, buf, n, &in, &out)) == WS_DEC_CONTROL) {
			CHECK(d.opcode == WS_OP_CLOSE || d.opcode == WS_OP_PING || d.opcode == WS_OP_PONG);
			CHECK(d.ctl_len <= WS_CONTROL_MAX);
			uint8_t ev[2] = {d.opcode, d.ctl_len};
			append(&res->events, &res->nevents, ev, 2);
			append(&res->events, &res->nevents, d.ctl, d.ctl_len);
			if (d.opcode == WS_OP_CLOSE) {
				uint16_t code = ws_close_code(&d);
				uint8_t cf[4];
				CHECK(code >= 1000 && code < 5000);
				CHECK(ws_close_frame(cf, code == WS_CLOSE_NO_STATUS ? 0 : code) ==
				      (code == WS_CLOSE_NO_STATUS ? 2u : 4u));
				closed = true;
				break;
			}
			CHECK(out <= in && in <= n);
		}
		CHECK(out <= in && in <= n);
		if (rc == WS_DEC_MORE)
			CHECK(in == n);
		append(&res->payload, &res->npayload, buf, out);
		free(buf);
	}
	if (rc == WS_DEC_ERROR) {
		size_t in = 0, out = 0;
		uint8_t b = 0;
		CHECK(d.error >= 1000 && d.why != NULL);
		CHECK(ws_decode(&d, &b, 1, &in, &out) == WS_DEC_ERROR); /* and it stays failed */
		res->error = d.error;
	}
	/* A server frame header for what came through. */
	uint8_t hdr[WS_FRAME_HEADER_MAX];
	CHECK(ws_frame_header(hdr, WS_OP_BINARY, true, res->npayload) ==
	      ws_frame_header_size(res->npayload));
	free(req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	struct ws_options o = {
		.path = (data[0] & 1) ? "/mqtt" : NULL,
		.origin = (data[0] & 2) ? "http://example.com" : NULL,
		.binary_only = data[0] & 4,
		.max_headers = (data[0] & 8) ? 200 : 0,
		.max_message = (data[0] & 16) ? 100 : 0,
	};
	struct chunker ch = {(data[0] >> 5) ? 1u << (data[0] >> 5) : 0, data[1]};
	struct chunker whole = {0, 0};
	struct result a = {0}, b = {0};

	run(data + 2, size - 2, &o, ch, &a);
	run(data + 2, size - 2, &o, whole, &b);
	/* Chunks may bring a refusal earlier (a control byte before the first line's
	 * end is seen before the line ends), never later; an acceptance is the same. */
	CHECK(!b.done || a.done);
	if (a.done && b.done && (a.req.status == 101 || b.req.status == 101)) {
		CHECK(a.req.status == b.req.status && a.req.length == b.req.length);
		CHECK(a.req.protocol == b.req.protocol);
		CHECK(a.npayload == b.npayload &&
		      (a.npayload == 0 || memcmp(a.payload, b.payload, a.npayload) == 0));
		CHECK(a.nevents == b.nevents &&
		      (a.nevents == 0 || memcmp(a.events, b.events, a.nevents) == 0));
		CHECK(a.error == b.error);
	}
	free(a.payload);
	free(a.events);
	free(b.payload);
	free(b.events);
	return 0;
}
