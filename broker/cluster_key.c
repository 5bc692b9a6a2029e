/*
 * cluster_key.c: MQTT topics (and single names) to JetStream key-value keys
 * and back (the encoding is described in cluster_wire.h).
 */
#include "config.h"

#include "cluster_wire.h"

#include <openssl/evp.h>
#include <string.h>

static const char hex[] = "0123456789ABCDEF";

static bool plain(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* Bytes one level (or name) of len bytes takes as a token, escaped. */
static size_t token_size(const char *s, size_t len)
{
	size_t n = 0;

	if (len == 0)
		return 1;
	for (size_t i = 0; i < len; i++)
		n += plain((unsigned char)s[i]) ? 1 : 3;
	return n;
}

static size_t put_token(char *out, const char *s, size_t len)
{
	size_t n = 0;

	if (len == 0) {
		out[n++] = CLUSTER_KEY_ESCAPE;
		return n;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (plain(c)) {
			out[n++] = (char)c;
		} else {
			out[n++] = CLUSTER_KEY_ESCAPE;
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		}
	}
	return n;
}

/* The hashed form of a key too long to write out: "=H." and SHA-256 in hex. */
static size_t put_hashed(char *out, const char *topic, size_t len)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	size_t n = 0;

	if (EVP_Digest(topic, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != sizeof(md))
		memset(md, 0, sizeof(md)); /* not expected: the key is still a valid one */
	out[n++] = CLUSTER_KEY_ESCAPE;
	out[n++] = 'H';
	out[n++] = '.';
	for (size_t i = 0; i < sizeof(md); i++) {
		out[n++] = hex[md[i] >> 4];
		out[n++] = hex[md[i] & 15];
	}
	out[n] = '\0';
	return n;
}

size_t cluster_key_for_topic(char out[CLUSTER_KEY_MAX + 1], const char *topic, size_t len)
{
	size_t need = 0, n = 0, start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i == len || topic[i] == '/') {
			need += token_size(topic + start, i - start) + 1;
			start = i + 1;
		}
	}
	if (need - 1 > CLUSTER_KEY_MAX)
		return put_hashed(out, topic, len);
	start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || topic[i] == '/') {
			if (start > 0)
				out[n++] = '.';
			n += put_token(out + n, topic + start, i - start);
			start = i + 1;
		}
	}
	out[n] = '\0';
	return n;
}

long cluster_key_token(char *out, size_t cap, const char *name, size_t len)
{
	size_t need = token_size(name, len);

	if (need + 1 > cap)
		return -1;
	put_token(out, name, len);
	out[need] = '\0';
	return (long)need;
}

static int unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long cluster_topic_for_key(char *out, const char *key)
{
	size_t n = 0;
	const char *p = key;

	if (!*p)
		return -1;
	for (;;) {
		const char *end = strchr(p, '.');
		size_t tlen = end ? (size_t)(end - p) : strlen(p);
		if (tlen == 0)
			return -1;
		if (!(tlen == 1 && *p == CLUSTER_KEY_ESCAPE)) {
			for (size_t i = 0; i < tlen; i++) {
				unsigned char c = (unsigned char)p[i];
				if (plain(c)) {
					out[n++] = (char)c;
					continue;
				}
				int hi, lo;
				if (c != CLUSTER_KEY_ESCAPE || i + 2 >= tlen ||
				    (hi = unhex(p[i + 1])) < 0 || (lo = unhex(p[i + 2])) < 0)
					return -1;
				c = (unsigned char)(hi << 4 | lo);
				/* Only bytes the encoder escapes may be escaped: one key per topic. */
				if (plain(c) || c == '/' || c == 0)
					return -1;
				out[n++] = (char)c;
				i += 2;
			}
		}
		if (!end)
			break;
		out[n++] = '/';
		p = end + 1;
	}
	out[n] = '\0';
	return (long)n;
}
