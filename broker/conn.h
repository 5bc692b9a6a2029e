/*
 * conn.h: the transport vtable under every client connection.
 *
 * A connection is a file descriptor plus transport state (nothing for TCP,
 * an SSL object for TLS, framing state for WebSockets). The client module
 * reads and writes only through these wrappers, so a new transport is a new
 * conn_type, never a special case in the protocol code.
 */
#ifndef MIDGE_CONN_H
#define MIDGE_CONN_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct conn;

struct conn_type {
	const char *name;
	/* >0 bytes read, 0 end of stream, -1 error (errno EAGAIN: try later). */
	ssize_t (*read)(struct conn *c, void *buf, size_t len);
	/* Bytes written (maybe fewer), or -1 (errno EAGAIN: try later). */
	ssize_t (*writev)(struct conn *c, const struct iovec *iov, int iovcnt);
	/* Releases transport state and closes the descriptor. */
	void (*close)(struct conn *c);
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

#endif
