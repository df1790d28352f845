#include "config.h"

#include "store.h"

#include "reference.h"

#include <fcntl.h>
#include <string.h>

void
sysctr_image_free (SysctrImage *image)
{
  if (image == NULL)
    return;
  g_free (image->reference);
  g_free (image->ref);
  g_free (image->commit);
  g_free (image->manifest_digest);
  g_free (image->platform);
  if (image->manifest)
    json_decref (image->manifest);
  if (image->config)
    json_decref (image->config);
  if (image->verification)
    json_decref (image->verification);
  g_strfreev (image->layers);
  g_strfreev (image->diff_ids);
  g_free (image);
}

char *
sysctr_layer_ref_for_digest (const char *digest)
{
  const char *hex = strchr (digest, ':');
  return g_strconcat (SYSCTR_LAYER_REF_PREFIX, hex ? hex + 1 : digest, NULL);
}

char *
sysctr_image_ref_for_reference (const char *canonical)
{
  g_autofree char *esc = sysctr_ref_escape (canonical);
  return g_strconcat (SYSCTR_IMAGE_REF_PREFIX, esc, NULL);
}

OstreeRepo *
sysctr_store_open (int state_dfd, gboolean create, GError **error)
{
  if (create)
    {
      g_autoptr (OstreeRepo) repo = ostree_repo_create_at (state_dfd, "repo", OSTREE_REPO_MODE_BARE, NULL, NULL, error);
      if (repo == NULL)
        {
          sysctr_prefix_error (error, "creating the image store");
          return NULL;
        }
      return g_steal_pointer (&repo);
    }
  g_autoptr (OstreeRepo) repo = ostree_repo_open_at (state_dfd, "repo", NULL, error);
  if (repo == NULL)
    sysctr_prefix_error (error, "opening the image store");
  return g_steal_pointer (&repo);
}

static char **
json_string_array (json_t *arr)
{
  g_autoptr (GPtrArray) out = g_ptr_array_new_with_free_func (g_free);
  size_t i;
  json_t *v;
  json_array_foreach (arr, i, v)
    {
      if (json_is_string (v))
        g_ptr_array_add (out, g_strdup (json_string_value (v)));
      else if (json_is_object (v) && sysctr_json_get_string (v, "digest"))
        g_ptr_array_add (out, g_strdup (sysctr_json_get_string (v, "digest")));
    }
  g_ptr_array_add (out, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&out), FALSE);
}

gboolean
sysctr_store_load_image (OstreeRepo *repo, const char *ostree_ref, SysctrImage **out_image, GError **error)
{
  g_autofree char *commit = NULL;
  if (!ostree_repo_resolve_rev (repo, ostree_ref, FALSE, &commit, error))
    return FALSE;
  g_autoptr (GVariant) commit_v = NULL;
  if (!ostree_repo_load_variant (repo, OSTREE_OBJECT_TYPE_COMMIT, commit, &commit_v, error))
    return FALSE;
  g_autoptr (GVariant) meta = g_variant_get_child_value (commit_v, 0);
  g_autoptr (GVariantDict) dict = g_variant_dict_new (meta);
  const char *reference = NULL, *manifest = NULL, *config = NULL, *digest = NULL, *platform = NULL;
  if (!g_variant_dict_lookup (dict, "sysctr.reference", "&s", &reference)
      || !g_variant_dict_lookup (dict, "sysctr.manifest", "&s", &manifest)
      || !g_variant_dict_lookup (dict, "sysctr.config", "&s", &config)
      || !g_variant_dict_lookup (dict, "sysctr.manifest-digest", "&s", &digest))
    return sysctr_throw (error, SYSCTR_ERROR_FAILED, "store: %s is not an image commit", ostree_ref);
  (void) g_variant_dict_lookup (dict, "sysctr.platform", "&s", &platform);
  const char *verification = NULL;
  (void) g_variant_dict_lookup (dict, "sysctr.verification", "&s", &verification);

  g_autoptr (SysctrImage) image = g_new0 (SysctrImage, 1);
  image->reference = g_strdup (reference);
  image->ref = g_strdup (ostree_ref);
  image->commit = g_steal_pointer (&commit);
  image->manifest_digest = g_strdup (digest);
  image->platform = g_strdup (platform ? platform : "");
  image->timestamp = ostree_commit_get_timestamp (commit_v);
  image->manifest = sysctr_json_parse (manifest, strlen (manifest), "stored manifest", error);
  if (image->manifest == NULL)
    return FALSE;
  image->config = sysctr_json_parse (config, strlen (config), "stored config", error);
  if (image->config == NULL)
    return FALSE;
  if (verification)
    image->verification = json_loads (verification, JSON_REJECT_DUPLICATES, NULL);
  image->layers = json_string_array (json_object_get (image->manifest, "layers"));
  json_t *rootfs = json_object_get (image->config, "rootfs");
  image->diff_ids = json_string_array (json_object_get (rootfs, "diff_ids"));
  *out_image = g_steal_pointer (&image);
  return TRUE;
}

gboolean
sysctr_store_lookup_image (OstreeRepo *repo, const char *canonical, SysctrImage **out_image, GError **error)
{
  g_autofree char *ref = sysctr_image_ref_for_reference (canonical);
  g_autofree char *commit = NULL;
  *out_image = NULL;
  if (!ostree_repo_resolve_rev (repo, ref, TRUE, &commit, error))
    return FALSE;
  if (commit == NULL)
    return TRUE;
  return sysctr_store_load_image (repo, ref, out_image, error);
}

static gint
image_cmp (gconstpointer a, gconstpointer b)
{
  const SysctrImage *ia = *(SysctrImage **) a;
  const SysctrImage *ib = *(SysctrImage **) b;
  return strcmp (ia->reference, ib->reference);
}

gboolean
sysctr_store_list_images (OstreeRepo *repo, GPtrArray **out_images, GError **error)
{
  g_autoptr (GHashTable) refs = NULL;
  if (!ostree_repo_list_refs_ext (repo, "sysctr/image", &refs, OSTREE_REPO_LIST_REFS_EXT_NONE, NULL, error))
    return FALSE;
  g_autoptr (GPtrArray) images = g_ptr_array_new_with_free_func ((GDestroyNotify) sysctr_image_free);
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init (&it, refs);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      SysctrImage *image = NULL;
      if (!sysctr_store_load_image (repo, key, &image, error))
        return FALSE;
      g_ptr_array_add (images, image);
    }
  g_ptr_array_sort (images, image_cmp);
  *out_images = g_steal_pointer (&images);
  return TRUE;
}

char *
sysctr_store_layer_commit (OstreeRepo *repo, const char *digest)
{
  g_autofree char *ref = sysctr_layer_ref_for_digest (digest);
  g_autofree char *commit = NULL;
  if (!ostree_repo_resolve_rev (repo, ref, TRUE, &commit, NULL) || commit == NULL)
    return NULL;
  OstreeRepoCommitState state = 0;
  if (!ostree_repo_load_commit (repo, commit, NULL, &state, NULL))
    return NULL;
  if (state & OSTREE_REPO_COMMIT_STATE_PARTIAL)
    return NULL;
  return g_steal_pointer (&commit);
}

gboolean
sysctr_store_remove_image (OstreeRepo *repo, const SysctrImage *image, GError **error)
{
  return ostree_repo_set_ref_immediate (repo, NULL, image->ref, NULL, NULL, error);
}

gboolean
sysctr_store_prune (OstreeRepo *repo, gboolean all, GHashTable *keep_images, GHashTable *keep_layers,
                    guint *out_images_removed, guint *out_layers_removed, guint64 *out_freed, GError **error)
{
  g_autoptr (GPtrArray) images = NULL;
  if (!sysctr_store_list_images (repo, &images, error))
    return FALSE;
  g_autoptr (GHashTable) used_layers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  guint images_removed = 0, layers_removed = 0;
  for (guint i = 0; i < images->len; i++)
    {
      SysctrImage *image = images->pdata[i];
      if (all && !(keep_images && g_hash_table_contains (keep_images, image->manifest_digest)))
        {
          if (!sysctr_store_remove_image (repo, image, error))
            return FALSE;
          images_removed++;
          continue;
        }
      for (char **l = image->layers; *l; l++)
        g_hash_table_add (used_layers, sysctr_layer_ref_for_digest (*l));
    }
  if (keep_layers)
    {
      GHashTableIter it;
      gpointer key;
      g_hash_table_iter_init (&it, keep_layers);
      while (g_hash_table_iter_next (&it, &key, NULL))
        g_hash_table_add (used_layers, sysctr_layer_ref_for_digest (key));
    }

  g_autoptr (GHashTable) layer_refs = NULL;
  if (!ostree_repo_list_refs_ext (repo, "sysctr/layer", &layer_refs, OSTREE_REPO_LIST_REFS_EXT_NONE, NULL, error))
    return FALSE;
  GHashTableIter it;
  gpointer key;
  g_hash_table_iter_init (&it, layer_refs);
  while (g_hash_table_iter_next (&it, &key, NULL))
    {
      if (g_hash_table_contains (used_layers, key))
        continue;
      if (!ostree_repo_set_ref_immediate (repo, NULL, key, NULL, NULL, error))
        return FALSE;
      layers_removed++;
    }

  gint n_total = 0, n_pruned = 0;
  guint64 freed = 0;
  if (!ostree_repo_prune (repo, OSTREE_REPO_PRUNE_FLAGS_REFS_ONLY, -1, &n_total, &n_pruned, &freed, NULL, error))
    return FALSE;
  if (out_images_removed)
    *out_images_removed = images_removed;
  if (out_layers_removed)
    *out_layers_removed = layers_removed;
  if (out_freed)
    *out_freed = freed;
  return TRUE;
}
