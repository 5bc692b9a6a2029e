/*
 * process.h: the operating-system side of running as a service: daemon
 * mode, the pid file, dropping root privileges.
 */
#ifndef MIDGE_PROCESS_H
#define MIDGE_PROCESS_H

#include <stdbool.h>

/* Detaches from the terminal; returns -1 on failure (in the parent it exits). */
int process_daemonize(void);

/* Writes the pid to path; -1 (logged) on failure. */
int process_write_pidfile(const char *path);
void process_remove_pidfile(const char *path);

/*
 * When running as root, switches to `user` (or stays root for "root").
 * The default user falls back to "nobody" when it does not exist, as
 * mosquitto does for its own default. Returns -1 (logged) on failure.
 */
int process_drop_privileges(const char *user, bool is_default);

#endif
