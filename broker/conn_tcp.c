/*
 * conn_tcp.c: the plain TCP transport (and unix sockets, which read and
 * write the same way).
 */
#include "config.h"

#include "conn.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t tcp_read(struct conn *c, void *buf, size_t len)
{
	ssize_t n;

	do {
		n = read(c->fd, buf, len);
	} while (n < 0 && errno == EINTR);
	return n;
}

static ssize_t tcp_writev(struct conn *c, const struct iovec *iov, int iovcnt)
{
	struct msghdr msg = {0};
	ssize_t n;

	msg.msg_iov = (struct iovec *)iov;
	msg.msg_iovlen = (size_t)iovcnt;
	/* sendmsg with MSG_NOSIGNAL: a peer that went away must not raise SIGPIPE. */
	do {
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	return n;
}

static void tcp_close(struct conn *c)
{
	close(c->fd);
}

const struct conn_type conn_type_tcp = {
	.name = "tcp",
	.read = tcp_read,
	.writev = tcp_writev,
	.close = tcp_close,
};

void conn_tcp_init(struct conn *c, int fd)
{
	c->type = &conn_type_tcp;
	c->fd = fd;
	c->state = NULL;
}
