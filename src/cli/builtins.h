/* One function per command, each in its own file. */
#pragma once

#include <glib.h>

#include "install.h"
#include "registry.h"

G_BEGIN_DECLS

typedef struct
{
  const char *root; /* --root, NULL for "/" */
} SysctrGlobals;

typedef gboolean (*SysctrBuiltinFunc) (int argc, char **argv, const SysctrGlobals *globals, GError **error);

gboolean sysctr_builtin_pull (int argc, char **argv, const SysctrGlobals *globals, GError **error);
gboolean sysctr_builtin_images (int argc, char **argv, const SysctrGlobals *globals, GError **error);
gboolean sysctr_builtin_install (int argc, char **argv, const SysctrGlobals *globals, GError **error);
gboolean sysctr_builtin_uninstall (int argc, char **argv, const SysctrGlobals *globals, GError **error);
gboolean sysctr_builtin_list (int argc, char **argv, const SysctrGlobals *globals, GError **error);
gboolean sysctr_builtin_update (int argc, char **argv, const SysctrGlobals *globals, GError **error);
gboolean sysctr_builtin_rollback (int argc, char **argv, const SysctrGlobals *globals, GError **error);
gboolean sysctr_builtin_info (int argc, char **argv, const SysctrGlobals *globals, GError **error);
gboolean sysctr_builtin_exec (int argc, char **argv, const SysctrGlobals *globals, GError **error);

/* Parses a command's options; FALSE (with an error) on bad usage. */
gboolean sysctr_parse_options (GOptionContext *context, const GOptionEntry *entries, int *argc, char ***argv,
                               GError **error);
/* The pull options (--tls-verify, --creds, --authfile, --platform,
 * --quiet), shared by pull, install and update. */
void sysctr_add_pull_options (GOptionContext *context);
gboolean sysctr_pull_options_given (void);
gboolean sysctr_pull_options_from_cli (SysctrPullOptions *opts, GError **error);

/* --privileged and --allow=NAME[,NAME…], shared by install and update. */
void sysctr_add_grant_options (GOptionContext *context);
gboolean sysctr_grant_options_from_cli (SysctrGrantOptions *opts, GError **error);

/* --update-lock, --update-lock-name, -max, -ttl: shared by install and
 * update (install.c). */
void sysctr_add_update_lock_options (GOptionContext *context);
gboolean sysctr_update_lock_options_from_cli (SysctrUpdateLockOptions *opts, GError **error);

/* --tls-verify=BOOL */
gboolean sysctr_parse_bool (const char *value, const char *option, gboolean *out, GError **error);

G_END_DECLS
