/* update.c: update and rollback. The new deployment is written into the
 * other slot (the running one is never touched), the journal records the
 * switch, and renaming the NAME symlink onto the new slot is the commit
 * point; a version that asks for more than was granted is never deployed,
 * and a gated update (update --all, or any update that takes a cluster
 * lock) switches back when the restarted service does not come up. With
 * an update lock (updatelock.c) nothing is restarted before the lock is
 * held, the lock is released only after the gate, and a rollback leaves
 * the halt record that stops the other hosts. The host's state lock is
 * let go while the update waits for the cluster lock (nothing is written
 * before it), and the container must be as it was when it is taken back.
 * Every attempt is recorded
 * (ROOT/var/lib/sysctr/updates/NAME.json). */
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
#include "updatelock.h"

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

/* Only the lock changes: nothing to deploy or restart. Both deployments
 * keep it, so a rollback does not bring the old one back. */
static gboolean
set_lock (SysctrContext *ctx, const char *name, const char *slot, json_t *lock_json, GError **error)
{
  g_autofree char *other = sysctr_slot_other (name, slot);
  const char *slots[] = { other, slot };
  json_t *infos[G_N_ELEMENTS (slots)] = { NULL, NULL };
  gboolean ok = TRUE;
  for (guint i = 0; ok && i < G_N_ELEMENTS (slots); i++)
    {
      if (!sysctr_container_read_info (ctx, slots[i], &infos[i], NULL))
        continue; /* no previous deployment */
      if (lock_json)
        json_object_set (infos[i], "update_lock", lock_json);
      else
        json_object_del (infos[i], "update_lock");
      ok = sysctr_update_lock_check (name, infos[i], error);
    }
  for (guint i = 0; ok && i < G_N_ELEMENTS (slots); i++)
    {
      if (infos[i] == NULL)
        continue;
      g_autofree char *text = sysctr_json_dump (infos[i], TRUE);
      g_autofree char *path = g_strdup_printf ("containers/%s/info.json", slots[i]);
      ok = sysctr_write_file_at (ctx->state_dfd, path, text, strlen (text), 0600, error);
    }
  for (guint i = 0; i < G_N_ELEMENTS (slots); i++)
    json_decref (infos[i]);
  if (!ok)
    return FALSE;
  g_autoptr (SysctrUpdateLockConfig) cfg = NULL;
  if (!sysctr_update_lock_from_json (lock_json, &cfg, error))
    return FALSE;
  if (cfg == NULL)
    {
      sysctr_say ("%s: updates take no cluster lock now", name);
      return TRUE;
    }
  g_autoptr (json_t) info = NULL;
  if (!sysctr_container_read_info (ctx, slot, &info, error))
    return FALSE;
  SysctrDeployment d;
  sysctr_deployment_view (info, &d);
  g_autofree char *lock_name = sysctr_update_lock_name (cfg, d.values, name, error);
  if (lock_name == NULL)
    return FALSE;
  g_autofree char *what = sysctr_update_lock_describe (cfg, lock_name);
  sysctr_say ("%s: updates take the cluster lock %s", name, what);
  return TRUE;
}

/* After the wait for the update lock: the container is as this update
 * read it (no rollback, update, or uninstall ran meanwhile) and the image
 * is still in the store (no prune removed it). */
static gboolean
unchanged_while_waiting (SysctrContext *ctx, const char *name, const char *slot, json_t *info, SysctrImage *image,
                         GError **error)
{
  g_autofree char *slot_now = NULL;
  g_autoptr (json_t) info_now = NULL;
  g_autoptr (GError) local = NULL;
  if (!sysctr_slot_read_active (ctx, name, &slot_now, &info_now, &local) || g_strcmp0 (slot_now, slot) != 0
      || !json_equal (info_now, info))
    return sysctr_throw (error, SYSCTR_ERROR_FAILED,
                         "%s changed while this update waited for the update lock (another sysctr command ran); "
                         "nothing was done: run the update again",
                         name);
  g_autoptr (SysctrImage) stored = NULL;
  if (!sysctr_store_lookup_image (ctx->repo, image->reference, &stored, NULL) || stored == NULL
      || g_strcmp0 (stored->manifest_digest, image->manifest_digest) != 0)
    return sysctr_throw (error, SYSCTR_ERROR_FAILED,
                         "%s: the image %s left the store while this update waited for the update lock; nothing was "
                         "done: run the update again",
                         name, image->reference);
  return TRUE;
}

static gboolean
update_one (SysctrContext *ctx, const char *name, const char *slot, json_t *info, const SysctrUpdateOptions *opts,
            gboolean *out_changed, json_t *record, GError **error)
{
  SysctrDeployment cur;
  sysctr_deployment_view (info, &cur);
  json_object_set_new (record, "from", json_string (cur.manifest_digest ? cur.manifest_digest : ""));
  g_autoptr (json_t) lock_json = NULL;
  if (!sysctr_update_lock_merge (cur.update_lock, &opts->lock, &lock_json, error))
    return FALSE;
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
  json_object_set_new (record, "to", json_string (image->manifest_digest));

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
  gboolean same_lock = json_equal (lock_json, cur.update_lock) || (lock_json == NULL && cur.update_lock == NULL);
  if (same_values && g_strcmp0 (image->manifest_digest, cur.manifest_digest) == 0
      && g_strcmp0 (image->reference, cur.reference) == 0)
    {
      if (!same_lock)
        return set_lock (ctx, name, slot, lock_json, error);
      sysctr_say ("%s: already up to date (%s)", name, image->manifest_digest);
      return TRUE;
    }

  g_autoptr (SysctrSystemd) sd = NULL;
  if (!sysctr_units_connect (ctx, &sd, error))
    {
      return FALSE;
    }
  gboolean was_running = sysctr_units_is_active (sd, info);

  /* the cluster lock, before anything is restarted (or the other slot,
   * the rollback target, is overwritten); a stopped service restarts
   * nothing and needs none */
  g_autoptr (SysctrUpdateLockConfig) lock_cfg = NULL;
  if (!sysctr_update_lock_from_json (lock_json, &lock_cfg, error))
    return FALSE;
  g_autoptr (SysctrUpdateLock) lock = NULL;
  if (lock_cfg && ctx->live && was_running)
    {
      const char *set_name = g_hash_table_lookup (set, "UPDATE_LOCK_NAME");
      g_autoptr (json_t) name_values = set_name ? json_pack ("{s:s}", "UPDATE_LOCK_NAME", set_name)
                                                : json_incref (cur.values ? cur.values : json_object ());
      g_autofree char *lock_name = sysctr_update_lock_name (lock_cfg, name_values, name, error);
      if (lock_name == NULL)
        return FALSE;
      json_object_set_new (record, "lock", json_pack ("{s:s}", "name", lock_name));
      /* the wait can be long: this host's other sysctr commands go on
       * meanwhile (nothing has been written yet), and what this update
       * decided on is read again once the state lock is back */
      sysctr_context_unlock (ctx);
      lock = sysctr_update_lock_acquire (lock_cfg, lock_name, name, cur.manifest_digest, image->manifest_digest, error);
      if (!sysctr_context_relock (ctx, lock ? error : NULL) || lock == NULL
          || !unchanged_while_waiting (ctx, name, slot, info, image, error))
        return FALSE; /* the lock, when held, is released unused */
      was_running = sysctr_units_is_active (sd, info);
    }
  gboolean gate = (opts->gate || lock != NULL) && was_running;

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
    .update_lock = lock_json,
  };
  if (!sysctr_slot_write (ctx, name, new_slot, image, set, previous, cur.runtime, pull_json, &grant, &new_info, error)
      || !sysctr_update_lock_check (name, new_info, error))
    return FALSE; /* the running deployment is untouched */
  if (lock && !sysctr_update_lock_held (lock, error))
    return FALSE; /* another host may hold it by now: restart nothing */
  g_autoptr (GError) switch_error = NULL;
  if (!switch_to (ctx, &sd, name, "update", info, new_info, was_running, &switch_error)
      || (gate
          && (!sysctr_units_wait_settled (sd, new_info, &switch_error)
              || !sysctr_units_wait_healthy (sd, new_info, &switch_error))))
    {
      if (!gate)
        {
          g_propagate_error (error, g_steal_pointer (&switch_error));
          return FALSE;
        }
      sysctr_note ("%s: the new deployment did not come up (%s); rolling back to %s", name, switch_error->message,
                   slot);
      json_object_set_new (record, "rolled_back", json_true ());
      g_autoptr (GError) halt_error = NULL;
      g_autofree char *version = g_strdup_printf ("%s@%s", image->reference, image->manifest_digest);
      /* the halt first: the other hosts stop even if this one fails next */
      if (lock && !sysctr_update_lock_halt (lock, version, switch_error->message, &halt_error))
        sysctr_note ("%s: could not leave the halt record: %s", name, halt_error->message);
      gboolean back = switch_to (ctx, &sd, name, "rollback", new_info, info, TRUE, error);
      if (back)
        {
          g_autoptr (GError) up_error = NULL;
          if (!sysctr_units_wait_settled (sd, info, &up_error))
            sysctr_note ("%s: rolled back to %s, which is not up either: %s", name, slot, up_error->message);
        }
      if (lock)
        {
          sysctr_update_lock_release (lock);
          json_object_set_new (record, "lock", sysctr_update_lock_summary (lock));
        }
      if (!back)
        return FALSE;
      return sysctr_throw (error, SYSCTR_ERROR_FAILED, "update to %s rolled back: %s", image->manifest_digest,
                           switch_error->message);
    }
  *out_changed = TRUE;
  if (lock)
    {
      /* the gate passed: the next host may go */
      sysctr_update_lock_release (lock);
      json_object_set_new (record, "lock", sysctr_update_lock_summary (lock));
    }
  g_autoptr (GError) settle_error = NULL;
  if (was_running && !gate && !sysctr_units_wait_settled (sd, new_info, &settle_error))
    return sysctr_throw (error, SYSCTR_ERROR_FAILED, "%s was updated to %s, but %s (\"sysctr rollback %s\" goes back)",
                         name, image->manifest_digest, settle_error->message, name);
  sysctr_say ("Updated %s to %s (%s)%s", name, image->reference, image->manifest_digest,
              was_running ? ", restarted" : "");
  return TRUE;
}

static const char *
result_of (gboolean ok, gboolean changed, json_t *record, GError *error)
{
  if (ok)
    return changed ? "updated" : "up to date";
  if (json_is_true (json_object_get (record, "rolled_back")))
    return "rolled back";
  if (g_error_matches (error, SYSCTR_ERROR, SYSCTR_ERROR_HALTED))
    return "halted";
  if (g_error_matches (error, SYSCTR_ERROR, SYSCTR_ERROR_NOT_GRANTED))
    return "held back";
  if (g_error_matches (error, SYSCTR_ERROR, SYSCTR_ERROR_REJECTED))
    return "refused by the signature policy";
  return "failed";
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
  g_autofree char *at = sysctr_iso_now ();
  g_autoptr (json_t) record = json_pack ("{s:s}", "at", at);
  g_autoptr (GError) local = NULL;
  gboolean ok = update_one (ctx, name, slot, info, opts, out_changed, record, &local);
  json_object_set_new (record, "result", json_string (result_of (ok, *out_changed, record, local)));
  if (local)
    json_object_set_new (record, "message", json_string (local->message));
  g_autoptr (GError) record_error = NULL;
  if (!sysctr_last_update_write (ctx, name, record, &record_error))
    sysctr_note ("%s: could not record this update attempt: %s", name, record_error->message);
  if (local)
    g_propagate_error (error, g_steal_pointer (&local));
  return ok;
}

gboolean
sysctr_update_clear_halt (SysctrContext *ctx, const char *name, GError **error)
{
  g_autofree char *slot = NULL;
  g_autoptr (json_t) info = NULL;
  if (!sysctr_slot_read_active (ctx, name, &slot, &info, error))
    return FALSE;
  SysctrDeployment d;
  sysctr_deployment_view (info, &d);
  g_autoptr (SysctrUpdateLockConfig) cfg = NULL;
  if (!sysctr_update_lock_from_json (d.update_lock, &cfg, error))
    return FALSE;
  if (cfg == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s has no update lock (see --update-lock)", name);
  g_autofree char *lock_name = sysctr_update_lock_name (cfg, d.values, name, error);
  g_autoptr (json_t) halt = NULL;
  if (lock_name == NULL || !sysctr_update_lock_clear_halt (cfg, lock_name, &halt, error))
    return FALSE;
  if (halt == NULL)
    {
      sysctr_say ("%s: the update lock %s was not halted", name, lock_name);
      return TRUE;
    }
  g_autofree char *host = sysctr_printable (sysctr_json_get_string (halt, "host"));
  g_autofree char *version = sysctr_printable (sysctr_json_get_string (halt, "version"));
  g_autofree char *reason = sysctr_printable (sysctr_json_get_string (halt, "reason"));
  sysctr_say ("%s: cleared the halt of the update lock %s (%s had failed on %s: %s)", name, lock_name, version, host,
              reason);
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
