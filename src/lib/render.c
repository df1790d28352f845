#include "config.h"

#include "render.h"
#include "health.h"

#include "cap-names.h"

#include "context.h"
#include "deploy.h"
#include "ociconfig.h"
#include "privileges.h"

#include <dirent.h>
#include "template.h"

#include <string.h>
#include <sys/stat.h>

#define MAX_TEMPLATE_SIZE (1024 * 1024)

static const char *forced_names[] = {
  "DESTDIR",       "NAME",     "EXEC_START", "EXEC_STOP",  "EXEC_STARTPRE",
  "EXEC_STOPPOST", "HOST_UID", "HOST_GID",   "IMAGE_NAME", "IMAGE_ID",
};

/* What a container gets when its image says nothing: podman's default set
 * (no CAP_MKNOD, CAP_NET_RAW, CAP_AUDIT_WRITE). */
const char *const sysctr_default_caps[] = {
  "CAP_CHOWN",   "CAP_DAC_OVERRIDE", "CAP_FOWNER",  "CAP_FSETID", "CAP_KILL",       "CAP_NET_BIND_SERVICE",
  "CAP_SETFCAP", "CAP_SETGID",       "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT", NULL,
};

/* masked and read-only paths of a container granted nothing */
const char *const sysctr_default_masked[] = {
  "/proc/acpi",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/fs/selinux",
  "/sys/dev/block",
  "/sys/devices/virtual/powercap",
  NULL,
};
const char *const sysctr_default_readonly[] = {
  "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};

void
sysctr_rendered_free (SysctrRendered *r)
{
  if (r == NULL)
    return;
  g_clear_pointer (&r->values, g_hash_table_unref);
  if (r->config)
    json_decref (r->config);
  g_clear_pointer (&r->files, g_ptr_array_unref);
  g_clear_pointer (&r->units, g_ptr_array_unref);
  g_clear_pointer (&r->warnings, g_ptr_array_unref);
  if (r->asks)
    json_decref (r->asks);
  if (r->service_lines)
    g_string_free (r->service_lines, TRUE);
  if (r->tmpfiles_lines)
    g_string_free (r->tmpfiles_lines, TRUE);
  if (r->created)
    json_decref (r->created);
  g_free (r->enable_unit);
  g_free (r->runtime_path);
  g_free (r->state_path);
  g_free (r);
}

static void
host_file_free (SysctrHostFile *f)
{
  g_free (f->path);
  if (f->data)
    g_bytes_unref (f->data);
  g_free (f->source);
  g_free (f);
}

void
sysctr_rendered_warn (SysctrRendered *r, const char *fmt, ...)
{
  va_list args;
  va_start (args, fmt);
  char *msg = g_strdup_vprintf (fmt, args);
  va_end (args);
  g_ptr_array_add (r->warnings, msg);
}

gboolean
sysctr_parse_set (GHashTable *table, const char *arg, GError **error)
{
  const char *eq = strchr (arg, '=');
  if (eq == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "--set expects KEY=VALUE, not \"%s\"", arg);
  g_autofree char *key = g_strndup (arg, eq - arg);
  if (!sysctr_template_name_valid (key))
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "--set: \"%s\" is not a valid variable name", key);
  for (guint i = 0; i < G_N_ELEMENTS (forced_names); i++)
    if (strcmp (key, forced_names[i]) == 0)
      return sysctr_throw (error, SYSCTR_ERROR_INVALID, "--set: %s is set by sysctr and cannot be overridden", key);
  if (!g_utf8_validate (eq + 1, -1, NULL))
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "--set: value of %s is not valid UTF-8", key);
  g_hash_table_replace (table, g_steal_pointer (&key), g_strdup (eq + 1));
  return TRUE;
}

char *
sysctr_marker_line (const char *name)
{
  return g_strdup_printf ("%s%s; remove with \"sysctr uninstall %s\"\n", SYSCTR_MARKER_PREFIX, name, name);
}

char *
sysctr_marker_owner (const char *data, gsize len)
{
  gsize plen = strlen (SYSCTR_MARKER_PREFIX);
  if (len < plen || memcmp (data, SYSCTR_MARKER_PREFIX, plen) != 0)
    return NULL;
  const char *p = data + plen;
  const char *end = data + len;
  const char *q = p;
  while (q < end && (g_ascii_isalnum (*q) || *q == '_' || *q == '-'))
    q++;
  if (q == p || q >= end || *q != ';')
    return NULL;
  return g_strndup (p, q - p);
}

char *
sysctr_runtime_resolve (const char *runtime, const char *shim_path, GError **error)
{
  if (runtime == NULL || strcmp (runtime, "sysctr-shim") == 0 || strcmp (runtime, "shim") == 0)
    return g_strdup (shim_path);
  if (strchr (runtime, '/') == NULL)
    {
      char *p = g_find_program_in_path (runtime);
      if (p == NULL)
        sysctr_throw (error, SYSCTR_ERROR_INVALID, "--runtime=%s: not found in PATH", runtime);
      return p;
    }
  if (!g_path_is_absolute (runtime))
    {
      sysctr_throw (error, SYSCTR_ERROR_INVALID, "--runtime needs an absolute path, not \"%s\"", runtime);
      return NULL;
    }
  return g_strdup (runtime);
}

gboolean
sysctr_runtime_is_shim (const char *path, const char *shim_path)
{
  g_autofree char *base = g_path_get_basename (path);
  return g_strcmp0 (path, shim_path) == 0 || strcmp (base, "sysctr-shim") == 0;
}

/* Reads a file of the image's /exports; *out is NULL when it is absent. */
static gboolean
read_export (int rootfs_dfd, const char *rel, char **out, gsize *out_len, GError **error)
{
  *out = NULL;
  sysctr_autofd int fd = -1;
  if (!sysctr_open_in_root_optional (rootfs_dfd, rel, &fd, error))
    return FALSE;
  if (fd < 0)
    return TRUE;
  sysctr_autofd int file = sysctr_reopen_fd (fd, O_NONBLOCK);
  if (file < 0)
    return sysctr_throw_errno (error, "opening %s", rel);
  return sysctr_read_fd (file, MAX_TEMPLATE_SIZE, rel, out, out_len, error);
}

static json_t *
labels_of (const SysctrImage *image)
{
  json_t *l = json_object_get (json_object_get (image->config, "config"), "Labels");
  return json_is_object (l) ? l : NULL;
}

static const char *
label (const SysctrImage *image, const char *key)
{
  return sysctr_json_get_string (labels_of (image), key);
}

static json_t *
str_array (const char **items, gsize n)
{
  json_t *a = json_array ();
  for (gsize i = 0; i < n; i++)
    json_array_append_new (a, json_string (items[i]));
  return a;
}

static char *
caps_list_value (void)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < G_N_ELEMENTS (sysctr_cap_names); i++)
    g_string_append_printf (s, "%s\"%s\"", i ? ", " : "", sysctr_cap_names[i]);
  return g_string_free (s, FALSE);
}

static gboolean
build_values (const SysctrRenderInput *in, json_t *manifest, SysctrRendered *r, GError **error)
{
  GHashTable *v = r->values;
  /* image defaults: /exports/manifest.json, then org.sysctr.default.* labels */
  json_t *defaults = json_object_get (manifest, "defaultValues");
  const char *key;
  json_t *val;
  json_object_foreach (defaults, key, val)
    {
      if (!sysctr_template_name_valid (key))
        {
          g_autofree char *shown = g_strescape (key, NULL);
          return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                               "manifest.json: defaultValues has an invalid name \"%.64s\"", shown);
        }
      if (json_is_string (val))
        g_hash_table_replace (v, g_strdup (key), g_strdup (json_string_value (val)));
      else if (json_is_integer (val) || json_is_real (val) || json_is_boolean (val))
        g_hash_table_replace (v, g_strdup (key), sysctr_json_dump (val, FALSE));
      else
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "manifest.json: default value of %s is not a string", key);
    }
  json_t *labels = labels_of (in->image);
  json_object_foreach (labels, key, val)
    {
      if (!g_str_has_prefix (key, "org.sysctr.default.") || !json_is_string (val))
        continue;
      const char *name = key + strlen ("org.sysctr.default.");
      if (!sysctr_template_name_valid (name))
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "label %s: invalid variable name", key);
      g_hash_table_replace (v, g_strdup (name), g_strdup (json_string_value (val)));
    }

  /* OS defaults */
  g_hash_table_replace (v, g_strdup ("RUN_DIRECTORY"), g_strdup ("/run"));
  g_hash_table_replace (v, g_strdup ("STATE_DIRECTORY"), g_strdup ("/var/lib"));
  g_hash_table_replace (v, g_strdup ("CONF_DIRECTORY"), g_strdup ("/etc"));
  const char *uuid = in->previous ? g_hash_table_lookup (in->previous, "UUID") : NULL;
  g_hash_table_replace (v, g_strdup ("UUID"), uuid ? g_strdup (uuid) : g_uuid_string_random ());
  g_hash_table_replace (v, g_strdup ("PIDFILE"), g_strdup_printf ("/run/container-%s.pid", in->name));
  g_hash_table_replace (v, g_strdup ("ALL_PROCESS_CAPABILITIES"), caps_list_value ());
  g_hash_table_replace (v, g_strdup ("RUNTIME"), g_strdup (r->runtime_path));

  /* --set (previous --sets are passed in by update) */
  if (in->set)
    {
      GHashTableIter it;
      gpointer k, sv;
      g_hash_table_iter_init (&it, in->set);
      while (g_hash_table_iter_next (&it, &k, &sv))
        g_hash_table_replace (v, g_strdup (k), g_strdup (sv));
    }

  /* forced */
  g_hash_table_replace (v, g_strdup ("DESTDIR"), g_strdup (in->slot_path));
  g_hash_table_replace (v, g_strdup ("NAME"), g_strdup (in->name));
  g_hash_table_replace (v, g_strdup ("HOST_UID"), g_strdup ("0"));
  g_hash_table_replace (v, g_strdup ("HOST_GID"), g_strdup ("0"));
  g_hash_table_replace (v, g_strdup ("IMAGE_NAME"), g_strdup (in->image->reference));
  g_hash_table_replace (v, g_strdup ("IMAGE_ID"), g_strdup (in->image->manifest_digest));
  if (sysctr_runtime_is_shim (r->runtime_path, in->shim_path))
    {
      g_hash_table_replace (v, g_strdup ("EXEC_START"),
                            g_strdup_printf ("%s --bundle=%s --name=%s", r->runtime_path, in->slot_path, in->name));
      g_hash_table_replace (v, g_strdup ("EXEC_STOP"), g_strdup (""));
    }
  else
    {
      /* runc/crun: no cgroup of their own (the unit's is used: see
       * linux.cgroupsPath), state under /run so a reboot forgets it. */
      g_hash_table_replace (v, g_strdup ("EXEC_START"),
                            g_strdup_printf ("%s --root=/run/sysctr/runtime run --no-new-keyring --bundle=%s sysctr-%s",
                                             r->runtime_path, in->slot_path, in->name));
      g_hash_table_replace (
          v, g_strdup ("EXEC_STOP"),
          g_strdup_printf ("%s --root=/run/sysctr/runtime kill sysctr-%s TERM", r->runtime_path, in->name));
    }
  g_hash_table_replace (v, g_strdup ("EXEC_STARTPRE"), g_strdup (""));
  g_hash_table_replace (v, g_strdup ("EXEC_STOPPOST"), g_strdup (""));
  return TRUE;
}

json_t *
sysctr_render_mount (const char *dest, const char *type, const char *source, const char *opts_csv)
{
  json_t *m = json_pack ("{s:s, s:s, s:s}", "destination", dest, "type", type, "source", source);
  if (opts_csv)
    {
      g_auto (GStrv) opts = g_strsplit (opts_csv, ",", -1);
      json_object_set_new (m, "options", str_array ((const char **) opts, g_strv_length (opts)));
    }
  return m;
}

/* The image's /etc/passwd or /etc/group as lines of fields; NULL when the
 * image has none. */
static GPtrArray *
read_db (int rootfs_dfd, const char *file, GError **error)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  if (!read_export (rootfs_dfd, file, &data, &len, error) || data == NULL)
    return NULL;
  GPtrArray *rows = g_ptr_array_new_with_free_func ((GDestroyNotify) g_strfreev);
  g_auto (GStrv) lines = g_strsplit (data, "\n", -1);
  for (char **l = lines; *l; l++)
    {
      char **f = g_strsplit (*l, ":", -1);
      if (g_strv_length (f) >= 4)
        g_ptr_array_add (rows, f);
      else
        g_strfreev (f);
    }
  return rows;
}

static gboolean
parse_id (const char *s, guint32 *out)
{
  char *end = NULL;
  guint64 n = g_ascii_strtoull (s, &end, 10);
  if (*s == '\0' || *end != '\0' || n >= G_MAXUINT32)
    return FALSE;
  *out = (guint32) n;
  return TRUE;
}

/* User "uid[:gid]" or "name[:group]", as docker, podman and runc read it:
 * names and the primary group of a numeric uid come from the image's own
 * /etc/passwd, supplementary groups from its /etc/group (never the
 * host's). A numeric uid the image does not list runs with gid 0. */
static gboolean
parse_user (int rootfs_dfd, const char *user, guint32 *uid, guint32 *gid, GArray *groups, GError **error)
{
  *uid = *gid = 0;
  if (user == NULL || *user == '\0')
    return TRUE;
  g_auto (GStrv) parts = g_strsplit (user, ":", 2);
  g_autoptr (GError) local_error = NULL;
  g_autoptr (GPtrArray) passwd = read_db (rootfs_dfd, "/etc/passwd", &local_error);
  if (local_error)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  const char *name = NULL;
  gboolean numeric = parse_id (parts[0], uid);
  for (guint i = 0; passwd && i < passwd->len; i++)
    {
      char **f = passwd->pdata[i];
      guint32 id;
      if (numeric ? (parse_id (f[2], &id) && id == *uid) : strcmp (f[0], parts[0]) == 0)
        {
          name = f[0];
          (void) parse_id (f[2], uid);
          (void) parse_id (f[3], gid);
          break;
        }
    }
  if (!numeric && name == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "image user \"%s\" is not in the image's /etc/passwd", parts[0]);
  g_autoptr (GPtrArray) group = read_db (rootfs_dfd, "/etc/group", &local_error);
  if (local_error)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  if (parts[1])
    {
      gboolean found = parse_id (parts[1], gid);
      for (guint i = 0; !found && group && i < group->len; i++)
        {
          char **f = group->pdata[i];
          if (strcmp (f[0], parts[1]) == 0)
            found = parse_id (f[2], gid);
        }
      if (!found)
        return sysctr_throw (error, SYSCTR_ERROR_INVALID, "image group \"%s\" is not in the image's /etc/group",
                             parts[1]);
      return TRUE; /* a group given: no supplementary groups, as docker */
    }
  for (guint i = 0; name && group && i < group->len; i++)
    {
      char **f = group->pdata[i];
      g_auto (GStrv) members = g_strsplit (f[3], ",", -1);
      guint32 g;
      if (g_strv_contains ((const char *const *) members, name) && parse_id (f[2], &g) && g != *gid)
        g_array_append_val (groups, g);
    }
  return TRUE;
}

/* A path sysctr itself writes into unit and tmpfiles.d lines: absolute,
 * clean, and made of characters neither format treats specially. */
static gboolean
line_path_valid (const char *path)
{
  if (path == NULL || path[0] != '/' || strlen (path) > 1024)
    return FALSE;
  for (const unsigned char *p = (const unsigned char *) path; *p; p++)
    if (*p <= 0x20 || *p >= 0x7f || strchr ("\"'\\%$;", *p))
      return FALSE;
  g_auto (GStrv) parts = g_strsplit (path + 1, "/", -1);
  for (char **c = parts; *c; c++)
    if (**c == '\0' || strcmp (*c, ".") == 0 || strcmp (*c, "..") == 0)
      return FALSE;
  return TRUE;
}

/* The native path: a config.json from the image config alone. */
static json_t *
derive_config (const SysctrRenderInput *in, SysctrRendered *r, GError **error)
{
  json_t *ic = json_object_get (in->image->config, "config");
  json_t *args = json_array ();
  json_t *ep = json_object_get (ic, "Entrypoint");
  json_t *cmd = json_object_get (ic, "Cmd");
  size_t i;
  json_t *a;
  json_array_foreach (ep, i, a)
    if (json_is_string (a))
      json_array_append (args, a);
  json_array_foreach (cmd, i, a)
    if (json_is_string (a))
      json_array_append (args, a);
  g_autoptr (json_t) args_owned = args;
  (void) args_owned;
  if (json_array_size (args) == 0)
    {
      /* an atomic image whose unit runs something else (azure's runs the
       * agent on the host) has no process: atomic gave it "run.sh" */
      g_autofree char *unit = NULL;
      gsize unit_len = 0;
      if (!read_export (in->rootfs_dfd, "/exports/service.template", &unit, &unit_len, error))
        return NULL;
      if (unit == NULL || strstr (unit, "EXEC_START}") || strstr (unit, "$EXEC_START"))
        {
          sysctr_throw (error, SYSCTR_ERROR_INVALID,
                        "the image has no Entrypoint or Cmd, and no /exports/config.json.template");
          return NULL;
        }
      sysctr_rendered_warn (r, "the image has no Entrypoint or Cmd and its unit does not run the container "
                               "($EXEC_START unused): config.json gets atomic's default process, \"run.sh\"");
      json_array_append_new (args, json_string ("run.sh"));
    }
  json_t *env = json_array ();
  gboolean have_path = FALSE;
  json_array_foreach (json_object_get (ic, "Env"), i, a)
    if (json_is_string (a))
      {
        json_array_append (env, a);
        have_path |= g_str_has_prefix (json_string_value (a), "PATH=");
      }
  if (!have_path)
    json_array_append_new (env, json_string ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
  json_array_append_new (env, json_string ("container=sysctr"));

  guint32 uid, gid;
  g_autoptr (GArray) groups = g_array_new (FALSE, FALSE, sizeof (guint32));
  if (!parse_user (in->rootfs_dfd, sysctr_json_get_string (ic, "User"), &uid, &gid, groups, error))
    {
      json_decref (env);
      return NULL;
    }
  const char *cwd = sysctr_json_get_string (ic, "WorkingDir");

  json_t *caps = str_array ((const char **) sysctr_default_caps, g_strv_length ((char **) sysctr_default_caps));
  json_t *process
      = json_pack ("{s:b, s:{s:I, s:I}, s:O, s:o, s:s, s:{s:O, s:O, s:O}, s:b}", "terminal", 0, "user", "uid",
                   (json_int_t) uid, "gid", (json_int_t) gid, "args", args, "env", env, "cwd", cwd && *cwd ? cwd : "/",
                   "capabilities", "bounding", caps, "effective", caps, "permitted", caps, "noNewPrivileges", 1);
  json_decref (caps);
  if (groups->len > 0)
    {
      json_t *extra = json_array ();
      for (guint g = 0; g < groups->len; g++)
        json_array_append_new (extra, json_integer (g_array_index (groups, guint32, g)));
      json_object_set_new (json_object_get (process, "user"), "additionalGids", extra);
    }

  json_t *mounts = json_array ();
  json_array_append_new (mounts, sysctr_render_mount ("/proc", "proc", "proc", "nosuid,noexec,nodev"));
  json_array_append_new (
      mounts, sysctr_render_mount ("/dev", "tmpfs", "tmpfs", "nosuid,nodev,noexec,strictatime,mode=755,size=65536k"));
  json_array_append_new (mounts, sysctr_render_mount ("/dev/pts", "devpts", "devpts",
                                                      "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620"));
  json_array_append_new (mounts,
                         sysctr_render_mount ("/dev/shm", "tmpfs", "shm", "nosuid,noexec,nodev,mode=1777,size=65536k"));
  json_array_append_new (mounts, sysctr_render_mount ("/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev"));
  json_array_append_new (mounts, sysctr_render_mount ("/sys", "sysfs", "sysfs", "nosuid,noexec,nodev,ro"));
  json_array_append_new (mounts, sysctr_render_mount ("/run", "tmpfs", "tmpfs", "nosuid,nodev,mode=755"));
  json_array_append_new (mounts, sysctr_render_mount ("/tmp", "tmpfs", "tmpfs", "nosuid,nodev,mode=1777"));
  /* Image volumes keep their data on the host, under the state path. */
  const char *vol;
  json_object_foreach (json_object_get (ic, "Volumes"), vol, a)
    {
      if (!line_path_valid (vol))
        continue;
      g_autofree char *src = g_strdup_printf ("%s%s", r->state_path, vol);
      json_array_append_new (mounts, sysctr_render_mount (vol, "bind", src, "rbind,rw,nosuid,nodev"));
    }

  json_t *ns = json_pack ("[{s:s}, {s:s}, {s:s}, {s:s}]", "type", "pid", "type", "mount", "type", "ipc", "type", "uts");
  const char *net = label (in->image, "org.sysctr.network");
  if (net && strcmp (net, "private") == 0)
    json_array_append_new (ns, json_pack ("{s:s}", "type", "network"));
  else if (net && strcmp (net, "host") != 0)
    sysctr_rendered_warn (r, "label org.sysctr.network=%s is not host or private; using the host network", net);

  json_t *seccomp = sysctr_default_seccomp (in->image->platform, error);
  if (seccomp == NULL)
    {
      json_decref (ns);
      json_decref (mounts);
      json_decref (process);
      return NULL;
    }
  json_t *linux_ = json_pack (
      "{s:o, s:o, s:o, s:o}", "namespaces", ns, "maskedPaths",
      str_array ((const char **) sysctr_default_masked, g_strv_length ((char **) sysctr_default_masked)),
      "readonlyPaths",
      str_array ((const char **) sysctr_default_readonly, g_strv_length ((char **) sysctr_default_readonly)), "seccomp",
      seccomp);
  json_t *config
      = json_pack ("{s:s, s:o, s:{s:s, s:b}, s:s, s:o, s:o}", "ociVersion", "1.0.2", "process", process, "root", "path",
                   "rootfs", "readonly", 1, "hostname", in->name, "mounts", mounts, "linux", linux_);
  const char *init = label (in->image, "org.sysctr.init");
  if (init && strcmp (init, "false") == 0)
    json_object_set_new (config, "annotations", json_pack ("{s:s}", "org.sysctr.init", "false"));
  return config;
}

/* data/seccomp.json, for the architecture the image is for (its
 * compatible 32-bit ABIs too: a call through them is filtered by the same
 * list instead of killing the process). */
json_t *
sysctr_default_seccomp (const char *platform, GError **error)
{
  const char *dir = g_getenv ("SYSCTR_DATA_DIR");
  g_autofree char *path = g_build_filename (dir ? dir : SYSCTR_DATADIR, "seccomp.json", NULL);
  g_autofree char *data = NULL;
  gsize len = 0;
  if (!sysctr_read_file_at (AT_FDCWD, path, MAX_TEMPLATE_SIZE, &data, &len, error))
    {
      sysctr_prefix_error (error, "default seccomp profile");
      return NULL;
    }
  json_t *profile = sysctr_json_parse (data, len, path, error);
  if (profile == NULL)
    return NULL;
  static const struct
  {
    const char *arch;
    const char *scmp[3];
  } arches[] = {
    { "amd64", { "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32" } },
    { "386", { "SCMP_ARCH_X86" } },
    { "arm64", { "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM" } },
    { "arm", { "SCMP_ARCH_ARM" } },
    { "ppc64le", { "SCMP_ARCH_PPC64LE" } },
    { "s390x", { "SCMP_ARCH_S390X", "SCMP_ARCH_S390" } },
    { "riscv64", { "SCMP_ARCH_RISCV64" } },
  };
  g_auto (GStrv) parts = g_strsplit (platform ? platform : "", "/", 3);
  const char *arch = parts[0] && parts[1] ? parts[1] : "";
  for (guint i = 0; i < G_N_ELEMENTS (arches); i++)
    if (strcmp (arches[i].arch, arch) == 0)
      {
        json_t *a = json_array ();
        for (guint k = 0; k < G_N_ELEMENTS (arches[i].scmp) && arches[i].scmp[k]; k++)
          json_array_append_new (a, json_string (arches[i].scmp[k]));
        json_object_set_new (profile, "architectures", a);
      }
  return profile;
}

static gboolean
unit_names_valid (const char *list)
{
  g_auto (GStrv) items = g_strsplit_set (list, " ", -1);
  for (char **it = items; *it; it++)
    {
      if (**it == '\0')
        continue;
      if (strlen (*it) > 255 || strchr (*it, '.') == NULL)
        return FALSE;
      for (const char *p = *it; *p; p++)
        {
          /* a backslash only as systemd's \xHH escape: a trailing one
           * would join the next line of the unit to this one */
          if (*p == '\\')
            {
              if (p[1] != 'x' || !g_ascii_isxdigit (p[2]) || !g_ascii_isxdigit (p[3]))
                return FALSE;
              p += 3;
              continue;
            }
          if (!(g_ascii_isalnum (*p) || strchr (":_.@-", *p)))
            return FALSE;
        }
    }
  return TRUE;
}

/* Adds lines to a section of a rendered unit (creating the section). */
static void
add_to_section (GString *unit, const char *section, const char *lines)
{
  g_autofree char *header = g_strdup_printf ("[%s]\n", section);
  const char *at = strstr (unit->str, header);
  if (at == NULL)
    {
      if (unit->len && unit->str[unit->len - 1] != '\n')
        g_string_append_c (unit, '\n');
      if (strcmp (section, "Unit") == 0)
        {
          g_string_prepend (unit, "\n");
          g_string_prepend (unit, lines);
          g_string_prepend (unit, header);
        }
      else
        g_string_append_printf (unit, "\n%s%s", header, lines);
      return;
    }
  g_string_insert (unit, (at - unit->str) + strlen (header), lines);
}

/* Targets reached before basic.target: a unit ordered before one of them
 * needs DefaultDependencies=no (with the defaults it comes after
 * sysinit.target and basic.target, and systemd reports a cycle). */
static gboolean
early_target (const char *target)
{
  static const char *const early[] = { "sysinit.target",     "basic.target",      "local-fs.target",
                                       "network-pre.target", "sockets.target",    "paths.target",
                                       "timers.target",      "cryptsetup.target", NULL };
  return target && g_strv_contains (early, target);
}

static gboolean
finish_unit (const SysctrRenderInput *in, SysctrRendered *r, const SysctrOwn *own, const char *rendered,
             gboolean is_service, GString **out, GError **error)
{
  GString *unit = g_string_new (rendered);
  GString *unit_lines = g_string_new (NULL);
  GString *install_lines = g_string_new (NULL);
  if (is_service)
    g_string_append_printf (unit_lines, "RequiresMountsFor=%s %s %s\n", in->slot_path, SYSCTR_CONTAINERS_DIR,
                            r->state_path);
  struct
  {
    const char *label;
    const char *directive;
    GString *where;
  } deps[] = {
    { "org.sysctr.after", "After", unit_lines },           { "org.sysctr.before", "Before", unit_lines },
    { "org.sysctr.requires", "Requires", unit_lines },     { "org.sysctr.wants", "Wants", unit_lines },
    { "org.sysctr.wanted-by", "WantedBy", install_lines }, { "org.sysctr.required-by", "RequiredBy", install_lines },
  };
  gboolean ok = TRUE;
  /* org.sysctr.target: part of that target, done before it is reached (a
   * boot task before sysinit.target or network-pre.target) */
  const char *target = is_service ? label (in->image, "org.sysctr.target") : NULL;
  if (target && (!unit_names_valid (target) || strchr (target, ' ') || !g_str_has_suffix (target, ".target")))
    {
      g_autofree char *shown = g_strescape (target, NULL);
      ok = sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "label org.sysctr.target: \"%.80s\" is not one target unit",
                         shown);
    }
  else if (target)
    {
      /* without the default dependencies it still needs its tmpfiles.d
       * entries (state directories, bind sources) made first */
      if (early_target (target))
        g_string_append (unit_lines, "DefaultDependencies=no\nConflicts=shutdown.target\nBefore=shutdown.target\n"
                                     "After=systemd-tmpfiles-setup.service\n");
      g_string_append_printf (unit_lines, "Before=%s\n", target);
      g_string_append_printf (install_lines, "WantedBy=%s\n", target);
      sysctr_classify_unit_dependency (r->asks, own, "WantedBy", target);
    }
  /* org.sysctr.network-online=true: started once the network is up (only
   * when the image asks: a host without a network manager reaches
   * network-online.target at once, and nothing else waits for it) */
  if (is_service && g_strcmp0 (label (in->image, "org.sysctr.network-online"), "true") == 0)
    g_string_append (unit_lines, "Wants=network-online.target\nAfter=network-online.target\n");
  for (guint i = 0; ok && is_service && i < G_N_ELEMENTS (deps); i++)
    {
      const char *v = label (in->image, deps[i].label);
      if (v == NULL)
        continue;
      if (!unit_names_valid (v))
        {
          g_autofree char *shown = g_strescape (v, NULL);
          ok = sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "label %s: \"%.80s\" is not a list of unit names",
                             deps[i].label, shown);
          break;
        }
      g_string_append_printf (deps[i].where, "%s=%s\n", deps[i].directive, v);
      sysctr_classify_unit_dependency (r->asks, own, deps[i].directive, v);
    }
  if (ok)
    {
      /* Device access is closed to what a container granted nothing uses:
       * the standard nodes (systemd's "closed" set) and its own ptys. The
       * container stays in this unit's cgroup, so systemd enforces it where
       * the devices controller is writable. First in the section, so that a
       * granted template line can open it further. */
      if (is_service)
        {
          /* what config.json asked of the cgroup (linux.resources,
           * linux.devices), as the unit's own directives */
          /* the payload's lines under the container's name (journalctl
           * -t NAME), unless the template names them itself */
          gboolean has_ident
              = g_str_has_prefix (unit->str, "SyslogIdentifier=") || strstr (unit->str, "\nSyslogIdentifier=") != NULL;
          g_autofree char *ident = has_ident ? g_strdup ("") : g_strdup_printf ("SyslogIdentifier=%s\n", in->name);
          g_autofree char *lines
              = g_strdup_printf ("DevicePolicy=closed\nDeviceAllow=char-pts rw\n%s%s", ident, r->service_lines->str);
          add_to_section (unit, "Service", lines);
        }
      if (unit_lines->len)
        add_to_section (unit, "Unit", unit_lines->str);
      if (install_lines->len)
        add_to_section (unit, "Install", install_lines->str);
      g_autofree char *marker = sysctr_marker_line (in->name);
      g_string_prepend (unit, marker);
    }
  g_string_free (unit_lines, TRUE);
  g_string_free (install_lines, TRUE);
  if (!ok)
    {
      g_string_free (unit, TRUE);
      return FALSE;
    }
  *out = unit;
  return TRUE;
}

/* Whether a host file (hostfs, a unit) is written at @path: its tmpfiles.d
 * line would clash with it. */
static gboolean
host_file_listed (SysctrRendered *r, const char *path)
{
  for (guint i = 0; i < r->files->len; i++)
    if (strcmp (((SysctrHostFile *) r->files->pdata[i])->path, path) == 0)
      return TRUE;
  return FALSE;
}

/* Records @path, and its parents that the tree lacks too (systemd-tmpfiles
 * makes them along), as made by sysctr: removed at uninstall when empty. A
 * path the previous deployment made stays recorded. */
static void
add_created (const SysctrRenderInput *in, json_t *created, const char *path)
{
  g_autofree char *p = g_strdup (path);
  while (p[0] == '/' && p[1] != '\0')
    {
      size_t i;
      json_t *c;
      gboolean known = FALSE, was_created = FALSE;
      json_array_foreach (created, i, c)
        known |= g_strcmp0 (json_string_value (c), p) == 0;
      json_array_foreach (in->previous_created, i, c)
        was_created |= g_strcmp0 (json_string_value (c), p) == 0;
      sysctr_autofd int fd = -1;
      gboolean exists = in->root_dfd >= 0 && sysctr_open_in_root (in->root_dfd, p, FALSE, FALSE, &fd, NULL);
      if (known || (exists && !was_created))
        break;
      json_array_append_new (created, json_string (p));
      char *slash = strrchr (p, '/');
      *slash = '\0';
    }
}

/* Whether a tmpfiles.d text has a line for @path. */
static gboolean
tmpfiles_lists (const char *text, const char *path)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l; l++)
    {
      g_auto (GStrv) f = g_strsplit_set (*l, " \t", -1);
      guint n = 0;
      for (char **x = f; *x; x++)
        if (**x && ++n == 2)
          {
            if (strcmp (*x, path) == 0)
              return TRUE;
            break;
          }
    }
  return FALSE;
}

static char *
load_default_template (const char *file, GError **error)
{
  const char *dir = g_getenv ("SYSCTR_TEMPLATES_DIR");
  g_autofree char *path = g_build_filename (dir ? dir : SYSCTR_DATADIR "/templates", file, NULL);
  g_autofree char *data = NULL;
  if (!sysctr_read_file_at (AT_FDCWD, path, MAX_TEMPLATE_SIZE, &data, NULL, error))
    {
      sysctr_prefix_error (error, "default template");
      return NULL;
    }
  return g_steal_pointer (&data);
}

static void
add_file (SysctrRendered *r, const char *path, const char *data, gsize len, guint32 mode)
{
  SysctrHostFile *f = g_new0 (SysctrHostFile, 1);
  f->path = g_strdup (path);
  f->data = g_bytes_new (data, len);
  f->mode = mode;
  g_ptr_array_add (r->files, f);
}

static gboolean
host_path_valid (const char *path)
{
  if (path[0] != '/' || strlen (path) > 1024)
    return FALSE;
  g_auto (GStrv) parts = g_strsplit (path + 1, "/", -1);
  for (char **p = parts; *p; p++)
    if (**p == '\0' || strcmp (*p, ".") == 0 || strcmp (*p, "..") == 0)
      return FALSE;
  for (const char *p = path; *p; p++)
    if ((unsigned char) *p < 0x20)
      return FALSE;
  /* never sysctr's own state, never the store */
  return !g_str_has_prefix (path, SYSCTR_STATE_DIR "/") && strcmp (path, SYSCTR_STATE_DIR) != 0;
}

/* Regular files below /exports/hostfs; f->path is the host path, f->source
 * the file in the rootfs. Nothing is read here: sizes are added up against
 * the budgets first. */
static gboolean
collect_hostfs (SysctrRendered *r, int dir, const char *prefix, guint *count, guint64 *total, guint depth,
                GError **error)
{
  g_autoptr (GPtrArray) names = NULL;
  if (depth > 64)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "hostfs%s: directories nested more than 64 deep", prefix);
  if (!sysctr_dir_list_at (dir, ".", FALSE, &names, error))
    {
      sysctr_prefix_error (error, "hostfs %s", prefix);
      return FALSE;
    }
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = names->pdata[i];
      struct stat st;
      if (fstatat (dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return sysctr_throw_errno (error, "hostfs %s/%s", prefix, name);
      g_autofree char *host = g_strdup_printf ("%s/%s", prefix, name);
      if (S_ISDIR (st.st_mode))
        {
          sysctr_autofd int sub = openat (dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (sub < 0)
            return sysctr_throw_errno (error, "hostfs %s", host);
          if (!collect_hostfs (r, sub, host, count, total, depth + 1, error))
            return FALSE;
          continue;
        }
      if (!S_ISREG (st.st_mode))
        {
          sysctr_rendered_warn (r, "hostfs: %s is not a regular file; skipped", host);
          continue;
        }
      if (++*count > SYSCTR_HOSTFS_MAX_FILES)
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "hostfs: more than %d files", SYSCTR_HOSTFS_MAX_FILES);
      if ((guint64) st.st_size > SYSCTR_HOSTFS_MAX_FILE)
        {
          g_autofree char *sz = sysctr_format_size (st.st_size);
          g_autofree char *lim = sysctr_format_size (SYSCTR_HOSTFS_MAX_FILE);
          return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                               "hostfs%s: %s, more than the %s a file copied to the host may have", host, sz, lim);
        }
      *total += st.st_size;
      if (*total > SYSCTR_HOSTFS_MAX_TOTAL)
        {
          g_autofree char *lim = sysctr_format_size (SYSCTR_HOSTFS_MAX_TOTAL);
          return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                               "hostfs: more than %s in all (at %s; each hardlink counts) would be copied to the "
                               "host; refused",
                               lim, host);
        }
      SysctrHostFile *f = g_new0 (SysctrHostFile, 1);
      f->path = g_strdup (host);
      f->source = g_strdup_printf ("/exports/hostfs%s", host);
      f->mode = st.st_mode & 0755;
      g_ptr_array_add (r->files, f);
    }
  return TRUE;
}

/* Empty directories below /exports/hostfs (flannel's /etc/flanneld,
 * kubelet's /etc/cni/net.d): made on the host as atomic made them, by a
 * tmpfiles.d line; recorded when sysctr makes them, so that uninstall
 * removes them again when they are still empty. */
static gboolean
collect_hostfs_dirs (const SysctrRenderInput *in, SysctrRendered *r, const SysctrOwn *own, int dir, const char *prefix,
                     guint depth, GError **error)
{
  g_autoptr (GPtrArray) names = NULL;
  if (depth > 64)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "hostfs%s: directories nested more than 64 deep", prefix);
  if (!sysctr_dir_list_at (dir, ".", FALSE, &names, error))
    return FALSE;
  if (names->len == 0 && *prefix)
    {
      if (!host_path_valid (prefix) || strpbrk (prefix, " \t\\%\"'"))
        {
          g_autofree char *shown = g_strescape (prefix, NULL);
          return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "hostfs: directory \"%.200s\" is not an allowed host path",
                               shown);
        }
      struct stat st;
      guint32 mode = fstat (dir, &st) == 0 ? (st.st_mode & 0755) : 0755;
      g_string_append_printf (r->tmpfiles_lines, "d %s %04o 0 0 - -\n", prefix, mode);
      sysctr_autofd int fd = -1;
      gboolean exists = in->root_dfd >= 0 && sysctr_open_in_root (in->root_dfd, prefix, FALSE, FALSE, &fd, NULL);
      gboolean was_created = FALSE;
      size_t p;
      json_t *prev;
      json_array_foreach (in->previous_created, p, prev)
        was_created |= g_strcmp0 (json_string_value (prev), prefix) == 0;
      if (!exists || was_created)
        json_array_append_new (r->created, json_string (prefix));
      sysctr_classify_host_file (r->asks, own, prefix);
      return TRUE;
    }
  for (guint i = 0; i < names->len; i++)
    {
      struct stat st;
      const char *name = names->pdata[i];
      if (fstatat (dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR (st.st_mode))
        continue;
      sysctr_autofd int sub = openat (dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      g_autofree char *host = g_strdup_printf ("%s/%s", prefix, name);
      if (sub < 0)
        return sysctr_throw_errno (error, "hostfs %s", host);
      if (!collect_hostfs_dirs (in, r, own, sub, host, depth + 1, error))
        return FALSE;
    }
  return TRUE;
}

/* The image's /exports/hostfs as a directory fd (-1 and TRUE: it has none). */
static gboolean
open_hostfs (const SysctrRenderInput *in, int *out_dir, GError **error)
{
  sysctr_autofd int fd = -1;
  *out_dir = -1;
  if (!sysctr_open_in_root_optional (in->rootfs_dfd, "/exports/hostfs", &fd, error))
    return FALSE;
  if (fd < 0)
    return TRUE;
  *out_dir = sysctr_reopen_fd (fd, O_DIRECTORY);
  if (*out_dir < 0)
    return sysctr_throw_errno (error, "opening /exports/hostfs");
  return TRUE;
}

static gboolean
render_hostfs_dirs (const SysctrRenderInput *in, SysctrRendered *r, const SysctrOwn *own, GError **error)
{
  sysctr_autofd int dir = -1;
  if (!open_hostfs (in, &dir, error))
    return FALSE;
  if (dir < 0)
    return TRUE;
  return collect_hostfs_dirs (in, r, own, dir, "", 0, error);
}

static gboolean
render_hostfs (const SysctrRenderInput *in, SysctrRendered *r, const SysctrOwn *own, json_t *manifest, GError **error)
{
  sysctr_autofd int dir = -1;
  if (!open_hostfs (in, &dir, error))
    return FALSE;
  if (dir < 0)
    return TRUE;
  guint start = r->files->len;
  guint count = 0;
  guint64 total = 0;
  if (!collect_hostfs (r, dir, "", &count, &total, 0, error))
    return FALSE;

  json_t *rename = json_object_get (manifest, "renameFiles");
  json_t *templated = json_object_get (manifest, "installedFilesTemplate");
  for (guint i = start; i < r->files->len; i++)
    {
      SysctrHostFile *f = r->files->pdata[i];
      /* a file's path under /exports/hostfs is its host path, unless the
       * manifest's renameFiles maps it elsewhere (a template) */
      g_autofree char *host = g_strdup (f->path);
      const char *renamed = sysctr_json_get_string (rename, host);
      if (renamed)
        {
          g_autofree char *rp = sysctr_template_render (renamed, SYSCTR_TEMPLATE_TEXT, r->values, "renameFiles", error);
          if (rp == NULL)
            return FALSE;
          g_free (host);
          host = g_canonicalize_filename (rp, "/");
          if (strcmp (host, rp) != 0 && !host_path_valid (rp))
            {
              g_autofree char *shown = g_strescape (rp, NULL);
              return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "renameFiles: \"%.200s\" is not a clean absolute path",
                                   shown);
            }
        }
      if (!host_path_valid (host))
        {
          g_autofree char *shown = g_strescape (host, NULL);
          return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "hostfs: \"%.200s\" is not an allowed host path", shown);
        }
      size_t k;
      json_t *t;
      json_array_foreach (templated, k, t)
        if (json_is_string (t) && strcmp (json_string_value (t), f->path) == 0)
          {
            g_autofree char *text = NULL;
            gsize len = 0;
            if (!read_export (in->rootfs_dfd, f->source, &text, &len, error))
              return FALSE;
            if (text == NULL || strlen (text) != len)
              return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "installedFilesTemplate: %s is not a text file",
                                   f->path);
            g_autofree char *out = sysctr_template_render (text, SYSCTR_TEMPLATE_TEXT, r->values, f->path, error);
            if (out == NULL)
              return FALSE;
            f->data = g_bytes_new (out, strlen (out));
            g_clear_pointer (&f->source, g_free);
          }
      g_free (f->path);
      f->path = g_steal_pointer (&host);
      sysctr_classify_host_file (r->asks, own, f->path);
    }
  return TRUE;
}

/* Phase: config.json, from the image's template, its plain config.json
 * or derived from the image config; normalised (ociconfig.c) and, when
 * the image wrote it, classified for what it asks. */
static gboolean
render_config (const SysctrRenderInput *in, SysctrRendered *r, const SysctrOwn *own, GError **error)
{
  gboolean image_config = TRUE;
  g_autofree char *tmpl = NULL;
  gsize tmpl_len = 0;
  if (!read_export (in->rootfs_dfd, "/exports/config.json.template", &tmpl, &tmpl_len, error))
    return FALSE;
  if (tmpl)
    {
      g_autofree char *rendered
          = sysctr_template_render (tmpl, SYSCTR_TEMPLATE_JSON, r->values, "config.json.template", error);
      if (rendered == NULL)
        return FALSE;
      r->config = sysctr_json_parse (rendered, strlen (rendered), "rendered config.json.template", error);
    }
  else
    {
      if (!read_export (in->rootfs_dfd, "/exports/config.json", &tmpl, &tmpl_len, error))
        return FALSE;
      if (tmpl)
        r->config = sysctr_json_parse (tmpl, tmpl_len, "/exports/config.json", error);
      else
        {
          r->config = derive_config (in, r, error);
          image_config = FALSE;
        }
    }
  if (r->config == NULL || !sysctr_config_normalize (in, r, r->config, error))
    return FALSE;
  /* a derived config is sysctr's own: it asks for nothing */
  return !image_config || sysctr_classify_config (r->asks, own, r->config, error);
}

/* Phase: the health check (config.json annotations the shim runs) and the
 * reload command, as [Service] lines (health.c) */
static gboolean
render_service_ops (const SysctrRenderInput *in, SysctrRendered *r, GError **error)
{
  gboolean shim = sysctr_runtime_is_shim (r->runtime_path, in->shim_path);
  gboolean health = FALSE;
  if (!sysctr_render_health (in->image, shim, r->config, r->service_lines, &health, error)
      || !sysctr_render_reload (in->image, shim ? r->runtime_path : NULL, in->name, r->service_lines, error))
    return FALSE;
  if (!shim && json_object_get (json_object_get (in->image->config, "config"), "Healthcheck"))
    sysctr_rendered_warn (r, "the image's health check is run by sysctr-shim only, not under %s", r->runtime_path);
  return TRUE;
}

/* Phase: the units, NAME.service from the image's template, its label or
 * sysctr's default, and NAME.socket from its label; the one enabled is the
 * socket when there is one. */
static gboolean
render_units (const SysctrRenderInput *in, SysctrRendered *r, const SysctrOwn *own, json_t *manifest, GError **error)
{
  if (json_is_true (json_object_get (manifest, "noContainerService")))
    return TRUE;
  g_autofree char *service_tmpl = NULL;
  gsize len = 0;
  if (!read_export (in->rootfs_dfd, "/exports/service.template", &service_tmpl, &len, error))
    return FALSE;
  if (service_tmpl == NULL && label (in->image, "org.sysctr.unit"))
    service_tmpl = g_strdup (label (in->image, "org.sysctr.unit"));
  gboolean image_unit = service_tmpl != NULL;
  if (service_tmpl == NULL)
    {
      service_tmpl = load_default_template ("service.template", error);
      if (service_tmpl == NULL)
        return FALSE;
      /* a boot task runs to completion, once: oneshot, not restarted */
      const char *notify = label (in->image, "org.sysctr.notify");
      gboolean oneshot = g_strcmp0 (label (in->image, "org.sysctr.type"), "oneshot") == 0;
      if (label (in->image, "org.sysctr.type") && !oneshot)
        sysctr_rendered_warn (r, "label org.sysctr.type=%s is not oneshot; the service runs as a long-lived one",
                              label (in->image, "org.sysctr.type"));
      if (oneshot && g_strcmp0 (notify, "true") == 0)
        sysctr_rendered_warn (r, "labels org.sysctr.type=oneshot and org.sysctr.notify=true: a oneshot sends no "
                                 "READY=1; oneshot it is");
      g_hash_table_insert (r->values, g_strdup ("SERVICE_TYPE"),
                           g_strdup (oneshot                                  ? "oneshot"
                                     : notify && strcmp (notify, "true") == 0 ? "notify"
                                                                              : "exec"));
      g_hash_table_insert (r->values, g_strdup ("REMAIN_AFTER_EXIT"), g_strdup (oneshot ? "yes" : "no"));
      g_hash_table_insert (r->values, g_strdup ("RESTART"), g_strdup (oneshot ? "no" : "on-failure"));
      /* a unit ordered before sysinit.target cannot come after network.target */
      g_hash_table_insert (
          r->values, g_strdup ("DEFAULT_AFTER"),
          g_strdup (early_target (label (in->image, "org.sysctr.target")) ? "local-fs.target" : "network.target"));
      const char *stop = sysctr_json_get_string (json_object_get (in->image->config, "config"), "StopSignal");
      g_hash_table_insert (r->values, g_strdup ("KILL_SIGNAL"),
                           g_strdup (stop && g_str_has_prefix (stop, "SIG") ? stop : "SIGTERM"));
    }
  g_autofree char *svc
      = sysctr_template_render (service_tmpl, SYSCTR_TEMPLATE_UNIT, r->values, "service template", error);
  if (svc == NULL)
    return FALSE;
  if (image_unit)
    sysctr_classify_unit (r->asks, own, svc);
  GString *unit = NULL;
  if (!finish_unit (in, r, own, svc, TRUE, &unit, error))
    return FALSE;
  g_autofree char *path = g_strdup_printf ("/etc/systemd/system/%s.service", in->name);
  add_file (r, path, unit->str, unit->len, 0644);
  g_ptr_array_add (r->units, g_strdup_printf ("%s.service", in->name));
  g_string_free (unit, TRUE);

  const char *sock = label (in->image, "org.sysctr.socket");
  if (sock == NULL)
    {
      r->enable_unit = g_strdup_printf ("%s.service", in->name);
      return TRUE;
    }
  g_autofree char *s = sysctr_template_render (sock, SYSCTR_TEMPLATE_UNIT, r->values, "socket template", error);
  if (s == NULL)
    return FALSE;
  sysctr_classify_unit (r->asks, own, s);
  if (!finish_unit (in, r, own, s, FALSE, &unit, error))
    return FALSE;
  g_autofree char *spath = g_strdup_printf ("/etc/systemd/system/%s.socket", in->name);
  add_file (r, spath, unit->str, unit->len, 0644);
  g_ptr_array_add (r->units, g_strdup_printf ("%s.socket", in->name));
  g_string_free (unit, TRUE);
  r->enable_unit = g_strdup_printf ("%s.socket", in->name);
  return TRUE;
}

/* Phase: the tmpfiles.d file: the image's template (or, for a native
 * image, its state directory and volumes), then what sysctr makes for it
 * (hostfs directories, empty ones too, and missing bind sources) unless
 * the image's own lines make the path; what sysctr adds is recorded as
 * created. */
static gboolean
render_tmpfiles (const SysctrRenderInput *in, SysctrRendered *r, const SysctrOwn *own, GError **error)
{
  g_autofree char *tmpfiles = NULL;
  gsize len = 0;
  if (!read_export (in->rootfs_dfd, "/exports/tmpfiles.template", &tmpfiles, &len, error))
    return FALSE;
  g_autoptr (GString) tf = g_string_new (NULL);
  g_autofree char *tmarker = sysctr_marker_line (in->name);
  g_string_append (tf, tmarker);
  if (tmpfiles)
    {
      g_autofree char *t
          = sysctr_template_render (tmpfiles, SYSCTR_TEMPLATE_TMPFILES, r->values, "tmpfiles.template", error);
      if (t == NULL)
        return FALSE;
      g_string_append (tf, t);
      sysctr_classify_tmpfiles (r->asks, own, t);
    }
  else
    {
      /* native images: the state directory and their volumes under it */
      g_string_append_printf (tf, "d %s 0700 0 0 - -\n", r->state_path);
      json_t *ic = json_object_get (in->image->config, "config");
      const char *vol;
      json_t *a;
      json_object_foreach (json_object_get (ic, "Volumes"), vol, a)
        if (line_path_valid (vol))
          g_string_append_printf (tf, "d %s%s 0755 0 0 - -\n", r->state_path, vol);
        else
          sysctr_rendered_warn (
              r, "image volume \"%.100s\" is not a clean absolute path; no state directory made for it", vol);
    }
  if (!render_hostfs_dirs (in, r, own, error))
    return FALSE;
  g_autoptr (json_t) created = json_array ();
  g_auto (GStrv) extra = g_strsplit (r->tmpfiles_lines->str, "\n", -1);
  for (char **l = extra; *l; l++)
    {
      g_auto (GStrv) f = g_strsplit (*l, " ", 3);
      if (f[0] == NULL || f[1] == NULL || tmpfiles_lists (tf->str, f[1]) || host_file_listed (r, f[1]))
        continue;
      g_string_append_printf (tf, "%s\n", *l);
      add_created (in, created, f[1]);
    }
  json_decref (r->created);
  r->created = g_steal_pointer (&created);
  g_autofree char *tpath = g_strdup_printf ("/etc/tmpfiles.d/sysctr-%s.conf", in->name);
  add_file (r, tpath, tf->str, tf->len, 0644);
  return TRUE;
}

/* /exports/manifest.json, or NULL (no error) when the image has none. */
static gboolean
read_manifest (const SysctrRenderInput *in, json_t **out, GError **error)
{
  g_autofree char *text = NULL;
  gsize len = 0;
  *out = NULL;
  if (!read_export (in->rootfs_dfd, "/exports/manifest.json", &text, &len, error))
    return FALSE;
  if (text == NULL)
    return TRUE;
  g_autoptr (json_t) manifest = sysctr_json_parse (text, len, "/exports/manifest.json", error);
  if (manifest == NULL)
    return FALSE;
  if (!json_is_object (manifest))
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "/exports/manifest.json is not a JSON object");
  *out = g_steal_pointer (&manifest);
  return TRUE;
}

SysctrRendered *
sysctr_render (const SysctrRenderInput *in, GError **error)
{
  g_autoptr (SysctrRendered) r = g_new0 (SysctrRendered, 1);
  r->values = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  r->files = g_ptr_array_new_with_free_func ((GDestroyNotify) host_file_free);
  r->units = g_ptr_array_new_with_free_func (g_free);
  r->warnings = g_ptr_array_new_with_free_func (g_free);
  r->asks = sysctr_asks_new ();
  r->service_lines = g_string_new (NULL);
  r->tmpfiles_lines = g_string_new (NULL);
  r->created = json_array ();
  r->runtime_path = sysctr_runtime_resolve (in->runtime, in->shim_path, error);
  if (r->runtime_path == NULL)
    return NULL;

  /* values: --set, the OS's defaults, the image's (manifest.json, labels) */
  g_autoptr (json_t) manifest = NULL;
  if (!read_manifest (in, &manifest, error) || !build_values (in, manifest, r, error))
    return NULL;
  r->state_path = g_strdup_printf ("%s/%s", (char *) g_hash_table_lookup (r->values, "STATE_DIRECTORY"), in->name);
  /* it goes into RequiresMountsFor=, tmpfiles.d, and uninstall --purge */
  if (!line_path_valid (r->state_path) || g_str_has_prefix (r->state_path, SYSCTR_STATE_DIR "/"))
    {
      g_autofree char *shown = g_strescape (g_hash_table_lookup (r->values, "STATE_DIRECTORY"), NULL);
      sysctr_throw (error, SYSCTR_ERROR_INVALID, "STATE_DIRECTORY: \"%.200s\" is not a clean absolute path outside %s",
                    shown, SYSCTR_STATE_DIR);
      return NULL;
    }

  /* What belongs to the container: asking for these asks for nothing. */
  g_autofree char *run_path
      = g_strdup_printf ("%s/%s", (char *) g_hash_table_lookup (r->values, "RUN_DIRECTORY"), in->name);
  g_autofree char *conf_path
      = g_strdup_printf ("%s/%s", (char *) g_hash_table_lookup (r->values, "CONF_DIRECTORY"), in->name);
  SysctrOwn own = {
    .name = in->name,
    .slot_path = in->slot_path,
    .own_dirs = { r->state_path, run_path, conf_path, NULL },
    .values = r->values,
    .sysctr_units = in->sysctr_units,
  };

  if (!render_config (in, r, &own, error) || !render_service_ops (in, r, error)
      || !render_units (in, r, &own, manifest, error) || !render_hostfs (in, r, &own, manifest, error)
      || !render_tmpfiles (in, r, &own, error) || !sysctr_config_make_mountpoints (in, r, r->config, error))
    return NULL;
  return g_steal_pointer (&r);
}

gboolean
sysctr_rendered_provides (SysctrRendered *r, const char *path)
{
  if (host_file_listed (r, path))
    return TRUE;
  for (guint i = 0; i < r->files->len; i++)
    {
      SysctrHostFile *f = r->files->pdata[i];
      if (!g_str_has_prefix (f->path, "/etc/tmpfiles.d/") || f->data == NULL)
        continue;
      gsize len;
      const char *data = g_bytes_get_data (f->data, &len);
      g_autofree char *text = g_strndup (data, len);
      if (tmpfiles_lists (text, path))
        return TRUE;
    }
  return FALSE;
}
