/*
 * topic.h: topic names and topic filters (MQTT 5.0 section 4.7).
 *
 * Pure string rules: validation of names and filters, matching one filter
 * against one name (with the rule that a leading wildcard never matches a
 * topic starting with '$'), and parsing of "$share/<group>/<filter>".
 * The subscription trie and the retained store use these; neither lives here.
 */
#ifndef MIDGE_TOPIC_H
#define MIDGE_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

/* A topic name must not contain '+' or '#'. Emptiness is checked by callers. */
bool topic_name_valid(const char *name, size_t len);

/* A filter is non-empty; '#' only as the whole last level; '+' only as a whole level. */
bool topic_filter_valid(const char *filter, size_t len);

/* Whether a filter contains '+' or '#'. */
bool topic_filter_has_wildcard(const char *filter, size_t len);

/* Whether a valid filter matches a valid topic name. */
bool topic_matches(const char *filter, size_t flen, const char *name, size_t nlen);

/* Number of levels in a name or filter ("a/b" has 2, "" has 1). */
size_t topic_levels(const char *s, size_t len);

/*
 * Splits "$share/<group>/<filter>". Returns true when the string is a shared
 * subscription, setting *group and *filter (spans into s); *valid says
 * whether the group is non-empty without wildcards and the filter is valid.
 */
bool topic_shared_parse(const char *s, size_t len, const char **group, size_t *glen,
			const char **filter, size_t *flen, bool *valid);

/*
 * Writes filter with a listener's mount point in front into out (room for
 * mlen + flen bytes, no NUL added); in a shared subscription the mount point
 * goes after "$share/<group>/". Returns mlen + flen.
 */
size_t topic_mount(const char *mount, size_t mlen, const char *filter, size_t flen, char *out);

#endif
