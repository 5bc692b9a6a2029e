/*
 * sdnotify.h: systemd's readiness and watchdog protocol (Type=notify),
 * spoken directly: datagrams to $NOTIFY_SOCKET, no library needed. Without
 * NOTIFY_SOCKET (not under systemd) every call does nothing.
 */
#ifndef MIDGE_SDNOTIFY_H
#define MIDGE_SDNOTIFY_H

#include <stdint.h>

/* Sends one notification ("READY=1", "STOPPING=1", ...); 0, or -1 when it could not. */
int sd_notify_send(const char *state);
/* The watchdog period systemd asks for (WATCHDOG_USEC for this process), in ms; 0 = none. */
int64_t sd_watchdog_ms(void);

#endif
