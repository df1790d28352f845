/* Distribution API client (libcurl): ping, auth (Bearer, Basic),
 * manifests and blobs, every byte checked against its digest. */
#pragma once

#include <gio/gio.h>

#include "reference.h"

G_BEGIN_DECLS

typedef struct
{
  gboolean tls_verify;
  gboolean tls_verify_set; /* given on the command line (update merges) */
  char *creds;             /* "USER:PASS" or NULL; never stored */
  char *authfile;          /* path or NULL */
  char *platform;          /* "os/arch[/variant]" or NULL for this host */
  char *signature_policy;  /* containers-policy.json, or NULL for the system one */
  char *registries_d;      /* containers-registries.d directory, or NULL for the system one */
  gboolean quiet;
} SysctrPullOptions;

void sysctr_pull_options_init (SysctrPullOptions *opts);
void sysctr_pull_options_clear (SysctrPullOptions *opts);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (SysctrPullOptions, sysctr_pull_options_clear)

#define SYSCTR_MAX_MANIFEST_SIZE (4 * 1024 * 1024)
#define SYSCTR_MAX_CONFIG_SIZE (8 * 1024 * 1024)

typedef struct SysctrRegistry SysctrRegistry;

SysctrRegistry *sysctr_registry_new (const SysctrRef *ref, const SysctrPullOptions *opts, GError **error);
void sysctr_registry_free (SysctrRegistry *reg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SysctrRegistry, sysctr_registry_free)

/* Abort every transfer in flight (and any later one) on this registry,
 * from any thread: a pull whose one layer failed does not wait for the
 * others. They fail with G_IO_ERROR_CANCELLED. */
void sysctr_registry_cancel (SysctrRegistry *reg);

/* Number of HTTP requests made so far (for tests and benchmarks). */
guint sysctr_registry_request_count (SysctrRegistry *reg);

/* @reference is a tag or a digest. When it is a digest, the content is
 * verified against it. */
gboolean sysctr_registry_get_manifest (SysctrRegistry *reg, const char *reference, GBytes **out_data,
                                       char **out_media_type, char **out_digest, GError **error);

typedef void (*SysctrProgressFunc) (gpointer user_data, guint64 bytes);

/* Stream a blob into @fd, hashing while it streams; fails (and the
 * caller drops the file) unless its sha256 is @digest and it has exactly
 * @size bytes (when @size >= 0). */
gboolean sysctr_registry_fetch_blob (SysctrRegistry *reg, const char *digest, gint64 size, int fd,
                                     SysctrProgressFunc progress, gpointer progress_data, GError **error);

gboolean sysctr_registry_fetch_blob_bytes (SysctrRegistry *reg, const char *digest, gint64 size, gsize max_size,
                                           GBytes **out, GError **error);

/* Byte ranges [start, end) of a blob (zstd:chunked partial pulls). */
typedef struct
{
  guint64 start, end;
} SysctrRange;

/* Asks for @ranges (sorted, disjoint) of blob @digest in one request and
 * writes each at its offset into @fd (the blob's spool, @blob_size long).
 * Nothing here is checked against a digest: the caller checks what it
 * reads out of the ranges. *out_whole: the registry ignored the ranges
 * (HTTP 200); nothing was written. */
gboolean sysctr_registry_fetch_ranges (SysctrRegistry *reg, const char *digest, guint64 blob_size,
                                       const SysctrRange *ranges, guint n, int fd, gboolean *out_whole, GError **error);

G_END_DECLS
