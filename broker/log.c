/*
 * log.c: log sinks and line formatting (see log.h).
 */
#include "config.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>

struct log_state {
	_Atomic uint32_t types;
	uint32_t dest;
	bool timestamp;
	bool json;                /* log_format json: one object per line */
	char timestamp_format[64];
	char *file_path;
	int file_fd;
	bool syslog_open;
	log_topic_fn topic_fn;
	void *topic_data;
	pthread_mutex_t lock; /* guards reopen against writers */
};

static struct log_state logger = {
	.types = LOG_T_ERR | LOG_T_WARNING | LOG_T_NOTICE | LOG_T_INFO,
	.dest = LOG_DEST_STDERR,
	.timestamp = true,
	.file_fd = -1,
	.lock = PTHREAD_MUTEX_INITIALIZER,
};

static __thread bool in_topic_sink;

void log_init_default(void)
{
	atomic_store(&logger.types, LOG_T_ERR | LOG_T_WARNING | LOG_T_NOTICE | LOG_T_INFO);
	logger.dest = LOG_DEST_STDERR;
	logger.timestamp = true;
}

static int open_file(const char *path)
{
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

static int syslog_facility(const char *name)
{
	static const struct {
		const char *name;
		int value;
	} facilities[] = {
		{"daemon", LOG_DAEMON}, {"user", LOG_USER}, {"local0", LOG_LOCAL0},
		{"local1", LOG_LOCAL1}, {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},
		{"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5}, {"local6", LOG_LOCAL6},
		{"local7", LOG_LOCAL7},
	};

	if (!name)
		return LOG_DAEMON;
	/* mosquitto takes a number 0..7 meaning local0..local7 */
	if (name[0] >= '0' && name[0] <= '7' && name[1] == '\0')
		return LOG_LOCAL0 + ((name[0] - '0') << 3);
	for (size_t i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
		if (strcmp(facilities[i].name, name) == 0)
			return facilities[i].value;
	return LOG_DAEMON;
}

int log_configure(const struct config *cfg, bool verbose)
{
	int fd = -1;
	int rc = 0;

	if ((cfg->log_dest & LOG_DEST_FILE) && cfg->log_file) {
		fd = open_file(cfg->log_file);
		if (fd < 0)
			rc = -1;
	}
	pthread_mutex_lock(&logger.lock);
	logger.dest = cfg->log_dest;
	if (verbose && !(logger.dest & (LOG_DEST_STDOUT | LOG_DEST_STDERR)))
		logger.dest |= LOG_DEST_STDERR;
	/* With nowhere to write, no type is enabled: callers then skip formatting. */
	atomic_store(&logger.types, logger.dest == 0 ? 0 : verbose ? LOG_T_ALL : cfg->log_type);
	logger.timestamp = cfg->log_timestamp;
	logger.json = cfg->log_format == LOG_FORMAT_JSON;
	logger.timestamp_format[0] = '\0';
	if (cfg->log_timestamp_format)
		snprintf(logger.timestamp_format, sizeof(logger.timestamp_format), "%s",
			 cfg->log_timestamp_format);
	if (logger.file_fd >= 0)
		close(logger.file_fd);
	logger.file_fd = fd;
	free(logger.file_path);
	logger.file_path = cfg->log_file ? strdup(cfg->log_file) : NULL;
	if ((logger.dest & LOG_DEST_SYSLOG) && !logger.syslog_open) {
		openlog("midge", LOG_PID | LOG_NDELAY, syslog_facility(cfg->log_facility));
		logger.syslog_open = true;
	}
	pthread_mutex_unlock(&logger.lock);
	if (rc < 0)
		log_err("Error: unable to open log file %s: %s", cfg->log_file, strerror(errno));
	return rc;
}

void log_set_topic_sink(log_topic_fn fn, void *data)
{
	pthread_mutex_lock(&logger.lock);
	logger.topic_fn = fn;
	logger.topic_data = data;
	pthread_mutex_unlock(&logger.lock);
}

void log_reopen(void)
{
	pthread_mutex_lock(&logger.lock);
	if (logger.file_path) {
		int fd = open_file(logger.file_path);
		if (fd >= 0) {
			if (logger.file_fd >= 0)
				close(logger.file_fd);
			logger.file_fd = fd;
		}
	}
	pthread_mutex_unlock(&logger.lock);
}

void log_close(void)
{
	pthread_mutex_lock(&logger.lock);
	if (logger.file_fd >= 0)
		close(logger.file_fd);
	logger.file_fd = -1;
	free(logger.file_path);
	logger.file_path = NULL;
	if (logger.syslog_open)
		closelog();
	logger.syslog_open = false;
	logger.topic_fn = NULL;
	pthread_mutex_unlock(&logger.lock);
}

bool log_enabled(uint32_t type)
{
	return (atomic_load_explicit(&logger.types, memory_order_relaxed) & type) != 0;
}

static int syslog_priority(uint32_t type)
{
	switch (type) {
	case LOG_T_ERR: return LOG_ERR;
	case LOG_T_WARNING: return LOG_WARNING;
	case LOG_T_NOTICE: return LOG_NOTICE;
	case LOG_T_DEBUG: return LOG_DEBUG;
	default: return LOG_INFO;
	}
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

static const char *level_name(uint32_t type)
{
	switch (type) {
	case LOG_T_ERR: return "error";
	case LOG_T_WARNING: return "warning";
	case LOG_T_NOTICE: return "notice";
	case LOG_T_INFO: return "info";
	case LOG_T_DEBUG: return "debug";
	case LOG_T_SUBSCRIBE: return "subscribe";
	case LOG_T_UNSUBSCRIBE: return "unsubscribe";
	case LOG_T_WEBSOCKETS: return "websockets";
	default: return "info";
	}
}

/* Appends s as a JSON string (quoted, escaped) to line at *len, within size. */
static void json_str(char *line, size_t size, size_t *len, const char *s)
{
	size_t n = *len;

	if (n + 2 >= size)
		return;
	line[n++] = '"';
	for (; *s && n + 8 < size; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			line[n++] = '\\';
			line[n++] = (char)ch;
		} else if (ch < 0x20) {
			n += (size_t)snprintf(line + n, size - n, "\\u%04x", ch);
		} else {
			line[n++] = (char)ch;
		}
	}
	line[n++] = '"';
	*len = n;
}

static void json_raw(char *line, size_t size, size_t *len, const char *s)
{
	size_t l = strlen(s);

	if (*len + l < size) {
		memcpy(line + *len, s, l);
		*len += l;
	}
}

/* One JSON object: time, level, event, msg, then the fields. */
static size_t format_json(char *line, size_t size, uint32_t type, const char *event,
			  const char *msg, const struct log_kv *kv, size_t nkv)
{
	struct timespec ts;
	struct tm tm;
	char when[64];
	size_t len = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	len = (size_t)snprintf(line, size, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\"", when,
			       ts.tv_nsec / 1000000, level_name(type));
	if (event) {
		json_raw(line, size, &len, ",\"event\":");
		json_str(line, size, &len, event);
	}
	json_raw(line, size, &len, ",\"msg\":");
	json_str(line, size, &len, msg);
	for (size_t i = 0; i < nkv; i++) {
		char num[32];
		if (!kv[i].str && kv[i].num == LLONG_MIN)
			continue;
		json_raw(line, size, &len, ",");
		json_str(line, size, &len, kv[i].key);
		json_raw(line, size, &len, ":");
		if (kv[i].str) {
			json_str(line, size, &len, kv[i].str);
		} else {
			snprintf(num, sizeof(num), "%lld", kv[i].num);
			json_raw(line, size, &len, num);
		}
	}
	json_raw(line, size, &len, "}");
	return len < size ? len : size - 1;
}

static void emit(uint32_t type, const char *event, const struct log_kv *kv, size_t nkv,
		 const char *fmt, va_list ap)
{
	char line[4096], msg[2048];
	size_t prefix = 0, len;
	int n;

	if (!log_enabled(type))
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		msg[0] = '\0';
	pthread_mutex_lock(&logger.lock);
	if (logger.json) {
		len = format_json(line, sizeof(line) - 1, type, event, msg, kv, nkv);
	} else {
		if (logger.timestamp) {
			time_t now = time(NULL);
			if (logger.timestamp_format[0]) {
				struct tm tm;
				localtime_r(&now, &tm);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
				/* log_timestamp_format is the operator's strftime format, by design. */
				prefix = strftime(line, sizeof(line) - 3, logger.timestamp_format, &tm);
#pragma GCC diagnostic pop
				line[prefix++] = ':';
				line[prefix++] = ' ';
			} else {
				n = snprintf(line, sizeof(line), "%lld: ", (long long)now);
				prefix = n > 0 ? (size_t)n : 0;
			}
		}
		n = snprintf(line + prefix, sizeof(line) - prefix - 1, "%s", msg);
		if (n < 0)
			n = 0;
		if ((size_t)n > sizeof(line) - prefix - 2)
			n = (int)(sizeof(line) - prefix - 2);
		len = prefix + (size_t)n;
	}
	line[len] = '\n';
	if (logger.dest & LOG_DEST_STDOUT)
		write_all(STDOUT_FILENO, line, len + 1);
	if (logger.dest & LOG_DEST_STDERR)
		write_all(STDERR_FILENO, line, len + 1);
	if ((logger.dest & LOG_DEST_FILE) && logger.file_fd >= 0)
		write_all(logger.file_fd, line, len + 1);
	if (logger.dest & LOG_DEST_SYSLOG) {
		line[len] = '\0';
		syslog(syslog_priority(type), "%s", logger.json ? line : msg);
	}
	log_topic_fn topic_fn = (logger.dest & LOG_DEST_TOPIC) ? logger.topic_fn : NULL;
	void *topic_data = logger.topic_data;
	pthread_mutex_unlock(&logger.lock);
	/* The topic sink publishes; a log line from inside it must not recurse. */
	if (topic_fn && !in_topic_sink) {
		in_topic_sink = true;
		topic_fn(type, msg, topic_data);
		in_topic_sink = false;
	}
}

void log_vmsg(uint32_t type, const char *fmt, va_list ap)
{
	emit(type, NULL, NULL, 0, fmt, ap);
}

void log_event(uint32_t type, const char *event, const struct log_kv *kv, size_t n,
	       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(type, event, kv, n, fmt, ap);
	va_end(ap);
}

void log_msg(uint32_t type, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(type, fmt, ap);
	va_end(ap);
}
