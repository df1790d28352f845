#include "config.h"

#include <string.h>

#include "builtins.h"
#include "context.h"
#include "install.h"
#include "privileges.h"
#include "render.h"

static gboolean opt_system;
static char *opt_name;
static char **opt_set;
static char *opt_runtime;
static gboolean opt_now;

static GOptionEntry entries[] = {
  { "system", 0, 0, G_OPTION_ARG_NONE, &opt_system, "Install as a system container (required)", NULL },
  { "name", 'n', 0, G_OPTION_ARG_STRING, &opt_name, "Container and unit name", "NAME" },
  { "set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_set, "Set a template variable", "KEY=VALUE" },
  { "runtime", 0, 0, G_OPTION_ARG_STRING, &opt_runtime, "sysctr-shim (default), runc, crun or a path", "RUNTIME" },
  { "now", 0, 0, G_OPTION_ARG_NONE, &opt_now, "Start the service and wait until it is up", NULL },
  { NULL },
};

static gboolean grant_privileged;
static char **grant_allow;

static GOptionEntry grant_entries[] = {
  { "privileged", 0, 0, G_OPTION_ARG_NONE, &grant_privileged, "Grant whatever privileges this image asks for", NULL },
  { "allow", 0, 0, G_OPTION_ARG_STRING_ARRAY, &grant_allow,
    "Grant these privileges (host-exec, host-files, host-mounts, host-namespaces, capabilities, devices, unconfined, "
    "unit-deps)",
    "NAME[,NAME…]" },
  { NULL },
};

void
sysctr_add_grant_options (GOptionContext *context)
{
  g_option_context_add_main_entries (context, grant_entries, NULL);
}

gboolean
sysctr_grant_options_from_cli (SysctrGrantOptions *opts, GError **error)
{
  opts->allow = 0;
  opts->privileged = grant_privileged;
  for (char **a = grant_allow; a && *a; a++)
    if (!sysctr_privileges_parse (*a, &opts->allow, error))
      return FALSE;
  return TRUE;
}

static char *lock_spec;
static char *lock_name;
static int lock_max = -1; /* -1: not given */
static int lock_ttl = -1;
static char *lock_cacert;
static char *lock_cert;
static char *lock_key;
static char *lock_user;
static char *lock_password_file;

static GOptionEntry lock_entries[] = {
  { "update-lock", 0, 0, G_OPTION_ARG_STRING, &lock_spec,
    "Updates take this cluster lock first (etcd v3 endpoints), or none", "etcd:URL[,URL…]|none" },
  { "update-lock-name", 0, 0, G_OPTION_ARG_STRING, &lock_name,
    "The lock's name (default: the value UPDATE_LOCK_NAME, else the container's name)", "NAME" },
  { "update-lock-max", 0, 0, G_OPTION_ARG_INT, &lock_max, "Hosts that may update at once (default 1)", "N" },
  { "update-lock-ttl", 0, 0, G_OPTION_ARG_INT, &lock_ttl, "Seconds before a dead host's lock expires (default 30)",
    "SECONDS" },
  { "update-lock-cacert", 0, 0, G_OPTION_ARG_FILENAME, &lock_cacert,
    "CA bundle for https etcd endpoints (\"\" removes it)", "FILE" },
  { "update-lock-cert", 0, 0, G_OPTION_ARG_FILENAME, &lock_cert, "Client certificate for etcd (\"\" removes it)",
    "FILE" },
  { "update-lock-key", 0, 0, G_OPTION_ARG_FILENAME, &lock_key, "Its private key (\"\" removes it)", "FILE" },
  { "update-lock-user", 0, 0, G_OPTION_ARG_STRING, &lock_user,
    "etcd user, for an etcd with authentication on (\"\" removes it)", "NAME" },
  { "update-lock-password-file", 0, 0, G_OPTION_ARG_FILENAME, &lock_password_file,
    "File (mode 600) holding that user's password, read at each update", "FILE" },
  { NULL },
};

void
sysctr_add_update_lock_options (GOptionContext *context)
{
  g_option_context_add_main_entries (context, lock_entries, NULL);
}

gboolean
sysctr_update_lock_options_from_cli (SysctrUpdateLockOptions *opts, GError **error)
{
  if (lock_max == 0 || lock_max < -1 || lock_ttl == 0 || lock_ttl < -1)
    return sysctr_throw (error, SYSCTR_ERROR_USAGE, "--update-lock-max and --update-lock-ttl take a positive number");
  *opts = (SysctrUpdateLockOptions){
    .spec = lock_spec,
    .name = lock_name,
    .max = lock_max > 0 ? (guint) lock_max : 0,
    .ttl = lock_ttl > 0 ? (guint) lock_ttl : 0,
    .cacert = lock_cacert,
    .cert = lock_cert,
    .key = lock_key,
    .user = lock_user,
    .password_file = lock_password_file,
  };
  return TRUE;
}

gboolean
sysctr_builtin_install (int argc, char **argv, const SysctrGlobals *globals, GError **error)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("IMAGE - install an image as a system container");
  sysctr_add_pull_options (context);
  sysctr_add_grant_options (context);
  sysctr_add_update_lock_options (context);
  if (!sysctr_parse_options (context, entries, &argc, &argv, error))
    return FALSE;
  if (argc != 2)
    return sysctr_throw (error, SYSCTR_ERROR_USAGE, "usage: sysctr install --system [OPTION…] IMAGE");
  SysctrGrantOptions grant;
  if (!sysctr_grant_options_from_cli (&grant, error))
    return FALSE;
  if (!opt_system)
    return sysctr_throw (error, SYSCTR_ERROR_USAGE,
                         "usage: sysctr install --system IMAGE (only system containers are supported)");

  g_autoptr (GHashTable) set = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (char **s = opt_set; s && *s; s++)
    if (!sysctr_parse_set (set, *s, error))
      return FALSE;

  g_auto (SysctrPullOptions) pull = { 0 };
  if (!sysctr_pull_options_from_cli (&pull, error))
    return FALSE;
  SysctrUpdateLockOptions lock;
  if (!sysctr_update_lock_options_from_cli (&lock, error))
    return FALSE;
  g_autoptr (SysctrContext) ctx = sysctr_context_new (globals->root, TRUE, error);
  gboolean ok = ctx != NULL && sysctr_reconcile (ctx, error);
  if (ok)
    {
      SysctrInstallOptions opts = {
        .name = opt_name,
        .image = argv[1],
        .set = set,
        .runtime = opt_runtime,
        .now = opt_now,
        .pull = &pull,
        .grant = grant,
        .lock = lock,
      };
      ok = sysctr_install (ctx, &opts, error);
    }
  return ok;
}
