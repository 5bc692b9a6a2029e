/*
 * mqttc.c: one MQTT client connection for the command-line tools: TCP,
 * unix socket, TLS and WebSockets transports, CONNECT/CONNACK, the QoS
 * flows both ways, keepalive, topic aliases from the server, and
 * libmosquitto's -d lines. See mqttc.h.
 *
 * The socket is non-blocking once connected: reads go through poll()
 * (ppoll() with the tool's signal mask, so a signal interrupts a wait),
 * writes block until everything is written. Packets are framed with the
 * codec's mqtt_frame_parse(); over WebSockets each packet goes out as one
 * masked binary frame and the server's frames are unwrapped into the same
 * byte stream (RFC 6455 section 5).
 */
#include "config.h"

#include "mqttc.h"
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define MAX_PACKET MQTT_MAX_REMAINING_LENGTH
#define READ_CHUNK 65536u
#define WS_MAX_RESPONSE 8192u
#define HANDSHAKE_TIMEOUT_MS 20000

/* ---- small helpers ---- */

uint64_t mqttc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static _Noreturn void out_of_memory(void)
{
	fputs("Error: Out of memory.\n", stderr);
	exit(MQTTC_EXIT_ERROR);
}

/* Room for n more bytes at b->p + b->len. */
static uint8_t *buf_reserve(struct mqttc_buf *b, size_t n)
{
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *p;

		while (cap - b->len < n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			out_of_memory();
		b->p = p;
		b->cap = cap;
	}
	return b->p + b->len;
}

static void buf_set(struct mqttc_buf *b, const void *data, size_t n)
{
	b->len = 0;
	memcpy(buf_reserve(b, n + 1), data, n);
	b->len = n;
	b->p[n] = '\0';
}

static void buf_free(struct mqttc_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void mqttc_debug(const struct mqttc *c, const char *fmt, ...)
{
	va_list ap;

	if (!c->cfg->debug)
		return;
	printf("Client %s ", c->name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

const char *mqttc_connack_string(int protocol, uint8_t code)
{
	if (protocol == MQTT_PROTO_V5)
		return mqttc_reason_string(code);
	switch (code) {
	case 0: return "Connection Accepted.";
	case 1: return "Connection Refused: unacceptable protocol version.";
	case 2: return "Connection Refused: identifier rejected.";
	case 3: return "Connection Refused: broker unavailable.";
	case 4: return "Connection Refused: bad user name or password.";
	case 5: return "Connection Refused: not authorised.";
	default: return "Connection Refused: unknown reason.";
	}
}

const char *mqttc_reason_string(uint8_t code)
{
	switch (code) {
	case 0x00: return "Success";
	case 0x01: return "Granted QoS 1";
	case 0x02: return "Granted QoS 2";
	case 0x04: return "Disconnect with Will Message";
	case 0x10: return "No matching subscribers";
	case 0x11: return "No subscription existed";
	case 0x18: return "Continue authentication";
	case 0x19: return "Re-authenticate";
	case 0x80: return "Unspecified error";
	case 0x81: return "Malformed Packet";
	case 0x82: return "Protocol Error";
	case 0x83: return "Implementation specific error";
	case 0x84: return "Unsupported Protocol Version";
	case 0x85: return "Client Identifier not valid";
	case 0x86: return "Bad User Name or Password";
	case 0x87: return "Not authorized";
	case 0x88: return "Server unavailable";
	case 0x89: return "Server busy";
	case 0x8A: return "Banned";
	case 0x8B: return "Server shutting down";
	case 0x8C: return "Bad authentication method";
	case 0x8D: return "Keep Alive timeout";
	case 0x8E: return "Session taken over";
	case 0x8F: return "Topic Filter invalid";
	case 0x90: return "Topic Name invalid";
	case 0x91: return "Packet Identifier in use";
	case 0x92: return "Packet Identifier not found";
	case 0x93: return "Receive Maximum exceeded";
	case 0x94: return "Topic Alias invalid";
	case 0x95: return "Packet too large";
	case 0x96: return "Message rate too high";
	case 0x97: return "Quota exceeded";
	case 0x98: return "Administrative action";
	case 0x99: return "Payload format invalid";
	case 0x9A: return "Retain not supported";
	case 0x9B: return "QoS not supported";
	case 0x9C: return "Use another server";
	case 0x9D: return "Server moved";
	case 0x9E: return "Shared Subscriptions not supported";
	case 0x9F: return "Connection rate exceeded";
	case 0xA0: return "Maximum connect time";
	case 0xA1: return "Subscription identifiers not supported";
	case 0xA2: return "Wildcard Subscriptions not supported";
	default: return "Unknown reason";
	}
}

/* Prints OpenSSL's queued errors as libmosquitto does. */
static void print_ssl_errors(const struct mqttc *c)
{
	unsigned long e;
	int n = 0;
	char buf[256];

	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		mqttc_err(c->cfg, "OpenSSL Error[%d]: %s\n", n++, buf);
	}
}

/* ---- the wire: TCP or TLS, non-blocking ---- */

/*
 * Waits for the socket (and, with `watch`, for c->watch_fd to be readable:
 * c->watch_ready): 1 ready, 0 time out, 2 a signal or the watched
 * descriptor, -1 error.
 */
static int wait_fd(struct mqttc *c, short events, int timeout_ms, bool watch)
{
	struct pollfd p[2] = {{.fd = c->fd, .events = events}, {.fd = c->watch_fd, .events = POLLIN}};
	struct timespec ts, *tsp = NULL;
	int rc;

	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
		tsp = &ts;
	}
	rc = ppoll(p, watch && c->watch_fd >= 0 ? 2 : 1, tsp, c->poll_mask);
	if (rc < 0)
		return errno == EINTR ? 2 : -1;
	if (rc > 0 && watch && c->watch_fd >= 0 && p[1].revents) {
		c->watch_ready = true;
		return 2;
	}
	return rc > 0 ? 1 : 0;
}

/* Reads up to n bytes: > 0 bytes read, 0 nothing available, -1 closed or failed. */
static ssize_t wire_read(struct mqttc *c, uint8_t *buf, size_t n)
{
	if (c->ssl) {
		int rc = SSL_read(c->ssl, buf, (int)(n > INT32_MAX ? INT32_MAX : n));

		if (rc > 0)
			return rc;
		switch (SSL_get_error(c->ssl, rc)) {
		case SSL_ERROR_WANT_READ:
		case SSL_ERROR_WANT_WRITE:
			return 0;
		case SSL_ERROR_ZERO_RETURN:
			return -1;
		default:
			if (c->cfg->debug)
				print_ssl_errors(c);
			ERR_clear_error();
			return -1;
		}
	}
	for (;;) {
		ssize_t rc = recv(c->fd, buf, n, 0);

		if (rc > 0)
			return rc;
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return -1;
	}
}

/* Writes everything (waiting for room as needed); -1 when the connection failed. */
static int wire_write(struct mqttc *c, const uint8_t *p, size_t n)
{
	while (n > 0) {
		short want = POLLOUT;

		if (c->ssl) {
			int rc = SSL_write(c->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));

			if (rc > 0) {
				p += rc;
				n -= (size_t)rc;
				continue;
			}
			switch (SSL_get_error(c->ssl, rc)) {
			case SSL_ERROR_WANT_READ:
				want = POLLIN;
				break;
			case SSL_ERROR_WANT_WRITE:
				break;
			default:
				ERR_clear_error();
				return -1;
			}
		} else {
			ssize_t rc = send(c->fd, p, n, MSG_NOSIGNAL);

			if (rc > 0) {
				p += rc;
				n -= (size_t)rc;
				continue;
			}
			if (rc < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
				return -1;
			if (rc < 0 && errno == EINTR)
				continue;
		}
		{
			struct pollfd pfd = {.fd = c->fd, .events = want};

			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				return -1;
		}
	}
	return 0;
}

/* ---- WebSockets, client side ---- */

/* One masked frame (RFC 6455 5.2, 5.3). */
static int ws_send_frame(struct mqttc *c, enum ws_opcode op, const uint8_t *p, size_t n)
{
	uint8_t hdr[14], mask[4];
	size_t h = 0;
	uint8_t *dst;
	int rc;

	if (RAND_bytes(mask, sizeof(mask)) != 1)
		memset(mask, 0x5a, sizeof(mask));
	hdr[h++] = (uint8_t)(0x80 | op);
	if (n < 126) {
		hdr[h++] = (uint8_t)(0x80 | n);
	} else if (n <= 0xFFFF) {
		hdr[h++] = 0x80 | 126;
		hdr[h++] = (uint8_t)(n >> 8);
		hdr[h++] = (uint8_t)n;
	} else {
		hdr[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			hdr[h++] = (uint8_t)((uint64_t)n >> (8 * i));
	}
	memcpy(hdr + h, mask, 4);
	h += 4;
	/* The scratch buffer may hold the packet itself: frame into a separate block. */
	dst = malloc(h + n ? h + n : 1);
	if (!dst)
		out_of_memory();
	memcpy(dst, hdr, h);
	for (size_t i = 0; i < n; i++)
		dst[h + i] = p[i] ^ mask[i & 3];
	rc = wire_write(c, dst, h + n);
	free(dst);
	return rc;
}

/*
 * Unwraps complete server frames from c->raw into c->in; answers pings.
 * Returns 0, or -1 when the server closed or broke the protocol (printed).
 */
static int ws_unframe(struct mqttc *c)
{
	size_t pos = 0;
	int rc = 0;

	while (c->raw.len - pos >= 2) {
		const uint8_t *f = c->raw.p + pos;
		size_t avail = c->raw.len - pos, h = 2;
		uint64_t len = f[1] & 0x7F;
		uint8_t op = f[0] & 0x0F;

		if (f[1] & 0x80) {
			mqttc_err(c->cfg, "Error: the broker sent a masked WebSocket frame.\n");
			rc = -1;
			break;
		}
		if (len == 126) {
			if (avail < 4)
				break;
			len = ((uint64_t)f[2] << 8) | f[3];
			h = 4;
		} else if (len == 127) {
			if (avail < 10)
				break;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = (len << 8) | f[2 + i];
			h = 10;
		}
		if (len > (uint64_t)MAX_PACKET + 5) {
			mqttc_err(c->cfg, "Error: WebSocket frame too large.\n");
			rc = -1;
			break;
		}
		if (avail < h + len)
			break;
		switch (op) {
		case WS_OP_CONT:
		case WS_OP_TEXT:
		case WS_OP_BINARY:
			memcpy(buf_reserve(&c->in, (size_t)len), f + h, (size_t)len);
			c->in.len += (size_t)len;
			break;
		case WS_OP_PING:
			if (ws_send_frame(c, WS_OP_PONG, f + h, (size_t)len) < 0)
				rc = -1;
			break;
		case WS_OP_PONG:
			break;
		case WS_OP_CLOSE:
			/* Answer it; the connection is over. */
			ws_send_frame(c, WS_OP_CLOSE, f + h, len >= 2 ? 2 : 0);
			c->closed = true;
			rc = -1;
			break;
		default:
			mqttc_err(c->cfg, "Error: unknown WebSocket opcode %u from the broker.\n", op);
			rc = -1;
			break;
		}
		pos += h + (size_t)len;
		if (rc < 0)
			break;
	}
	memmove(c->raw.p, c->raw.p + pos, c->raw.len - pos);
	c->raw.len -= pos;
	return rc;
}

/* Reads what is available into c->in: 1 read something, 0 nothing, -1 closed. */
static int fill(struct mqttc *c)
{
	struct mqttc_buf *dst = c->ws ? &c->raw : &c->in;
	ssize_t n = wire_read(c, buf_reserve(dst, READ_CHUNK), READ_CHUNK);

	if (n <= 0)
		return n == 0 ? 0 : -1;
	dst->len += (size_t)n;
	if (c->ws && ws_unframe(c) < 0)
		return -1;
	return 1;
}

/* Sends one MQTT packet; -1 when the connection is gone. */
static int send_packet(struct mqttc *c, const uint8_t *p, size_t n)
{
	int rc = c->ws ? ws_send_frame(c, WS_OP_BINARY, p, n) : wire_write(c, p, n);

	c->last_out = mqttc_now_ms();
	if (rc < 0)
		c->closed = true;
	return rc;
}

/* The scratch buffer, emptied, with room for n bytes. */
static struct pkt_writer *scratch(struct mqttc *c, size_t n, struct pkt_writer *w)
{
	c->out.len = 0;
	pkt_writer_init(w, buf_reserve(&c->out, n), (uint32_t)n);
	return w;
}

static int lost(struct mqttc *c)
{
	c->closed = true;
	mqttc_err(c->cfg, "Error: The connection was lost.\n");
	return MQTTC_EXIT_CONN_LOST;
}

/* ---- connecting ---- */

static int resolve_error(struct mqttc *c, const char *what, int rc)
{
	mqttc_err(c->cfg, "Unable to connect (Lookup error.).\n");
	if (c->cfg->debug)
		mqttc_err(c->cfg, "Cannot resolve %s: %s\n", what, gai_strerror(rc));
	return MQTTC_EXIT_ERROR;
}

static int open_socket(struct mqttc *c)
{
	const struct mqttc_cfg *cfg = c->cfg;
	struct addrinfo hints, *res = NULL, *ai;
	char port[8];
	int rc, err = 0;

	if (cfg->unix_path) {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};

		if (strlen(cfg->unix_path) >= sizeof(sun.sun_path)) {
			mqttc_err(cfg, "Error: unix socket path too long.\n");
			return MQTTC_EXIT_ERROR;
		}
		strcpy(sun.sun_path, cfg->unix_path);
		c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
			mqttc_err(cfg, "Error: %s\n", strerror(errno));
			return MQTTC_EXIT_ERROR;
		}
		return 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	snprintf(port, sizeof(port), "%d", cfg->port);
	rc = getaddrinfo(cfg->host, port, &hints, &res);
	if (rc != 0 && rc != EAI_SYSTEM) {
		hints.ai_flags = 0; /* loopback-only hosts: AI_ADDRCONFIG hides ::1 */
		rc = getaddrinfo(cfg->host, port, &hints, &res);
	}
	if (rc != 0 || !res)
		return resolve_error(c, cfg->host, rc);
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);

		if (fd < 0) {
			err = errno;
			continue;
		}
		if (cfg->bind_address) {
			struct addrinfo bh, *bres = NULL;

			memset(&bh, 0, sizeof(bh));
			bh.ai_family = ai->ai_family;
			bh.ai_socktype = SOCK_STREAM;
			rc = getaddrinfo(cfg->bind_address, NULL, &bh, &bres);
			if (rc != 0 || !bres) {
				close(fd);
				freeaddrinfo(res);
				return resolve_error(c, cfg->bind_address, rc);
			}
			rc = bind(fd, bres->ai_addr, bres->ai_addrlen);
			err = errno;
			freeaddrinfo(bres);
			if (rc < 0) {
				close(fd);
				continue;
			}
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			c->fd = fd;
			break;
		}
		err = errno;
		close(fd);
	}
	freeaddrinfo(res);
	if (c->fd < 0) {
		mqttc_err(cfg, "Error: %s\n", strerror(err ? err : ECONNREFUSED));
		return MQTTC_EXIT_ERROR;
	}
	if (cfg->nodelay) {
		int one = 1;

		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return 0;
}

static unsigned int psk_client_cb(SSL *ssl, const char *hint, char *identity,
				  unsigned int max_identity_len, unsigned char *psk,
				  unsigned int max_psk_len)
{
	const struct mqttc *c = SSL_get_app_data(ssl);
	const char *hex = c->cfg->psk;
	size_t n = strlen(hex) / 2;

	(void)hint;
	if (strlen(c->cfg->psk_identity) + 1 > max_identity_len || n > max_psk_len)
		return 0;
	strcpy(identity, c->cfg->psk_identity);
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return 0;
		psk[i] = (unsigned char)v;
	}
	return (unsigned int)n;
}

static bool is_ip_literal(const char *host)
{
	unsigned char tmp[16];

	return inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;
}

__attribute__((format(printf, 2, 3)))
static int tls_fail(struct mqttc *c, const char *fmt, ...)
{
	va_list ap;

	if (!c->cfg->quiet) {
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	print_ssl_errors(c);
	return MQTTC_EXIT_ERROR;
}

static int tls_start(struct mqttc *c)
{
	const struct mqttc_cfg *cfg = c->cfg;
	SSL_CTX *ctx;
	SSL *ssl;
	int min = TLS1_2_VERSION;
	uint64_t deadline;

	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return tls_fail(c, "Error: cannot create a TLS context%s.\n", "");
	c->ssl_ctx = ctx;
	if (cfg->tls_version && strcmp(cfg->tls_version, "tlsv1.3") == 0)
		min = TLS1_3_VERSION;
	else if (cfg->tls_version && strcmp(cfg->tls_version, "tlsv1.1") == 0)
		min = TLS1_1_VERSION;
	SSL_CTX_set_min_proto_version(ctx, min);
	if (cfg->ciphers && SSL_CTX_set_cipher_list(ctx, cfg->ciphers) != 1)
		return tls_fail(c, "Error: Unable to set TLS ciphers. Check cipher list \"%s\".\n",
				cfg->ciphers);
	if (cfg->psk) {
		SSL_CTX_set_psk_client_callback(ctx, psk_client_cb);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	} else {
		if ((cfg->cafile || cfg->capath) &&
		    SSL_CTX_load_verify_locations(ctx, cfg->cafile, cfg->capath) != 1)
			return tls_fail(c, "Error: Unable to load CA certificates, check cafile \"%s\".\n",
					cfg->cafile ? cfg->cafile : cfg->capath);
		if (cfg->os_certs && SSL_CTX_set_default_verify_paths(ctx) != 1)
			return tls_fail(c, "Error: Unable to load the system's CA certificates%s.\n", "");
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		if (cfg->certfile) {
			if (SSL_CTX_use_certificate_chain_file(ctx, cfg->certfile) != 1)
				return tls_fail(c, "Error: Unable to load client certificate \"%s\".\n",
						cfg->certfile);
			if (SSL_CTX_use_PrivateKey_file(ctx, cfg->keyfile, SSL_FILETYPE_PEM) != 1)
				return tls_fail(c, "Error: Unable to load client key file \"%s\".\n",
						cfg->keyfile);
			if (SSL_CTX_check_private_key(ctx) != 1)
				return tls_fail(c, "Error: Client certificate/key are inconsistent%s.\n", "");
		}
	}
	ssl = SSL_new(ctx);
	if (!ssl)
		return tls_fail(c, "Error: cannot create a TLS session%s.\n", "");
	c->ssl = ssl;
	SSL_set_app_data(ssl, c);
	SSL_set_fd(ssl, c->fd);
	if (!cfg->psk && !cfg->unix_path) {
		bool ip = is_ip_literal(cfg->host);

		if (!ip)
			SSL_set_tlsext_host_name(ssl, cfg->host);
		if (!cfg->insecure) {
			if (ip)
				X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), cfg->host);
			else
				SSL_set1_host(ssl, cfg->host);
		}
	}
	if (cfg->alpn) {
		unsigned char proto[256];
		size_t n = strlen(cfg->alpn);

		proto[0] = (unsigned char)n;
		memcpy(proto + 1, cfg->alpn, n);
		SSL_set_alpn_protos(ssl, proto, (unsigned int)(n + 1));
	}
	deadline = mqttc_now_ms() + HANDSHAKE_TIMEOUT_MS;
	for (;;) {
		int rc = SSL_connect(ssl), err;
		uint64_t now;

		if (rc == 1)
			break;
		err = SSL_get_error(ssl, rc);
		now = mqttc_now_ms();
		if ((err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) && now < deadline) {
			wait_fd(c, err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, (int)(deadline - now),
				false);
			continue;
		}
		if (SSL_get_verify_result(ssl) != X509_V_OK)
			mqttc_err(cfg, "Error: the broker's certificate: %s.\n",
				  X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
		print_ssl_errors(c);
		mqttc_err(cfg, "Unable to connect (A TLS error occurred.).\n");
		return MQTTC_EXIT_ERROR;
	}
	return 0;
}

/* The HTTP upgrade (RFC 6455 4.1). */
static int ws_start(struct mqttc *c)
{
	const struct mqttc_cfg *cfg = c->cfg;
	unsigned char nonce[16];
	char key[32], accept[29], req[1024];
	const char *host = cfg->host;
	bool v6 = strchr(host, ':') != NULL;
	uint64_t deadline = mqttc_now_ms() + HANDSHAKE_TIMEOUT_MS;
	struct mqttc_buf *b = &c->raw;
	char *end = NULL, *line, *next;
	bool got_accept = false;
	int n;

	if (RAND_bytes(nonce, sizeof(nonce)) != 1)
		return tls_fail(c, "Error: no random bytes for the WebSocket key%s.\n", "");
	EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce));
	if (ws_accept_value(key, strlen(key), accept) < 0)
		return tls_fail(c, "Error: cannot compute the WebSocket accept value%s.\n", "");
	n = snprintf(req, sizeof(req),
		     "GET %s HTTP/1.1\r\nHost: %s%s%s:%d\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
		     "Sec-WebSocket-Protocol: mqtt\r\n\r\n",
		     cfg->ws_path, v6 ? "[" : "", host, v6 ? "]" : "", cfg->port, key);
	if (n < 0 || (size_t)n >= sizeof(req)) {
		mqttc_err(cfg, "Error: WebSocket path or host too long.\n");
		return MQTTC_EXIT_ERROR;
	}
	if (cfg->debug)
		printf("WebSocket upgrade: GET %s\n", cfg->ws_path);
	if (wire_write(c, (const uint8_t *)req, (size_t)n) < 0)
		return lost(c);
	/* Read up to the blank line; what follows is frames. */
	while (!end) {
		ssize_t got;
		uint64_t now = mqttc_now_ms();

		if (b->len >= WS_MAX_RESPONSE) {
			mqttc_err(cfg, "Error: the WebSocket upgrade response is too long.\n");
			return MQTTC_EXIT_ERROR;
		}
		got = wire_read(c, buf_reserve(b, WS_MAX_RESPONSE + 1), WS_MAX_RESPONSE - b->len);
		if (got < 0)
			return lost(c);
		if (got == 0) {
			if (now >= deadline) {
				mqttc_err(cfg, "Error: no answer to the WebSocket upgrade.\n");
				return MQTTC_EXIT_ERROR;
			}
			wait_fd(c, POLLIN, (int)(deadline - now), false);
			continue;
		}
		b->len += (size_t)got;
		b->p[b->len] = '\0';
		end = strstr((char *)b->p, "\r\n\r\n");
	}
	*end = '\0';
	line = (char *)b->p;
	next = strstr(line, "\r\n");
	if (next)
		*next = '\0';
	if (strncmp(line, "HTTP/1.1 101", 12) != 0) {
		mqttc_err(cfg, "Error: WebSocket upgrade refused: %s\n", line);
		return MQTTC_EXIT_ERROR;
	}
	for (line = next ? next + 2 : NULL; line && *line; line = next ? next + 2 : NULL) {
		char *colon, *v;

		next = strstr(line, "\r\n");
		if (next)
			*next = '\0';
		colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		for (size_t k = strlen(v); k > 0 && (v[k - 1] == ' ' || v[k - 1] == '\t'); k--)
			v[k - 1] = '\0';
		if (strcasecmp(line, "Sec-WebSocket-Accept") == 0) {
			if (strcmp(v, accept) != 0) {
				mqttc_err(cfg, "Error: wrong Sec-WebSocket-Accept from the broker.\n");
				return MQTTC_EXIT_ERROR;
			}
			got_accept = true;
		} else if (strcasecmp(line, "Sec-WebSocket-Protocol") == 0 && strcasecmp(v, "mqtt") != 0) {
			mqttc_err(cfg, "Error: the broker chose WebSocket subprotocol '%s'.\n", v);
			return MQTTC_EXIT_ERROR;
		}
	}
	if (!got_accept) {
		mqttc_err(cfg, "Error: no Sec-WebSocket-Accept from the broker.\n");
		return MQTTC_EXIT_ERROR;
	}
	{
		size_t head = (size_t)(end + 4 - (char *)b->p);

		memmove(b->p, b->p + head, b->len - head);
		b->len -= head;
	}
	c->ws = true;
	return ws_unframe(c) < 0 ? lost(c) : 0;
}

/* ---- receiving ---- */

/*
 * The next complete packet: 1 with *f and *body, 0 on time out or a
 * signal, -1 with *exit set when the connection failed.
 */
static int next_packet(struct mqttc *c, int timeout_ms, struct mqtt_frame *f,
		       const uint8_t **body, int *exit_status)
{
	uint64_t start = mqttc_now_ms();

	if (c->in_off) {
		memmove(c->in.p, c->in.p + c->in_off, c->in.len - c->in_off);
		c->in.len -= c->in_off;
		c->in_off = 0;
	}
	for (;;) {
		uint64_t now, ka_ms = (uint64_t)c->keepalive * 1000u;
		int rc, wait;

		if (c->in.len >= 2) {
			rc = mqtt_frame_parse(c->in.p, c->in.len, MAX_PACKET, f);
			if (rc == MQTT_OK && c->in.len >= (size_t)f->header_len + f->remaining) {
				*body = c->in.p + f->header_len;
				c->in_off = (size_t)f->header_len + f->remaining;
				return 1;
			}
			if (rc != MQTT_OK && rc != MQTT_ERR_INCOMPLETE) {
				mqttc_err(c->cfg, "Error: malformed packet from the broker.\n");
				c->closed = true;
				*exit_status = MQTTC_EXIT_PROTOCOL;
				return -1;
			}
		}
		if (c->closed) {
			*exit_status = lost(c);
			return -1;
		}
		rc = fill(c);
		if (rc < 0) {
			*exit_status = lost(c);
			return -1;
		}
		if (rc > 0)
			continue;
		/* Keepalive. */
		now = mqttc_now_ms();
		if (ka_ms && c->ping_pending && now - c->ping_sent >= ka_ms) {
			mqttc_err(c->cfg, "Error: no PINGRESP from the broker within the keepalive "
				  "interval.\n");
			c->closed = true;
			*exit_status = MQTTC_EXIT_KEEPALIVE;
			return -1;
		}
		if (ka_ms && !c->ping_pending && now - c->last_out >= ka_ms) {
			uint8_t ping[2];
			struct pkt_writer w;

			pkt_writer_init(&w, ping, sizeof(ping));
			mqtt_write_empty(&w, MQTT_PINGREQ);
			mqttc_debug(c, "sending PINGREQ");
			if (send_packet(c, ping, sizeof(ping)) < 0) {
				*exit_status = lost(c);
				return -1;
			}
			c->ping_pending = true;
			c->ping_sent = now;
		}
		if (timeout_ms >= 0 && now - start >= (uint64_t)timeout_ms)
			return 0;
		wait = timeout_ms < 0 ? -1 : (int)((uint64_t)timeout_ms - (now - start));
		if (ka_ms) {
			uint64_t due = c->ping_pending ? c->ping_sent + ka_ms : c->last_out + ka_ms;
			int ka_wait = due > now ? (int)(due - now) : 0;

			if (wait < 0 || ka_wait < wait)
				wait = ka_wait;
		}
		rc = wait_fd(c, POLLIN, wait, true);
		if (rc < 0) {
			*exit_status = lost(c);
			return -1;
		}
		if (rc == 2)
			return 0; /* a signal, or the watched descriptor: the tool decides */
	}
}

/* ---- CONNECT ---- */

int mqttc_open(struct mqttc *c, const struct mqttc_cfg *cfg, uint8_t *connack)
{
	struct mqtt_connect_out co;
	struct mqttc_buf props = {0};
	struct pkt_writer w;
	struct mqtt_frame f;
	const uint8_t *body;
	struct mqtt_connack ack;
	uint32_t size;
	int rc, status = 0;

	/* OpenSSL writes with write(2): a broker that closed must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	memset(c, 0, sizeof(*c));
	c->cfg = cfg;
	c->fd = -1;
	c->watch_fd = -1;
	c->protocol = cfg->protocol;
	c->name = cfg->id && *cfg->id ? cfg->id : "(null)";
	c->keepalive = (uint16_t)cfg->keepalive;
	c->next_mid = 1;
	c->server_receive_max = 65535;
	c->server_max_qos = 2;
	c->server_retain = true;
	*connack = 0;
	if (cfg->topic_alias_max) {
		c->aliases = calloc((size_t)cfg->topic_alias_max + 1, sizeof(*c->aliases));
		if (!c->aliases)
			out_of_memory();
	}

	rc = open_socket(c);
	if (rc)
		return rc;
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	if (cfg->tls && (rc = tls_start(c)) != 0)
		return rc;
	if (cfg->ws && (rc = ws_start(c)) != 0)
		return rc;

	/* CONNECT: -x (or -c) first, then the -D connect properties. */
	if (cfg->protocol == MQTT_PROTO_V5 && cfg->session_expiry) {
		pkt_writer_init(&w, buf_reserve(&props, mqtt_prop_size_u32()), mqtt_prop_size_u32());
		pkt_write_prop_u32(&w, MQTT_PROP_SESSION_EXPIRY_INTERVAL, cfg->session_expiry);
		props.len += mqtt_prop_size_u32();
	}
	if (cfg->props[MQTTC_CMD_CONNECT].len) {
		memcpy(buf_reserve(&props, cfg->props[MQTTC_CMD_CONNECT].len),
		       cfg->props[MQTTC_CMD_CONNECT].p, cfg->props[MQTTC_CMD_CONNECT].len);
		props.len += cfg->props[MQTTC_CMD_CONNECT].len;
	}
	memset(&co, 0, sizeof(co));
	co.protocol = (uint8_t)cfg->protocol;
	co.clean_start = cfg->clean;
	co.keepalive = (uint16_t)cfg->keepalive;
	co.client_id.data = (const uint8_t *)(cfg->id ? cfg->id : "");
	co.client_id.len = (uint32_t)strlen((const char *)co.client_id.data);
	co.username = cfg->username;
	if (cfg->password) {
		co.password.data = (const uint8_t *)cfg->password;
		co.password.len = (uint32_t)strlen(cfg->password);
	}
	co.props.data = props.p;
	co.props.len = (uint32_t)props.len;
	if (cfg->will_topic) {
		co.has_will = true;
		co.will_qos = (uint8_t)cfg->will_qos;
		co.will_retain = cfg->will_retain;
		co.will_topic.data = (const uint8_t *)cfg->will_topic;
		co.will_topic.len = (uint32_t)strlen(cfg->will_topic);
		co.will_payload.data = (const uint8_t *)(cfg->will_payload ? cfg->will_payload : "");
		co.will_payload.len = (uint32_t)strlen((const char *)co.will_payload.data);
		co.will_props.data = cfg->props[MQTTC_CMD_WILL].p;
		co.will_props.len = (uint32_t)cfg->props[MQTTC_CMD_WILL].len;
	}
	size = mqtt_size_connect(&co);
	mqtt_write_connect(scratch(c, size, &w), &co);
	buf_free(&props);
	mqttc_debug(c, "sending CONNECT");
	if (send_packet(c, c->out.p, size) < 0)
		return lost(c);

	/* CONNACK: libmosquitto waits as long as keepalive allows; so do we. */
	rc = next_packet(c, (cfg->keepalive < 10 ? 10 : cfg->keepalive) * 1000, &f, &body, &status);
	if (rc < 0)
		return status;
	if (rc == 0) {
		mqttc_err(cfg, "Error: no CONNACK from the broker.\n");
		return MQTTC_EXIT_ERROR;
	}
	if (f.type != MQTT_CONNACK ||
	    mqtt_decode_connack(body, f.remaining, f.flags, c->protocol, &ack) != MQTT_OK) {
		mqttc_err(cfg, "Error: the broker did not answer CONNECT with a valid CONNACK.\n");
		return MQTTC_EXIT_PROTOCOL;
	}
	if (c->protocol == MQTT_PROTO_V5) {
		if (mqtt_props_has(&ack.props, MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER)) {
			c->assigned_id = strndup((const char *)ack.props.assigned_client_id.data,
						 ack.props.assigned_client_id.len);
			if (!c->assigned_id)
				out_of_memory();
			c->name = c->assigned_id;
		}
		if (mqtt_props_has(&ack.props, MQTT_PROP_SERVER_KEEP_ALIVE))
			c->keepalive = ack.props.server_keepalive;
		if (mqtt_props_has(&ack.props, MQTT_PROP_RECEIVE_MAXIMUM))
			c->server_receive_max = ack.props.receive_maximum;
		if (mqtt_props_has(&ack.props, MQTT_PROP_MAXIMUM_PACKET_SIZE))
			c->server_max_packet = ack.props.max_packet_size;
		if (mqtt_props_has(&ack.props, MQTT_PROP_MAXIMUM_QOS))
			c->server_max_qos = ack.props.max_qos;
		if (mqtt_props_has(&ack.props, MQTT_PROP_RETAIN_AVAILABLE))
			c->server_retain = ack.props.retain_available;
	}
	mqttc_debug(c, "received CONNACK (%d)", ack.code);
	*connack = ack.code;
	if (ack.code != 0) {
		if (c->protocol == MQTT_PROTO_V5 && ack.code == MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION)
			mqttc_err(cfg, "Connection error: %s. Try connecting to an MQTT v5 broker, or use "
				  "MQTT v3.x mode.\n", mqttc_reason_string(ack.code));
		else
			mqttc_err(cfg, "Connection error: %s\n", mqttc_connack_string(c->protocol, ack.code));
		if (c->protocol == MQTT_PROTO_V5 && ack.props.reason_string.len)
			mqttc_err(cfg, "Reason: %.*s\n", (int)ack.props.reason_string.len,
				  (const char *)ack.props.reason_string.data);
		return ack.code;
	}
	return 0;
}

void mqttc_close(struct mqttc *c)
{
	if (c->ws && !c->closed && c->fd >= 0) {
		uint8_t code[2] = {WS_CLOSE_NORMAL >> 8, WS_CLOSE_NORMAL & 0xFF};

		ws_send_frame(c, WS_OP_CLOSE, code, sizeof(code));
	}
	if (c->ssl) {
		if (!c->closed)
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->ssl_ctx)
		SSL_CTX_free(c->ssl_ctx);
	if (c->fd >= 0)
		close(c->fd);
	c->ssl = c->ssl_ctx = NULL;
	c->fd = -1;
	buf_free(&c->raw);
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->topic);
	if (c->aliases) {
		for (size_t i = 0; i <= c->cfg->topic_alias_max; i++)
			buf_free(&c->aliases[i]);
		free(c->aliases);
		c->aliases = NULL;
	}
	for (size_t i = 0; i < c->n_held; i++)
		free(c->held[i].body);
	free(c->held);
	free(c->current.body);
	free(c->inflight);
	free(c->assigned_id);
	c->held = NULL;
	c->current.body = NULL;
	c->inflight = NULL;
	c->assigned_id = NULL;
	c->n_held = c->n_inflight = 0;
}

/* ---- sending ---- */

static struct mqttc_inflight *find_inflight(struct mqttc *c, uint16_t mid)
{
	for (size_t i = 0; i < c->n_inflight; i++)
		if (c->inflight[i].mid == mid)
			return &c->inflight[i];
	return NULL;
}

static void remove_inflight(struct mqttc *c, struct mqttc_inflight *m)
{
	size_t i = (size_t)(m - c->inflight);

	memmove(&c->inflight[i], &c->inflight[i + 1], (c->n_inflight - i - 1) * sizeof(*m));
	c->n_inflight--;
}

uint16_t mqttc_next_mid(struct mqttc *c)
{
	for (;;) {
		uint16_t mid = c->next_mid;

		c->next_mid = (uint16_t)(c->next_mid == 65535 ? 1 : c->next_mid + 1);
		if (!find_inflight(c, mid))
			return mid;
	}
}

size_t mqttc_inflight_limit(const struct mqttc *c, size_t want)
{
	size_t max = c->protocol == MQTT_PROTO_V5 ? c->server_receive_max : 65535;

	return want < max ? want : max;
}

static int check_size(struct mqttc *c, uint32_t size)
{
	if (c->server_max_packet && size > c->server_max_packet) {
		mqttc_err(c->cfg, "Error: a packet of %u bytes is larger than the broker's maximum "
			  "packet size (%u).\n", size, c->server_max_packet);
		return 25; /* libmosquitto's MOSQ_ERR_OVERSIZE_PACKET */
	}
	return 0;
}

int mqttc_publish(struct mqttc *c, const char *topic, const void *payload, uint32_t len,
		  int qos, bool retain, struct mqtt_bytes props, uint16_t *mid)
{
	struct mqtt_props_out po = {.raw = props};
	struct mqtt_publish_out p;
	struct pkt_writer w;
	uint32_t size;
	uint16_t id;
	int rc;

	if (c->protocol == MQTT_PROTO_V5 && qos > c->server_max_qos) {
		mqttc_err(c->cfg, "Error: the broker accepts QoS %d at most.\n", c->server_max_qos);
		return 24; /* MOSQ_ERR_QOS_NOT_SUPPORTED */
	}
	/* Like libmosquitto, QoS 0 messages get a number too (seen in -d lines only). */
	id = mqttc_next_mid(c);
	memset(&p, 0, sizeof(p));
	p.qos = (uint8_t)qos;
	p.retain = retain;
	p.packet_id = qos ? id : 0;
	p.topic.data = (const uint8_t *)topic;
	p.topic.len = (uint32_t)strlen(topic);
	p.payload.data = payload;
	p.payload.len = len;
	p.props = &po;
	size = mqtt_size_publish(&p, c->protocol);
	rc = check_size(c, size);
	if (rc)
		return rc;
	mqtt_write_publish(scratch(c, size, &w), &p, c->protocol);
	mqttc_debug(c, "sending PUBLISH (d0, q%d, r%d, m%u, '%s', ... (%u bytes))", qos, retain ? 1 : 0,
		    id, topic, len);
	if (qos) {
		if (c->n_inflight == c->cap_inflight) {
			size_t cap = c->cap_inflight ? c->cap_inflight * 2 : 32;
			struct mqttc_inflight *n = realloc(c->inflight, cap * sizeof(*n));

			if (!n)
				out_of_memory();
			c->inflight = n;
			c->cap_inflight = cap;
		}
		c->inflight[c->n_inflight++] = (struct mqttc_inflight){id, (uint8_t)qos, false};
	}
	if (mid)
		*mid = qos ? id : 0;
	if (send_packet(c, c->out.p, size) < 0)
		return lost(c);
	return 0;
}

int mqttc_subscribe(struct mqttc *c, const char *const *filters, size_t n, int qos,
		    uint8_t options, struct mqtt_bytes props, uint16_t *mid)
{
	struct mqtt_props_out po = {.raw = props};
	struct mqtt_sub_entry *e = calloc(n ? n : 1, sizeof(*e));
	struct pkt_writer w;
	uint32_t size;
	uint16_t id = mqttc_next_mid(c);
	int rc;

	if (!e)
		out_of_memory();
	for (size_t i = 0; i < n; i++) {
		e[i].filter.data = (const uint8_t *)filters[i];
		e[i].filter.len = (uint32_t)strlen(filters[i]);
		e[i].opts.qos = (uint8_t)qos;
		e[i].opts.no_local = options & 0x04;
		e[i].opts.retain_as_published = options & 0x08;
		e[i].opts.retain_handling = (uint8_t)((options >> 4) & 3);
	}
	size = mqtt_size_subscribe_props(c->protocol, e, (uint32_t)n, &po);
	rc = check_size(c, size);
	if (!rc) {
		mqtt_write_subscribe_props(scratch(c, size, &w), c->protocol, id, e, (uint32_t)n, &po);
		for (size_t i = 0; i < n; i++)
			mqttc_debug(c, "sending SUBSCRIBE (Mid: %u, Topic: %s, QoS: %d, Options: 0x%02x)",
				    id, filters[i], qos, options);
		if (send_packet(c, c->out.p, size) < 0)
			rc = lost(c);
	}
	free(e);
	if (mid)
		*mid = id;
	return rc;
}

int mqttc_unsubscribe(struct mqttc *c, const char *filter, struct mqtt_bytes props, uint16_t *mid)
{
	struct mqtt_props_out po = {.raw = props};
	struct mqtt_bytes f = {(const uint8_t *)filter, (uint32_t)strlen(filter)};
	struct pkt_writer w;
	uint32_t size = mqtt_size_unsubscribe_props(c->protocol, &f, 1, &po);
	uint16_t id = mqttc_next_mid(c);
	int rc = check_size(c, size);

	if (rc)
		return rc;
	mqtt_write_unsubscribe_props(scratch(c, size, &w), c->protocol, id, &f, 1, &po);
	mqttc_debug(c, "sending UNSUBSCRIBE (Mid: %u, Topic: %s)", id, filter);
	if (mid)
		*mid = id;
	return send_packet(c, c->out.p, size) < 0 ? lost(c) : 0;
}

int mqttc_disconnect(struct mqttc *c, uint8_t reason, struct mqtt_bytes props)
{
	struct mqtt_props_out po = {.raw = props};
	struct pkt_writer w;
	uint32_t size;

	if (c->closed)
		return 0;
	size = mqtt_size_reason_packet(c->protocol, reason, &po);
	mqtt_write_reason_packet(scratch(c, size, &w), MQTT_DISCONNECT, c->protocol, reason, &po);
	mqttc_debug(c, "sending DISCONNECT");
	return send_packet(c, c->out.p, size) < 0 ? MQTTC_EXIT_CONN_LOST : 0;
}

static int send_ack(struct mqttc *c, uint8_t type, uint16_t mid)
{
	uint8_t buf[8];
	struct pkt_writer w;
	uint32_t size = mqtt_size_ack(c->protocol, 0, NULL);

	pkt_writer_init(&w, buf, size);
	mqtt_write_ack(&w, type, mid, c->protocol, 0, NULL);
	switch (type) {
	case MQTT_PUBACK: mqttc_debug(c, "sending PUBACK (m%u, rc0)", mid); break;
	case MQTT_PUBREC: mqttc_debug(c, "sending PUBREC (m%u, rc0)", mid); break;
	case MQTT_PUBREL: mqttc_debug(c, "sending PUBREL (m%u)", mid); break;
	default: mqttc_debug(c, "sending PUBCOMP (m%u)", mid); break;
	}
	return send_packet(c, buf, size) < 0 ? lost(c) : 0;
}

/* ---- receiving ---- */

static int protocol_error(struct mqttc *c, const char *what)
{
	mqttc_err(c->cfg, "Error: %s from the broker.\n", what);
	c->closed = true;
	return MQTTC_EXIT_PROTOCOL;
}

/* Decodes a PUBLISH and resolves its topic alias into c->topic (ev->msg.topic points there). */
static int decode_message(struct mqttc *c, const uint8_t *body, uint32_t len, uint8_t flags,
			  struct mqtt_publish *m)
{
	if (mqtt_decode_publish(body, len, flags, c->protocol, m) != MQTT_OK)
		return protocol_error(c, "malformed PUBLISH");
	if (c->protocol == MQTT_PROTO_V5 && mqtt_props_has(&m->props, MQTT_PROP_TOPIC_ALIAS)) {
		uint16_t a = m->props.topic_alias;

		if (a == 0 || a > c->cfg->topic_alias_max)
			return protocol_error(c, "topic alias out of range");
		if (m->topic.len) {
			buf_set(&c->aliases[a], m->topic.data, m->topic.len);
		} else if (!c->aliases[a].p) {
			return protocol_error(c, "unknown topic alias");
		} else {
			m->topic.data = c->aliases[a].p;
			m->topic.len = (uint32_t)c->aliases[a].len;
		}
	}
	if (m->topic.len == 0)
		return protocol_error(c, "PUBLISH without a topic");
	buf_set(&c->topic, m->topic.data, m->topic.len);
	m->topic.data = c->topic.p;
	return 0;
}

static void debug_publish(struct mqttc *c, const struct mqtt_publish *m)
{
	mqttc_debug(c, "received PUBLISH (d%d, q%d, r%d, m%u, '%.*s', ... (%u bytes))", m->dup ? 1 : 0,
		    m->qos, m->retain ? 1 : 0, m->packet_id, (int)m->topic.len,
		    (const char *)m->topic.data, m->payload.len);
}

/* Keeps an incoming QoS 2 message (and its resolved topic) until its PUBREL. */
static void hold(struct mqttc *c, const struct mqtt_publish *m, uint8_t flags, const uint8_t *body,
		 uint32_t len)
{
	uint16_t mid = m->packet_id;

	struct mqttc_held *h = NULL;

	for (size_t i = 0; i < c->n_held; i++)
		if (c->held[i].mid == mid)
			h = &c->held[i]; /* a resent PUBLISH: keep the first copy */
	if (h)
		return;
	if (c->n_held == c->cap_held) {
		size_t cap = c->cap_held ? c->cap_held * 2 : 8;
		struct mqttc_held *n = realloc(c->held, cap * sizeof(*n));

		if (!n)
			out_of_memory();
		c->held = n;
		c->cap_held = cap;
	}
	h = &c->held[c->n_held++];
	h->mid = mid;
	h->flags = flags;
	h->len = len;
	h->body = malloc(len + m->topic.len + 1);
	if (!h->body)
		out_of_memory();
	memcpy(h->body, body, len);
	memcpy(h->body + len, m->topic.data, m->topic.len);
	h->topic_len = m->topic.len;
}

int mqttc_poll(struct mqttc *c, int timeout_ms, struct mqttc_event *ev)
{
	uint64_t start = mqttc_now_ms();

	memset(ev, 0, sizeof(*ev));
	c->watch_ready = false;
	free(c->current.body);
	c->current.body = NULL;
	for (;;) {
		struct mqtt_frame f;
		const uint8_t *body;
		struct mqtt_ack a;
		struct mqtt_suback s;
		struct mqtt_reason_packet d;
		struct mqttc_inflight *m;
		int status = 0, left = -1, rc;

		if (timeout_ms >= 0) {
			uint64_t spent = mqttc_now_ms() - start;

			left = spent >= (uint64_t)timeout_ms ? 0 : (int)((uint64_t)timeout_ms - spent);
		}
		rc = next_packet(c, left, &f, &body, &status);
		if (rc < 0)
			return status;
		if (rc == 0)
			return 0;
		switch (f.type) {
		case MQTT_PINGRESP:
			c->ping_pending = false;
			mqttc_debug(c, "received PINGRESP");
			continue;
		case MQTT_PUBLISH:
			rc = decode_message(c, body, f.remaining, f.flags, &ev->msg);
			if (rc)
				return rc;
			debug_publish(c, &ev->msg);
			if (ev->msg.qos == 2) {
				hold(c, &ev->msg, f.flags, body, f.remaining);
				rc = send_ack(c, MQTT_PUBREC, ev->msg.packet_id);
				if (rc)
					return rc;
				continue;
			}
			if (ev->msg.qos == 1 && (rc = send_ack(c, MQTT_PUBACK, ev->msg.packet_id)) != 0)
				return rc;
			ev->type = MQTTC_EV_MESSAGE;
			return 0;
		case MQTT_PUBREL:
			if (mqtt_decode_ack(MQTT_PUBREL, body, f.remaining, f.flags, c->protocol, &a))
				return protocol_error(c, "malformed PUBREL");
			mqttc_debug(c, "received PUBREL (Mid: %u)", a.packet_id);
			rc = send_ack(c, MQTT_PUBCOMP, a.packet_id);
			if (rc)
				return rc;
			for (size_t i = 0; i < c->n_held; i++) {
				if (c->held[i].mid != a.packet_id)
					continue;
				c->current = c->held[i];
				memmove(&c->held[i], &c->held[i + 1], (c->n_held - i - 1) * sizeof(c->held[0]));
				c->n_held--;
				if (mqtt_decode_publish(c->current.body, c->current.len, c->current.flags,
							c->protocol, &ev->msg) != MQTT_OK)
					return protocol_error(c, "malformed PUBLISH");
				/* The topic as resolved on arrival (an alias may have moved since). */
				buf_set(&c->topic, c->current.body + c->current.len, c->current.topic_len);
				ev->msg.topic.data = c->topic.p;
				ev->msg.topic.len = c->current.topic_len;
				ev->type = MQTTC_EV_MESSAGE;
				return 0;
			}
			continue;
		case MQTT_PUBACK:
		case MQTT_PUBREC:
		case MQTT_PUBCOMP:
			if (mqtt_decode_ack(f.type, body, f.remaining, f.flags, c->protocol, &a))
				return protocol_error(c, "malformed acknowledgement");
			if (f.type == MQTT_PUBACK)
				mqttc_debug(c, "received PUBACK (Mid: %u, RC:%d)", a.packet_id, a.reason);
			else if (f.type == MQTT_PUBREC)
				mqttc_debug(c, "received PUBREC (Mid: %u)", a.packet_id);
			else
				mqttc_debug(c, "received PUBCOMP (Mid: %u, RC:%d)", a.packet_id, a.reason);
			m = find_inflight(c, a.packet_id);
			if (!m || (f.type == MQTT_PUBACK && m->qos != 1) ||
			    (f.type != MQTT_PUBACK && m->qos != 2) ||
			    (f.type == MQTT_PUBCOMP && !m->pubrec))
				continue; /* not ours: ignored, as libmosquitto does */
			if (f.type == MQTT_PUBREC && a.reason < 0x80) {
				m->pubrec = true;
				rc = send_ack(c, MQTT_PUBREL, a.packet_id);
				if (rc)
					return rc;
				continue;
			}
			remove_inflight(c, m);
			ev->type = MQTTC_EV_PUBLISHED;
			ev->mid = a.packet_id;
			ev->reason = a.reason;
			return 0;
		case MQTT_SUBACK:
		case MQTT_UNSUBACK:
			if (mqtt_decode_suback(f.type, body, f.remaining, f.flags, c->protocol, &s))
				return protocol_error(c, f.type == MQTT_SUBACK ? "malformed SUBACK" :
						      "malformed UNSUBACK");
			mqttc_debug(c, "received %s", f.type == MQTT_SUBACK ? "SUBACK" : "UNSUBACK");
			ev->type = f.type == MQTT_SUBACK ? MQTTC_EV_SUBACK : MQTTC_EV_UNSUBACK;
			ev->mid = s.packet_id;
			ev->codes = s.codes;
			return 0;
		case MQTT_DISCONNECT:
			if (c->protocol != MQTT_PROTO_V5 ||
			    mqtt_decode_disconnect(body, f.remaining, f.flags, c->protocol, &d))
				return protocol_error(c, "unexpected DISCONNECT");
			mqttc_debug(c, "received DISCONNECT (%d)", d.reason);
			c->closed = true;
			ev->type = MQTTC_EV_DISCONNECT;
			ev->reason = d.reason;
			return 0;
		default:
			return protocol_error(c, "unexpected packet");
		}
	}
}
