#include "config.h"

#include "source.h"

#include "sysctr-util.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

struct SysctrSource
{
  SysctrTransport transport;
  SysctrRegistry *registry;
  int dir_fd;     /* OCI layout or unpacked docker-archive */
  char *unpacked; /* temp dir to remove, relative to tmp_dfd */
  int tmp_dfd;
  GHashTable *blob_paths; /* docker-archive: digest -> path in dir */
  GBytes *synth_manifest; /* docker-archive: the manifest we built */
  char *synth_digest;
};

void
sysctr_source_free (SysctrSource *src)
{
  if (src == NULL)
    return;
  sysctr_registry_free (src->registry);
  if (src->dir_fd >= 0)
    close (src->dir_fd);
  if (src->unpacked)
    {
      (void) sysctr_rm_rf_at (src->tmp_dfd, src->unpacked, NULL);
      g_free (src->unpacked);
    }
  if (src->blob_paths)
    g_hash_table_unref (src->blob_paths);
  g_clear_pointer (&src->synth_manifest, g_bytes_unref);
  g_free (src->synth_digest);
  g_free (src);
}

void
sysctr_source_cancel (SysctrSource *src)
{
  if (src->registry)
    sysctr_registry_cancel (src->registry);
}

SysctrRegistry *
sysctr_source_registry (SysctrSource *src)
{
  return src->registry;
}

guint
sysctr_source_request_count (SysctrSource *src)
{
  return src->registry ? sysctr_registry_request_count (src->registry) : 0;
}

/* Unpack an archive the admin named into a private temp dir; libarchive's
 * secure-extract flags refuse "..", absolute paths and symlinked parents. */
static gboolean
unpack_archive (SysctrSource *src, const char *file, GError **error)
{
  g_autofree char *name = g_strdup_printf ("unpack-%d-%u", (int) getpid (), g_random_int ());
  if (mkdirat (src->tmp_dfd, name, 0700) < 0)
    return sysctr_throw_errno (error, "creating a temp dir");
  src->unpacked = g_strdup (name);
  if (!sysctr_opendir_at (src->tmp_dfd, name, FALSE, &src->dir_fd, error))
    return FALSE;

  struct archive *a = archive_read_new ();
  archive_read_support_format_tar (a);
  archive_read_support_filter_all (a);
  gboolean ok = TRUE;
  if (archive_read_open_filename (a, file, 256 * 1024) != ARCHIVE_OK)
    ok = sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s: %s", file, archive_error_string (a));
  while (ok)
    {
      struct archive_entry *entry;
      int r = archive_read_next_header (a, &entry);
      if (r == ARCHIVE_EOF)
        break;
      if (r < ARCHIVE_WARN)
        {
          ok = sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s: %s", file, archive_error_string (a));
          break;
        }
      const char *path = archive_entry_pathname (entry);
      mode_t type = archive_entry_filetype (entry);
      if (path == NULL || path[0] == '/' || strstr (path, "..") != NULL)
        {
          ok = sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: unsafe entry name", file);
          break;
        }
      if (type == AE_IFDIR)
        {
          ok = sysctr_mkdir_p_at (src->dir_fd, path, 0700, error);
          continue;
        }
      if (type != AE_IFREG || archive_entry_hardlink (entry) != NULL)
        continue; /* layouts hold only directories and regular files */
      g_autofree char *dir = g_path_get_dirname (path);
      if (strcmp (dir, ".") != 0 && !sysctr_mkdir_p_at (src->dir_fd, dir, 0700, error))
        {
          ok = FALSE;
          break;
        }
      sysctr_autofd int fd = openat (src->dir_fd, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (fd < 0)
        {
          ok = sysctr_throw_errno (error, "%s: unpacking %s", file, path);
          break;
        }
      if (archive_read_data_into_fd (a, fd) != ARCHIVE_OK)
        ok = sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s: %s", file, archive_error_string (a));
    }
  archive_read_free (a);
  return ok;
}

static gboolean
blob_path (SysctrSource *src, const char *digest, char **out_path, GError **error)
{
  if (!sysctr_digest_valid (digest))
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "invalid digest \"%.80s\"", digest);
  if (src->blob_paths)
    {
      const char *p = g_hash_table_lookup (src->blob_paths, digest);
      if (p == NULL)
        return sysctr_throw (error, SYSCTR_ERROR_NOT_FOUND, "blob %s not in the archive", digest);
      *out_path = g_strdup (p);
      return TRUE;
    }
  *out_path = g_strdup_printf ("blobs/sha256/%s", digest + strlen ("sha256:"));
  return TRUE;
}

/* Copy a local blob into @fd or @buf, verifying size and digest. */
static gboolean
copy_local_blob (SysctrSource *src, const char *digest, gint64 size, gsize max, int out_fd, GByteArray *buf,
                 SysctrProgressFunc progress, gpointer progress_data, GError **error)
{
  g_autofree char *path = NULL;
  if (!blob_path (src, digest, &path, error))
    return FALSE;
  g_assert (path != NULL);
  sysctr_autofd int fd = openat (src->dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return sysctr_throw_errno (error, "blob %s", digest);
  g_autoptr (SysctrSha256) sum = sysctr_sha256_new ();
  guint64 total = 0;
  g_autofree char *chunk = g_malloc (256 * 1024);
  for (;;)
    {
      ssize_t n = read (fd, chunk, 256 * 1024);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return sysctr_throw_errno (error, "reading blob %s", digest);
      if (n == 0)
        break;
      total += n;
      if ((size >= 0 && total > (guint64) size) || (max > 0 && total > max))
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "blob %s: larger than declared", digest);
      sysctr_sha256_update (sum, chunk, n);
      if (buf)
        g_byte_array_append (buf, (guint8 *) chunk, n);
      else
        {
          const char *p = chunk;
          ssize_t left = n;
          while (left > 0)
            {
              ssize_t w = write (out_fd, p, left);
              if (w < 0 && errno == EINTR)
                continue;
              if (w < 0)
                return sysctr_throw_errno (error, "writing blob %s", digest);
              p += w;
              left -= w;
            }
        }
      if (progress)
        progress (progress_data, n);
    }
  g_autofree char *got = sysctr_sha256_digest (sum);
  if (size >= 0 && total != (guint64) size)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                         "blob %s: %" G_GUINT64_FORMAT " bytes, declared %" G_GINT64_FORMAT, digest, total, size);
  if (strcmp (got, digest) != 0)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "blob %s: digest mismatch (content hashes to %s)", digest, got);
  return TRUE;
}

static gboolean
read_json_file (int dfd, const char *path, const char *what, json_t **out, GError **error)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  if (!sysctr_read_file_at (dfd, path, SYSCTR_MAX_MANIFEST_SIZE, &data, &len, error))
    {
      sysctr_prefix_error (error, "%s", what);
      return FALSE;
    }
  *out = sysctr_json_parse (data, len, what, error);
  return *out != NULL;
}

/* docker save / skopeo docker-archive: manifest.json lists Config and
 * Layers by path; we describe it as an OCI manifest with real digests. */
static gboolean
load_docker_archive (SysctrSource *src, const char *file, GError **error)
{
  g_autoptr (json_t) top = NULL;
  if (!read_json_file (src->dir_fd, "manifest.json", "docker-archive manifest.json", &top, error))
    return FALSE;
  if (!json_is_array (top) || json_array_size (top) == 0)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s: manifest.json lists no image", file);
  if (json_array_size (top) > 1)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s: holds %zu images; sysctr reads archives of one image", file,
                         json_array_size (top));
  json_t *entry = json_array_get (top, 0);
  const char *config_path = sysctr_json_get_string (entry, "Config");
  json_t *layers = json_object_get (entry, "Layers");
  if (config_path == NULL || !json_is_array (layers))
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s: manifest.json has no Config or Layers", file);

  src->blob_paths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr (json_t) manifest
      = json_pack ("{s:i, s:s}", "schemaVersion", 2, "mediaType", "application/vnd.oci.image.manifest.v1+json");
  const char *paths[2] = { config_path, NULL };
  json_t *layer_descs = json_array ();
  json_object_set_new (manifest, "layers", layer_descs);
  for (size_t i = 0; i <= json_array_size (layers); i++)
    {
      const char *p = i == 0 ? paths[0] : json_string_value (json_array_get (layers, i - 1));
      if (p == NULL || p[0] == '/' || strstr (p, "..") != NULL)
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: unsafe path in manifest.json", file);
      sysctr_autofd int fd = openat (src->dir_fd, p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0)
        return sysctr_throw_errno (error, "%s: %s", file, p);
      g_autoptr (SysctrSha256) sum = sysctr_sha256_new ();
      g_autofree char *chunk = g_malloc (256 * 1024);
      gint64 total = 0;
      ssize_t n;
      while ((n = read (fd, chunk, 256 * 1024)) > 0)
        {
          sysctr_sha256_update (sum, chunk, n);
          total += n;
        }
      if (n < 0)
        return sysctr_throw_errno (error, "%s: reading %s", file, p);
      g_autofree char *digest = sysctr_sha256_digest (sum);
      json_t *desc
          = json_pack ("{s:s, s:s, s:I}", "mediaType",
                       i == 0 ? "application/vnd.oci.image.config.v1+json" : "application/vnd.oci.image.layer.v1.tar",
                       "digest", digest, "size", (json_int_t) total);
      if (i == 0)
        json_object_set_new (manifest, "config", desc);
      else
        json_array_append_new (layer_descs, desc);
      g_hash_table_replace (src->blob_paths, g_strdup (digest), g_strdup (p));
    }
  g_autofree char *text = json_dumps (manifest, JSON_COMPACT | JSON_SORT_KEYS);
  g_autofree char *hex = sysctr_sha256_hex (text, strlen (text));
  src->synth_digest = g_strdup_printf ("sha256:%s", hex);
  src->synth_manifest = g_bytes_new (text, strlen (text));
  return TRUE;
}

SysctrSource *
sysctr_source_open (const SysctrRef *ref, const SysctrPullOptions *opts, int tmp_dfd, GError **error)
{
  g_autoptr (SysctrSource) src = g_new0 (SysctrSource, 1);
  src->transport = ref->transport;
  src->dir_fd = -1;
  src->tmp_dfd = tmp_dfd;
  switch (ref->transport)
    {
    case SYSCTR_TRANSPORT_DOCKER:
      src->registry = sysctr_registry_new (ref, opts, error);
      if (src->registry == NULL)
        return NULL;
      break;
    case SYSCTR_TRANSPORT_OCI:
      if (!sysctr_opendir_at (AT_FDCWD, ref->file, FALSE, &src->dir_fd, error))
        return NULL;
      break;
    case SYSCTR_TRANSPORT_OCI_ARCHIVE:
      if (!unpack_archive (src, ref->file, error))
        return NULL;
      break;
    case SYSCTR_TRANSPORT_DOCKER_ARCHIVE:
      if (!unpack_archive (src, ref->file, error) || !load_docker_archive (src, ref->file, error))
        return NULL;
      break;
    }
  return g_steal_pointer (&src);
}

static gboolean
layout_get_manifest (SysctrSource *src, const char *reference, GBytes **out_data, char **out_media_type,
                     char **out_digest, GError **error)
{
  const char *digest = NULL;
  const char *media_type = NULL;
  g_autoptr (json_t) index = NULL;
  if (reference && g_str_has_prefix (reference, "sha256:"))
    digest = reference;
  else
    {
      if (!read_json_file (src->dir_fd, "index.json", "OCI layout index.json", &index, error))
        return FALSE;
      json_t *manifests = json_object_get (index, "manifests");
      size_t i;
      json_t *m;
      guint n = 0;
      json_array_foreach (manifests, i, m)
        {
          json_t *ann = json_object_get (m, "annotations");
          const char *name = sysctr_json_get_string (ann, "org.opencontainers.image.ref.name");
          if (reference == NULL || g_strcmp0 (name, reference) == 0)
            {
              digest = sysctr_json_get_string (m, "digest");
              media_type = sysctr_json_get_string (m, "mediaType");
              n++;
            }
        }
      if (n == 0)
        return sysctr_throw (error, SYSCTR_ERROR_NOT_FOUND, "no image %s%s%s in the OCI layout", reference ? "\"" : "",
                             reference ? reference : "", reference ? "\"" : "");
      if (n > 1)
        return sysctr_throw (error, SYSCTR_ERROR_INVALID, "the OCI layout holds %u images; name one with oci:DIR:REF",
                             n);
      if (digest == NULL)
        return sysctr_throw (error, SYSCTR_ERROR_INVALID, "OCI layout index.json: manifest without a digest");
    }
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  if (!copy_local_blob (src, digest, -1, SYSCTR_MAX_MANIFEST_SIZE, -1, buf, NULL, NULL, error))
    return FALSE;
  if (out_media_type)
    *out_media_type = g_strdup (media_type);
  if (out_digest)
    *out_digest = g_strdup (digest);
  *out_data = g_byte_array_free_to_bytes (g_steal_pointer (&buf));
  return TRUE;
}

gboolean
sysctr_source_get_manifest (SysctrSource *src, const char *reference, GBytes **out_data, char **out_media_type,
                            char **out_digest, GError **error)
{
  switch (src->transport)
    {
    case SYSCTR_TRANSPORT_DOCKER:
      return sysctr_registry_get_manifest (src->registry, reference, out_data, out_media_type, out_digest, error);
    case SYSCTR_TRANSPORT_DOCKER_ARCHIVE:
      if (reference && strcmp (reference, src->synth_digest) != 0)
        return sysctr_throw (error, SYSCTR_ERROR_NOT_FOUND, "manifest %s not in the archive", reference);
      *out_data = g_bytes_ref (src->synth_manifest);
      if (out_media_type)
        *out_media_type = g_strdup ("application/vnd.oci.image.manifest.v1+json");
      if (out_digest)
        *out_digest = g_strdup (src->synth_digest);
      return TRUE;
    case SYSCTR_TRANSPORT_OCI:
    case SYSCTR_TRANSPORT_OCI_ARCHIVE:
      return layout_get_manifest (src, reference, out_data, out_media_type, out_digest, error);
    }
  g_assert_not_reached ();
}

gboolean
sysctr_source_fetch_blob (SysctrSource *src, const char *digest, gint64 size, int fd, SysctrProgressFunc progress,
                          gpointer progress_data, GError **error)
{
  if (src->registry)
    return sysctr_registry_fetch_blob (src->registry, digest, size, fd, progress, progress_data, error);
  return copy_local_blob (src, digest, size, 0, fd, NULL, progress, progress_data, error);
}

gboolean
sysctr_source_fetch_blob_bytes (SysctrSource *src, const char *digest, gint64 size, gsize max_size, GBytes **out,
                                GError **error)
{
  if (src->registry)
    return sysctr_registry_fetch_blob_bytes (src->registry, digest, size, max_size, out, error);
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  if (!copy_local_blob (src, digest, size, max_size, -1, buf, NULL, NULL, error))
    return FALSE;
  *out = g_byte_array_free_to_bytes (g_steal_pointer (&buf));
  return TRUE;
}
