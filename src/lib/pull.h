/* registry/layout -> verified blobs -> OSTree layer commits + image commit */
#pragma once

#include "context.h"
#include "reference.h"
#include "registry.h"
#include "store.h"

G_BEGIN_DECLS

#define SYSCTR_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define SYSCTR_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define SYSCTR_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define SYSCTR_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

typedef struct
{
  gboolean up_to_date; /* nothing new was stored */
  guint layers_fetched;
  guint64 bytes_fetched;
  guint requests;
} SysctrPullResult;

/* Pulls @reference into the store; on success *out_image describes it. */
gboolean sysctr_pull (SysctrContext *ctx, const char *reference, const SysctrPullOptions *opts, SysctrImage **out_image,
                      SysctrPullResult *out_result, GError **error);
/* The same for a reference already parsed (install and update parse it
 * once and pass it down). */
gboolean sysctr_pull_ref (SysctrContext *ctx, const SysctrRef *ref, const SysctrPullOptions *opts,
                          SysctrImage **out_image, SysctrPullResult *out_result, GError **error);

/* This host's platform as os/arch[/variant]. */
char *sysctr_host_platform (void);

/* Picks the manifest for @platform from an index; exposed for tests. */
gboolean sysctr_index_select (json_t *index, const char *platform, const char **out_digest, char **out_platform,
                              GError **error);

G_END_DECLS
