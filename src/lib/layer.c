#include "config.h"

#include "layer.h"

#include "store.h"

#include "chunked.h"

#include "sysctr-util.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

/* Limits that keep a decompression bomb from filling the disk; the
 * environment can lower (or raise) them. */
static guint64
limit_from_env (const char *name, guint64 def)
{
  const char *s = g_getenv (name);
  if (s == NULL || *s == '\0')
    return def;
  return g_ascii_strtoull (s, NULL, 10);
}

#define DEFAULT_MAX_LAYER_BYTES (G_GUINT64_CONSTANT (64) * 1024 * 1024 * 1024)
#define DEFAULT_MAX_LAYER_ENTRIES 4000000
/* far beyond real images (tens), far below what recursion can take */
#define SYSCTR_MAX_PATH_DEPTH 512

guint64
sysctr_layer_max_bytes (void)
{
  return limit_from_env ("SYSCTR_MAX_LAYER_BYTES", DEFAULT_MAX_LAYER_BYTES);
}

/* A GInputStream reading the current entry's data out of libarchive. */
typedef struct
{
  GInputStream parent;
  struct archive *a;
  SysctrSha256 *content; /* or NULL: the data as read (zstd:chunked checks) */
} ArchiveStream;
typedef GInputStreamClass ArchiveStreamClass;
static GType archive_stream_get_type (void);
G_DEFINE_TYPE (ArchiveStream, archive_stream, G_TYPE_INPUT_STREAM)

static gssize
archive_stream_read (GInputStream *stream, void *buffer, gsize count, GCancellable *cancellable, GError **error)
{
  ArchiveStream *self = (ArchiveStream *) stream;
  la_ssize_t n = archive_read_data (self->a, buffer, count);
  if (n < 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", archive_error_string (self->a));
      return -1;
    }
  if (self->content && n > 0)
    sysctr_sha256_update (self->content, buffer, n);
  return n;
}

static gboolean
archive_stream_close (GInputStream *stream, GCancellable *cancellable, GError **error)
{
  return TRUE;
}

static void
archive_stream_class_init (ArchiveStreamClass *klass)
{
  klass->read_fn = archive_stream_read;
  klass->close_fn = archive_stream_close;
}

static void
archive_stream_init (ArchiveStream *self)
{
}

gboolean
sysctr_write_dirmeta (OstreeRepo *repo, GFileInfo *info, GVariant *xattrs, guchar **out_csum, GCancellable *cancellable,
                      GError **error)
{
  g_autoptr (GVariant) meta = g_variant_ref_sink (ostree_create_directory_metadata (info, xattrs));
  return ostree_repo_write_metadata (repo, OSTREE_OBJECT_TYPE_DIR_META, NULL, meta, out_csum, cancellable, error);
}

gboolean
sysctr_write_default_dirmeta (OstreeRepo *repo, char **out_checksum, GCancellable *cancellable, GError **error)
{
  g_autoptr (GFileInfo) info = g_file_info_new ();
  g_file_info_set_attribute_uint32 (info, "standard::type", G_FILE_TYPE_DIRECTORY);
  g_file_info_set_attribute_uint32 (info, "unix::uid", 0);
  g_file_info_set_attribute_uint32 (info, "unix::gid", 0);
  g_file_info_set_attribute_uint32 (info, "unix::mode", S_IFDIR | 0755);
  g_autofree guchar *raw = NULL;
  if (!sysctr_write_dirmeta (repo, info, NULL, &raw, cancellable, error))
    return FALSE;
  *out_checksum = ostree_checksum_from_bytes (raw);
  return TRUE;
}

typedef struct
{
  const char *what;
  struct archive *outer; /* decompression: raw format, every filter */
  SysctrSha256 *diff_sum;
  guint64 uncompressed;
  guint64 max_bytes;
  gboolean too_big;
  gboolean eof; /* the uncompressed stream has ended */
  char buf[128 * 1024];
} Source;

/* The tar reader pulls decompressed bytes through here: this is where the
 * diff_id is computed and the size limit enforced. */
static la_ssize_t
inner_read (struct archive *a, void *data, const void **out_buf)
{
  Source *src = data;
  la_ssize_t n = archive_read_data (src->outer, src->buf, sizeof src->buf);
  if (n < 0)
    {
      archive_set_error (a, EIO, "decompressing: %s", archive_error_string (src->outer));
      return -1;
    }
  src->uncompressed += n;
  if (n == 0)
    src->eof = TRUE;
  if (src->uncompressed > src->max_bytes)
    {
      src->too_big = TRUE;
      archive_set_error (a, EFBIG, "uncompressed layer exceeds the limit");
      return -1;
    }
  sysctr_sha256_update (src->diff_sum, src->buf, n);
  *out_buf = src->buf;
  return n;
}

typedef struct
{
  OstreeRepo *repo;
  OstreeMutableTree *root;
  GHashTable *regular_files; /* normalized path -> content checksum */
  char *default_dirmeta;
  const char *what;
  SysctrToc *toc; /* a zstd:chunked layer's table of contents, or NULL */
  SysctrLayerStats stats;
  guint64 max_entries;
  guint reused;      /* regular files the store already held: not written */
  gboolean precheck; /* look for each file in the store before writing it */
} Import;

/* Only a store that holds layers can hold a layer's files: into an empty
 * one (a first install) files are written without looking first (the
 * look costs about 15 % of a cold pull's CPU). */
static gboolean
store_has_layers (OstreeRepo *repo)
{
  g_autoptr (GHashTable) refs = NULL;
  if (!ostree_repo_list_refs_ext (repo, "sysctr/layer", &refs, OSTREE_REPO_LIST_REFS_EXT_NONE, NULL, NULL))
    return TRUE;
  return g_hash_table_size (refs) > 0;
}

static char *
printable (const char *s)
{
  return g_strescape (s, NULL);
}

/* Normalise a tar path to components below the root. "..", and names
 * that are not UTF-8, are refused; "/", "./" and empty parts dropped. */
static gboolean
normalize_path (Import *imp, const char *raw, GPtrArray **out_parts, GError **error)
{
  if (raw == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: tar entry without a name", imp->what);
  if (!g_utf8_validate (raw, -1, NULL))
    {
      g_autofree char *p = printable (raw);
      return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                           "%s: file name \"%s\" is not valid UTF-8 (OSTree cannot store it)", imp->what, p);
    }
  g_autoptr (GPtrArray) parts = g_ptr_array_new_with_free_func (g_free);
  g_auto (GStrv) split = g_strsplit (raw, "/", -1);
  for (char **c = split; *c; c++)
    {
      if (**c == '\0' || strcmp (*c, ".") == 0)
        continue;
      if (strcmp (*c, "..") == 0)
        {
          g_autofree char *p = printable (raw);
          return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: tar entry \"%s\" climbs out of the layer with \"..\"",
                               imp->what, p);
        }
      if (strlen (*c) > 255)
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: file name component longer than 255 bytes", imp->what);
      g_ptr_array_add (parts, g_strdup (*c));
    }
  /* OSTree writes and checks out trees recursively: a chain of 20000
   * directories (1 MB of tar) overflowed the stack of sysctr pull */
  if (parts->len > SYSCTR_MAX_PATH_DEPTH)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: a path nested more than %d directories deep; refused",
                         imp->what, SYSCTR_MAX_PATH_DEPTH);
  *out_parts = g_steal_pointer (&parts);
  return TRUE;
}

static char *
join_parts (GPtrArray *parts)
{
  GString *s = g_string_new (NULL);
  for (guint i = 0; i < parts->len; i++)
    {
      if (i)
        g_string_append_c (s, '/');
      g_string_append (s, parts->pdata[i]);
    }
  return g_string_free (s, FALSE);
}

/* Walks to the parent directory of the entry, creating directories that
 * the tar did not list. A component that is a file (e.g. a symlink made
 * earlier in this layer) stops the walk: nothing is written through it. */
static gboolean
get_parent (Import *imp, GPtrArray *parts, OstreeMutableTree **out_parent, GError **error)
{
  OstreeMutableTree *dir = imp->root;
  for (guint i = 0; i + 1 < parts->len; i++)
    {
      g_autofree char *file_csum = NULL;
      g_autoptr (OstreeMutableTree) sub = NULL;
      if (!ostree_mutable_tree_lookup (dir, parts->pdata[i], &file_csum, &sub, NULL))
        {
          if (!ostree_mutable_tree_ensure_dir (dir, parts->pdata[i], &sub, error))
            return FALSE;
          ostree_mutable_tree_set_metadata_checksum (sub, imp->default_dirmeta);
        }
      else if (file_csum != NULL)
        {
          g_autofree char *p = join_parts (parts);
          return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                               "%s: tar entry \"%s\" goes through \"%s\", which is not a directory", imp->what, p,
                               (char *) parts->pdata[i]);
        }
      dir = sub; /* owned by the parent tree */
    }
  *out_parent = dir;
  return TRUE;
}

static gint
name_cmp (gconstpointer a, gconstpointer b, gpointer data)
{
  return strcmp (a, b);
}

static gboolean
add_xattr (gpointer key, gpointer value, gpointer data)
{
  gsize len;
  const void *v = g_bytes_get_data (value, &len);
  g_variant_builder_add (data, "(@ay@ay)", g_variant_new_bytestring (key),
                         g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, v, len, 1));
  return FALSE;
}

static GVariant *
entry_xattrs (struct archive_entry *entry)
{
  /* One value per name (the last), sorted by name: what the object on
   * disk will read back as. A tar may carry a name twice (libarchive's own
   * pax writer records each xattr as SCHILY.xattr and LIBARCHIVE.xattr);
   * checksumming both would name the object by metadata it cannot have,
   * and the next image whose file has that checksum would get this one's
   * xattrs. */
  g_autoptr (GTree) by_name = g_tree_new_full (name_cmp, NULL, g_free, (GDestroyNotify) g_bytes_unref);
  const char *name;
  const void *value;
  size_t size;
  archive_entry_xattr_reset (entry);
  while (archive_entry_xattr_next (entry, &name, &value, &size) == ARCHIVE_OK)
    if (name != NULL)
      g_tree_replace (by_name, g_strdup (name), g_bytes_new (value, size));
  GVariantBuilder b;
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(ayay)"));
  g_tree_foreach (by_name, add_xattr, &b);
  return g_variant_ref_sink (g_variant_builder_end (&b));
}

static GFileInfo *
entry_info (struct archive_entry *entry, GFileType type, guint32 mode)
{
  GFileInfo *info = g_file_info_new ();
  g_file_info_set_attribute_uint32 (info, "standard::type", type);
  g_file_info_set_attribute_boolean (info, "standard::is-symlink", type == G_FILE_TYPE_SYMBOLIC_LINK);
  g_file_info_set_attribute_uint32 (info, "unix::uid", (guint32) archive_entry_uid (entry));
  g_file_info_set_attribute_uint32 (info, "unix::gid", (guint32) archive_entry_gid (entry));
  g_file_info_set_attribute_uint32 (info, "unix::mode", mode);
  return info;
}

/* The dirmeta object of a directory entry (mode, owner, xattrs). */
static char *
entry_dirmeta (Import *imp, struct archive_entry *entry, guint32 perm, GCancellable *cancellable, GError **error)
{
  g_autoptr (GFileInfo) info = entry_info (entry, G_FILE_TYPE_DIRECTORY, S_IFDIR | perm);
  g_autoptr (GVariant) xattrs = entry_xattrs (entry);
  g_autofree guchar *raw = NULL;
  if (!sysctr_write_dirmeta (imp->repo, info, xattrs, &raw, cancellable, error))
    return NULL;
  return ostree_checksum_from_bytes (raw);
}

static gboolean
replace_file (Import *imp, OstreeMutableTree *parent, const char *name, const char *csum, GError **error)
{
  /* A later entry of the same name wins, as in overlayfs and tar. */
  if (!ostree_mutable_tree_remove (parent, name, TRUE, error))
    return FALSE;
  return ostree_mutable_tree_replace_file (parent, name, csum, error);
}

/* Small files go to OSTree in one call from memory, without the
 * content-stream header that the generic write_content path builds and
 * parses back per file. */
#define INLINE_MAX (64 * 1024)
/* Files up to this size are read into memory and checksummed before
 * anything is written: a file the store already holds (an unchanged file
 * of a changed layer) is then not written again. Flash wears by writes. */
#define PRECHECK_MAX (16 * 1024 * 1024)

static GFileInfo *
regfile_info (guint32 uid, guint32 gid, guint32 mode, guint64 size)
{
  GFileInfo *info = g_file_info_new ();
  g_file_info_set_attribute_uint32 (info, "standard::type", G_FILE_TYPE_REGULAR);
  g_file_info_set_attribute_uint32 (info, "unix::uid", uid);
  g_file_info_set_attribute_uint32 (info, "unix::gid", gid);
  g_file_info_set_attribute_uint32 (info, "unix::mode", mode);
  g_file_info_set_attribute_uint64 (info, "standard::size", size);
  return info;
}

/* The whole file's data from the archive into @buf (@size bytes). */
static gboolean
read_whole (Import *imp, struct archive *a, guint8 *buf, la_int64_t size, GError **error)
{
  la_int64_t got = 0;
  while (got < size)
    {
      la_ssize_t n = archive_read_data (a, buf + got, size - got);
      if (n < 0)
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s", archive_error_string (a));
      if (n == 0)
        break;
      got += n;
    }
  if (got != size)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: file shorter than its tar header says", imp->what);
  return TRUE;
}

static char *
write_regfile (Import *imp, struct archive *a, struct archive_entry *entry, guint32 uid, guint32 gid, guint32 mode,
               GVariant *xattrs, char **out_content_digest, GCancellable *cancellable, GError **error)
{
  la_int64_t size = archive_entry_size (entry);
  if (size < 0)
    {
      sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: negative size", imp->what);
      return NULL;
    }
  g_autoptr (GFileInfo) info = regfile_info (uid, gid, mode, size);
  if (size <= INLINE_MAX && !imp->precheck)
    {
      g_autofree guint8 *buf = g_malloc (size > 0 ? size : 1);
      if (!read_whole (imp, a, buf, size, error))
        return NULL;
      if (out_content_digest)
        {
          g_autofree char *hex = sysctr_sha256_hex (buf, size);
          *out_content_digest = g_strconcat ("sha256:", hex, NULL);
        }
      return ostree_repo_write_regfile_inline (imp->repo, NULL, uid, gid, mode, xattrs, buf, size, cancellable, error);
    }
  if (size <= PRECHECK_MAX && imp->precheck)
    {
      g_autofree guint8 *buf = g_malloc (size > 0 ? size : 1);
      if (!read_whole (imp, a, buf, size, error))
        return NULL;
      if (out_content_digest)
        {
          g_autofree char *hex = sysctr_sha256_hex (buf, size);
          *out_content_digest = g_strconcat ("sha256:", hex, NULL);
        }
      /* the object's checksum first: if the store has it, nothing is
       * written */
      g_autoptr (GInputStream) mem = g_memory_input_stream_new_from_data (buf, size, NULL);
      g_autofree guchar *raw = NULL;
      gboolean have = FALSE;
      if (!ostree_checksum_file_from_input (info, xattrs, mem, OSTREE_OBJECT_TYPE_FILE, &raw, cancellable, error))
        return NULL;
      char *csum = ostree_checksum_from_bytes (raw);
      if (!ostree_repo_has_object (imp->repo, OSTREE_OBJECT_TYPE_FILE, csum, &have, cancellable, error))
        {
          g_free (csum);
          return NULL;
        }
      if (have)
        {
          imp->reused++;
          return csum;
        }
      g_free (csum);
      if (size <= INLINE_MAX)
        return ostree_repo_write_regfile_inline (imp->repo, NULL, uid, gid, mode, xattrs, buf, size, cancellable,
                                                 error);
      g_autoptr (GInputStream) data = g_memory_input_stream_new_from_data (buf, size, NULL);
      g_autoptr (GInputStream) content_stream = NULL;
      guint64 length = 0;
      g_autofree guchar *written = NULL;
      if (!ostree_raw_file_to_content_stream (data, info, xattrs, &content_stream, &length, cancellable, error)
          || !ostree_repo_write_content (imp->repo, NULL, content_stream, length, &written, cancellable, error))
        return NULL;
      return ostree_checksum_from_bytes (written);
    }
  /* Larger files stream. (OstreeContentWriter would be the direct way,
   * but it replaces an object that already exists by a new inode, and a
   * deployment of the previous version keeps the old one: the file would
   * take its space twice. write_content keeps the existing object.) */
  ArchiveStream *as = g_object_new (archive_stream_get_type (), NULL);
  as->a = a;
  g_autoptr (SysctrSha256) content = out_content_digest ? sysctr_sha256_new () : NULL;
  as->content = content;
  g_autoptr (GInputStream) data = G_INPUT_STREAM (as);
  g_autoptr (GInputStream) content_stream = NULL;
  guint64 length = 0;
  if (!ostree_raw_file_to_content_stream (data, info, xattrs, &content_stream, &length, cancellable, error))
    return NULL;
  g_autofree guchar *raw = NULL;
  if (!ostree_repo_write_content (imp->repo, NULL, content_stream, length, &raw, cancellable, error))
    return NULL;
  if (out_content_digest)
    *out_content_digest = sysctr_sha256_digest (content);
  return ostree_checksum_from_bytes (raw);
}

static gboolean
import_entry (Import *imp, struct archive *a, struct archive_entry *entry, GCancellable *cancellable, GError **error)
{
  g_autoptr (GPtrArray) parts = NULL;
  if (!normalize_path (imp, archive_entry_pathname (entry), &parts, error))
    return FALSE;
  g_assert (parts != NULL);

  mode_t type = archive_entry_filetype (entry);
  const char *hardlink = archive_entry_hardlink (entry);
  guint32 perm = archive_entry_perm (entry) & 07777;

  if (parts->len == 0)
    {
      if (type == AE_IFDIR && hardlink == NULL)
        {
          g_autofree char *csum = entry_dirmeta (imp, entry, perm, cancellable, error);
          if (csum == NULL)
            return FALSE;
          ostree_mutable_tree_set_metadata_checksum (imp->root, csum);
          return TRUE;
        }
      return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: tar entry for the root is not a directory", imp->what);
    }

  OstreeMutableTree *parent = NULL;
  if (!get_parent (imp, parts, &parent, error))
    return FALSE;
  const char *name = parts->pdata[parts->len - 1];
  g_autofree char *path = join_parts (parts);

  if (g_str_has_prefix (name, ".wh.") && strcmp (name, ".wh..wh..opq") != 0)
    {
      const char *target = name + strlen (".wh.");
      if (g_str_has_prefix (target, ".wh."))
        return TRUE; /* aufs bookkeeping (.wh..wh.plnk etc.): not content */
      if (*target == '\0' || strcmp (target, ".") == 0 || strcmp (target, "..") == 0)
        {
          g_autofree char *p = printable (path);
          return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: whiteout \"%s\" names no file in its directory",
                               imp->what, p);
        }
    }

  if (hardlink != NULL)
    {
      g_autoptr (GPtrArray) tparts = NULL;
      if (!normalize_path (imp, hardlink, &tparts, error))
        return FALSE;
      g_assert (tparts != NULL);
      g_autofree char *tpath = join_parts (tparts);
      const char *csum = g_hash_table_lookup (imp->regular_files, tpath);
      if (csum == NULL)
        {
          g_autofree char *p = printable (path);
          g_autofree char *t = printable (tpath);
          return sysctr_throw (
              error, SYSCTR_ERROR_HOSTILE,
              "%s: hardlink \"%s\" points to \"%s\", which is not a regular file earlier in this layer", imp->what, p,
              t);
        }
      if (imp->toc && !sysctr_toc_check_entry (imp->toc, path, 'h', 0, 0, 0, tpath, NULL, error))
        return FALSE;
      g_autofree char *csum_copy = g_strdup (csum);
      if (!replace_file (imp, parent, name, csum_copy, error))
        return FALSE;
      g_hash_table_replace (imp->regular_files, g_steal_pointer (&path), g_steal_pointer (&csum_copy));
      return TRUE;
    }

  g_hash_table_remove (imp->regular_files, path);

  switch (type)
    {
    case AE_IFDIR:
      {
        if (imp->toc
            && !sysctr_toc_check_entry (imp->toc, path, 'd', perm, (guint32) archive_entry_uid (entry),
                                        (guint32) archive_entry_gid (entry), NULL, NULL, error))
          return FALSE;
        g_autofree char *csum = entry_dirmeta (imp, entry, perm, cancellable, error);
        if (csum == NULL)
          return FALSE;
        g_autofree char *existing_file = NULL;
        g_autoptr (OstreeMutableTree) sub = NULL;
        if (ostree_mutable_tree_lookup (parent, name, &existing_file, &sub, NULL) && existing_file != NULL)
          {
            if (!ostree_mutable_tree_remove (parent, name, FALSE, error))
              return FALSE;
          }
        g_clear_object (&sub);
        if (!ostree_mutable_tree_ensure_dir (parent, name, &sub, error))
          return FALSE;
        ostree_mutable_tree_set_metadata_checksum (sub, csum);
        return TRUE;
      }
    case AE_IFREG:
    case AE_IFLNK:
      {
        gboolean is_link = type == AE_IFLNK;
        g_autoptr (GVariant) xattrs = entry_xattrs (entry);
        guint32 uid = (guint32) archive_entry_uid (entry);
        guint32 gid = (guint32) archive_entry_gid (entry);
        g_autofree char *csum = NULL;
        g_autofree char *content_digest = NULL;
        if (is_link)
          {
            const char *target = archive_entry_symlink (entry);
            if (target == NULL || *target == '\0' || !g_utf8_validate (target, -1, NULL) || strlen (target) > 4095)
              {
                g_autofree char *p = printable (path);
                return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                                     "%s: symlink \"%s\" has an empty, too long or non-UTF-8 target", imp->what, p);
              }
            if (imp->toc && !sysctr_toc_check_entry (imp->toc, path, 'l', 0, 0, 0, target, NULL, error))
              return FALSE;
            csum = ostree_repo_write_symlink (imp->repo, NULL, uid, gid, xattrs, target, cancellable, error);
          }
        else
          csum = write_regfile (imp, a, entry, uid, gid, S_IFREG | perm, xattrs, imp->toc ? &content_digest : NULL,
                                cancellable, error);
        if (csum == NULL)
          {
            g_autofree char *p = printable (path);
            sysctr_prefix_error (error, "%s: storing \"%s\"", imp->what, p);
            return FALSE;
          }
        if (imp->toc && !is_link
            && !sysctr_toc_check_entry (imp->toc, path, 'f', perm, uid, gid, NULL, content_digest, error))
          return FALSE;
        if (!replace_file (imp, parent, name, csum, error))
          return FALSE;
        if (!is_link)
          g_hash_table_replace (imp->regular_files, g_steal_pointer (&path), g_steal_pointer (&csum));
        return TRUE;
      }
    default:
      /* Device nodes, fifos and sockets: a container gets its /dev from the
       * runtime, and OSTree cannot store fifos. Dropped, as atomic did. */
      imp->stats.dropped_special++;
      return TRUE;
    }
}

/* Directories only implied by deeper entries get default metadata. */
static void
fill_dirmeta (OstreeMutableTree *tree, const char *def)
{
  if (ostree_mutable_tree_get_metadata_checksum (tree) == NULL)
    ostree_mutable_tree_set_metadata_checksum (tree, def);
  GHashTableIter it;
  gpointer value;
  g_hash_table_iter_init (&it, ostree_mutable_tree_get_subdirs (tree));
  while (g_hash_table_iter_next (&it, NULL, &value))
    fill_dirmeta (value, def);
}

static gboolean
import_archive (OstreeRepo *repo, struct archive *outer, const char *what, const char *expected_diff_id, SysctrToc *toc,
                GVariant *commit_metadata, char **out_commit, char **out_diff_id, SysctrLayerStats *out_stats,
                GCancellable *cancellable, GError **error)
{
  struct archive_entry *oentry = NULL;
  int r = archive_read_next_header (outer, &oentry);
  if (r != ARCHIVE_OK)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: cannot decompress: %s", what, archive_error_string (outer));

  Source *src = g_new0 (Source, 1);
  src->what = what;
  src->outer = outer;
  src->diff_sum = sysctr_sha256_new ();
  src->max_bytes = sysctr_layer_max_bytes ();

  Import imp = {
    .repo = repo,
    .root = ostree_mutable_tree_new (),
    .regular_files = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free),
    .what = what,
    .toc = toc,
    .max_entries = limit_from_env ("SYSCTR_MAX_LAYER_ENTRIES", DEFAULT_MAX_LAYER_ENTRIES),
    .precheck = store_has_layers (repo),
  };
  gboolean ok = TRUE;
  guint64 data_end = 0;
  struct archive *a = archive_read_new ();
  archive_read_support_format_tar (a);
  archive_read_support_format_empty (a);

  ok = sysctr_write_default_dirmeta (repo, &imp.default_dirmeta, cancellable, error);

  if (ok && archive_read_open (a, src, NULL, inner_read, NULL) != ARCHIVE_OK)
    ok = sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: not a tar archive: %s", what, archive_error_string (a));

  while (ok)
    {
      struct archive_entry *entry = NULL;
      r = archive_read_next_header (a, &entry);
      if (r == ARCHIVE_EOF)
        break;
      if (r == ARCHIVE_WARN)
        r = ARCHIVE_OK;
      /* Debian 12's umoci insert ends a layer right after the last
       * member's data: no padding to 512 bytes, no end-of-archive blocks.
       * Go's tar reader (podman, umoci) takes that, and so does this when
       * the stream ends within the padding of the last member's complete
       * data (the data itself was checked against its header in
       * import_entry). A stream that goes on past that (a cut header), or
       * has not ended, is corrupt. */
      if (r != ARCHIVE_OK && !src->too_big && src->eof && imp.stats.entries > 0 && src->uncompressed >= data_end
          && src->uncompressed <= ((data_end + 511) & ~(guint64) 511))
        break;
      if (r != ARCHIVE_OK)
        {
          ok = sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: %s: %s", what,
                             src->too_big ? "layer too large" : "corrupt tar", archive_error_string (a));
          break;
        }
      if (++imp.stats.entries > imp.max_entries)
        {
          ok = sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: more than %" G_GUINT64_FORMAT " entries", what,
                             imp.max_entries);
          break;
        }
      /* the format reader stands after this member's headers: its data
       * ends its size further (libarchive consumes data lazily) */
      data_end = (guint64) archive_filter_bytes (a, 0)
                 + (archive_entry_size_is_set (entry) ? (guint64) archive_entry_size (entry) : 0);
      ok = import_entry (&imp, a, entry, cancellable, error);
      if (!ok && src->too_big)
        {
          g_clear_error (error);
          ok = sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                             "%s: layer too large: more than %" G_GUINT64_FORMAT " bytes uncompressed", what,
                             src->max_bytes);
        }
    }

  /* The diff_id covers the whole uncompressed stream, tar padding too. */
  while (ok)
    {
      la_ssize_t n = archive_read_data (outer, src->buf, sizeof src->buf);
      if (n < 0)
        ok = sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: decompressing: %s", what, archive_error_string (outer));
      else if (n == 0)
        break;
      else
        {
          src->uncompressed += n;
          if (src->uncompressed > src->max_bytes)
            ok = sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: layer too large", what);
          sysctr_sha256_update (src->diff_sum, src->buf, n);
        }
    }

  g_autofree char *diff_id = sysctr_sha256_digest (src->diff_sum);
  if (ok && toc)
    ok = sysctr_toc_check_complete (toc, error);
  /* what vouches for the layer's content, kept in its commit */
  const char *verified_by = "diff_id";
  if (ok && toc && (expected_diff_id == NULL || strcmp (expected_diff_id, diff_id) != 0))
    verified_by = "zstd:chunked table of contents";
  if (ok && expected_diff_id && strcmp (expected_diff_id, diff_id) != 0)
    {
      /* podman 4's zstd:chunked writer rewrites the tar: its diff_id is
       * that of the tar it was given. Every file was checked against the
       * table of contents instead (chunked.h). */
      if (toc)
        sysctr_warn ("%s: zstd:chunked, decompressed it hashes to %s, not the config's diff_id %s: checked "
                     "against its table of contents instead",
                     what, diff_id, expected_diff_id);
      else
        ok = sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                           "%s: uncompressed content hashes to %s, but the image config says %s", what, diff_id,
                           expected_diff_id);
    }

  g_autofree char *commit = NULL;
  if (ok)
    {
      fill_dirmeta (imp.root, imp.default_dirmeta);
      g_autoptr (GFile) root = NULL;
      g_autoptr (GVariantDict) dict = g_variant_dict_new (commit_metadata);
      if (expected_diff_id || toc)
        g_variant_dict_insert (dict, "sysctr.verified-by", "s", verified_by);
      g_autoptr (GVariant) meta = g_variant_ref_sink (g_variant_dict_end (dict));
      ok = ostree_repo_write_mtree (repo, imp.root, &root, cancellable, error)
           && ostree_repo_write_commit (repo, NULL, what, NULL, meta, OSTREE_REPO_FILE (root), &commit, cancellable,
                                        error);
    }

  imp.stats.uncompressed = src->uncompressed;
  archive_read_free (a);
  sysctr_sha256_free (src->diff_sum);
  g_free (src);
  g_object_unref (imp.root);
  g_hash_table_unref (imp.regular_files);
  g_free (imp.default_dirmeta);
  if (!ok)
    return FALSE;
  if (imp.stats.dropped_special > 0)
    sysctr_warn ("%s: dropped %u device node(s), fifo(s) or socket(s)", what, imp.stats.dropped_special);
  sysctr_debug ("%s: %" G_GUINT64_FORMAT " entries, %u files already in the store (not written again)", what,
                imp.stats.entries, imp.reused);
  if (out_stats)
    *out_stats = imp.stats;
  if (out_diff_id)
    *out_diff_id = g_steal_pointer (&diff_id);
  *out_commit = g_steal_pointer (&commit);
  return TRUE;
}

static struct archive *
new_outer (void)
{
  struct archive *outer = archive_read_new ();
  archive_read_support_filter_all (outer);
  archive_read_support_format_raw (outer);
  return outer;
}

gboolean
sysctr_layer_import (OstreeRepo *repo, int fd, const char *what, const char *expected_diff_id, SysctrToc *toc,
                     GVariant *commit_metadata, char **out_commit, char **out_diff_id, SysctrLayerStats *out_stats,
                     GCancellable *cancellable, GError **error)
{
  /* from the start (a pipe, from where it is: partial pulls stream one) */
  if (lseek (fd, 0, SEEK_SET) < 0 && errno != ESPIPE)
    return sysctr_throw_errno (error, "%s: seek", what);
  struct archive *outer = new_outer ();
  gboolean ok;
  if (archive_read_open_fd (outer, fd, 256 * 1024) != ARCHIVE_OK)
    ok = sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: cannot read: %s", what, archive_error_string (outer));
  else
    ok = import_archive (repo, outer, what, expected_diff_id, toc, commit_metadata, out_commit, out_diff_id, out_stats,
                         cancellable, error);
  archive_read_free (outer);
  return ok;
}

gboolean
sysctr_layer_import_bytes (OstreeRepo *repo, const void *data, gsize len, char **out_commit, GError **error)
{
  struct archive *outer = new_outer ();
  gboolean ok;
  if (archive_read_open_memory (outer, data, len) != ARCHIVE_OK)
    ok = sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "layer: cannot read: %s", archive_error_string (outer));
  else
    ok = import_archive (repo, outer, "layer", NULL, NULL, NULL, out_commit, NULL, NULL, NULL, error);
  archive_read_free (outer);
  return ok;
}
