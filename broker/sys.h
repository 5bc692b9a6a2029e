/*
 * sys.h: the $SYS/broker/... topics, with mosquitto's names and formats.
 *
 * Owns the periodic publication (every sys_interval seconds, from worker
 * 0's timer heap) of counters summed over workers, the load averages
 * derived from them, and the static topics published once at start. Values
 * that did not change since the last period are not published again.
 */
#ifndef MIDGE_SYS_H
#define MIDGE_SYS_H

struct broker;
struct worker;

struct sys_state;

/* Allocates the state and publishes the static topics; arms the timer on w. */
int sys_start(struct broker *b, struct worker *w);
void sys_stop(struct broker *b);

#endif
