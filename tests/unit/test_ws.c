/*
 * test_ws.c: unit tests of the WebSocket protocol (ws.c) and transport (conn_ws.c).
 *
 * Handshake: real requests captured from paho-mqtt 1.6.1 and MQTT.js 5 (kept
 * here as data), every refusal, and each fed split at every byte. Frames:
 * the RFC 6455 5.7 examples, fragmentation, interleaved control frames, every
 * protocol error, 8 MiB messages, byte-by-byte input; encoder sizes. The
 * transport: over a scripted inner connection (exact partial writes) and over
 * a socketpair with a real TCP-style inner connection and a tiny send buffer.
 */
#include "config.h"

#include "tests.h"

#include "alloc.h"
#include "conn_ws.h"
#include "ev.h"
#include "ws.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MIB (1024u * 1024u)

/* --- requests --- */

/* Captured from paho-mqtt 1.6.1, transport="websockets", ws_set_options(path="/mqtt").
 * Note "Sec-Websocket-Version": header names are case-insensitive. */
static const char req_paho[] =
	"GET /mqtt HTTP/1.1\r\n"
	"Host: 127.0.0.1:56511\r\n"
	"Upgrade: websocket\r\n"
	"Connection: Upgrade\r\n"
	"Origin: https://127.0.0.1:56511\r\n"
	"Sec-WebSocket-Key: sM2Fc+rXSvGaYnwwcreGpw==\r\n"
	"Sec-Websocket-Version: 13\r\n"
	"Sec-Websocket-Protocol: mqtt\r\n"
	"\r\n";

/* Captured from MQTT.js 5.16 (ws 8.23, Node 20), protocolVersion 4; version 5 sends the same. */
static const char req_mqttjs[] =
	"GET /mqtt HTTP/1.1\r\n"
	"Sec-WebSocket-Version: 13\r\n"
	"Sec-WebSocket-Key: dNMVNPnyjBQlOSTBC6yoNQ==\r\n"
	"Connection: Upgrade\r\n"
	"Upgrade: websocket\r\n"
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
	"Sec-WebSocket-Protocol: mqtt\r\n"
	"Host: 127.0.0.1:55057\r\n"
	"\r\n";

/* Captured from MQTT.js 5.16 with protocolId "MQIsdp", protocolVersion 3. */
static const char req_mqttjs31[] =
	"GET /mqtt HTTP/1.1\r\n"
	"Sec-WebSocket-Version: 13\r\n"
	"Sec-WebSocket-Key: y4P0HPwRBqMO99sa4GZ4aw==\r\n"
	"Connection: Upgrade\r\n"
	"Upgrade: websocket\r\n"
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
	"Sec-WebSocket-Protocol: mqttv3.1\r\n"
	"Host: 127.0.0.1:59903\r\n"
	"\r\n";

/* The shape of a libwebsockets client request (not captured: no such client here). */
static const char req_lws[] =
	"GET /mqtt HTTP/1.1\r\n"
	"Pragma: no-cache\r\n"
	"Cache-Control: no-cache\r\n"
	"Host: broker.example\r\n"
	"Origin: http://broker.example\r\n"
	"Upgrade: websocket\r\n"
	"Connection: Upgrade\r\n"
	"Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n"
	"Sec-WebSocket-Protocol: mqtt\r\n"
	"Sec-WebSocket-Version: 13\r\n"
	"\r\n";

/* A browser behind a proxy: keep-alive in Connection, several subprotocols, a query. */
static const char req_browser[] =
	"GET /mqtt?token=abc HTTP/1.1\r\n"
	"Host: broker.example\r\n"
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
	"Accept: */*\r\n"
	"Sec-WebSocket-Version: 13\r\n"
	"Origin: https://app.example\r\n"
	"Sec-WebSocket-Protocol: wamp, mqttv3.1, mqtt\r\n"
	"Sec-WebSocket-Extensions: permessage-deflate\r\n"
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
	"Connection: keep-alive, Upgrade\r\n"
	"Cookie: a=b\r\n"
	"X-Forwarded-For: 203.0.113.7, 10.0.0.1\r\n"
	"X-Forwarded-For: 10.0.0.2\r\n"
	"Upgrade: websocket\r\n"
	"\r\n";

/* RFC 6455 1.3 without subprotocols, bare LF line ends, odd case, a stray CRLF first. */
static const char req_plain[] =
	"\r\nGET / HTTP/1.1\n"
	"host: server.example.com\n"
	"UPGRADE: WebSocket\n"
	"connection:Upgrade\n"
	"sec-websocket-key:   dGhlIHNhbXBsZSBub25jZQ==  \n"
	"SEC-WEBSOCKET-VERSION: 13\n"
	"\n";

struct req_case {
	const char *name;
	const char *req;
	int status;
	const char *protocol;   /* accepted: the subprotocol chosen */
	const char *origin;     /* accepted: Origin recorded */
	const char *xff;        /* accepted: X-Forwarded-For recorded */
	const char *accept;     /* accepted: Sec-WebSocket-Accept (computed independently) */
	struct ws_options opts;
};

static const struct req_case valid_cases[] = {
	{"paho", req_paho, 101, "mqtt", "https://127.0.0.1:56511", NULL,
	 "5gfinD7O+TjVrpQB4IPiDZZKkjY=", {.path = "/mqtt"}},
	{"mqttjs", req_mqttjs, 101, "mqtt", NULL, NULL, "4tQ9S9hI/nkUm885xM9rNctlm/E=", {0}},
	{"mqttjs31", req_mqttjs31, 101, "mqttv3.1", NULL, NULL, "wYG2xZCE0bPJ0GcUWetJ6HbQrac=",
	 {.path = "/mqtt"}},
	{"lws", req_lws, 101, "mqtt", "http://broker.example", NULL, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=",
	 {.origin = "http://broker.example"}},
	{"browser", req_browser, 101, "mqttv3.1", "https://app.example", "203.0.113.7, 10.0.0.1",
	 "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", {.path = "/mqtt", .origin = "HTTPS://App.Example"}},
	{"plain", req_plain, 101, NULL, NULL, NULL, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", {.path = "/"}},
};

#define HS_KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define HS_REST "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"

static const struct req_case refused_cases[] = {
	{"post", "POST / HTTP/1.1\r\n" HS_REST HS_KEY "\r\n", 400, .opts = {0}},
	{"http10", "GET / HTTP/1.0\r\n" HS_REST HS_KEY "\r\n", 400, .opts = {0}},
	{"http2", "GET / HTTP/2.0\r\n" HS_REST HS_KEY "\r\n", 400, .opts = {0}},
	{"no version", "GET /\r\n" HS_REST HS_KEY "\r\n", 400, .opts = {0}},
	{"two spaces", "GET  / HTTP/1.1\r\n" HS_REST HS_KEY "\r\n", 400, .opts = {0}},
	{"bad version", "GET / HTTP/1.1x\r\n" HS_REST HS_KEY "\r\n", 400, .opts = {0}},
	{"no colon", "GET / HTTP/1.1\r\n" HS_REST HS_KEY "Bogus\r\n\r\n", 400, .opts = {0}},
	{"folded", "GET / HTTP/1.1\r\n" HS_REST HS_KEY "X-A: b\r\n c\r\n\r\n", 400, .opts = {0}},
	{"space before colon", "GET / HTTP/1.1\r\n" HS_REST HS_KEY "Origin : x\r\n\r\n", 400,
	 .opts = {0}},
	{"control char", "GET / HTTP/1.1\r\n" HS_REST HS_KEY "X-A: a\x01" "b\r\n\r\n", 400,
	 .opts = {0}},
	{"bare CR", "GET / HTTP/1.1\r\n" HS_REST HS_KEY "X-A: a\rb\r\n\r\n", 400, .opts = {0}},
	{"plain GET", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 426, .opts = {0}},
	{"upgrade h2c", "GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
	 "Sec-WebSocket-Version: 13\r\n" HS_KEY "\r\n", 426, .opts = {0}},
	{"version 8", "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	 "Sec-WebSocket-Version: 8\r\n" HS_KEY "\r\n", 426, .opts = {0}},
	{"no ws version", "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	 HS_KEY "\r\n", 426, .opts = {0}},
	{"version twice", "GET / HTTP/1.1\r\n" HS_REST "Sec-WebSocket-Version: 13\r\n" HS_KEY "\r\n",
	 400, .opts = {0}},
	{"connection keep-alive", "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
	 "Sec-WebSocket-Version: 13\r\n" HS_KEY "\r\n", 400, .opts = {0}},
	{"no key", "GET / HTTP/1.1\r\n" HS_REST "\r\n", 400, .opts = {0}},
	{"short key", "GET / HTTP/1.1\r\n" HS_REST "Sec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\n\r\n",
	 400, .opts = {0}},
	{"key bad char", "GET / HTTP/1.1\r\n" HS_REST
	 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ*==\r\n\r\n", 400, .opts = {0}},
	{"key twice", "GET / HTTP/1.1\r\n" HS_REST HS_KEY HS_KEY "\r\n", 400, .opts = {0}},
	{"protocol chat", "GET / HTTP/1.1\r\n" HS_REST HS_KEY
	 "Sec-WebSocket-Protocol: chat, superchat\r\n\r\n", 400, .opts = {0}},
	{"protocol MQTT", "GET / HTTP/1.1\r\n" HS_REST HS_KEY "Sec-WebSocket-Protocol: MQTT\r\n\r\n",
	 400, .opts = {0}},
	{"wrong path", "GET /ws HTTP/1.1\r\n" HS_REST HS_KEY "\r\n", 404, .opts = {.path = "/mqtt"}},
	{"path prefix", "GET /mqtt/x HTTP/1.1\r\n" HS_REST HS_KEY "\r\n", 404,
	 .opts = {.path = "/mqtt"}},
	{"wrong origin", "GET / HTTP/1.1\r\n" HS_REST HS_KEY "Origin: http://evil.example\r\n\r\n",
	 403, .opts = {.origin = "http://good.example"}},
	{"no origin", "GET / HTTP/1.1\r\n" HS_REST HS_KEY "\r\n", 403,
	 .opts = {.origin = "http://good.example"}},
	{"too large", "GET / HTTP/1.1\r\n" HS_REST HS_KEY "Cookie: 0123456789\r\n\r\n", 431,
	 .opts = {.max_headers = 150}},
};

static int parse_whole(const struct req_case *tc, struct ws_request *r)
{
	ws_request_init(r);
	return ws_request_parse(r, tc->req, strlen(tc->req), &tc->opts);
}

static bool span_is(const char *buf, struct ws_span sp, const char *want)
{
	if (!want)
		return sp.len == 0;
	return sp.len == strlen(want) && memcmp(buf + sp.off, want, sp.len) == 0;
}

START_TEST(test_accept_value)
{
	char out[29];

	/* RFC 6455 1.3. */
	ck_assert_int_eq(ws_accept_value("dGhlIHNhbXBsZSBub25jZQ==", 24, out), 0);
	ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}
END_TEST

START_TEST(test_request_valid)
{
	struct fails f = {0};

	for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
		const struct req_case *tc = &valid_cases[i];
		struct ws_request r;
		char resp[WS_RESPONSE_MAX], want[WS_RESPONSE_MAX];
		size_t n;

		if (parse_whole(tc, &r) != WS_REQ_DONE || r.status != 101) {
			fail_note(&f, "%s: status %d (%s)", tc->name, r.status, r.reason);
			continue;
		}
		if (r.length != strlen(tc->req))
			fail_note(&f, "%s: length %u", tc->name, r.length);
		if ((tc->protocol == NULL) != (r.protocol == NULL) ||
		    (tc->protocol && strcmp(tc->protocol, r.protocol) != 0))
			fail_note(&f, "%s: protocol %s", tc->name, r.protocol ? r.protocol : "none");
		if (!span_is(tc->req, r.origin, tc->origin))
			fail_note(&f, "%s: origin", tc->name);
		if (!span_is(tc->req, r.forwarded_for, tc->xff))
			fail_note(&f, "%s: x-forwarded-for", tc->name);
		n = ws_response(&r, tc->req, resp, sizeof(resp));
		snprintf(want, sizeof(want), "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n", tc->accept,
			 tc->protocol ? "Sec-WebSocket-Protocol: " : "",
			 tc->protocol ? tc->protocol : "", tc->protocol ? "\r\n" : "");
		if (n != strlen(want) || memcmp(resp, want, n) != 0)
			fail_note(&f, "%s: response %.*s", tc->name, (int)n, resp);
	}
	FAILS_CHECK(&f);
}
END_TEST

START_TEST(test_request_refused)
{
	struct fails f = {0};

	for (size_t i = 0; i < sizeof(refused_cases) / sizeof(refused_cases[0]); i++) {
		const struct req_case *tc = &refused_cases[i];
		struct ws_request r;
		char resp[WS_RESPONSE_MAX], head[64];
		size_t n;

		if (parse_whole(tc, &r) != WS_REQ_DONE || r.status != tc->status || !r.reason) {
			fail_note(&f, "%s: status %d, want %d", tc->name, r.status, tc->status);
			continue;
		}
		n = ws_response(&r, tc->req, resp, sizeof(resp));
		snprintf(head, sizeof(head), "HTTP/1.1 %d ", tc->status);
		if (n == 0 || strncmp(resp, head, strlen(head)) != 0 || !strstr(resp, r.reason))
			fail_note(&f, "%s: response %.*s", tc->name, (int)n, resp);
	}
	FAILS_CHECK(&f);
}
END_TEST

/* Same result fed in two parts at every split point, and byte by byte in exact-size buffers. */
static void check_split(const struct req_case *tc, struct fails *f)
{
	size_t len = strlen(tc->req);
	struct ws_request whole, r;

	parse_whole(tc, &whole);
	for (size_t k = 1; k < len; k++) {
		ws_request_init(&r);
		if (ws_request_parse(&r, tc->req, k, &tc->opts) == WS_REQ_DONE &&
		    whole.status == 101) {
			fail_note(f, "%s: done early at %zu", tc->name, k);
			return;
		}
		ws_request_parse(&r, tc->req, len, &tc->opts);
		if (r.status != whole.status || r.length != whole.length ||
		    r.protocol != whole.protocol || r.key.off != whole.key.off) {
			fail_note(f, "%s: split at %zu gives %d", tc->name, k, r.status);
			return;
		}
	}
	ws_request_init(&r);
	for (size_t k = 1; k <= len; k++) {
		char *p = malloc(k);
		int rc;

		memcpy(p, tc->req, k);
		rc = ws_request_parse(&r, p, k, &tc->opts);
		free(p);
		if (rc == WS_REQ_DONE) {
			/* Refusals may come before the blank line only for the size limit. */
			if (r.status != whole.status || (r.status != 431 && k != len))
				fail_note(f, "%s: byte by byte: %d at %zu", tc->name, r.status, k);
			return;
		}
	}
	fail_note(f, "%s: byte by byte never done", tc->name);
}

START_TEST(test_request_split)
{
	struct fails f = {0};

	for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++)
		check_split(&valid_cases[i], &f);
	for (size_t i = 0; i < sizeof(refused_cases) / sizeof(refused_cases[0]); i++)
		check_split(&refused_cases[i], &f);
	FAILS_CHECK(&f);
}
END_TEST

START_TEST(test_request_limits)
{
	struct ws_options o = {0};
	struct ws_request r;
	char *big = malloc(8192);
	size_t n = strlen(req_mqttjs) - 2;

	/* Exactly at the limit is accepted; one byte more is refused without the blank line. */
	o.max_headers = strlen(req_mqttjs);
	ws_request_init(&r);
	ck_assert_int_eq(ws_request_parse(&r, req_mqttjs, strlen(req_mqttjs), &o), WS_REQ_DONE);
	ck_assert_int_eq(r.status, 101);
	o.max_headers--;
	ws_request_init(&r);
	ck_assert_int_eq(ws_request_parse(&r, req_mqttjs, strlen(req_mqttjs) - 1, &o), WS_REQ_DONE);
	ck_assert_int_eq(r.status, 431);
	/* The default is 4096: a 5000-byte cookie is too much, a 3000-byte one is fine. */
	o.max_headers = 0;
	for (size_t cookie = 3000; cookie <= 5000; cookie += 2000) {
		size_t len;

		memcpy(big, req_mqttjs, n);
		len = n + (size_t)snprintf(big + n, 32, "Cookie: ");
		memset(big + len, 'c', cookie);
		len += cookie;
		memcpy(big + len, "\r\n\r\n", 4);
		len += 4;
		ws_request_init(&r);
		ck_assert_int_eq(ws_request_parse(&r, big, len, &o), WS_REQ_DONE);
		ck_assert_int_eq(r.status, cookie == 3000 ? 101 : 431);
	}
	/* Bytes after the blank line are the first frames: not looked at. */
	memcpy(big, req_mqttjs, strlen(req_mqttjs));
	memcpy(big + strlen(req_mqttjs), "\x82\x80garbage", 9);
	ws_request_init(&r);
	ck_assert_int_eq(ws_request_parse(&r, big, strlen(req_mqttjs) + 9, &o), WS_REQ_DONE);
	ck_assert_int_eq(r.status, 101);
	ck_assert_uint_eq(r.length, strlen(req_mqttjs));
	free(big);
}
END_TEST

START_TEST(test_response_error)
{
	char out[WS_RESPONSE_MAX];
	size_t n = ws_response_error(426, "Sec-WebSocket-Version must be 13", out, sizeof(out));
	const char *body;

	ck_assert_uint_gt(n, 0);
	ck_assert_uint_eq(n, strlen(out));
	ck_assert(strncmp(out, "HTTP/1.1 426 Upgrade Required\r\n", 31) == 0);
	ck_assert_ptr_nonnull(strstr(out, "\r\nSec-WebSocket-Version: 13\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "\r\nUpgrade: websocket\r\n"));
	body = strstr(out, "\r\n\r\n") + 4;
	ck_assert_ptr_nonnull(strstr(out, "Content-Length: 33\r\n"));
	ck_assert_str_eq(body, "Sec-WebSocket-Version must be 13\n");
	n = ws_response_error(404, NULL, out, sizeof(out));
	ck_assert(strncmp(out, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
	ck_assert_ptr_nonnull(strstr(out, "Connection: close\r\n"));
	/* Too small a buffer: nothing, not a truncated response. */
	ck_assert_uint_eq(ws_response_error(404, NULL, out, 40), 0);
}
END_TEST

/* --- frames --- */

static const uint8_t test_key[4] = {0x37, 0xfa, 0x21, 0x3d};

/* A masked client frame; b0 is FIN/RSV/opcode. Returns its size. */
static size_t cframe(uint8_t *out, uint8_t b0, const void *payload, size_t n)
{
	const uint8_t *p = payload;
	size_t h = 0;

	out[h++] = b0;
	if (n < 126) {
		out[h++] = (uint8_t)(0x80 | n);
	} else if (n <= 0xffff) {
		out[h++] = 0x80 | 126;
		out[h++] = (uint8_t)(n >> 8);
		out[h++] = (uint8_t)n;
	} else {
		out[h++] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			out[h++] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
	}
	memcpy(out + h, test_key, 4);
	h += 4;
	for (size_t i = 0; i < n; i++)
		out[h + i] = p[i] ^ test_key[i & 3];
	return h + n;
}

struct dec_log {
	uint8_t *data;     /* payload, in order */
	size_t len;
	char events[512];  /* control frames: "ping:abc;close:1000;" */
	int rc;
	uint16_t error;
};

/* Feeds stream in chunks (0: random sizes), each in an exact-size copy so over-reads show. */
static void run_decoder(struct ws_decoder *d, const uint8_t *s, size_t n, size_t chunk,
			struct dec_log *log)
{
	size_t pos = 0;

	memset(log, 0, sizeof(*log));
	log->data = malloc(n + 1);
	while (pos < n) {
		size_t k = chunk ? chunk : 1 + test_rng(70000);
		size_t in = 0, o = 0, el;
		uint8_t *w;
		int rc;

		if (k > n - pos)
			k = n - pos;
		w = malloc(k);
		memcpy(w, s + pos, k);
		while ((rc = ws_decode(d, w, k, &in, &o)) == WS_DEC_CONTROL) {
			el = strlen(log->events);
			if (d->opcode == WS_OP_CLOSE)
				snprintf(log->events + el, sizeof(log->events) - el, "close:%u;",
					 ws_close_code(d));
			else
				snprintf(log->events + el, sizeof(log->events) - el, "%s:%.*s;",
					 d->opcode == WS_OP_PING ? "ping" : "pong", d->ctl_len,
					 (const char *)d->ctl);
		}
		REQUIRE(o <= in && (rc == WS_DEC_ERROR || in == k), "decoder stopped at %zu of %zu", in, k);
		memcpy(log->data + log->len, w, o);
		log->len += o;
		free(w);
		if (rc == WS_DEC_ERROR) {
			log->rc = rc;
			log->error = d->error;
			REQUIRE(d->why != NULL, "error without a reason");
			return;
		}
		pos += k;
	}
}

START_TEST(test_decode_rfc_examples)
{
	/* RFC 6455 5.7: a masked "Hello", and the unmasked frames a client must not send. */
	static const uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
	static const uint8_t unmasked[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
	uint8_t s[400], big[300];
	struct ws_decoder d;
	struct dec_log log;
	size_t n;

	ws_decoder_init(&d, 0, false);
	run_decoder(&d, hello, sizeof(hello), 0, &log);
	ck_assert_int_eq(log.rc, 0);
	ck_assert_uint_eq(log.len, 5);
	ck_assert(memcmp(log.data, "Hello", 5) == 0);
	free(log.data);

	ws_decoder_init(&d, 0, false);
	run_decoder(&d, unmasked, sizeof(unmasked), 0, &log);
	ck_assert_int_eq(log.rc, WS_DEC_ERROR);
	ck_assert_uint_eq(log.error, WS_CLOSE_PROTOCOL);
	free(log.data);

	/* Fragmented "Hel" + "lo", a ping "Hello" between, 256 bytes with a 16-bit length. */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)i;
	n = cframe(s, 0x01, "Hel", 3);
	n += cframe(s + n, 0x89, "Hello", 5);
	n += cframe(s + n, 0x80, "lo", 2);
	n += cframe(s + n, 0x82, big, 256);
	ck_assert_uint_eq(s[n - 256 - 8 + 1], 0x80 | 126);
	ws_decoder_init(&d, 0, false);
	run_decoder(&d, s, n, 0, &log);
	ck_assert_int_eq(log.rc, 0);
	ck_assert_str_eq(log.events, "ping:Hello;");
	ck_assert_uint_eq(log.len, 5 + 256);
	ck_assert(memcmp(log.data, "Hello", 5) == 0 && memcmp(log.data + 5, big, 256) == 0);
	free(log.data);
}
END_TEST

START_TEST(test_decode_byte_by_byte)
{
	uint8_t s[2048], payload[300];
	struct ws_decoder d;
	struct dec_log one, bytes;
	size_t n = 0;

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7);
	/* Several MQTT packets in one frame, one packet over many frames, all control kinds. */
	n += cframe(s + n, 0x82, payload, 300);
	n += cframe(s + n, 0x02, payload, 0);
	n += cframe(s + n, 0x8a, "p1", 2);
	n += cframe(s + n, 0x00, payload, 17);
	n += cframe(s + n, 0x89, "", 0);
	n += cframe(s + n, 0x00, payload + 17, 126);
	n += cframe(s + n, 0x80, payload + 143, 1);
	n += cframe(s + n, 0x81, payload, 125);
	n += cframe(s + n, 0x88, "\x03\xe8" "bye", 5);
	ws_decoder_init(&d, 0, false);
	run_decoder(&d, s, n, n, &one);
	ws_decoder_init(&d, 0, false);
	run_decoder(&d, s, n, 1, &bytes);
	ck_assert_int_eq(one.rc, 0);
	ck_assert_int_eq(bytes.rc, 0);
	ck_assert_str_eq(one.events, "pong:p1;ping:;close:1000;");
	ck_assert_str_eq(bytes.events, one.events);
	ck_assert_uint_eq(one.len, 300 + 144 + 125);
	ck_assert_uint_eq(bytes.len, one.len);
	ck_assert(memcmp(one.data, bytes.data, one.len) == 0);
	ck_assert(memcmp(one.data, payload, 300) == 0);
	ck_assert(memcmp(one.data + 300, payload, 144) == 0);
	free(one.data);
	free(bytes.data);
}
END_TEST

struct err_case {
	const char *name;
	uint8_t bytes[16];
	size_t len;
	uint16_t status;
	uint64_t max_message;
	bool binary_only;
};

/* Masked headers (mask 0) with no payload yet: errors are found from the header alone
 * except for close frames, whose payload follows. */
static const struct err_case err_cases[] = {
	{"unmasked", {0x82, 0x00}, 2, 1002, 0, false},
	{"rsv1", {0xc2, 0x80, 0, 0, 0, 0}, 6, 1002, 0, false},
	{"rsv2", {0xa2, 0x80, 0, 0, 0, 0}, 6, 1002, 0, false},
	{"rsv3", {0x92, 0x80, 0, 0, 0, 0}, 6, 1002, 0, false},
	{"opcode 3", {0x83, 0x80, 0, 0, 0, 0}, 6, 1002, 0, false},
	{"opcode 7", {0x87, 0x80, 0, 0, 0, 0}, 6, 1002, 0, false},
	{"opcode B", {0x8b, 0x80, 0, 0, 0, 0}, 6, 1002, 0, false},
	{"opcode F", {0x8f, 0x80, 0, 0, 0, 0}, 6, 1002, 0, false},
	{"fragmented ping", {0x09, 0x80, 0, 0, 0, 0}, 6, 1002, 0, false},
	{"ping 126", {0x89, 0xfe, 0, 126, 0, 0, 0, 0}, 8, 1002, 0, false},
	{"close 127", {0x88, 0xff}, 2, 1002, 0, false},
	{"top bit", {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 14, 1002, 0, false},
	{"lone continuation", {0x80, 0x80, 0, 0, 0, 0}, 6, 1002, 0, false},
	{"new message inside", {0x02, 0x80, 0, 0, 0, 0, 0x82, 0x80, 0, 0, 0, 0}, 12, 1002, 0, false},
	{"text refused", {0x81, 0x80, 0, 0, 0, 0}, 6, 1003, 0, true},
	{"too big", {0x82, 0x85, 0, 0, 0, 0}, 6, 1009, 4, false},
	{"too big fragmented", {0x02, 0x83, 0, 0, 0, 0, 1, 2, 3, 0x80, 0x82, 0, 0, 0, 0}, 15, 1009, 4,
	 false},
	{"huge", {0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, 14, 1009, 0,
	 false},
	{"close 1 byte", {0x88, 0x81, 0, 0, 0, 0, 3}, 7, 1002, 0, false},
	{"close 999", {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe7}, 8, 1002, 0, false},
	{"close 1004", {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xec}, 8, 1002, 0, false},
	{"close 1005", {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xed}, 8, 1002, 0, false},
	{"close 1006", {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xee}, 8, 1002, 0, false},
	{"close 1015", {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xf7}, 8, 1002, 0, false},
	{"close 2999", {0x88, 0x82, 0, 0, 0, 0, 0x0b, 0xb7}, 8, 1002, 0, false},
	{"close 5000", {0x88, 0x82, 0, 0, 0, 0, 0x13, 0x88}, 8, 1002, 0, false},
};

START_TEST(test_decode_errors)
{
	struct fails f = {0};

	for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		const struct err_case *tc = &err_cases[i];

		for (size_t chunk = 1; chunk <= tc->len; chunk += tc->len - 1) {
			struct ws_decoder d;
			struct dec_log log;
			size_t in = 0, o = 0;
			uint8_t again[2] = {0x82, 0x80};

			ws_decoder_init(&d, tc->max_message, tc->binary_only);
			run_decoder(&d, tc->bytes, tc->len, chunk, &log);
			free(log.data);
			if (log.rc != WS_DEC_ERROR || log.error != tc->status)
				fail_note(&f, "%s (chunk %zu): rc %d status %u", tc->name, chunk, log.rc,
					  log.error);
			/* A failed decoder stays failed. */
			else if (ws_decode(&d, again, 2, &in, &o) != WS_DEC_ERROR)
				fail_note(&f, "%s: decodes again", tc->name);
		}
	}
	FAILS_CHECK(&f);
}
END_TEST

START_TEST(test_decode_accepted_edges)
{
	static const uint16_t codes[] = {1000, 1001, 1003, 1007, 1011, 1012, 1014, 3000, 4999};
	uint8_t s[64];
	struct ws_decoder d;
	struct dec_log log;
	char want[32];

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		uint8_t p[2] = {(uint8_t)(codes[i] >> 8), (uint8_t)codes[i]};
		size_t n = cframe(s, 0x88, p, 2);

		ws_decoder_init(&d, 0, false);
		run_decoder(&d, s, n, 0, &log);
		free(log.data);
		snprintf(want, sizeof(want), "close:%u;", codes[i]);
		ck_assert_str_eq(log.events, want);
	}
	/* A close without a code; text accepted by default (as mosquitto does); a message at the limit. */
	ws_decoder_init(&d, 5, false);
	size_t n = cframe(s, 0x81, "abc", 3);
	n += cframe(s + n, 0x02, "de", 2);
	n += cframe(s + n, 0x80, "", 0);
	n += cframe(s + n, 0x88, "", 0);
	run_decoder(&d, s, n, 0, &log);
	ck_assert_int_eq(log.rc, 0);
	ck_assert_str_eq(log.events, "close:1005;");
	ck_assert_uint_eq(log.len, 5);
	free(log.data);
	/* 64-bit length form for a small payload is tolerated (minimal length is the sender's duty). */
	static const uint8_t long_form[] = {0x82, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 'x'};
	ws_decoder_init(&d, 0, false);
	run_decoder(&d, long_form, sizeof(long_form), 0, &log);
	ck_assert_int_eq(log.rc, 0);
	ck_assert_uint_eq(log.len, 1);
	free(log.data);
}
END_TEST

/* 8 MiB messages: one frame, and fragments, fed in random chunks; the limit is exact. */
START_TEST(test_decode_8mib)
{
	size_t size = 8 * MIB, n;
	uint8_t *payload = malloc(size), *s = malloc(size + 4096);
	struct ws_decoder d;
	struct dec_log log;

	test_rng_seed(6455);
	for (size_t i = 0; i < size; i++)
		payload[i] = (uint8_t)test_rng(256);
	n = cframe(s, 0x82, payload, size);
	ws_decoder_init(&d, size, true);
	run_decoder(&d, s, n, 0, &log);
	ck_assert_int_eq(log.rc, 0);
	ck_assert_uint_eq(log.len, size);
	ck_assert(memcmp(log.data, payload, size) == 0);
	free(log.data);

	n = 0;
	for (size_t off = 0, part; off < size; off += part) {
		part = off == 0 ? 100000 : off + MIB < size ? MIB : size - off;
		n += cframe(s + n, (uint8_t)((off == 0 ? 0x02 : 0x00) | (off + part == size ? 0x80 : 0)),
			    payload + off, part);
		if (off == 0)
			n += cframe(s + n, 0x89, "keepalive", 9);
	}
	ws_decoder_init(&d, size, true);
	run_decoder(&d, s, n, 0, &log);
	ck_assert_int_eq(log.rc, 0);
	ck_assert_str_eq(log.events, "ping:keepalive;");
	ck_assert_uint_eq(log.len, size);
	ck_assert(memcmp(log.data, payload, size) == 0);
	free(log.data);

	ws_decoder_init(&d, size - 1, true);
	run_decoder(&d, s, n, 0, &log);
	ck_assert_int_eq(log.rc, WS_DEC_ERROR);
	ck_assert_uint_eq(log.error, WS_CLOSE_TOO_BIG);
	free(log.data);
	free(payload);
	free(s);
}
END_TEST

START_TEST(test_encode_sizes)
{
	static const struct {
		uint64_t len;
		size_t size;
		uint8_t head[10];
	} cases[] = {
		{0, 2, {0x82, 0}},
		{125, 2, {0x82, 125}},
		{126, 4, {0x82, 126, 0, 126}},
		{65535, 4, {0x82, 126, 0xff, 0xff}},
		{65536, 10, {0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
		{8 * MIB, 10, {0x82, 127, 0, 0, 0, 0, 0, 0x80, 0, 0}},
	};
	uint8_t out[WS_FRAME_HEADER_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_uint_eq(ws_frame_header_size(cases[i].len), cases[i].size);
		ck_assert_uint_eq(ws_frame_header(out, WS_OP_BINARY, true, cases[i].len), cases[i].size);
		ck_assert_msg(memcmp(out, cases[i].head, cases[i].size) == 0, "len %llu",
			      (unsigned long long)cases[i].len);
	}
	ck_assert_uint_eq(ws_close_frame(out, 1002), 4);
	ck_assert(memcmp(out, "\x88\x02\x03\xea", 4) == 0);
	ck_assert_uint_eq(ws_close_frame(out, 0), 2);
	ck_assert(memcmp(out, "\x88\x00", 2) == 0);
}
END_TEST

/* --- the transport over a scripted inner connection --- */

/* An inner connection whose reads come from a script and whose writes take a budget. */
struct script {
	uint8_t in[8192];
	size_t in_len, in_off;
	uint8_t out[1 << 20];
	size_t out_len;
	size_t allow;   /* bytes writes may still take (then EAGAIN) */
	size_t chunk;   /* most bytes one read returns (0: no limit) */
	int retry;      /* writes that fail with EAGAIN the way TLS does: ... */
	uint8_t again[64]; /* ... the next write must begin with the same bytes */
	size_t again_len;
	bool eof;
	int closed;
};

static ssize_t script_read(struct conn *c, void *buf, size_t len)
{
	struct script *s = c->state;
	size_t n = s->in_len - s->in_off;

	if (n == 0) {
		if (s->eof)
			return 0;
		errno = EAGAIN;
		return -1;
	}
	if (n > len)
		n = len;
	if (s->chunk && n > s->chunk)
		n = s->chunk;
	memcpy(buf, s->in + s->in_off, n);
	s->in_off += n;
	return (ssize_t)n;
}

static ssize_t script_writev(struct conn *c, const struct iovec *iov, int iovcnt)
{
	struct script *s = c->state;
	size_t n = 0, g = 0;
	uint8_t head[64];

	for (int i = 0; i < iovcnt && g < sizeof(head); i++) {
		size_t k = iov[i].iov_len < sizeof(head) - g ? iov[i].iov_len : sizeof(head) - g;

		memcpy(head + g, iov[i].iov_base, k);
		g += k;
	}
	REQUIRE(g >= s->again_len && memcmp(head, s->again, s->again_len) == 0,
		"a repeated write changed its bytes");
	s->again_len = 0;
	if (s->retry > 0) {
		s->retry--;
		memcpy(s->again, head, g);
		s->again_len = g;
		errno = EAGAIN;
		return -1;
	}
	for (int i = 0; i < iovcnt && s->allow > 0; i++) {
		size_t k = iov[i].iov_len < s->allow ? iov[i].iov_len : s->allow;

		REQUIRE(s->out_len + k <= sizeof(s->out), "script output full");
		memcpy(s->out + s->out_len, iov[i].iov_base, k);
		s->out_len += k;
		s->allow -= k;
		n += k;
	}
	if (n == 0) {
		errno = EAGAIN;
		return -1;
	}
	return (ssize_t)n;
}

static void script_close(struct conn *c)
{
	((struct script *)c->state)->closed++;
}

static const struct conn_type script_type = {
	.name = "script", .read = script_read, .writev = script_writev, .close = script_close,
};

static void script_feed(struct script *s, const void *p, size_t n)
{
	REQUIRE(s->in_len + n <= sizeof(s->in), "script input full");
	memcpy(s->in + s->in_len, p, n);
	s->in_len += n;
}

/* A WebSocket over an empty script whose writes may take allow bytes. */
static void script_start(struct conn *c, struct script *s, const struct ws_options *o, size_t allow)
{
	struct conn inner = {&script_type, 1000, s};

	memset(s, 0, sizeof(*s));
	s->allow = allow;
	ck_assert_int_eq(conn_ws_init(c, inner, o), 0);
	ck_assert_int_eq(c->fd, 1000);
}

/* Opens a WebSocket over a script; the client's request is fed, the 101 consumed. */
static void script_open(struct conn *c, struct script *s, const struct ws_options *o)
{
	char buf[64];

	script_start(c, s, o, SIZE_MAX);
	script_feed(s, req_paho, strlen(req_paho));
	errno = 0;
	ck_assert_int_eq(conn_read(c, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert(s->out_len > 12 && memcmp(s->out, "HTTP/1.1 101", 12) == 0);
	s->out_len = 0;
}

/* Parses one server frame from out at *pos: checks it is unmasked and FIN, returns its opcode. */
static int server_frame(const uint8_t *out, size_t len, size_t *pos, const uint8_t **payload,
			size_t *plen)
{
	const uint8_t *p = out + *pos;
	size_t h = 2, n;

	REQUIRE(len - *pos >= 2, "truncated frame");
	REQUIRE((p[0] & 0xf0) == 0x80 && !(p[1] & 0x80), "bad server frame %02x %02x", p[0], p[1]);
	n = p[1] & 0x7f;
	if (n == 126) {
		n = (size_t)p[2] << 8 | p[3];
		h = 4;
	} else if (n == 127) {
		n = 0;
		for (int i = 0; i < 8; i++)
			n = n << 8 | p[2 + i];
		h = 10;
	}
	REQUIRE(len - *pos >= h + n, "truncated frame payload");
	*payload = p + h;
	*plen = n;
	*pos += h + n;
	return p[0] & 0x0f;
}

START_TEST(test_conn_read_stream)
{
	struct ws_options o = {.path = "/mqtt"};
	struct script s;
	struct conn c;
	uint8_t f[256], buf[256];
	size_t n;
	size_t mem0 = mem_current();

	script_open(&c, &s, &o);
	ck_assert_str_eq(conn_ws_origin(&c), "https://127.0.0.1:56511");
	ck_assert_ptr_null(conn_ws_forwarded_for(&c));
	/* Idle after the handshake: the state struct and the Origin copy, nothing else. */
	ck_assert_uint_lt(mem_current() - mem0, 1024);
	/* A CONNECT split over two frames, then two packets in one frame, a ping between. */
	n = cframe(f, 0x82, "\x10\x0c\x00\x04MQ", 6);
	n += cframe(f + n, 0x82, "TT\x04\x02\x00\x3c\x00\x00", 8);
	n += cframe(f + n, 0x89, "hb", 2);
	n += cframe(f + n, 0x82, "\xc0\x00\xc0\x00", 4);
	script_feed(&s, f, n);
	ck_assert_int_eq(conn_read(&c, buf, sizeof(buf)), 18);
	ck_assert(memcmp(buf, "\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00\xc0\x00\xc0\x00", 18) == 0);
	ck_assert(s.out_len == 4 && memcmp(s.out, "\x8a\x02hb", 4) == 0);
	ck_assert_uint_eq(conn_pending(&c), 0);
	ck_assert_uint_eq(conn_wants(&c), 0);
	errno = 0;
	ck_assert_int_eq(conn_read(&c, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EAGAIN);
	/* A small caller buffer takes the stream in pieces. */
	n = cframe(f, 0x82, "0123456789", 10);
	script_feed(&s, f, n);
	ck_assert_int_eq(conn_read(&c, buf, 4), 4);
	ck_assert_int_eq(conn_read(&c, buf + 4, 4), 4);
	ck_assert_int_eq(conn_read(&c, buf + 8, 4), 2);
	ck_assert(memcmp(buf, "0123456789", 10) == 0);
	/* A flood of pongs read a byte at a time: the worker gets control back
	 * (EAGAIN while input remains), and the data behind the flood still arrives. */
	s.chunk = 1;
	for (int i = 0; i < 20; i++)
		script_feed(&s, f, cframe(f, 0x8a, "", 0));
	script_feed(&s, f, cframe(f, 0x82, "ok", 2));
	ck_assert_int_eq(conn_read(&c, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EAGAIN);
	for (n = 0; n < 2;) {
		ssize_t r = conn_read(&c, buf + n, sizeof(buf) - n);

		if (r < 0)
			ck_assert_int_eq(errno, EAGAIN);
		else
			n += (size_t)r;
	}
	ck_assert(n == 2 && memcmp(buf, "ok", 2) == 0);
	conn_close(&c);
	ck_assert_int_eq(s.closed, 1);
	ck_assert_int_eq(c.fd, -1);
	ck_assert_uint_eq(mem_current(), mem0);
}
END_TEST

START_TEST(test_conn_handshake_paths)
{
	struct ws_options o = {.path = "/mqtt"};
	struct script s;
	struct conn c;
	char buf[512];
	uint8_t f[64];
	size_t n, len = strlen(req_mqttjs);

	/* Byte by byte: EAGAIN until the blank line; the frame that follows at once is data. */
	script_start(&c, &s, &o, SIZE_MAX);
	for (size_t i = 0; i < len - 1; i++) {
		script_feed(&s, req_mqttjs + i, 1);
		ck_assert_int_eq(conn_read(&c, buf, sizeof(buf)), -1);
		ck_assert_int_eq(errno, EAGAIN);
		ck_assert_uint_eq(s.out_len, 0);
	}
	script_feed(&s, req_mqttjs + len - 1, 1);
	n = cframe(f, 0x82, "\x10\x00", 2);
	script_feed(&s, f, n);
	ck_assert_int_eq(conn_read(&c, buf, sizeof(buf)), 2);
	ck_assert(memcmp(s.out, "HTTP/1.1 101 Switching Protocols\r\n", 34) == 0);
	ck_assert_ptr_nonnull(strstr((char *)s.out, "Sec-WebSocket-Accept: 4tQ9S9hI/nkUm885xM9rNctlm/E=\r\n"));
	conn_close(&c);

	/* Refused: the error response goes out, the read fails with EPROTO and says why. */
	script_start(&c, &s, &o, SIZE_MAX);
	script_feed(&s, "GET /other HTTP/1.1\r\n\r\n", 23);
	ck_assert_int_eq(conn_read(&c, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EPROTO);
	ck_assert(memcmp(s.out, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
	ck_assert_ptr_nonnull(strstr(conn_error(&c), "404"));
	ck_assert_int_eq(conn_writev(&c, &(struct iovec){buf, 1}, 1), -1);
	conn_close(&c);

	/* The peer goes away during the handshake: end of stream. */
	script_start(&c, &s, &o, SIZE_MAX);
	s.eof = true;
	script_feed(&s, "GET /mqtt HT", 12);
	ck_assert_int_eq(conn_read(&c, buf, sizeof(buf)), 0);
	conn_close(&c);

	/* The 101 written a byte at a time: wants EV_WRITE until it is out; writes wait for it. */
	script_start(&c, &s, &o, 1);
	script_feed(&s, req_paho, strlen(req_paho));
	ck_assert_int_eq(conn_read(&c, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_uint_eq(conn_wants(&c), EV_WRITE);
	ck_assert_int_eq(conn_writev(&c, &(struct iovec){"x", 1}, 1), -1);
	ck_assert_int_eq(errno, EAGAIN);
	while (conn_wants(&c) & EV_WRITE) {
		s.allow = 7;
		(void)conn_read(&c, buf, sizeof(buf));
	}
	ck_assert(s.out_len > 100 && memcmp(s.out + s.out_len - 4, "\r\n\r\n", 4) == 0);
	s.allow = SIZE_MAX;
	ck_assert_int_eq(conn_writev(&c, &(struct iovec){"x", 1}, 1), 1);
	ck_assert(memcmp(s.out + s.out_len - 3, "\x82\x01x", 3) == 0);
	conn_close(&c);
}
END_TEST

/* Writes the way client_flush does: what was taken is dropped from the front of the queue. */
START_TEST(test_conn_partial_writes)
{
	struct ws_options o = {0};
	struct script s;
	struct conn c;
	uint8_t data[70000], f[16], buf[16];
	size_t done = 0, pos = 0, plen, total = 0;
	const uint8_t *payload;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13);
	script_open(&c, &s, &o);
	/* Three bytes of room: only header bytes go; that is EAGAIN, not 0 application bytes. */
	s.allow = 3;
	ck_assert_int_eq(conn_writev(&c, &(struct iovec){data, sizeof(data)}, 1), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_uint_eq(s.out_len, 3);
	/* A ping now: the pong must wait for the frame, and the transport says it wants to write. */
	script_feed(&s, f, cframe(f, 0x89, "mid", 3));
	ck_assert_int_eq(conn_read(&c, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_uint_eq(s.out_len, 3);
	ck_assert_uint_eq(conn_wants(&c), EV_WRITE);
	while (done < sizeof(data)) {
		struct iovec iov[2] = {{data + done, 0}, {NULL, 0}};
		ssize_t w;

		/* The queue as two pieces, split at 1000 bytes from its front. */
		iov[0].iov_len = sizeof(data) - done < 1000 ? sizeof(data) - done : 1000;
		iov[1].iov_base = data + done + iov[0].iov_len;
		iov[1].iov_len = sizeof(data) - done - iov[0].iov_len;
		s.allow = 1 + test_rng(5000);
		w = conn_writev(&c, iov, 2);
		if (w < 0) {
			ck_assert_int_eq(errno, EAGAIN);
			continue;
		}
		done += (size_t)w;
	}
	s.allow = SIZE_MAX;
	ck_assert_int_eq(conn_writev(&c, NULL, 0), 0);
	ck_assert_uint_eq(conn_wants(&c), 0);
	/* One binary frame of 70000 bytes (64-bit length), then the pong. */
	ck_assert_int_eq(server_frame(s.out, s.out_len, &pos, &payload, &plen), WS_OP_BINARY);
	ck_assert_uint_eq(plen, sizeof(data));
	ck_assert(memcmp(payload, data, plen) == 0);
	ck_assert_int_eq(server_frame(s.out, s.out_len, &pos, &payload, &plen), WS_OP_PONG);
	ck_assert(plen == 3 && memcmp(payload, "mid", 3) == 0);
	ck_assert_uint_eq(pos, s.out_len);
	/* Frame sizes around the length-encoding edges. */
	static const size_t sizes[] = {1, 125, 126, 65535, 65536};
	for (size_t i = 0; i < 5; i++) {
		s.out_len = pos = 0;
		ck_assert_int_eq(conn_writev(&c, &(struct iovec){data, sizes[i]}, 1), (ssize_t)sizes[i]);
		ck_assert_int_eq(server_frame(s.out, s.out_len, &pos, &payload, &plen), WS_OP_BINARY);
		ck_assert_uint_eq(plen, sizes[i]);
		ck_assert_uint_eq(s.out_len, ws_frame_header_size(sizes[i]) + sizes[i]);
		total += plen;
	}
	ck_assert_uint_eq(total, 1 + 125 + 126 + 65535 + 65536);
	conn_close(&c);
}
END_TEST

START_TEST(test_conn_close_and_errors)
{
	struct ws_options o = {0};
	struct script s;
	struct conn c;
	uint8_t f[64], buf[64];
	size_t n;

	/* Data and a close frame in one read: the data first, then the end; the close is echoed. */
	script_open(&c, &s, &o);
	n = cframe(f, 0x82, "\xe0\x00", 2);
	n += cframe(f + n, 0x88, "\x03\xe8", 2);
	n += cframe(f + n, 0x82, "ignored", 7);
	script_feed(&s, f, n);
	ck_assert_int_eq(conn_read(&c, buf, sizeof(buf)), 2);
	ck_assert(s.out_len == 4 && memcmp(s.out, "\x88\x02\x03\xe8", 4) == 0);
	ck_assert_uint_gt(conn_pending(&c), 0);
	ck_assert_int_eq(conn_read(&c, buf, sizeof(buf)), 0);
	ck_assert_int_eq(conn_read(&c, buf, sizeof(buf)), 0);
	ck_assert_int_eq(conn_writev(&c, &(struct iovec){buf, 1}, 1), -1);
	ck_assert_int_eq(errno, EPIPE);
	conn_close(&c);
	ck_assert_uint_eq(s.out_len, 4); /* no second close frame */

	/* A close without a status is answered without one. */
	script_open(&c, &s, &o);
	script_feed(&s, f, cframe(f, 0x88, "", 0));
	ck_assert_int_eq(conn_read(&c, buf, sizeof(buf)), 0);
	ck_assert(s.out_len == 2 && memcmp(s.out, "\x88\x00", 2) == 0);
	conn_close(&c);

	/* An unmasked frame: close 1002, EPROTO, and a reason for the log. */
	script_open(&c, &s, &o);
	script_feed(&s, "\x82\x02\x10\x00", 4);
	ck_assert_int_eq(conn_read(&c, buf, sizeof(buf)), -1);
	ck_assert_int_eq(errno, EPROTO);
	ck_assert(s.out_len == 4 && memcmp(s.out, "\x88\x02\x03\xea", 4) == 0);
	ck_assert_ptr_nonnull(strstr(conn_error(&c), "not masked"));
	conn_close(&c);

	/* Our own close: the broker ends an open connection with 1000. */
	script_open(&c, &s, &o);
	conn_close(&c);
	ck_assert(s.out_len == 4 && memcmp(s.out, "\x88\x02\x03\xe8", 4) == 0);

	/* The peer closes TCP without a close frame: end of stream. */
	script_open(&c, &s, &o);
	s.eof = true;
	ck_assert_int_eq(conn_read(&c, buf, sizeof(buf)), 0);
	conn_close(&c);

	/* Pings while the pong cannot go: the first (offered to a write already)
	 * and the latest are answered, nothing grows. */
	script_open(&c, &s, &o);
	s.allow = 0;
	for (int i = 0; i < 200; i++) {
		char p[8];

		n = cframe(f, 0x89, p, (size_t)snprintf(p, sizeof(p), "p%d", i));
		script_feed(&s, f, n);
		ck_assert_int_eq(conn_read(&c, buf, sizeof(buf)), -1);
		ck_assert_int_eq(errno, EAGAIN);
	}
	s.allow = SIZE_MAX;
	ck_assert_int_eq(conn_read(&c, buf, sizeof(buf)), -1);
	ck_assert(s.out_len == 10 && memcmp(s.out, "\x8a\x02p0\x8a\x04p199", 10) == 0);
	conn_close(&c);

	/* Over TLS a pong offered to a write that must be repeated is not replaced. */
	script_open(&c, &s, &o);
	s.retry = 2;
	script_feed(&s, f, cframe(f, 0x89, "a1", 2));
	ck_assert_int_eq(conn_read(&c, buf, sizeof(buf)), -1);
	script_feed(&s, f, cframe(f, 0x89, "b2", 2));
	ck_assert_int_eq(conn_read(&c, buf, sizeof(buf)), -1);
	ck_assert(s.out_len == 8 && memcmp(s.out, "\x8a\x02" "a1\x8a\x02" "b2", 8) == 0);
	conn_close(&c);
}
END_TEST

/* --- the transport over a socketpair --- */

struct peer {
	int fd;
	const uint8_t *data;
	size_t len;
};

/* The fake client's writer: one masked 8 MiB message, in 1 MiB frames, blocking. */
static void *peer_write(void *arg)
{
	struct peer *p = arg;
	size_t cap = MIB + 16;
	uint8_t *f = malloc(cap);

	for (size_t off = 0, part; off < p->len; off += part) {
		size_t n, w = 0;

		part = p->len - off < MIB ? p->len - off : MIB;
		n = cframe(f, (uint8_t)((off == 0 ? 0x02 : 0x00) | (off + part == p->len ? 0x80 : 0)),
			   p->data + off, part);
		while (w < n) {
			ssize_t k = write(p->fd, f + w, n - w);
			if (k <= 0)
				break;
			w += (size_t)k;
		}
	}
	free(f);
	return NULL;
}

static void read_exact(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd pfd = {fd, POLLIN, 0};
		ssize_t k;

		REQUIRE(poll(&pfd, 1, 5000) == 1, "peer read timed out");
		k = read(fd, (uint8_t *)buf + got, n - got);
		REQUIRE(k > 0, "peer read failed");
		got += (size_t)k;
	}
}

/* Opens a WebSocket over a TCP-style connection on sv[0]; sv[1] is the fake client. */
static void pair_open(struct conn *c, int sv[2], const struct ws_options *o)
{
	struct conn inner;
	char resp[256];
	ssize_t n = 0;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	conn_tcp_init(&inner, sv[0]);
	ck_assert_int_eq(conn_ws_init(c, inner, o), 0);
	ck_assert_int_eq(write(sv[1], req_lws, strlen(req_lws)), (ssize_t)strlen(req_lws));
	ck_assert_int_eq(conn_read(c, resp, sizeof(resp)), -1);
	ck_assert_int_eq(errno, EAGAIN);
	n = read(sv[1], resp, sizeof(resp) - 1);
	ck_assert_int_gt(n, 0);
	resp[n] = '\0';
	ck_assert_ptr_nonnull(strstr(resp, "Sec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=\r\n"));
	ck_assert_ptr_nonnull(strstr(resp, "Sec-WebSocket-Protocol: mqtt\r\n"));
}

START_TEST(test_pair_8mib_in)
{
	struct ws_options o = {.max_message = 8 * MIB + 16};
	size_t size = 8 * MIB, got = 0;
	uint8_t *data = malloc(size), *in = malloc(size), buf[65536];
	struct peer p;
	pthread_t t;
	struct conn c;
	int sv[2];

	for (size_t i = 0; i < size; i++)
		data[i] = (uint8_t)(i ^ (i >> 9));
	pair_open(&c, sv, &o);
	p = (struct peer){sv[1], data, size};
	ck_assert_int_eq(pthread_create(&t, NULL, peer_write, &p), 0);
	while (got < size) {
		struct pollfd pfd = {sv[0], POLLIN, 0};
		ssize_t n;

		ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
		do {
			n = conn_read(&c, buf, sizeof(buf));
			if (n > 0) {
				ck_assert_uint_le(got + (size_t)n, size);
				memcpy(in + got, buf, (size_t)n);
				got += (size_t)n;
			}
		} while (n > 0 || conn_pending(&c) > 0);
		ck_assert(n < 0 && errno == EAGAIN);
	}
	pthread_join(t, NULL);
	ck_assert(memcmp(in, data, size) == 0);
	conn_close(&c);
	close(sv[1]);
	free(data);
	free(in);
}
END_TEST

/* Reads from the peer's socket until stream holds upto bytes (the server wrote them already). */
static void stream_need(int fd, uint8_t *stream, size_t *slen, size_t upto)
{
	if (*slen < upto) {
		read_exact(fd, stream + *slen, upto - *slen);
		*slen = upto;
	}
}

/* Output through a tiny send buffer: the peer sees whole frames with every byte in order. */
START_TEST(test_pair_small_sndbuf)
{
	struct ws_options o = {0};
	size_t size = 3 * MIB, done = 0, got = 0, slen = 0, pos = 0, frames = 0;
	uint8_t *data = malloc(size), *seen = malloc(size), *stream = malloc(size + 65536);
	int sv[2], small = 4096, partial = 0;
	struct conn c;
	uint8_t f[64];

	for (size_t i = 0; i < size; i++)
		data[i] = (uint8_t)(i * 31 + (i >> 12));
	pair_open(&c, sv, &o);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	while (done < size) {
		/* The server writes what fits, as client_flush does (64 KiB per call here). */
		for (;;) {
			size_t want = size - done < 65536 ? size - done : 65536;
			ssize_t w = conn_writev(&c, &(struct iovec){data + done, want}, 1);

			if (w < 0) {
				ck_assert_int_eq(errno, EAGAIN);
				break;
			}
			partial += (size_t)w < want;
			done += (size_t)w;
			if (done == size)
				break;
		}
		/* The peer takes what arrived. */
		for (;;) {
			ssize_t k = read(sv[1], stream + slen, size + 65536 - slen);
			if (k <= 0)
				break;
			slen += (size_t)k;
		}
	}
	fcntl(sv[1], F_SETFL, 0);
	while (got < size) {
		size_t h = 2, n;

		stream_need(sv[1], stream, &slen, pos + 2);
		ck_assert_uint_eq(stream[pos], 0x82);
		n = stream[pos + 1] & 0x7f;
		if (n >= 126) {
			h = n == 126 ? 4 : 10;
			stream_need(sv[1], stream, &slen, pos + h);
			n = 0;
			for (size_t i = 2; i < h; i++)
				n = n << 8 | stream[pos + i];
		}
		ck_assert_uint_le(got + n, size);
		stream_need(sv[1], stream, &slen, pos + h + n);
		memcpy(seen + got, stream + pos + h, n);
		got += n;
		pos += h + n;
		frames++;
	}
	ck_assert_uint_eq(slen, pos);
	ck_assert(memcmp(seen, data, size) == 0);
	ck_assert_int_gt(partial, 0);
	ck_assert_uint_ge(frames, size / 65536);
	/* The close handshake over the pair: the client's close is echoed, the stream ends. */
	ck_assert_int_eq(write(sv[1], f, cframe(f, 0x88, "\x03\xe9", 2)), 8);
	ck_assert_int_eq(conn_read(&c, f, sizeof(f)), 0);
	read_exact(sv[1], f, 4);
	ck_assert(memcmp(f, "\x88\x02\x03\xe9", 4) == 0);
	conn_close(&c);
	ck_assert_int_eq(read(sv[1], f, 1), 0);
	close(sv[1]);
	free(data);
	free(seen);
	free(stream);
}
END_TEST

Suite *suite_ws(void)
{
	Suite *s = suite_create("ws");
	TCase *tc = tcase_create("handshake");

	tcase_add_test(tc, test_accept_value);
	tcase_add_test(tc, test_request_valid);
	tcase_add_test(tc, test_request_refused);
	tcase_add_test(tc, test_request_split);
	tcase_add_test(tc, test_request_limits);
	tcase_add_test(tc, test_response_error);
	suite_add_tcase(s, tc);
	tc = tcase_create("frames");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_decode_rfc_examples);
	tcase_add_test(tc, test_decode_byte_by_byte);
	tcase_add_test(tc, test_decode_errors);
	tcase_add_test(tc, test_decode_accepted_edges);
	tcase_add_test(tc, test_decode_8mib);
	tcase_add_test(tc, test_encode_sizes);
	suite_add_tcase(s, tc);
	tc = tcase_create("conn");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_conn_read_stream);
	tcase_add_test(tc, test_conn_handshake_paths);
	tcase_add_test(tc, test_conn_partial_writes);
	tcase_add_test(tc, test_conn_close_and_errors);
	tcase_add_test(tc, test_pair_8mib_in);
	tcase_add_test(tc, test_pair_small_sndbuf);
	suite_add_tcase(s, tc);
	return s;
}
