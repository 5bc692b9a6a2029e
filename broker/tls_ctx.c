/*
 * tls_ctx.c: a listener's SSL_CTX from its options (see tls_ctx.h).
 */
#include "config.h"

#include "tls_ctx.h"

#include "alloc.h"
#include "hooks.h"
#include "worker.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <string.h>

#define PSK_MAX_KEY 256

/* A PSK table travels with its SSL_CTX (ex_data), so it lives as long as any handshake. */
struct psk_entry {
	char *identity;
	unsigned char key[PSK_MAX_KEY];
	size_t key_len;
};

struct psk_table {
	struct psk_entry *entries;
	size_t n;
	/* Whose table it is, for the plugins' PSK_KEY event. */
	unsigned listener;
	int port;
	char *hint;
};

static int psk_index = -1;
/* The identity a PSK handshake used, kept on the SSL (TLS 1.3 resumption-style PSK
 * leaves SSL_get_psk_identity() empty). */
static int psk_identity_index = -1;

static void identity_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			     void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	mem_free(ptr);
}

const char *tls_psk_identity(const SSL *ssl)
{
	return psk_identity_index < 0 ? NULL : SSL_get_ex_data(ssl, psk_identity_index);
}

static void psk_table_free(struct psk_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		OPENSSL_cleanse(t->entries[i].key, sizeof(t->entries[i].key));
		mem_free(t->entries[i].identity);
	}
	mem_free(t->entries);
	mem_free(t->hint);
	mem_free(t);
}

static void psk_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	psk_table_free(ptr);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Parses one "identity:hexkey" line into e; returns a message on error. */
static const char *psk_parse_line(char *line, struct psk_entry *e)
{
	char *colon = strchr(line, ':');
	size_t hexlen;

	if (!colon || colon == line)
		return "expected identity:hexkey";
	*colon = '\0';
	hexlen = strlen(colon + 1);
	if (hexlen == 0 || hexlen % 2 || hexlen / 2 > PSK_MAX_KEY)
		return "the key must be an even number of hex digits (at most 512)";
	for (size_t i = 0; i < hexlen / 2; i++) {
		int hi = hexval((unsigned char)colon[1 + 2 * i]), lo = hexval((unsigned char)colon[2 + 2 * i]);
		if (hi < 0 || lo < 0)
			return "the key must be hex digits";
		e->key[i] = (unsigned char)(hi << 4 | lo);
	}
	e->key_len = hexlen / 2;
	e->identity = mem_strdup(line);
	return e->identity ? NULL : "out of memory";
}

static struct psk_table *psk_load(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	struct psk_table *t = NULL;
	char line[1024];
	int lineno = 0;

	if (!f) {
		snprintf(err, errlen, "%s: unable to open psk_file: %s", path, strerror(errno));
		return NULL;
	}
	t = mem_calloc(1, sizeof(*t));
	if (!t)
		goto fail;
	while (fgets(line, sizeof(line), f)) {
		size_t len = strcspn(line, "\r\n");
		const char *why;
		struct psk_entry *grown;

		lineno++;
		line[len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		grown = mem_realloc(t->entries, (t->n + 1) * sizeof(*grown));
		if (!grown)
			goto fail;
		t->entries = grown;
		memset(&t->entries[t->n], 0, sizeof(t->entries[t->n]));
		why = psk_parse_line(line, &t->entries[t->n]);
		OPENSSL_cleanse(line, sizeof(line));
		if (why) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
			mem_free(t->entries[t->n].identity);
			goto fail;
		}
		t->n++;
	}
	fclose(f);
	return t;
fail:
	if (!err[0])
		snprintf(err, errlen, "%s: out of memory", path);
	fclose(f);
	psk_table_free(t);
	return NULL;
}

int tls_psk_file_check(const char *path, char *err, size_t errlen)
{
	struct psk_table *t;

	err[0] = '\0';
	t = psk_load(path, err, errlen);
	psk_table_free(t);
	return t ? 0 : -1;
}

static unsigned int psk_server_cb(SSL *ssl, const char *identity, unsigned char *psk,
				  unsigned int max_psk_len)
{
	SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
	const struct psk_table *t = SSL_CTX_get_ex_data(ctx, psk_index);

	struct worker *w = worker_current();
	uint8_t key[PSK_MAX_KEY];
	uint32_t key_len = 0;

	if (!t || !identity)
		return 0;
	/* Plugins first; the psk_file answers when they all defer. */
	switch (w ? hook_psk_key(w, t->listener, t->port, identity, t->hint, key,
				 max_psk_len < sizeof(key) ? max_psk_len : sizeof(key), &key_len)
		  : HOOK_NONE) {
	case HOOK_ALLOW: {
		char *copy = mem_strdup(identity);
		if (!copy || SSL_set_ex_data(ssl, psk_identity_index, copy) != 1) {
			mem_free(copy);
			OPENSSL_cleanse(key, sizeof(key));
			return 0;
		}
		memcpy(psk, key, key_len);
		OPENSSL_cleanse(key, sizeof(key));
		return key_len;
	}
	case HOOK_DENY:
		return 0;
	default:
		break;
	}
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->entries[i].identity, identity) != 0)
			continue;
		if (t->entries[i].key_len > max_psk_len)
			return 0;
		char *copy = mem_strdup(identity);
		if (!copy || SSL_set_ex_data(ssl, psk_identity_index, copy) != 1) {
			mem_free(copy);
			return 0;
		}
		memcpy(psk, t->entries[i].key, t->entries[i].key_len);
		return (unsigned int)t->entries[i].key_len;
	}
	return 0;
}

bool tls_listener_enabled(const struct config_listener *l)
{
	return l->certfile || l->psk_hint;
}

static void openssl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "unknown error");
	ERR_clear_error();
}

static int min_version(const char *v)
{
	if (!v || strcmp(v, "tlsv1.2") == 0)
		return TLS1_2_VERSION;
	if (strcmp(v, "tlsv1.3") == 0)
		return TLS1_3_VERSION;
	if (strcmp(v, "tlsv1.1") == 0)
		return TLS1_1_VERSION;
	return -1;
}

/* Certificates, keys, verification. Returns 0 or -1 with err filled. */
static int load_certs(SSL_CTX *ctx, const struct config_listener *l, char *err, size_t errlen)
{
	char why[256];

	if (l->certfile && SSL_CTX_use_certificate_chain_file(ctx, l->certfile) != 1) {
		openssl_reason(why, sizeof(why));
		snprintf(err, errlen, "%s: unable to load the certificate (certfile): %s", l->certfile, why);
		return -1;
	}
	if (l->keyfile && SSL_CTX_use_PrivateKey_file(ctx, l->keyfile, SSL_FILETYPE_PEM) != 1) {
		openssl_reason(why, sizeof(why));
		snprintf(err, errlen, "%s: unable to load the private key (keyfile): %s", l->keyfile, why);
		return -1;
	}
	if (l->certfile && SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "%s: the private key does not match the certificate %s",
			 l->keyfile ? l->keyfile : "(none)", l->certfile);
		return -1;
	}
	if ((l->cafile || l->capath) &&
	    SSL_CTX_load_verify_locations(ctx, l->cafile, l->capath) != 1) {
		openssl_reason(why, sizeof(why));
		snprintf(err, errlen, "%s: unable to load the CA certificates: %s",
			 l->cafile ? l->cafile : l->capath, why);
		return -1;
	}
	if (l->require_certificate) {
		if (!l->cafile && !l->capath) {
			snprintf(err, errlen, "require_certificate needs cafile or capath");
			return -1;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	if (l->crlfile) {
		X509_STORE *store = SSL_CTX_get_cert_store(ctx);
		X509_LOOKUP *lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
		if (!lookup || X509_load_crl_file(lookup, l->crlfile, X509_FILETYPE_PEM) < 1) {
			openssl_reason(why, sizeof(why));
			snprintf(err, errlen, "%s: unable to load the CRL (crlfile): %s", l->crlfile, why);
			return -1;
		}
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	}
	return 0;
}

static int set_ciphers(SSL_CTX *ctx, const struct config_listener *l, char *err, size_t errlen)
{
	/* A PSK-only listener needs PSK suites among the TLS 1.2 ones. */
	const char *list = l->ciphers ? l->ciphers : (!l->certfile ? "PSK" : NULL);

	if (list && SSL_CTX_set_cipher_list(ctx, list) != 1) {
		snprintf(err, errlen, "invalid ciphers '%s'", list);
		return -1;
	}
	if (l->ciphers_tls13 && SSL_CTX_set_ciphersuites(ctx, l->ciphers_tls13) != 1) {
		snprintf(err, errlen, "invalid ciphers_tls1.3 '%s'", l->ciphers_tls13);
		return -1;
	}
	return 0;
}

static int set_psk(SSL_CTX *ctx, const struct config_listener *l, unsigned index, char *err,
		   size_t errlen)
{
	struct psk_table *t;

	if (!l->psk_hint)
		return 0;
	/* Without a psk_file only plugins (PSK_KEY) know keys. */
	t = l->security.psk_file ? psk_load(l->security.psk_file, err, errlen)
				 : mem_calloc(1, sizeof(*t));
	if (!t) {
		if (!err[0])
			snprintf(err, errlen, "out of memory");
		return -1;
	}
	t->listener = index;
	t->port = l->port;
	t->hint = mem_strdup(l->psk_hint);
	if (SSL_CTX_set_ex_data(ctx, psk_index, t) != 1) {
		psk_table_free(t);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	SSL_CTX_use_psk_identity_hint(ctx, l->psk_hint);
	SSL_CTX_set_psk_server_callback(ctx, psk_server_cb);
	return 0;
}

SSL_CTX *tls_ctx_build(const struct config_listener *l, unsigned index, char *err, size_t errlen)
{
	SSL_CTX *ctx;
	int version = min_version(l->tls_version);

	err[0] = '\0';
	if (psk_index < 0)
		psk_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, psk_ex_free);
	if (psk_identity_index < 0)
		psk_identity_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, identity_ex_free);
	if (version < 0) {
		snprintf(err, errlen, "unknown tls_version '%s' (tlsv1.1, tlsv1.2 or tlsv1.3)",
			 l->tls_version);
		return NULL;
	}
	if (l->certfile && !l->keyfile) {
		snprintf(err, errlen, "certfile %s needs a keyfile", l->certfile);
		return NULL;
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		snprintf(err, errlen, "unable to create a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, version);
	/* Writes may move (the output queue is re-gathered) and may be partial. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
			 SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (load_certs(ctx, l, err, errlen) < 0 || set_ciphers(ctx, l, err, errlen) < 0 ||
	    set_psk(ctx, l, index, err, errlen) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}
