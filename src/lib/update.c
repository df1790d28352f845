/* update.c: update and rollback. The new deployment is written into the
 * other slot (the running one is never touched), the journal records the
 * switch, and renaming the NAME symlink onto the new slot is the commit
 * point; a version that asks for more than was granted is never deployed,
 * and a gated update (update --all) switches back when the restarted
 * service does not come up. */
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

/* Switch NAME to @new_info's slot: journal, symlink, host files, reload,
 * restart if it was running. */
static gboolean
switch_to (SysctrContext *ctx, SysctrSystemd **sd, const char *name, const char *op, json_t *old_info, json_t *new_info,
           gboolean restart, GError **error)
{
  SysctrDeployment old, new;
  sysctr_deployment_view (old_info, &old);
  sysctr_deployment_view (new_info, &new);
  const char *new_slot = new.slot;
  const char *old_slot = old.slot;
  if (!sysctr_journal_write (ctx, name, op, new_slot, old_slot, FALSE, error))
    return FALSE;
  if (!sysctr_slot_switch (ctx, name, new_slot, error))
    {
      sysctr_journal_remove (ctx, name);
      return FALSE;
    }
  if (!sysctr_journal_finish_switch (ctx, sd, name, old_info, new_info, error))
    return FALSE;
  sysctr_journal_remove (ctx, name);
  if (ctx->live && restart)
    {
      if (new.service && !sysctr_systemd_job (*sd, "RestartUnit", new.service, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
sysctr_update (SysctrContext *ctx, const char *name, const SysctrUpdateOptions *opts, gboolean *out_changed,
               GError **error)
{
  g_autofree char *slot = NULL;
  g_autoptr (json_t) info = NULL;
  *out_changed = FALSE;
  if (!sysctr_slot_read_active (ctx, name, &slot, &info, error))
    return FALSE;
  SysctrDeployment cur;
  sysctr_deployment_view (info, &cur);
  const char *reference = opts->rebase ? opts->rebase : cur.reference;
  /* The options kept at install, with what this command line says on top:
   * an update re-resolves the reference the same way it was installed. */
  g_auto (SysctrPullOptions) stored = { 0 };
  sysctr_pull_options_from_json (cur.pull_options, &stored);
  if (opts->pull)
    {
      if (opts->pull->tls_verify_set)
        stored.tls_verify = opts->pull->tls_verify;
      if (opts->pull->authfile)
        {
          g_free (stored.authfile);
          stored.authfile = g_strdup (opts->pull->authfile);
        }
      if (opts->pull->platform)
        {
          g_free (stored.platform);
          stored.platform = g_strdup (opts->pull->platform);
        }
      if (opts->pull->signature_policy)
        {
          g_free (stored.signature_policy);
          stored.signature_policy = g_strdup (opts->pull->signature_policy);
        }
      if (opts->pull->registries_d)
        {
          g_free (stored.registries_d);
          stored.registries_d = g_strdup (opts->pull->registries_d);
        }
      stored.creds = g_strdup (opts->pull->creds); /* used, never kept */
      stored.quiet = opts->pull->quiet;
    }
  const SysctrPullOptions *pull = &stored;

  g_autoptr (SysctrImage) image = NULL;
  g_autoptr (SysctrRef) ref = reference ? sysctr_ref_parse (reference, error) : NULL;
  gboolean ok = ref != NULL;
  if (reference == NULL)
    ok = sysctr_throw (error, SYSCTR_ERROR_FAILED, "%s: its info.json names no image reference", name);
  else if (ok && opts->no_pull)
    {
      /* the store only: never the network */
      g_autofree char *canonical = sysctr_ref_to_string (ref);
      ok = sysctr_store_lookup_image (ctx->repo, canonical, &image, error);
      if (ok && image == NULL)
        ok = sysctr_throw (error, SYSCTR_ERROR_NOT_FOUND, "%s is not in the store (--no-pull)", reference);
    }
  else if (ok)
    /* the installed reference is resolved again; a --rebase target is
     * taken from the store when it is there */
    ok = sysctr_install_get_image (ctx, ref, pull, opts->rebase == NULL, &image, error);
  if (!ok)
    {
      return FALSE;
    }
  sysctr_crash_point ("update-image-ready");
  g_assert (image != NULL);

  g_autoptr (GHashTable) set = sysctr_values_from_json (cur.set);
  if (opts->set)
    {
      GHashTableIter it;
      gpointer k, v;
      g_hash_table_iter_init (&it, opts->set);
      while (g_hash_table_iter_next (&it, &k, &v))
        g_hash_table_replace (set, g_strdup (k), g_strdup (v));
    }
  g_autoptr (GHashTable) old_set = sysctr_values_from_json (cur.set);
  gboolean same_values = g_hash_table_size (set) == g_hash_table_size (old_set);
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, set);
  while (same_values && g_hash_table_iter_next (&it, &k, &v))
    same_values = g_strcmp0 (g_hash_table_lookup (old_set, k), v) == 0;
  if (same_values && g_strcmp0 (image->manifest_digest, cur.manifest_digest) == 0
      && g_strcmp0 (image->reference, cur.reference) == 0)
    {
      sysctr_say ("%s: already up to date (%s)", name, image->manifest_digest);
      return TRUE;
    }

  g_autoptr (SysctrSystemd) sd = NULL;
  if (!sysctr_units_connect (ctx, &sd, error))
    {
      return FALSE;
    }
  gboolean was_running = sysctr_units_is_active (sd, info);

  g_autofree char *new_slot = sysctr_slot_other (name, slot);
  g_autoptr (GHashTable) previous = sysctr_values_from_json (cur.values);
  g_autoptr (json_t) pull_json = sysctr_pull_options_to_json (pull);
  g_autoptr (json_t) new_info = NULL;
  /* the running deployment's grant: an update never widens it unless this
   * command line says so */
  json_t *kept = cur.granted;
  /* a deployment from before grants were recorded was granted nothing */
  g_autoptr (json_t) previous_grant = json_is_object (kept) ? json_incref (kept) : json_object ();
  SysctrSlotRequest grant = {
    .previous_grant = previous_grant,
    .previous_created = cur.created,
    .options = opts->grant,
  };
  if (!sysctr_slot_write (ctx, name, new_slot, image, set, previous, cur.runtime, pull_json, &grant, &new_info, error))
    return FALSE; /* the other slot, the rollback target, is untouched */
  g_autoptr (GError) switch_error = NULL;
  if (!switch_to (ctx, &sd, name, "update", info, new_info, was_running, &switch_error)
      || (opts->gate && was_running
          && (!sysctr_units_wait_settled (sd, new_info, &switch_error)
              || !sysctr_units_wait_healthy (sd, new_info, &switch_error))))
    {
      if (!(opts->gate && was_running))
        {
          g_propagate_error (error, g_steal_pointer (&switch_error));
          return FALSE;
        }
      sysctr_note ("%s: the new deployment did not come up (%s); rolling back to %s", name, switch_error->message,
                   slot);
      if (!switch_to (ctx, &sd, name, "rollback", new_info, info, TRUE, error))
        return FALSE;
      return sysctr_throw (error, SYSCTR_ERROR_FAILED, "update to %s rolled back: %s", image->manifest_digest,
                           switch_error->message);
    }
  *out_changed = TRUE;
  g_autoptr (GError) settle_error = NULL;
  if (was_running && !opts->gate && !sysctr_units_wait_settled (sd, new_info, &settle_error))
    return sysctr_throw (error, SYSCTR_ERROR_FAILED, "%s was updated to %s, but %s (\"sysctr rollback %s\" goes back)",
                         name, image->manifest_digest, settle_error->message, name);
  sysctr_say ("Updated %s to %s (%s)%s", name, image->reference, image->manifest_digest,
              was_running ? ", restarted" : "");
  return TRUE;
}

gboolean
sysctr_rollback (SysctrContext *ctx, const char *name, GError **error)
{
  g_autofree char *slot = NULL;
  g_autoptr (json_t) info = NULL;
  if (!sysctr_slot_read_active (ctx, name, &slot, &info, error))
    return FALSE;
  if (sysctr_journal_was_completed (name, "rollback"))
    {
      sysctr_say ("Rolled back %s to %s (completed an interrupted rollback)", name, slot);
      return TRUE;
    }
  g_autofree char *other_name = sysctr_slot_other (name, slot);
  g_autoptr (json_t) other = NULL;
  g_autoptr (GError) local_error = NULL;
  if (!sysctr_container_read_info (ctx, other_name, &other, &local_error))
    return sysctr_throw (error, SYSCTR_ERROR_NOT_FOUND, "%s has no previous deployment to roll back to", name);
  g_autoptr (SysctrSystemd) sd = NULL;
  if (!sysctr_units_connect (ctx, &sd, error))
    return FALSE;
  gboolean was_running = sysctr_units_is_active (sd, info);
  if (!sysctr_host_files_check (ctx, name, other, error))
    return FALSE;
  if (!switch_to (ctx, &sd, name, "rollback", info, other, was_running, error))
    return FALSE;
  sysctr_say ("Rolled back %s to %s (%s)", name, other_name,
              sysctr_json_get_string (json_object_get (other, "image"), "manifest_digest"));
  return TRUE;
}
