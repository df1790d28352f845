/* health.c: a service's health check and reload, from the image to the
 * bundle and the unit.
 *
 * Health: the image config's Healthcheck (Docker form: Test, Interval,
 * Timeout, StartPeriod, Retries), overridden field by field by the labels
 * org.sysctr.health-cmd (a shell command), -interval, -timeout,
 * -start-period, -retries. It goes into config.json as annotations
 * (org.sysctr.health.*), which the shim runs (src/shim/health.c): every
 * interval the test runs in the container as `sysctr exec` runs a command;
 * after RETRIES failures past the start period the shim reports "unhealthy"
 * and triggers the unit's watchdog, so systemd restarts it (the unit gets
 * NotifyAccess=main and WatchdogSignal=SIGTERM). The status text says
 * "health: healthy|unhealthy|starting".
 * Reload: org.sysctr.reload-signal=SIG sends SIG to the payload on
 * `systemctl reload` (through the shim, which forwards it);
 * org.sysctr.reload=CMD runs CMD in the container (sysctr-shim --exec).
 * Invariant: every byte from the image is checked here and written quoted;
 * neither asks for a privilege (the test and the reload run confined as the
 * payload is). */
#include "config.h"

#include <string.h>

#include "health.h"
#include "sysctr-util.h"

#define NS_PER_MS 1000000LL

/* "30s", "1m30s", "500ms", "2h": milliseconds, or -1 */
static gint64
parse_duration (const char *s)
{
  gint64 total = 0;
  if (s == NULL || *s == '\0')
    return -1;
  while (*s)
    {
      char *end;
      guint64 v = g_ascii_strtoull (s, &end, 10);
      if (end == s || v > 1000000000ULL || total > 24 * 3600000LL)
        return -1;
      s = end;
      if (g_str_has_prefix (s, "ms"))
        total += (gint64) v, s += 2;
      else if (*s == 's')
        total += (gint64) v * 1000, s++;
      else if (*s == 'm')
        total += (gint64) v * 60000, s++;
      else if (*s == 'h')
        total += (gint64) v * 3600000, s++;
      else
        return -1;
    }
  return total;
}

static gboolean
text_ok (const char *s)
{
  if (!g_utf8_validate (s, -1, NULL) || strlen (s) > 4096)
    return FALSE;
  for (const char *p = s; *p; p++)
    if ((unsigned char) *p < 0x20 || *p == 0x7f)
      return FALSE;
  return TRUE;
}

static const char *
image_label (const SysctrImage *image, const char *key)
{
  return sysctr_json_get_string (json_object_get (json_object_get (image->config, "config"), "Labels"), key);
}

/* a duration field: label (text) over Healthcheck (nanoseconds), else the
 * default; FALSE for a bad value */
static gboolean
duration_field (const SysctrImage *image, json_t *hc, const char *lbl, const char *key, gint64 def_ms, gint64 min_ms,
                gint64 *out, GError **error)
{
  const char *l = image_label (image, lbl);
  json_t *v = json_object_get (hc, key);
  gint64 ms = def_ms;
  if (l)
    ms = parse_duration (l);
  else if (json_is_integer (v) && json_integer_value (v) != 0)
    ms = json_integer_value (v) / NS_PER_MS;
  if (ms < min_ms || ms > 24 * 3600000LL)
    {
      g_autofree char *shown
          = l ? g_strescape (l, NULL) : g_strdup_printf ("%" G_GINT64_FORMAT "ns", (gint64) json_integer_value (v));
      return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                           "health check %s: \"%.40s\" is not a duration from %" G_GINT64_FORMAT "ms to 24h",
                           l ? lbl : key, shown, min_ms);
    }
  *out = ms;
  return TRUE;
}

gboolean
sysctr_render_health (const SysctrImage *image, gboolean shim, json_t *config, GString *service_lines,
                      gboolean *out_health, GError **error)
{
  json_t *hc = json_object_get (json_object_get (image->config, "config"), "Healthcheck");
  const char *cmd = image_label (image, "org.sysctr.health-cmd");
  g_autoptr (json_t) test = json_array ();
  *out_health = FALSE;

  if (cmd)
    {
      if (!text_ok (cmd) || *cmd == '\0')
        {
          g_autofree char *shown = g_strescape (cmd, NULL);
          return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                               "label org.sysctr.health-cmd: \"%.80s\" is not a command line", shown);
        }
      json_array_append_new (test, json_string ("/bin/sh"));
      json_array_append_new (test, json_string ("-c"));
      json_array_append_new (test, json_string (cmd));
    }
  else if (json_is_object (hc) && json_is_array (json_object_get (hc, "Test")))
    {
      json_t *t = json_object_get (hc, "Test");
      const char *kind = json_string_value (json_array_get (t, 0));
      size_t n = json_array_size (t);
      if (kind == NULL || strcmp (kind, "NONE") == 0 || n == 0)
        return TRUE;
      if ((strcmp (kind, "CMD") != 0 && strcmp (kind, "CMD-SHELL") != 0) || n < 2 || n > 65
          || (strcmp (kind, "CMD-SHELL") == 0 && n != 2))
        return sysctr_throw (
            error, SYSCTR_ERROR_HOSTILE,
            "image config Healthcheck.Test: not [\"CMD\", ARG...], [\"CMD-SHELL\", COMMAND] or [\"NONE\"]");
      if (strcmp (kind, "CMD-SHELL") == 0)
        {
          json_array_append_new (test, json_string ("/bin/sh"));
          json_array_append_new (test, json_string ("-c"));
        }
      for (size_t i = 1; i < n; i++)
        {
          const char *a = json_string_value (json_array_get (t, i));
          if (a == NULL || !text_ok (a) || (i == 1 && *a == '\0'))
            return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                                 "image config Healthcheck.Test: argument %zu is not a printable string", i);
          json_array_append_new (test, json_string (a));
        }
    }
  else
    return TRUE;

  gint64 interval = 0, timeout = 0, start_period = 0;
  if (!duration_field (image, hc, "org.sysctr.health-interval", "Interval", 30000, 1000, &interval, error)
      || !duration_field (image, hc, "org.sysctr.health-timeout", "Timeout", 30000, 1000, &timeout, error)
      || !duration_field (image, hc, "org.sysctr.health-start-period", "StartPeriod", 0, 0, &start_period, error))
    return FALSE;
  gint64 retries = 3;
  const char *rl = image_label (image, "org.sysctr.health-retries");
  json_t *rv = json_object_get (hc, "Retries");
  if (rl)
    {
      char *end;
      retries = (gint64) g_ascii_strtoll (rl, &end, 10);
      if (*end || end == rl)
        retries = -1;
    }
  else if (json_is_integer (rv) && json_integer_value (rv) != 0)
    retries = json_integer_value (rv);
  if (retries < 1 || retries > 100)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "health check retries: not a number from 1 to 100");
  if (!shim)
    {
      *out_health = FALSE;
      return TRUE; /* runc and crun run no health check: the caller warns */
    }

  json_t *ann = json_object_get (config, "annotations");
  if (!json_is_object (ann))
    {
      ann = json_object ();
      json_object_set_new (config, "annotations", ann);
    }
  g_autofree char *test_text = json_dumps (test, JSON_COMPACT);
  json_object_set_new (ann, "org.sysctr.health.test", json_string (test_text));
  g_autofree char *i_s = g_strdup_printf ("%" G_GINT64_FORMAT, interval);
  g_autofree char *t_s = g_strdup_printf ("%" G_GINT64_FORMAT, timeout);
  g_autofree char *s_s = g_strdup_printf ("%" G_GINT64_FORMAT, start_period);
  g_autofree char *r_s = g_strdup_printf ("%" G_GINT64_FORMAT, retries);
  json_object_set_new (ann, "org.sysctr.health.interval", json_string (i_s));
  json_object_set_new (ann, "org.sysctr.health.timeout", json_string (t_s));
  json_object_set_new (ann, "org.sysctr.health.start-period", json_string (s_s));
  json_object_set_new (ann, "org.sysctr.health.retries", json_string (r_s));
  /* the shim reports and triggers the watchdog itself; SIGTERM so the
   * restart is a clean stop of the payload */
  g_string_append (service_lines, "NotifyAccess=main\nWatchdogSignal=SIGTERM\n");
  *out_health = TRUE;
  return TRUE;
}

/* one word of an Exec line, quoted for systemd: "..." with \ and "
 * escaped, % and $ doubled (no specifier, no variable) */
static void
append_exec_word (GString *s, const char *w)
{
  g_string_append_c (s, ' ');
  g_string_append_c (s, '"');
  for (const char *p = w; *p; p++)
    {
      if (*p == '\\' || *p == '"')
        g_string_append_c (s, '\\');
      else if (*p == '%' || *p == '$')
        g_string_append_c (s, *p);
      g_string_append_c (s, *p);
    }
  g_string_append_c (s, '"');
}

gboolean
sysctr_render_reload (const SysctrImage *image, const char *shim_path, const char *name, GString *service_lines,
                      GError **error)
{
  static const char *const signals[] = { "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGINT", "SIGQUIT", "SIGWINCH", NULL };
  const char *sig = image_label (image, "org.sysctr.reload-signal");
  const char *cmd = image_label (image, "org.sysctr.reload");
  if (sig && cmd)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                         "labels org.sysctr.reload and org.sysctr.reload-signal: one or the other");
  if (sig)
    {
      g_autofree char *full = g_str_has_prefix (sig, "SIG") ? g_strdup (sig) : g_strconcat ("SIG", sig, NULL);
      if (!g_strv_contains (signals, full))
        {
          g_autofree char *shown = g_strescape (sig, NULL);
          return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                               "label org.sysctr.reload-signal: \"%.40s\" is not one of SIGHUP SIGUSR1 SIGUSR2 SIGINT "
                               "SIGQUIT SIGWINCH (the signals the shim forwards)",
                               shown);
        }
      /* to the shim, the unit's main process, which forwards it */
      g_string_append_printf (service_lines, "ExecReload=/bin/kill -s %s $MAINPID\n", full + 3);
      return TRUE;
    }
  if (cmd == NULL)
    return TRUE;
  g_auto (GStrv) argv = NULL;
  if (!text_ok (cmd) || !g_shell_parse_argv (cmd, NULL, &argv, NULL) || g_strv_length (argv) > 64)
    {
      g_autofree char *shown = g_strescape (cmd, NULL);
      return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "label org.sysctr.reload: \"%.80s\" is not a command line",
                           shown);
    }
  if (shim_path == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID,
                         "label org.sysctr.reload: runs in the container through sysctr-shim, not under runc or crun");
  GString *line = g_string_new ("ExecReload=");
  g_string_append (line, shim_path);
  g_string_append_printf (line, " --exec=${MAINPID} --name=%s --", name);
  for (char **a = argv; *a; a++)
    append_exec_word (line, *a);
  g_string_append_c (line, '\n');
  g_string_append (service_lines, line->str);
  g_string_free (line, TRUE);
  return TRUE;
}

json_t *
sysctr_health_from_config (json_t *config)
{
  json_t *ann = json_object_get (config, "annotations");
  const char *test = sysctr_json_get_string (ann, "org.sysctr.health.test");
  if (test == NULL)
    return NULL;
  json_t *h = json_object ();
  json_object_set_new (h, "test", json_loads (test, 0, NULL));
  static const char *const keys[][2] = { { "interval", "interval_ms" },
                                         { "timeout", "timeout_ms" },
                                         { "start-period", "start_period_ms" },
                                         { "retries", "retries" } };
  for (gsize i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      g_autofree char *k = g_strconcat ("org.sysctr.health.", keys[i][0], NULL);
      const char *v = sysctr_json_get_string (ann, k);
      json_object_set_new (h, keys[i][1], json_integer (v ? g_ascii_strtoll (v, NULL, 10) : 0));
    }
  return h;
}
