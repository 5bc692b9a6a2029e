/*
 * conn.h: the transport vtable under every client connection.
 *
 * A connection is a file descriptor plus transport state (nothing for TCP,
 * an SSL object for TLS, framing state for WebSockets). The client module
 * reads and writes only through these wrappers, so a new transport is a new
 * conn_type, never a special case in the protocol code. Transports stack:
 * WebSockets keep an inner connection (TCP or TLS) in their state and do
 * their I/O through it.
 */
#ifndef MIDGE_CONN_H
#define MIDGE_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct conn;

/* What conn_peer_identity() returns. */
enum conn_identity {
	CONN_ID_CERT_CN = 1,      /* common name of the client certificate */
	CONN_ID_CERT_SUBJECT = 2, /* whole subject, RFC 2253 form */
	CONN_ID_PSK = 3,          /* PSK identity */
};

struct conn_type {
	const char *name;
	/*
	 * Reads application bytes: >0 bytes read, 0 end of stream, -1 error
	 * (errno EAGAIN: nothing now; EPROTO: the peer broke the transport's
	 * protocol, see conn_error()).
	 */
	ssize_t (*read)(struct conn *c, void *buf, size_t len);
	/* Application bytes written (maybe fewer), or -1 (errno EAGAIN: try later). */
	ssize_t (*writev)(struct conn *c, const struct iovec *iov, int iovcnt);
	/* Releases transport state and closes the descriptor. */
	void (*close)(struct conn *c);
	/* Optional: bytes the transport holds decoded but not yet returned by read. */
	size_t (*pending)(const struct conn *c);
	/* Optional: events the transport needs besides the client's (EV_WRITE while
	 * a TLS read waits to write, say). */
	uint32_t (*wants)(const struct conn *c);
	/* Optional: the peer's identity, or NULL. Valid while the connection lives. */
	const char *(*peer_identity)(const struct conn *c, enum conn_identity kind);
	/* Optional: why the last call failed, for the log (NULL when nothing to say). */
	const char *(*error)(const struct conn *c);
};

struct conn {
	const struct conn_type *type;
	int fd;
	void *state;
};

extern const struct conn_type conn_type_tcp;

static inline ssize_t conn_read(struct conn *c, void *buf, size_t len)
{
	return c->type->read(c, buf, len);
}

static inline ssize_t conn_writev(struct conn *c, const struct iovec *iov, int iovcnt)
{
	return c->type->writev(c, iov, iovcnt);
}

static inline void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		c->type->close(c);
	c->fd = -1;
}

static inline size_t conn_pending(const struct conn *c)
{
	return c->type->pending ? c->type->pending(c) : 0;
}

static inline uint32_t conn_wants(const struct conn *c)
{
	return c->type->wants ? c->type->wants(c) : 0;
}

static inline const char *conn_peer_identity(const struct conn *c, enum conn_identity kind)
{
	return c->type->peer_identity ? c->type->peer_identity(c, kind) : NULL;
}

static inline const char *conn_error(const struct conn *c)
{
	return c->type->error ? c->type->error(c) : NULL;
}

/* Plain TCP (or unix socket) on fd. */
void conn_tcp_init(struct conn *c, int fd);

#endif
