/*
 * ws.c: the WebSocket protocol (RFC 6455), server side: upgrade request
 * parsing, handshake responses, client frame decoding, server frame headers.
 *
 * Pure functions over caller buffers (see ws.h); the transport that uses
 * them is conn_ws.c. The only dependency is OpenSSL's SHA-1 and base64 for
 * Sec-WebSocket-Accept.
 */
#include "config.h"

#include "ws.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <openssl/evp.h>

/* RFC 6455 1.3: appended to the client's key before hashing. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* Request flags in ws_request.seen. */
enum {
	F_UPGRADE = 1u << 0,    /* Upgrade lists websocket */
	F_CONNECTION = 1u << 1, /* Connection lists upgrade */
	F_VERSION = 1u << 2,    /* Sec-WebSocket-Version present */
	F_VERSION13 = 1u << 3,  /* ... and it is 13 */
	F_KEY = 1u << 4,        /* Sec-WebSocket-Key present */
	F_ORIGIN = 1u << 5,
	F_XFF = 1u << 6,
	F_PROTOCOL = 1u << 7,   /* the client offered at least one subprotocol */
	F_DONE = 1u << 8,       /* decided: later calls change nothing */
};

/* --- small text helpers (ASCII only: HTTP is not locale text) --- */

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Whether s[0, n) equals the lower-case literal lit, ignoring case. */
static bool ieq(const char *s, size_t n, const char *lit)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lit[i] == '\0' || lower((unsigned char)s[i]) != lit[i])
			return false;
	return lit[i] == '\0';
}

/* Whether s[0, n) equals the string t, ignoring ASCII case on both sides. */
static bool ieq_any(const char *s, size_t n, const char *t)
{
	if (strlen(t) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)s[i]) != lower((unsigned char)t[i]))
			return false;
	return true;
}

static bool eq(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* RFC 7230 tchar: what header names and methods are made of. */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_b64(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/*
 * The next element of a comma-separated header list, OWS trimmed; empty
 * elements (", ,") are skipped as RFC 7230 7 asks. False at the end.
 */
static bool list_next(const char *v, size_t n, size_t *pos, const char **tok, size_t *tlen)
{
	size_t i = *pos;

	while (i < n) {
		size_t start, end;

		while (i < n && (is_ows(v[i]) || v[i] == ','))
			i++;
		start = i;
		while (i < n && v[i] != ',')
			i++;
		end = i;
		while (end > start && is_ows(v[end - 1]))
			end--;
		if (end > start) {
			*tok = v + start;
			*tlen = end - start;
			*pos = i;
			return true;
		}
	}
	*pos = i;
	return false;
}

static bool list_has(const char *v, size_t n, const char *want)
{
	size_t pos = 0, tlen;
	const char *tok;

	while (list_next(v, n, &pos, &tok, &tlen))
		if (ieq(tok, tlen, want))
			return true;
	return false;
}

/* --- request parsing --- */

void ws_request_init(struct ws_request *r)
{
	memset(r, 0, sizeof(*r));
}

/* Keeps the first reason: it is the one the client most needs to hear. */
static void refuse(struct ws_request *r, int status, const char *why)
{
	if (r->status == 0) {
		r->status = status;
		r->reason = why;
	}
}

size_t ws_max_headers(const struct ws_options *o)
{
	size_t max = o->max_headers ? o->max_headers : WS_DEFAULT_MAX_HEADERS;

	return max < WS_MAX_HEADERS_CAP ? max : WS_MAX_HEADERS_CAP;
}

/* "GET /path HTTP/1.1": method, target and version, each checked. */
static void parse_request_line(struct ws_request *r, const char *p, size_t n, uint32_t off)
{
	size_t i = 0, method_len, t0;

	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	method_len = i;
	if (method_len == 0 || i >= n || p[i] != ' ')
		goto malformed;
	t0 = ++i;
	/* The target is visible ASCII (obs-text tolerated); no spaces inside. */
	while (i < n && (unsigned char)p[i] > 0x20 && p[i] != 0x7f)
		i++;
	if (i == t0 || i >= n || p[i] != ' ')
		goto malformed;
	r->target.off = off + (uint32_t)t0;
	r->target.len = (uint32_t)(i - t0);
	i++;
	if (n - i != 8 || memcmp(p + i, "HTTP/", 5) != 0 || p[i + 5] < '0' || p[i + 5] > '9' ||
	    p[i + 6] != '.' || p[i + 7] < '0' || p[i + 7] > '9')
		goto malformed;
	/* RFC 6455 4.2.1: HTTP/1.1 or higher; HTTP/2 and later do not upgrade this way. */
	if (p[i + 5] != '1' || p[i + 7] < '1') {
		refuse(r, 400, "not an HTTP/1.1 request");
		return;
	}
	if (!eq(p, method_len, "GET"))
		refuse(r, 400, "method is not GET");
	return;
malformed:
	refuse(r, 400, "malformed request line");
}

/* Sec-WebSocket-Protocol: the first subprotocol in the client's order that we speak. */
static void choose_protocol(struct ws_request *r, const char *v, size_t n)
{
	size_t pos = 0, tlen;
	const char *tok;

	while (list_next(v, n, &pos, &tok, &tlen)) {
		r->seen |= F_PROTOCOL;
		if (r->protocol)
			continue;
		/* Subprotocol names compare exactly: the client checks our echo byte for byte. */
		if (eq(tok, tlen, WS_PROTO_MQTT))
			r->protocol = WS_PROTO_MQTT;
		else if (eq(tok, tlen, WS_PROTO_MQTT31))
			r->protocol = WS_PROTO_MQTT31;
	}
}

/* Records what a header says; v[0, vlen) is the value at offset voff, OWS trimmed. */
static void take_header(struct ws_request *r, const char *name, size_t nlen, const char *v,
			size_t vlen, uint32_t voff)
{
	if (ieq(name, nlen, "upgrade")) {
		if (list_has(v, vlen, "websocket"))
			r->seen |= F_UPGRADE;
	} else if (ieq(name, nlen, "connection")) {
		/* A token list: Firefox sends "keep-alive, Upgrade". */
		if (list_has(v, vlen, "upgrade"))
			r->seen |= F_CONNECTION;
	} else if (ieq(name, nlen, "sec-websocket-version")) {
		if (r->seen & F_VERSION)
			refuse(r, 400, "Sec-WebSocket-Version repeated");
		r->seen |= F_VERSION;
		if (eq(v, vlen, "13"))
			r->seen |= F_VERSION13;
	} else if (ieq(name, nlen, "sec-websocket-key")) {
		if (r->seen & F_KEY)
			refuse(r, 400, "Sec-WebSocket-Key repeated");
		r->seen |= F_KEY;
		r->key.off = voff;
		r->key.len = (uint32_t)vlen;
	} else if (ieq(name, nlen, "sec-websocket-protocol")) {
		/* It may be repeated; the lists then add up, in order. */
		choose_protocol(r, v, vlen);
	} else if (ieq(name, nlen, "origin")) {
		if (!(r->seen & F_ORIGIN)) {
			r->seen |= F_ORIGIN;
			r->origin.off = voff;
			r->origin.len = (uint32_t)vlen;
		}
	} else if (ieq(name, nlen, "x-forwarded-for")) {
		/* The first line names the original client; proxies append later ones. */
		if (!(r->seen & F_XFF)) {
			r->seen |= F_XFF;
			r->forwarded_for.off = voff;
			r->forwarded_for.len = (uint32_t)vlen;
		}
	}
}

/* "Name: value". Folded lines (leading whitespace) and space before the colon are refused (RFC 7230 3.2.4). */
static void parse_header(struct ws_request *r, const char *p, size_t n, uint32_t off)
{
	size_t i = 0, name_len, v0, v1;

	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	name_len = i;
	if (name_len == 0 || i >= n || p[i] != ':') {
		refuse(r, 400, "malformed header line");
		return;
	}
	v0 = i + 1;
	while (v0 < n && is_ows(p[v0]))
		v0++;
	v1 = n;
	while (v1 > v0 && is_ows(p[v1 - 1]))
		v1--;
	for (i = v0; i < v1; i++) {
		unsigned char c = (unsigned char)p[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			refuse(r, 400, "control character in a header");
			return;
		}
	}
	take_header(r, p, name_len, p + v0, v1 - v0, off + (uint32_t)v0);
}

static bool key_valid(const char *k, size_t n)
{
	/* 16 bytes in base64: 22 characters and "==" (RFC 6455 4.2.1 item 5). */
	if (n != 24 || k[22] != '=' || k[23] != '=')
		return false;
	for (size_t i = 0; i < 22; i++)
		if (!is_b64((unsigned char)k[i]))
			return false;
	return true;
}

/* The path is the target up to its query; a configured path must match it exactly. */
static bool path_matches(const struct ws_request *r, const char *buf, const char *path)
{
	const char *t = buf + r->target.off;
	const char *q = memchr(t, '?', r->target.len);
	size_t n = q ? (size_t)(q - t) : r->target.len;

	return eq(t, n, path);
}

/* The blank line arrived: decide, in the order a client most needs to hear about. */
static int finish(struct ws_request *r, const char *buf, const struct ws_options *o)
{
	r->seen |= F_DONE;
	if (r->status)
		return WS_REQ_DONE;
	if (o->path && !path_matches(r, buf, o->path))
		refuse(r, 404, "no WebSocket endpoint at this path");
	else if (!(r->seen & F_UPGRADE))
		refuse(r, 426, "this endpoint speaks WebSocket only");
	else if (!(r->seen & F_VERSION13))
		refuse(r, 426, "Sec-WebSocket-Version must be 13");
	else if (!(r->seen & F_CONNECTION))
		refuse(r, 400, "Connection does not list upgrade");
	else if (!(r->seen & F_KEY))
		refuse(r, 400, "Sec-WebSocket-Key missing");
	else if (!key_valid(buf + r->key.off, r->key.len))
		refuse(r, 400, "Sec-WebSocket-Key is not 16 bytes in base64");
	/* Scheme and host are case-insensitive; browsers send them in lower case. */
	else if (o->origin && !((r->seen & F_ORIGIN) &&
				ieq_any(buf + r->origin.off, r->origin.len, o->origin)))
		refuse(r, 403, "Origin not allowed");
	else if ((r->seen & F_PROTOCOL) && !r->protocol)
		refuse(r, 400, "no supported subprotocol offered (mqtt, mqttv3.1)");
	else
		r->status = 101;
	return WS_REQ_DONE;
}

static bool has_control_byte(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if ((ch < 0x20 && ch != '\r' && ch != '\t') || ch == 0x7F)
			return true;
	}
	return false;
}

int ws_request_parse(struct ws_request *r, const char *buf, size_t len, const struct ws_options *o)
{
	size_t max = ws_max_headers(o);
	size_t limit = len < max ? len : max;

	/* A bad line only records the refusal: the request is still read to its
	 * blank line, so that the answer is not lost to a reset on close. */
	if (r->seen & F_DONE)
		return WS_REQ_DONE;
	while (r->pos < limit) {
		const char *nl = memchr(buf + r->pos, '\n', limit - r->pos);
		uint32_t start = r->pos;
		size_t n;

		if (!nl) {
			/* Not HTTP at all (raw MQTT on a WebSocket port, say): a control byte
			 * before the first line ends would never become a request; refuse now
			 * instead of waiting for a blank line that never comes. */
			if (r->lines == 0 && has_control_byte(buf + r->pos, limit - r->pos)) {
				r->seen |= F_DONE;
				refuse(r, 400, "not an HTTP request");
				return WS_REQ_DONE;
			}
			break;
		}
		/* Lines end in CRLF; a bare LF is tolerated (RFC 7230 3.5). */
		n = (size_t)(nl - buf) - start;
		r->pos = (uint32_t)(nl - buf) + 1;
		if (n > 0 && buf[start + n - 1] == '\r')
			n--;
		if (n == 0 && r->lines == 0)
			continue; /* a stray CRLF before the request line is ignored (RFC 7230 3.5) */
		if (n == 0) {
			r->length = r->pos;
			return finish(r, buf, o);
		}
		if (r->lines++ == 0)
			parse_request_line(r, buf + start, n, start);
		else
			parse_header(r, buf + start, n, start);
	}
	if (len >= max) {
		r->seen |= F_DONE;
		refuse(r, 431, "request headers too large");
		return WS_REQ_DONE;
	}
	return WS_REQ_MORE;
}

/* --- responses --- */

int ws_accept_value(const char *key, size_t key_len, char out[29])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc = -1;

	if (!ctx)
		goto out;
	if (EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1 ||
	    EVP_DigestUpdate(ctx, key, key_len) != 1 ||
	    EVP_DigestUpdate(ctx, ws_guid, sizeof(ws_guid) - 1) != 1 ||
	    EVP_DigestFinal_ex(ctx, md, &md_len) != 1 || md_len != 20)
		goto out;
	/* 20 bytes encode to 28 characters, NUL added. */
	if (EVP_EncodeBlock((unsigned char *)out, md, 20) != 28)
		goto out;
	rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* status, its text, extra headers, body length, body. */
#define ERROR_FMT "HTTP/1.1 %d %s\r\n%sContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s\n"
/* Sec-WebSocket-Accept, then the optional Sec-WebSocket-Protocol line in three parts. */
#define ACCEPT_FMT "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" \
	"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n"

static const char *status_text(int status)
{
	switch (status) {
	case 400:
		return "Bad Request";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 426:
		return "Upgrade Required";
	case 431:
		return "Request Header Fields Too Large";
	default:
		return "Error";
	}
}

size_t ws_response_error(int status, const char *reason, char *out, size_t cap)
{
	/* 426 must say what to upgrade to (RFC 7231 6.5.15, RFC 6455 4.4). */
	const char *extra = status == 426 ? "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
					    "Connection: Upgrade, close\r\n"
					  : "Connection: close\r\n";
	const char *body = reason ? reason : status_text(status);
	int n;

	/* Length first: the whole text must fit, or nothing is written. */
	n = snprintf(NULL, 0, ERROR_FMT, status, status_text(status), extra, strlen(body) + 1, body);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	snprintf(out, cap, ERROR_FMT, status, status_text(status), extra, strlen(body) + 1, body);
	return (size_t)n;
}

size_t ws_response(const struct ws_request *r, const char *buf, char *out, size_t cap)
{
	char accept[29];
	int n;

	if (r->status != 101)
		return ws_response_error(r->status ? r->status : 400, r->reason, out, cap);
	if (ws_accept_value(buf + r->key.off, r->key.len, accept) < 0)
		return 0;
	/* No Sec-WebSocket-Protocol when the client offered none (RFC 6455 4.2.2 /subprotocol/). */
	n = snprintf(NULL, 0, ACCEPT_FMT, accept, r->protocol ? "Sec-WebSocket-Protocol: " : "",
		     r->protocol ? r->protocol : "", r->protocol ? "\r\n" : "");
	if (n < 0 || (size_t)n >= cap)
		return 0;
	snprintf(out, cap, ACCEPT_FMT, accept, r->protocol ? "Sec-WebSocket-Protocol: " : "",
		 r->protocol ? r->protocol : "", r->protocol ? "\r\n" : "");
	return (size_t)n;
}

/* --- frame decoding --- */

void ws_decoder_init(struct ws_decoder *d, uint64_t max_message, bool binary_only)
{
	memset(d, 0, sizeof(*d));
	d->max_message = max_message ? max_message : WS_DEFAULT_MAX_MESSAGE;
	d->binary_only = binary_only;
}

static int fail(struct ws_decoder *d, uint16_t status, const char *why)
{
	d->error = status;
	d->why = why;
	return WS_DEC_ERROR;
}

static bool is_control(uint8_t op)
{
	return op & 0x8;
}

/* The first two header bytes say enough to refuse most bad frames at once. */
static int check_start(struct ws_decoder *d)
{
	uint8_t b0 = d->hdr[0], b1 = d->hdr[1];
	uint8_t op = b0 & 0x0f;

	if (b0 & 0x70)
		return fail(d, WS_CLOSE_PROTOCOL, "reserved bits set without an extension");
	if (!(b1 & 0x80))
		return fail(d, WS_CLOSE_PROTOCOL, "client frame not masked");
	if (op != WS_OP_CONT && op != WS_OP_TEXT && op != WS_OP_BINARY && op != WS_OP_CLOSE &&
	    op != WS_OP_PING && op != WS_OP_PONG)
		return fail(d, WS_CLOSE_PROTOCOL, "reserved opcode");
	if (is_control(op)) {
		if (!(b0 & 0x80))
			return fail(d, WS_CLOSE_PROTOCOL, "fragmented control frame");
		if ((b1 & 0x7f) > WS_CONTROL_MAX)
			return fail(d, WS_CLOSE_PROTOCOL, "control frame longer than 125 bytes");
	}
	return WS_DEC_MORE;
}

/* Header length once the first two bytes are known: 2 + extended length + mask. */
static size_t header_need(const struct ws_decoder *d)
{
	uint8_t l7 = d->hdr[1] & 0x7f;

	return 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + 4;
}

/* The whole header is in: take length and mask, check the message rules. */
static int start_frame(struct ws_decoder *d)
{
	uint8_t op = d->hdr[0] & 0x0f, l7 = d->hdr[1] & 0x7f;
	bool fin = d->hdr[0] & 0x80;
	const uint8_t *p = d->hdr + 2;
	uint64_t len = l7;

	if (l7 == 126) {
		len = ((uint64_t)p[0] << 8) | p[1];
		p += 2;
	} else if (l7 == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = (len << 8) | p[i];
		p += 8;
		if (len >> 63)
			return fail(d, WS_CLOSE_PROTOCOL, "64-bit length with the top bit set");
	}
	memcpy(d->mask, p, 4);
	d->mask_pos = 0;
	d->opcode = op;
	d->remaining = len;
	d->in_frame = true;
	if (is_control(op)) {
		d->ctl_len = 0;
		return WS_DEC_MORE;
	}
	if (op == WS_OP_CONT) {
		if (!d->in_message)
			return fail(d, WS_CLOSE_PROTOCOL, "continuation frame without a message");
	} else {
		if (d->in_message)
			return fail(d, WS_CLOSE_PROTOCOL, "new message inside a fragmented one");
		/* MQTT asks for binary frames only; mosquitto takes text too, and so do we by default. */
		if (op == WS_OP_TEXT && d->binary_only)
			return fail(d, WS_CLOSE_UNSUPPORTED, "text frame (MQTT needs binary frames)");
		d->message = 0;
	}
	if (len > d->max_message - d->message)
		return fail(d, WS_CLOSE_TOO_BIG, "message larger than the limit");
	d->message += len;
	d->in_message = !fin;
	return WS_DEC_MORE;
}

static bool close_code_valid(uint16_t code)
{
	/* 1004-1006 and 1015 are reserved or never sent; 1016-2999 unassigned. */
	if (code >= 3000 && code <= 4999)
		return true;
	return code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006;
}

uint16_t ws_close_code(const struct ws_decoder *d)
{
	if (d->ctl_len < 2)
		return WS_CLOSE_NO_STATUS;
	return (uint16_t)((d->ctl[0] << 8) | d->ctl[1]);
}

/* A frame's payload is complete. Data frames need nothing more; control frames go to the caller. */
static int end_frame(struct ws_decoder *d)
{
	d->in_frame = false;
	d->hdr_len = 0;
	if (!is_control(d->opcode))
		return WS_DEC_MORE;
	if (d->opcode == WS_OP_CLOSE) {
		/* The reason text that may follow the code is not used, so not checked. */
		if (d->ctl_len == 1)
			return fail(d, WS_CLOSE_PROTOCOL, "close frame with a 1-byte payload");
		if (d->ctl_len >= 2 && !close_code_valid(ws_close_code(d)))
			return fail(d, WS_CLOSE_PROTOCOL, "invalid close status code");
	}
	return WS_DEC_CONTROL;
}

/* Unmasks n bytes from src into dst (dst <= src, so moving forward is safe), 8 at a time. */
static void unmask_move(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t key[4],
			uint8_t *pos)
{
	size_t i = 0;

	if (n >= 16) {
		uint8_t m[8];
		uint64_t mw, w;

		for (int j = 0; j < 8; j++)
			m[j] = key[(*pos + j) & 3];
		memcpy(&mw, m, 8);
		/* Eight is a multiple of four: the mask phase is the same for every block. */
		for (; i + 8 <= n; i += 8) {
			memcpy(&w, src + i, 8);
			w ^= mw;
			memcpy(dst + i, &w, 8);
		}
	}
	for (; i < n; i++)
		dst[i] = src[i] ^ key[(*pos + i) & 3];
	*pos = (uint8_t)((*pos + n) & 3);
}

/* Collects header bytes; returns the decoder result once the header is whole or refused. */
static int take_header_bytes(struct ws_decoder *d, const uint8_t *buf, size_t len, size_t *i)
{
	while (*i < len) {
		size_t need = d->hdr_len < 2 ? 2 : header_need(d);
		size_t k = need - d->hdr_len;

		if (k > len - *i)
			k = len - *i;
		memcpy(d->hdr + d->hdr_len, buf + *i, k);
		d->hdr_len = (uint8_t)(d->hdr_len + k);
		*i += k;
		if (d->hdr_len < need)
			break;
		if (need == 2) {
			if (check_start(d) < 0)
				return WS_DEC_ERROR;
			continue; /* now the full length is known */
		}
		return start_frame(d);
	}
	return WS_DEC_MORE;
}

int ws_decode(struct ws_decoder *d, uint8_t *buf, size_t len, size_t *in, size_t *out)
{
	size_t i = *in, o = *out;
	int rc = WS_DEC_MORE;

	assert(o <= i);
	if (d->error)
		return WS_DEC_ERROR;
	while (i < len) {
		size_t k;

		if (!d->in_frame) {
			rc = take_header_bytes(d, buf, len, &i);
			if (rc != WS_DEC_MORE)
				goto out;
			if (!d->in_frame)
				break; /* the header continues in the next input */
			if (d->remaining == 0) {
				rc = end_frame(d);
				if (rc != WS_DEC_MORE)
					goto out;
			}
			continue;
		}
		k = len - i;
		if (k > d->remaining)
			k = (size_t)d->remaining;
		if (is_control(d->opcode)) {
			unmask_move(d->ctl + d->ctl_len, buf + i, k, d->mask, &d->mask_pos);
			d->ctl_len = (uint8_t)(d->ctl_len + k);
		} else {
			unmask_move(buf + o, buf + i, k, d->mask, &d->mask_pos);
			o += k;
		}
		i += k;
		d->remaining -= k;
		if (d->remaining == 0) {
			rc = end_frame(d);
			if (rc != WS_DEC_MORE)
				goto out;
		}
	}
out:
	*in = i;
	*out = o;
	return rc;
}

/* --- frame encoding --- */

size_t ws_frame_header_size(uint64_t len)
{
	return len < 126 ? 2 : len <= 0xffff ? 4 : 10;
}

size_t ws_frame_header(uint8_t *out, enum ws_opcode op, bool fin, uint64_t len)
{
	size_t n = ws_frame_header_size(len);

	out[0] = (uint8_t)((fin ? 0x80 : 0) | op);
	if (n == 2) {
		out[1] = (uint8_t)len;
	} else if (n == 4) {
		out[1] = 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
	} else {
		out[1] = 127;
		for (int i = 0; i < 8; i++)
			out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
	}
	return n;
}

size_t ws_close_frame(uint8_t *out, uint16_t status)
{
	if (status == 0)
		return ws_frame_header(out, WS_OP_CLOSE, true, 0);
	ws_frame_header(out, WS_OP_CLOSE, true, 2);
	out[2] = (uint8_t)(status >> 8);
	out[3] = (uint8_t)status;
	return 4;
}
