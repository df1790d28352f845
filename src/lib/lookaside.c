/* containers-registries.d(5) and the signatures it points to.
 *
 * Invariant: the configuration is merged from every *.yaml file and a
 * namespace (or default-docker) defined twice is an error, as in
 * containers/image; the most specific namespace that sets a value wins.
 * Signatures read are bounded in size and number and never trusted here. */
#include "config.h"

#include "lookaside.h"

#include "sysctr-util.h"

#include <curl/curl.h>
#include <errno.h>
#include <string.h>
#include <yaml.h>

#define MAX_SIGNATURE (4 * 1024 * 1024)
#define MAX_SIGNATURES 128
#define MAX_ALL_SIGNATURES (16 * 1024 * 1024) /* of one image, lookaside and attachments together */
#define SIMPLESIGNING_MT "application/vnd.dev.cosign.simplesigning.v1+json"

void
sysctr_sig_config_clear (SysctrSigConfig *c)
{
  g_clear_pointer (&c->lookaside, g_free);
}

/* One namespace's settings as written (NULL / -1: not set). */
typedef struct
{
  char *lookaside;
  char *sigstore; /* the old name of lookaside */
  int attachments;
} Ns;

static void
ns_free (Ns *ns)
{
  g_free (ns->lookaside);
  g_free (ns->sigstore);
  g_free (ns);
}

static const char *
ns_lookaside (const Ns *ns)
{
  return ns->lookaside ? ns->lookaside : ns->sigstore;
}

/* A YAML null: empty, ~ or null, unquoted. */
static gboolean
is_null (yaml_node_t *n)
{
  if (n == NULL || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return n == NULL;
  const char *v = (const char *) n->data.scalar.value;
  gsize len = n->data.scalar.length;
  return len == 0 || (len == 1 && v[0] == '~')
         || (len == 4 && (strncmp (v, "null", 4) == 0 || strncmp (v, "Null", 4) == 0 || strncmp (v, "NULL", 4) == 0));
}

static char *
scalar (yaml_node_t *n)
{
  if (n == NULL || n->type != YAML_SCALAR_NODE || is_null (n))
    return NULL;
  return g_strndup ((const char *) n->data.scalar.value, n->data.scalar.length);
}

static gboolean
parse_bool (const char *v, int *out)
{
  static const char *const yes[] = { "true", "yes", "on", "y", NULL };
  static const char *const no[] = { "false", "no", "off", "n", NULL };
  for (guint i = 0; yes[i]; i++)
    if (g_ascii_strcasecmp (v, yes[i]) == 0)
      return *out = 1, TRUE;
  for (guint i = 0; no[i]; i++)
    if (g_ascii_strcasecmp (v, no[i]) == 0)
      return *out = 0, TRUE;
  return FALSE;
}

static Ns *
parse_ns (yaml_document_t *doc, yaml_node_t *node, const char *file, const char *name, GError **error)
{
  Ns *ns = g_new0 (Ns, 1);
  ns->attachments = -1;
  if (is_null (node))
    return ns; /* "ns:" with nothing under it */
  if (node->type != YAML_MAPPING_NODE)
    {
      sysctr_throw (error, SYSCTR_ERROR_INVALID, "parsing %s: %s is not a mapping", file, name);
      ns_free (ns);
      return NULL;
    }
  for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++)
    {
      g_autofree char *k = scalar (yaml_document_get_node (doc, p->key));
      yaml_node_t *vn = yaml_document_get_node (doc, p->value);
      g_autofree char *v = scalar (vn);
      if (k == NULL || is_null (vn))
        continue; /* a null value leaves the setting unset, as in Go */
      if (strcmp (k, "lookaside") == 0 || strcmp (k, "sigstore") == 0)
        {
          if (v == NULL)
            {
              sysctr_throw (error, SYSCTR_ERROR_INVALID, "parsing %s: %s.%s is not a string", file, name, k);
              ns_free (ns);
              return NULL;
            }
          char **slot = strcmp (k, "lookaside") == 0 ? &ns->lookaside : &ns->sigstore;
          g_free (*slot);
          *slot = *v ? g_steal_pointer (&v) : NULL;
        }
      else if (strcmp (k, "use-sigstore-attachments") == 0)
        {
          if (v == NULL || !parse_bool (v, &ns->attachments))
            {
              sysctr_throw (error, SYSCTR_ERROR_INVALID, "parsing %s: %s.use-sigstore-attachments is not a boolean",
                            file, name);
              ns_free (ns);
              return NULL;
            }
        }
      /* lookaside-staging, sigstore-staging: where signers write;
       * unknown keys are ignored, as containers/image does */
    }
  return ns;
}

typedef struct
{
  Ns *def;
  GHashTable *docker; /* namespace -> Ns */
  GHashTable *from;   /* namespace -> file, for messages */
  char *def_from;
} Merged;

static void
merged_clear (Merged *m)
{
  g_clear_pointer (&m->def, ns_free);
  g_clear_pointer (&m->docker, g_hash_table_unref);
  g_clear_pointer (&m->from, g_hash_table_unref);
  g_clear_pointer (&m->def_from, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Merged, merged_clear)

static gboolean
merge_file (Merged *m, const char *path, const char *data, gsize len, GError **error)
{
  yaml_parser_t parser;
  yaml_document_t doc;
  yaml_parser_initialize (&parser);
  yaml_parser_set_input_string (&parser, (const unsigned char *) data, len);
  if (!yaml_parser_load (&parser, &doc))
    {
      sysctr_throw (error, SYSCTR_ERROR_INVALID, "parsing %s: %s at line %zu", path,
                    parser.problem ? parser.problem : "invalid YAML", parser.problem_mark.line + 1);
      yaml_parser_delete (&parser);
      return FALSE;
    }
  yaml_parser_delete (&parser);
  gboolean ok = TRUE;
  yaml_node_t *root = yaml_document_get_root_node (&doc);
  if (root && root->type == YAML_MAPPING_NODE)
    {
      for (yaml_node_pair_t *p = root->data.mapping.pairs.start; ok && p < root->data.mapping.pairs.top; p++)
        {
          g_autofree char *k = scalar (yaml_document_get_node (&doc, p->key));
          yaml_node_t *v = yaml_document_get_node (&doc, p->value);
          if (k == NULL || v == NULL)
            continue;
          if (strcmp (k, "default-docker") == 0 && is_null (v))
            continue; /* "default-docker:" alone (as distributions ship it) defines nothing */
          if (strcmp (k, "default-docker") == 0)
            {
              if (m->def)
                {
                  ok = sysctr_throw (error, SYSCTR_ERROR_INVALID,
                                     "Error parsing signature storage configuration: \"default-docker\" defined both "
                                     "in %s and %s",
                                     m->def_from, path);
                  break;
                }
              m->def = parse_ns (&doc, v, path, "default-docker", error);
              m->def_from = g_strdup (path);
              ok = m->def != NULL;
            }
          else if (strcmp (k, "docker") == 0 && v->type == YAML_MAPPING_NODE)
            {
              for (yaml_node_pair_t *q = v->data.mapping.pairs.start; ok && q < v->data.mapping.pairs.top; q++)
                {
                  g_autofree char *name = scalar (yaml_document_get_node (&doc, q->key));
                  yaml_node_t *nv = yaml_document_get_node (&doc, q->value);
                  if (name == NULL || nv == NULL)
                    continue;
                  if (g_hash_table_contains (m->docker, name))
                    {
                      ok = sysctr_throw (error, SYSCTR_ERROR_INVALID,
                                         "Error parsing signature storage configuration: \"docker\" namespace \"%s\" "
                                         "defined both in %s and %s",
                                         name, (char *) g_hash_table_lookup (m->from, name), path);
                      break;
                    }
                  Ns *ns = parse_ns (&doc, nv, path, name, error);
                  if (ns == NULL)
                    ok = FALSE;
                  else
                    {
                      g_hash_table_insert (m->from, g_strdup (name), g_strdup (path));
                      g_hash_table_insert (m->docker, g_steal_pointer (&name), ns);
                    }
                }
            }
          else if (strcmp (k, "docker") == 0 && !is_null (v))
            ok = sysctr_throw (error, SYSCTR_ERROR_INVALID, "parsing %s: \"docker\" is not a mapping", path);
        }
    }
  else if (root && !is_null (root))
    ok = sysctr_throw (error, SYSCTR_ERROR_INVALID, "parsing %s: not a mapping", path);
  yaml_document_delete (&doc);
  return ok;
}

gboolean
sysctr_registries_d_parse (const char *data, gsize len, GError **error)
{
  g_auto (Merged) m = {
    .docker = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) ns_free),
    .from = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free),
  };
  return merge_file (&m, "input.yaml", data, len, error);
}

gboolean
sysctr_sig_config_load (const char *dir, const SysctrRef *ref, SysctrSigConfig *out, GError **error)
{
  memset (out, 0, sizeof *out);
  if (ref->transport != SYSCTR_TRANSPORT_DOCKER)
    return TRUE;
  const char *d = dir ? dir : SYSCTR_REGISTRIES_D;
  g_autoptr (GPtrArray) names = NULL;
  if (!sysctr_dir_list_at (AT_FDCWD, d, TRUE, &names, error))
    return FALSE;
  g_auto (Merged) m = {
    .docker = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) ns_free),
    .from = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free),
  };
  for (guint i = 0; i < names->len; i++)
    {
      const char *n = names->pdata[i];
      if (!g_str_has_suffix (n, ".yaml"))
        continue;
      g_autofree char *path = g_build_filename (d, n, NULL);
      g_autofree char *data = NULL;
      gsize len = 0;
      g_autoptr (GError) local = NULL;
      if (!sysctr_read_file_at (AT_FDCWD, path, 1024 * 1024, &data, &len, &local))
        {
          if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
            continue;
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
      if (!merge_file (&m, path, data, len, error))
        return FALSE;
    }
  g_autoptr (GPtrArray) ns = sysctr_ref_docker_scopes (ref);
  int attachments = -1;
  for (guint i = 0; i < ns->len; i++)
    {
      Ns *n = g_hash_table_lookup (m.docker, ns->pdata[i]);
      if (n == NULL)
        continue;
      if (out->lookaside == NULL && ns_lookaside (n))
        out->lookaside = g_strdup (ns_lookaside (n));
      if (attachments < 0)
        attachments = n->attachments;
    }
  if (m.def)
    {
      if (out->lookaside == NULL && ns_lookaside (m.def))
        out->lookaside = g_strdup (ns_lookaside (m.def));
      if (attachments < 0)
        attachments = m.def->attachments;
    }
  out->attachments = attachments > 0;
  /* containers/image's built-in default for root */
  if (out->lookaside == NULL)
    out->lookaside = g_strdup ("file:///var/lib/containers/sigstore");
  return TRUE;
}

/* ---------------------------------------------------------- fetching --- */

static gboolean
signature_from_blob (GBytes *blob, const char *origin, SysctrSignature **out, GError **error)
{
  gsize len;
  const guchar *d = g_bytes_get_data (blob, &len);
  if (len == 0)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "parsing signature %s: empty signature blob", origin);
  static const guchar openpgp[]
      = { 0xA0, 0xA1, 0xA2, 0xA3, 0xC8, 0x90, 0x91, 0x92, 0x3d, 0xC4, 0x88, 0x89, 0x8A, 0x8B, 0xC2 };
  g_autoptr (SysctrSignature) sig = g_new0 (SysctrSignature, 1);
  sig->origin = g_strdup (origin);
  if (memchr (openpgp, d[0], sizeof openpgp))
    {
      sig->kind = SYSCTR_SIG_SIMPLE;
      sig->blob = g_bytes_ref (blob);
    }
  else if (d[0] == 0x00)
    {
      const guchar *nl = memchr (d + 1, '\n', len - 1);
      if (nl == NULL)
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "parsing signature %s: invalid signature format", origin);
      for (const guchar *c = d + 1; c < nl; c++)
        if (*c < 32 || *c >= 0x7f)
          return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                               "parsing signature %s: invalid signature format, non-ASCII byte %#x", origin, *c);
      g_autofree char *format = g_strndup ((const char *) d + 1, nl - d - 1);
      gsize off = nl - d + 1;
      if (strcmp (format, "simple-signing") == 0)
        {
          sig->kind = SYSCTR_SIG_SIMPLE;
          sig->blob = g_bytes_new_from_bytes (blob, off, len - off);
        }
      else if (strcmp (format, "sigstore-json") == 0)
        {
          json_error_t jerr;
          g_autoptr (json_t) j = json_loadb ((const char *) d + off, len - off, JSON_REJECT_DUPLICATES, &jerr);
          const char *mt = sysctr_json_get_string (j, "mimeType");
          const char *payload = sysctr_json_get_string (j, "payload");
          json_t *ann = json_object_get (j, "annotations");
          if (mt == NULL || payload == NULL || (ann && !json_is_object (ann)))
            return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "parsing signature %s: invalid sigstore-json", origin);
          gsize plen;
          guchar *p = g_base64_decode (payload, &plen);
          sig->kind = SYSCTR_SIG_SIGSTORE;
          sig->blob = g_bytes_new_take (p, plen);
          sig->mime_type = g_strdup (mt);
          sig->signature = g_strdup (sysctr_json_get_string (ann, "dev.cosignproject.cosign/signature"));
        }
      else
        {
          g_autofree char *f = sysctr_printable (format);
          return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "parsing signature %s: unrecognized signature format %s",
                               origin, f);
        }
    }
  else
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                         "parsing signature %s: unrecognized signature format, starting with binary %#x", origin, d[0]);
  *out = g_steal_pointer (&sig);
  return TRUE;
}

static size_t
http_write (char *ptr, size_t size, size_t nmemb, void *data)
{
  GByteArray *buf = data;
  size_t n = size * nmemb;
  if (buf->len + n > MAX_SIGNATURE)
    return 0;
  g_byte_array_append (buf, (const guint8 *) ptr, n);
  return n;
}

/* One lookaside signature; *out NULL at the end of the list. */
static gboolean
read_one (const char *scheme, const char *location, const char *url, const char *shown, gboolean tls_verify,
          GBytes **out, GError **error)
{
  *out = NULL;
  if (strcmp (scheme, "file") == 0)
    {
      char *data = NULL;
      gsize len = 0;
      g_autoptr (GError) local = NULL;
      if (!sysctr_read_file_at (AT_FDCWD, location, MAX_SIGNATURE, &data, &len, &local))
        {
          if (g_error_matches (local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
            return TRUE;
          g_propagate_error (error, g_steal_pointer (&local));
          return FALSE;
        }
      *out = g_bytes_new_take (data, len);
      return TRUE;
    }
  CURL *c = curl_easy_init ();
  if (c == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_FAILED, "curl init failed");
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  curl_easy_setopt (c, CURLOPT_URL, url);
  curl_easy_setopt (c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt (c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt (c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt (c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt (c, CURLOPT_CONNECTTIMEOUT, 30L);
  /* a signature is small: a server that drips it holds the state lock */
  curl_easy_setopt (c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt (c, CURLOPT_LOW_SPEED_TIME, 30L);
  curl_easy_setopt (c, CURLOPT_TIMEOUT, 120L);
  curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (c, CURLOPT_SSL_VERIFYPEER, tls_verify ? 1L : 0L);
  curl_easy_setopt (c, CURLOPT_SSL_VERIFYHOST, tls_verify ? 2L : 0L);
  curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, http_write);
  curl_easy_setopt (c, CURLOPT_WRITEDATA, buf);
  CURLcode rc = curl_easy_perform (c);
  long status = 0;
  curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup (c);
  if (rc == CURLE_WRITE_ERROR)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "reading signature from %s: larger than %d bytes", shown,
                         MAX_SIGNATURE);
  if (rc != CURLE_OK)
    return sysctr_throw (error, SYSCTR_ERROR_NETWORK, "reading signature from %s: %s", shown, curl_easy_strerror (rc));
  if (status == 404)
    return TRUE;
  if (status != 200)
    return sysctr_throw (error, SYSCTR_ERROR_NETWORK, "reading signature from %s: HTTP %ld", shown, status);
  *out = g_byte_array_free_to_bytes (g_steal_pointer (&buf));
  return TRUE;
}

static gboolean
fetch_lookaside (const char *base, const SysctrRef *ref, const char *digest, gboolean tls_verify, GPtrArray *sigs,
                 gsize *budget, GError **error)
{
  g_autoptr (GUri) uri = g_uri_parse (base, G_URI_FLAGS_NONE, NULL);
  if (uri == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "Invalid signature storage URL %s", base);
  const char *scheme = g_uri_get_scheme (uri);
  if (strcmp (scheme, "file") != 0 && strcmp (scheme, "http") != 0 && strcmp (scheme, "https") != 0)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "Unsupported scheme when reading signature from %s", base);
  const char *colon = strchr (digest, ':');
  g_autofree char *alg = g_strndup (digest, colon - digest);
  /* the repository path has no "." or ".." component (reference.c) */
  for (guint n = 1;; n++)
    {
      if (n > MAX_SIGNATURES)
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "more than %d signatures for %s", MAX_SIGNATURES, digest);
      g_autofree char *suffix = g_strdup_printf ("/%s@%s=%s/signature-%u", ref->path, alg, colon + 1, n);
      g_autofree char *path = g_strconcat (g_uri_get_path (uri), suffix, NULL);
      g_autoptr (GUri) sig_uri = g_uri_build (G_URI_FLAGS_NONE, scheme, g_uri_get_userinfo (uri), g_uri_get_host (uri),
                                              g_uri_get_port (uri), path, g_uri_get_query (uri), NULL);
      g_autofree char *url = g_uri_to_string (sig_uri);
      /* what messages and the record show: never a password */
      g_autofree char *shown = g_uri_to_string_partial (sig_uri, G_URI_HIDE_PASSWORD | G_URI_HIDE_QUERY);
      g_autoptr (GBytes) blob = NULL;
      if (!read_one (scheme, path, url, shown, tls_verify, &blob, error))
        return FALSE;
      if (blob == NULL)
        return TRUE;
      SysctrSignature *sig = NULL;
      *budget -= MIN (*budget, g_bytes_get_size (blob));
      if (*budget == 0)
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "the signatures of %s are over %d bytes in all", digest,
                             MAX_ALL_SIGNATURES);
      if (!signature_from_blob (blob, shown, &sig, error))
        return FALSE;
      g_ptr_array_add (sigs, sig);
    }
}

static gboolean
fetch_attachments (SysctrRegistry *reg, const SysctrRef *ref, const char *digest, GPtrArray *sigs, gsize *budget,
                   GError **error)
{
  g_autofree char *tag = g_strdup (digest);
  *strchr (tag, ':') = '-';
  g_autofree char *full_tag = g_strconcat (tag, ".sig", NULL);
  g_autoptr (GBytes) data = NULL;
  g_autofree char *mt = NULL;
  g_autoptr (GError) local = NULL;
  if (!sysctr_registry_get_manifest (reg, full_tag, &data, &mt, NULL, &local))
    {
      if (g_error_matches (local, SYSCTR_ERROR, SYSCTR_ERROR_NOT_FOUND))
        return TRUE;
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  g_autofree char *where = g_strdup_printf ("%s/%s:%s", ref->domain, ref->path, full_tag);
  if (g_strcmp0 (mt, "application/vnd.oci.image.manifest.v1+json") != 0)
    {
      g_autofree char *shown = sysctr_printable (mt ? mt : "");
      return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                           "unexpected MIME type for sigstore attachment manifest %s: \"%s\"", where, shown);
    }
  gsize len;
  const char *bytes = g_bytes_get_data (data, &len);
  g_autoptr (json_t) m = sysctr_json_parse (bytes, len, "sigstore attachment manifest", error);
  if (m == NULL)
    return FALSE;
  json_t *layers = json_object_get (m, "layers");
  if (!json_is_array (layers))
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "sigstore attachment manifest %s has no layers", where);
  if (json_array_size (layers) > MAX_SIGNATURES)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "more than %d signatures in %s", MAX_SIGNATURES, where);
  size_t i;
  json_t *l;
  json_array_foreach (layers, i, l)
    {
      const char *ld = sysctr_json_get_string (l, "digest");
      const char *lmt = sysctr_json_get_string (l, "mediaType");
      json_t *size = json_object_get (l, "size");
      json_t *ann = json_object_get (l, "annotations");
      if (ld == NULL || !sysctr_digest_valid (ld) || !json_is_integer (size) || json_integer_value (size) < 0
          || json_integer_value (size) > MAX_SIGNATURE || lmt == NULL || (ann && !json_is_object (ann)))
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "sigstore attachment %s: layer %zu is not a valid descriptor",
                             where, i + 1);
      g_autoptr (GBytes) payload = NULL;
      if ((gsize) json_integer_value (size) >= *budget)
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "the signatures of %s are over %d bytes in all", digest,
                             MAX_ALL_SIGNATURES);
      *budget -= json_integer_value (size);
      if (!sysctr_registry_fetch_blob_bytes (reg, ld, json_integer_value (size), MAX_SIGNATURE, &payload, error))
        return FALSE;
      SysctrSignature *sig = g_new0 (SysctrSignature, 1);
      sig->kind = SYSCTR_SIG_SIGSTORE;
      sig->blob = g_steal_pointer (&payload);
      sig->mime_type = g_strdup (lmt);
      sig->signature = g_strdup (sysctr_json_get_string (ann, "dev.cosignproject.cosign/signature"));
      sig->has_set = json_object_get (ann, "dev.sigstore.cosign/bundle") != NULL;
      sig->origin = g_strdup_printf ("%s layer %zu", where, i + 1);
      g_ptr_array_add (sigs, sig);
    }
  return TRUE;
}

gboolean
sysctr_signatures_fetch (const SysctrSigConfig *config, const SysctrRef *ref, const char *digest, SysctrRegistry *reg,
                         gboolean tls_verify, GPtrArray **out_sigs, GError **error)
{
  g_autoptr (GPtrArray) sigs = g_ptr_array_new_with_free_func ((GDestroyNotify) sysctr_signature_free);
  if (ref->transport == SYSCTR_TRANSPORT_DOCKER && sysctr_digest_valid (digest))
    {
      gsize budget = MAX_ALL_SIGNATURES;
      if (config->lookaside && !fetch_lookaside (config->lookaside, ref, digest, tls_verify, sigs, &budget, error))
        return FALSE;
      if (config->attachments && reg && !fetch_attachments (reg, ref, digest, sigs, &budget, error))
        return FALSE;
    }
  sysctr_debug ("%u signature(s) for %s", sigs->len, digest);
  *out_sigs = g_steal_pointer (&sigs);
  return TRUE;
}
