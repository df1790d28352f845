/* Partial pulls of zstd:chunked layers: fetch the table of contents, find
 * each file in the store by its content digest, and fetch only the missing
 * files' compressed frames with HTTP Range requests.
 *
 * Invariant: the layer is imported through the same reader as any other
 * (a tar made from the TOC, file by file), and every file, fetched or
 * found, is checked against the TOC, whose digest the manifest carries.
 * The diff_id cannot be checked (that needs the whole stream): such a
 * layer is verified by its TOC, and says so. Anything that keeps a
 * partial pull from working here falls back to fetching the whole blob. */
#pragma once

#include <jansson.h>
#include <ostree.h>

#include "registry.h"

G_BEGIN_DECLS

/* The store's regular files by size, their content digests computed when
 * asked (and kept): what a TOC entry can be found as. Thread-safe. */
typedef struct SysctrStoreFiles SysctrStoreFiles;
SysctrStoreFiles *sysctr_store_files_new (OstreeRepo *repo, GError **error);
void sysctr_store_files_free (SysctrStoreFiles *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SysctrStoreFiles, sysctr_store_files_free)

typedef struct
{
  guint files_found;     /* regular files taken from the store */
  guint files_fetched;   /* regular files fetched */
  guint64 bytes_fetched; /* TOC and frames, as requested */
  guint requests;
} SysctrPartialStats;

/* Imports the layer @desc (blob @digest of @size bytes) of a registry
 * image, using @spool_fd as its sparse spool. FALSE with *out_fallback
 * and no error: not possible here (no TOC, ranges not served, nothing to
 * reuse...); FALSE with an error: the layer is bad. Inside a transaction. */
gboolean sysctr_partial_import (OstreeRepo *repo, SysctrRegistry *reg, SysctrStoreFiles *files, json_t *desc,
                                const char *digest, guint64 size, int spool_fd, const char *what, GVariant *meta,
                                char **out_commit, SysctrPartialStats *out_stats, gboolean *out_fallback,
                                GCancellable *cancellable, GError **error);

G_END_DECLS
