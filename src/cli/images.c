#include "config.h"

#include <stdio.h>
#include <string.h>

#include "builtins.h"
#include "policy.h"
#include "containers.h"
#include "context.h"
#include "install.h"
#include "reference.h"
#include "store.h"

static gboolean opt_json;
static gboolean opt_all;

static GOptionEntry list_entries[] = {
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON", NULL },
  { NULL },
};
static GOptionEntry prune_entries[] = {
  { "all", 'a', 0, G_OPTION_ARG_NONE, &opt_all, "Also remove images no deployment uses", NULL },
  { NULL },
};
static GOptionEntry no_entries[] = { { NULL } };

static guint64
image_size (const SysctrImage *image)
{
  guint64 total = 0;
  json_t *layers = json_object_get (image->manifest, "layers");
  size_t i;
  json_t *l;
  json_array_foreach (layers, i, l)
    total += json_integer_value (json_object_get (l, "size"));
  return total;
}

static json_t *
image_to_json (const SysctrImage *image, OstreeRepo *repo)
{
  gboolean full = repo != NULL; /* inspect: the config and the layers too */
  g_assert (image != NULL);
  json_t *j = json_pack ("{s:s, s:s, s:s, s:I, s:I}", "reference", image->reference, "digest", image->manifest_digest,
                         "platform", image->platform, "size", (json_int_t) image_size (image), "pulled",
                         (json_int_t) image->timestamp);
  const char *created = sysctr_json_get_string (image->config, "created");
  if (created)
    json_object_set_new (j, "created", json_string (created));
  /* how containers-policy.json accepted it, and a line that says so */
  g_autofree char *summary = sysctr_policy_record_summary (image->verification);
  json_object_set_new (j, "signature", json_string (summary));
  if (full && image->verification)
    json_object_set (j, "verification", image->verification);
  if (repo != NULL)
    {
      json_object_set (j, "config", image->config);
      json_t *layers = json_array ();
      json_t *descs = json_object_get (image->manifest, "layers");
      for (guint i = 0; image->layers[i]; i++)
        {
          json_t *d = json_array_get (descs, i);
          json_t *l
              = json_pack ("{s:s, s:s?, s:O?, s:s?}", "digest", image->layers[i], "diff_id", image->diff_ids[i], "size",
                           json_object_get (d, "size"), "mediaType", sysctr_json_get_string (d, "mediaType"));
          /* what vouched for its content: the diff_id, or (zstd:chunked
           * pulled in parts, or written by podman 4) its table of contents */
          g_autofree char *commit = sysctr_store_layer_commit (repo, image->layers[i]);
          g_autoptr (GVariant) cv = NULL;
          if (commit && ostree_repo_load_variant (repo, OSTREE_OBJECT_TYPE_COMMIT, commit, &cv, NULL))
            {
              g_autoptr (GVariant) meta = g_variant_get_child_value (cv, 0);
              g_autoptr (GVariantDict) dict = g_variant_dict_new (meta);
              g_autofree char *v = NULL;
              if (g_variant_dict_lookup (dict, "sysctr.verified-by", "s", &v))
                json_object_set_new (l, "verified_by", json_string (v));
            }
          json_array_append_new (layers, l);
        }
      json_object_set_new (j, "layers", layers);
      json_t *labels = json_object_get (json_object_get (image->config, "config"), "Labels");
      json_object_set_new (j, "labels", json_is_object (labels) ? json_incref (labels) : json_object ());
    }
  return j;
}

static gboolean
find_image (SysctrContext *ctx, const char *arg, SysctrImage **out, GError **error)
{
  if (ctx->repo == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_NOT_FOUND, "image %s is not in the store", arg);
  g_autoptr (SysctrRef) ref = sysctr_ref_parse (arg, error);
  if (ref == NULL)
    return FALSE;
  g_autofree char *canonical = sysctr_ref_to_string (ref);
  if (!sysctr_store_lookup_image (ctx->repo, canonical, out, error))
    return FALSE;
  if (*out == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_NOT_FOUND, "image %s is not in the store", canonical);
  return TRUE;
}

static gboolean
images_list (int argc, char **argv, const SysctrGlobals *globals, GError **error)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("- list stored images");
  if (!sysctr_parse_options (context, list_entries, &argc, &argv, error))
    return FALSE;
  g_autoptr (SysctrContext) ctx = NULL;
  g_autoptr (GPtrArray) images = NULL;
  if (!sysctr_context_open_for_listing (globals->root, &ctx, error))
    return FALSE;
  if (ctx && ctx->repo && !sysctr_store_list_images (ctx->repo, &images, error))
    return FALSE;
  if (opt_json)
    {
      g_autoptr (json_t) arr = json_array ();
      for (guint i = 0; images && i < images->len; i++)
        json_array_append_new (arr, image_to_json (images->pdata[i], NULL));
      g_autofree char *s = sysctr_json_dump (arr, TRUE);
      printf ("%s\n", s);
      return TRUE;
    }
  printf ("%-60s %-19s %-14s %10s\n", "REFERENCE", "DIGEST", "PLATFORM", "SIZE");
  for (guint i = 0; images && i < images->len; i++)
    {
      SysctrImage *image = images->pdata[i];
      g_autofree char *sz = sysctr_format_size (image_size (image));
      printf ("%-60s %-19.19s %-14s %10s\n", image->reference, image->manifest_digest, image->platform, sz);
    }
  return TRUE;
}

static gboolean
images_inspect (int argc, char **argv, const SysctrGlobals *globals, GError **error)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("IMAGE - show a stored image as JSON");
  if (!sysctr_parse_options (context, no_entries, &argc, &argv, error))
    return FALSE;
  if (argc != 2)
    return sysctr_throw (error, SYSCTR_ERROR_USAGE, "usage: sysctr images inspect IMAGE");
  g_autoptr (SysctrContext) ctx = sysctr_context_new (globals->root, FALSE, error);
  if (ctx == NULL)
    return FALSE;
  g_autoptr (SysctrImage) image = NULL;
  if (!find_image (ctx, argv[1], &image, error))
    return FALSE;
  g_autoptr (json_t) j = image_to_json (image, ctx->repo);
  g_autofree char *s = sysctr_json_dump (j, TRUE);
  printf ("%s\n", s);
  return TRUE;
}

static gboolean
images_rm (int argc, char **argv, const SysctrGlobals *globals, GError **error)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("IMAGE… - remove images from the store");
  if (!sysctr_parse_options (context, no_entries, &argc, &argv, error))
    return FALSE;
  if (argc < 2)
    return sysctr_throw (error, SYSCTR_ERROR_USAGE, "usage: sysctr images rm IMAGE…");
  g_autoptr (SysctrContext) ctx = sysctr_context_new (globals->root, TRUE, error);
  if (ctx == NULL || !sysctr_reconcile (ctx, error))
    return FALSE;
  g_autoptr (GHashTable) used = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  if (!sysctr_containers_collect_usage (ctx, used, NULL, NULL, error))
    return FALSE;
  for (int i = 1; i < argc; i++)
    {
      g_autoptr (SysctrImage) image = NULL;
      if (!find_image (ctx, argv[i], &image, error))
        return FALSE;
      g_assert (image != NULL);
      if (g_hash_table_contains (used, image->manifest_digest))
        return sysctr_throw (error, SYSCTR_ERROR_EXISTS,
                             "image %s is used by an installed container; uninstall it first", image->reference);
      if (!sysctr_store_remove_image (ctx->repo, image, error))
        return FALSE;
      printf ("Removed %s\n", image->reference);
    }
  return TRUE;
}

static gboolean
images_prune (int argc, char **argv, const SysctrGlobals *globals, GError **error)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("- remove unused layers (and with --all, unused images)");
  if (!sysctr_parse_options (context, prune_entries, &argc, &argv, error))
    return FALSE;
  g_autoptr (SysctrContext) ctx = sysctr_context_new (globals->root, TRUE, error);
  if (ctx == NULL || !sysctr_reconcile (ctx, error))
    return FALSE;
  g_autoptr (GHashTable) keep_images = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) keep_layers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  if (!sysctr_containers_collect_usage (ctx, keep_images, keep_layers, NULL, error))
    return FALSE;
  guint images_removed = 0, layers_removed = 0;
  guint64 freed = 0;
  if (!sysctr_store_prune (ctx->repo, opt_all, keep_images, keep_layers, &images_removed, &layers_removed, &freed,
                           error))
    return FALSE;
  g_autofree char *sz = sysctr_format_size (freed);
  printf ("Removed %u image(s) and %u layer(s), freed %s\n", images_removed, layers_removed, sz);
  return TRUE;
}

gboolean
sysctr_builtin_images (int argc, char **argv, const SysctrGlobals *globals, GError **error)
{
  if (argc < 2 || argv[1][0] == '-' || strcmp (argv[1], "list") == 0)
    {
      if (argc >= 2 && strcmp (argv[1], "list") == 0)
        return images_list (argc - 1, argv + 1, globals, error);
      return images_list (argc, argv, globals, error);
    }
  if (strcmp (argv[1], "inspect") == 0)
    return images_inspect (argc - 1, argv + 1, globals, error);
  if (strcmp (argv[1], "rm") == 0)
    return images_rm (argc - 1, argv + 1, globals, error);
  if (strcmp (argv[1], "prune") == 0)
    return images_prune (argc - 1, argv + 1, globals, error);
  return sysctr_throw (error, SYSCTR_ERROR_USAGE,
                       "usage: sysctr images [list|inspect|rm|prune] (unknown subcommand \"%s\")", argv[1]);
}
