/* privileges.c: classify what an image supplies into named privileges
 * (see privileges.h), and compare them with a grant.
 *
 * Unit files are read the way systemd reads them (sections, continued
 * lines, indentation, "Key = value"), so a line cannot hide from the
 * classification by its layout. Anything not known to be harmless asks for
 * something: an unknown directive is host-exec, an unknown tmpfiles.d type
 * outside the container's directories is host-files.
 */
#include "config.h"

#include "privileges.h"

#include "cap-names.h"
#include "render.h"

#include <string.h>

const char *const sysctr_privilege_names[SYSCTR_N_PRIVILEGES] = {
  "host-exec", "host-files", "host-mounts", "host-namespaces", "capabilities", "devices", "unconfined", "unit-deps",
};

json_t *
sysctr_asks_new (void)
{
  return json_object ();
}

static void
ask_add (json_t *asks, SysctrPrivilege p, const char *detail)
{
  const char *name = sysctr_privilege_names[p];
  json_t *list = json_object_get (asks, name);
  if (list == NULL)
    {
      list = json_array ();
      json_object_set_new (asks, name, list);
    }
  /* sorted, unique */
  size_t i;
  for (i = 0; i < json_array_size (list); i++)
    {
      int c = strcmp (json_string_value (json_array_get (list, i)), detail);
      if (c == 0)
        return;
      if (c > 0)
        break;
    }
  json_array_insert_new (list, i, json_string (detail));
}

void
sysctr_ask (json_t *asks, SysctrPrivilege p, const char *fmt, ...)
{
  va_list args;
  va_start (args, fmt);
  g_autofree char *detail = g_strdup_vprintf (fmt, args);
  va_end (args);
  /* details are shown to the admin: one printable line, not too long */
  g_autofree char *shown = sysctr_printable (detail);
  if (g_utf8_strlen (shown, -1) > 300)
    {
      g_autofree char *cut = g_utf8_substring (shown, 0, 300);
      g_free (shown);
      shown = g_strconcat (cut, "...", NULL);
    }
  ask_add (asks, p, shown);
}

/* ---- paths ----------------------------------------------------------------- */

static gboolean
path_within (const char *path, const char *dir)
{
  if (dir == NULL || *dir == '\0')
    return FALSE;
  if (strcmp (dir, "/") == 0)
    return path[0] == '/';
  gsize n = strlen (dir);
  return strncmp (path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* An absolute path with no "." or ".." components and no doubled slashes. */
static gboolean
path_clean (const char *path)
{
  if (path == NULL || path[0] != '/')
    return FALSE;
  g_autofree char *canon = g_canonicalize_filename (path, "/");
  return strcmp (canon, path) == 0
         || (g_str_has_suffix (path, "/") && strlen (path) == strlen (canon) + 1
             && strncmp (canon, path, strlen (canon)) == 0);
}

static gboolean
own_path (const SysctrOwn *own, const char *path)
{
  if (!path_clean (path))
    return FALSE;
  for (guint i = 0; i < G_N_ELEMENTS (own->own_dirs) && own->own_dirs[i]; i++)
    if (path_within (path, own->own_dirs[i]))
      return TRUE;
  return FALSE;
}

/* ---- units ----------------------------------------------------------------- */

static const char *const standard_targets[] = {
  "network.target",  "network-pre.target",  "network-online.target",  "sysinit.target",       "basic.target",
  "local-fs.target", "local-fs-pre.target", "remote-fs.target",       "remote-fs-pre.target", "time-sync.target",
  "time-set.target", "nss-lookup.target",   "nss-user-lookup.target", "multi-user.target",    "default.target",
  "sockets.target",  "timers.target",       "paths.target",           "shutdown.target",      NULL,
};

static gboolean
harmless_unit_name (const SysctrOwn *own, const char *unit)
{
  if (g_strv_contains (standard_targets, unit))
    return TRUE;
  g_autofree char *svc = g_strdup_printf ("%s.service", own->name);
  g_autofree char *sock = g_strdup_printf ("%s.socket", own->name);
  if (strcmp (unit, svc) == 0 || strcmp (unit, sock) == 0)
    return TRUE;
  return own->sysctr_units && g_hash_table_contains (own->sysctr_units, unit);
}

void
sysctr_classify_unit_dependency (json_t *asks, const SysctrOwn *own, const char *directive, const char *units)
{
  /* After= only orders this unit: it cannot delay, start or stop another */
  if (strcmp (directive, "After") == 0)
    return;
  g_auto (GStrv) items = g_strsplit_set (units, " \t", -1);
  for (char **it = items; *it; it++)
    if (**it && !harmless_unit_name (own, *it))
      sysctr_ask (asks, SYSCTR_PRIV_UNIT_DEPS, "%s=%s", directive, *it);
}

static gboolean
key_in (const char *key, const char *const *list)
{
  for (const char *const *k = list; *k; k++)
    {
      gsize n = strlen (*k);
      /* "Limit*" style prefixes */
      if ((*k)[n - 1] == '*' ? strncmp (key, *k, n - 1) == 0 : strcmp (key, *k) == 0)
        return TRUE;
    }
  return FALSE;
}

/* Directives that neither run anything on the host nor reach beyond the
 * unit (by section; "Foo*" is a prefix). */
static const char *const harmless_unit[] = {
  "Description",
  "Documentation",
  "After",
  "DefaultDependencies",
  "RequiresMountsFor",
  "Condition*",
  "Assert*",
  "StartLimitIntervalSec",
  "StartLimitBurst",
  "StopWhenUnneeded",
  "RefuseManualStart",
  "RefuseManualStop",
  "IgnoreOnIsolate",
  "CollectMode",
  "JobTimeoutSec",
  "JobRunningTimeoutSec",
  "SourcePath",
  NULL,
};
static const char *const unit_deps_unit[] = {
  "Wants",
  "Requires",
  "Requisite",
  "BindsTo",
  "PartOf",
  "Upholds",
  "Conflicts",
  "Before",
  "OnFailure",
  "OnSuccess",
  "PropagatesReloadTo",
  "ReloadPropagatedFrom",
  "PropagatesStopTo",
  "StopPropagatedFrom",
  NULL,
};
static const char *const harmless_service[] = {
  "Type",
  "NotifyAccess",
  "Restart",
  "RestartSec",
  "RestartPreventExitStatus",
  "RestartForceExitStatus",
  "RemainAfterExit",
  "GuessMainPID",
  "PIDFile",
  "Timeout*",
  "RuntimeMaxSec",
  "RuntimeRandomizedExtraSec",
  "WatchdogSec",
  "Kill*",
  "RestartKillSignal",
  "SendSIGHUP",
  "SendSIGKILL",
  "FinalKillSignal",
  "WatchdogSignal",
  "SuccessExitStatus",
  "Limit*",
  "CPUWeight",
  "StartupCPUWeight",
  "CPUShares",
  "StartupCPUShares",
  "CPUQuota",
  "CPUQuotaPeriodSec",
  "AllowedCPUs",
  "StartupAllowedCPUs",
  "AllowedMemoryNodes",
  "StartupAllowedMemoryNodes",
  "Memory*",
  "TasksMax",
  "IOWeight",
  "StartupIOWeight",
  "IODeviceWeight",
  "IOReadBandwidthMax",
  "IOWriteBandwidthMax",
  "IOReadIOPSMax",
  "IOWriteIOPSMax",
  "IODeviceLatencyTargetSec",
  "BlockIOWeight",
  "CPUAccounting",
  "TasksAccounting",
  "IOAccounting",
  "BlockIOAccounting",
  "IPAccounting",
  "OOMPolicy",
  "OOMScoreAdjust",
  "Nice",
  "CPUSchedulingPolicy",
  "CPUSchedulingPriority",
  "CPUSchedulingResetOnFork",
  "CPUAffinity",
  "NUMAPolicy",
  "NUMAMask",
  "IOSchedulingClass",
  "IOSchedulingPriority",
  "UMask",
  "SyslogIdentifier",
  "SyslogFacility",
  "SyslogLevel",
  "SyslogLevelPrefix",
  "LogLevelMax",
  "LogRateLimitIntervalSec",
  "LogRateLimitBurst",
  "WorkingDirectory",
  "RuntimeDirectoryMode",
  "StateDirectoryMode",
  "CacheDirectoryMode",
  "LogsDirectoryMode",
  "ConfigurationDirectoryMode",
  "RuntimeDirectoryPreserve",
  /* hardening of the host-side process: they only take away */
  "NoNewPrivileges",
  "PrivateTmp",
  "ProtectSystem",
  "ProtectHome",
  "ProtectKernelTunables",
  "ProtectKernelModules",
  "ProtectKernelLogs",
  "ProtectControlGroups",
  "ProtectClock",
  "ProtectHostname",
  "ProtectProc",
  "ProcSubset",
  "RestrictRealtime",
  "RestrictSUIDSGID",
  "LockPersonality",
  "MemoryDenyWriteExecute",
  "RestrictNamespaces",
  "SystemCallArchitectures",
  "RemoveIPC",
  "KeyringMode",
  NULL,
};
/* systemd creates, and at stop may remove, /run/X, /var/lib/X ...: only the
 * container's own name (or below it) */
static const char *const managed_dirs[] = {
  "RuntimeDirectory", "StateDirectory", "CacheDirectory", "LogsDirectory", "ConfigurationDirectory", NULL,
};
static const char *const harmless_socket[] = {
  "ListenStream",
  "ListenDatagram",
  "ListenSequentialPacket",
  "Backlog",
  "SocketMode",
  "DirectoryMode",
  "FileDescriptorName",
  "ReusePort",
  "NoDelay",
  "KeepAlive*",
  "FreeBind",
  "Transparent",
  "Broadcast",
  "PassCredentials",
  "PassSecurity",
  "PassPacketInfo",
  "ReceiveBuffer",
  "SendBuffer",
  "IPTOS",
  "IPTTL",
  "Mark",
  "BindIPv6Only",
  "BindToDevice",
  "MaxConnections",
  "MaxConnectionsPerSource",
  "RemoveOnStop",
  "TriggerLimit*",
  "Timestamping",
  "DeferAcceptSec",
  "Priority",
  "PipeSize",
  "FlushPending",
  "SocketUser",
  "SocketGroup",
  "SocketProtocol",
  NULL,
};
static const char *const stdio_values[]
    = { "inherit", "null", "journal", "kmsg", "journal+console", "kmsg+console", "tty", "socket", NULL };

static gboolean
own_command (const SysctrOwn *own, const char *value)
{
  /* "-", "@", "+", "!", ":" prefixes change how systemd runs the line, not
   * which command it is */
  while (*value && strchr ("-@+!:", *value))
    value++;
  if (*value == '\0')
    return TRUE; /* an empty assignment resets the list */
  const char *names[] = { "EXEC_START", "EXEC_STOP", "EXEC_STARTPRE", "EXEC_STOPPOST" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      const char *v = own->values ? g_hash_table_lookup (own->values, names[i]) : NULL;
      if (v && *v && strcmp (v, value) == 0)
        return TRUE;
    }
  return FALSE;
}

static void
classify_directive (json_t *asks, const SysctrOwn *own, const char *section, const char *key, const char *value)
{
  if (g_str_has_prefix (section, "X-"))
    return; /* systemd ignores these sections */
  if (strcmp (section, "Unit") == 0)
    {
      if (key_in (key, harmless_unit))
        return;
      if (key_in (key, unit_deps_unit))
        {
          sysctr_classify_unit_dependency (asks, own, key, value);
          return;
        }
    }
  else if (strcmp (section, "Install") == 0)
    {
      if (strcmp (key, "DefaultInstance") == 0)
        return;
      if (strcmp (key, "WantedBy") == 0 || strcmp (key, "RequiredBy") == 0 || strcmp (key, "UpheldBy") == 0
          || strcmp (key, "Also") == 0 || strcmp (key, "Alias") == 0)
        {
          sysctr_classify_unit_dependency (asks, own, key, value);
          return;
        }
    }
  else if (strcmp (section, "Service") == 0 || strcmp (section, "Socket") == 0)
    {
      gboolean socket = strcmp (section, "Socket") == 0;
      if (key_in (key, socket ? harmless_socket : harmless_service))
        return;
      if (g_str_has_prefix (key, "Exec") && !socket && own_command (own, value))
        return;
      if (!socket && key_in (key, managed_dirs))
        {
          g_auto (GStrv) items = g_strsplit_set (value, " \t", -1);
          for (char **it = items; *it; it++)
            if (**it && strcmp (*it, own->name) != 0
                && !(g_str_has_prefix (*it, own->name) && (*it)[strlen (own->name)] == '/' && !strstr (*it, "..")))
              sysctr_ask (asks, SYSCTR_PRIV_HOST_FILES, "%s=%s", key, *it);
          return;
        }
      if (!socket
          && (strcmp (key, "StandardOutput") == 0 || strcmp (key, "StandardError") == 0
              || strcmp (key, "StandardInput") == 0))
        {
          if (!g_strv_contains (stdio_values, value))
            sysctr_ask (asks, SYSCTR_PRIV_HOST_FILES, "%s=%s", key, value);
          return;
        }
      if (!socket && strcmp (key, "DevicePolicy") == 0)
        {
          if (strcmp (value, "closed") != 0 && strcmp (value, "strict") != 0)
            sysctr_ask (asks, SYSCTR_PRIV_DEVICES, "DevicePolicy=%s", value);
          return;
        }
      if (!socket && strcmp (key, "DeviceAllow") == 0)
        {
          sysctr_ask (asks, SYSCTR_PRIV_DEVICES, "DeviceAllow=%s", value);
          return;
        }
      if (socket && strcmp (key, "Accept") == 0 && (strcmp (value, "no") == 0 || strcmp (value, "false") == 0))
        return;
      if (socket && strcmp (key, "Service") == 0)
        {
          sysctr_classify_unit_dependency (asks, own, "Service", value);
          return;
        }
      if (socket
          && (strcmp (key, "ListenFIFO") == 0 || strcmp (key, "ListenSpecial") == 0 || strcmp (key, "Symlinks") == 0
              || strcmp (key, "ListenMessageQueue") == 0))
        {
          sysctr_ask (asks, SYSCTR_PRIV_HOST_FILES, "%s=%s", key, value);
          return;
        }
    }
  /* Exec*=, User=, Environment*=, anything not known to be harmless: it
   * runs on the host, or changes how the host runs the shim */
  sysctr_ask (asks, SYSCTR_PRIV_HOST_EXEC, "[%s] %s=%s", section, key, value);
}

void
sysctr_classify_unit (json_t *asks, const SysctrOwn *own, const char *text)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  g_autofree char *section = g_strdup ("");
  g_autoptr (GString) logical = g_string_new (NULL);
  for (char **l = lines; *l; l++)
    {
      g_string_append (logical, *l);
      /* a line ending in an unescaped backslash continues on the next */
      gsize bs = 0;
      for (gsize i = logical->len; i > 0 && logical->str[i - 1] == '\\'; i--)
        bs++;
      if (bs % 2 == 1 && l[1] != NULL)
        {
          logical->str[logical->len - 1] = ' ';
          continue;
        }
      g_autofree char *line = g_strstrip (g_strdup (logical->str));
      g_string_truncate (logical, 0);
      if (*line == '\0' || *line == '#' || *line == ';')
        continue;
      if (*line == '[')
        {
          char *end = strchr (line, ']');
          g_free (section);
          section = g_strndup (line + 1, end ? (gsize) (end - line - 1) : strlen (line + 1));
          continue;
        }
      char *eq = strchr (line, '=');
      if (eq == NULL)
        continue; /* systemd ignores it (with a warning) */
      *eq = '\0';
      g_strstrip (line);
      g_autofree char *value = g_strstrip (g_strdup (eq + 1));
      classify_directive (asks, own, section, line, value);
    }
}

/* ---- tmpfiles.d ------------------------------------------------------------ */

void
sysctr_classify_tmpfiles (json_t *asks, const SysctrOwn *own, const char *text)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l; l++)
    {
      g_autofree char *line = g_strstrip (g_strdup (*l));
      if (*line == '\0' || *line == '#')
        continue;
      g_auto (GStrv) f = g_strsplit_set (line, " \t", -1);
      /* fields, with the runs of whitespace between them dropped */
      const char *field[7] = { NULL };
      guint n = 0;
      for (char **p = f; *p && n < 7; p++)
        if (**p)
          field[n++] = *p;
      const char *type = field[0], *path = field[1], *mode = field[2], *arg = field[6];
      if (type == NULL || path == NULL)
        continue;
      char t = type[0];
      if (t == 'b' || t == 'c')
        {
          sysctr_ask (asks, SYSCTR_PRIV_DEVICES, "tmpfiles %s %s", type, path);
          continue;
        }
      /* setuid/setgid: a root-owned copy anyone on the host can run */
      if (mode && strcmp (mode, "-") != 0)
        {
          const char *m = mode[0] == '~' || mode[0] == ':' ? mode + 1 : mode;
          guint64 v = g_ascii_strtoull (m, NULL, 8);
          if (v & 06000)
            sysctr_ask (asks, SYSCTR_PRIV_HOST_FILES, "tmpfiles %s %s mode %s", type, path, mode);
        }
      if (!own_path (own, path))
        {
          sysctr_ask (asks, SYSCTR_PRIV_HOST_FILES, "tmpfiles %s %s", type, path);
          continue;
        }
      /* C copies from the host (default: /usr/share/factory/PATH) into a
       * directory the container can read */
      if (t == 'C')
        {
          g_autofree char *src
              = arg && strcmp (arg, "-") != 0 ? g_strdup (arg) : g_strdup_printf ("/usr/share/factory%s", path);
          if (!own_path (own, src) && !(path_clean (src) && path_within (src, own->slot_path)))
            sysctr_ask (asks, SYSCTR_PRIV_HOST_FILES, "tmpfiles %s %s from %s", type, path, src);
        }
    }
}

void
sysctr_classify_host_file (json_t *asks, const SysctrOwn *own, const char *path)
{
  if (!own_path (own, path))
    sysctr_ask (asks, SYSCTR_PRIV_HOST_FILES, "%s", path);
}

/* ---- config.json ----------------------------------------------------------- */

static gboolean
strv_has (json_t *array, const char *s)
{
  size_t i;
  json_t *v;
  json_array_foreach (array, i, v)
    if (g_strcmp0 (json_string_value (v), s) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
classify_mounts (json_t *asks, const SysctrOwn *own, json_t *config, GError **error)
{
  size_t i;
  json_t *m;
  json_array_foreach (json_object_get (config, "mounts"), i, m)
    {
      const char *type = sysctr_json_get_string (m, "type");
      const char *source = sysctr_json_get_string (m, "source");
      const char *dest = sysctr_json_get_string (m, "destination");
      json_t *opts = json_object_get (m, "options");
      gboolean bind = g_strcmp0 (type, "bind") == 0 || g_strcmp0 (type, "rbind") == 0 || strv_has (opts, "bind")
                      || strv_has (opts, "rbind");
      if (!bind)
        {
          /* a fresh filesystem: only "dev" lets device nodes work in it
           * (/dev itself is nodev whatever it says) */
          if (strv_has (opts, "dev") && g_strcmp0 (dest, "/dev") != 0)
            sysctr_ask (asks, SYSCTR_PRIV_DEVICES, "%s on %s with dev", type ? type : "mount", dest ? dest : "?");
          continue;
        }
      gboolean writable = TRUE;
      size_t k;
      json_t *o;
      json_array_foreach (opts, k, o)
        {
          const char *s = json_string_value (o);
          if (g_strcmp0 (s, "ro") == 0)
            writable = FALSE;
          else if (g_strcmp0 (s, "rw") == 0)
            writable = TRUE;
        }
      if (source == NULL || *source == '\0')
        continue; /* the shim refuses it */
      /* relative sources are relative to the bundle (the deployment) */
      g_autofree char *abs = g_canonicalize_filename (source, own->slot_path);
      if (writable && path_within (abs, SYSCTR_STATE_DIR))
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                             "config.json: mounts[%zu]: a writable bind of %s (inside %s: the image store and the "
                             "deployments) is never allowed, whatever is granted",
                             i, abs, SYSCTR_STATE_DIR);
      if (!writable && path_within (abs, own->slot_path))
        continue; /* its own deployment, read-only */
      if (own_path (own, abs))
        continue;
      if (path_within (abs, "/dev"))
        sysctr_ask (asks, SYSCTR_PRIV_DEVICES, "%s (bind%s)", abs, writable ? "" : ", ro");
      else
        sysctr_ask (asks, SYSCTR_PRIV_HOST_MOUNTS, "%s (%s)", abs, writable ? "rw" : "ro");
    }
  return TRUE;
}

static void
classify_namespaces (json_t *asks, json_t *linux_)
{
  const char *required[] = { "pid", "mount", "ipc", "uts" };
  json_t *ns = json_object_get (linux_, "namespaces");
  for (guint r = 0; r < G_N_ELEMENTS (required); r++)
    {
      gboolean own_ns = FALSE;
      size_t i;
      json_t *e;
      json_array_foreach (ns, i, e)
        if (g_strcmp0 (sysctr_json_get_string (e, "type"), required[r]) == 0)
          own_ns = TRUE;
      if (!own_ns)
        sysctr_ask (asks, SYSCTR_PRIV_HOST_NAMESPACES, "%s (the host's)", required[r]);
    }
  size_t i;
  json_t *e;
  json_array_foreach (ns, i, e)
    {
      const char *path = sysctr_json_get_string (e, "path");
      if (path && *path)
        sysctr_ask (asks, SYSCTR_PRIV_HOST_NAMESPACES, "%s (joins %s)", sysctr_json_get_string (e, "type"), path);
    }
}

static void
classify_caps (json_t *asks, json_t *process)
{
  const char *sets[] = { "bounding", "effective", "permitted", "inheritable", "ambient" };
  json_t *caps = json_object_get (process, "capabilities");
  for (guint s = 0; s < G_N_ELEMENTS (sets); s++)
    {
      size_t i;
      json_t *c;
      json_array_foreach (json_object_get (caps, sets[s]), i, c)
        {
          const char *name = json_string_value (c);
          if (name == NULL)
            continue;
          g_autofree char *full = g_ascii_strncasecmp (name, "CAP_", 4) == 0 ? g_ascii_strup (name, -1)
                                                                             : g_strdup_printf ("CAP_%s", name);
          for (char *p = full; *p; p++)
            *p = g_ascii_toupper (*p);
          if (!g_strv_contains (sysctr_default_caps, full))
            sysctr_ask (asks, SYSCTR_PRIV_CAPABILITIES, "%s", full);
        }
    }
}

static void
classify_confinement (json_t *asks, json_t *config)
{
  json_t *process = json_object_get (config, "process");
  json_t *linux_ = json_object_get (config, "linux");
  if (!json_is_true (json_object_get (process, "noNewPrivileges")))
    sysctr_ask (asks, SYSCTR_PRIV_UNCONFINED, "noNewPrivileges off (setuid programs gain privileges)");
  json_t *masked = json_object_get (linux_, "maskedPaths");
  for (const char *const *p = sysctr_default_masked; *p; p++)
    if (!strv_has (masked, *p))
      sysctr_ask (asks, SYSCTR_PRIV_UNCONFINED, "%s not masked", *p);
  json_t *ro = json_object_get (linux_, "readonlyPaths");
  for (const char *const *p = sysctr_default_readonly; *p; p++)
    if (!strv_has (ro, *p) && !strv_has (masked, *p))
      sysctr_ask (asks, SYSCTR_PRIV_UNCONFINED, "%s writable", *p);
  json_t *seccomp = json_object_get (linux_, "seccomp");
  const char *def = sysctr_json_get_string (seccomp, "defaultAction");
  if (!json_is_object (seccomp))
    sysctr_ask (asks, SYSCTR_PRIV_UNCONFINED, "no seccomp filter");
  else if (def == NULL || strcmp (def, "SCMP_ACT_ALLOW") == 0 || strcmp (def, "SCMP_ACT_LOG") == 0)
    sysctr_ask (asks, SYSCTR_PRIV_UNCONFINED, "a seccomp filter that allows unlisted syscalls");
  const char *aa = sysctr_json_get_string (process, "apparmorProfile");
  if (aa == NULL)
    aa = sysctr_json_get_string (linux_, "apparmorProfile");
  if (g_strcmp0 (aa, "unconfined") == 0)
    sysctr_ask (asks, SYSCTR_PRIV_UNCONFINED, "AppArmor unconfined");
}

static void
classify_devices (json_t *asks, json_t *linux_)
{
  size_t i;
  json_t *d;
  json_array_foreach (json_object_get (linux_, "devices"), i, d)
    sysctr_ask (asks, SYSCTR_PRIV_DEVICES, "%s (%s %lld:%lld)", sysctr_json_get_string (d, "path"),
                sysctr_json_get_string (d, "type"), (long long) json_integer_value (json_object_get (d, "major")),
                (long long) json_integer_value (json_object_get (d, "minor")));
}

gboolean
sysctr_classify_config (json_t *asks, const SysctrOwn *own, json_t *config, GError **error)
{
  json_t *linux_ = json_object_get (config, "linux");
  if (!classify_mounts (asks, own, config, error))
    return FALSE;
  classify_namespaces (asks, linux_);
  classify_caps (asks, json_object_get (config, "process"));
  classify_confinement (asks, config);
  classify_devices (asks, linux_);
  return TRUE;
}

/* ---- grants ---------------------------------------------------------------- */

gboolean
sysctr_privileges_parse (const char *csv, guint *mask, GError **error)
{
  g_auto (GStrv) items = g_strsplit (csv, ",", -1);
  for (char **it = items; *it; it++)
    {
      g_strstrip (*it);
      if (**it == '\0')
        continue;
      guint p;
      for (p = 0; p < SYSCTR_N_PRIVILEGES; p++)
        if (strcmp (*it, sysctr_privilege_names[p]) == 0)
          break;
      if (p == SYSCTR_N_PRIVILEGES)
        {
          g_autofree char *shown = sysctr_printable (*it);
          g_autofree char *all = g_strjoinv (", ", (char **) sysctr_privilege_names);
          return sysctr_throw (error, SYSCTR_ERROR_INVALID, "--allow: unknown privilege \"%s\" (known: %s)", shown,
                               all);
        }
      *mask |= 1u << p;
    }
  return TRUE;
}

static gboolean
covered (json_t *granted, const char *detail)
{
  if (strv_has (granted, detail))
    return TRUE;
  /* "P (ro)" is covered by "P (rw)" */
  if (g_str_has_suffix (detail, " (ro)"))
    {
      g_autofree char *path = g_strndup (detail, strlen (detail) - strlen (" (ro)"));
      g_autofree char *rw = g_strconcat (path, " (rw)", NULL);
      return strv_has (granted, rw);
    }
  return FALSE;
}

json_t *
sysctr_privileges_grant (json_t *asks, json_t *previous, guint mask, gboolean all)
{
  json_t *grant = json_is_object (previous) ? json_deep_copy (previous) : json_object ();
  for (guint p = 0; p < SYSCTR_N_PRIVILEGES; p++)
    {
      json_t *asked = json_object_get (asks, sysctr_privilege_names[p]);
      if (asked == NULL || !(all || (mask & (1u << p))))
        continue;
      size_t i;
      json_t *d;
      json_array_foreach (asked, i, d)
        ask_add (grant, p, json_string_value (d));
    }
  return grant;
}

json_t *
sysctr_privileges_missing (json_t *asks, json_t *grant)
{
  json_t *missing = json_object ();
  for (guint p = 0; p < SYSCTR_N_PRIVILEGES; p++)
    {
      json_t *granted = json_object_get (grant, sysctr_privilege_names[p]);
      size_t i;
      json_t *d;
      json_array_foreach (json_object_get (asks, sysctr_privilege_names[p]), i, d)
        if (!covered (granted, json_string_value (d)))
          ask_add (missing, p, json_string_value (d));
    }
  return missing;
}

char *
sysctr_privileges_describe (json_t *privs, const char *prefix)
{
  GString *s = g_string_new (NULL);
  for (guint p = 0; p < SYSCTR_N_PRIVILEGES; p++)
    {
      json_t *list = json_object_get (privs, sysctr_privilege_names[p]);
      if (json_array_size (list) == 0)
        continue;
      g_string_append_printf (s, "%s%s: ", prefix, sysctr_privilege_names[p]);
      size_t i;
      json_t *d;
      json_array_foreach (list, i, d)
        g_string_append_printf (s, "%s%s", i ? ", " : "", json_string_value (d));
      g_string_append_c (s, '\n');
    }
  return g_string_free (s, FALSE);
}

char *
sysctr_privileges_names (json_t *privs)
{
  GString *s = g_string_new (NULL);
  for (guint p = 0; p < SYSCTR_N_PRIVILEGES; p++)
    if (json_array_size (json_object_get (privs, sysctr_privilege_names[p])) > 0)
      g_string_append_printf (s, "%s%s", s->len ? "," : "", sysctr_privilege_names[p]);
  return g_string_free (s, FALSE);
}
