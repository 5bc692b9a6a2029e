/*
 * cluster_queue.c: the NATS queue group name of a shared subscription
 * (described in cluster_wire.h). Pure, so it is unit-tested.
 */
#include "config.h"

#include "cluster_wire.h"

#include <string.h>

#define QUEUE_INFIX ".share."

static bool kept(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '/' || c == '+' || c == '#' || c == '$';
}

static size_t put_escaped(char *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (kept(c)) {
			out[n++] = (char)c;
		} else {
			out[n++] = CLUSTER_ESCAPE;
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		}
	}
	return n;
}

size_t cluster_queue_name_max(const char *prefix, size_t glen, size_t flen)
{
	return strlen(prefix) + strlen(QUEUE_INFIX) + 3 * glen + 1 + 3 * flen + 1;
}

size_t cluster_queue_name(char *out, const char *prefix, const char *group, size_t glen,
			  const char *filter, size_t flen)
{
	size_t n = strlen(prefix);

	memcpy(out, prefix, n);
	memcpy(out + n, QUEUE_INFIX, strlen(QUEUE_INFIX));
	n += strlen(QUEUE_INFIX);
	n += put_escaped(out + n, group, glen);
	out[n++] = '.';
	n += put_escaped(out + n, filter, flen);
	out[n] = '\0';
	return n;
}
