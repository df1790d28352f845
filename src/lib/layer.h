/* Import one layer (tar, tar+gzip, tar+zstd) into the OSTree repo as its
 * own commit, refusing or neutralising what a hostile tar can do. */
#pragma once

#include <ostree.h>

G_BEGIN_DECLS

typedef struct
{
  guint64 entries;
  guint64 uncompressed;
  guint dropped_special; /* device nodes, fifos, sockets */
} SysctrLayerStats;

typedef struct SysctrToc SysctrToc;

/* Reads the (possibly compressed) layer from @fd (from its start; a pipe
 * as it comes), hashes the uncompressed
 * stream, and when @expected_diff_id is non-NULL fails unless they match,
 * or, for a zstd:chunked layer (@toc non-NULL), unless every file matches
 * its table of contents. Must be called inside a repo transaction. Returns
 * the commit checksum; no ref is written. */
gboolean sysctr_layer_import (OstreeRepo *repo, int fd, const char *what, const char *expected_diff_id, SysctrToc *toc,
                              GVariant *commit_metadata, char **out_commit, char **out_diff_id,
                              SysctrLayerStats *out_stats, GCancellable *cancellable, GError **error);

/* The same, over an in-memory blob (fuzzing, tests). */
gboolean sysctr_layer_import_bytes (OstreeRepo *repo, const void *data, gsize len, char **out_commit, GError **error);

/* The most uncompressed bytes one layer may hold (SYSCTR_MAX_LAYER_BYTES
 * lowers it); pull also refuses compressed blobs declared larger. */
guint64 sysctr_layer_max_bytes (void);

/* Writes a dirmeta object; returns its binary checksum. */
gboolean sysctr_write_dirmeta (OstreeRepo *repo, GFileInfo *info, GVariant *xattrs, guchar **out_csum,
                               GCancellable *cancellable, GError **error);

/* root:root 0755: directories a tar only implies, and empty trees. */
gboolean sysctr_write_default_dirmeta (OstreeRepo *repo, char **out_checksum, GCancellable *cancellable,
                                       GError **error);

G_END_DECLS
