/*
 * conn_tls.h: the TLS transport (see conn_tls.c).
 */
#ifndef MIDGE_CONN_TLS_H
#define MIDGE_CONN_TLS_H

#include "conn.h"

#include <stdbool.h>

typedef struct ssl_ctx_st SSL_CTX;

extern const struct conn_type conn_type_tls;

/* Makes c a server-side TLS connection on fd with ctx; -1 on failure (fd untouched). */
int conn_tls_init(struct conn *c, int fd, SSL_CTX *ctx);
/* A client-side TLS connection to server_name (a host name or address), checking that the
 * server's certificate names it when verify_name. */
int conn_tls_init_client(struct conn *c, int fd, SSL_CTX *ctx, const char *server_name,
			 bool verify_name);

#endif
