/*
 * bridge_tls.c: the TLS client context of a bridge: the CAs that must sign
 * the remote's certificate (or the system's), an optional client
 * certificate, a minimum TLS version, ciphers, ALPN, or a pre-shared key
 * instead of certificates. The host name check itself is per connection
 * (conn_tls_init_client), unless bridge_insecure.
 */
#include "config.h"

#include "bridge_int.h"

#include "alloc.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

/* The PSK of a context: identity and key bytes. */
struct bridge_psk {
	char *identity;
	uint8_t key[256];
	unsigned key_len;
};

static int psk_index = -1;

static void psk_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct bridge_psk *k = ptr;

	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (k) {
		mem_free(k->identity);
		OPENSSL_cleanse(k->key, sizeof(k->key));
		mem_free(k);
	}
}

static unsigned int psk_client(SSL *ssl, const char *hint, char *identity, unsigned int max_identity,
			       unsigned char *psk, unsigned int max_psk)
{
	const struct bridge_psk *k = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), psk_index);

	(void)hint;
	if (!k || strlen(k->identity) + 1 > max_identity || k->key_len > max_psk)
		return 0;
	memcpy(identity, k->identity, strlen(k->identity) + 1);
	memcpy(psk, k->key, k->key_len);
	return k->key_len;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int set_psk(SSL_CTX *ctx, const struct config_bridge *cb, char *err, size_t errlen)
{
	struct bridge_psk *k;
	size_t n = strlen(cb->psk);

	if (psk_index < 0)
		psk_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, psk_free);
	if (n % 2 || n / 2 > sizeof(k->key) || psk_index < 0) {
		snprintf(err, errlen, "bridge_psk must be an even number of hex digits, at most 512");
		return -1;
	}
	if (!(k = mem_calloc(1, sizeof(*k))) || !(k->identity = mem_strdup(cb->identity))) {
		mem_free(k);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_value(cb->psk[2 * i]), lo = hex_value(cb->psk[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			psk_free(NULL, k, NULL, 0, 0, NULL);
			snprintf(err, errlen, "bridge_psk must be hexadecimal");
			return -1;
		}
		k->key[i] = (uint8_t)(hi << 4 | lo);
	}
	k->key_len = (unsigned)(n / 2);
	SSL_CTX_set_ex_data(ctx, psk_index, k);
	SSL_CTX_set_psk_client_callback(ctx, psk_client);
	return 0;
}

static const char *openssl_error(void)
{
	unsigned long e = ERR_get_error();
	static _Thread_local char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	return e ? buf : "unknown error";
}

SSL_CTX *bridge_tls_ctx(const struct config_bridge *cb, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	int min = TLS1_2_VERSION;

	if (!ctx) {
		snprintf(err, errlen, "cannot create a TLS context: %s", openssl_error());
		return NULL;
	}
	if (cb->tls_version) {
		if (strcmp(cb->tls_version, "tlsv1.3") == 0)
			min = TLS1_3_VERSION;
		else if (strcmp(cb->tls_version, "tlsv1.1") == 0)
			min = TLS1_1_VERSION;
	}
	SSL_CTX_set_min_proto_version(ctx, min);
	if (cb->psk) {
		if (set_psk(ctx, cb, err, errlen) < 0)
			goto fail;
	} else {
		if ((cb->cafile || cb->capath) &&
		    SSL_CTX_load_verify_locations(ctx, cb->cafile, cb->capath) != 1) {
			snprintf(err, errlen, "cannot load bridge_cafile/bridge_capath %s: %s",
				 cb->cafile ? cb->cafile : cb->capath, openssl_error());
			goto fail;
		}
		if (cb->tls_use_os_certs && SSL_CTX_set_default_verify_paths(ctx) != 1) {
			snprintf(err, errlen, "cannot load the system's CA certificates: %s",
				 openssl_error());
			goto fail;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		if (cb->certfile &&
		    (SSL_CTX_use_certificate_chain_file(ctx, cb->certfile) != 1 ||
		     SSL_CTX_use_PrivateKey_file(ctx, cb->keyfile, SSL_FILETYPE_PEM) != 1 ||
		     SSL_CTX_check_private_key(ctx) != 1)) {
			snprintf(err, errlen, "cannot use bridge_certfile %s / bridge_keyfile %s: %s",
				 cb->certfile, cb->keyfile, openssl_error());
			goto fail;
		}
	}
	if (cb->ciphers && SSL_CTX_set_cipher_list(ctx, cb->ciphers) != 1) {
		snprintf(err, errlen, "bad bridge_ciphers %s", cb->ciphers);
		goto fail;
	}
	if (cb->ciphers_tls13 && SSL_CTX_set_ciphersuites(ctx, cb->ciphers_tls13) != 1) {
		snprintf(err, errlen, "bad bridge_ciphers_tls1.3 %s", cb->ciphers_tls13);
		goto fail;
	}
	if (cb->alpn) {
		size_t n = strlen(cb->alpn);
		uint8_t proto[256];
		if (n == 0 || n > 255) {
			snprintf(err, errlen, "bad bridge_alpn %s", cb->alpn);
			goto fail;
		}
		proto[0] = (uint8_t)n;
		memcpy(proto + 1, cb->alpn, n);
		SSL_CTX_set_alpn_protos(ctx, proto, (unsigned)n + 1);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void bridge_tls_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}
