/* ociconfig.c: an image's config.json made into what the shim and runc run
 * (see ociconfig.h for what is normalised, translated, ignored, refused). */
#include "config.h"

#include "ociconfig.h"

#include "context.h"
#include "deploy.h"
#include "privileges.h"

#include <string.h>
#include <sys/stat.h>

gboolean
sysctr_lsm_enabled (const char *which)
{
  if (strcmp (which, "apparmor") == 0)
    {
      g_autofree char *y = NULL;
      return g_file_get_contents ("/sys/module/apparmor/parameters/enabled", &y, NULL, NULL) && y[0] == 'Y';
    }
  return g_file_test ("/sys/fs/selinux/enforce", G_FILE_TEST_EXISTS);
}

static gboolean
empty (json_t *v)
{
  return v == NULL || json_is_null (v) || (json_is_array (v) && json_array_size (v) == 0)
         || (json_is_object (v) && json_object_size (v) == 0);
}

/* ---- runtime-spec 1.0 from older layouts ------------------------------------ */

/* A flat list of capabilities (runtime-spec before 1.0: linux.capabilities,
 * or process.capabilities as a list) applied to every set, as runc 0.x did. */
static json_t *
caps_from_list (json_t *list)
{
  json_t *caps = json_object ();
  const char *sets[] = { "bounding", "effective", "permitted", "inheritable", "ambient" };
  for (guint i = 0; i < G_N_ELEMENTS (sets); i++)
    json_object_set_new (caps, sets[i], json_deep_copy (list));
  return caps;
}

static gboolean
normalize_layout (SysctrRendered *r, json_t *process, json_t *linux_, GError **error)
{
  json_t *v;
  if ((v = json_object_get (process, "capabilities")) && json_is_array (v))
    json_object_set_new (process, "capabilities", caps_from_list (v));
  if (json_is_object (linux_) && (v = json_object_get (linux_, "capabilities")))
    {
      if (!json_is_array (v))
        return sysctr_throw (error, SYSCTR_ERROR_INVALID, "config.json: linux.capabilities is not a list");
      if (!json_object_get (process, "capabilities"))
        json_object_set_new (process, "capabilities", caps_from_list (v));
      json_object_del (linux_, "capabilities");
    }
  if (json_is_object (linux_) && (v = json_object_get (linux_, "rlimits")))
    {
      if (!json_object_get (process, "rlimits"))
        json_object_set (process, "rlimits", v);
      json_object_del (linux_, "rlimits");
    }
  /* linux.apparmorProfile: where 7 of atomic's images put it (pre-1.0) */
  if (json_is_object (linux_) && (v = json_object_get (linux_, "apparmorProfile")))
    {
      if (!json_object_get (process, "apparmorProfile"))
        json_object_set (process, "apparmorProfile", v);
      json_object_del (linux_, "apparmorProfile");
    }
  if (json_is_object (linux_) && json_is_null (json_object_get (linux_, "devices")))
    json_object_del (linux_, "devices");
  /* labels: applied where that LSM is enabled, else (they only restrict)
   * dropped with a warning; "" means none */
  struct
  {
    json_t *obj;
    const char *key, *lsm, *name;
  } labels[] = {
    { process, "apparmorProfile", "apparmor", "AppArmor profile" },
    { process, "selinuxLabel", "selinux", "SELinux label" },
    { linux_, "mountLabel", "selinux", "SELinux mount label" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (labels); i++)
    {
      const char *label = sysctr_json_get_string (labels[i].obj, labels[i].key);
      if (label == NULL)
        continue;
      if (*label == '\0')
        json_object_del (labels[i].obj, labels[i].key);
      else if (!sysctr_lsm_enabled (labels[i].lsm))
        {
          sysctr_rendered_warn (r, "config.json: %s \"%s\" ignored: %s is not enabled on this host", labels[i].name,
                                label, strcmp (labels[i].lsm, "apparmor") == 0 ? "AppArmor" : "SELinux");
          json_object_del (labels[i].obj, labels[i].key);
        }
    }
  return TRUE;
}

/* ---- linux.resources -> unit directives -------------------------------------- */

static gboolean
get_int (json_t *obj, const char *key, json_int_t *out)
{
  json_t *v = json_object_get (obj, key);
  if (!json_is_integer (v))
    return FALSE;
  *out = json_integer_value (v);
  return TRUE;
}

/* Device cgroup rules: systemd names devices by path or by class
 * ("char-NAME" from /proc/devices), not by number. */
static char *
device_class (char type, json_int_t major)
{
  g_autofree char *devices = NULL;
  if (!g_file_get_contents ("/proc/devices", &devices, NULL, NULL))
    return NULL;
  gboolean in_section = FALSE;
  g_auto (GStrv) lines = g_strsplit (devices, "\n", -1);
  for (char **l = lines; *l; l++)
    {
      if (g_str_has_prefix (*l, "Character devices:"))
        in_section = type == 'c';
      else if (g_str_has_prefix (*l, "Block devices:"))
        in_section = type == 'b';
      else if (in_section)
        {
          char *end = NULL;
          json_int_t m = g_ascii_strtoll (*l, &end, 10);
          if (end != *l && m == major && end && *end == ' ')
            return g_strdup_printf ("%s-%s", type == 'c' ? "char" : "block", g_strstrip (end));
        }
    }
  return NULL;
}

static void
translate_devices (SysctrRendered *r, json_t *rules)
{
  size_t i;
  json_t *d;
  json_array_foreach (rules, i, d)
    {
      if (!json_is_true (json_object_get (d, "allow")))
        continue; /* a deny: the unit's DevicePolicy=closed already denies */
      const char *type = sysctr_json_get_string (d, "type");
      const char *access = sysctr_json_get_string (d, "access");
      json_int_t major = -1, minor = -1;
      gboolean has_major = get_int (d, "major", &major), has_minor = get_int (d, "minor", &minor);
      g_autofree char *acc = g_strdup (access && *access ? access : "rwm");
      if (strspn (acc, "rwm") != strlen (acc))
        {
          sysctr_rendered_warn (r, "config.json: linux.resources.devices[%zu]: access \"%s\" not understood; ignored",
                                i, acc);
          continue;
        }
      if (type == NULL || strcmp (type, "a") == 0 || !has_major)
        {
          /* any device: what a privileged container gets */
          g_string_append (r->service_lines, "DevicePolicy=auto\n");
          sysctr_ask (r->asks, SYSCTR_PRIV_DEVICES, "linux.resources.devices: allow %s %s", type ? type : "a", acc);
          continue;
        }
      /* one node by number: systemd allows nodes by path only, and a node
       * is in the container's (nodev) /dev only through linux.devices,
       * which is allowed by its path below */
      if (has_minor && minor >= 0)
        continue;
      g_autofree char *cls = device_class (type[0], major);
      if (cls == NULL)
        {
          sysctr_rendered_warn (
              r,
              "config.json: linux.resources.devices[%zu]: no %s device class with major %" JSON_INTEGER_FORMAT
              " on this host; ignored",
              i, type[0] == 'b' ? "block" : "character", major);
          continue;
        }
      g_string_append_printf (r->service_lines, "DeviceAllow=%s %s\n", cls, acc);
      sysctr_ask (r->asks, SYSCTR_PRIV_DEVICES, "DeviceAllow=%s %s", cls, acc);
    }
}

static void
translate_resources (SysctrRendered *r, json_t *res)
{
  GString *s = r->service_lines;
  json_t *mem = json_object_get (res, "memory");
  json_int_t limit = -1, swap = -1, reservation = -1;
  if (get_int (mem, "limit", &limit) && limit > 0)
    g_string_append_printf (s, "MemoryMax=%" JSON_INTEGER_FORMAT "\n", limit);
  if (get_int (mem, "reservation", &reservation) && reservation > 0)
    g_string_append_printf (s, "MemoryLow=%" JSON_INTEGER_FORMAT "\n", reservation);
  /* runtime-spec's swap is memory+swap; systemd's is swap alone */
  if (get_int (mem, "swap", &swap))
    {
      if (swap == -1)
        g_string_append (s, "MemorySwapMax=infinity\n");
      else if (limit > 0 && swap >= limit)
        g_string_append_printf (s, "MemorySwapMax=%" JSON_INTEGER_FORMAT "\n", swap - limit);
    }
  json_t *cpu = json_object_get (res, "cpu");
  json_int_t shares, quota, period = 100000;
  if (get_int (cpu, "shares", &shares) && shares >= 2)
    {
      /* cgroup v1 shares 2..262144 onto v2 weight 1..10000, as runc and
       * systemd map them */
      json_int_t w = 1 + ((MIN (shares, 262144) - 2) * 9999) / 262142;
      g_string_append_printf (s, "CPUWeight=%" JSON_INTEGER_FORMAT "\n", w);
    }
  (void) get_int (cpu, "period", &period);
  if (get_int (cpu, "quota", &quota) && quota > 0 && period > 0)
    {
      g_string_append_printf (s, "CPUQuota=%" JSON_INTEGER_FORMAT "%%\n", MAX (1, quota * 100 / period));
      g_string_append_printf (s, "CPUQuotaPeriodSec=%" JSON_INTEGER_FORMAT "us\n", period);
    }
  const char *cpus = sysctr_json_get_string (cpu, "cpus");
  if (cpus && *cpus && strspn (cpus, "0123456789,-") == strlen (cpus))
    g_string_append_printf (s, "AllowedCPUs=%s\n", cpus);
  const char *mems = sysctr_json_get_string (cpu, "mems");
  if (mems && *mems && strspn (mems, "0123456789,-") == strlen (mems))
    g_string_append_printf (s, "AllowedMemoryNodes=%s\n", mems);
  json_int_t pids;
  if (get_int (json_object_get (res, "pids"), "limit", &pids))
    {
      if (pids > 0)
        g_string_append_printf (s, "TasksMax=%" JSON_INTEGER_FORMAT "\n", pids);
      else
        g_string_append (s, "TasksMax=infinity\n");
    }
  json_int_t weight;
  if (get_int (json_object_get (res, "blockIO"), "weight", &weight) && weight >= 10)
    g_string_append_printf (s, "IOWeight=%" JSON_INTEGER_FORMAT "\n", 1 + (MIN (weight, 1000) - 10) * 9999 / 990);
  translate_devices (r, json_object_get (res, "devices"));
  const char *key;
  json_t *v;
  json_object_foreach (res, key, v)
    if (strcmp (key, "memory") != 0 && strcmp (key, "cpu") != 0 && strcmp (key, "pids") != 0
        && strcmp (key, "blockIO") != 0 && strcmp (key, "devices") != 0 && !empty (v))
      sysctr_rendered_warn (r, "config.json: linux.resources.%s has no unit directive here; ignored", key);
}

/* ---- mounts -------------------------------------------------------------------- */

/* Flag and propagation options: everything else on a bind is mount data,
 * which the kernel ignores for a bind (atomic's "mode=755"). */
static gboolean
bind_option (const char *o)
{
  static const char *const kept[] = {
    "bind",   "rbind",  "ro",       "rw",      "nosuid",      "suid",        "nodev",   "dev",
    "noexec", "exec",   "relatime", "noatime", "strictatime", "nodiratime",  "private", "rprivate",
    "slave",  "rslave", "shared",   "rshared", "unbindable",  "runbindable", NULL,
  };
  return g_strv_contains (kept, o);
}

static gboolean
normalize_binds (SysctrRendered *r, json_t *mounts)
{
  g_autoptr (GString) dropped = g_string_new (NULL);
  size_t i;
  json_t *m;
  json_array_foreach (mounts, i, m)
    {
      const char *type = sysctr_json_get_string (m, "type");
      json_t *opts = json_object_get (m, "options");
      gboolean bind = g_strcmp0 (type, "bind") == 0 || g_strcmp0 (type, "rbind") == 0;
      size_t k;
      json_t *o;
      json_array_foreach (opts, k, o)
        bind |= g_strcmp0 (json_string_value (o), "bind") == 0 || g_strcmp0 (json_string_value (o), "rbind") == 0;
      if (!bind || !json_is_array (opts))
        continue;
      for (k = json_array_size (opts); k-- > 0;)
        {
          const char *s = json_string_value (json_array_get (opts, k));
          if (s && !bind_option (s))
            {
              g_string_append_printf (dropped, "%s%s on %s", dropped->len ? ", " : "", s,
                                      sysctr_json_get_string (m, "destination"));
              json_array_remove (opts, k);
            }
        }
    }
  if (dropped->len)
    sysctr_rendered_warn (r, "config.json: options that mean nothing for a bind mount dropped (%s)", dropped->str);
  return TRUE;
}

static gboolean
path_under (const char *path, const char *dir)
{
  gsize n = strlen (dir);
  return strncmp (path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

char *
sysctr_bind_source_canonical (const char *source)
{
  g_autofree char *canon = g_canonicalize_filename (source, "/");
  if (path_under (canon, "/var/run"))
    return g_strconcat ("/run", canon + strlen ("/var/run"), NULL);
  if (path_under (canon, "/var/lock"))
    return g_strconcat ("/run/lock", canon + strlen ("/var/lock"), NULL);
  return g_steal_pointer (&canon);
}

/* host files every system has, that images bind (resolv.conf...): files,
 * never directories, and in a tree being built the OS's business */
static const char *const system_files[]
    = { "/etc/resolv.conf", "/etc/hosts", "/etc/hostname", "/etc/localtime", "/etc/machine-id", NULL };

static gboolean
is_system_file (const char *canonical)
{
  return g_strv_contains (system_files, canonical);
}

gboolean
sysctr_bind_source_made_at_boot (const char *canonical)
{
  return path_under (canonical, "/dev") || path_under (canonical, "/sys") || path_under (canonical, "/proc")
         || strcmp (canonical, "/run") == 0 || is_system_file (canonical);
}

/* Bind sources this host lacks: under /dev, /sys, /proc a device or a
 * kernel interface that is not there, refused; elsewhere made as atomic
 * made them (a tmpfiles.d line, also at every boot for /run). A previous
 * deployment's are kept, so uninstall knows them. */
static gboolean
missing_bind_sources (const SysctrRenderInput *in, SysctrRendered *r, json_t *mounts, GError **error)
{
  size_t i;
  json_t *m;
  json_array_foreach (mounts, i, m)
    {
      const char *type = sysctr_json_get_string (m, "type");
      const char *src = sysctr_json_get_string (m, "source");
      const char *dest = sysctr_json_get_string (m, "destination");
      gboolean bind = g_strcmp0 (type, "bind") == 0 || g_strcmp0 (type, "rbind") == 0;
      size_t k;
      json_t *o;
      json_array_foreach (json_object_get (m, "options"), k, o)
        bind |= g_strcmp0 (json_string_value (o), "bind") == 0 || g_strcmp0 (json_string_value (o), "rbind") == 0;
      if (!bind || src == NULL || src[0] != '/' || in->root_dfd < 0)
        continue;
      g_autofree char *canon = sysctr_bind_source_canonical (src);
      if (path_under (canon, SYSCTR_STATE_DIR))
        continue; /* the privileges check refuses or allows it */
      sysctr_autofd int fd = -1;
      g_autoptr (GError) local_error = NULL;
      gboolean was_created = FALSE;
      size_t p;
      json_t *prev;
      json_array_foreach (in->previous_created, p, prev)
        was_created |= g_strcmp0 (json_string_value (prev), canon) == 0;
      if (!was_created && sysctr_open_in_root (in->root_dfd, canon, FALSE, FALSE, &fd, &local_error))
        continue;
      if (!was_created && !g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      gboolean kernel = path_under (canon, "/dev") || path_under (canon, "/sys") || path_under (canon, "/proc");
      /* a tree being built (--root) has no /dev, /sys, /proc or /run yet:
       * they come at boot; nothing to make, nothing to check */
      if (sysctr_bind_source_made_at_boot (canon) && !in->live)
        continue;
      if (kernel)
        return sysctr_throw (error, SYSCTR_ERROR_INVALID,
                             "config.json: bind source %s (for %s) does not exist on this host: a device or kernel "
                             "interface that cannot be made; refused",
                             canon, dest ? dest : "?");
      /* a file where the image has a file, else a directory */
      struct stat st;
      sysctr_autofd int dfd = -1;
      gboolean file = is_system_file (canon)
                      || (dest && sysctr_open_in_root (in->rootfs_dfd, dest, FALSE, FALSE, &dfd, NULL)
                          && fstat (dfd, &st) == 0 && !S_ISDIR (st.st_mode));
      g_string_append_printf (r->tmpfiles_lines, "%c %s %s 0 0 - -\n", file ? 'f' : 'd', canon, file ? "0644" : "0755");
      json_array_append_new (r->created, json_string (canon));
    }
  return TRUE;
}

/* ---- the whole config ----------------------------------------------------------- */

gboolean
sysctr_config_normalize (const SysctrRenderInput *in, SysctrRendered *r, json_t *config, GError **error)
{
  if (!json_is_object (config))
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "config.json is not a JSON object");
  /* hooks run commands on the host from inside the runtime: never. An
   * empty object (11 of atomic's 18 images write "hooks": {}) asks for
   * nothing. */
  json_t *hooks = json_object_get (config, "hooks");
  if (hooks)
    {
      const char *key;
      json_t *v;
      if (!json_is_object (hooks) && !json_is_null (hooks))
        return sysctr_throw (error, SYSCTR_ERROR_INVALID, "config.json: hooks is not an object");
      json_object_foreach (hooks, key, v)
        if (!empty (v))
          return sysctr_throw (error, SYSCTR_ERROR_INVALID,
                               "config.json: hooks.%s: hooks run commands on the host from the runtime, which sysctr "
                               "does not do; refused",
                               key);
      json_object_del (config, "hooks");
    }
  if (json_object_del (config, "platform") == 0)
    sysctr_rendered_warn (r, "config.json: \"platform\" is ignored");
  json_t *root = json_object_get (config, "root");
  if (!json_is_object (root))
    {
      root = json_object ();
      json_object_set_new (config, "root", root);
    }
  const char *root_path = sysctr_json_get_string (root, "path");
  if (root_path && strcmp (root_path, "rootfs") != 0)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "config.json: root.path must be \"rootfs\", not \"%s\"",
                         root_path);
  json_object_set_new (root, "path", json_string ("rootfs"));
  json_t *rdonly = json_object_get (root, "readonly");
  if (rdonly && !json_is_true (rdonly))
    sysctr_rendered_warn (r, "config.json: root.readonly=false overridden: a deployment's rootfs is always read-only");
  json_object_set_new (root, "readonly", json_true ());

  json_t *process = json_object_get (config, "process");
  if (!json_is_object (process))
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "config.json has no process");
  if (json_is_true (json_object_get (process, "terminal")))
    {
      sysctr_rendered_warn (r, "config.json: process.terminal=true ignored: a system service has no terminal (its "
                               "output goes to the journal)");
      json_object_set_new (process, "terminal", json_false ());
    }
  json_t *linux_ = json_object_get (config, "linux");
  if (!normalize_layout (r, process, linux_, error))
    return FALSE;

  if (json_is_object (linux_))
    {
      json_t *res = json_object_get (linux_, "resources");
      if (res)
        {
          /* Resource control belongs to the unit: the container stays in
           * the unit's cgroup, where systemd enforces these. */
          if (json_is_object (res))
            translate_resources (r, res);
          json_object_del (linux_, "resources");
        }
      size_t i;
      json_t *d;
      json_array_foreach (json_object_get (linux_, "devices"), i, d)
        {
          const char *path = sysctr_json_get_string (d, "path");
          if (path && path_under (path, "/dev")
              && strspn (path, "/abcdefghijklmnopqrstuvwxyz0123456789_.-") == strlen (path))
            g_string_append_printf (r->service_lines, "DeviceAllow=%s rwm\n", path);
        }
      if (!sysctr_runtime_is_shim (r->runtime_path, in->shim_path))
        {
          g_autofree char *cg = g_strdup_printf ("/system.slice/%s.service", in->name);
          json_object_set_new (linux_, "cgroupsPath", json_string (cg));
        }
    }

  json_t *mounts = json_object_get (config, "mounts");
  if (!json_is_array (mounts))
    {
      mounts = json_array ();
      json_object_set_new (config, "mounts", mounts);
    }
  gboolean have_run = FALSE;
  size_t i;
  json_t *m;
  json_array_foreach (mounts, i, m)
    {
      const char *dest = sysctr_json_get_string (m, "destination");
      if (dest == NULL || dest[0] != '/' || strstr (dest, "/../") || g_str_has_suffix (dest, "/.."))
        return sysctr_throw (error, SYSCTR_ERROR_INVALID, "config.json: mount %zu has no absolute destination", i);
      if (strcmp (dest, "/run") == 0)
        have_run = TRUE;
    }
  if (!normalize_binds (r, mounts) || !missing_bind_sources (in, r, mounts, error))
    return FALSE;
  /* A private /run for the notify relay and runtime files, unless the
   * template mounts one: before any mount below /run. */
  if (!have_run)
    {
      size_t at = json_array_size (mounts);
      json_array_foreach (mounts, i, m)
        if (g_str_has_prefix (sysctr_json_get_string (m, "destination"), "/run/"))
          {
            at = i;
            break;
          }
      json_array_insert_new (mounts, at, sysctr_render_mount ("/run", "tmpfs", "tmpfs", "nosuid,nodev,mode=755"));
    }
  return TRUE;
}

/* Whether the container's own lines make @path a regular file (a hostfs
 * file, or a tmpfiles.d "f" line) rather than a directory. */
static gboolean
made_as_file (SysctrRendered *r, const char *path)
{
  for (guint i = 0; i < r->files->len; i++)
    if (strcmp (((SysctrHostFile *) r->files->pdata[i])->path, path) == 0)
      return TRUE;
  g_autofree char *needle = g_strdup_printf ("\nf %s ", path);
  g_autofree char *lines = g_strconcat ("\n", r->tmpfiles_lines->str, NULL);
  return strstr (lines, needle) != NULL;
}

gboolean
sysctr_config_make_mountpoints (const SysctrRenderInput *in, SysctrRendered *r, json_t *config, GError **error)
{
  json_t *mounts = json_object_get (config, "mounts");
  size_t i;
  json_t *m;
  json_array_foreach (mounts, i, m)
    {
      const char *dest = sysctr_json_get_string (m, "destination");
      const char *type = sysctr_json_get_string (m, "type");
      const char *source = sysctr_json_get_string (m, "source");
      gboolean is_file = FALSE;
      if (type && strcmp (type, "bind") == 0 && source && source[0] == '/' && in->root_dfd >= 0)
        {
          /* the source as the tree sees it (inside --root) */
          struct stat st;
          sysctr_autofd int sfd = -1;
          if (sysctr_open_in_root (in->root_dfd, source, FALSE, FALSE, &sfd, NULL))
            is_file = fstat (sfd, &st) == 0 && !S_ISDIR (st.st_mode);
          else
            is_file = made_as_file (r, source); /* written after the commit point */
        }
      sysctr_autofd int fd = -1;
      if (!sysctr_open_in_root (in->rootfs_dfd, dest, !is_file, is_file, &fd, error))
        {
          sysctr_prefix_error (error, "mount point %s", dest);
          return FALSE;
        }
    }
  return TRUE;
}
