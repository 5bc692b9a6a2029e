/*
 * cluster_topic.c: MQTT topics and filters to NATS subjects and back (the
 * mapping is described in cluster_wire.h).
 */
#include "config.h"

#include "cluster_wire.h"

#include <string.h>

static const char hex[] = "0123456789ABCDEF";

static bool special(unsigned char c)
{
	return c <= 0x20 || c == 0x7f || c == '.' || c == '*' || c == '>' || c == CLUSTER_ESCAPE;
}

size_t cluster_subject_max(const char *prefix, size_t len)
{
	/* prefix "." kind "." then at most 3 bytes per topic byte, plus "~" per empty
	 * level (one more than its '/') and the two tokens of a "/#" filter. */
	return strlen(prefix) + 4 + 3 * len + 4;
}

static size_t put_head(char *out, const char *prefix, const char *kind)
{
	size_t n = strlen(prefix), k = strlen(kind);

	memcpy(out, prefix, n);
	out[n++] = '.';
	memcpy(out + n, kind, k);
	return n + k;
}

/* One level as one token at out; returns its length. */
static size_t put_level(char *out, const char *l, size_t len)
{
	size_t n = 0;

	if (len == 0) {
		out[0] = CLUSTER_ESCAPE;
		return 1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)l[i];
		if (special(c)) {
			out[n++] = CLUSTER_ESCAPE;
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		} else {
			out[n++] = (char)c;
		}
	}
	return n;
}

size_t cluster_subject_for_topic(char *out, const char *prefix, const char *kind,
				 const char *topic, size_t len)
{
	size_t n = put_head(out, prefix, kind);
	const char *p = topic, *end = topic + len;

	for (;;) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		const char *stop = slash ? slash : end;
		out[n++] = '.';
		n += put_level(out + n, p, (size_t)(stop - p));
		if (!slash)
			break;
		p = slash + 1;
	}
	out[n] = '\0';
	return n;
}

int cluster_subjects_for_filter(char *out[2], const char *prefix, const char *kind,
				const char *filter, size_t len)
{
	size_t n = put_head(out[0], prefix, kind);
	const char *p = filter, *end = filter + len;

	for (;;) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		const char *stop = slash ? slash : end;
		size_t l = (size_t)(stop - p);

		if (l == 1 && *p == '#') {
			/* "a/#" also matches "a": out[0] without the '>' token, out[1] with it. */
			bool alone = p == filter;
			if (!alone) {
				memcpy(out[1], out[0], n);
				out[0][n] = '\0';
				memcpy(out[1] + n, ".>", 3);
				return 2;
			}
			memcpy(out[0] + n, ".>", 3);
			return 1;
		}
		out[0][n++] = '.';
		if (l == 1 && *p == '+')
			out[0][n++] = '*';
		else
			n += put_level(out[0] + n, p, l);
		if (!slash)
			break;
		p = slash + 1;
	}
	out[0][n] = '\0';
	return 1;
}

static int unhex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long cluster_topic_for_subject(char *out, const char *prefix, const char *kind,
			       const char *subject)
{
	size_t pl = strlen(prefix), kl = strlen(kind), n = 0;
	const char *p = subject;

	if (strncmp(p, prefix, pl) != 0 || p[pl] != '.' || strncmp(p + pl + 1, kind, kl) != 0 ||
	    p[pl + 1 + kl] != '.')
		return -1;
	p += pl + kl + 2;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);

		if (l == 0)
			return -1;
		if (!(l == 1 && *p == CLUSTER_ESCAPE)) {
			for (size_t i = 0; i < l; i++) {
				if (p[i] != CLUSTER_ESCAPE) {
					out[n++] = p[i];
					continue;
				}
				int hi = i + 2 < l ? unhex(p[i + 1]) : -1;
				int lo = hi >= 0 ? unhex(p[i + 2]) : -1;
				if (lo < 0)
					return -1;
				out[n++] = (char)(hi << 4 | lo);
				i += 2;
			}
		}
		if (!dot)
			break;
		out[n++] = '/';
		p = dot + 1;
	}
	out[n] = '\0';
	return (long)n;
}
