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
      json_t *image = json_object_get (info, "image");
      const char *digest = sysctr_json_get_string (image, "manifest_digest");
      if (digest && images)
        g_hash_table_add (images, g_strdup (digest));
      json_t *ls = json_object_get (image, "layers");
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
