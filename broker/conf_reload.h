/*
 * conf_reload.h: what a SIGHUP may change.
 *
 * Owns the rule that a reloaded configuration keeps the options that need
 * a restart (listeners, workers, user, pid file, persistence) from the one
 * in use, with a warning for each such option the file changed.
 */
#ifndef MIDGE_CONF_RELOAD_H
#define MIDGE_CONF_RELOAD_H

#include "conf.h"

/*
 * Copies the non-reloadable settings of `current` into `next`. Returns -1
 * (with an error in diag) when next cannot be used without a restart, e.g.
 * a different number of listeners.
 */
int config_reload_merge(struct config *next, const struct config *current,
			struct config_diag *diag);

#endif
