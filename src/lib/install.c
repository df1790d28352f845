#include "config.h"

#include "install.h"
#include "ociconfig.h"

#include "containers.h"
#include "deploy.h"
#include "hostfiles.h"
#include "privileges.h"
#include "pull.h"
#include "reference.h"
#include "render.h"
#include "store.h"
#include "systemd.h"

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

static char *
file_sha256 (GBytes *bytes)
{
  gsize len;
  const void *data = g_bytes_get_data (bytes, &len);
  return sysctr_sha256_hex (data, len);
}

/* The journal of a mutating command: containers/.NAME.pending names the
 * operation and slots, written before the commit point (the NAME symlink)
 * and removed when every step after it is done. reconcile reads it to
 * complete (symlink switched) or forget (not switched) the operation. */
static char *
journal_rel (const char *name)
{
  return g_strdup_printf ("containers/.%s.pending", name);
}

static gboolean
journal_write (SysctrContext *ctx, const char *name, const char *op, const char *slot, const char *from, gboolean purge,
               GError **error)
{
  g_autoptr (json_t) j = json_pack ("{s:s, s:s, s:s?, s:b}", "op", op, "slot", slot, "from", from, "purge", purge);
  g_autofree char *text = sysctr_json_dump (j, FALSE);
  g_autofree char *rel = journal_rel (name);
  if (!sysctr_write_file_at (ctx->state_dfd, rel, text, strlen (text), 0600, error))
    return FALSE;
  sysctr_crash_point ("journal-written");
  return TRUE;
}

static void
journal_remove (SysctrContext *ctx, const char *name)
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

static gboolean
was_completed (const char *name, const char *op)
{
  return completed_ops && g_strcmp0 (g_hash_table_lookup (completed_ops, name), op) == 0;
}

/* A unit of this name that sysctr did not write for this container, in
 * any directory systemd loads units from, makes install refuse. */
static gboolean
check_unit_conflicts (SysctrContext *ctx, const char *name, GError **error)
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

static json_t *
values_to_json (GHashTable *values)
{
  json_t *o = json_object ();
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, values);
  while (g_hash_table_iter_next (&it, &k, &v))
    json_object_set_new (o, k, json_string (v));
  return o;
}

static GHashTable *
json_to_values (json_t *o)
{
  GHashTable *t = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  const char *k;
  json_t *v;
  json_object_foreach (o, k, v)
    if (json_is_string (v))
      g_hash_table_replace (t, g_strdup (k), g_strdup (json_string_value (v)));
  return t;
}

static char *
iso_now (void)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  return g_date_time_format_iso8601 (now);
}

static char *
other_slot (const char *name, const char *slot)
{
  return g_strdup_printf ("%s.%c", name, g_str_has_suffix (slot, ".0") ? '1' : '0');
}

/* A deployment is built in containers/.SLOT.staging and renamed onto @slot
 * only once it is complete (info.json written last): until then the old
 * content of @slot, the rollback target, stays as it was, and a failed
 * render or a full disk lose nothing. */
/* What a new deployment carries over from the running one (an update):
 * its grant, widened only by what this command line grants, and the host
 * directories it created. */
typedef struct
{
  json_t *previous_grant;   /* NULL at install */
  json_t *previous_created; /* NULL at install */
  SysctrGrantOptions options;
} DeployRequest;

static gboolean write_deployment_into (SysctrContext *ctx, const char *name, const char *slot, int slot_dfd,
                                       const SysctrImage *image, GHashTable *set, GHashTable *previous,
                                       const char *runtime, json_t *pull_json, const DeployRequest *grant,
                                       json_t **out_info, GError **error);

static gboolean
write_deployment (SysctrContext *ctx, const char *name, const char *slot, const SysctrImage *image, GHashTable *set,
                  GHashTable *previous, const char *runtime, json_t *pull_json, const DeployRequest *grant,
                  json_t **out_info, GError **error)
{
  g_autofree char *staging = g_strdup_printf ("containers/.%s.staging", slot);
  g_autofree char *slot_rel = g_strdup_printf ("containers/%s", slot);
  if (!sysctr_rm_rf_at (ctx->state_dfd, staging, error))
    return FALSE;
  if (mkdirat (ctx->state_dfd, staging, 0700) < 0)
    return sysctr_throw_errno (error, "creating %s", staging);
  gboolean ok;
  {
    sysctr_autofd int slot_dfd = -1;
    ok = sysctr_opendir_at (ctx->state_dfd, staging, FALSE, &slot_dfd, error)
         && write_deployment_into (ctx, name, slot, slot_dfd, image, set, previous, runtime, pull_json, grant, out_info,
                                   error);
  }
  /* Host files the admin or another container owns are never
   * overwritten: checked while the slot still holds the rollback target,
   * so a refusal leaves everything as it was. */
  if (ok && !sysctr_host_files_check (ctx, name, *out_info, error))
    {
      g_clear_pointer (out_info, json_decref);
      ok = FALSE;
    }
  if (ok)
    {
      ok = sysctr_rm_rf_at (ctx->state_dfd, slot_rel, error);
      sysctr_crash_point ("deploy-cleared");
      if (ok && renameat (ctx->state_dfd, staging, ctx->state_dfd, slot_rel) < 0)
        ok = sysctr_throw_errno (error, "renaming the new deployment to %s", slot_rel);
    }
  if (!ok)
    (void) sysctr_rm_rf_at (ctx->state_dfd, staging, NULL);
  return ok;
}

/* Units of the installed containers (their active deployments): ordering
 * against them or depending on them asks for nothing. */
static GHashTable *
sysctr_units_table (SysctrContext *ctx)
{
  GHashTable *t = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GPtrArray) names = NULL;
  if (!sysctr_containers_list (ctx, &names, NULL))
    return t;
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *slot = NULL;
      g_autoptr (json_t) info = NULL;
      if (!sysctr_container_active_slot (ctx, names->pdata[i], &slot, NULL) || slot == NULL
          || !sysctr_container_read_info (ctx, slot, &info, NULL))
        continue;
      size_t k;
      json_t *u;
      json_array_foreach (json_object_get (info, "units"), k, u)
        if (json_is_string (u))
          g_hash_table_add (t, g_strdup (json_string_value (u)));
    }
  return t;
}

/* Shows what the image asks for; fails (naming the flags that would
 * grant it) when the grant does not cover it. *out_grant: what the new
 * deployment is granted. */
static gboolean
check_grant (const char *name, const SysctrImage *image, json_t *asks, const DeployRequest *req, json_t **out_grant,
             GError **error)
{
  g_autoptr (json_t) grant
      = sysctr_privileges_grant (asks, req->previous_grant, req->options.allow, req->options.privileged);
  g_autoptr (json_t) missing = sysctr_privileges_missing (asks, grant);
  /* what the admin consented to, on stdout; what is refused, on stderr
   * before the one-line error */
  if (json_object_size (missing) > 0)
    {
      g_autofree char *lines = sysctr_privileges_describe (missing, "  ");
      g_printerr ("%s: %s %s:\n%s", name, image->reference,
                  req->previous_grant ? "asks for more than was granted" : "asks for", lines);
    }
  else if (json_object_size (asks) > 0)
    {
      g_autofree char *lines = sysctr_privileges_describe (asks, "  ");
      g_print ("%s: %s is granted:\n%s", name, image->reference, lines);
    }
  if (json_object_size (missing) > 0)
    {
      g_autofree char *names = sysctr_privileges_names (missing);
      if (req->previous_grant)
        return sysctr_throw (error, SYSCTR_ERROR_NOT_GRANTED,
                             "%s: not updated to %s: it asks for more than was granted (%s, listed above); the "
                             "running deployment stays; grant it with \"sysctr update --allow=%s %s\" or --privileged",
                             name, image->manifest_digest, names, names, name);
      return sysctr_throw (error, SYSCTR_ERROR_NOT_GRANTED,
                           "%s: not installed: the image asks for privileges that were not granted (%s, listed "
                           "above); grant them with --allow=%s or --privileged",
                           name, names, names);
    }
  *out_grant = g_steal_pointer (&grant);
  return TRUE;
}

/* A hostfs file, streamed from the rootfs into the deployment's rendered
 * copies, hashed on the way (never held in memory). */
static gboolean
copy_from_rootfs (int rootfs_dfd, const char *source, int slot_dfd, const char *rel, guint32 mode, char **out_sha,
                  GError **error)
{
  sysctr_autofd int path_fd = -1;
  if (!sysctr_open_in_root (rootfs_dfd, source, FALSE, FALSE, &path_fd, error))
    return FALSE;
  g_autofree char *proc = g_strdup_printf ("/proc/self/fd/%d", path_fd);
  sysctr_autofd int src = open (proc, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  struct stat st;
  if (src < 0 || fstat (src, &st) < 0)
    return sysctr_throw_errno (error, "hostfs %s", source);
  if (!S_ISREG (st.st_mode) || (guint64) st.st_size > SYSCTR_HOSTFS_MAX_FILE)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "hostfs %s: not a regular file within the size limit", source);
  sysctr_autofd int dst = openat (slot_dfd, rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (dst < 0)
    return sysctr_throw_errno (error, "creating %s", rel);
  g_autoptr (SysctrSha256) h = sysctr_sha256_new ();
  char buf[65536];
  guint64 copied = 0;
  for (;;)
    {
      ssize_t n = read (src, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return sysctr_throw_errno (error, "reading hostfs %s", source);
      if (n == 0)
        break;
      copied += n;
      if (copied > SYSCTR_HOSTFS_MAX_FILE)
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "hostfs %s: grew past the size limit", source);
      sysctr_sha256_update (h, buf, n);
      for (ssize_t off = 0; off < n;)
        {
          ssize_t w = write (dst, buf + off, n - off);
          if (w < 0 && errno == EINTR)
            continue;
          if (w < 0)
            return sysctr_throw_errno (error, "writing %s", rel);
          off += w;
        }
    }
  if (fchmod (dst, mode) < 0 || fsync (dst) < 0)
    return sysctr_throw_errno (error, "writing %s", rel);
  g_autofree char *digest = sysctr_sha256_digest (h);
  *out_sha = g_strdup (digest + strlen ("sha256:"));
  return TRUE;
}

/* What the shim would refuse at start is refused now: it validates the
 * bundle being built (containers/.SLOT.staging) exactly as a start does,
 * with nothing privileged, and keeps the compiled seccomp filter there. */
static gboolean
shim_check (SysctrContext *ctx, const char *name, const char *slot, SysctrRendered *r, GError **error)
{
  g_autofree char *bundle
      = g_strdup_printf ("%s%s/.%s.staging", ctx->live ? "" : ctx->root, SYSCTR_CONTAINERS_DIR, slot);
  g_autofree char *bundle_arg = g_strdup_printf ("--bundle=%s", bundle);
  g_autofree char *root_arg = g_strdup_printf ("--root=%s", ctx->root);
  g_autofree char *name_arg = g_strdup_printf ("--name=%s", name);
  const char *argv[] = { SYSCTR_SHIM_PATH, "--check", bundle_arg, name_arg, ctx->live ? NULL : root_arg, NULL };
  sysctr_debug ("%s: %s --check %s %s %s", name, SYSCTR_SHIM_PATH, bundle_arg, name_arg, ctx->live ? "" : root_arg);
  if (access (SYSCTR_SHIM_PATH, X_OK) != 0)
    return sysctr_throw_errno (error, "%s (sysctr-shim, named by every unit)", SYSCTR_SHIM_PATH);
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int status = 0;
  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, error))
    return FALSE;
  if (!g_spawn_check_wait_status (status, NULL))
    {
      /* its last line says what and why */
      g_strstrip (err);
      const char *last = strrchr (err, '\n');
      last = last ? last + 1 : err;
      if (g_str_has_prefix (last, "sysctr-shim: "))
        last += strlen ("sysctr-shim: ");
      g_autofree char *shown = sysctr_printable (*last ? last : "failed without a message");
      return sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s would not start: %s", name, shown);
    }
  /* a bind source that is not there yet must be one the container's host
   * files or tmpfiles.d lines make; anything else would fail at start */
  g_auto (GStrv) lines = g_strsplit (out, "\n", -1);
  for (char **l = lines; *l; l++)
    {
      if (!g_str_has_prefix (*l, "missing-bind-source "))
        continue;
      /* as render made and tracked it: "/var/run/" is "/run" */
      g_autofree char *path = sysctr_bind_source_canonical (*l + strlen ("missing-bind-source "));
      /* a tree being built has no /dev, /sys, /proc, /run: they come at boot */
      if (!ctx->live && sysctr_bind_source_made_at_boot (path))
        continue;
      if (!sysctr_rendered_provides (r, path))
        {
          g_autofree char *shown = sysctr_printable (path);
          return sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s would not start: bind source %s does not exist", name,
                               shown);
        }
    }
  return TRUE;
}

static gboolean
write_deployment_into (SysctrContext *ctx, const char *name, const char *slot, int slot_dfd, const SysctrImage *image,
                       GHashTable *set, GHashTable *previous, const char *runtime, json_t *pull_json,
                       const DeployRequest *grant_req, json_t **out_info, GError **error)
{
  if (!sysctr_deploy_rootfs (ctx->repo, image->layers, slot_dfd, NULL, error))
    return FALSE;
  sysctr_crash_point ("deploy-rootfs");
  sysctr_autofd int rootfs_dfd = -1;
  if (!sysctr_opendir_at (slot_dfd, "rootfs", FALSE, &rootfs_dfd, error))
    return FALSE;

  g_autofree char *slot_path = g_strdup_printf ("%s/%s", SYSCTR_CONTAINERS_DIR, slot);
  g_autoptr (GHashTable) sysctr_units = sysctr_units_table (ctx);
  SysctrRenderInput in = {
    .name = name,
    .image = image,
    .rootfs_dfd = rootfs_dfd,
    .slot_path = slot_path,
    .set = set,
    .previous = previous,
    .runtime = runtime,
    .shim_path = SYSCTR_SHIM_PATH,
    .sysctr_units = sysctr_units,
    .root_dfd = ctx->root_dfd,
    .live = ctx->live,
    .previous_created = grant_req->previous_created,
  };
  g_autoptr (SysctrRendered) r = sysctr_render (&in, error);
  if (r == NULL)
    return FALSE;
  for (guint i = 0; i < r->warnings->len; i++)
    g_printerr ("warning: %s: %s\n", name, (char *) r->warnings->pdata[i]);
  g_autoptr (json_t) granted = NULL;
  if (!check_grant (name, image, r->asks, grant_req, &granted, error))
    return FALSE;

  g_autofree char *config = sysctr_json_dump (r->config, TRUE);
  if (!sysctr_write_file_at (slot_dfd, "config.json", config, strlen (config), 0600, error))
    return FALSE;
  if (g_strcmp0 (r->runtime_path, SYSCTR_SHIM_PATH) == 0 && !shim_check (ctx, name, slot, r, error))
    return FALSE;

  json_t *files = json_array ();
  g_autoptr (json_t) info = json_object ();
  json_object_set_new (info, "files", files);
  for (guint i = 0; i < r->files->len; i++)
    {
      SysctrHostFile *f = r->files->pdata[i];
      g_autofree char *rel = g_strdup_printf ("rendered%s", f->path);
      g_autofree char *dir = g_path_get_dirname (rel);
      g_autofree char *sha = NULL;
      if (!sysctr_mkdir_p_at (slot_dfd, dir, 0700, error))
        return FALSE;
      if (f->data)
        {
          gsize len;
          const void *data = g_bytes_get_data (f->data, &len);
          if (!sysctr_write_file_at (slot_dfd, rel, data, len, f->mode, error))
            return FALSE;
          sha = file_sha256 (f->data);
        }
      else if (!copy_from_rootfs (rootfs_dfd, f->source, slot_dfd, rel, f->mode, &sha, error))
        return FALSE;
      json_array_append_new (files,
                             json_pack ("{s:s, s:s, s:i}", "path", f->path, "sha256", sha, "mode", (int) f->mode));
    }

  json_t *units = json_array ();
  for (guint i = 0; i < r->units->len; i++)
    json_array_append_new (units, json_string (r->units->pdata[i]));
  json_t *layers = json_array ();
  for (guint i = 0; image->layers[i]; i++)
    json_array_append_new (layers, json_string (image->layers[i]));
  g_autofree char *now = iso_now ();
  json_object_set_new (info, "format", json_integer (SYSCTR_INFO_FORMAT));
  json_object_set_new (info, "name", json_string (name));
  json_object_set_new (info, "slot", json_string (slot));
  json_object_set_new (info, "created", json_string (now));
  json_object_set_new (info, "image",
                       json_pack ("{s:s, s:s, s:s, s:s, s:o}", "reference", image->reference, "manifest_digest",
                                  image->manifest_digest, "commit", image->commit, "platform", image->platform,
                                  "layers", layers));
  json_object_set_new (info, "values", values_to_json (r->values));
  json_object_set_new (info, "set", set ? values_to_json (set) : json_object ());
  json_object_set_new (info, "runtime", json_string (runtime ? runtime : "sysctr-shim"));
  json_object_set_new (info, "runtime_path", json_string (r->runtime_path));
  json_object_set_new (info, "shim_path", json_string (SYSCTR_SHIM_PATH));
  json_object_set_new (info, "pull_options", json_incref (pull_json));
  json_object_set_new (info, "units", units);
  json_object_set_new (info, "enable", r->enable_unit ? json_string (r->enable_unit) : json_null ());
  json_object_set_new (info, "state_path", json_string (r->state_path));
  json_object_set_new (info, "privileges", json_pack ("{s:O, s:O}", "asked", r->asks, "granted", granted));
  json_object_set (info, "created", r->created);
  /* with the host's network there is nothing to publish: shown, not done */
  json_t *ports = json_object_get (json_object_get (image->config, "config"), "ExposedPorts");
  json_t *port_list = json_array ();
  const char *port;
  json_t *pv;
  json_object_foreach (ports, port, pv)
    json_array_append_new (port_list, json_string (port));
  json_object_set_new (info, "exposed_ports", port_list);
  g_autofree char *text = sysctr_json_dump (info, TRUE);
  sysctr_crash_point ("deploy-before-info");
  if (!sysctr_write_file_at (slot_dfd, "info.json", text, strlen (text), 0600, error))
    return FALSE;
  *out_info = g_steal_pointer (&info);
  return TRUE;
}

/* The commit point: a new symlink renamed over the old one. */
static gboolean
switch_symlink (SysctrContext *ctx, const char *name, const char *slot, GError **error)
{
  g_autofree char *tmp = g_strdup_printf ("containers/.%s.link-%d", name, (int) getpid ());
  g_autofree char *dst = g_strdup_printf ("containers/%s", name);
  (void) unlinkat (ctx->state_dfd, tmp, 0);
  if (symlinkat (slot, ctx->state_dfd, tmp) < 0)
    return sysctr_throw_errno (error, "creating symlink for %s", name);
  if (renameat (ctx->state_dfd, tmp, ctx->state_dfd, dst) < 0)
    {
      int errsv = errno;
      (void) unlinkat (ctx->state_dfd, tmp, 0);
      errno = errsv;
      return sysctr_throw_errno (error, "switching %s to %s", name, slot);
    }
  sysctr_autofd int dfd = openat (ctx->state_dfd, "containers", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0)
    (void) fsync (dfd);
  sysctr_crash_point ("symlink-switched");
  return TRUE;
}

static const char *
recorded_sha (json_t *info, const char *path)
{
  size_t i;
  json_t *f;
  json_array_foreach (json_object_get (info, "files"), i, f)
    if (g_strcmp0 (sysctr_json_get_string (f, "path"), path) == 0)
      return sysctr_json_get_string (f, "sha256");
  return NULL;
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
static gboolean
offline_disable_unit (SysctrContext *ctx, const char *unit, GError **error)
{
  g_autofree char *unit_path = g_strdup_printf ("/etc/systemd/system/%s", unit);
  sysctr_autofd int path_fd = -1;
  g_autoptr (GError) local_error = NULL;
  if (!sysctr_open_in_root (ctx->root_dfd, "/etc/systemd/system", FALSE, FALSE, &path_fd, &local_error))
    {
      if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
        return TRUE;
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  sysctr_autofd int dfd = openat (path_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
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

static gboolean
offline_enable (SysctrContext *ctx, json_t *info, gboolean enable, GError **error)
{
  const char *unit = sysctr_json_get_string (info, "enable");
  const char *slot = sysctr_json_get_string (info, "slot");
  if (unit == NULL)
    return TRUE;
  if (!enable)
    return offline_disable_unit (ctx, unit, error);
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

static gboolean
run_tmpfiles (SysctrContext *ctx, const char *name, const char *action, GError **error)
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

static json_t *
pull_options_json (const SysctrPullOptions *pull)
{
  return json_pack ("{s:b, s:s?, s:s?}", "tls_verify", pull ? pull->tls_verify : TRUE, "authfile",
                    pull ? pull->authfile : NULL, "platform", pull ? pull->platform : NULL);
}

static void
pull_options_from_json (json_t *j, SysctrPullOptions *opts)
{
  sysctr_pull_options_init (opts);
  json_t *tv = json_object_get (j, "tls_verify");
  opts->tls_verify = tv ? json_is_true (tv) : TRUE;
  opts->authfile = g_strdup (sysctr_json_get_string (j, "authfile"));
  opts->platform = g_strdup (sysctr_json_get_string (j, "platform"));
  opts->quiet = TRUE;
}

/* Uses the image from the store when the reference is there. */
static gboolean
get_image (SysctrContext *ctx, const char *reference, const SysctrPullOptions *pull, gboolean force_pull,
           SysctrImage **out, GError **error)
{
  g_autoptr (SysctrRef) ref = sysctr_ref_parse (reference, error);
  if (ref == NULL)
    return FALSE;
  g_autofree char *canonical = sysctr_ref_to_string (ref);
  if (!force_pull)
    {
      if (!sysctr_store_lookup_image (ctx->repo, canonical, out, error))
        return FALSE;
      if (*out)
        return TRUE;
    }
  SysctrPullOptions defaults;
  sysctr_pull_options_init (&defaults);
  return sysctr_pull (ctx, reference, pull ? pull : &defaults, out, NULL, error);
}

static gboolean
ensure_sd (SysctrContext *ctx, SysctrSystemd **sd, GError **error)
{
  if (!ctx->live || *sd != NULL)
    return TRUE;
  *sd = sysctr_systemd_connect (error);
  return *sd != NULL;
}

/* After the commit point of an install: host files, enablement, tmpfiles. */
static gboolean
finish_install (SysctrContext *ctx, SysctrSystemd **sd, const char *name, json_t *info, GError **error)
{
  if (!sysctr_host_files_apply (ctx, name, info, NULL, TRUE, NULL, error))
    return FALSE;
  sysctr_crash_point ("install-host-files");
  if (!ctx->live)
    return offline_enable (ctx, info, TRUE, error);
  if (!ensure_sd (ctx, sd, error) || !sysctr_systemd_reload (*sd, error))
    return FALSE;
  const char *unit = sysctr_json_get_string (info, "enable");
  if (unit && !sysctr_systemd_enable (*sd, unit, error))
    return FALSE;
  return run_tmpfiles (ctx, name, "--create", error);
}

/* After the commit point of an update or a rollback: host files swapped,
 * enablement moved, systemd reloaded. */
static gboolean
finish_switch (SysctrContext *ctx, SysctrSystemd **sd, const char *name, json_t *old_info, json_t *new_info,
               GError **error)
{
  if (!sysctr_host_files_apply (ctx, name, new_info, old_info, TRUE, NULL, error))
    return FALSE;
  sysctr_crash_point ("switch-host-files");
  if (!ctx->live)
    {
      if (old_info && !offline_enable (ctx, old_info, FALSE, error))
        return FALSE;
      sysctr_crash_point ("switch-disabled-old");
      return offline_enable (ctx, new_info, TRUE, error) && sysctr_host_dirs_prune (ctx, error);
    }
  if (!ensure_sd (ctx, sd, error) || !sysctr_systemd_reload (*sd, error))
    return FALSE;
  /* Units the new deployment no longer has (a socket dropped by an update)
   * stay loaded and running until stopped; a socket whose file changed
   * (another ListenStream=) listens on the old address until restarted.
   * Services are restarted by the caller, if they were running. */
  size_t i;
  json_t *u;
  json_array_foreach (old_info ? json_object_get (old_info, "units") : NULL, i, u)
    {
      const char *unit = json_string_value (u);
      gboolean kept = FALSE;
      size_t k;
      json_t *nu;
      json_array_foreach (json_object_get (new_info, "units"), k, nu)
        kept |= g_strcmp0 (json_string_value (nu), unit) == 0;
      g_autoptr (GError) local_error = NULL;
      if (unit && !kept
          && (!sysctr_systemd_job (*sd, "StopUnit", unit, &local_error)
              || !sysctr_systemd_reset_failed (*sd, unit, &local_error)))
        g_printerr ("warning: %s\n", local_error->message);
    }
  json_array_foreach (json_object_get (new_info, "units"), i, u)
    {
      const char *unit = json_string_value (u);
      if (unit == NULL || !g_str_has_suffix (unit, ".socket") || old_info == NULL)
        continue;
      g_autofree char *path = g_strdup_printf ("/etc/systemd/system/%s", unit);
      const char *was = recorded_sha (old_info, path);
      if (was == NULL || g_strcmp0 (was, recorded_sha (new_info, path)) == 0)
        continue;
      g_autofree char *state = sysctr_systemd_active_state (*sd, unit, NULL);
      g_autoptr (GError) local_error = NULL;
      if (g_strcmp0 (state, "active") == 0 && !sysctr_systemd_job (*sd, "RestartUnit", unit, &local_error))
        g_printerr ("warning: %s\n", local_error->message);
    }
  const char *old_unit = old_info ? sysctr_json_get_string (old_info, "enable") : NULL;
  const char *new_unit = sysctr_json_get_string (new_info, "enable");
  if (g_strcmp0 (old_unit, new_unit) != 0)
    {
      g_autoptr (GError) local_error = NULL;
      if (old_unit && !sysctr_systemd_disable (*sd, old_unit, &local_error))
        g_printerr ("warning: %s\n", local_error->message);
      if (new_unit && !sysctr_systemd_enable (*sd, new_unit, error))
        return FALSE;
    }
  return run_tmpfiles (ctx, name, "--create", error) && sysctr_host_dirs_prune (ctx, error);
}

/* After the commit point of an uninstall (the NAME symlink is gone):
 * units stopped and disabled, host files removed, slots removed. @info may
 * be NULL when the slot's info.json is already gone (then the files were
 * removed already). */
static gboolean
finish_uninstall (SysctrContext *ctx, SysctrSystemd **sd, const char *name, const char *slot, json_t *info,
                  gboolean purge, GError **error)
{
  if (info)
    {
      if (ctx->live)
        {
          if (!ensure_sd (ctx, sd, error))
            return FALSE;
          /* the socket first, so nothing starts the service again */
          json_t *units = json_object_get (info, "units");
          for (ssize_t i = (ssize_t) json_array_size (units) - 1; i >= 0; i--)
            {
              const char *u = json_string_value (json_array_get (units, i));
              g_autoptr (GError) local_error = NULL;
              if (u && !sysctr_systemd_job (*sd, "StopUnit", u, &local_error))
                g_printerr ("warning: %s\n", local_error->message);
            }
          /* a unit that failed would stay loaded as "not-found failed"
           * after its files are gone, and keep the system degraded */
          for (size_t i = 0; i < json_array_size (units); i++)
            {
              const char *u = json_string_value (json_array_get (units, i));
              g_autoptr (GError) local_error = NULL;
              if (u && !sysctr_systemd_reset_failed (*sd, u, &local_error))
                g_printerr ("warning: %s\n", local_error->message);
            }
          const char *unit = sysctr_json_get_string (info, "enable");
          g_autoptr (GError) local_error = NULL;
          if (unit && !sysctr_systemd_disable (*sd, unit, &local_error))
            g_printerr ("warning: %s\n", local_error->message);
          g_autoptr (GError) tmpfiles_error = NULL;
          if (!run_tmpfiles (ctx, name, "--remove", &tmpfiles_error))
            g_printerr ("warning: %s\n", tmpfiles_error->message);
        }
      else if (!offline_enable (ctx, info, FALSE, error))
        return FALSE;
      sysctr_crash_point ("uninstall-disabled");
      g_autoptr (json_t) empty = json_pack ("{s:s, s:[]}", "slot", slot, "files");
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
      json_array_foreach (json_object_get (info, "created"), i, c)
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
  const char *state = info ? sysctr_json_get_string (info, "state_path") : NULL;
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
          g_print ("Removed state data %s\n", state);
        }
      else if (exists)
        g_print ("Kept state data in %s (remove it with --purge)\n", state);
    }
  if (!sysctr_host_dirs_prune (ctx, error))
    return FALSE;
  journal_remove (ctx, name);
  return TRUE;
}

static gboolean
start_units (SysctrContext *ctx, SysctrSystemd *sd, json_t *info, const char *method, GError **error)
{
  const char *unit = sysctr_json_get_string (info, "enable");
  if (unit == NULL)
    return TRUE;
  return sysctr_systemd_job (sd, method, unit, error);
}

static gboolean wait_settled (SysctrSystemd *sd, json_t *info, GError **error);

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

  g_autofree char *active = NULL;
  if (!sysctr_container_active_slot (ctx, name, &active, error))
    return FALSE;
  if (active && was_completed (name, "install"))
    {
      g_print ("Installed %s (completed an interrupted install)\n", name);
      return TRUE;
    }
  if (active)
    return sysctr_throw (error, SYSCTR_ERROR_EXISTS,
                         "%s is already installed (use \"sysctr update %s\" or uninstall it first)", name, name);
  if (!check_unit_conflicts (ctx, name, error))
    return FALSE;

  g_autoptr (SysctrSystemd) sd = NULL;
  if (!ensure_sd (ctx, &sd, error))
    return FALSE;

  g_autoptr (SysctrImage) image = NULL;
  if (!get_image (ctx, opts->image, opts->pull, FALSE, &image, error))
    return FALSE;

  /* No symlink: whatever slots exist are leftovers of an interrupted run. */
  g_autofree char *slot = g_strdup_printf ("%s.0", name);
  g_autofree char *slot_rel = g_strdup_printf ("containers/%s", slot);
  g_autofree char *other = g_strdup_printf ("containers/%s.1", name);
  if (!sysctr_rm_rf_at (ctx->state_dfd, other, error))
    return FALSE;
  g_autoptr (json_t) pull_json = pull_options_json (opts->pull);
  g_autoptr (json_t) info = NULL;
  DeployRequest grant = { .previous_grant = NULL, .options = opts->grant };
  if (!write_deployment (ctx, name, slot, image, opts->set, NULL, opts->runtime, pull_json, &grant, &info, error))
    {
      (void) sysctr_rm_rf_at (ctx->state_dfd, slot_rel, NULL);
      return FALSE;
    }

  if (!journal_write (ctx, name, "install", slot, NULL, FALSE, error))
    {
      (void) sysctr_rm_rf_at (ctx->state_dfd, slot_rel, NULL);
      return FALSE;
    }
  if (!switch_symlink (ctx, name, slot, error))
    {
      journal_remove (ctx, name);
      (void) sysctr_rm_rf_at (ctx->state_dfd, slot_rel, NULL);
      return FALSE;
    }
  if (!finish_install (ctx, &sd, name, info, error))
    return FALSE;
  journal_remove (ctx, name);
  if (opts->now && (!start_units (ctx, sd, info, "StartUnit", error) || !wait_settled (sd, info, error)))
    {
      g_prefix_error (error, "%s was installed, but ", name);
      return FALSE;
    }
  g_print ("Installed %s from %s (%s)\n", name, image->reference, image->manifest_digest);
  return TRUE;
}

static gboolean
read_active (SysctrContext *ctx, const char *name, char **out_slot, json_t **out_info, GError **error)
{
  if (!sysctr_name_valid (name))
    {
      g_autofree char *shown = g_strescape (name, NULL);
      return sysctr_throw (error, SYSCTR_ERROR_INVALID, "invalid container name \"%.80s\"", shown);
    }
  g_autofree char *slot = NULL;
  if (!sysctr_container_active_slot (ctx, name, &slot, error))
    return FALSE;
  if (slot == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_NOT_FOUND, "%s is not installed", name);
  if (!sysctr_container_read_info (ctx, slot, out_info, error))
    return FALSE;
  *out_slot = g_steal_pointer (&slot);
  return TRUE;
}

gboolean
sysctr_uninstall (SysctrContext *ctx, const char *name, gboolean purge, GError **error)
{
  g_autofree char *slot = NULL;
  g_autoptr (json_t) info = NULL;
  if (sysctr_name_valid (name) && was_completed (name, "uninstall"))
    {
      g_autofree char *active = NULL;
      if (sysctr_container_active_slot (ctx, name, &active, NULL) && active == NULL)
        {
          g_print ("Uninstalled %s (completed an interrupted uninstall)\n", name);
          return TRUE;
        }
    }
  if (!read_active (ctx, name, &slot, &info, error))
    return FALSE;
  g_autoptr (SysctrSystemd) sd = NULL;
  if (!ensure_sd (ctx, &sd, error))
    return FALSE;

  if (!journal_write (ctx, name, "uninstall", slot, NULL, purge, error))
    return FALSE;
  /* The commit point of uninstall; what follows is redone by reconcile. */
  g_autofree char *link = g_strdup_printf ("containers/%s", name);
  if (unlinkat (ctx->state_dfd, link, 0) < 0)
    {
      int errsv = errno;
      journal_remove (ctx, name);
      errno = errsv;
      return sysctr_throw_errno (error, "removing %s", link);
    }
  sysctr_crash_point ("uninstall-unlinked");
  if (!finish_uninstall (ctx, &sd, name, slot, info, purge, error))
    return FALSE;
  g_print ("Uninstalled %s (the image stays in the store until \"sysctr images prune --all\")\n", name);
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
      g_printerr ("warning: %s: ignoring a corrupt journal %s\n", name, rel);
      journal_remove (ctx, name);
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
          if (!finish_uninstall (ctx, sd, name, slot, info, json_is_true (json_object_get (j, "purge")), error))
            return FALSE;
          g_printerr ("%s: completed an interrupted uninstall\n", name);
          note_completed (name, op);
          *out_changed = TRUE;
        }
      journal_remove (ctx, name);
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
      g_printerr ("%s: discarded an interrupted %s\n", name, op);
      journal_remove (ctx, name);
      return TRUE;
    }
  g_autoptr (json_t) info = NULL;
  if (!sysctr_container_read_info (ctx, slot, &info, error))
    return FALSE;
  if (strcmp (op, "install") == 0)
    {
      if (!finish_install (ctx, sd, name, info, error))
        return FALSE;
    }
  else
    {
      g_autoptr (json_t) old_info = NULL;
      if (from)
        (void) sysctr_container_read_info (ctx, from, &old_info, NULL);
      if (!finish_switch (ctx, sd, name, old_info, info, error))
        return FALSE;
    }
  g_printerr ("%s: completed an interrupted %s (now %s)\n", name, op, slot);
  note_completed (name, op);
  *out_changed = TRUE;
  journal_remove (ctx, name);
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
        g_printerr ("warning: %s: an interrupted operation could not be completed yet: %s\n",
                    (char *) journals->pdata[i], local_error->message);
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
      g_printerr ("%s: removed %s left by an interrupted install or uninstall\n", owner, s);
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
      if (!read_active (ctx, name, &slot, &info, &local_error))
        {
          g_printerr ("warning: %s: %s\n", name, local_error->message);
          continue;
        }
      g_autofree char *other_name = other_slot (name, slot);
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
          g_printerr ("warning: %s: its host files do not match %s: %s\n", name, slot, apply_error->message);
          continue;
        }
      if (changed)
        {
          g_printerr ("%s: completed an interrupted change (host files now match %s)\n", name, slot);
          changed_any = TRUE;
          if (!ctx->live && !offline_enable (ctx, info, TRUE, error))
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
        && (unit_dfd = openat (unit_dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0)
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
      if (!ctx->live && !offline_disable_unit (ctx, fn, error))
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
      g_printerr ("%s: removed %s left by an interrupted uninstall\n", owner, path);
      changed_any = TRUE;
    }
  if (changed_any && !sysctr_host_dirs_prune (ctx, error))
    return FALSE;
  if (changed_any && ctx->live)
    {
      if (!ensure_sd (ctx, &sd, error) || !sysctr_systemd_reload (sd, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
unit_is_active (SysctrSystemd *sd, json_t *info)
{
  json_t *units = json_object_get (info, "units");
  const char *service = json_string_value (json_array_get (units, 0));
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
static gboolean
wait_settled (SysctrSystemd *sd, json_t *info, GError **error)
{
  if (sd == NULL)
    return TRUE;
  json_t *units = json_object_get (info, "units");
  const char *service = json_string_value (json_array_get (units, 0));
  const char *enabled = sysctr_json_get_string (info, "enable");
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
            g_printerr ("%s logged last:\n%s", service, tail);
          return sysctr_throw (error, SYSCTR_ERROR_FAILED, "%s did not stay up: %s (%s) %.1f s after it started",
                               service, why, sub ? sub : "unknown", (g_get_monotonic_time () - start) / 1e6);
        }
      if (g_get_monotonic_time () >= deadline)
        return TRUE;
      g_usleep (200 * 1000);
    }
}

/* Switch NAME to @new_info's slot: journal, symlink, host files, reload,
 * restart if it was running. */
static gboolean
switch_to (SysctrContext *ctx, SysctrSystemd **sd, const char *name, const char *op, json_t *old_info, json_t *new_info,
           gboolean restart, GError **error)
{
  const char *new_slot = sysctr_json_get_string (new_info, "slot");
  const char *old_slot = sysctr_json_get_string (old_info, "slot");
  if (!journal_write (ctx, name, op, new_slot, old_slot, FALSE, error))
    return FALSE;
  if (!switch_symlink (ctx, name, new_slot, error))
    {
      journal_remove (ctx, name);
      return FALSE;
    }
  if (!finish_switch (ctx, sd, name, old_info, new_info, error))
    return FALSE;
  journal_remove (ctx, name);
  if (ctx->live && restart)
    {
      json_t *units = json_object_get (new_info, "units");
      const char *service = json_string_value (json_array_get (units, 0));
      if (service && !sysctr_systemd_job (*sd, "RestartUnit", service, error))
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
  if (!read_active (ctx, name, &slot, &info, error))
    return FALSE;
  json_t *image_info = json_object_get (info, "image");
  const char *reference = opts->rebase ? opts->rebase : sysctr_json_get_string (image_info, "reference");
  /* The options kept at install, with what this command line says on top:
   * an update re-resolves the reference the same way it was installed. */
  SysctrPullOptions stored;
  pull_options_from_json (json_object_get (info, "pull_options"), &stored);
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
      stored.creds = g_strdup (opts->pull->creds); /* used, never kept */
      stored.quiet = opts->pull->quiet;
    }
  const SysctrPullOptions *pull = &stored;

  g_autoptr (SysctrImage) image = NULL;
  gboolean ok;
  if (opts->no_pull)
    {
      /* the store only: never the network */
      g_autoptr (SysctrRef) ref = sysctr_ref_parse (reference, error);
      g_autofree char *canonical = ref ? sysctr_ref_to_string (ref) : NULL;
      ok = canonical != NULL && sysctr_store_lookup_image (ctx->repo, canonical, &image, error);
      if (ok && image == NULL)
        ok = sysctr_throw (error, SYSCTR_ERROR_NOT_FOUND, "%s is not in the store (--no-pull)", reference);
    }
  else
    /* the installed reference is resolved again; a --rebase target is
     * taken from the store when it is there */
    ok = get_image (ctx, reference, pull, opts->rebase == NULL, &image, error);
  if (!ok)
    {
      sysctr_pull_options_clear (&stored);
      return FALSE;
    }
  sysctr_crash_point ("update-image-ready");
  g_assert (image != NULL);

  g_autoptr (GHashTable) set = json_to_values (json_object_get (info, "set"));
  if (opts->set)
    {
      GHashTableIter it;
      gpointer k, v;
      g_hash_table_iter_init (&it, opts->set);
      while (g_hash_table_iter_next (&it, &k, &v))
        g_hash_table_replace (set, g_strdup (k), g_strdup (v));
    }
  g_autoptr (GHashTable) old_set = json_to_values (json_object_get (info, "set"));
  gboolean same_values = g_hash_table_size (set) == g_hash_table_size (old_set);
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, set);
  while (same_values && g_hash_table_iter_next (&it, &k, &v))
    same_values = g_strcmp0 (g_hash_table_lookup (old_set, k), v) == 0;
  if (same_values && g_strcmp0 (image->manifest_digest, sysctr_json_get_string (image_info, "manifest_digest")) == 0
      && g_strcmp0 (image->reference, sysctr_json_get_string (image_info, "reference")) == 0)
    {
      g_print ("%s: already up to date (%s)\n", name, image->manifest_digest);
      sysctr_pull_options_clear (&stored);
      return TRUE;
    }

  g_autoptr (SysctrSystemd) sd = NULL;
  if (!ensure_sd (ctx, &sd, error))
    {
      sysctr_pull_options_clear (&stored);
      return FALSE;
    }
  gboolean was_running = unit_is_active (sd, info);

  g_autofree char *new_slot = other_slot (name, slot);
  g_autoptr (GHashTable) previous = json_to_values (json_object_get (info, "values"));
  g_autoptr (json_t) pull_json = pull_options_json (pull);
  sysctr_pull_options_clear (&stored);
  g_autoptr (json_t) new_info = NULL;
  /* the running deployment's grant: an update never widens it unless this
   * command line says so */
  json_t *kept = json_object_get (json_object_get (info, "privileges"), "granted");
  /* a deployment from before grants were recorded was granted nothing */
  g_autoptr (json_t) previous_grant = json_is_object (kept) ? json_incref (kept) : json_object ();
  DeployRequest grant = {
    .previous_grant = previous_grant,
    .previous_created = json_object_get (info, "created"),
    .options = opts->grant,
  };
  if (!write_deployment (ctx, name, new_slot, image, set, previous, sysctr_json_get_string (info, "runtime"), pull_json,
                         &grant, &new_info, error))
    return FALSE; /* the other slot, the rollback target, is untouched */
  g_autoptr (GError) switch_error = NULL;
  if (!switch_to (ctx, &sd, name, "update", info, new_info, was_running, &switch_error)
      || (opts->gate && was_running && !wait_settled (sd, new_info, &switch_error)))
    {
      if (!(opts->gate && was_running))
        {
          g_propagate_error (error, g_steal_pointer (&switch_error));
          return FALSE;
        }
      g_printerr ("%s: the new deployment did not come up (%s); rolling back to %s\n", name, switch_error->message,
                  slot);
      if (!switch_to (ctx, &sd, name, "rollback", new_info, info, TRUE, error))
        return FALSE;
      return sysctr_throw (error, SYSCTR_ERROR_FAILED, "update to %s rolled back: %s", image->manifest_digest,
                           switch_error->message);
    }
  *out_changed = TRUE;
  g_autoptr (GError) settle_error = NULL;
  if (was_running && !opts->gate && !wait_settled (sd, new_info, &settle_error))
    return sysctr_throw (error, SYSCTR_ERROR_FAILED, "%s was updated to %s, but %s (\"sysctr rollback %s\" goes back)",
                         name, image->manifest_digest, settle_error->message, name);
  g_print ("Updated %s to %s (%s)%s\n", name, image->reference, image->manifest_digest,
           was_running ? ", restarted" : "");
  return TRUE;
}

gboolean
sysctr_rollback (SysctrContext *ctx, const char *name, GError **error)
{
  g_autofree char *slot = NULL;
  g_autoptr (json_t) info = NULL;
  if (!read_active (ctx, name, &slot, &info, error))
    return FALSE;
  if (was_completed (name, "rollback"))
    {
      g_print ("Rolled back %s to %s (completed an interrupted rollback)\n", name, slot);
      return TRUE;
    }
  g_autofree char *other_name = other_slot (name, slot);
  g_autoptr (json_t) other = NULL;
  g_autoptr (GError) local_error = NULL;
  if (!sysctr_container_read_info (ctx, other_name, &other, &local_error))
    return sysctr_throw (error, SYSCTR_ERROR_NOT_FOUND, "%s has no previous deployment to roll back to", name);
  g_autoptr (SysctrSystemd) sd = NULL;
  if (!ensure_sd (ctx, &sd, error))
    return FALSE;
  gboolean was_running = unit_is_active (sd, info);
  if (!sysctr_host_files_check (ctx, name, other, error))
    return FALSE;
  if (!switch_to (ctx, &sd, name, "rollback", info, other, was_running, error))
    return FALSE;
  g_print ("Rolled back %s to %s (%s)\n", name, other_name,
           sysctr_json_get_string (json_object_get (other, "image"), "manifest_digest"));
  return TRUE;
}
