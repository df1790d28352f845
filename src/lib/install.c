#include "config.h"

#include "install.h"

#include "containers.h"
#include "deploy.h"
#include "pull.h"
#include "reference.h"
#include "render.h"
#include "store.h"
#include "systemd.h"

#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const char *unit_dirs[] = {
  "/etc/systemd/system", "/run/systemd/system", "/run/systemd/transient", "/usr/local/lib/systemd/system",
  "/usr/lib/systemd/system", "/lib/systemd/system", "/run/systemd/generator", "/run/systemd/generator.early",
  "/run/systemd/generator.late",
};

static char *
file_sha256 (GBytes *bytes)
{
  gsize len;
  const void *data = g_bytes_get_data (bytes, &len);
  return sysctr_sha256_hex (data, len);
}

/* Reads a host file under the root; NULL (no error) when absent. */
static GBytes *
read_host_file (SysctrContext *ctx, const char *path, GError **error)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  g_autoptr (GError) local_error = NULL;
  if (!sysctr_read_file_at (ctx->root_dfd, path + 1, 16 * 1024 * 1024, &data, &len, &local_error))
    {
      if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
        return NULL;
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  return g_bytes_new_take (g_steal_pointer (&data), len);
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
        if (fstatat (ctx->root_dfd, path + 1, &st, AT_SYMLINK_NOFOLLOW) < 0)
          continue;
        g_autoptr (GError) local_error = NULL;
        g_autoptr (GBytes) data = S_ISREG (st.st_mode) ? read_host_file (ctx, path, &local_error) : NULL;
        g_autofree char *owner = NULL;
        if (data)
          {
            gsize len;
            const char *p = g_bytes_get_data (data, &len);
            owner = sysctr_marker_owner (p, len);
          }
        if (g_strcmp0 (owner, name) != 0)
          return sysctr_throw (error, SYSCTR_ERROR_EXISTS, "unit %s.%s already exists at %s%s and was not written by sysctr; choose another --name",
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

/* Clears @slot and writes a complete deployment into it; info.json is
 * written last: a slot without it is incomplete and owns nothing. */
static gboolean
write_deployment (SysctrContext *ctx, const char *name, const char *slot, const SysctrImage *image, GHashTable *set,
                  GHashTable *previous, const char *runtime, json_t *pull_json, json_t **out_info, GError **error)
{
  g_autofree char *slot_rel = g_strdup_printf ("containers/%s", slot);
  if (!sysctr_rm_rf_at (ctx->state_dfd, slot_rel, error))
    return FALSE;
  sysctr_crash_point ("deploy-cleared");
  if (mkdirat (ctx->state_dfd, slot_rel, 0700) < 0)
    return sysctr_throw_errno (error, "creating %s", slot_rel);
  sysctr_autofd int slot_dfd = -1;
  if (!sysctr_opendir_at (ctx->state_dfd, slot_rel, FALSE, &slot_dfd, error))
    return FALSE;
  if (!sysctr_deploy_rootfs (ctx->repo, image->layers, slot_dfd, NULL, error))
    return FALSE;
  sysctr_crash_point ("deploy-rootfs");
  sysctr_autofd int rootfs_dfd = -1;
  if (!sysctr_opendir_at (slot_dfd, "rootfs", FALSE, &rootfs_dfd, error))
    return FALSE;

  g_autofree char *slot_path = g_strdup_printf ("%s/%s", SYSCTR_CONTAINERS_DIR, slot);
  SysctrRenderInput in = {
    .name = name,
    .image = image,
    .rootfs_dfd = rootfs_dfd,
    .slot_path = slot_path,
    .set = set,
    .previous = previous,
    .runtime = runtime,
    .shim_path = SYSCTR_SHIM_PATH,
  };
  g_autoptr (SysctrRendered) r = sysctr_render (&in, error);
  if (r == NULL)
    return FALSE;
  for (guint i = 0; i < r->warnings->len; i++)
    g_printerr ("warning: %s: %s\n", name, (char *) r->warnings->pdata[i]);

  g_autofree char *config = sysctr_json_dump (r->config, TRUE);
  if (!sysctr_write_file_at (slot_dfd, "config.json", config, strlen (config), 0600, error))
    return FALSE;

  json_t *files = json_array ();
  g_autoptr (json_t) info = json_object ();
  json_object_set_new (info, "files", files);
  for (guint i = 0; i < r->files->len; i++)
    {
      SysctrHostFile *f = r->files->pdata[i];
      g_autofree char *rel = g_strdup_printf ("rendered%s", f->path);
      g_autofree char *dir = g_path_get_dirname (rel);
      gsize len;
      const void *data = g_bytes_get_data (f->data, &len);
      if (!sysctr_mkdir_p_at (slot_dfd, dir, 0700, error) || !sysctr_write_file_at (slot_dfd, rel, data, len, f->mode, error))
        return FALSE;
      g_autofree char *sha = file_sha256 (f->data);
      json_array_append_new (files, json_pack ("{s:s, s:s, s:i}", "path", f->path, "sha256", sha, "mode", (int) f->mode));
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
  json_object_set_new (info, "image", json_pack ("{s:s, s:s, s:s, s:s, s:o}", "reference", image->reference, "manifest_digest",
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

/* Whether a host file found at @path may be replaced or removed on behalf
 * of container @name: absent, carrying its marker, or exactly what one of
 * its deployments wrote. Anything else is the admin's. */
static gboolean
host_file_ours (const char *name, GBytes *current, json_t *info_a, json_t *info_b, const char *path)
{
  if (current == NULL)
    return TRUE;
  gsize len;
  const char *p = g_bytes_get_data (current, &len);
  g_autofree char *owner = sysctr_marker_owner (p, len);
  /* Units and tmpfiles.d carry the marker: the admin changes them with
   * drop-ins, so a marked file is ours whatever its content. */
  if (g_strcmp0 (owner, name) == 0)
    return TRUE;
  g_autofree char *sha = file_sha256 (current);
  const char *a = info_a ? recorded_sha (info_a, path) : NULL;
  const char *b = info_b ? recorded_sha (info_b, path) : NULL;
  return g_strcmp0 (a, sha) == 0 || g_strcmp0 (b, sha) == 0;
}

/* Makes the host files match @info's slot: writes what differs, removes
 * what @old_info had and @info does not. Admin-edited files are kept and
 * reported. *out_changed says whether any unit file changed. */
static gboolean
apply_host_files (SysctrContext *ctx, const char *name, json_t *info, json_t *old_info, gboolean *out_changed,
                  GError **error)
{
  const char *slot = sysctr_json_get_string (info, "slot");
  gboolean changed = FALSE;
  size_t i;
  json_t *f;
  json_array_foreach (json_object_get (info, "files"), i, f)
    {
      const char *path = sysctr_json_get_string (f, "path");
      const char *sha = sysctr_json_get_string (f, "sha256");
      if (path == NULL || path[0] != '/' || strstr (path, "/../") || sha == NULL)
        return sysctr_throw (error, SYSCTR_ERROR_FAILED, "%s: corrupt info.json (file entry)", slot);
      g_autoptr (GBytes) current = read_host_file (ctx, path, error);
      if (current == NULL && error && *error)
        return FALSE;
      g_autofree char *cur_sha = current ? file_sha256 (current) : NULL;
      if (g_strcmp0 (cur_sha, sha) == 0)
        continue;
      if (!host_file_ours (name, current, info, old_info, path))
        {
          g_printerr ("%s: kept %s%s: edited since sysctr wrote it (the new version is in %s%s/%s/rendered%s)\n", name,
                      ctx->live ? "" : ctx->root, path, ctx->live ? "" : ctx->root, SYSCTR_CONTAINERS_DIR, slot, path);
          continue;
        }
      g_autoptr (GBytes) data = read_rendered (ctx, slot, path, error);
      if (data == NULL)
        return FALSE;
      g_autofree char *dir = g_path_get_dirname (path + 1);
      gsize len;
      const void *p = g_bytes_get_data (data, &len);
      if (!sysctr_mkdir_p_at (ctx->root_dfd, dir, 0755, error) ||
          !sysctr_write_file_at (ctx->root_dfd, path + 1, p, len, json_integer_value (json_object_get (f, "mode")) ?: 0644, error))
        return FALSE;
      if (g_str_has_prefix (path, "/etc/systemd/"))
        changed = TRUE;
      sysctr_crash_point ("host-file-written");
    }
  json_array_foreach (json_object_get (old_info, "files"), i, f)
    {
      const char *path = sysctr_json_get_string (f, "path");
      if (path == NULL || recorded_sha (info, path) != NULL)
        continue;
      g_autoptr (GError) local_error = NULL;
      g_autoptr (GBytes) current = read_host_file (ctx, path, &local_error);
      if (current == NULL)
        continue;
      if (!host_file_ours (name, current, old_info, NULL, path))
        {
          g_printerr ("%s: kept %s: edited since sysctr wrote it\n", name, path);
          continue;
        }
      if (unlinkat (ctx->root_dfd, path + 1, 0) < 0 && errno != ENOENT)
        return sysctr_throw_errno (error, "removing %s", path);
      if (g_str_has_prefix (path, "/etc/systemd/"))
        changed = TRUE;
    }
  if (out_changed)
    *out_changed = changed;
  return TRUE;
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

static gboolean
offline_enable (SysctrContext *ctx, json_t *info, gboolean enable, GError **error)
{
  const char *unit = sysctr_json_get_string (info, "enable");
  const char *slot = sysctr_json_get_string (info, "slot");
  if (unit == NULL)
    return TRUE;
  g_autofree char *unit_path = g_strdup_printf ("/etc/systemd/system/%s", unit);
  g_autoptr (GBytes) data = read_rendered (ctx, slot, unit_path, error);
  if (data == NULL)
    return FALSE;
  g_autoptr (GPtrArray) dirs = install_targets (data);
  for (guint i = 0; i < dirs->len; i++)
    {
      g_autofree char *dir = g_strdup_printf ("etc/systemd/system/%s", (char *) dirs->pdata[i]);
      g_autofree char *link = g_strdup_printf ("%s/%s", dir, unit);
      if (enable)
        {
          if (!sysctr_mkdir_p_at (ctx->root_dfd, dir, 0755, error))
            return FALSE;
          if (symlinkat (unit_path, ctx->root_dfd, link) < 0 && errno != EEXIST)
            return sysctr_throw_errno (error, "enabling %s", unit);
        }
      else
        {
          char buf[PATH_MAX];
          ssize_t n = readlinkat (ctx->root_dfd, link, buf, sizeof buf - 1);
          if (n > 0)
            {
              buf[n] = '\0';
              if (strcmp (buf, unit_path) == 0)
                (void) unlinkat (ctx->root_dfd, link, 0);
            }
        }
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
  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &err, &status, error))
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
  return json_pack ("{s:b, s:s?, s:s?}", "tls_verify", pull ? pull->tls_verify : TRUE, "authfile", pull ? pull->authfile : NULL,
                    "platform", pull ? pull->platform : NULL);
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
start_units (SysctrContext *ctx, SysctrSystemd *sd, json_t *info, const char *method, GError **error)
{
  const char *unit = sysctr_json_get_string (info, "enable");
  if (unit == NULL)
    return TRUE;
  return sysctr_systemd_job (sd, method, unit, error);
}

gboolean
sysctr_install (SysctrContext *ctx, const SysctrInstallOptions *opts, GError **error)
{
  if (opts->now && !ctx->live)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "--now cannot be used with --root (nothing runs in that tree yet)");
  g_autoptr (SysctrRef) ref = sysctr_ref_parse (opts->image, error);
  if (ref == NULL)
    return FALSE;
  g_autofree char *name = NULL;
  if (opts->name)
    {
      if (!sysctr_name_valid (opts->name))
        return sysctr_throw (error, SYSCTR_ERROR_INVALID,
                             "invalid name \"%.80s\": use 1-64 letters, digits, '_' or '-', starting with a letter or digit", opts->name);
      name = g_strdup (opts->name);
    }
  else if ((name = sysctr_ref_default_name (ref)) == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "cannot derive a container name from %s; give one with --name", opts->image);

  g_autofree char *active = NULL;
  if (!sysctr_container_active_slot (ctx, name, &active, error))
    return FALSE;
  if (active)
    return sysctr_throw (error, SYSCTR_ERROR_EXISTS, "%s is already installed (use \"sysctr update %s\" or uninstall it first)", name, name);
  if (!check_unit_conflicts (ctx, name, error))
    return FALSE;

  g_autoptr (SysctrSystemd) sd = NULL;
  if (ctx->live && (sd = sysctr_systemd_connect (error)) == NULL)
    return FALSE;

  g_autoptr (SysctrImage) image = NULL;
  if (!get_image (ctx, opts->image, opts->pull, FALSE, &image, error))
    return FALSE;

  /* No symlink: whatever slots exist are leftovers of an interrupted run. */
  g_autofree char *slot = g_strdup_printf ("%s.0", name);
  g_autofree char *other = g_strdup_printf ("containers/%s.1", name);
  if (!sysctr_rm_rf_at (ctx->state_dfd, other, error))
    return FALSE;
  g_autoptr (json_t) pull_json = pull_options_json (opts->pull);
  g_autoptr (json_t) info = NULL;
  if (!write_deployment (ctx, name, slot, image, opts->set, NULL, opts->runtime, pull_json, &info, error))
    {
      g_autofree char *rel = g_strdup_printf ("containers/%s", slot);
      (void) sysctr_rm_rf_at (ctx->state_dfd, rel, NULL);
      return FALSE;
    }

  /* Host files the admin owns are never overwritten: check before the
   * commit point so a refusal leaves nothing behind. */
  size_t i;
  json_t *f;
  json_array_foreach (json_object_get (info, "files"), i, f)
    {
      const char *path = sysctr_json_get_string (f, "path");
      g_autoptr (GError) local_error = NULL;
      g_autoptr (GBytes) cur = read_host_file (ctx, path, &local_error);
      if (cur && !host_file_ours (name, cur, info, NULL, path))
        {
          g_autofree char *rel = g_strdup_printf ("containers/%s", slot);
          (void) sysctr_rm_rf_at (ctx->state_dfd, rel, NULL);
          return sysctr_throw (error, SYSCTR_ERROR_EXISTS, "%s%s already exists and was not written by sysctr; refusing to overwrite it",
                               ctx->live ? "" : ctx->root, path);
        }
    }

  if (!switch_symlink (ctx, name, slot, error))
    return FALSE;
  if (!apply_host_files (ctx, name, info, NULL, NULL, error))
    return FALSE;

  if (ctx->live)
    {
      if (!sysctr_systemd_reload (sd, error))
        return FALSE;
      const char *unit = sysctr_json_get_string (info, "enable");
      if (unit && !sysctr_systemd_enable (sd, unit, error))
        return FALSE;
      if (!run_tmpfiles (ctx, name, "--create", error))
        return FALSE;
      if (opts->now && !start_units (ctx, sd, info, "StartUnit", error))
        return FALSE;
    }
  else if (!offline_enable (ctx, info, TRUE, error))
    return FALSE;
  g_print ("Installed %s from %s (%s)\n", name, image->reference, image->manifest_digest);
  return TRUE;
}

static gboolean
read_active (SysctrContext *ctx, const char *name, char **out_slot, json_t **out_info, GError **error)
{
  if (!sysctr_name_valid (name))
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "invalid container name \"%.80s\"", name);
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
  if (!read_active (ctx, name, &slot, &info, error))
    return FALSE;
  g_autoptr (SysctrSystemd) sd = NULL;
  if (ctx->live)
    {
      if ((sd = sysctr_systemd_connect (error)) == NULL)
        return FALSE;
      /* the socket first, so nothing starts the service again */
      json_t *units = json_object_get (info, "units");
      for (ssize_t i = json_array_size (units) - 1; i >= 0; i--)
        {
          const char *u = json_string_value (json_array_get (units, i));
          g_autoptr (GError) local_error = NULL;
          if (u && !sysctr_systemd_job (sd, "StopUnit", u, &local_error))
            g_printerr ("warning: %s\n", local_error->message);
        }
      const char *unit = sysctr_json_get_string (info, "enable");
      g_autoptr (GError) local_error = NULL;
      if (unit && !sysctr_systemd_disable (sd, unit, &local_error))
        g_printerr ("warning: %s\n", local_error->message);
      if (!run_tmpfiles (ctx, name, "--remove", error))
        g_printerr ("warning: %s\n", (*error)->message), g_clear_error (error);
    }
  else if (!offline_enable (ctx, info, FALSE, error))
    return FALSE;

  /* The commit point of uninstall; what follows is redone by reconcile. */
  g_autofree char *link = g_strdup_printf ("containers/%s", name);
  if (unlinkat (ctx->state_dfd, link, 0) < 0)
    return sysctr_throw_errno (error, "removing %s", link);
  sysctr_crash_point ("uninstall-unlinked");
  g_autoptr (json_t) empty = json_pack ("{s:s, s:[]}", "slot", slot, "files");
  if (!apply_host_files (ctx, name, empty, info, NULL, error))
    return FALSE;
  if (ctx->live && !sysctr_systemd_reload (sd, error))
    return FALSE;
  for (int i = 0; i < 2; i++)
    {
      g_autofree char *s = g_strdup_printf ("containers/%s.%d", name, i);
      if (!sysctr_rm_rf_at (ctx->state_dfd, s, error))
        return FALSE;
    }
  const char *state = sysctr_json_get_string (info, "state_path");
  if (state && state[0] == '/' && strlen (state) > strlen ("/var/lib/"))
    {
      struct stat st;
      gboolean exists = fstatat (ctx->root_dfd, state + 1, &st, AT_SYMLINK_NOFOLLOW) == 0;
      if (purge && exists)
        {
          if (!sysctr_rm_rf_at (ctx->root_dfd, state + 1, error))
            return FALSE;
          g_print ("Removed state data %s\n", state);
        }
      else if (exists)
        g_print ("Kept state data in %s (remove it with --purge)\n", state);
    }
  g_print ("Uninstalled %s (the image stays in the store until \"sysctr images prune --all\")\n", name);
  return TRUE;
}

gboolean
sysctr_reconcile (SysctrContext *ctx, GError **error)
{
  g_autoptr (GPtrArray) names = NULL;
  if (!sysctr_containers_list (ctx, &names, error))
    return FALSE;
  gboolean changed_any = FALSE;
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
      g_autofree char *other_slot = g_strdup_printf ("%s.%c", name, g_str_has_suffix (slot, ".0") ? '1' : '0');
      g_autoptr (json_t) other = NULL;
      g_autoptr (GError) other_error = NULL;
      (void) sysctr_container_read_info (ctx, other_slot, &other, &other_error);
      gboolean changed = FALSE;
      if (!apply_host_files (ctx, name, info, other, &changed, error))
        return FALSE;
      if (changed)
        {
          g_printerr ("%s: completed an interrupted change (host files now match %s)\n", name, slot);
          changed_any = TRUE;
          if (!ctx->live && !offline_enable (ctx, info, TRUE, error))
            return FALSE;
        }
    }
  /* Units whose container is gone (an interrupted uninstall). */
  g_autoptr (GDir) d = g_dir_open (ctx->live ? "/etc/systemd/system" : g_build_filename (ctx->root, "etc/systemd/system", NULL), 0, NULL);
  const char *fn;
  while (d && (fn = g_dir_read_name (d)))
    {
      if (!g_str_has_suffix (fn, ".service") && !g_str_has_suffix (fn, ".socket"))
        continue;
      g_autofree char *path = g_strdup_printf ("/etc/systemd/system/%s", fn);
      g_autoptr (GError) local_error = NULL;
      g_autoptr (GBytes) data = read_host_file (ctx, path, &local_error);
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
      (void) unlinkat (ctx->root_dfd, path + 1, 0);
      g_autofree char *tf = g_strdup_printf ("etc/tmpfiles.d/sysctr-%s.conf", owner);
      (void) unlinkat (ctx->root_dfd, tf, 0);
      g_printerr ("%s: removed %s left by an interrupted uninstall\n", owner, path);
      changed_any = TRUE;
    }
  if (changed_any && ctx->live)
    {
      g_autoptr (SysctrSystemd) sd = sysctr_systemd_connect (error);
      if (sd == NULL || !sysctr_systemd_reload (sd, error))
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
  return g_strcmp0 (state, "active") == 0 || g_strcmp0 (state, "activating") == 0 || g_strcmp0 (state, "reloading") == 0;
}

/* Switch NAME to @new_slot: symlink, host files, reload, restart if it
 * was running. */
static gboolean
switch_to (SysctrContext *ctx, SysctrSystemd *sd, const char *name, json_t *old_info, json_t *new_info, gboolean restart,
           GError **error)
{
  const char *new_slot = sysctr_json_get_string (new_info, "slot");
  if (!switch_symlink (ctx, name, new_slot, error))
    return FALSE;
  if (!apply_host_files (ctx, name, new_info, old_info, NULL, error))
    return FALSE;
  if (!ctx->live)
    return offline_enable (ctx, old_info, FALSE, error) && offline_enable (ctx, new_info, TRUE, error);
  if (!sysctr_systemd_reload (sd, error))
    return FALSE;
  if (g_strcmp0 (sysctr_json_get_string (old_info, "enable"), sysctr_json_get_string (new_info, "enable")) != 0)
    {
      const char *u = sysctr_json_get_string (new_info, "enable");
      if (u && !sysctr_systemd_enable (sd, u, error))
        return FALSE;
    }
  if (!run_tmpfiles (ctx, name, "--create", error))
    return FALSE;
  if (restart)
    {
      json_t *units = json_object_get (new_info, "units");
      const char *service = json_string_value (json_array_get (units, 0));
      if (service && !sysctr_systemd_job (sd, "RestartUnit", service, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
sysctr_update (SysctrContext *ctx, const char *name, const SysctrUpdateOptions *opts, gboolean *out_changed, GError **error)
{
  g_autofree char *slot = NULL;
  g_autoptr (json_t) info = NULL;
  *out_changed = FALSE;
  if (!read_active (ctx, name, &slot, &info, error))
    return FALSE;
  json_t *image_info = json_object_get (info, "image");
  const char *reference = opts->rebase ? opts->rebase : sysctr_json_get_string (image_info, "reference");
  SysctrPullOptions stored;
  pull_options_from_json (json_object_get (info, "pull_options"), &stored);
  const SysctrPullOptions *pull = opts->pull ? opts->pull : &stored;

  g_autoptr (SysctrImage) image = NULL;
  gboolean ok = get_image (ctx, reference, pull, !opts->no_pull && opts->rebase == NULL, &image, error);
  if (!ok && opts->rebase && !opts->no_pull)
    ok = FALSE;
  if (ok && opts->rebase && !opts->no_pull && image == NULL)
    ok = get_image (ctx, reference, pull, TRUE, &image, error);
  if (!ok)
    {
      sysctr_pull_options_clear (&stored);
      return FALSE;
    }

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
  if (same_values && g_strcmp0 (image->manifest_digest, sysctr_json_get_string (image_info, "manifest_digest")) == 0 &&
      g_strcmp0 (image->reference, sysctr_json_get_string (image_info, "reference")) == 0)
    {
      g_print ("%s: already up to date (%s)\n", name, image->manifest_digest);
      sysctr_pull_options_clear (&stored);
      return TRUE;
    }

  g_autoptr (SysctrSystemd) sd = NULL;
  if (ctx->live && (sd = sysctr_systemd_connect (error)) == NULL)
    return FALSE;
  gboolean was_running = unit_is_active (sd, info);

  g_autofree char *new_slot = g_strdup_printf ("%s.%c", name, g_str_has_suffix (slot, ".0") ? '1' : '0');
  g_autoptr (GHashTable) previous = json_to_values (json_object_get (info, "values"));
  g_autoptr (json_t) pull_json = pull_options_json (pull);
  sysctr_pull_options_clear (&stored);
  g_autoptr (json_t) new_info = NULL;
  if (!write_deployment (ctx, name, new_slot, image, set, previous, sysctr_json_get_string (info, "runtime"), pull_json,
                         &new_info, error))
    {
      g_autofree char *rel = g_strdup_printf ("containers/%s", new_slot);
      (void) sysctr_rm_rf_at (ctx->state_dfd, rel, NULL);
      return FALSE;
    }
  if (!switch_to (ctx, sd, name, info, new_info, was_running, error))
    {
      if (!(opts->gate && was_running))
        return FALSE;
      g_autofree char *msg = g_strdup ((*error)->message);
      g_clear_error (error);
      g_printerr ("%s: the new deployment did not come up (%s); rolling back to %s\n", name, msg, slot);
      if (!switch_to (ctx, sd, name, new_info, info, TRUE, error))
        return FALSE;
      return sysctr_throw (error, SYSCTR_ERROR_FAILED, "%s: update to %s rolled back: %s", name, image->manifest_digest, msg);
    }
  *out_changed = TRUE;
  g_print ("Updated %s to %s (%s)%s\n", name, image->reference, image->manifest_digest, was_running ? ", restarted" : "");
  return TRUE;
}

gboolean
sysctr_rollback (SysctrContext *ctx, const char *name, GError **error)
{
  g_autofree char *slot = NULL;
  g_autoptr (json_t) info = NULL;
  if (!read_active (ctx, name, &slot, &info, error))
    return FALSE;
  g_autofree char *other_slot = g_strdup_printf ("%s.%c", name, g_str_has_suffix (slot, ".0") ? '1' : '0');
  g_autoptr (json_t) other = NULL;
  g_autoptr (GError) local_error = NULL;
  if (!sysctr_container_read_info (ctx, other_slot, &other, &local_error))
    return sysctr_throw (error, SYSCTR_ERROR_NOT_FOUND, "%s has no previous deployment to roll back to", name);
  g_autoptr (SysctrSystemd) sd = NULL;
  if (ctx->live && (sd = sysctr_systemd_connect (error)) == NULL)
    return FALSE;
  gboolean was_running = unit_is_active (sd, info);
  if (!switch_to (ctx, sd, name, info, other, was_running, error))
    return FALSE;
  g_print ("Rolled back %s to %s (%s)\n", name, other_slot,
           sysctr_json_get_string (json_object_get (other, "image"), "manifest_digest"));
  return TRUE;
}
