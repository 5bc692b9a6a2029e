/*
 * conn_tls.c: the TLS transport (OpenSSL 3), non-blocking throughout.
 *
 * The handshake happens inside the first reads (server accept state); its
 * duration is bounded by the client's CONNECT timeout. Writes gather the
 * output queue into one TLS record-sized buffer; a write that OpenSSL asks
 * to repeat is repeated with the same length, as it requires. Certificate
 * and PSK identities are read once, after the handshake.
 */
#include "config.h"

#include "conn_tls.h"

#include "alloc.h"
#include "ev.h"
#include "tls_ctx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* One TLS record's worth of plaintext per write. */
#define TLS_WRITE_CHUNK 16384

struct tls_state {
	SSL *ssl;
	bool want_write;      /* a read or the handshake waits for the socket to drain */
	uint32_t retry_len;   /* a write OpenSSL must see again, with this length */
	char *cert_cn;
	char *cert_subject;
	char error[160];
};

/*
 * Writes gather into one buffer per thread: a write OpenSSL must repeat is
 * gathered again from the same unconsumed front of the output queue
 * (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), so no connection keeps a buffer.
 */
static __thread uint8_t write_buf[TLS_WRITE_CHUNK];

static struct tls_state *tls_of(const struct conn *c)
{
	return c->state;
}

static void note_error(struct tls_state *t, const char *what)
{
	unsigned long e = ERR_get_error();
	char reason[120];

	if (e)
		ERR_error_string_n(e, reason, sizeof(reason));
	else
		snprintf(reason, sizeof(reason), "%s", errno ? strerror(errno) : "connection closed");
	snprintf(t->error, sizeof(t->error), "%s: %s", what, reason);
	ERR_clear_error();
}

static char *x509_name_text(X509_NAME *name, bool cn_only)
{
	char buf[512];

	if (cn_only) {
		int n = X509_NAME_get_text_by_NID(name, NID_commonName, buf, sizeof(buf));
		return n > 0 ? mem_strndup(buf, (size_t)n) : NULL;
	}
	BIO *bio = BIO_new(BIO_s_mem());
	char *out = NULL;
	if (!bio)
		return NULL;
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
		int n = BIO_read(bio, buf, sizeof(buf) - 1);
		if (n > 0)
			out = mem_strndup(buf, (size_t)n);
	}
	BIO_free(bio);
	return out;
}

static void read_identities(struct tls_state *t)
{
	X509 *cert;

	if (t->cert_cn || t->cert_subject)
		return;
	cert = SSL_get1_peer_certificate(t->ssl);
	if (!cert)
		return;
	t->cert_cn = x509_name_text(X509_get_subject_name(cert), true);
	t->cert_subject = x509_name_text(X509_get_subject_name(cert), false);
	X509_free(cert);
}

/* Maps an OpenSSL failure to our return convention. */
static ssize_t fail(struct tls_state *t, int rc, const char *what)
{
	switch (SSL_get_error(t->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		t->want_write = true;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0 && (errno == 0 || errno == ECONNRESET || errno == EPIPE)) {
			ERR_clear_error();
			return 0; /* the peer went away */
		}
		note_error(t, what);
		errno = EPROTO;
		return -1;
	default:
		note_error(t, what);
		errno = EPROTO;
		return -1;
	}
}

static ssize_t tls_read(struct conn *c, void *buf, size_t len)
{
	struct tls_state *t = tls_of(c);
	size_t n = 0;
	int rc;

	t->want_write = false;
	errno = 0;
	rc = SSL_read_ex(t->ssl, buf, len, &n);
	if (rc == 1) {
		read_identities(t);
		return (ssize_t)n;
	}
	return fail(t, rc, SSL_is_init_finished(t->ssl) ? "TLS read failed" : "TLS handshake failed");
}

static ssize_t tls_writev(struct conn *c, const struct iovec *iov, int iovcnt)
{
	struct tls_state *t = tls_of(c);
	size_t len = 0, written = 0;
	int rc;

	/* Gather the front of the queue; a repeated write keeps its first length. */
	size_t limit = t->retry_len ? t->retry_len : sizeof(write_buf);
	for (int i = 0; i < iovcnt && len < limit; i++) {
		size_t take = iov[i].iov_len < limit - len ? iov[i].iov_len : limit - len;
		memcpy(write_buf + len, iov[i].iov_base, take);
		len += take;
	}
	if (len == 0)
		return 0;
	errno = 0;
	rc = SSL_write_ex(t->ssl, write_buf, len, &written);
	if (rc == 1) {
		t->retry_len = 0;
		return (ssize_t)written;
	}
	ssize_t r = fail(t, rc, "TLS write failed");
	if (r < 0 && errno == EAGAIN)
		t->retry_len = (uint32_t)len;
	if (r == 0) {
		errno = EPIPE;
		r = -1;
	}
	return r;
}

static void tls_close(struct conn *c)
{
	struct tls_state *t = tls_of(c);

	if (t) {
		/* Best effort close_notify; never wait for the peer's. */
		if (SSL_is_init_finished(t->ssl))
			SSL_shutdown(t->ssl);
		ERR_clear_error();
		SSL_free(t->ssl);
		mem_free(t->cert_cn);
		mem_free(t->cert_subject);
		mem_free(t);
		c->state = NULL;
	}
	close(c->fd);
}

static size_t tls_pending(const struct conn *c)
{
	return (size_t)SSL_pending(tls_of(c)->ssl);
}

static uint32_t tls_wants(const struct conn *c)
{
	return tls_of(c)->want_write ? EV_WRITE : 0;
}

static const char *tls_identity(const struct conn *c, enum conn_identity kind)
{
	struct tls_state *t = tls_of(c);

	switch (kind) {
	case CONN_ID_CERT_CN:
		return t->cert_cn;
	case CONN_ID_CERT_SUBJECT:
		return t->cert_subject;
	case CONN_ID_PSK: {
		const char *id = tls_psk_identity(t->ssl);
		return id ? id : SSL_get_psk_identity(t->ssl);
	}
	}
	return NULL;
}

static const char *tls_error(const struct conn *c)
{
	struct tls_state *t = tls_of(c);

	return t->error[0] ? t->error : NULL;
}

const struct conn_type conn_type_tls = {
	.name = "tls",
	.read = tls_read,
	.writev = tls_writev,
	.close = tls_close,
	.pending = tls_pending,
	.wants = tls_wants,
	.peer_identity = tls_identity,
	.error = tls_error,
};

static int tls_init(struct conn *c, int fd, SSL_CTX *ctx, const char *server_name, bool verify_name)
{
	struct tls_state *t = mem_calloc(1, sizeof(*t));

	if (!t)
		return -1;
	t->ssl = SSL_new(ctx);
	if (!t->ssl || SSL_set_fd(t->ssl, fd) != 1) {
		SSL_free(t->ssl);
		mem_free(t);
		return -1;
	}
	if (!server_name) {
		SSL_set_accept_state(t->ssl);
	} else {
		SSL_set_connect_state(t->ssl);
		/* SNI for names only; the certificate must name the host (or address) unless the
		 * operator said otherwise. */
		struct in6_addr a6;
		struct in_addr a4;
		if (inet_pton(AF_INET, server_name, &a4) != 1 && inet_pton(AF_INET6, server_name, &a6) != 1)
			SSL_set_tlsext_host_name(t->ssl, server_name);
		if (verify_name && SSL_set1_host(t->ssl, server_name) != 1) {
			SSL_free(t->ssl);
			mem_free(t);
			return -1;
		}
	}
	c->type = &conn_type_tls;
	c->fd = fd;
	c->state = t;
	return 0;
}

int conn_tls_init(struct conn *c, int fd, SSL_CTX *ctx)
{
	return tls_init(c, fd, ctx, NULL, false);
}

int conn_tls_init_client(struct conn *c, int fd, SSL_CTX *ctx, const char *server_name,
			 bool verify_name)
{
	return tls_init(c, fd, ctx, server_name, verify_name);
}
