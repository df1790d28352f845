#include "config.h"

#include <string.h>

#include "builtins.h"
#include "containers.h"
#include "context.h"
#include "install.h"
#include "render.h"

static char *opt_rebase;
static char **opt_set;
static gboolean opt_no_pull;
static gboolean opt_all;
static gboolean opt_clear_halt;

static GOptionEntry entries[] = {
  { "rebase", 0, 0, G_OPTION_ARG_STRING, &opt_rebase, "Switch to another image reference", "IMAGE" },
  { "set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &opt_set, "Set a template variable", "KEY=VALUE" },
  { "no-pull", 0, 0, G_OPTION_ARG_NONE, &opt_no_pull, "Use the store only", NULL },
  { "all", 'a', 0, G_OPTION_ARG_NONE, &opt_all, "Update every container that opted in to auto-update", NULL },
  { "clear-halt", 0, 0, G_OPTION_ARG_NONE, &opt_clear_halt,
    "Delete the halt record a failed update left in NAME's update lock, and nothing else", NULL },
  { NULL },
};

/* Auto-update opt-in: the container's value AUTO_UPDATE is "registry" (or
 * "true"), from --set AUTO_UPDATE=... at install or update, or the image's
 * default for it, the label org.sysctr.default.AUTO_UPDATE. */
static gboolean
opted_in (SysctrContext *ctx, const char *name)
{
  g_autofree char *slot = NULL;
  g_autoptr (json_t) info = NULL;
  if (!sysctr_container_active_slot (ctx, name, &slot, NULL) || slot == NULL
      || !sysctr_container_read_info (ctx, slot, &info, NULL))
    return FALSE;
  SysctrDeployment d;
  sysctr_deployment_view (info, &d);
  const char *v = sysctr_json_get_string (d.values, "AUTO_UPDATE");
  return g_strcmp0 (v, "registry") == 0 || g_strcmp0 (v, "true") == 0;
}

gboolean
sysctr_builtin_update (int argc, char **argv, const SysctrGlobals *globals, GError **error)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("NAME | --all - update to what the reference names now");
  sysctr_add_pull_options (context);
  sysctr_add_grant_options (context);
  sysctr_add_update_lock_options (context);
  if (!sysctr_parse_options (context, entries, &argc, &argv, error))
    return FALSE;
  SysctrUpdateLockOptions lock;
  if (!sysctr_update_lock_options_from_cli (&lock, error))
    return FALSE;
  if (opt_all && sysctr_update_lock_options_given (&lock))
    return sysctr_throw (error, SYSCTR_ERROR_USAGE,
                         "--update-lock… options apply to one container: use \"sysctr update --update-lock=… NAME\"");
  if (opt_clear_halt)
    {
      if (opt_all || argc != 2 || opt_rebase || opt_set || opt_no_pull || sysctr_update_lock_options_given (&lock))
        return sysctr_throw (error, SYSCTR_ERROR_USAGE, "usage: sysctr update --clear-halt NAME");
      g_autoptr (SysctrContext) ctx = sysctr_context_new (globals->root, TRUE, error);
      return ctx != NULL && sysctr_update_clear_halt (ctx, argv[1], error);
    }
  SysctrGrantOptions grant;
  if (!sysctr_grant_options_from_cli (&grant, error))
    return FALSE;
  if (opt_all && (grant.privileged || grant.allow))
    return sysctr_throw (error, SYSCTR_ERROR_USAGE,
                         "--privileged and --allow grant to one container: use \"sysctr update --allow=… NAME\"");
  if ((opt_all && argc != 1) || (!opt_all && argc != 2))
    return sysctr_throw (error, SYSCTR_ERROR_USAGE, "usage: sysctr update [OPTION…] NAME | sysctr update --all");
  g_autoptr (GHashTable) set = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (char **s = opt_set; s && *s; s++)
    if (!sysctr_parse_set (set, *s, error))
      return FALSE;
  g_auto (SysctrPullOptions) pull = { 0 };
  gboolean have_pull = sysctr_pull_options_given ();
  if (!sysctr_pull_options_from_cli (&pull, error))
    return FALSE;
  g_autoptr (SysctrContext) ctx = sysctr_context_new (globals->root, TRUE, error);
  if (ctx == NULL || !sysctr_reconcile (ctx, error))
    {
      return FALSE;
    }
  SysctrUpdateOptions opts = {
    .rebase = opt_rebase,
    .set = set,
    .no_pull = opt_no_pull,
    .pull = have_pull ? &pull : NULL,
    .gate = opt_all,
    .grant = grant,
    .lock = lock,
  };
  gboolean ok = TRUE;
  if (!opt_all)
    {
      gboolean changed;
      ok = sysctr_update (ctx, argv[1], &opts, &changed, error);
    }
  else
    {
      g_autoptr (GPtrArray) names = NULL;
      ok = sysctr_containers_list (ctx, &names, error);
      guint failed = 0, updated = 0, considered = 0, held = 0, rejected = 0, halted = 0;
      for (guint i = 0; ok && i < names->len; i++)
        {
          if (!opted_in (ctx, names->pdata[i]))
            continue;
          considered++;
          gboolean changed = FALSE;
          g_autoptr (GError) local_error = NULL;
          if (!sysctr_update (ctx, names->pdata[i], &opts, &changed, &local_error))
            {
              sysctr_note ("sysctr update: %s: %s", (char *) names->pdata[i], local_error->message);
              /* a version that asks for more is held back, not broken:
               * counted apart, and still a failure of the run so the
               * timer's unit shows it */
              if (g_error_matches (local_error, SYSCTR_ERROR, SYSCTR_ERROR_NOT_GRANTED))
                held++;
              else if (g_error_matches (local_error, SYSCTR_ERROR, SYSCTR_ERROR_REJECTED))
                rejected++; /* containers-policy.json refused it: nothing stored */
              else if (g_error_matches (local_error, SYSCTR_ERROR, SYSCTR_ERROR_HALTED))
                halted++; /* a host's failed update halted its lock: nothing changed here */
              else
                failed++;
            }
          else if (changed)
            updated++;
        }
      if (ok)
        g_print ("update --all: %u container(s) opted in, %u updated, %u held back (asking for more than was "
                 "granted), %u refused by the signature policy, %u halted by a failed update elsewhere, %u failed\n",
                 considered, updated, held, rejected, halted, failed);
      if (ok && (failed || held || rejected || halted))
        ok = sysctr_throw (error, SYSCTR_ERROR_FAILED,
                           "%u container(s) failed to update, %u held back, %u refused, %u halted", failed, held,
                           rejected, halted);
    }
  return ok;
}
