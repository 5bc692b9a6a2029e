/*
 * sec_builtin.h: the password file and the ACL file as plugins.
 *
 * The listener's password_file and acl_file checks run on the same plugin
 * API as third-party plugins: they sit at the end of the listener's chain
 * (after the configured plugins), answer through the same events, and the
 * password check answers DELAYED while the auth threads verify a hash.
 * They read the files from the policy of the worker's current generation.
 */
#ifndef MIDGE_SEC_BUILTIN_H
#define MIDGE_SEC_BUILTIN_H

struct midge_plugin;
struct plugin_host;

/* The one instance of each, registered in host on first use. NULL: out of memory. */
struct midge_plugin *sec_builtin_password(struct plugin_host *host);
struct midge_plugin *sec_builtin_acl(struct plugin_host *host);

#endif
