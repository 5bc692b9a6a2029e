/*
 * log.h: levelled logging to stdout, stderr, a file, syslog or a topic.
 *
 * Owns the process-wide log sinks (a logger is one of the few things a
 * process has exactly one of). Each line is formatted once and written with
 * one write(2), so lines from several workers never interleave. The level
 * bits are conf.h's LOG_T_*; log_type in the configuration filters them.
 * Any thread may log.
 */
#ifndef MIDGE_LOG_H
#define MIDGE_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"

/* Called for each line when log_dest includes topic (the broker publishes it). */
typedef void (*log_topic_fn)(uint32_t type, const char *line, void *data);

/* Starts logging to stderr at the default levels; used until log_configure(). */
void log_init_default(void);
/* Applies log_dest, log_type, timestamps and the file; returns -1 if the file won't open. */
int log_configure(const struct config *cfg, bool verbose);
void log_set_topic_sink(log_topic_fn fn, void *data);
/* Reopens the log file (after rotation, on SIGHUP). */
void log_reopen(void);
void log_close(void);

bool log_enabled(uint32_t type);

#if defined(__GNUC__)
#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LOG_PRINTF(a, b)
#endif

void log_msg(uint32_t type, const char *fmt, ...) LOG_PRINTF(2, 3);
void log_vmsg(uint32_t type, const char *fmt, va_list ap);

/* A field of a structured log event (log_format json): a string, or a number when str is NULL. */
struct log_kv {
	const char *key;
	const char *str;
	long long num;
};

/*
 * An event with stable fields: in text form the formatted message only; in
 * JSON (log_format json) an object with time, level, event, msg and the fields
 * (NULL strings are left out).
 */
void log_event(uint32_t type, const char *event, const struct log_kv *kv, size_t n,
	       const char *fmt, ...) LOG_PRINTF(5, 6);

#define log_err(...) log_msg(LOG_T_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_T_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_T_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_T_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_T_DEBUG, __VA_ARGS__)

#endif
