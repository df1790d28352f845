/* chunked.c: the table of contents of a zstd:chunked layer (chunked.h). */
#include "config.h"

#include "chunked.h"

#include <string.h>
#include <zstd.h>

#define ANNOTATION_CHECKSUM "io.containers.zstd-chunked.manifest-checksum"
#define ANNOTATION_POSITION "io.containers.zstd-chunked.manifest-position"
/* far beyond the TOC of any real layer (a few hundred bytes per file) */
#define MAX_TOC_COMPRESSED (64 * 1024 * 1024)
#define MAX_TOC (256 * 1024 * 1024)

typedef struct
{
  char type;
  guint32 mode; /* permission bits, setuid/setgid/sticky included */
  guint32 uid, gid;
  char *link;
  char *digest;
  gboolean seen;
} TocEntry;

struct SysctrToc
{
  GHashTable *entries; /* normalised path -> TocEntry */
  char *what;
  GArray *files; /* of SysctrTocFile, in the layer's order (partial pulls) */
  json_t *doc;   /* owns the strings the files point to */
};

static void
entry_free (TocEntry *e)
{
  g_free (e->link);
  g_free (e->digest);
  g_free (e);
}

void
sysctr_toc_free (SysctrToc *toc)
{
  if (toc == NULL)
    return;
  g_hash_table_unref (toc->entries);
  g_free (toc->what);
  if (toc->files)
    g_array_unref (toc->files);
  if (toc->doc)
    json_decref (toc->doc);
  g_free (toc);
}

/* "./a/b/", "/a/b" -> "a/b" */
static char *
normalise (const char *name)
{
  while (name[0] == '.' && name[1] == '/')
    name += 2;
  while (*name == '/')
    name++;
  char *n = g_strdup (name);
  gsize len = strlen (n);
  while (len > 0 && n[len - 1] == '/')
    n[--len] = '\0';
  return n;
}

static char
toc_type (const char *t)
{
  if (g_strcmp0 (t, "reg") == 0)
    return 'f';
  if (g_strcmp0 (t, "dir") == 0)
    return 'd';
  if (g_strcmp0 (t, "symlink") == 0)
    return 'l';
  if (g_strcmp0 (t, "hardlink") == 0)
    return 'h';
  if (g_strcmp0 (t, "chunk") == 0)
    return 'c';
  return 's';
}

/* The annotations: FALSE (no error) when the layer has none. */
static gboolean
toc_annotations (json_t *desc, guint64 *out_offset, guint64 *out_length, guint64 *out_ulength,
                 const char **out_checksum, GError **error)
{
  json_t *ann = json_object_get (desc, "annotations");
  const char *checksum = sysctr_json_get_string (ann, ANNOTATION_CHECKSUM);
  const char *position = sysctr_json_get_string (ann, ANNOTATION_POSITION);
  const char *digest = sysctr_json_get_string (desc, "digest");
  *out_length = 0;
  if (checksum == NULL || position == NULL)
    return FALSE;
  /* "offset:length:uncompressed-length:type" */
  guint64 offset, length, ulength;
  char tail;
  if (sscanf (position, "%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT ":%*u%c", &offset, &length,
              &ulength, &tail)
          != 3
      || length == 0 || length > MAX_TOC_COMPRESSED || ulength > MAX_TOC || !sysctr_digest_valid (checksum))
    {
      sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                    "layer %s: zstd:chunked table of contents: position \"%.64s\" or checksum not understood",
                    digest ? digest : "?", position);
      return FALSE;
    }
  *out_offset = offset;
  *out_length = length;
  *out_ulength = ulength;
  *out_checksum = checksum;
  return TRUE;
}

gboolean
sysctr_toc_position (json_t *desc, guint64 *out_offset, guint64 *out_length, GError **error)
{
  guint64 ulength;
  const char *checksum;
  g_autoptr (GError) local = NULL;
  if (toc_annotations (desc, out_offset, out_length, &ulength, &checksum, &local))
    return TRUE;
  if (local == NULL)
    return TRUE; /* none: *out_length is 0 */
  g_propagate_error (error, g_steal_pointer (&local));
  return FALSE;
}

gboolean
sysctr_toc_load (json_t *desc, int fd, SysctrToc **out_toc, GError **error)
{
  *out_toc = NULL;
  const char *digest = sysctr_json_get_string (desc, "digest");
  guint64 offset = 0, length = 0, ulength = 0;
  const char *checksum = NULL;
  g_autoptr (GError) local = NULL;
  if (!toc_annotations (desc, &offset, &length, &ulength, &checksum, &local) || checksum == NULL)
    {
      if (local == NULL)
        return TRUE; /* not zstd:chunked */
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  g_autofree char *what = g_strdup_printf ("layer %s: zstd:chunked table of contents", digest ? digest : "?");
  g_autofree guint8 *compressed = g_malloc (length);
  if (pread (fd, compressed, length, offset) != (ssize_t) length)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: not inside the blob", what);
  g_autofree char *hex = sysctr_sha256_hex (compressed, length);
  if (strcmp (hex, checksum + strlen ("sha256:")) != 0)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: checksum does not match the manifest's", what);
  unsigned long long size = ZSTD_getFrameContentSize (compressed, length);
  if (size == ZSTD_CONTENTSIZE_ERROR || (size != ZSTD_CONTENTSIZE_UNKNOWN && size > MAX_TOC))
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: not a zstd frame of a sane size", what);
  if (size == ZSTD_CONTENTSIZE_UNKNOWN)
    size = ulength;
  g_autofree char *json = g_malloc (size + 1);
  size_t got = ZSTD_decompress (json, size, compressed, length);
  if (ZSTD_isError (got))
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: %s", what, ZSTD_getErrorName (got));
  g_autoptr (json_t) doc = sysctr_json_parse (json, got, what, error);
  if (doc == NULL)
    return FALSE;
  json_t *entries = json_object_get (doc, "entries");
  if (!json_is_array (entries))
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: no entries", what);

  g_autoptr (SysctrToc) toc = g_new0 (SysctrToc, 1);
  toc->entries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) entry_free);
  toc->files = g_array_new (FALSE, TRUE, sizeof (SysctrTocFile));
  toc->what = g_strdup_printf ("layer %s (zstd:chunked)", digest ? digest : "?");
  size_t i;
  json_t *e;
  json_array_foreach (entries, i, e)
    {
      const char *name = sysctr_json_get_string (e, "name");
      char type = toc_type (sysctr_json_get_string (e, "type"));
      if (name == NULL)
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: entry %zu has no name", what, i);
      if (type == 'c')
        continue; /* a chunk of a file listed before it: inside its offset..endOffset */
      json_t *off = json_object_get (e, "offset"), *end = json_object_get (e, "endOffset");
      json_t *sz = json_object_get (e, "size");
      SysctrTocFile f = {
        .type = type,
        .name = name,
        .mode = (guint32) json_integer_value (json_object_get (e, "mode")) & 07777,
        .uid = (guint32) json_integer_value (json_object_get (e, "uid")),
        .gid = (guint32) json_integer_value (json_object_get (e, "gid")),
        .size = json_is_integer (sz) && json_integer_value (sz) > 0 ? (guint64) json_integer_value (sz) : 0,
        .offset = json_is_integer (off) && json_integer_value (off) > 0 ? (guint64) json_integer_value (off) : 0,
        .end_offset = json_is_integer (end) && json_integer_value (end) > 0 ? (guint64) json_integer_value (end) : 0,
        .link = sysctr_json_get_string (e, "linkName"),
        .digest = sysctr_json_get_string (e, "digest"),
        .modtime = sysctr_json_get_string (e, "modtime"),
        .xattrs = json_object_get (e, "xattrs"),
        .devmajor = (guint32) json_integer_value (json_object_get (e, "devMajor")),
        .devminor = (guint32) json_integer_value (json_object_get (e, "devMinor")),
        .type_name = sysctr_json_get_string (e, "type"),
      };
      g_array_append_val (toc->files, f);
      TocEntry *te = g_new0 (TocEntry, 1);
      te->type = type;
      /* "mode" is a tar header's: with or without the file type bits;
       * "uid"/"gid" are left out when 0 */
      te->mode = (guint32) json_integer_value (json_object_get (e, "mode")) & 07777;
      te->uid = (guint32) json_integer_value (json_object_get (e, "uid"));
      te->gid = (guint32) json_integer_value (json_object_get (e, "gid"));
      te->link = g_strdup (sysctr_json_get_string (e, "linkName"));
      te->digest = g_strdup (sysctr_json_get_string (e, "digest"));
      /* podman leaves the digest out for an empty file (whiteouts too) */
      if (type == 'f' && te->digest == NULL && json_integer_value (json_object_get (e, "size")) == 0)
        te->digest = g_strdup ("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
      if (type == 'f' && (te->digest == NULL || !sysctr_digest_valid (te->digest)))
        {
          entry_free (te);
          return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: file %.200s has no sha256 digest", what, name);
        }
      /* a later entry of the same name wins, as in a tar */
      g_hash_table_replace (toc->entries, normalise (name), te);
    }
  toc->doc = g_steal_pointer (&doc);
  *out_toc = g_steal_pointer (&toc);
  return TRUE;
}

guint
sysctr_toc_n_files (SysctrToc *toc)
{
  return toc->files->len;
}

const SysctrTocFile *
sysctr_toc_file (SysctrToc *toc, guint i)
{
  return &g_array_index (toc->files, SysctrTocFile, i);
}

gboolean
sysctr_toc_check_entry (SysctrToc *toc, const char *path, char type, guint32 mode, guint32 uid, guint32 gid,
                        const char *link, const char *sha256, GError **error)
{
  TocEntry *te = g_hash_table_lookup (toc->entries, path);
  g_autofree char *shown = sysctr_printable (path);
  if (te == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: \"%.200s\" is in the tar but not in its table of contents",
                         toc->what, shown);
  if (te->type != type)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: \"%.200s\" is not of the type its table of contents says",
                         toc->what, shown);
  if ((type == 'f' || type == 'd') && (te->mode != (mode & 07777) || te->uid != uid || te->gid != gid))
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                         "%s: \"%.200s\" has mode %04o owner %u:%u, its table of contents says %04o %u:%u", toc->what,
                         shown, mode & 07777, uid, gid, te->mode, te->uid, te->gid);
  if ((type == 'l' || type == 'h') && g_strcmp0 (te->link, link) != 0)
    {
      /* hardlink targets are named like entries */
      g_autofree char *a = te->link ? normalise (te->link) : NULL;
      g_autofree char *b = link ? normalise (link) : NULL;
      if (type != 'h' || g_strcmp0 (a, b) != 0)
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                             "%s: \"%.200s\" links elsewhere than its table of contents says", toc->what, shown);
    }
  if (type == 'f' && g_strcmp0 (te->digest, sha256) != 0)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                         "%s: the content of \"%.200s\" is not what its table of contents says", toc->what, shown);
  te->seen = TRUE;
  return TRUE;
}

gboolean
sysctr_toc_check_complete (SysctrToc *toc, GError **error)
{
  GHashTableIter it;
  gpointer k, v;
  g_hash_table_iter_init (&it, toc->entries);
  while (g_hash_table_iter_next (&it, &k, &v))
    {
      TocEntry *te = v;
      const char *base = strrchr (k, '/');
      base = base ? base + 1 : k;
      if (g_str_has_prefix (base, ".wh..wh.") && strcmp (base, ".wh..wh..opq") != 0)
        continue; /* aufs bookkeeping: the layer reader skips it */
      if (te->type == 'f' && !te->seen)
        {
          g_autofree char *shown = sysctr_printable (k);
          return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                               "%s: \"%.200s\" is in its table of contents but not in the tar", toc->what, shown);
        }
    }
  return TRUE;
}
