/* Small helpers shared by the CLI and the library (GLib side). */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <jansson.h>
#include <unistd.h>

G_BEGIN_DECLS

/* g_autofd needs GLib 2.76; Debian 12 has 2.74. */
static inline void
sysctr_close_fdp (int *fdp)
{
  if (*fdp >= 0)
    {
      int errsv = errno;
      close (*fdp);
      errno = errsv;
    }
}
#define sysctr_autofd __attribute__ ((cleanup (sysctr_close_fdp)))

static inline int
sysctr_steal_fd (int *fdp)
{
  int fd = *fdp;
  *fdp = -1;
  return fd;
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (json_t, json_decref)

#define SYSCTR_ERROR (sysctr_error_quark ())
GQuark sysctr_error_quark (void);

typedef enum
{
  SYSCTR_ERROR_FAILED,
  SYSCTR_ERROR_INVALID, /* bad input from the user */
  SYSCTR_ERROR_HOSTILE, /* bad input from a registry or an image */
  SYSCTR_ERROR_NOT_FOUND,
  SYSCTR_ERROR_EXISTS,
  SYSCTR_ERROR_AUTH,
  SYSCTR_ERROR_NETWORK,
  SYSCTR_ERROR_NOT_GRANTED, /* the image asks for a privilege the admin did not grant */
  SYSCTR_ERROR_USAGE,       /* a command line that does not parse: exit status 2 */
  SYSCTR_ERROR_REJECTED,    /* containers-policy.json does not accept the image */
  SYSCTR_ERROR_HALTED,      /* a halt record in the update lock stops updates of this container */
} SysctrError;

gboolean sysctr_throw_errno (GError **error, const char *fmt, ...) G_GNUC_PRINTF (2, 3);
gboolean sysctr_throw (GError **error, SysctrError code, const char *fmt, ...) G_GNUC_PRINTF (3, 4);
void sysctr_prefix_error (GError **error, const char *fmt, ...) G_GNUC_PRINTF (2, 3);

gboolean sysctr_write_file_at (int dfd, const char *path, const void *data, gsize len, mode_t mode, GError **error);
gboolean sysctr_read_file_at (int dfd, const char *path, gsize max_size, char **out_data, gsize *out_len,
                              GError **error);
/* The same for an open fd (a regular file, read whole); @path names it in
 * errors. */
gboolean sysctr_read_fd (int fd, gsize max_size, const char *path, char **out_data, gsize *out_len, GError **error);
gboolean sysctr_mkdir_p_at (int dfd, const char *path, mode_t mode, GError **error);
gboolean sysctr_rm_rf_at (int dfd, const char *path, GError **error);
/* Names in the directory @dfd/@path (without "." and ".."), sorted.
 * A missing directory is an empty list when @missing_ok. */
gboolean sysctr_dir_list_at (int dfd, const char *path, gboolean missing_ok, GPtrArray **out_names, GError **error);
gboolean sysctr_opendir_at (int dfd, const char *path, gboolean create, int *out_fd, GError **error);

json_t *sysctr_json_parse (const char *data, gsize len, const char *what, GError **error);
char *sysctr_json_dump (json_t *json, gboolean pretty);
const char *sysctr_json_get_string (json_t *obj, const char *key);

char *sysctr_sha256_hex (const void *data, gsize len);

/* Streaming SHA-256 with OpenSSL: every blob and every uncompressed layer
 * goes through it, and GLib's GChecksum is several times slower (measured
 * in bench/results/profile.txt: 298 MB/s against 1.7 GB/s with SHA-NI). */
typedef struct SysctrSha256 SysctrSha256;
SysctrSha256 *sysctr_sha256_new (void);
void sysctr_sha256_update (SysctrSha256 *h, const void *data, gsize len);
/* "sha256:HEX"; the hash can be updated no more. */
char *sysctr_sha256_digest (SysctrSha256 *h);
void sysctr_sha256_reset (SysctrSha256 *h);
void sysctr_sha256_free (SysctrSha256 *h);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SysctrSha256, sysctr_sha256_free)
gboolean sysctr_digest_valid (const char *digest);

char *sysctr_format_size (guint64 bytes);

/* Now, UTC, ISO 8601 ("2026-12-03T00:21:33.973943Z"). */
char *sysctr_iso_now (void);

/* Bytes this process (all its threads) has caused to be written to
 * storage so far: write_bytes of /proc/self/io (page-cache writes counted
 * when dirtied; what the kernel writes for the filesystem's own metadata
 * and journal is not in it). 0 when unknown. */
guint64 sysctr_io_write_bytes (void);

/* For g_ptr_array_sort of strings: it passes pointers to the elements. */
gint sysctr_strptr_cmp (gconstpointer a, gconstpointer b);

/* @s with control characters escaped: one printable line, for messages
 * that quote what a registry, an image or a file said. */
char *sysctr_printable (const char *s);

typedef struct SysctrLock SysctrLock;
gboolean sysctr_lock_acquire (int state_dfd, SysctrLock **out_lock, GError **error);
void sysctr_lock_release (SysctrLock *lock);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SysctrLock, sysctr_lock_release)

/* Fault injection for crash-consistency tests: when SYSCTR_CRASH_AT names
 * this point (or its ordinal), the process kills itself with SIGKILL. */
void sysctr_crash_point (const char *name);

gboolean sysctr_verbose (void);
void sysctr_set_verbose (gboolean verbose);
/* With --verbose: one line on stderr, "sysctr: " and the formatted text
 * (what an operator debugging a pull or an install wants: requests,
 * redirects, the platform chosen, layer timings, files written). */
void sysctr_debug (const char *fmt, ...) G_GNUC_PRINTF (1, 2);

/* Every line the library prints goes through sysctr_printable (an image,
 * a registry or a unit's output never reach the terminal raw: no escape
 * sequences, no line breaks inside a line). sysctr_warn: "warning: TEXT"
 * on stderr; sysctr_note: "TEXT" on stderr; sysctr_say: "TEXT" on stdout;
 * sysctr_say_lines: each line of TEXT, after PREFIX, on stderr or stdout. */
void sysctr_warn (const char *fmt, ...) G_GNUC_PRINTF (1, 2);
void sysctr_note (const char *fmt, ...) G_GNUC_PRINTF (1, 2);
void sysctr_say (const char *fmt, ...) G_GNUC_PRINTF (1, 2);
void sysctr_say_lines (gboolean to_stderr, const char *prefix, const char *text);

G_END_DECLS
