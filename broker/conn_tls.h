/*
 * conn_tls.h: the TLS transport (see conn_tls.c).
 */
#ifndef MIDGE_CONN_TLS_H
#define MIDGE_CONN_TLS_H

#include "conn.h"

typedef struct ssl_ctx_st SSL_CTX;

extern const struct conn_type conn_type_tls;

/* Makes c a server-side TLS connection on fd with ctx; -1 on failure (fd untouched). */
int conn_tls_init(struct conn *c, int fd, SSL_CTX *ctx);

#endif
