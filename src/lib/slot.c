/* slot.c: deployment slots NAME.0 and NAME.1. A deployment is built in
 * containers/.SLOT.staging and renamed onto its slot only when complete
 * (rootfs, rendered files, config checked by sysctr-shim --check, info.json
 * last), so the other slot, the rollback target, is never touched; the
 * NAME symlink names the active slot and is switched by rename(2). */
#include "config.h"

#include "containers.h"
#include "deploy.h"
#include "health.h"
#include "hostfiles.h"
#include "install.h"
#include "journal.h"
#include "ociconfig.h"
#include "privileges.h"
#include "pull.h"
#include "reference.h"
#include "render.h"
#include "slot.h"
#include "health.h"
#include "store.h"
#include "systemd.h"
#include "units.h"

#include <dirent.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char *
file_sha256 (GBytes *bytes)
{
  gsize len;
  const void *data = g_bytes_get_data (bytes, &len);
  return sysctr_sha256_hex (data, len);
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

GHashTable *
sysctr_values_from_json (json_t *o)
{
  GHashTable *t = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  const char *k;
  json_t *v;
  json_object_foreach (o, k, v)
    if (json_is_string (v))
      g_hash_table_replace (t, g_strdup (k), g_strdup (json_string_value (v)));
  return t;
}

char *
sysctr_slot_other (const char *name, const char *slot)
{
  return g_strdup_printf ("%s.%c", name, g_str_has_suffix (slot, ".0") ? '1' : '0');
}

/* A deployment is built in containers/.SLOT.staging and renamed onto @slot
 * only once it is complete (info.json written last): until then the old
 * content of @slot, the rollback target, stays as it was, and a failed
 * render or a full disk lose nothing. */

static gboolean write_deployment_into (SysctrContext *ctx, const char *name, const char *slot, int slot_dfd,
                                       const SysctrImage *image, GHashTable *set, GHashTable *previous,
                                       const char *runtime, json_t *pull_json, const SysctrSlotRequest *grant,
                                       json_t **out_info, GError **error);

gboolean
sysctr_slot_write (SysctrContext *ctx, const char *name, const char *slot, const SysctrImage *image, GHashTable *set,
                   GHashTable *previous, const char *runtime, json_t *pull_json, const SysctrSlotRequest *grant,
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
      SysctrDeployment d;
      sysctr_deployment_view (info, &d);
      size_t k;
      json_t *u;
      json_array_foreach (d.units, k, u)
        if (json_is_string (u))
          g_hash_table_add (t, g_strdup (json_string_value (u)));
    }
  return t;
}

/* Shows what the image asks for; fails (naming the flags that would
 * grant it) when the grant does not cover it. *out_grant: what the new
 * deployment is granted. */
static gboolean
check_grant (const char *name, const SysctrImage *image, json_t *asks, const SysctrSlotRequest *req, json_t **out_grant,
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
      sysctr_note ("%s: %s %s:", name, image->reference,
                   req->previous_grant ? "asks for more than was granted" : "asks for");
      sysctr_say_lines (TRUE, "", lines);
    }
  else if (json_object_size (asks) > 0)
    {
      g_autofree char *lines = sysctr_privileges_describe (asks, "  ");
      sysctr_say ("%s: %s is granted:", name, image->reference);
      sysctr_say_lines (FALSE, "", lines);
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
  sysctr_autofd int src = sysctr_reopen_fd (path_fd, O_NONBLOCK);
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
                       const SysctrSlotRequest *grant_req, json_t **out_info, GError **error)
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
    sysctr_warn ("%s: %s", name, (char *) r->warnings->pdata[i]);
  g_autoptr (json_t) granted = NULL;
  if (!check_grant (name, image, r->asks, grant_req, &granted, error))
    return FALSE;

  g_autofree char *config = sysctr_json_dump (r->config, TRUE);
  if (!sysctr_write_file_at (slot_dfd, "config.json", config, strlen (config), 0600, error))
    return FALSE;
  if (g_strcmp0 (r->runtime_path, SYSCTR_SHIM_PATH) == 0 && !shim_check (ctx, name, slot, r, error))
    return FALSE;

  g_autoptr (json_t) files = json_array ();
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

  g_autoptr (json_t) units = json_array ();
  for (guint i = 0; i < r->units->len; i++)
    json_array_append_new (units, json_string (r->units->pdata[i]));
  json_t *layers = json_array ();
  for (guint i = 0; image->layers[i]; i++)
    json_array_append_new (layers, json_string (image->layers[i]));
  g_autoptr (json_t) image_json
      = json_pack ("{s:s, s:s, s:s, s:s, s:o}", "reference", image->reference, "manifest_digest",
                   image->manifest_digest, "commit", image->commit, "platform", image->platform, "layers", layers);
  if (image->verification)
    json_object_set (image_json, "verification", image->verification);
  /* with the host's network there is nothing to publish: shown, not done */
  json_t *ports = json_object_get (json_object_get (image->config, "config"), "ExposedPorts");
  g_autoptr (json_t) port_list = json_array ();
  const char *port;
  json_t *pv;
  json_object_foreach (ports, port, pv)
    json_array_append_new (port_list, json_string (port));
  g_autoptr (json_t) values = values_to_json (r->values);
  g_autoptr (json_t) set_json = set ? values_to_json (set) : json_object ();
  g_autofree char *now = sysctr_iso_now ();
  g_autoptr (json_t) health = sysctr_health_from_config (r->config);
  SysctrDeployment d = {
    .name = name,
    .slot = slot,
    .deployed_at = now,
    .image = image_json,
    .values = values,
    .set = set_json,
    .runtime = runtime ? runtime : "sysctr-shim",
    .runtime_path = r->runtime_path,
    .shim_path = SYSCTR_SHIM_PATH,
    .pull_options = pull_json,
    .units = units,
    .enable = r->enable_unit,
    .state_path = r->state_path,
    .files = files,
    .created = r->created,
    .asked = r->asks,
    .granted = granted,
    .exposed_ports = port_list,
    .health = health,
    .update_lock = grant_req->update_lock,
  };
  g_autoptr (json_t) info = sysctr_deployment_to_json (&d);
  g_autofree char *text = sysctr_json_dump (info, TRUE);
  sysctr_crash_point ("deploy-before-info");
  if (!sysctr_write_file_at (slot_dfd, "info.json", text, strlen (text), 0600, error))
    return FALSE;
  *out_info = g_steal_pointer (&info);
  return TRUE;
}

/* The commit point: a new symlink renamed over the old one. */
gboolean
sysctr_slot_switch (SysctrContext *ctx, const char *name, const char *slot, GError **error)
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

gboolean
sysctr_slot_read_active (SysctrContext *ctx, const char *name, char **out_slot, json_t **out_info, GError **error)
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
