/* install.c: install and uninstall. An install pulls (or finds) the image,
 * writes a complete deployment into slot NAME.0 aside (slot.c), records
 * its intent in the journal (journal.c), then creates the NAME symlink:
 * that rename is the commit point, and everything after it (host files,
 * enablement, start) is what reconcile completes after a crash. Uninstall
 * removes the symlink first (its commit point), then the rest. */
#include "config.h"

#include "containers.h"
#include "deploy.h"
#include "hostfiles.h"
#include "install.h"
#include "journal.h"
#include "ociconfig.h"
#include "privileges.h"
#include "pull.h"
#include "reference.h"
#include "render.h"
#include "slot.h"
#include "store.h"
#include "systemd.h"
#include "units.h"

#include <dirent.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

json_t *
sysctr_pull_options_to_json (const SysctrPullOptions *pull)
{
  json_t *j = json_pack ("{s:b, s:s?, s:s?}", "tls_verify", pull ? pull->tls_verify : TRUE, "authfile",
                         pull ? pull->authfile : NULL, "platform", pull ? pull->platform : NULL);
  /* kept only when given: the system files are read at each update */
  if (pull && pull->signature_policy)
    json_object_set_new (j, "signature_policy", json_string (pull->signature_policy));
  if (pull && pull->registries_d)
    json_object_set_new (j, "registries_d", json_string (pull->registries_d));
  return j;
}

void
sysctr_pull_options_from_json (json_t *j, SysctrPullOptions *opts)
{
  sysctr_pull_options_init (opts);
  json_t *tv = json_object_get (j, "tls_verify");
  opts->tls_verify = tv ? json_is_true (tv) : TRUE;
  opts->authfile = g_strdup (sysctr_json_get_string (j, "authfile"));
  opts->platform = g_strdup (sysctr_json_get_string (j, "platform"));
  opts->signature_policy = g_strdup (sysctr_json_get_string (j, "signature_policy"));
  opts->registries_d = g_strdup (sysctr_json_get_string (j, "registries_d"));
  opts->quiet = TRUE;
}

/* Uses the image from the store when the reference is there. */
gboolean
sysctr_install_get_image (SysctrContext *ctx, const SysctrRef *ref, const SysctrPullOptions *pull, gboolean force_pull,
                          SysctrImage **out, GError **error)
{
  g_autofree char *canonical = sysctr_ref_to_string (ref);
  if (!force_pull)
    {
      if (!sysctr_store_lookup_image (ctx->repo, canonical, out, error))
        return FALSE;
      if (*out)
        return TRUE;
    }
  g_auto (SysctrPullOptions) defaults = { 0 };
  sysctr_pull_options_init (&defaults);
  return sysctr_pull_ref (ctx, ref, pull ? pull : &defaults, out, NULL, error);
}

gboolean
sysctr_install (SysctrContext *ctx, const SysctrInstallOptions *opts, GError **error)
{
  if (opts->now && !ctx->live)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID,
                         "--now cannot be used with --root (nothing runs in that tree yet)");
  g_autoptr (SysctrRef) ref = sysctr_ref_parse (opts->image, error);
  if (ref == NULL)
    return FALSE;
  g_autofree char *name = NULL;
  if (opts->name)
    {
      if (!sysctr_name_valid (opts->name))
        {
          g_autofree char *shown = g_strescape (opts->name, NULL);
          return sysctr_throw (
              error, SYSCTR_ERROR_INVALID,
              "invalid name \"%.80s\": use 1-64 letters, digits, '_' or '-', starting with a letter or digit", shown);
        }
      name = g_strdup (opts->name);
    }
  else if ((name = sysctr_ref_default_name (ref)) == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "cannot derive a container name from %s; give one with --name",
                         opts->image);

  g_autoptr (json_t) lock_json = NULL;
  if (!sysctr_update_lock_merge (NULL, &opts->lock, &lock_json, error))
    return FALSE;

  g_autofree char *active = NULL;
  if (!sysctr_container_active_slot (ctx, name, &active, error))
    return FALSE;
  if (active && sysctr_journal_was_completed (name, "install"))
    {
      sysctr_say ("Installed %s (completed an interrupted install)", name);
      return TRUE;
    }
  if (active)
    return sysctr_throw (error, SYSCTR_ERROR_EXISTS,
                         "%s is already installed (use \"sysctr update %s\" or uninstall it first)", name, name);
  if (!sysctr_units_check_conflicts (ctx, name, error))
    return FALSE;

  g_autoptr (SysctrSystemd) sd = NULL;
  if (!sysctr_units_connect (ctx, &sd, error))
    return FALSE;

  g_autoptr (SysctrImage) image = NULL;
  if (!sysctr_install_get_image (ctx, ref, opts->pull, FALSE, &image, error))
    return FALSE;

  /* No symlink: whatever slots exist are leftovers of an interrupted run. */
  g_autofree char *slot = g_strdup_printf ("%s.0", name);
  g_autofree char *slot_rel = g_strdup_printf ("containers/%s", slot);
  g_autofree char *other = g_strdup_printf ("containers/%s.1", name);
  if (!sysctr_rm_rf_at (ctx->state_dfd, other, error))
    return FALSE;
  g_autoptr (json_t) pull_json = sysctr_pull_options_to_json (opts->pull);
  g_autoptr (json_t) info = NULL;
  SysctrSlotRequest grant = { .previous_grant = NULL, .options = opts->grant, .update_lock = lock_json };
  if (!sysctr_slot_write (ctx, name, slot, image, opts->set, NULL, opts->runtime, pull_json, &grant, &info, error)
      || !sysctr_update_lock_check (name, info, error))
    {
      (void) sysctr_rm_rf_at (ctx->state_dfd, slot_rel, NULL);
      return FALSE;
    }

  if (!sysctr_journal_write (ctx, name, "install", slot, NULL, FALSE, error))
    {
      (void) sysctr_rm_rf_at (ctx->state_dfd, slot_rel, NULL);
      return FALSE;
    }
  if (!sysctr_slot_switch (ctx, name, slot, error))
    {
      sysctr_journal_remove (ctx, name);
      (void) sysctr_rm_rf_at (ctx->state_dfd, slot_rel, NULL);
      return FALSE;
    }
  if (!sysctr_journal_finish_install (ctx, &sd, name, info, error))
    return FALSE;
  sysctr_journal_remove (ctx, name);
  if (opts->now
      && (!sysctr_units_start (ctx, sd, info, "StartUnit", error) || !sysctr_units_wait_settled (sd, info, error)))
    {
      g_prefix_error (error, "%s was installed, but ", name);
      return FALSE;
    }
  sysctr_say ("Installed %s from %s (%s)", name, image->reference, image->manifest_digest);
  return TRUE;
}

gboolean
sysctr_uninstall (SysctrContext *ctx, const char *name, gboolean purge, GError **error)
{
  g_autofree char *slot = NULL;
  g_autoptr (json_t) info = NULL;
  if (sysctr_name_valid (name) && sysctr_journal_was_completed (name, "uninstall"))
    {
      g_autofree char *active = NULL;
      if (sysctr_container_active_slot (ctx, name, &active, NULL) && active == NULL)
        {
          sysctr_say ("Uninstalled %s (completed an interrupted uninstall)", name);
          return TRUE;
        }
    }
  if (!sysctr_slot_read_active (ctx, name, &slot, &info, error))
    return FALSE;
  g_autoptr (SysctrSystemd) sd = NULL;
  if (!sysctr_units_connect (ctx, &sd, error))
    return FALSE;

  if (!sysctr_journal_write (ctx, name, "uninstall", slot, NULL, purge, error))
    return FALSE;
  /* The commit point of uninstall; what follows is redone by reconcile. */
  g_autofree char *link = g_strdup_printf ("containers/%s", name);
  if (unlinkat (ctx->state_dfd, link, 0) < 0)
    {
      int errsv = errno;
      sysctr_journal_remove (ctx, name);
      errno = errsv;
      return sysctr_throw_errno (error, "removing %s", link);
    }
  sysctr_crash_point ("uninstall-unlinked");
  if (!sysctr_journal_finish_uninstall (ctx, &sd, name, slot, info, purge, error)
      || !sysctr_last_update_remove (ctx, name, error))
    return FALSE;
  sysctr_say ("Uninstalled %s (the image stays in the store until \"sysctr images prune --all\")", name);
  return TRUE;
}
