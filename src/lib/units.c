/* units.c: a container's units as systemd sees them. A unit name sysctr
 * did not write for this container is never taken over; enablement in a
 * --root tree is done as systemctl --root does it; a started service must
 * still be up with the same main process after the settle window. */
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

static const char *unit_dirs[] = {
  "/etc/systemd/system",           "/run/systemd/system",          "/run/systemd/transient",
  "/usr/local/lib/systemd/system", "/usr/lib/systemd/system",      "/lib/systemd/system",
  "/run/systemd/generator",        "/run/systemd/generator.early", "/run/systemd/generator.late",
};

/* A unit of this name that sysctr did not write for this container, in
 * any directory systemd loads units from, makes install refuse. */
gboolean
sysctr_units_check_conflicts (SysctrContext *ctx, const char *name, GError **error)
{
  const char *suffixes[] = { "service", "socket" };
  for (guint s = 0; s < G_N_ELEMENTS (suffixes); s++)
    for (guint d = 0; d < G_N_ELEMENTS (unit_dirs); d++)
      {
        g_autofree char *path = g_strdup_printf ("%s/%s.%s", unit_dirs[d], name, suffixes[s]);
        struct stat st;
        sysctr_autofd int pdfd = -1;
        const char *base = NULL;
        g_autoptr (GError) parent_error = NULL;
        if (!sysctr_host_open_parent (ctx, path, FALSE, &pdfd, &base, &parent_error)
            || fstatat (pdfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
          continue;
        g_autoptr (GError) local_error = NULL;
        g_autoptr (GBytes) data = S_ISREG (st.st_mode) ? sysctr_host_read (ctx, path, 1024 * 1024, &local_error) : NULL;
        g_autofree char *owner = NULL;
        if (data)
          {
            gsize len;
            const char *p = g_bytes_get_data (data, &len);
            owner = sysctr_marker_owner (p, len);
          }
        if (g_strcmp0 (owner, name) != 0)
          return sysctr_throw (error, SYSCTR_ERROR_EXISTS,
                               "unit %s.%s already exists at %s%s and was not written by sysctr; choose another --name",
                               name, suffixes[s], strcmp (ctx->root, "/") == 0 ? "" : ctx->root, path);
      }
  return TRUE;
}

static GBytes *
read_rendered (SysctrContext *ctx, const char *slot, const char *path, GError **error)
{
  g_autofree char *rel = g_strdup_printf ("containers/%s/rendered%s", slot, path);
  g_autofree char *data = NULL;
  gsize len = 0;
  if (!sysctr_read_file_at (ctx->state_dfd, rel, 16 * 1024 * 1024, &data, &len, error))
    return NULL;
  return g_bytes_new_take (g_steal_pointer (&data), len);
}

/* [Install] WantedBy=/RequiredBy= of a rendered unit, for enabling a
 * unit in a --root tree the way systemctl --root does. */
static GPtrArray *
install_targets (GBytes *unit)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  gsize len;
  const char *data = g_bytes_get_data (unit, &len);
  g_autofree char *text = g_strndup (data, len);
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  gboolean in_install = FALSE;
  for (char **l = lines; *l; l++)
    {
      g_strstrip (*l);
      if ((*l)[0] == '[')
        in_install = strcmp (*l, "[Install]") == 0;
      else if (in_install && (g_str_has_prefix (*l, "WantedBy=") || g_str_has_prefix (*l, "RequiredBy=")))
        {
          gboolean wanted = g_str_has_prefix (*l, "WantedBy=");
          g_auto (GStrv) targets = g_strsplit_set (strchr (*l, '=') + 1, " \t", -1);
          for (char **t = targets; *t; t++)
            if (**t && !strchr (*t, '/') && strcmp (*t, "..") != 0)
              g_ptr_array_add (out, g_strdup_printf ("%s.%s", *t, wanted ? "wants" : "requires"));
        }
    }
  return out;
}

/* Disables @unit in a --root tree: every <target>.wants|requires/@unit
 * link that points to it, found by scanning (the rendered unit may be gone
 * after an interrupted uninstall). */
gboolean
sysctr_units_offline_disable (SysctrContext *ctx, const char *unit, GError **error)
{
  g_autofree char *unit_path = g_strdup_printf ("/etc/systemd/system/%s", unit);
  sysctr_autofd int path_fd = -1;
  if (!sysctr_open_in_root_optional (ctx->root_dfd, "/etc/systemd/system", &path_fd, error))
    return FALSE;
  if (path_fd < 0)
    return TRUE;
  sysctr_autofd int dfd = sysctr_reopen_fd (path_fd, O_DIRECTORY);
  if (dfd < 0)
    return sysctr_throw_errno (error, "opening /etc/systemd/system");
  g_autoptr (GPtrArray) entries = NULL;
  if (!sysctr_dir_list_at (dfd, ".", FALSE, &entries, error))
    return FALSE;
  for (guint i = 0; i < entries->len; i++)
    {
      const char *dir = entries->pdata[i];
      if (!g_str_has_suffix (dir, ".wants") && !g_str_has_suffix (dir, ".requires"))
        continue;
      g_autofree char *link = g_strdup_printf ("%s/%s", dir, unit);
      char buf[PATH_MAX];
      ssize_t n = readlinkat (dfd, link, buf, sizeof buf - 1);
      if (n <= 0)
        continue;
      buf[n] = '\0';
      if (strcmp (buf, unit_path) == 0 && unlinkat (dfd, link, 0) < 0 && errno != ENOENT)
        return sysctr_throw_errno (error, "disabling %s", unit);
    }
  return TRUE;
}

gboolean
sysctr_units_offline_enable (SysctrContext *ctx, json_t *info, gboolean enable, GError **error)
{
  SysctrDeployment d;
  sysctr_deployment_view (info, &d);
  const char *unit = d.enable;
  const char *slot = d.slot;
  if (unit == NULL)
    return TRUE;
  if (!enable)
    return sysctr_units_offline_disable (ctx, unit, error);
  g_autofree char *unit_path = g_strdup_printf ("/etc/systemd/system/%s", unit);
  g_autoptr (GBytes) data = read_rendered (ctx, slot, unit_path, error);
  if (data == NULL)
    return FALSE;
  g_autoptr (GPtrArray) dirs = install_targets (data);
  for (guint i = 0; i < dirs->len; i++)
    {
      g_autofree char *link = g_strdup_printf ("/etc/systemd/system/%s/%s", (char *) dirs->pdata[i], unit);
      sysctr_autofd int pdfd = -1;
      const char *base = NULL;
      if (!sysctr_host_open_parent (ctx, link, TRUE, &pdfd, &base, error))
        return FALSE;
      if (symlinkat (unit_path, pdfd, base) < 0 && errno != EEXIST)
        return sysctr_throw_errno (error, "enabling %s", unit);
    }
  return TRUE;
}

gboolean
sysctr_units_run_tmpfiles (SysctrContext *ctx, const char *name, const char *action, GError **error)
{
  if (!ctx->live)
    return TRUE;
  g_autofree char *conf = g_strdup_printf ("/etc/tmpfiles.d/sysctr-%s.conf", name);
  if (access (conf, F_OK) != 0)
    return TRUE;
  const char *argv[] = { "systemd-tmpfiles", action, conf, NULL };
  g_autofree char *err = NULL;
  int status = 0;
  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL,
                     &err, &status, error))
    return FALSE;
  if (!g_spawn_check_wait_status (status, NULL))
    {
      g_strstrip (err);
      return sysctr_throw (error, SYSCTR_ERROR_FAILED, "systemd-tmpfiles %s %s failed: %s", action, conf, err);
    }
  return TRUE;
}

gboolean
sysctr_units_connect (SysctrContext *ctx, SysctrSystemd **sd, GError **error)
{
  if (!ctx->live || *sd != NULL)
    return TRUE;
  *sd = sysctr_systemd_connect (error);
  return *sd != NULL;
}

gboolean
sysctr_units_start (SysctrContext *ctx, SysctrSystemd *sd, json_t *info, const char *method, GError **error)
{
  SysctrDeployment d;
  sysctr_deployment_view (info, &d);
  if (d.enable == NULL)
    return TRUE;
  return sysctr_systemd_job (sd, method, d.enable, error);
}

gboolean
sysctr_units_is_active (SysctrSystemd *sd, json_t *info)
{
  SysctrDeployment d;
  sysctr_deployment_view (info, &d);
  const char *service = d.service;
  if (sd == NULL || service == NULL)
    return FALSE;
  g_autofree char *state = sysctr_systemd_active_state (sd, service, NULL);
  return g_strcmp0 (state, "active") == 0 || g_strcmp0 (state, "activating") == 0
         || g_strcmp0 (state, "reloading") == 0;
}

/* A started (or restarted) service whose start job succeeded must also
 * stay up: a Type=exec/simple service that dies a second after starting
 * passes the job. It must still be active with the same main process at
 * the end of the settle window (3 s, as sysctr-update(1) says), or this
 * fails with what the unit logged last. Type=notify services were gated by
 * READY=1 in the job itself, oneshots by their result; a socket-activated
 * container has not started at all. */
gboolean
sysctr_units_wait_settled (SysctrSystemd *sd, json_t *info, GError **error)
{
  if (sd == NULL)
    return TRUE;
  SysctrDeployment d;
  sysctr_deployment_view (info, &d);
  const char *service = d.service;
  const char *enabled = d.enable;
  if (service == NULL || (enabled && g_str_has_suffix (enabled, ".socket")))
    return TRUE;
  g_autofree char *type = sysctr_systemd_unit_property (sd, service, "org.freedesktop.systemd1.Service", "Type", NULL);
  if (g_strcmp0 (type, "notify") == 0 || g_strcmp0 (type, "notify-reload") == 0 || g_strcmp0 (type, "oneshot") == 0)
    return TRUE;
  const char *env = g_getenv ("SYSCTR_SETTLE_MS");
  gint64 settle_ms = env ? g_ascii_strtoll (env, NULL, 10) : 3000;
  gint64 start = g_get_monotonic_time (), deadline = start + settle_ms * 1000;
  guint32 main_pid = sysctr_systemd_main_pid (sd, service);
  for (;;)
    {
      g_autofree char *state = sysctr_systemd_active_state (sd, service, NULL);
      guint32 pid = sysctr_systemd_main_pid (sd, service);
      const char *why = NULL;
      if (g_strcmp0 (state, "active") != 0 && g_strcmp0 (state, "reloading") != 0)
        why = state ? state : "unknown";
      else if (pid != main_pid)
        why = "restarted (its main process changed)";
      if (why)
        {
          g_autofree char *sub
              = sysctr_systemd_unit_property (sd, service, "org.freedesktop.systemd1.Unit", "SubState", NULL);
          g_autofree char *tail = sysctr_systemd_journal_tail (service, 5);
          if (tail)
            {
              sysctr_note ("%s logged last:", service);
              sysctr_say_lines (TRUE, "", tail);
            }
          return sysctr_throw (error, SYSCTR_ERROR_FAILED, "%s did not stay up: %s (%s) %.1f s after it started",
                               service, why, sub ? sub : "unknown", (g_get_monotonic_time () - start) / 1e6);
        }
      if (g_get_monotonic_time () >= deadline)
        return TRUE;
      g_usleep (200 * 1000);
    }
}

gboolean
sysctr_units_wait_healthy (SysctrSystemd *sd, json_t *info, GError **error)
{
  SysctrDeployment d;
  sysctr_deployment_view (info, &d);
  if (sd == NULL || d.health == NULL || d.service == NULL || (d.enable && g_str_has_suffix (d.enable, ".socket")))
    return TRUE;
  gint64 interval = json_integer_value (json_object_get (d.health, "interval_ms"));
  gint64 timeout = json_integer_value (json_object_get (d.health, "timeout_ms"));
  gint64 start_period = json_integer_value (json_object_get (d.health, "start_period_ms"));
  gint64 retries = json_integer_value (json_object_get (d.health, "retries"));
  gint64 limit_ms = start_period + (retries + 1) * (interval + timeout);
  gint64 start = g_get_monotonic_time (), deadline = start + limit_ms * 1000;
  guint32 main_pid = sysctr_systemd_main_pid (sd, d.service);
  for (;;)
    {
      g_autofree char *status
          = sysctr_systemd_unit_property (sd, d.service, "org.freedesktop.systemd1.Service", "StatusText", NULL);
      g_autofree char *state = sysctr_systemd_active_state (sd, d.service, NULL);
      const char *why = NULL;
      g_autofree char *result = NULL;
      if (status && g_str_has_prefix (status, "health: healthy"))
        return TRUE;
      if (status && g_str_has_prefix (status, "health: unhealthy"))
        why = status + strlen ("health: ");
      else if ((g_strcmp0 (state, "active") != 0 && g_strcmp0 (state, "reloading") != 0)
               || sysctr_systemd_main_pid (sd, d.service) != main_pid)
        {
          /* stopped or restarted since: by the health check's watchdog
           * trigger? The status went with the old process; the shim's
           * "unhealthy after N failed checks" line in the unit's journal
           * says so */
          result = sysctr_systemd_journal_tail (d.service, 30);
          why = result && strstr (result, "sysctr-shim: warning: unhealthy after")
                    ? "unhealthy (its health check failed; systemd restarted it)"
                : g_strcmp0 (state, "active") != 0 ? (state ? state : "unknown")
                                                   : "restarted";
        }
      else if (g_get_monotonic_time () >= deadline)
        why = "no health check passed yet";
      if (why)
        return sysctr_throw (error, SYSCTR_ERROR_FAILED, "%s is not healthy: %s, %.1f s after it started", d.service,
                             why, (g_get_monotonic_time () - start) / 1e6);
      g_usleep (200 * 1000);
    }
}
