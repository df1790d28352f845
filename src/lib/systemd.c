#include "config.h"

#include "systemd.h"

#include "sysctr-util.h"

#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-journal.h>

/* sd-bus objects under GLib's cleanup attributes */
G_DEFINE_AUTOPTR_CLEANUP_FUNC (sd_bus_message, sd_bus_message_unref)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (sd_bus_error, sd_bus_error_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (sd_journal, sd_journal_close)

#define DEST "org.freedesktop.systemd1"
#define PATH "/org/freedesktop/systemd1"
#define MANAGER "org.freedesktop.systemd1.Manager"

struct SysctrSystemd
{
  sd_bus *bus;
  char *waiting_job;
  char *job_result;
};

void
sysctr_systemd_free (SysctrSystemd *sd)
{
  if (sd == NULL)
    return;
  if (sd->bus)
    sd_bus_flush_close_unref (sd->bus);
  g_free (sd->waiting_job);
  g_free (sd->job_result);
  g_free (sd);
}

static gboolean
throw_bus (GError **error, int r, const sd_bus_error *e, const char *what)
{
  if (e && sd_bus_error_is_set (e))
    return sysctr_throw (error, SYSCTR_ERROR_FAILED, "%s: %s", what, e->message ? e->message : e->name);
  return sysctr_throw (error, SYSCTR_ERROR_FAILED, "%s: %s", what, g_strerror (-r));
}

static int
on_job_removed (sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
  SysctrSystemd *sd = userdata;
  uint32_t id;
  const char *path, *unit, *result;
  if (sd_bus_message_read (m, "uoss", &id, &path, &unit, &result) < 0)
    return 0;
  if (sd->waiting_job && strcmp (path, sd->waiting_job) == 0)
    {
      g_free (sd->job_result);
      sd->job_result = g_strdup (result);
    }
  return 0;
}

SysctrSystemd *
sysctr_systemd_connect (GError **error)
{
  g_autoptr (SysctrSystemd) sd = g_new0 (SysctrSystemd, 1);
  int r;
  if (geteuid () == 0 && access ("/run/systemd/private", F_OK) == 0)
    {
      r = sd_bus_new (&sd->bus);
      if (r >= 0)
        r = sd_bus_set_address (sd->bus, "unix:path=/run/systemd/private");
      if (r >= 0)
        r = sd_bus_start (sd->bus);
      if (r < 0)
        {
          g_clear_pointer (&sd->bus, sd_bus_unref);
        }
    }
  if (sd->bus == NULL)
    {
      r = sd_bus_open_system (&sd->bus);
      if (r < 0)
        {
          sysctr_throw (error, SYSCTR_ERROR_FAILED,
                        "connecting to systemd: %s (is systemd running? use --root=DIR for an offline tree)",
                        g_strerror (-r));
          return NULL;
        }
    }
  r = sd_bus_match_signal (sd->bus, NULL, DEST, PATH, MANAGER, "JobRemoved", on_job_removed, sd);
  if (r < 0)
    {
      throw_bus (error, r, NULL, "subscribing to systemd jobs");
      return NULL;
    }
  g_auto (sd_bus_error) e = SD_BUS_ERROR_NULL;
  r = sd_bus_call_method (sd->bus, DEST, PATH, MANAGER, "Subscribe", &e, NULL, "");
  if (r < 0)
    {
      throw_bus (error, r, &e, "subscribing to systemd");
      return NULL;
    }
  return g_steal_pointer (&sd);
}

gboolean
sysctr_systemd_reload (SysctrSystemd *sd, GError **error)
{
  g_auto (sd_bus_error) e = SD_BUS_ERROR_NULL;
  sysctr_debug ("systemd: Reload");
  int r = sd_bus_call_method (sd->bus, DEST, PATH, MANAGER, "Reload", &e, NULL, "");
  gboolean ok = r >= 0 || throw_bus (error, r, &e, "systemd daemon-reload");
  return ok;
}

gboolean
sysctr_systemd_enable (SysctrSystemd *sd, const char *unit, GError **error)
{
  g_auto (sd_bus_error) e = SD_BUS_ERROR_NULL;
  g_autoptr (sd_bus_message) reply = NULL;
  sysctr_debug ("systemd: EnableUnitFiles %s", unit);
  int r = sd_bus_call_method (sd->bus, DEST, PATH, MANAGER, "EnableUnitFiles", &e, &reply, "asbb", 1, unit, 0, 1);
  g_autofree char *what = g_strdup_printf ("enabling %s", unit);
  gboolean ok = r >= 0 || throw_bus (error, r, &e, what);
  return ok;
}

gboolean
sysctr_systemd_disable (SysctrSystemd *sd, const char *unit, GError **error)
{
  g_auto (sd_bus_error) e = SD_BUS_ERROR_NULL;
  g_autoptr (sd_bus_message) reply = NULL;
  sysctr_debug ("systemd: DisableUnitFiles %s", unit);
  int r = sd_bus_call_method (sd->bus, DEST, PATH, MANAGER, "DisableUnitFiles", &e, &reply, "asb", 1, unit, 0);
  g_autofree char *what = g_strdup_printf ("disabling %s", unit);
  gboolean ok = r >= 0 || throw_bus (error, r, &e, what);
  return ok;
}

gboolean
sysctr_systemd_job (SysctrSystemd *sd, const char *method, const char *unit, GError **error)
{
  g_auto (sd_bus_error) e = SD_BUS_ERROR_NULL;
  g_autoptr (sd_bus_message) reply = NULL;
  g_autofree char *what = g_strdup_printf ("%s %s", method, unit);
  gint64 t0 = g_get_monotonic_time ();
  int r = sd_bus_call_method (sd->bus, DEST, PATH, MANAGER, method, &e, &reply, "ss", unit, "replace");
  if (r < 0)
    {
      gboolean ok = throw_bus (error, r, &e, what);
      return ok;
    }
  const char *job = NULL;
  r = sd_bus_message_read (reply, "o", &job);
  if (r < 0)
    {
      return throw_bus (error, r, NULL, what);
    }
  g_free (sd->waiting_job);
  sd->waiting_job = g_strdup (job);
  g_clear_pointer (&sd->job_result, g_free);

  while (sd->job_result == NULL)
    {
      r = sd_bus_process (sd->bus, NULL);
      if (r < 0)
        return throw_bus (error, r, NULL, what);
      if (r > 0)
        continue;
      r = sd_bus_wait (sd->bus, UINT64_MAX);
      if (r < 0)
        return throw_bus (error, r, NULL, what);
    }
  sysctr_debug ("systemd: %s: job %s, %" G_GINT64_FORMAT " ms", what, sd->job_result,
                (g_get_monotonic_time () - t0) / 1000);
  if (strcmp (sd->job_result, "done") != 0)
    return sysctr_throw (error, SYSCTR_ERROR_FAILED,
                         "%s: job %s (see \"systemctl status %s\" and \"journalctl -u %s\")", what, sd->job_result,
                         unit, unit);
  return TRUE;
}

gboolean
sysctr_systemd_reset_failed (SysctrSystemd *sd, const char *unit, GError **error)
{
  g_auto (sd_bus_error) e = SD_BUS_ERROR_NULL;
  int r = sd_bus_call_method (sd->bus, DEST, PATH, MANAGER, "ResetFailedUnit", &e, NULL, "s", unit);
  /* a unit that is not loaded has no failed state to reset */
  gboolean ok
      = r >= 0 || sd_bus_error_has_name (&e, "org.freedesktop.systemd1.NoSuchUnit") || throw_bus (error, r, &e, unit);
  return ok;
}

char *
sysctr_systemd_unit_property (SysctrSystemd *sd, const char *unit, const char *iface, const char *prop, GError **error)
{
  g_auto (sd_bus_error) e = SD_BUS_ERROR_NULL;
  g_autoptr (sd_bus_message) reply = NULL;
  int r = sd_bus_call_method (sd->bus, DEST, PATH, MANAGER, "LoadUnit", &e, &reply, "s", unit);
  if (r < 0)
    {
      throw_bus (error, r, &e, unit);
      return NULL;
    }
  const char *path = NULL;
  sd_bus_message_read (reply, "o", &path);
  g_autofree char *p = g_strdup (path);
  g_autofree char *value = NULL;
  r = sd_bus_get_property_string (sd->bus, DEST, p, iface, prop, &e, &value);
  if (r < 0)
    {
      throw_bus (error, r, &e, unit);
      return NULL;
    }
  return g_steal_pointer (&value);
}

char *
sysctr_systemd_active_state (SysctrSystemd *sd, const char *unit, GError **error)
{
  return sysctr_systemd_unit_property (sd, unit, "org.freedesktop.systemd1.Unit", "ActiveState", error);
}

guint32
sysctr_systemd_main_pid (SysctrSystemd *sd, const char *unit)
{
  return sysctr_systemd_unit_property_u32 (sd, unit, "org.freedesktop.systemd1.Service", "MainPID");
}

char *
sysctr_systemd_journal_tail (const char *unit, guint lines)
{
  g_autoptr (sd_journal) j = NULL;
  if (sd_journal_open (&j, SD_JOURNAL_LOCAL_ONLY) < 0)
    return NULL;
  g_autofree char *match = g_strdup_printf ("_SYSTEMD_UNIT=%s", unit);
  g_autoptr (GPtrArray) got = g_ptr_array_new_with_free_func (g_free);
  if (sd_journal_add_match (j, match, 0) == 0 && sd_journal_seek_tail (j) == 0)
    while (got->len < lines && sd_journal_previous (j) > 0)
      {
        const void *data;
        size_t len;
        if (sd_journal_get_data (j, "MESSAGE", &data, &len) == 0 && len > 8)
          {
            g_autofree char *msg = g_strndup ((const char *) data + 8, len - 8);
            g_ptr_array_insert (got, 0, sysctr_printable (msg));
          }
      }
  if (got->len == 0)
    return NULL;
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < got->len; i++)
    g_string_append_printf (s, "  %s\n", (char *) got->pdata[i]);
  return g_string_free (s, FALSE);
}

guint32
sysctr_systemd_unit_property_u32 (SysctrSystemd *sd, const char *unit, const char *iface, const char *prop)
{
  g_auto (sd_bus_error) e = SD_BUS_ERROR_NULL;
  g_autoptr (sd_bus_message) reply = NULL;
  guint32 v = 0;
  if (sd_bus_call_method (sd->bus, DEST, PATH, MANAGER, "LoadUnit", &e, &reply, "s", unit) < 0)
    return 0;
  const char *path = NULL;
  sd_bus_message_read (reply, "o", &path);
  g_autofree char *p = g_strdup (path);
  if (sd_bus_get_property_trivial (sd->bus, DEST, p, iface, prop, &e, 'u', &v) < 0)
    return 0;
  return v;
}
