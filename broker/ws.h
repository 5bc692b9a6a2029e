/*
 * ws.h: the WebSocket protocol (RFC 6455), server side, as pure functions.
 *
 * Owns the opening handshake (an incremental HTTP/1.1 upgrade-request
 * parser and the 101 / error responses), the frame decoder for client
 * frames (unmasked in place, streamed: a data message is never assembled)
 * and the frame header encoder for server frames. No I/O, no allocation,
 * no broker state: conn_ws.c does the I/O, and a fuzzer can drive this alone.
 */
#ifndef MIDGE_WS_H
#define MIDGE_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* mosquitto's websockets_headers_size is the same knob; 0 selects this. */
#define WS_DEFAULT_MAX_HEADERS 4096u
/* Larger limits are clamped to this (offsets into the request are 32-bit). */
#define WS_MAX_HEADERS_CAP (1024u * 1024u)
/* The largest MQTT packet (268435455 remaining bytes plus a 5-byte header). */
#define WS_DEFAULT_MAX_MESSAGE (268435455u + 5u)
/* Room for any response ws_response() builds. */
#define WS_RESPONSE_MAX 320u
/* Server frames are never masked: 2 + 8 bytes at most. */
#define WS_FRAME_HEADER_MAX 10u
/* RFC 6455 5.5: control frames carry at most 125 payload bytes. */
#define WS_CONTROL_MAX 125u

/* Per-listener settings; the strings are borrowed (conn_ws_init() says for how long). */
struct ws_options {
	const char *path;   /* only this request path upgrades (NULL: any); others get 404 */
	const char *origin; /* only this Origin is accepted (NULL: any); others get 403 */
	size_t max_headers; /* request size limit, blank line included (0: the default) */
	size_t max_message; /* payload limit of one message, all fragments (0: the default) */
	bool binary_only;   /* refuse text frames with 1003, as [MQTT-6.0.0-1] asks */
	/* Optional: the whole response (malloc'd, *len bytes) to a plain GET of target that
	 * asked for no upgrade, or NULL to refuse it as usual (the broker's /metrics). */
	char *(*http)(void *ctx, const char *target, size_t tlen, size_t *len);
	void *http_ctx;
};

/* --- opening handshake --- */

/* A part of the request buffer, by offset (the buffer may move as it grows). */
struct ws_span {
	uint32_t off;
	uint32_t len;
};

/* The subprotocols we speak; of those a client offers, the first in its order wins. */
#define WS_PROTO_MQTT "mqtt"
#define WS_PROTO_MQTT31 "mqttv3.1"

struct ws_request {
	/* Results, once ws_request_parse() returned WS_REQ_DONE. */
	int status;              /* 101, or the HTTP status of the refusal */
	const char *reason;      /* why refused (static text); NULL when accepted */
	const char *protocol;    /* chosen subprotocol (static); NULL when none was offered */
	struct ws_span target;   /* request-target as sent (path and query) */
	struct ws_span key;      /* Sec-WebSocket-Key */
	struct ws_span origin;   /* Origin; len 0 when absent */
	struct ws_span forwarded_for; /* first X-Forwarded-For; len 0 when absent */
	uint32_t length;         /* bytes of the request, up to and including the blank line */
	/* Parser state. */
	uint32_t pos;            /* first byte of the first line not parsed yet */
	uint32_t lines;
	uint32_t seen;           /* private flags */
};

enum {
	WS_REQ_MORE = 0, /* feed more bytes */
	WS_REQ_DONE = 1, /* r->status says what to answer */
};

void ws_request_init(struct ws_request *r);

/* The request size limit in force: o->max_headers, its default, clamped to WS_MAX_HEADERS_CAP. */
size_t ws_max_headers(const struct ws_options *o);

/*
 * Parses the request held in buf[0, len): call it again with the same
 * buffer, grown, whenever bytes arrive; lines already parsed are not
 * parsed again. Bytes after the blank line (r->length) are not looked at:
 * they are the first frames. A request whose blank line is not within
 * o->max_headers bytes is refused (431) as soon as that many bytes are held,
 * so the caller never needs a larger buffer. Never fails otherwise: a bad
 * request is WS_REQ_DONE with an error status.
 */
int ws_request_parse(struct ws_request *r, const char *buf, size_t len, const struct ws_options *o);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key GUID)), 28 characters and a NUL. -1 if OpenSSL failed. */
int ws_accept_value(const char *key, size_t key_len, char out[29]);

/*
 * Writes the answer to a parsed request into out (at least WS_RESPONSE_MAX
 * bytes): the 101 for an accepted request, else the error with a short
 * text body and "Connection: close". Returns its length, 0 on failure.
 */
size_t ws_response(const struct ws_request *r, const char *buf, char *out, size_t cap);

/* The error response alone (status 400, 403, 404, 426 or 431); returns its length, 0 if out is too small. */
size_t ws_response_error(int status, const char *reason, char *out, size_t cap);

/* --- frames --- */

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xA,
};

/* Close status codes (RFC 6455 7.4.1). */
enum {
	WS_CLOSE_NORMAL = 1000,
	WS_CLOSE_GOING_AWAY = 1001,
	WS_CLOSE_PROTOCOL = 1002,
	WS_CLOSE_UNSUPPORTED = 1003,
	WS_CLOSE_NO_STATUS = 1005, /* received without a code; never sent */
	WS_CLOSE_TOO_BIG = 1009,
};

struct ws_decoder {
	uint64_t remaining;      /* payload bytes of the current frame still to come */
	uint64_t message;        /* payload bytes of the current data message so far */
	uint64_t max_message;
	const char *why;         /* after WS_DEC_ERROR: what the peer did wrong */
	uint16_t error;          /* after WS_DEC_ERROR: the close status to send */
	uint8_t hdr[14];         /* the frame header being collected */
	uint8_t hdr_len;
	uint8_t mask[4];
	uint8_t mask_pos;        /* payload offset modulo 4 */
	uint8_t opcode;          /* of the current frame; after WS_DEC_CONTROL, of that frame */
	bool in_frame;           /* header complete, payload in progress */
	bool in_message;         /* a fragmented data message waits for continuations */
	bool binary_only;
	uint8_t ctl_len;         /* control payload collected in ctl */
	uint8_t ctl[WS_CONTROL_MAX];
};

enum {
	WS_DEC_ERROR = -1,  /* protocol violation: d->error, d->why; every later call fails too */
	WS_DEC_MORE = 0,    /* the input is used up */
	WS_DEC_CONTROL = 1, /* a close, ping or pong frame is complete: d->opcode, d->ctl, d->ctl_len */
};

/* max_message 0 selects WS_DEFAULT_MAX_MESSAGE. */
void ws_decoder_init(struct ws_decoder *d, uint64_t max_message, bool binary_only);

/*
 * Decodes client frames from buf[*in, len) in place: the payload of data
 * frames (text, binary, continuation) is unmasked and moved down to
 * buf[*out, ...), so the caller gets the bytes of the byte stream carried
 * by the messages, frame headers and control frames removed. Requires
 * *out <= *in; advances both. Stops after each complete control frame so
 * the caller can answer it (a close frame's code is checked already).
 */
int ws_decode(struct ws_decoder *d, uint8_t *buf, size_t len, size_t *in, size_t *out);

/* After WS_DEC_CONTROL for a close frame: its status, WS_CLOSE_NO_STATUS when it had none. */
uint16_t ws_close_code(const struct ws_decoder *d);

/* Bytes of a server frame header for a payload of len: 2, 4 or 10. */
size_t ws_frame_header_size(uint64_t len);

/* Writes an unmasked frame header (ws_frame_header_size(len) bytes); returns its size. */
size_t ws_frame_header(uint8_t *out, enum ws_opcode op, bool fin, uint64_t len);

/* A whole close frame with status (0: no status) into out (4 bytes); returns its size. */
size_t ws_close_frame(uint8_t *out, uint16_t status);

#endif
