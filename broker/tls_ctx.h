/*
 * tls_ctx.h: building a listener's OpenSSL server context.
 *
 * Owns the translation of a listener's TLS and PSK options (certfile,
 * keyfile, cafile, capath, crlfile, require_certificate, tls_version,
 * ciphers, ciphers_tls1.3, dhparamfile, psk_hint + psk_file) into an
 * SSL_CTX, including the PSK table the context carries with it. It reads
 * files but keeps no state of its own.
 */
#ifndef MIDGE_TLS_CTX_H
#define MIDGE_TLS_CTX_H

#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

typedef struct ssl_ctx_st SSL_CTX;

/* Whether the listener's options ask for TLS (certificates or PSK). */
bool tls_listener_enabled(const struct config_listener *l);

/*
 * Builds the context; NULL with a message naming the file or option in err
 * when something is missing, unreadable or inconsistent.
 */
/* `index` is the listener's position in the configuration (for plugins' PSK_KEY). */
SSL_CTX *tls_ctx_build(const struct config_listener *l, unsigned index, char *err,
		       size_t errlen);

typedef struct ssl_st SSL;
/* The PSK identity the handshake of ssl used, or NULL. */
const char *tls_psk_identity(const SSL *ssl);

/* Loads a mosquitto psk_file ("identity:hexkey" lines) and checks it; for -t and tests. */
int tls_psk_file_check(const char *path, char *err, size_t errlen);

#endif
