/* Where an image comes from: a registry, an OCI layout directory, an OCI
 * archive or a docker-archive. Every source verifies digests. */
#pragma once

#include "registry.h"

G_BEGIN_DECLS

typedef struct SysctrSource SysctrSource;

/* @tmp_dfd/@tmp_name: a directory the archive transports may unpack into. */
SysctrSource *sysctr_source_open (const SysctrRef *ref, const SysctrPullOptions *opts, int tmp_dfd, GError **error);
void sysctr_source_free (SysctrSource *src);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SysctrSource, sysctr_source_free)

/* @reference: a tag/ref name, a digest, or NULL for the source's only image. */
gboolean sysctr_source_get_manifest (SysctrSource *src, const char *reference, GBytes **out_data, char **out_media_type,
                                     char **out_digest, GError **error);
gboolean sysctr_source_fetch_blob (SysctrSource *src, const char *digest, gint64 size, int fd,
                                   SysctrProgressFunc progress, gpointer progress_data, GError **error);
gboolean sysctr_source_fetch_blob_bytes (SysctrSource *src, const char *digest, gint64 size, gsize max_size,
                                         GBytes **out, GError **error);
guint sysctr_source_request_count (SysctrSource *src);
/* The registry client of a docker source (for signature attachments). */
SysctrRegistry *sysctr_source_registry (SysctrSource *src);

/* Stop transfers in flight (registries); local sources finish quickly. */
void sysctr_source_cancel (SysctrSource *src);

G_END_DECLS
