/* The image store: a bare OSTree repo under ROOT/var/lib/sysctr/repo,
 * one commit per layer (sysctr/layer/HEX) and one per image
 * (sysctr/image/ESCAPED-REFERENCE) whose metadata holds the manifest,
 * the config, the manifest digest and the source reference. */
#pragma once

#include <jansson.h>
#include <ostree.h>

#include "sysctr-util.h"

G_BEGIN_DECLS

#define SYSCTR_LAYER_REF_PREFIX "sysctr/layer/"
#define SYSCTR_IMAGE_REF_PREFIX "sysctr/image/"

typedef struct
{
  char *reference;       /* canonical source reference */
  char *ref;             /* OSTree ref */
  char *commit;          /* image commit checksum */
  char *manifest_digest; /* sha256:... */
  char *platform;        /* os/arch[/variant] */
  json_t *manifest;
  json_t *config;
  char **layers;   /* blob digests, manifest order */
  char **diff_ids; /* config rootfs.diff_ids */
  guint64 timestamp;
  json_t *verification; /* how containers-policy.json accepted it (policy.h), or NULL */
} SysctrImage;

void sysctr_image_free (SysctrImage *image);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SysctrImage, sysctr_image_free)

char *sysctr_layer_ref_for_digest (const char *digest);
char *sysctr_image_ref_for_reference (const char *canonical);

/* Opens (creating when @create) ROOT/var/lib/sysctr/repo. */
OstreeRepo *sysctr_store_open (int state_dfd, gboolean create, GError **error);

gboolean sysctr_store_load_image (OstreeRepo *repo, const char *ostree_ref, SysctrImage **out_image, GError **error);
/* *out_image is NULL when the store does not hold @canonical. */
gboolean sysctr_store_lookup_image (OstreeRepo *repo, const char *canonical, SysctrImage **out_image, GError **error);
gboolean sysctr_store_list_images (OstreeRepo *repo, GPtrArray **out_images, GError **error);
/* The commit of a layer when it is completely in the store, else NULL. */
char *sysctr_store_layer_commit (OstreeRepo *repo, const char *digest);

/* Everything layers occupy: (sum of layer sizes as the manifests say). */
gboolean sysctr_store_remove_image (OstreeRepo *repo, const SysctrImage *image, GError **error);

/* Drops layer refs no image (nor @keep_layers) uses, and with @all the
 * images whose manifest digest is not in @keep_images; then prunes
 * unreachable objects. */
gboolean sysctr_store_prune (OstreeRepo *repo, gboolean all, GHashTable *keep_images, GHashTable *keep_layers,
                             guint *out_images_removed, guint *out_layers_removed, guint64 *out_freed, GError **error);

G_END_DECLS
