#include "config.h"

#include "pull.h"

#include "chunked.h"
#include "layer.h"
#include "lookaside.h"
#include "partial.h"
#include "policy.h"
#include "reference.h"
#include "source.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#define MAX_INDEX_DEPTH 2
#define MAX_LAYERS 256

char *
sysctr_host_platform (void)
{
  struct utsname u;
  uname (&u);
  const char *m = u.machine;
  if (strcmp (m, "x86_64") == 0)
    return g_strdup ("linux/amd64");
  if (strcmp (m, "aarch64") == 0 || strcmp (m, "arm64") == 0)
    return g_strdup ("linux/arm64/v8");
  if (g_str_has_prefix (m, "armv7"))
    return g_strdup ("linux/arm/v7");
  if (g_str_has_prefix (m, "armv6"))
    return g_strdup ("linux/arm/v6");
  if (g_str_has_prefix (m, "armv5"))
    return g_strdup ("linux/arm/v5");
  if (strcmp (m, "i686") == 0 || strcmp (m, "i386") == 0)
    return g_strdup ("linux/386");
  return g_strdup_printf ("linux/%s", m);
}

/* Platform names as containerd and podman normalise them: i386/i686 is
 * 386, x86_64 amd64, aarch64 arm64 (variant v8 when none is given),
 * armhf arm/v7, armel arm/v6, and arm without a variant is arm/v7;
 * variants "7" and "v7" are the same. */
static void
normalise_platform (const char **arch, const char **variant, char buf[static 8])
{
  static const struct
  {
    const char *alias, *arch, *variant;
  } aliases[] = {
    { "i386", "386", NULL },      { "i686", "386", NULL },  { "x86_64", "amd64", NULL }, { "x86-64", "amd64", NULL },
    { "aarch64", "arm64", NULL }, { "armhf", "arm", "v7" }, { "armel", "arm", "v6" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS (aliases); i++)
    if (strcmp (*arch, aliases[i].alias) == 0)
      {
        *arch = aliases[i].arch;
        if (aliases[i].variant)
          *variant = aliases[i].variant;
      }
  if (*variant && **variant == '\0')
    *variant = NULL;
  if (strcmp (*arch, "arm") != 0 && strcmp (*arch, "arm64") != 0)
    return;
  if (*variant == NULL)
    *variant = strcmp (*arch, "arm") == 0 ? "v7" : "v8";
  else if (g_ascii_isdigit ((*variant)[0]) && strlen (*variant) < 7)
    {
      g_snprintf (buf, 8, "v%s", *variant);
      *variant = buf;
    }
}

/* arm variants: a v7 host runs v6 and v5 images (-1: not a variant) */
static int
variant_rank (const char *variant)
{
  if (variant && variant[0] == 'v' && g_ascii_isdigit (variant[1]))
    return atoi (variant + 1);
  return -1;
}

gboolean
sysctr_index_select (json_t *index, const char *platform, const char **out_digest, char **out_platform, GError **error)
{
  g_auto (GStrv) want = g_strsplit (platform, "/", 3);
  if (want[0] == NULL || want[1] == NULL || *want[1] == '\0')
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "invalid platform \"%s\" (expected OS/ARCH[/VARIANT])", platform);
  const char *want_arch = want[1];
  const char *want_variant = want[2];
  char want_buf[8];
  normalise_platform (&want_arch, &want_variant, want_buf);
  gboolean arm = strcmp (want_arch, "arm") == 0 || strcmp (want_arch, "arm64") == 0;
  int want_rank = variant_rank (want_variant);

  json_t *manifests = json_object_get (index, "manifests");
  if (!json_is_array (manifests))
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "image index has no manifests list");
  const char *best = NULL;
  int best_rank = -1;
  g_autofree char *best_platform = NULL;
  size_t i;
  json_t *m;
  json_array_foreach (manifests, i, m)
    {
      json_t *p = json_object_get (m, "platform");
      const char *os = sysctr_json_get_string (p, "os");
      const char *arch = sysctr_json_get_string (p, "architecture");
      const char *variant = sysctr_json_get_string (p, "variant");
      const char *digest = sysctr_json_get_string (m, "digest");
      if (os == NULL || arch == NULL || digest == NULL)
        continue;
      const char *norm_arch = arch, *norm_variant = variant;
      char buf[8];
      normalise_platform (&norm_arch, &norm_variant, buf);
      if (strcmp (os, want[0]) != 0 || strcmp (norm_arch, want_arch) != 0)
        continue;
      int rank = variant_rank (norm_variant);
      if (arm)
        {
          /* the variant asked for, or the highest below it (what it runs) */
          if (rank < 0 || rank > want_rank)
            continue;
        }
      else if (want_variant && g_strcmp0 (norm_variant, want_variant) != 0)
        continue;
      else
        rank = norm_variant == NULL ? 1 : 0; /* the plain one before a variant this host may not run */
      if (rank > best_rank)
        {
          best = digest;
          best_rank = rank;
          g_free (best_platform);
          best_platform
              = variant ? g_strdup_printf ("%s/%s/%s", os, arch, variant) : g_strdup_printf ("%s/%s", os, arch);
        }
    }
  if (best == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_NOT_FOUND, "the image has no variant for platform %s", platform);
  *out_digest = best;
  *out_platform = g_steal_pointer (&best_platform);
  return TRUE;
}

static gboolean
is_index (const char *media_type, json_t *json)
{
  const char *mt = media_type ? media_type : sysctr_json_get_string (json, "mediaType");
  if (mt && (strcmp (mt, SYSCTR_MT_OCI_INDEX) == 0 || strcmp (mt, SYSCTR_MT_DOCKER_LIST) == 0))
    return TRUE;
  if (mt == NULL && json_is_array (json_object_get (json, "manifests")) && json_object_get (json, "layers") == NULL)
    return TRUE;
  return FALSE;
}

/* Layer media types sysctr reads. Non-distributable ("foreign") layers
 * are fetched from the registry like any other blob (registries that
 * mirror them serve them); their external URLs are never followed. */
static gboolean
layer_media_type_ok (const char *mt)
{
  static const char *ok[] = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  };
  for (guint i = 0; i < G_N_ELEMENTS (ok); i++)
    if (strcmp (mt, ok[i]) == 0)
      return TRUE;
  return FALSE;
}

typedef struct
{
  const char *digest;
  const char *diff_id;
  const char *media_type;
  json_t *desc; /* the manifest's descriptor (zstd:chunked annotations) */
  gint64 size;
  char *commit;
  GError *error;
  guint64 fetched;
} LayerJob;

typedef struct
{
  SysctrContext *ctx;
  SysctrSource *src;
  GMutex lock;
  GCancellable *cancellable;
  gboolean tty;
  guint64 done_bytes;
  guint64 total_bytes;
  gint64 last_print;
  gint64 start;
  guint64 spool_ram_left;        /* guarded by lock */
  SysctrStoreFiles *store_files; /* for partial pulls, or NULL */
} PullState;

static void
pull_state_clear (PullState *st)
{
  g_clear_object (&st->cancellable);
  g_clear_pointer (&st->store_files, sysctr_store_files_free);
  g_mutex_clear (&st->lock);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (PullState, pull_state_clear)

static void
progress_cb (gpointer data, guint64 bytes)
{
  PullState *st = data;
  g_mutex_lock (&st->lock);
  st->done_bytes += bytes;
  gint64 now = g_get_monotonic_time ();
  if (st->tty && now - st->last_print > 200000)
    {
      st->last_print = now;
      double secs = (now - st->start) / 1e6;
      g_autofree char *done = sysctr_format_size (st->done_bytes);
      g_autofree char *total = sysctr_format_size (st->total_bytes);
      g_autofree char *rate = sysctr_format_size (secs > 0 ? (guint64) (st->done_bytes / secs) : 0);
      g_printerr ("\r\033[KFetching layers: %s / %s (%s/s)", done, total, rate);
    }
  g_mutex_unlock (&st->lock);
}

/* A layer commit's metadata (the importer adds what verified it). */
static GVariant *
layer_metadata (const LayerJob *job)
{
  GVariantBuilder b;
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&b, "{sv}", "sysctr.digest", g_variant_new_string (job->digest));
  g_variant_builder_add (&b, "{sv}", "sysctr.diff-id", g_variant_new_string (job->diff_id));
  g_variant_builder_add (&b, "{sv}", "sysctr.media-type", g_variant_new_string (job->media_type));
  g_variant_builder_add (&b, "{sv}", "sysctr.size", g_variant_new_uint64 (job->size));
  return g_variant_ref_sink (g_variant_builder_end (&b));
}

static gboolean
fetch_and_import_fd (LayerJob *job, PullState *st, int fd, GError **error)
{
  g_autofree char *what = g_strdup_printf ("layer %s", job->digest);
  gint64 t0 = g_get_monotonic_time ();
  if (st->store_files && job->size > 0)
    {
      /* zstd:chunked: only the files the store lacks */
      g_autoptr (GVariant) pmeta = layer_metadata (job);
      SysctrPartialStats ps;
      gboolean fallback = FALSE;
      g_autoptr (GError) local = NULL;
      if (sysctr_partial_import (st->ctx->repo, sysctr_source_registry (st->src), st->store_files, job->desc,
                                 job->digest, job->size, fd, what, pmeta, &job->commit, &ps, &fallback, st->cancellable,
                                 &local))
        {
          job->fetched = ps.bytes_fetched;
          sysctr_debug ("%s: partial pull: %u files from the store, %u fetched, %" G_GUINT64_FORMAT
                        " of %" G_GINT64_FORMAT " bytes in %u requests, %" G_GINT64_FORMAT
                        " ms; verified by its table of contents (the diff_id needs the whole stream)",
                        what, ps.files_found, ps.files_fetched, ps.bytes_fetched, job->size, ps.requests,
                        (g_get_monotonic_time () - t0) / 1000);
          return TRUE;
        }
      if (!fallback)
        {
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
      sysctr_debug ("%s: fetching the whole blob%s%s", what, local ? ": " : "", local ? local->message : "");
      if (ftruncate (fd, 0) != 0 || lseek (fd, 0, SEEK_SET) != 0)
        return sysctr_throw_errno (error, "resetting the spool");
    }
  if (!sysctr_source_fetch_blob (st->src, job->digest, job->size, fd, progress_cb, st, error))
    return FALSE;
  gint64 t1 = g_get_monotonic_time ();
  job->fetched = job->size > 0 ? (guint64) job->size : 0;

  g_autoptr (GVariant) meta = layer_metadata (job);
  g_autoptr (SysctrToc) toc = NULL;
  if (!sysctr_toc_load (job->desc, fd, &toc, error))
    return FALSE;
  if (!sysctr_layer_import (st->ctx->repo, fd, what, job->diff_id, toc, meta, &job->commit, NULL, NULL, st->cancellable,
                            error))
    return FALSE;
  sysctr_crash_point ("pull-layer-imported");
  sysctr_debug ("layer %s (%s, %" G_GINT64_FORMAT " bytes): fetched in %" G_GINT64_FORMAT
                " ms, imported in %" G_GINT64_FORMAT " ms",
                job->digest, job->media_type, job->size, (t1 - t0) / 1000, (g_get_monotonic_time () - t1) / 1000);
  g_mutex_lock (&st->lock);
  if (st->tty)
    {
      g_autofree char *sz = sysctr_format_size (job->size);
      g_printerr ("\r\033[KStored layer %.19s (%s)\n", job->digest, sz);
    }
  g_mutex_unlock (&st->lock);
  return TRUE;
}

/* How much of the blobs being fetched may wait in memory rather than on
 * disk (flash wears by writes; a downloaded blob is read once, imported,
 * and dropped): a quarter of MemAvailable, at most 1 GiB, in all the
 * pull's workers together; SYSCTR_SPOOL_RAM (bytes) sets it. */
static guint64
spool_ram_budget (void)
{
  const char *env = g_getenv ("SYSCTR_SPOOL_RAM");
  if (env && *env)
    return g_ascii_strtoull (env, NULL, 10);
  g_autofree char *meminfo = NULL;
  guint64 avail_kib = 0;
  if (g_file_get_contents ("/proc/meminfo", &meminfo, NULL, NULL))
    {
      const char *p = strstr (meminfo, "MemAvailable:");
      if (p)
        avail_kib = g_ascii_strtoull (p + strlen ("MemAvailable:"), NULL, 10);
    }
  return MIN (avail_kib * 1024 / 4, (guint64) 1 << 30);
}

/* The blob's spool: a memfd while the budget lasts, else an O_TMPFILE in
 * the store's temp dir (either way it never has a name, so an interrupted
 * pull leaves nothing behind). *out_ram: what was taken from the budget. */
static int
open_spool (PullState *st, guint64 size, guint64 *out_ram, GError **error)
{
  *out_ram = 0;
  g_mutex_lock (&st->lock);
  gboolean ram = size <= st->spool_ram_left;
  if (ram)
    st->spool_ram_left -= size;
  g_mutex_unlock (&st->lock);
  if (ram)
    {
      int fd = memfd_create ("sysctr-blob", MFD_CLOEXEC);
      if (fd >= 0)
        {
          *out_ram = size;
          return fd;
        }
      g_mutex_lock (&st->lock);
      st->spool_ram_left += size;
      g_mutex_unlock (&st->lock);
    }
  int fd = openat (st->ctx->tmp_dfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0)
    sysctr_throw_errno (error, "creating a temp file");
  return fd;
}

static void
close_spool (PullState *st, int fd, guint64 ram)
{
  if (fd >= 0)
    close (fd);
  g_mutex_lock (&st->lock);
  st->spool_ram_left += ram;
  g_mutex_unlock (&st->lock);
}

static gboolean
fetch_and_import (LayerJob *job, PullState *st, GError **error)
{
  guint64 ram = 0;
  int fd = open_spool (st, job->size > 0 ? (guint64) job->size : 0, &ram, error);
  if (fd < 0)
    return FALSE;
  gboolean ok = fetch_and_import_fd (job, st, fd, error);
  close_spool (st, fd, ram);
  return ok;
}

static void
layer_worker (gpointer data, gpointer user_data)
{
  LayerJob *job = data;
  PullState *st = user_data;
  if (g_cancellable_set_error_if_cancelled (st->cancellable, &job->error))
    return;
  if (!fetch_and_import (job, st, &job->error))
    {
      g_cancellable_cancel (st->cancellable);
      sysctr_source_cancel (st->src);
    }
}

static gboolean
validate_descriptor (json_t *desc, const char *what, const char **out_digest, gint64 *out_size, GError **error)
{
  const char *digest = sysctr_json_get_string (desc, "digest");
  json_t *size = json_object_get (desc, "size");
  if (digest == NULL || !sysctr_digest_valid (digest))
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: missing or unsupported digest (only sha256 is accepted)",
                         what);
  if (!json_is_integer (size) || json_integer_value (size) < 0)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: missing or invalid size", what);
  *out_digest = digest;
  *out_size = json_integer_value (size);
  return TRUE;
}

/* The layer jobs of one pull: what each one stored or why it failed. */
typedef struct
{
  LayerJob *jobs;
  guint n;
} LayerJobs;

static void
layer_jobs_clear (LayerJobs *j)
{
  for (guint i = 0; i < j->n; i++)
    {
      g_free (j->jobs[i].commit);
      g_clear_error (&j->jobs[i].error);
    }
  g_clear_pointer (&j->jobs, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (LayerJobs, layer_jobs_clear)

/* Phase 1. Tag (or digest) -> manifest, through at most MAX_INDEX_DEPTH
 * indexes; *out_chosen_platform is the index entry taken, if any. */
static gboolean
resolve_manifest (SysctrSource *src, const SysctrRef *ref, const char *platform, char **out_top_digest,
                  GBytes **out_data, char **out_digest, json_t **out_manifest, char **out_chosen_platform,
                  GError **error)
{
  g_autofree char *top_digest = NULL;
  const char *want = ref->digest ? ref->digest : ref->tag;
  g_autoptr (GBytes) data = NULL;
  g_autofree char *media_type = NULL;
  g_autofree char *digest = NULL;
  g_autofree char *chosen_platform = NULL;
  g_autoptr (json_t) manifest = NULL;
  g_autofree char *want_owned = NULL;
  for (int depth = 0;; depth++)
    {
      g_clear_pointer (&data, g_bytes_unref);
      g_clear_pointer (&media_type, g_free);
      g_autofree char *prev = g_steal_pointer (&digest);
      if (!sysctr_source_get_manifest (src, want, &data, &media_type, &digest, error))
        return FALSE;
      if (prev && strcmp (prev, digest) == 0)
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "image index %s points to itself", digest);
      if (top_digest == NULL)
        top_digest = g_strdup (digest);
      g_clear_pointer (&manifest, json_decref);
      gsize len;
      const char *bytes = g_bytes_get_data (data, &len);
      manifest = sysctr_json_parse (bytes, len, "manifest", error);
      if (manifest == NULL)
        return FALSE;
      if (!json_is_object (manifest))
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "manifest %s is not a JSON object", digest);
      json_t *sv = json_object_get (manifest, "schemaVersion");
      if (!json_is_integer (sv) || json_integer_value (sv) != 2)
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                             "manifest %s: unsupported schemaVersion (only 2 is supported)", digest);
      if (!is_index (media_type, manifest))
        break;
      if (depth >= MAX_INDEX_DEPTH)
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "image indexes nest deeper than %d levels", MAX_INDEX_DEPTH);
      const char *sel = NULL;
      g_clear_pointer (&chosen_platform, g_free);
      if (!sysctr_index_select (manifest, platform, &sel, &chosen_platform, error))
        return FALSE;
      sysctr_debug ("index %s: %s chosen for platform %s", digest, chosen_platform, platform);
      if (!sysctr_digest_valid (sel))
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "image index entry with an invalid digest");
      g_free (want_owned);
      want = want_owned = g_strdup (sel);
    }

  const char *mt = media_type ? media_type : sysctr_json_get_string (manifest, "mediaType");
  if (mt && strcmp (mt, SYSCTR_MT_OCI_MANIFEST) != 0 && strcmp (mt, SYSCTR_MT_DOCKER_MANIFEST) != 0
      && strcmp (mt, "application/json") != 0 && strcmp (mt, "application/octet-stream") != 0)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "manifest %s: unsupported media type %s", digest, mt);
  *out_top_digest = g_steal_pointer (&top_digest);
  *out_data = g_steal_pointer (&data);
  *out_digest = g_steal_pointer (&digest);
  *out_manifest = g_steal_pointer (&manifest);
  *out_chosen_platform = g_steal_pointer (&chosen_platform);
  return TRUE;
}

/* Phase 2. Unchanged since the last pull (same manifest, every layer
 * stored): the stored image, and no blob request at all. */
static gboolean
stored_if_unchanged (SysctrContext *ctx, const char *canonical, const char *digest, SysctrImage **out_image,
                     GError **error)
{
  g_autoptr (SysctrImage) existing = NULL;
  *out_image = NULL;
  if (!sysctr_store_lookup_image (ctx->repo, canonical, &existing, error))
    return FALSE;
  if (existing == NULL || g_strcmp0 (existing->manifest_digest, digest) != 0)
    return TRUE;
  for (char **l = existing->layers; *l; l++)
    {
      g_autofree char *c = sysctr_store_layer_commit (ctx->repo, *l);
      if (c == NULL)
        return TRUE;
    }
  *out_image = g_steal_pointer (&existing);
  return TRUE;
}

/* Phase 3. The image config: fetched, parsed, one diff_id per layer, for
 * Linux; *out_chosen_platform from it when no index chose one (with a
 * warning when it will not run here). */
static gboolean
fetch_config (SysctrSource *src, json_t *manifest, const char *digest, const char *canonical, const char *platform,
              gboolean quiet, GBytes **out_bytes, json_t **out_config, char **out_chosen_platform, GError **error)
{
  json_t *config_desc = json_object_get (manifest, "config");
  json_t *layers = json_object_get (manifest, "layers");
  const char *config_digest = NULL;
  gint64 config_size = 0;
  if (!validate_descriptor (config_desc, "manifest config", &config_digest, &config_size, error))
    return FALSE;
  if (!json_is_array (layers))
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "manifest %s has no layers list", digest);
  if (json_array_size (layers) > MAX_LAYERS)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "manifest %s has %zu layers (limit %d)", digest,
                         json_array_size (layers), MAX_LAYERS);

  g_autoptr (GBytes) config_bytes = NULL;
  if (!sysctr_source_fetch_blob_bytes (src, config_digest, config_size, SYSCTR_MAX_CONFIG_SIZE, &config_bytes, error))
    {
      sysctr_prefix_error (error, "config");
      return FALSE;
    }
  gsize config_len;
  const char *config_data = g_bytes_get_data (config_bytes, &config_len);
  g_autoptr (json_t) config = sysctr_json_parse (config_data, config_len, "image config", error);
  if (config == NULL)
    return FALSE;
  if (!json_is_object (config))
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "image config is not a JSON object");
  json_t *diff_ids = json_object_get (json_object_get (config, "rootfs"), "diff_ids");
  if (!json_is_array (diff_ids) || json_array_size (diff_ids) != json_array_size (layers))
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "image config lists %zu diff_ids for %zu layers",
                         json_is_array (diff_ids) ? json_array_size (diff_ids) : 0, json_array_size (layers));
  const char *os = sysctr_json_get_string (config, "os");
  if (os && strcmp (os, "linux") != 0)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "image is for os \"%s\", not linux", os);
  if (*out_chosen_platform == NULL)
    {
      const char *arch = sysctr_json_get_string (config, "architecture");
      const char *variant = sysctr_json_get_string (config, "variant");
      *out_chosen_platform = g_strdup_printf ("%s/%s%s%s", os ? os : "linux", arch ? arch : "unknown",
                                              variant ? "/" : "", variant ? variant : "");
      /* A single-platform image is what it is; say so when it will not
       * run here (an index would have been refused instead). */
      g_auto (GStrv) host = g_strsplit (platform, "/", 3);
      if (arch && host[0] && host[1] && strcmp (arch, host[1]) != 0 && !quiet)
        {
          g_autofree char *a = sysctr_printable (arch);
          sysctr_warn ("%s is built for %s, not %s", canonical, a, platform);
        }
    }
  *out_bytes = g_steal_pointer (&config_bytes);
  *out_config = g_steal_pointer (&config);
  return TRUE;
}

/* Phase 4. One job per layer descriptor, each checked: digest, size
 * within the limit, a media type sysctr reads, a diff_id. */
static gboolean
plan_layers (json_t *layers, json_t *diff_ids, LayerJobs *out, GError **error)
{
  guint n = json_array_size (layers);
  out->jobs = g_new0 (LayerJob, n);
  out->n = n;
  guint64 max_layer_bytes = sysctr_layer_max_bytes ();
  for (guint i = 0; i < n; i++)
    {
      LayerJob *job = &out->jobs[i];
      json_t *desc = json_array_get (layers, i);
      g_autofree char *what = g_strdup_printf ("layer %u", i + 1);
      if (!validate_descriptor (desc, what, &job->digest, &job->size, error))
        return FALSE;
      /* The download is bounded by the declared size: a blob declared
       * larger than any layer may be would fill the disk before the
       * uncompressed limit is ever reached. */
      if ((guint64) job->size > max_layer_bytes)
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                             "layer %s: declared size %" G_GINT64_FORMAT " is over the limit (%" G_GUINT64_FORMAT
                             " bytes)",
                             job->digest, job->size, max_layer_bytes);
      job->desc = desc;
      job->media_type = sysctr_json_get_string (desc, "mediaType");
      if (job->media_type == NULL)
        job->media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
      if (!layer_media_type_ok (job->media_type))
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "layer %s: unsupported media type %s", job->digest,
                             job->media_type);
      job->diff_id = json_string_value (json_array_get (diff_ids, i));
      if (job->diff_id == NULL || !sysctr_digest_valid (job->diff_id))
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "image config: diff_id %u is not a sha256 digest", i + 1);
    }
  return TRUE;
}

/* Phase 5. What the layers declare must fit in the store before anything
 * is fetched: a registry declaring 60 GiB of layers (under the per-layer
 * limit) would otherwise fill the disk before any digest could fail. */
static gboolean
check_free_space (SysctrContext *ctx, const LayerJobs *jobs, const char *canonical, GError **error)
{
  guint64 needed = 0, free_bytes;
  struct statvfs vfs;
  for (guint i = 0; i < jobs->n; i++)
    {
      g_autofree char *have = sysctr_store_layer_commit (ctx->repo, jobs->jobs[i].digest);
      if (have == NULL)
        needed += jobs->jobs[i].size;
    }
  /* the download, and at least as much again once it is imported */
  needed = needed * 2 + 64 * 1024 * 1024;
  if (fstatvfs (ctx->state_dfd, &vfs) == 0 && (free_bytes = (guint64) vfs.f_bavail * vfs.f_frsize, needed > free_bytes))
    {
      g_autofree char *need_s = sysctr_format_size (needed);
      g_autofree char *free_s = sysctr_format_size (free_bytes);
      return sysctr_throw (error, SYSCTR_ERROR_FAILED,
                           "pulling %s: its layers need about %s in the store (downloaded, then imported), and the "
                           "filesystem of %s%s has %s free; nothing was fetched",
                           canonical, need_s, ctx->live ? "" : ctx->root, SYSCTR_STATE_DIR, free_s);
    }
  return TRUE;
}

/* Phase 6. Fetch and import the layers the store lacks, several at a
 * time, and set a ref for every layer in the open transaction. */
static gboolean
fetch_layers (SysctrContext *ctx, SysctrSource *src, const SysctrPullOptions *opts, LayerJobs *jobs,
              SysctrPullResult *result, GError **error)
{
  g_auto (PullState) st = {
    .ctx = ctx,
    .src = src,
    .cancellable = g_cancellable_new (),
    .tty = !opts->quiet && isatty (STDERR_FILENO),
    .start = g_get_monotonic_time (),
    .spool_ram_left = spool_ram_budget (),
  };
  g_mutex_init (&st.lock);
  guint n = jobs->n;
  LayerJob *job = jobs->jobs;
  g_autoptr (GHashTable) queued = g_hash_table_new (g_str_hash, g_str_equal);
  /* a zstd:chunked layer from a registry into a store that holds layers:
   * its files may be there already */
  gboolean chunked = FALSE;
  for (guint i = 0; i < n; i++)
    {
      guint64 o, l = 0;
      g_autofree char *c = sysctr_store_layer_commit (ctx->repo, job[i].digest);
      chunked = chunked || (c == NULL && sysctr_toc_position (job[i].desc, &o, &l, NULL) && l > 0);
    }
  if (chunked && sysctr_source_registry (src) && !g_getenv ("SYSCTR_NO_PARTIAL"))
    {
      g_autoptr (GError) local = NULL;
      st.store_files = sysctr_store_files_new (ctx->repo, &local);
      if (st.store_files == NULL)
        sysctr_debug ("no partial pull: %s", local->message);
    }
  GThreadPool *pool
      = g_thread_pool_new (layer_worker, &st, MIN (4, MAX (2, (int) g_get_num_processors ())), FALSE, NULL);
  for (guint i = 0; i < n; i++)
    {
      job[i].commit = sysctr_store_layer_commit (ctx->repo, job[i].digest);
      if (job[i].commit)
        sysctr_debug ("layer %s: already in the store", job[i].digest);
      if (job[i].commit || g_hash_table_contains (queued, job[i].digest))
        continue;
      g_hash_table_add (queued, (gpointer) job[i].digest);
      st.total_bytes += job[i].size;
      g_thread_pool_push (pool, &job[i], NULL);
    }
  g_thread_pool_free (pool, FALSE, TRUE);
  if (st.tty && st.total_bytes > 0)
    g_printerr ("\r\033[K");

  /* the first error that is not a cancellation another one caused */
  GError *first = NULL;
  for (guint i = 0; i < n; i++)
    if (job[i].error && (first == NULL || g_error_matches (first, G_IO_ERROR, G_IO_ERROR_CANCELLED)))
      first = job[i].error;
  if (first)
    {
      g_propagate_error (error, g_error_copy (first));
      return FALSE;
    }

  for (guint i = 0; i < n; i++)
    {
      if (job[i].commit == NULL)
        {
          /* A duplicate of a layer imported by another job. */
          for (guint j = 0; j < n; j++)
            if (job[j].commit && strcmp (job[j].digest, job[i].digest) == 0)
              job[i].commit = g_strdup (job[j].commit);
        }
      if (job[i].commit == NULL)
        return sysctr_throw (error, SYSCTR_ERROR_FAILED, "layer %s was not imported", job[i].digest);
      g_autofree char *lref = sysctr_layer_ref_for_digest (job[i].digest);
      ostree_repo_transaction_set_ref (ctx->repo, NULL, lref, job[i].commit);
      result->layers_fetched += g_hash_table_contains (queued, job[i].digest) && job[i].fetched ? 1 : 0;
      result->bytes_fetched += job[i].fetched;
    }
  return TRUE;
}

/* Phase 7. The image commit: an empty tree whose metadata holds the
 * manifest, the config, the digest and the platform; its ref set in the
 * open transaction. */
static gboolean
commit_image (SysctrContext *ctx, const char *canonical, GBytes *manifest_bytes, GBytes *config_bytes,
              const char *digest, const char *chosen_platform, json_t *verification, GError **error)
{
  gsize mlen, clen;
  const char *mdata = g_bytes_get_data (manifest_bytes, &mlen);
  const char *cdata = g_bytes_get_data (config_bytes, &clen);
  g_autofree char *mstr = g_strndup (mdata, mlen);
  g_autofree char *cstr = g_strndup (cdata, clen);
  if (!g_utf8_validate (mstr, -1, NULL) || !g_utf8_validate (cstr, -1, NULL) || strlen (mstr) != mlen
      || strlen (cstr) != clen)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "manifest or config is not UTF-8 text");
  GVariantBuilder b;
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sv}"));
  g_variant_builder_add (&b, "{sv}", "sysctr.reference", g_variant_new_string (canonical));
  g_variant_builder_add (&b, "{sv}", "sysctr.manifest", g_variant_new_string (mstr));
  g_variant_builder_add (&b, "{sv}", "sysctr.config", g_variant_new_string (cstr));
  g_variant_builder_add (&b, "{sv}", "sysctr.manifest-digest", g_variant_new_string (digest));
  g_variant_builder_add (&b, "{sv}", "sysctr.platform", g_variant_new_string (chosen_platform));
  g_autofree char *vstr = verification ? sysctr_json_dump (verification, FALSE) : NULL;
  if (vstr)
    g_variant_builder_add (&b, "{sv}", "sysctr.verification", g_variant_new_string (vstr));
  g_autoptr (GVariant) meta = g_variant_ref_sink (g_variant_builder_end (&b));
  /* The image commit's tree is empty: its content is its layers. */
  g_autoptr (OstreeMutableTree) mtree = ostree_mutable_tree_new ();
  g_autofree char *csum = NULL;
  g_autoptr (GFile) root = NULL;
  g_autofree char *image_commit = NULL;
  if (!sysctr_write_default_dirmeta (ctx->repo, &csum, NULL, error))
    return FALSE;
  ostree_mutable_tree_set_metadata_checksum (mtree, csum);
  if (!ostree_repo_write_mtree (ctx->repo, mtree, &root, NULL, error)
      || !ostree_repo_write_commit (ctx->repo, NULL, canonical, NULL, meta, OSTREE_REPO_FILE (root), &image_commit,
                                    NULL, error))
    return FALSE;
  g_autofree char *iref = sysctr_image_ref_for_reference (canonical);
  ostree_repo_transaction_set_ref (ctx->repo, NULL, iref, image_commit);
  return TRUE;
}

/* Phase 1b. containers-policy.json on the top-level manifest (an index
 * when the tag names one: that is what signers sign). Signatures are read
 * only when a requirement asks for them. */
typedef struct
{
  const SysctrRef *ref;
  const SysctrPullOptions *opts;
  SysctrSource *src;
  const char *digest;
} SigFetch;

static gboolean
fetch_signatures (gpointer data, GPtrArray **out_sigs, GError **error)
{
  SigFetch *f = data;
  g_auto (SysctrSigConfig) config = { 0 };
  if (!sysctr_sig_config_load (f->opts->registries_d, f->ref, &config, error))
    return FALSE;
  sysctr_debug ("signatures of %s: lookaside %s, sigstore attachments %s", f->digest, config.lookaside,
                config.attachments ? "yes" : "no");
  return sysctr_signatures_fetch (&config, f->ref, f->digest, sysctr_source_registry (f->src), f->opts->tls_verify,
                                  out_sigs, error);
}

static gboolean
check_policy (const SysctrPolicy *policy, SysctrSource *src, const SysctrRef *ref, const SysctrPullOptions *opts,
              const char *top_digest, json_t **out_record, GError **error)
{
  SigFetch f = { .ref = ref, .opts = opts, .src = src, .digest = top_digest };
  if (!sysctr_policy_check (policy, ref, top_digest, fetch_signatures, &f, out_record, error))
    return FALSE;
  json_object_set_new (*out_record, "manifest_digest", json_string (top_digest));
  return TRUE;
}

/* The stored image @old with a new verification record: a new image
 * commit with the same metadata otherwise. */
static gboolean
rerecord_image (SysctrContext *ctx, const SysctrImage *old, json_t *verification, SysctrImage **out_image,
                GError **error)
{
  g_autoptr (GVariant) commit_v = NULL;
  if (!ostree_repo_load_variant (ctx->repo, OSTREE_OBJECT_TYPE_COMMIT, old->commit, &commit_v, error))
    return FALSE;
  g_autoptr (GVariant) meta = g_variant_get_child_value (commit_v, 0);
  g_autoptr (GVariantDict) dict = g_variant_dict_new (meta);
  g_autofree char *vstr = sysctr_json_dump (verification, FALSE);
  g_variant_dict_insert (dict, "sysctr.verification", "s", vstr);
  g_autoptr (GVariant) new_meta = g_variant_ref_sink (g_variant_dict_end (dict));
  g_autoptr (GFile) root = NULL;
  g_autofree char *commit = NULL;
  if (!ostree_repo_prepare_transaction (ctx->repo, NULL, NULL, error))
    return FALSE;
  gboolean ok = ostree_repo_read_commit (ctx->repo, old->commit, &root, NULL, NULL, error)
                && ostree_repo_write_commit (ctx->repo, NULL, old->reference, NULL, new_meta, OSTREE_REPO_FILE (root),
                                             &commit, NULL, error);
  if (ok)
    {
      ostree_repo_transaction_set_ref (ctx->repo, NULL, old->ref, commit);
      ok = ostree_repo_commit_transaction (ctx->repo, NULL, NULL, error);
    }
  if (!ok)
    {
      (void) ostree_repo_abort_transaction (ctx->repo, NULL, NULL);
      return FALSE;
    }
  return sysctr_store_load_image (ctx->repo, old->ref, out_image, error);
}

static gboolean
pull_inner (SysctrContext *ctx, const SysctrRef *ref, const SysctrPullOptions *opts, SysctrImage **out_image,
            SysctrPullResult *result, GError **error)
{
  g_autofree char *canonical = sysctr_ref_to_string (ref);
  g_autofree char *platform = opts->platform ? g_strdup (opts->platform) : sysctr_host_platform ();
  g_autoptr (SysctrPolicy) policy = NULL;
  if (!sysctr_policy_load (opts->signature_policy, &policy, error))
    return FALSE;
  g_autoptr (SysctrSource) src = sysctr_source_open (ref, opts, ctx->tmp_dfd, error);
  if (src == NULL)
    return FALSE;

  g_autoptr (GBytes) manifest_bytes = NULL;
  g_autofree char *top_digest = NULL;
  g_autofree char *digest = NULL;
  g_autoptr (json_t) manifest = NULL;
  g_autofree char *chosen_platform = NULL;
  if (!resolve_manifest (src, ref, platform, &top_digest, &manifest_bytes, &digest, &manifest, &chosen_platform, error))
    return FALSE;

  /* The policy decides before anything is stored. */
  g_autoptr (json_t) verification = NULL;
  if (!check_policy (policy, src, ref, opts, top_digest, &verification, error))
    return FALSE;

  if (!stored_if_unchanged (ctx, canonical, digest, out_image, error))
    return FALSE;
  if (*out_image)
    {
      result->up_to_date = TRUE;
      result->requests = sysctr_source_request_count (src);
      if (json_equal ((*out_image)->verification, verification))
        return TRUE;
      /* the same image, accepted another way now: say so in the store */
      g_autoptr (SysctrImage) stale = g_steal_pointer (out_image);
      return rerecord_image (ctx, stale, verification, out_image, error);
    }

  g_autoptr (GBytes) config_bytes = NULL;
  g_autoptr (json_t) config = NULL;
  if (!fetch_config (src, manifest, digest, canonical, platform, opts->quiet, &config_bytes, &config, &chosen_platform,
                     error))
    return FALSE;

  g_auto (LayerJobs) jobs = { 0 };
  json_t *diff_ids = json_object_get (json_object_get (config, "rootfs"), "diff_ids");
  if (!plan_layers (json_object_get (manifest, "layers"), diff_ids, &jobs, error))
    return FALSE;

  /* Everything below is one OSTree transaction: an interrupted or failed
   * pull leaves no image ref pointing at partial data. */
  if (!ostree_repo_prepare_transaction (ctx->repo, NULL, NULL, error))
    return FALSE;
  gboolean ok
      = check_free_space (ctx, &jobs, canonical, error) && fetch_layers (ctx, src, opts, &jobs, result, error)
        && commit_image (ctx, canonical, manifest_bytes, config_bytes, digest, chosen_platform, verification, error);
  if (ok)
    {
      sysctr_crash_point ("pull-before-commit");
      ok = ostree_repo_commit_transaction (ctx->repo, NULL, NULL, error);
    }
  if (!ok)
    {
      (void) ostree_repo_abort_transaction (ctx->repo, NULL, NULL);
      return FALSE;
    }

  result->requests = sysctr_source_request_count (src);
  return sysctr_store_lookup_image (ctx->repo, canonical, out_image, error);
}

/* Error messages of a pull carry what registries and images said (media
 * types, Content-Type, JSON parser excerpts, error bodies, token realms):
 * they reach the admin's terminal only through sysctr_printable(). */
static gboolean
pull_shown (SysctrContext *ctx, const SysctrRef *ref, const char *shown_reference, const SysctrPullOptions *opts,
            SysctrImage **out_image, SysctrPullResult *out_result, GError **error)
{
  SysctrPullResult result = { 0 };
  g_autoptr (SysctrImage) image = NULL;
  g_autoptr (GError) local_error = NULL;
  if (!pull_inner (ctx, ref, opts, &image, &result, &local_error))
    {
      g_autofree char *msg = sysctr_printable (local_error->message);
      g_autofree char *shown = sysctr_printable (shown_reference);
      g_set_error (error, local_error->domain, local_error->code, "pulling %s: %s", shown, msg);
      return FALSE;
    }
  if (out_result)
    *out_result = result;
  *out_image = g_steal_pointer (&image);
  return TRUE;
}

gboolean
sysctr_pull (SysctrContext *ctx, const char *reference, const SysctrPullOptions *opts, SysctrImage **out_image,
             SysctrPullResult *out_result, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  g_autoptr (SysctrRef) ref = sysctr_ref_parse (reference, &local_error);
  if (ref == NULL)
    {
      g_autofree char *msg = sysctr_printable (local_error->message);
      g_autofree char *shown = sysctr_printable (reference);
      g_set_error (error, local_error->domain, local_error->code, "pulling %s: %s", shown, msg);
      return FALSE;
    }
  return pull_shown (ctx, ref, reference, opts, out_image, out_result, error);
}

gboolean
sysctr_pull_ref (SysctrContext *ctx, const SysctrRef *ref, const SysctrPullOptions *opts, SysctrImage **out_image,
                 SysctrPullResult *out_result, GError **error)
{
  g_autofree char *canonical = sysctr_ref_to_string (ref);
  return pull_shown (ctx, ref, canonical, opts, out_image, out_result, error);
}
