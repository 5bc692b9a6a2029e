/*
 * topic.c: validation and matching of topic names and filters.
 */
#include "topic.h"

#include <string.h>

bool topic_name_valid(const char *name, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (name[i] == '+' || name[i] == '#')
			return false;
	return true;
}

bool topic_filter_valid(const char *filter, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		bool level_start = i == 0 || filter[i - 1] == '/';
		bool level_end = i + 1 == len || filter[i + 1] == '/';

		if (filter[i] == '+' && !(level_start && level_end))
			return false;
		if (filter[i] == '#' && !(level_start && i + 1 == len))
			return false;
	}
	return true;
}

bool topic_filter_has_wildcard(const char *filter, size_t len)
{
	return memchr(filter, '+', len) || memchr(filter, '#', len);
}

bool topic_matches(const char *filter, size_t flen, const char *name, size_t nlen)
{
	size_t f = 0, n = 0;

	/* A filter starting with a wildcard does not match '$' topics [MQTT-4.7.2-1]. */
	if (nlen > 0 && name[0] == '$' && flen > 0 && (filter[0] == '+' || filter[0] == '#'))
		return false;
	for (;;) {
		if (f < flen && filter[f] == '#')
			return true; /* matches the parent level and everything below */
		if (f < flen && filter[f] == '+') {
			f++;
			while (n < nlen && name[n] != '/')
				n++;
		} else {
			while (f < flen && n < nlen && filter[f] != '/' && name[n] != '/') {
				if (filter[f] != name[n])
					return false;
				f++;
				n++;
			}
			if ((f < flen && filter[f] != '/') || (n < nlen && name[n] != '/'))
				return false;
		}
		/* Both at the end of a level. */
		if (f == flen && n == nlen)
			return true;
		if (n == nlen) {
			/* "a/#" matches "a": the filter may end in "/#". */
			return flen - f == 2 && filter[f] == '/' && filter[f + 1] == '#';
		}
		if (f == flen)
			return false;
		f++; /* skip '/' */
		n++;
	}
}

size_t topic_levels(const char *s, size_t len)
{
	size_t levels = 1;

	for (size_t i = 0; i < len; i++)
		if (s[i] == '/')
			levels++;
	return levels;
}

size_t topic_mount(const char *mount, size_t mlen, const char *filter, size_t flen, char *out)
{
	const char *group, *inner;
	size_t glen, ilen, head = 0;
	bool valid;

	/* An invalid shared filter keeps the mount point in front (callers refuse it anyway). */
	if (topic_shared_parse(filter, flen, &group, &glen, &inner, &ilen, &valid) && valid)
		head = (size_t)(inner - filter);
	memcpy(out, filter, head);
	if (mlen)
		memcpy(out + head, mount, mlen);
	memcpy(out + head + mlen, filter + head, flen - head);
	return mlen + flen;
}

bool topic_shared_parse(const char *s, size_t len, const char **group, size_t *glen,
			const char **filter, size_t *flen, bool *valid)
{
	const char *slash;

	if (len < 7 || memcmp(s, "$share/", 7) != 0)
		return false;
	*group = s + 7;
	slash = memchr(*group, '/', len - 7);
	if (!slash) {
		*glen = len - 7;
		*filter = s + len;
		*flen = 0;
		*valid = false;
		return true;
	}
	*glen = (size_t)(slash - *group);
	*filter = slash + 1;
	*flen = len - 7 - *glen - 1;
	*valid = *glen > 0 && !topic_filter_has_wildcard(*group, *glen) &&
		 topic_filter_valid(*filter, *flen);
	return true;
}
