/* journal.c: the commit protocol of every mutating command. Before the
 * commit point (the NAME symlink's rename), containers/.NAME.pending names
 * the operation and its slots; after it, the finish steps (host files,
 * enablement, tmpfiles, daemon-reload) run and the journal is removed.
 * Reconcile, which every mutating command runs first, completes an
 * operation whose symlink was switched and forgets one whose symlink was
 * not, so the host always ends up matching the active deployment. */
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

/* The journal of a mutating command: containers/.NAME.pending names the
 * operation and slots, written before the commit point (the NAME symlink)
 * and removed when every step after it is done. reconcile reads it to
 * complete (symlink switched) or forget (not switched) the operation. */
static char *
journal_rel (const char *name)
{
  return g_strdup_printf ("containers/.%s.pending", name);
}

gboolean
sysctr_journal_write (SysctrContext *ctx, const char *name, const char *op, const char *slot, const char *from,
                      gboolean purge, GError **error)
{
  g_autoptr (json_t) j = json_pack ("{s:s, s:s, s:s?, s:b}", "op", op, "slot", slot, "from", from, "purge", purge);
  g_autofree char *text = sysctr_json_dump (j, FALSE);
  g_autofree char *rel = journal_rel (name);
  if (!sysctr_write_file_at (ctx->state_dfd, rel, text, strlen (text), 0600, error))
    return FALSE;
  sysctr_crash_point ("journal-written");
  return TRUE;
}

void
sysctr_journal_remove (SysctrContext *ctx, const char *name)
{
  g_autofree char *rel = journal_rel (name);
  (void) unlinkat (ctx->state_dfd, rel, 0);
}

/* Operations that reconcile completed in this process (name -> op), so
 * that running the interrupted command again reports success. */
static GHashTable *completed_ops;

static void
note_completed (const char *name, const char *op)
{
  if (completed_ops == NULL)
    completed_ops = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_hash_table_replace (completed_ops, g_strdup (name), g_strdup (op));
}

gboolean
sysctr_journal_was_completed (const char *name, const char *op)
{
  return completed_ops && g_strcmp0 (g_hash_table_lookup (completed_ops, name), op) == 0;
}

/* After the commit point of an install: host files, enablement, tmpfiles. */
gboolean
sysctr_journal_finish_install (SysctrContext *ctx, SysctrSystemd **sd, const char *name, json_t *info, GError **error)
{
  if (!sysctr_host_files_apply (ctx, name, info, NULL, TRUE, NULL, error))
    return FALSE;
  sysctr_crash_point ("install-host-files");
  if (!ctx->live)
    return sysctr_units_offline_enable (ctx, info, TRUE, error);
  if (!sysctr_units_connect (ctx, sd, error) || !sysctr_systemd_reload (*sd, error))
    return FALSE;
  SysctrDeployment d;
  sysctr_deployment_view (info, &d);
  if (d.enable && !sysctr_systemd_enable (*sd, d.enable, error))
    return FALSE;
  return sysctr_units_run_tmpfiles (ctx, name, "--create", error);
}

/* After the commit point of an update or a rollback: host files swapped,
 * enablement moved, systemd reloaded. */
gboolean
sysctr_journal_finish_switch (SysctrContext *ctx, SysctrSystemd **sd, const char *name, json_t *old_info,
                              json_t *new_info, GError **error)
{
  if (!sysctr_host_files_apply (ctx, name, new_info, old_info, TRUE, NULL, error))
    return FALSE;
  sysctr_crash_point ("switch-host-files");
  if (!ctx->live)
    {
      if (old_info && !sysctr_units_offline_enable (ctx, old_info, FALSE, error))
        return FALSE;
      sysctr_crash_point ("switch-disabled-old");
      return sysctr_units_offline_enable (ctx, new_info, TRUE, error) && sysctr_host_dirs_prune (ctx, error);
    }
  if (!sysctr_units_connect (ctx, sd, error) || !sysctr_systemd_reload (*sd, error))
    return FALSE;
  /* Units the new deployment no longer has (a socket dropped by an update)
   * stay loaded and running until stopped; a socket whose file changed
   * (another ListenStream=) listens on the old address until restarted.
   * Services are restarted by the caller, if they were running. */
  SysctrDeployment old, new;
  sysctr_deployment_view (old_info, &old);
  sysctr_deployment_view (new_info, &new);
  size_t i;
  json_t *u;
  json_array_foreach (old.units, i, u)
    {
      const char *unit = json_string_value (u);
      gboolean kept = FALSE;
      size_t k;
      json_t *nu;
      json_array_foreach (new.units, k, nu)
        kept |= g_strcmp0 (json_string_value (nu), unit) == 0;
      g_autoptr (GError) local_error = NULL;
      if (unit && !kept
          && (!sysctr_systemd_job (*sd, "StopUnit", unit, &local_error)
              || !sysctr_systemd_reset_failed (*sd, unit, &local_error)))
        sysctr_warn ("%s", local_error->message);
    }
  json_array_foreach (new.units, i, u)
    {
      const char *unit = json_string_value (u);
      if (unit == NULL || !g_str_has_suffix (unit, ".socket") || old_info == NULL)
        continue;
      g_autofree char *path = g_strdup_printf ("/etc/systemd/system/%s", unit);
      const char *was = sysctr_deployment_file_sha (&old, path);
      if (was == NULL || g_strcmp0 (was, sysctr_deployment_file_sha (&new, path)) == 0)
        continue;
      g_autofree char *state = sysctr_systemd_active_state (*sd, unit, NULL);
      g_autoptr (GError) local_error = NULL;
      if (g_strcmp0 (state, "active") == 0 && !sysctr_systemd_job (*sd, "RestartUnit", unit, &local_error))
        sysctr_warn ("%s", local_error->message);
    }
  const char *old_unit = old.enable;
  const char *new_unit = new.enable;
  if (g_strcmp0 (old_unit, new_unit) != 0)
    {
      g_autoptr (GError) local_error = NULL;
      if (old_unit && !sysctr_systemd_disable (*sd, old_unit, &local_error))
        sysctr_warn ("%s", local_error->message);
      if (new_unit && !sysctr_systemd_enable (*sd, new_unit, error))
        return FALSE;
    }
  return sysctr_units_run_tmpfiles (ctx, name, "--create", error) && sysctr_host_dirs_prune (ctx, error);
}

/* After the commit point of an uninstall (the NAME symlink is gone):
 * units stopped and disabled, host files removed, slots removed. @info may
 * be NULL when the slot's info.json is already gone (then the files were
 * removed already). */
gboolean
sysctr_journal_finish_uninstall (SysctrContext *ctx, SysctrSystemd **sd, const char *name, const char *slot,
                                 json_t *info, gboolean purge, GError **error)
{
  SysctrDeployment d;
  sysctr_deployment_view (info, &d);
  if (info)
    {
      if (ctx->live)
        {
          if (!sysctr_units_connect (ctx, sd, error))
            return FALSE;
          /* the socket first, so nothing starts the service again */
          json_t *units = d.units;
          for (ssize_t i = (ssize_t) json_array_size (units) - 1; i >= 0; i--)
            {
              const char *u = json_string_value (json_array_get (units, i));
              g_autoptr (GError) local_error = NULL;
              if (u && !sysctr_systemd_job (*sd, "StopUnit", u, &local_error))
                sysctr_warn ("%s", local_error->message);
            }
          /* a unit that failed would stay loaded as "not-found failed"
           * after its files are gone, and keep the system degraded */
          for (size_t i = 0; i < json_array_size (units); i++)
            {
              const char *u = json_string_value (json_array_get (units, i));
              g_autoptr (GError) local_error = NULL;
              if (u && !sysctr_systemd_reset_failed (*sd, u, &local_error))
                sysctr_warn ("%s", local_error->message);
            }
          g_autoptr (GError) local_error = NULL;
          if (d.enable && !sysctr_systemd_disable (*sd, d.enable, &local_error))
            sysctr_warn ("%s", local_error->message);
          g_autoptr (GError) tmpfiles_error = NULL;
          if (!sysctr_units_run_tmpfiles (ctx, name, "--remove", &tmpfiles_error))
            sysctr_warn ("%s", tmpfiles_error->message);
        }
      else if (!sysctr_units_offline_enable (ctx, info, FALSE, error))
        return FALSE;
      sysctr_crash_point ("uninstall-disabled");
      SysctrDeployment none = { .slot = slot };
      g_autoptr (json_t) empty = sysctr_deployment_to_json (&none);
      if (!sysctr_host_files_apply (ctx, name, empty, info, TRUE, NULL, error))
        return FALSE;
      sysctr_crash_point ("uninstall-host-files");
      if (ctx->live && !sysctr_systemd_reload (*sd, error))
        return FALSE;
    }
  /* what the container's tmpfiles.d lines made for it (bind sources the
   * host lacked, hostfs directories), when nothing was put there since:
   * deepest first */
  if (info)
    {
      g_autoptr (GPtrArray) made = g_ptr_array_new ();
      size_t i;
      json_t *c;
      json_array_foreach (d.created, i, c)
        if (json_is_string (c) && json_string_value (c)[0] == '/' && !strstr (json_string_value (c), "/../"))
          g_ptr_array_add (made, (gpointer) json_string_value (c));
      g_ptr_array_sort (made, sysctr_strptr_cmp);
      for (guint k = made->len; k-- > 0;)
        {
          sysctr_autofd int pdfd = -1;
          const char *base = NULL;
          struct stat st;
          if (!sysctr_host_open_parent (ctx, made->pdata[k], FALSE, &pdfd, &base, NULL)
              || fstatat (pdfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
          if (S_ISDIR (st.st_mode))
            (void) unlinkat (pdfd, base, AT_REMOVEDIR); /* fails when not empty: kept */
          else if (S_ISREG (st.st_mode) && st.st_size == 0)
            (void) unlinkat (pdfd, base, 0);
        }
    }
  /* info.json first: a slot without it owns nothing */
  for (int i = 0; i < 2; i++)
    {
      g_autofree char *s = g_strdup_printf ("containers/%s.%d", name, i);
      g_autofree char *si = g_strdup_printf ("%s/info.json", s);
      if ((unlinkat (ctx->state_dfd, si, 0) < 0 && errno != ENOENT && errno != ENOTDIR)
          || !sysctr_rm_rf_at (ctx->state_dfd, s, error))
        return error && *error ? FALSE : sysctr_throw_errno (error, "removing %s", si);
    }
  sysctr_crash_point ("uninstall-slots-removed");
  const char *state = d.state_path;
  if (state && state[0] == '/' && strlen (state) > strlen ("/var/lib/") && !strstr (state, "/../")
      && !g_str_has_prefix (state, SYSCTR_STATE_DIR))
    {
      struct stat st;
      sysctr_autofd int pdfd = -1;
      const char *base = NULL;
      g_autoptr (GError) local_error = NULL;
      gboolean exists = sysctr_host_open_parent (ctx, state, FALSE, &pdfd, &base, &local_error)
                        && fstatat (pdfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0;
      if (purge && exists)
        {
          if (!sysctr_rm_rf_at (pdfd, base, error))
            return FALSE;
          sysctr_say ("Removed state data %s", state);
        }
      else if (exists)
        sysctr_say ("Kept state data in %s (remove it with --purge)", state);
    }
  if (!sysctr_host_dirs_prune (ctx, error))
    return FALSE;
  sysctr_journal_remove (ctx, name);
  return TRUE;
}

/* Completes (the symlink says it happened) or forgets (it did not) the
 * operation a journal names. */
static gboolean
reconcile_journal (SysctrContext *ctx, SysctrSystemd **sd, const char *name, gboolean *out_changed, GError **error)
{
  g_autofree char *rel = journal_rel (name);
  g_autofree char *data = NULL;
  gsize len = 0;
  if (!sysctr_read_file_at (ctx->state_dfd, rel, 64 * 1024, &data, &len, NULL))
    return TRUE;
  g_autoptr (json_t) j = json_loadb (data, len, 0, NULL);
  const char *op = sysctr_json_get_string (j, "op");
  const char *slot = sysctr_json_get_string (j, "slot");
  const char *from = sysctr_json_get_string (j, "from");
  g_autofree char *slot0 = g_strdup_printf ("%s.0", name);
  g_autofree char *slot1 = g_strdup_printf ("%s.1", name);
  gboolean slot_ok = g_strcmp0 (slot, slot0) == 0 || g_strcmp0 (slot, slot1) == 0;
  gboolean from_ok = from == NULL || strcmp (from, slot0) == 0 || strcmp (from, slot1) == 0;
  if (op == NULL || !slot_ok || !from_ok)
    {
      sysctr_warn ("%s: ignoring a corrupt journal %s", name, rel);
      sysctr_journal_remove (ctx, name);
      return TRUE;
    }
  g_autofree char *active = NULL;
  if (!sysctr_container_active_slot (ctx, name, &active, error))
    return FALSE;
  if (strcmp (op, "uninstall") == 0)
    {
      if (active == NULL)
        {
          g_autoptr (json_t) info = NULL;
          (void) sysctr_container_read_info (ctx, slot, &info, NULL);
          if (!sysctr_journal_finish_uninstall (ctx, sd, name, slot, info, json_is_true (json_object_get (j, "purge")),
                                                error))
            return FALSE;
          sysctr_note ("%s: completed an interrupted uninstall", name);
          note_completed (name, op);
          *out_changed = TRUE;
        }
      sysctr_journal_remove (ctx, name);
      return TRUE;
    }
  if (g_strcmp0 (active, slot) != 0)
    {
      /* the commit point was not reached: the old state stands */
      if (strcmp (op, "install") == 0 && active == NULL)
        {
          g_autofree char *srel = g_strdup_printf ("containers/%s", slot);
          if (!sysctr_rm_rf_at (ctx->state_dfd, srel, error))
            return FALSE;
        }
      sysctr_note ("%s: discarded an interrupted %s", name, op);
      sysctr_journal_remove (ctx, name);
      return TRUE;
    }
  g_autoptr (json_t) info = NULL;
  if (!sysctr_container_read_info (ctx, slot, &info, error))
    return FALSE;
  if (strcmp (op, "install") == 0)
    {
      if (!sysctr_journal_finish_install (ctx, sd, name, info, error))
        return FALSE;
    }
  else
    {
      g_autoptr (json_t) old_info = NULL;
      if (from)
        (void) sysctr_container_read_info (ctx, from, &old_info, NULL);
      if (!sysctr_journal_finish_switch (ctx, sd, name, old_info, info, error))
        return FALSE;
    }
  sysctr_note ("%s: completed an interrupted %s (now %s)", name, op, slot);
  note_completed (name, op);
  *out_changed = TRUE;
  sysctr_journal_remove (ctx, name);
  return TRUE;
}

gboolean
sysctr_reconcile (SysctrContext *ctx, GError **error)
{
  g_autoptr (SysctrSystemd) sd = NULL;
  gboolean changed_any = FALSE;

  /* 1. journals of interrupted commands; 2. slots nothing points to */
  g_autoptr (GPtrArray) journals = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (GPtrArray) slots = g_ptr_array_new_with_free_func (g_free);
  {
    sysctr_autofd int dfd = openat (ctx->state_dfd, "containers", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int d2 = dfd >= 0 ? fcntl (dfd, F_DUPFD_CLOEXEC, 3) : -1;
    DIR *d = d2 >= 0 ? fdopendir (d2) : NULL;
    if (d == NULL && d2 >= 0)
      close (d2);
    struct dirent *de;
    while (d && (de = readdir (d)))
      {
        const char *n = de->d_name;
        if (n[0] == '.' && g_str_has_suffix (n, ".pending"))
          {
            g_autofree char *jn = g_strndup (n + 1, strlen (n) - 1 - strlen (".pending"));
            if (sysctr_name_valid (jn))
              g_ptr_array_add (journals, g_steal_pointer (&jn));
          }
        else if (n[0] == '.' && strstr (n, ".link-"))
          (void) unlinkat (dfd, n, 0); /* a symlink never renamed into place */
        else if (n[0] == '.' && g_str_has_suffix (n, ".staging"))
          {
            g_autofree char *rel = g_strdup_printf ("containers/%s", n);
            (void) sysctr_rm_rf_at (ctx->state_dfd, rel, NULL); /* a deployment never completed */
          }
        else if (g_str_has_suffix (n, ".0") || g_str_has_suffix (n, ".1"))
          {
            g_autofree char *sn = g_strndup (n, strlen (n) - 2);
            if (sysctr_name_valid (sn))
              g_ptr_array_add (slots, g_strdup (n));
          }
      }
    if (d)
      closedir (d);
  }
  /* one container whose interrupted operation cannot be completed now is
   * reported; its journal stays for the next command to try again, and
   * this one goes on */
  for (guint i = 0; i < journals->len; i++)
    {
      g_autoptr (GError) local_error = NULL;
      if (!reconcile_journal (ctx, &sd, journals->pdata[i], &changed_any, &local_error))
        sysctr_warn ("%s: an interrupted operation could not be completed yet: %s", (char *) journals->pdata[i],
                     local_error->message);
    }
  if (!sysctr_host_owners_repair (ctx, error))
    return FALSE;
  for (guint i = 0; i < slots->len; i++)
    {
      const char *s = slots->pdata[i];
      g_autofree char *owner = g_strndup (s, strlen (s) - 2);
      g_autofree char *active = NULL;
      g_autofree char *jrel = journal_rel (owner);
      if (!sysctr_container_active_slot (ctx, owner, &active, NULL) || active != NULL
          || faccessat (ctx->state_dfd, jrel, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
        continue;
      g_autofree char *srel = g_strdup_printf ("containers/%s", s);
      if (!sysctr_rm_rf_at (ctx->state_dfd, srel, error))
        return FALSE;
      sysctr_note ("%s: removed %s left by an interrupted install or uninstall", owner, s);
    }

  /* 3. host files of every installed container match its active slot */
  g_autoptr (GPtrArray) names = NULL;
  if (!sysctr_containers_list (ctx, &names, error))
    return FALSE;
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = names->pdata[i];
      g_autofree char *slot = NULL;
      g_autoptr (json_t) info = NULL;
      g_autoptr (GError) local_error = NULL;
      if (!sysctr_slot_read_active (ctx, name, &slot, &info, &local_error))
        {
          sysctr_warn ("%s: %s", name, local_error->message);
          continue;
        }
      g_autofree char *other_name = sysctr_slot_other (name, slot);
      g_autoptr (json_t) other = NULL;
      g_autoptr (GError) other_error = NULL;
      (void) sysctr_container_read_info (ctx, other_name, &other, &other_error);
      gboolean changed = FALSE;
      /* one broken container is reported; the command goes on with the
       * others (and its own work), instead of every command failing
       * until the state directory is edited by hand */
      g_autoptr (GError) apply_error = NULL;
      if (!sysctr_host_files_apply (ctx, name, info, other, FALSE, &changed, &apply_error))
        {
          sysctr_warn ("%s: its host files do not match %s: %s", name, slot, apply_error->message);
          continue;
        }
      if (changed)
        {
          sysctr_note ("%s: completed an interrupted change (host files now match %s)", name, slot);
          changed_any = TRUE;
          if (!ctx->live && !sysctr_units_offline_enable (ctx, info, TRUE, error))
            return FALSE;
        }
    }
  /* 4. units whose container is gone */
  g_autoptr (GPtrArray) unit_files = g_ptr_array_new_with_free_func (g_free);
  {
    sysctr_autofd int unit_dir = -1;
    sysctr_autofd int unit_dfd = -1;
    g_autoptr (GError) local_error = NULL;
    if (sysctr_open_in_root (ctx->root_dfd, "/etc/systemd/system", FALSE, FALSE, &unit_dir, &local_error)
        && (unit_dfd = sysctr_reopen_fd (unit_dir, O_DIRECTORY)) >= 0)
      {
        g_clear_pointer (&unit_files, g_ptr_array_unref);
        if (!sysctr_dir_list_at (unit_dfd, ".", FALSE, &unit_files, error))
          return FALSE;
      }
  }
  for (guint f = 0; f < unit_files->len; f++)
    {
      const char *fn = unit_files->pdata[f];
      if (!g_str_has_suffix (fn, ".service") && !g_str_has_suffix (fn, ".socket"))
        continue;
      g_autofree char *path = g_strdup_printf ("/etc/systemd/system/%s", fn);
      g_autoptr (GError) local_error = NULL;
      g_autoptr (GBytes) data = sysctr_host_read (ctx, path, 1024 * 1024, &local_error);
      if (data == NULL)
        continue;
      gsize len;
      const char *p = g_bytes_get_data (data, &len);
      g_autofree char *owner = sysctr_marker_owner (p, len);
      if (owner == NULL)
        continue;
      g_autofree char *slot = NULL;
      if (!sysctr_container_active_slot (ctx, owner, &slot, NULL) || slot != NULL)
        continue;
      if (!ctx->live && !sysctr_units_offline_disable (ctx, fn, error))
        return FALSE;
      g_autofree char *tf = g_strdup_printf ("/etc/tmpfiles.d/sysctr-%s.conf", owner);
      const char *gone[] = { path, tf };
      for (guint g = 0; g < G_N_ELEMENTS (gone); g++)
        {
          sysctr_autofd int pdfd = -1;
          const char *base = NULL;
          g_autoptr (GError) ignored = NULL;
          if (sysctr_host_open_parent (ctx, gone[g], FALSE, &pdfd, &base, &ignored))
            (void) unlinkat (pdfd, base, 0);
        }
      sysctr_note ("%s: removed %s left by an interrupted uninstall", owner, path);
      changed_any = TRUE;
    }
  if (changed_any && !sysctr_host_dirs_prune (ctx, error))
    return FALSE;
  if (changed_any && ctx->live)
    {
      if (!sysctr_units_connect (ctx, &sd, error) || !sysctr_systemd_reload (sd, error))
        return FALSE;
    }
  return TRUE;
}
