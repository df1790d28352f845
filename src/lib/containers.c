#include "config.h"

#include "containers.h"

#include "reference.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

gboolean
sysctr_container_read_info (SysctrContext *ctx, const char *slot, json_t **out_info, GError **error)
{
  g_autofree char *path = g_strdup_printf ("containers/%s/info.json", slot);
  g_autofree char *data = NULL;
  gsize len = 0;
  if (!sysctr_read_file_at (ctx->state_dfd, path, 16 * 1024 * 1024, &data, &len, error))
    return FALSE;
  json_t *info = sysctr_json_parse (data, len, path, error);
  if (info == NULL)
    return FALSE;
  /* format 1 had no "privileges": read as granted nothing */
  json_int_t format = json_integer_value (json_object_get (info, "format"));
  if (!json_is_object (info) || format < 1 || format > SYSCTR_INFO_FORMAT)
    {
      json_decref (info);
      return sysctr_throw (error, SYSCTR_ERROR_FAILED, "%s: unknown format", path);
    }
  *out_info = info;
  return TRUE;
}

gboolean
sysctr_container_active_slot (SysctrContext *ctx, const char *name, char **out_slot, GError **error)
{
  g_autofree char *path = g_strdup_printf ("containers/%s", name);
  char buf[256];
  ssize_t n = readlinkat (ctx->state_dfd, path, buf, sizeof buf - 1);
  *out_slot = NULL;
  if (n < 0)
    {
      if (errno == ENOENT)
        return TRUE;
      if (errno == EINVAL)
        return sysctr_throw (error, SYSCTR_ERROR_FAILED, "%s%s/%s is not a symlink", ctx->root, SYSCTR_STATE_DIR, path);
      return sysctr_throw_errno (error, "reading %s", path);
    }
  buf[n] = '\0';
  g_autofree char *expect0 = g_strdup_printf ("%s.0", name);
  g_autofree char *expect1 = g_strdup_printf ("%s.1", name);
  if (strcmp (buf, expect0) != 0 && strcmp (buf, expect1) != 0)
    return sysctr_throw (error, SYSCTR_ERROR_FAILED, "%s points to \"%s\", not to one of its slots", path, buf);
  *out_slot = g_strdup (buf);
  return TRUE;
}

gboolean
sysctr_containers_list (SysctrContext *ctx, GPtrArray **out_names, GError **error)
{
  g_autoptr (GPtrArray) entries = NULL;
  if (!sysctr_dir_list_at (ctx->state_dfd, "containers", TRUE, &entries, error))
    return FALSE;
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < entries->len; i++)
    {
      const char *n = entries->pdata[i];
      g_autofree char *rel = g_strdup_printf ("containers/%s", n);
      struct stat st;
      if (sysctr_name_valid (n) && fstatat (ctx->state_dfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK (st.st_mode))
        g_ptr_array_add (names, g_strdup (n));
    }
  *out_names = g_steal_pointer (&names);
  return TRUE;
}

gboolean
sysctr_containers_collect_usage (SysctrContext *ctx, GHashTable *images, GHashTable *layers, GPtrArray *out_names,
                                 GError **error)
{
  g_autoptr (GPtrArray) entries = NULL;
  if (!sysctr_dir_list_at (ctx->state_dfd, "containers", TRUE, &entries, error))
    return FALSE;
  for (guint e = 0; e < entries->len; e++)
    {
      const char *n = entries->pdata[e];
      const char *dot = strrchr (n, '.');
      if (n[0] == '.' || dot == NULL || (strcmp (dot, ".0") != 0 && strcmp (dot, ".1") != 0))
        continue;
      g_autoptr (json_t) info = NULL;
      g_autoptr (GError) local_error = NULL;
      if (!sysctr_container_read_info (ctx, n, &info, &local_error))
        continue; /* a slot being written or cleared: owns nothing yet */
      SysctrDeployment d;
      sysctr_deployment_view (info, &d);
      const char *digest = d.manifest_digest;
      if (digest && images)
        g_hash_table_add (images, g_strdup (digest));
      json_t *ls = d.layers;
      size_t i;
      json_t *l;
      json_array_foreach (ls, i, l)
        if (json_is_string (l) && layers)
          g_hash_table_add (layers, g_strdup (json_string_value (l)));
      if (out_names)
        g_ptr_array_add (out_names, g_strndup (n, dot - n));
    }
  return TRUE;
}

void
sysctr_deployment_view (json_t *info, SysctrDeployment *d)
{
  memset (d, 0, sizeof *d);
  if (!json_is_object (info))
    return;
  json_t *privileges = json_object_get (info, "privileges");
  d->format = (int) json_integer_value (json_object_get (info, "format"));
  d->name = sysctr_json_get_string (info, "name");
  d->slot = sysctr_json_get_string (info, "slot");
  d->deployed_at = sysctr_json_get_string (info, "deployed_at");
  d->image = json_object_get (info, "image");
  d->reference = sysctr_json_get_string (d->image, "reference");
  d->manifest_digest = sysctr_json_get_string (d->image, "manifest_digest");
  d->layers = json_object_get (d->image, "layers");
  d->values = json_object_get (info, "values");
  d->set = json_object_get (info, "set");
  d->runtime = sysctr_json_get_string (info, "runtime");
  d->runtime_path = sysctr_json_get_string (info, "runtime_path");
  d->shim_path = sysctr_json_get_string (info, "shim_path");
  d->pull_options = json_object_get (info, "pull_options");
  d->units = json_object_get (info, "units");
  d->service = json_string_value (json_array_get (d->units, 0));
  d->enable = sysctr_json_get_string (info, "enable");
  d->state_path = sysctr_json_get_string (info, "state_path");
  d->files = json_object_get (info, "files");
  /* format 2 before it was typed: "created" was the host directories */
  d->created = json_is_array (json_object_get (info, "created")) ? json_object_get (info, "created") : NULL;
  d->asked = json_object_get (privileges, "asked");
  d->granted = json_object_get (privileges, "granted");
  d->exposed_ports = json_object_get (info, "exposed_ports");
  d->health = json_is_object (json_object_get (info, "health")) ? json_object_get (info, "health") : NULL;
  d->update_lock
      = json_is_object (json_object_get (info, "update_lock")) ? json_object_get (info, "update_lock") : NULL;
}

static json_t *
or_empty_object (json_t *j)
{
  return j ? json_incref (j) : json_object ();
}

static json_t *
or_empty_array (json_t *j)
{
  return j ? json_incref (j) : json_array ();
}

static json_t *
string_or_null (const char *s)
{
  return s ? json_string (s) : json_null ();
}

json_t *
sysctr_deployment_to_json (const SysctrDeployment *d)
{
  json_t *info = json_object ();
  json_object_set_new (info, "format", json_integer (SYSCTR_INFO_FORMAT));
  json_object_set_new (info, "name", string_or_null (d->name));
  json_object_set_new (info, "slot", string_or_null (d->slot));
  json_object_set_new (info, "deployed_at", string_or_null (d->deployed_at));
  json_object_set_new (info, "image", or_empty_object (d->image));
  json_object_set_new (info, "values", or_empty_object (d->values));
  json_object_set_new (info, "set", or_empty_object (d->set));
  json_object_set_new (info, "runtime", json_string (d->runtime ? d->runtime : "sysctr-shim"));
  json_object_set_new (info, "runtime_path", string_or_null (d->runtime_path));
  json_object_set_new (info, "shim_path", string_or_null (d->shim_path));
  json_object_set_new (info, "pull_options", or_empty_object (d->pull_options));
  json_object_set_new (info, "units", or_empty_array (d->units));
  json_object_set_new (info, "enable", string_or_null (d->enable));
  json_object_set_new (info, "state_path", string_or_null (d->state_path));
  json_object_set_new (info, "files", or_empty_array (d->files));
  json_object_set_new (info, "created", or_empty_array (d->created));
  json_object_set_new (
      info, "privileges",
      json_pack ("{s:o, s:o}", "asked", or_empty_object (d->asked), "granted", or_empty_object (d->granted)));
  json_object_set_new (info, "exposed_ports", or_empty_array (d->exposed_ports));
  if (d->health)
    json_object_set_new (info, "health", json_incref (d->health));
  if (d->update_lock)
    json_object_set_new (info, "update_lock", json_incref (d->update_lock));
  return info;
}

const char *
sysctr_deployment_file_sha (const SysctrDeployment *d, const char *path)
{
  size_t i;
  json_t *f;
  json_array_foreach (d->files, i, f)
    if (g_strcmp0 (sysctr_json_get_string (f, "path"), path) == 0)
      return sysctr_json_get_string (f, "sha256");
  return NULL;
}
