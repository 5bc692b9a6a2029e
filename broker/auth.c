/*
 * auth.c: connection-time authentication decisions (see auth.h).
 */
#include "config.h"

#include "auth.h"

#include "conf.h"

#include <string.h>

/* Whether anything can check a user name and password. */
static bool has_credential_source(const struct config_security *sec)
{
	return sec->password_file != NULL || sec->nplugins > 0;
}

enum auth_result auth_connect(const struct config_security *sec, const char *username,
			      const struct mqtt_bytes *password)
{
	(void)password;
	if (sec->allow_anonymous == 1 && !has_credential_source(sec))
		return AUTH_OK;
	if (!username)
		return sec->allow_anonymous == 1 ? AUTH_OK : AUTH_NOT_AUTHORIZED;
	/* A user name nobody can check is refused unless anonymous access is on,
	 * as mosquitto does: it must never widen access. */
	if (!has_credential_source(sec))
		return sec->allow_anonymous == 1 ? AUTH_OK : AUTH_NOT_AUTHORIZED;
	return AUTH_NOT_AUTHORIZED;
}

bool auth_clientid_allowed(const struct config_security *sec, const char *client_id)
{
	if (sec->clientid_prefixes.count == 0)
		return true;
	for (size_t i = 0; i < sec->clientid_prefixes.count; i++) {
		const char *p = sec->clientid_prefixes.items[i];
		if (strncmp(client_id, p, strlen(p)) == 0)
			return true;
	}
	return false;
}
