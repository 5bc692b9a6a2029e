/*
 * dryrun.h: midge --test-auth / --test-acl, the decision chain run offline
 * (see dryrun.c).
 */
#ifndef MIDGE_DRYRUN_H
#define MIDGE_DRYRUN_H

#include <stdbool.h>

/* Whether the command line asks for a dry run. */
bool dryrun_requested(int argc, char **argv);
/* Runs it; returns the exit status (0 allow, 1 deny, 2 error). */
int dryrun_main(int argc, char **argv);

#endif
