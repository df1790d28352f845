/* partial.c: zstd:chunked partial pulls (partial.h). */
#include "config.h"

#include "partial.h"

#include "chunked.h"
#include "layer.h"
#include "store.h"
#include "sysctr-util.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <string.h>
#include <sys/mman.h>
#include <zstd.h>

#define RANGE_GAP (4 * 1024) /* ranges closer than this are fetched as one */
#define RANGES_PER_REQUEST 64

struct SysctrStoreFiles
{
  OstreeRepo *repo;
  GMutex lock;
  GHashTable *by_size; /* guint64* size -> GPtrArray of checksums */
  GHashTable *sha256;  /* checksum -> "sha256:HEX" of the content */
};

void
sysctr_store_files_free (SysctrStoreFiles *f)
{
  if (f == NULL)
    return;
  g_hash_table_unref (f->by_size);
  g_hash_table_unref (f->sha256);
  g_mutex_clear (&f->lock);
  g_object_unref (f->repo);
  g_free (f);
}

SysctrStoreFiles *
sysctr_store_files_new (OstreeRepo *repo, GError **error)
{
  g_autoptr (SysctrStoreFiles) f = g_new0 (SysctrStoreFiles, 1);
  f->repo = g_object_ref (repo);
  g_mutex_init (&f->lock);
  f->by_size = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, (GDestroyNotify) g_ptr_array_unref);
  f->sha256 = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr (GHashTable) refs = NULL;
  if (!ostree_repo_list_refs_ext (repo, "sysctr/layer", &refs, OSTREE_REPO_LIST_REFS_EXT_NONE, NULL, error))
    return NULL;
  g_autoptr (GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, refs);
  while (g_hash_table_iter_next (&it, &k, &v))
    {
      g_autoptr (GHashTable) reachable = NULL;
      if (!ostree_repo_traverse_commit (repo, v, -1, &reachable, NULL, error))
        return NULL;
      GHashTableIter oit;
      gpointer key;
      g_hash_table_iter_init (&oit, reachable);
      while (g_hash_table_iter_next (&oit, &key, NULL))
        {
          const char *csum;
          OstreeObjectType type;
          ostree_object_name_deserialize (key, &csum, &type);
          if (type != OSTREE_OBJECT_TYPE_FILE || g_hash_table_contains (seen, csum))
            continue;
          g_hash_table_add (seen, g_strdup (csum));
          g_autoptr (GFileInfo) info = NULL;
          if (!ostree_repo_load_file (repo, csum, NULL, &info, NULL, NULL, error))
            return NULL;
          if (g_file_info_get_file_type (info) != G_FILE_TYPE_REGULAR)
            continue;
          gint64 size = g_file_info_get_size (info);
          GPtrArray *list = g_hash_table_lookup (f->by_size, &size);
          if (list == NULL)
            {
              list = g_ptr_array_new_with_free_func (g_free);
              g_hash_table_insert (f->by_size, g_memdup2 (&size, sizeof size), list);
            }
          g_ptr_array_add (list, g_strdup (csum));
        }
    }
  return g_steal_pointer (&f);
}

/* The content digest of stored object @csum (computed once). */
static char *
content_digest (SysctrStoreFiles *f, const char *csum, GError **error)
{
  g_mutex_lock (&f->lock);
  char *have = g_strdup (g_hash_table_lookup (f->sha256, csum));
  g_mutex_unlock (&f->lock);
  if (have)
    return have;
  g_autoptr (GInputStream) in = NULL;
  if (!ostree_repo_load_file (f->repo, csum, &in, NULL, NULL, NULL, error))
    return NULL;
  g_autoptr (SysctrSha256) h = sysctr_sha256_new ();
  g_autofree guint8 *buf = g_malloc (128 * 1024);
  for (;;)
    {
      gssize n = g_input_stream_read (in, buf, 128 * 1024, NULL, error);
      if (n < 0)
        return NULL;
      if (n == 0)
        break;
      sysctr_sha256_update (h, buf, n);
    }
  char *d = sysctr_sha256_digest (h);
  g_mutex_lock (&f->lock);
  g_hash_table_replace (f->sha256, g_strdup (csum), g_strdup (d));
  g_mutex_unlock (&f->lock);
  return d;
}

/* A stored object whose content is @digest and @size bytes, or NULL. */
static char *
find_content (SysctrStoreFiles *f, const char *digest, guint64 size, GError **error)
{
  gint64 key = (gint64) size;
  g_mutex_lock (&f->lock);
  GPtrArray *list = g_hash_table_lookup (f->by_size, &key);
  g_autoptr (GPtrArray) cands = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; list && i < list->len; i++)
    g_ptr_array_add (cands, g_strdup (list->pdata[i]));
  g_mutex_unlock (&f->lock);
  for (guint i = 0; i < cands->len; i++)
    {
      g_autofree char *d = content_digest (f, cands->pdata[i], error);
      if (d == NULL)
        return NULL;
      if (strcmp (d, digest) == 0)
        return g_strdup (cands->pdata[i]);
    }
  return NULL;
}

/* ---------------------------------------------------------- the tar ---- */

static gboolean
write_all (struct archive *w, const void *data, gsize len, GError **error)
{
  while (len > 0)
    {
      la_ssize_t n = archive_write_data (w, data, len);
      if (n <= 0)
        return sysctr_throw (error, SYSCTR_ERROR_FAILED, "writing the layer's tar: %s", archive_error_string (w));
      data = (const guint8 *) data + n;
      len -= n;
    }
  return TRUE;
}

/* The file's content from the store. */
static gboolean
copy_stored (OstreeRepo *repo, const char *csum, struct archive *w, guint64 size, GError **error)
{
  g_autoptr (GInputStream) in = NULL;
  if (!ostree_repo_load_file (repo, csum, &in, NULL, NULL, NULL, error))
    return FALSE;
  g_autofree guint8 *buf = g_malloc (128 * 1024);
  guint64 done = 0;
  for (;;)
    {
      gssize n = g_input_stream_read (in, buf, 128 * 1024, NULL, error);
      if (n < 0)
        return FALSE;
      if (n == 0)
        break;
      if (done + n > size)
        return sysctr_throw (error, SYSCTR_ERROR_FAILED, "stored object %s is larger than expected", csum);
      if (!write_all (w, buf, n, error))
        return FALSE;
      done += n;
    }
  if (done != size)
    return sysctr_throw (error, SYSCTR_ERROR_FAILED, "stored object %s is smaller than expected", csum);
  return TRUE;
}

/* The file's frames from the spool, decompressed: exactly @size bytes. */
static gboolean
copy_frames (int fd, const SysctrTocFile *file, struct archive *w, const char *what, GError **error)
{
  ZSTD_DCtx *dctx = ZSTD_createDCtx ();
  if (dctx == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_FAILED, "zstd: out of memory");
  gsize in_cap = ZSTD_DStreamInSize (), out_cap = ZSTD_DStreamOutSize ();
  g_autofree guint8 *inbuf = g_malloc (in_cap), *outbuf = g_malloc (out_cap);
  guint64 pos = file->offset, produced = 0;
  gboolean ok = TRUE;
  size_t last = 0;
  while (ok && pos < file->end_offset)
    {
      gsize want = MIN (in_cap, file->end_offset - pos);
      ssize_t n = pread (fd, inbuf, want, pos);
      if (n <= 0)
        {
          ok = sysctr_throw (error, SYSCTR_ERROR_FAILED, "reading the spool");
          break;
        }
      pos += n;
      ZSTD_inBuffer zin = { inbuf, (size_t) n, 0 };
      while (ok && zin.pos < zin.size)
        {
          ZSTD_outBuffer zout = { outbuf, out_cap, 0 };
          last = ZSTD_decompressStream (dctx, &zout, &zin);
          if (ZSTD_isError (last))
            ok = sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: %s: %s", what, file->name, ZSTD_getErrorName (last));
          else if (produced + zout.pos > file->size)
            ok = sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: %s: more data than its table of contents says", what,
                               file->name);
          else
            {
              ok = write_all (w, outbuf, zout.pos, error);
              produced += zout.pos;
            }
        }
    }
  ZSTD_freeDCtx (dctx);
  if (ok && (produced != file->size || last != 0))
    ok = sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: %s: less data than its table of contents says", what,
                       file->name);
  return ok;
}

static gboolean
set_xattrs (struct archive_entry *e, json_t *xattrs)
{
  const char *name;
  json_t *v;
  json_object_foreach (xattrs, name, v)
    {
      if (!json_is_string (v))
        return FALSE;
      gsize len = 0;
      g_autofree guchar *value = g_base64_decode (json_string_value (v), &len);
      archive_entry_xattr_add_entry (e, name, value, len);
    }
  return TRUE;
}

/* One TOC entry into the tar. @local: the stored object for a regular
 * file found in the store, else its frames are in @fd. */
static gboolean
write_entry (OstreeRepo *repo, struct archive *w, int fd, const SysctrTocFile *file, const char *local,
             const char *what, gboolean *out_unsupported, GError **error)
{
  struct archive_entry *e = archive_entry_new ();
  archive_entry_set_pathname (e, file->name);
  archive_entry_set_uid (e, file->uid);
  archive_entry_set_gid (e, file->gid);
  archive_entry_set_perm (e, file->mode);
  if (file->modtime)
    {
      g_autoptr (GDateTime) t = g_date_time_new_from_iso8601 (file->modtime, NULL);
      if (t)
        archive_entry_set_mtime (e, g_date_time_to_unix (t), g_date_time_get_microsecond (t) * 1000);
    }
  if (file->xattrs && !set_xattrs (e, file->xattrs))
    *out_unsupported = TRUE;
  switch (file->type)
    {
    case 'f':
      archive_entry_set_filetype (e, AE_IFREG);
      archive_entry_set_size (e, file->size);
      break;
    case 'd':
      archive_entry_set_filetype (e, AE_IFDIR);
      break;
    case 'l':
      archive_entry_set_filetype (e, AE_IFLNK);
      archive_entry_set_symlink (e, file->link ? file->link : "");
      break;
    case 'h':
      archive_entry_set_filetype (e, AE_IFREG);
      archive_entry_set_hardlink (e, file->link ? file->link : "");
      archive_entry_set_size (e, 0);
      break;
    default:
      if (g_strcmp0 (file->type_name, "char") == 0 || g_strcmp0 (file->type_name, "block") == 0)
        {
          archive_entry_set_filetype (e, strcmp (file->type_name, "char") == 0 ? AE_IFCHR : AE_IFBLK);
          archive_entry_set_rdevmajor (e, file->devmajor);
          archive_entry_set_rdevminor (e, file->devminor);
        }
      else if (g_strcmp0 (file->type_name, "fifo") == 0)
        archive_entry_set_filetype (e, AE_IFIFO);
      else
        *out_unsupported = TRUE;
    }
  if (*out_unsupported)
    {
      archive_entry_free (e);
      return FALSE;
    }
  gboolean ok
      = archive_write_header (w, e) == ARCHIVE_OK
            ? TRUE
            : sysctr_throw (error, SYSCTR_ERROR_FAILED, "writing the layer's tar: %s", archive_error_string (w));
  archive_entry_free (e);
  if (ok && file->type == 'f' && file->size > 0)
    ok = local ? copy_stored (repo, local, w, file->size, error) : copy_frames (fd, file, w, what, error);
  return ok;
}

typedef struct
{
  OstreeRepo *repo;
  int fd; /* the pipe's write end: closed when done */
  int spool_fd;
  SysctrToc *toc;
  GPtrArray *local;
  const char *what;
  gboolean unsupported;
  gint stop; /* atomic: the importer is done, write no more */
  GError *error;
} TarWriter;

static gpointer
tar_writer (gpointer data)
{
  TarWriter *tw = data;
  struct archive *w = archive_write_new ();
  archive_write_set_format_pax_restricted (w);
  archive_write_set_bytes_in_last_block (w, 1);
  gboolean ok = archive_write_open_fd (w, tw->fd) == ARCHIVE_OK
                    ? TRUE
                    : sysctr_throw (&tw->error, SYSCTR_ERROR_FAILED, "%s", archive_error_string (w));
  guint n = sysctr_toc_n_files (tw->toc);
  for (guint i = 0; ok && i < n && !g_atomic_int_get (&tw->stop); i++)
    ok = write_entry (tw->repo, w, tw->spool_fd, sysctr_toc_file (tw->toc, i), tw->local->pdata[i], tw->what,
                      &tw->unsupported, &tw->error);
  if (ok && archive_write_close (w) != ARCHIVE_OK)
    ok = sysctr_throw (&tw->error, SYSCTR_ERROR_FAILED, "writing the layer's tar: %s", archive_error_string (w));
  if (!ok && tw->error == NULL)
    sysctr_throw (&tw->error, SYSCTR_ERROR_FAILED, "%s: an entry of its table of contents cannot be rebuilt", tw->what);
  archive_write_free (w);
  close (tw->fd);
  return NULL;
}

/* ---------------------------------------------------------- the pull --- */

static gboolean
fetch (SysctrRegistry *reg, const char *digest, guint64 size, GArray *ranges, int fd, SysctrPartialStats *stats,
       gboolean *out_whole, GError **error)
{
  for (guint i = 0; i < ranges->len; i += RANGES_PER_REQUEST)
    {
      guint n = MIN (RANGES_PER_REQUEST, ranges->len - i);
      if (!sysctr_registry_fetch_ranges (reg, digest, size, &g_array_index (ranges, SysctrRange, i), n, fd, out_whole,
                                         error))
        return FALSE;
      stats->requests++;
      if (*out_whole)
        return TRUE;
    }
  return TRUE;
}

gboolean
sysctr_partial_import (OstreeRepo *repo, SysctrRegistry *reg, SysctrStoreFiles *files, json_t *desc, const char *digest,
                       guint64 size, int spool_fd, const char *what, GVariant *meta, char **out_commit,
                       SysctrPartialStats *out_stats, gboolean *out_fallback, GCancellable *cancellable, GError **error)
{
  *out_fallback = TRUE;
  memset (out_stats, 0, sizeof *out_stats);
  guint64 toc_offset = 0, toc_length = 0;
  if (!sysctr_toc_position (desc, &toc_offset, &toc_length, error))
    return FALSE;
  if (toc_length == 0 || toc_offset + toc_length > size || ftruncate (spool_fd, size) != 0)
    return FALSE;

  /* the table of contents first (checked against the manifest's digest) */
  gboolean whole = FALSE;
  g_autoptr (GArray) ranges = g_array_new (FALSE, FALSE, sizeof (SysctrRange));
  SysctrRange toc_range = { toc_offset, toc_offset + toc_length };
  g_array_append_val (ranges, toc_range);
  if (!fetch (reg, digest, size, ranges, spool_fd, out_stats, &whole, error))
    return FALSE;
  if (whole)
    {
      sysctr_debug ("%s: the registry does not serve ranges", what);
      return FALSE;
    }
  out_stats->bytes_fetched += toc_length;
  g_autoptr (SysctrToc) toc = NULL;
  if (!sysctr_toc_load (desc, spool_fd, &toc, error))
    return FALSE;
  *out_fallback = FALSE; /* from here on, an error is the layer's */

  /* what the store has, what to fetch */
  guint n = sysctr_toc_n_files (toc);
  g_autoptr (GPtrArray) local = g_ptr_array_new_full (n, g_free);
  g_array_set_size (ranges, 0);
  for (guint i = 0; i < n; i++)
    {
      const SysctrTocFile *f = sysctr_toc_file (toc, i);
      char *found = NULL;
      if (f->type == 'f' && f->size > 0)
        {
          g_autoptr (GError) lerr = NULL;
          found = f->digest ? find_content (files, f->digest, f->size, &lerr) : NULL;
          if (lerr)
            {
              g_propagate_error (error, g_steal_pointer (&lerr));
              return FALSE;
            }
          if (found)
            out_stats->files_found++;
          else if (f->end_offset <= f->offset || f->end_offset > size)
            return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: %s: its frames are not inside the blob", what,
                                 f->name);
          else
            {
              out_stats->files_fetched++;
              SysctrRange *last = ranges->len ? &g_array_index (ranges, SysctrRange, ranges->len - 1) : NULL;
              if (last && f->offset >= last->start && f->offset <= last->end + RANGE_GAP)
                last->end = MAX (last->end, f->end_offset);
              else
                {
                  SysctrRange r = { f->offset, f->end_offset };
                  g_array_append_val (ranges, r);
                }
            }
        }
      g_ptr_array_add (local, found);
    }
  if (out_stats->files_found == 0)
    {
      sysctr_debug ("%s: none of its files is in the store", what);
      *out_fallback = TRUE;
      return FALSE;
    }
  for (guint i = 0; i < ranges->len; i++)
    {
      SysctrRange *r = &g_array_index (ranges, SysctrRange, i);
      out_stats->bytes_fetched += r->end - r->start;
    }
  if (ranges->len && !fetch (reg, digest, size, ranges, spool_fd, out_stats, &whole, error))
    return FALSE;
  if (whole)
    return sysctr_throw (error, SYSCTR_ERROR_NETWORK, "%s: the registry stopped serving ranges", what);

  /* the layer as a tar, file by file, through a pipe into the usual
   * import (every file checked against the TOC): never whole in memory */
  int pipefd[2];
  if (pipe2 (pipefd, O_CLOEXEC) != 0)
    return sysctr_throw_errno (error, "pipe");
  TarWriter tw = {
    .repo = repo,
    .fd = pipefd[1],
    .spool_fd = spool_fd,
    .toc = toc,
    .local = local,
    .what = what,
  };
  GThread *writer = g_thread_new ("sysctr-tar", tar_writer, &tw);
  g_autoptr (GError) import_error = NULL;
  gboolean ok = sysctr_layer_import (repo, pipefd[0], what, NULL, toc, meta, out_commit, NULL, NULL, cancellable,
                                     &import_error);
  /* drain what the writer still writes (closing the pipe under it would
   * raise SIGPIPE); it stops at the next entry */
  g_atomic_int_set (&tw.stop, 1);
  char sink[64 * 1024];
  while (read (pipefd[0], sink, sizeof sink) > 0 || errno == EINTR)
    ;
  close (pipefd[0]);
  g_thread_join (writer);
  if (tw.error)
    {
      /* the writer's reason first: the importer only saw a short tar */
      g_clear_pointer (out_commit, g_free);
      *out_fallback = tw.unsupported;
      if (tw.unsupported)
        {
          g_clear_error (&tw.error);
          return FALSE;
        }
      g_propagate_error (error, g_steal_pointer (&tw.error));
      return FALSE;
    }
  if (!ok)
    {
      g_propagate_error (error, g_steal_pointer (&import_error));
      return FALSE;
    }
  return TRUE;
}
