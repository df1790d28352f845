/* containers-policy.json(5), read and applied as containers/image does:
 * scopes per transport (exact reference, repository, parent namespaces,
 * *.domain wildcards, the transport's "" default, then "default"), every
 * requirement of the scope must hold, and a signature requirement holds
 * when one signature of its kind verifies.
 *
 * Invariant: parsing is strict and total (no partial policy is ever
 * applied); evaluation accepts only through insecureAcceptAnything or a
 * verified signature whose payload names this manifest digest and an
 * identity the requirement's signedIdentity accepts. */
#include "config.h"

#include "policy.h"

#include "signature.h"
#include "sysctr-util.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

typedef enum
{
  PR_ACCEPT,
  PR_REJECT,
  PR_SIGNED_BY,
  PR_SIGSTORE,
  PR_SIGNED_BASE_LAYER,
} PrType;

typedef enum
{
  PRM_MATCH_EXACT,
  PRM_MATCH_REPO_DIGEST_OR_EXACT,
  PRM_MATCH_REPOSITORY,
  PRM_EXACT_REFERENCE,
  PRM_EXACT_REPOSITORY,
  PRM_REMAP_IDENTITY,
} PrmType;

typedef struct
{
  PrmType type;
  char *reference; /* exactReference, exactRepository */
  char *prefix;    /* remapIdentity */
  char *signed_prefix;
} Prm;

typedef struct
{
  PrType type;
  char *key_type;          /* signedBy */
  GPtrArray *key_paths;    /* keyPath / keyPaths */
  GPtrArray *key_datas;    /* keyData / keyDatas, decoded (GBytes) */
  const char *unsupported; /* sigstoreSigned: what sysctr cannot verify */
  Prm identity;
} Requirement;

struct SysctrPolicy
{
  char *path;
  GPtrArray *default_reqs;
  GHashTable *transports; /* name -> (scope -> GPtrArray of Requirement) */
};

static const char *const known_transports[] = {
  "atomic", "containers-storage", "dir",    "docker", "docker-archive", "docker-daemon",
  "oci",    "oci-archive",        "ostree", "sif",    "tarball",
};

static void
requirement_free (Requirement *r)
{
  g_free (r->key_type);
  g_clear_pointer (&r->key_paths, g_ptr_array_unref);
  g_clear_pointer (&r->key_datas, g_ptr_array_unref);
  g_free (r->identity.reference);
  g_free (r->identity.prefix);
  g_free (r->identity.signed_prefix);
  g_free (r);
}

void
sysctr_policy_free (SysctrPolicy *policy)
{
  if (policy == NULL)
    return;
  g_free (policy->path);
  g_clear_pointer (&policy->default_reqs, g_ptr_array_unref);
  g_clear_pointer (&policy->transports, g_hash_table_unref);
  g_free (policy);
}

void
sysctr_signature_free (SysctrSignature *sig)
{
  if (sig == NULL)
    return;
  g_clear_pointer (&sig->blob, g_bytes_unref);
  g_free (sig->mime_type);
  g_free (sig->signature);
  g_free (sig->origin);
  g_free (sig);
}

/* ------------------------------------------------------------ parsing --- */

static gboolean bad (GError **error, const char *fmt, ...) G_GNUC_PRINTF (2, 3);
static gboolean
bad (GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  return sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s", msg);
}

/* Every key of @obj is one of @allowed (NULL-terminated). */
static gboolean
only_keys (json_t *obj, const char *what, const char *const *allowed, GError **error)
{
  const char *key;
  json_t *v;
  json_object_foreach (obj, key, v)
    {
      gboolean ok = FALSE;
      for (const char *const *a = allowed; *a; a++)
        ok = ok || strcmp (*a, key) == 0;
      if (!ok)
        {
          g_autofree char *k = sysctr_printable (key);
          return bad (error, "%s: unknown key \"%s\"", what, k);
        }
    }
  return TRUE;
}

static gboolean
get_string (json_t *obj, const char *key, const char *what, gboolean required, const char **out, GError **error)
{
  json_t *v = json_object_get (obj, key);
  *out = NULL;
  if (v == NULL && !required)
    return TRUE;
  if (v == NULL)
    {
      bad (error, "%s: \"%s\" is missing", what, key);
      return FALSE;
    }
  if (!json_is_string (v))
    {
      bad (error, "%s: \"%s\" is not a string", what, key);
      return FALSE;
    }
  *out = json_string_value (v);
  return TRUE;
}

/* Go's base64.StdEncoding, strictly: the alphabet, padding only at the
 * end, a length that is a multiple of 4. */
static GBytes *
base64_decode_strict (const char *in, GError **error)
{
  /* Go's decoder skips line breaks */
  g_autofree char *s = g_strdup (in);
  char *w = s;
  for (const char *r = in; *r; r++)
    if (*r != '\r' && *r != '\n')
      *w++ = *r;
  *w = '\0';
  gsize n = strlen (s);
  if (n % 4 != 0)
    {
      sysctr_throw (error, SYSCTR_ERROR_INVALID, "not valid base64 (length %zu)", n);
      return NULL;
    }
  gsize pad = 0;
  for (gsize i = 0; i < n; i++)
    {
      char c = s[i];
      if (c == '=')
        {
          if (i < n - 2 || (i == n - 2 && s[n - 1] != '='))
            {
              sysctr_throw (error, SYSCTR_ERROR_INVALID, "not valid base64 (padding inside)");
              return NULL;
            }
          pad++;
        }
      else if (!(g_ascii_isalnum (c) || c == '+' || c == '/'))
        {
          sysctr_throw (error, SYSCTR_ERROR_INVALID, "not valid base64 (character %zu)", i + 1);
          return NULL;
        }
    }
  gsize len = 0;
  guchar *data = g_base64_decode (s, &len);
  return g_bytes_new_take (data, len);
}

/* A repository prefix for remapIdentity, as containers/image checks it:
 * a registry host[:port], or a name under one. */
static gboolean
prefix_valid (const char *p)
{
  return sysctr_docker_prefix_valid (p);
}

static gboolean
parse_prm (json_t *j, const char *what, Prm *out, GError **error)
{
  if (!json_is_object (j))
    return bad (error, "%s: signedIdentity is not an object", what);
  const char *type = NULL;
  if (!get_string (j, "type", "signedIdentity", TRUE, &type, error))
    return FALSE;
  static const char *const just_type[] = { "type", NULL };
  if (strcmp (type, "matchExact") == 0 || strcmp (type, "matchRepoDigestOrExact") == 0
      || strcmp (type, "matchRepository") == 0)
    {
      out->type = strcmp (type, "matchExact") == 0        ? PRM_MATCH_EXACT
                  : strcmp (type, "matchRepository") == 0 ? PRM_MATCH_REPOSITORY
                                                          : PRM_MATCH_REPO_DIGEST_OR_EXACT;
      return only_keys (j, "signedIdentity", just_type, error);
    }
  if (strcmp (type, "exactReference") == 0 || strcmp (type, "exactRepository") == 0)
    {
      gboolean repo = strcmp (type, "exactRepository") == 0;
      const char *key = repo ? "dockerRepository" : "dockerReference";
      const char *allowed[] = { "type", key, NULL };
      const char *value = NULL;
      if (!only_keys (j, "signedIdentity", allowed, error) || !get_string (j, key, type, TRUE, &value, error))
        return FALSE;
      g_autoptr (GError) local = NULL;
      g_autoptr (SysctrRef) r = sysctr_docker_ref_parse_named (value, &local);
      if (r == NULL)
        return bad (error, "%s: invalid %s \"%s\": %s", type, key, value, local->message);
      if (!repo && r->tag == NULL && r->digest == NULL)
        return bad (error, "%s: dockerReference \"%s\" names a repository, not an image (no tag or digest)", type,
                    value);
      out->type = repo ? PRM_EXACT_REPOSITORY : PRM_EXACT_REFERENCE;
      out->reference = g_strdup (value);
      return TRUE;
    }
  if (strcmp (type, "remapIdentity") == 0)
    {
      static const char *const allowed[] = { "type", "prefix", "signedPrefix", NULL };
      const char *prefix = NULL, *signed_prefix = NULL;
      if (!only_keys (j, "signedIdentity", allowed, error) || !get_string (j, "prefix", type, TRUE, &prefix, error)
          || !get_string (j, "signedPrefix", type, TRUE, &signed_prefix, error))
        return FALSE;
      if (!prefix_valid (prefix))
        return bad (error, "remapIdentity: invalid prefix \"%s\"", prefix);
      if (!prefix_valid (signed_prefix))
        return bad (error, "remapIdentity: invalid signedPrefix \"%s\"", signed_prefix);
      out->type = PRM_REMAP_IDENTITY;
      out->prefix = g_strdup (prefix);
      out->signed_prefix = g_strdup (signed_prefix);
      return TRUE;
    }
  g_autofree char *t = sysctr_printable (type);
  return bad (error, "unknown signedIdentity type \"%s\"", t);
}

/* keyPath / keyPaths / keyData / keyDatas: exactly one of those @allowed. */
static gboolean
parse_key_sources (json_t *j, const char *what, gboolean datas_allowed, Requirement *r, guint *out_count,
                   GError **error)
{
  guint n = 0;
  const char *path = NULL, *data = NULL;
  if (!get_string (j, "keyPath", what, FALSE, &path, error) || !get_string (j, "keyData", what, FALSE, &data, error))
    return FALSE;
  json_t *paths = json_object_get (j, "keyPaths");
  json_t *datas = datas_allowed ? json_object_get (j, "keyDatas") : NULL;
  r->key_paths = g_ptr_array_new_with_free_func (g_free);
  r->key_datas = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  if (path)
    {
      n++;
      g_ptr_array_add (r->key_paths, g_strdup (path));
    }
  if (paths)
    {
      n++;
      size_t i;
      json_t *p;
      if (!json_is_array (paths) || json_array_size (paths) == 0)
        return bad (error, "%s: \"keyPaths\" must be a non-empty list of paths", what);
      json_array_foreach (paths, i, p)
        {
          if (!json_is_string (p))
            return bad (error, "%s: \"keyPaths\" must be a list of strings", what);
          g_ptr_array_add (r->key_paths, g_strdup (json_string_value (p)));
        }
    }
  if (data)
    {
      n++;
      g_autoptr (GError) local = NULL;
      GBytes *b = base64_decode_strict (data, &local);
      if (b == NULL)
        return bad (error, "%s: \"keyData\": %s", what, local->message);
      g_ptr_array_add (r->key_datas, b);
    }
  if (datas)
    {
      n++;
      size_t i;
      json_t *d;
      if (!json_is_array (datas) || json_array_size (datas) == 0)
        return bad (error, "%s: \"keyDatas\" must be a non-empty list", what);
      json_array_foreach (datas, i, d)
        {
          g_autoptr (GError) local = NULL;
          GBytes *b = json_is_string (d) ? base64_decode_strict (json_string_value (d), &local) : NULL;
          if (b == NULL)
            return bad (error, "%s: \"keyDatas\" entry %zu: %s", what, i + 1, local ? local->message : "not a string");
          g_ptr_array_add (r->key_datas, b);
        }
    }
  *out_count = n;
  return TRUE;
}

static Requirement *
parse_requirement (json_t *j, GError **error)
{
  if (!json_is_object (j))
    {
      bad (error, "a policy requirement is not an object");
      return NULL;
    }
  const char *type = NULL;
  if (!get_string (j, "type", "policy requirement", TRUE, &type, error))
    return NULL;
  g_autoptr (GPtrArray) holder = g_ptr_array_new_with_free_func ((GDestroyNotify) requirement_free);
  Requirement *r = g_new0 (Requirement, 1);
  g_ptr_array_add (holder, r);
  r->identity.type = PRM_MATCH_REPO_DIGEST_OR_EXACT;
  static const char *const just_type[] = { "type", NULL };
  if (strcmp (type, "insecureAcceptAnything") == 0 || strcmp (type, "reject") == 0)
    {
      r->type = strcmp (type, "reject") == 0 ? PR_REJECT : PR_ACCEPT;
      if (!only_keys (j, type, just_type, error))
        return NULL;
    }
  else if (strcmp (type, "signedBy") == 0)
    {
      static const char *const allowed[]
          = { "type", "keyType", "keyPath", "keyPaths", "keyData", "signedIdentity", NULL };
      static const char *const key_types[]
          = { "GPGKeys", "signedByGPGKeys", "X509Certificates", "signedByX509CAs", NULL };
      const char *key_type = NULL;
      guint n = 0;
      r->type = PR_SIGNED_BY;
      if (!only_keys (j, type, allowed, error) || !get_string (j, "keyType", type, TRUE, &key_type, error))
        return NULL;
      if (!g_strv_contains (key_types, key_type))
        {
          g_autofree char *kt = sysctr_printable (key_type);
          bad (error, "signedBy: unknown keyType \"%s\"", kt);
          return NULL;
        }
      r->key_type = g_strdup (key_type);
      if (!parse_key_sources (j, type, FALSE, r, &n, error))
        return NULL;
      if (n != 1)
        {
          bad (error, "signedBy: exactly one of \"keyPath\", \"keyPaths\" and \"keyData\" must be given");
          return NULL;
        }
    }
  else if (strcmp (type, "sigstoreSigned") == 0)
    {
      static const char *const allowed[] = { "type",
                                             "keyPath",
                                             "keyPaths",
                                             "keyData",
                                             "keyDatas",
                                             "fulcio",
                                             "pki",
                                             "rekorPublicKeyPath",
                                             "rekorPublicKeyPaths",
                                             "rekorPublicKeyData",
                                             "rekorPublicKeyDatas",
                                             "signedIdentity",
                                             NULL };
      guint n = 0;
      r->type = PR_SIGSTORE;
      if (!only_keys (j, type, allowed, error) || !parse_key_sources (j, type, TRUE, r, &n, error))
        return NULL;
      if (json_object_get (j, "fulcio"))
        n++, r->unsupported = "Fulcio certificates";
      if (json_object_get (j, "pki"))
        n++, r->unsupported = "X.509 PKI certificates";
      if (n != 1)
        {
          bad (error, "sigstoreSigned: exactly one of a public key (keyPath, keyPaths, keyData, keyDatas), "
                      "\"fulcio\" and \"pki\" must be given");
          return NULL;
        }
      static const char *const rekor[]
          = { "rekorPublicKeyPath", "rekorPublicKeyPaths", "rekorPublicKeyData", "rekorPublicKeyDatas", NULL };
      for (const char *const *k = rekor; *k; k++)
        if (json_object_get (j, *k))
          r->unsupported = r->unsupported ? r->unsupported : "Rekor signed entry timestamps";
      guint rekor_sources = 0;
      for (const char *const *k = rekor; *k; k++)
        rekor_sources += json_object_get (j, *k) != NULL;
      if (rekor_sources > 1)
        {
          bad (error, "sigstoreSigned: more than one Rekor public key source");
          return NULL;
        }
      if (rekor_sources && json_object_get (j, "pki"))
        {
          bad (error, "sigstoreSigned: \"pki\" cannot be used with a Rekor public key");
          return NULL;
        }
      if (json_object_get (j, "fulcio") && r->unsupported && strcmp (r->unsupported, "Fulcio certificates") == 0)
        {
          gboolean any_rekor = FALSE;
          for (const char *const *k = rekor; *k; k++)
            any_rekor = any_rekor || json_object_get (j, *k) != NULL;
          if (!any_rekor)
            {
              bad (error, "sigstoreSigned: \"fulcio\" requires a Rekor public key");
              return NULL;
            }
        }
    }
  else if (strcmp (type, "signedBaseLayer") == 0)
    {
      static const char *const allowed[] = { "type", "baseLayerIdentity", NULL };
      r->type = PR_SIGNED_BASE_LAYER;
      if (!only_keys (j, type, allowed, error))
        return NULL;
      json_t *bli = json_object_get (j, "baseLayerIdentity");
      if (bli == NULL)
        {
          bad (error, "signedBaseLayer: \"baseLayerIdentity\" is missing");
          return NULL;
        }
      if (!parse_prm (bli, type, &r->identity, error))
        return NULL;
      return g_ptr_array_steal_index (holder, 0);
    }
  else
    {
      g_autofree char *t = sysctr_printable (type);
      bad (error, "unknown policy requirement type \"%s\"", t);
      return NULL;
    }
  json_t *si = json_object_get (j, "signedIdentity");
  if (si && !parse_prm (si, type, &r->identity, error))
    return NULL;
  return g_ptr_array_steal_index (holder, 0);
}

static GPtrArray *
parse_requirements (json_t *j, const char *what, GError **error)
{
  if (!json_is_array (j))
    {
      bad (error, "%s: not a list of requirements", what);
      return NULL;
    }
  if (json_array_size (j) == 0)
    {
      bad (error, "%s: the list of requirements must not be empty", what);
      return NULL;
    }
  g_autoptr (GPtrArray) reqs = g_ptr_array_new_with_free_func ((GDestroyNotify) requirement_free);
  size_t i;
  json_t *r;
  json_array_foreach (j, i, r)
    {
      Requirement *req = parse_requirement (r, error);
      if (req == NULL)
        return NULL;
      g_ptr_array_add (reqs, req);
    }
  return g_steal_pointer (&reqs);
}

/* As each transport of containers/image validates its scopes. */
static gboolean
scope_valid (const char *transport, const char *scope, GError **error)
{
  if (*scope == '\0')
    return TRUE;
  if (strcmp (transport, "oci") == 0 || strcmp (transport, "oci-archive") == 0)
    {
      g_autofree char *clean = g_canonicalize_filename (scope, "/");
      if (scope[0] != '/')
        return bad (error, "transport %s: scope \"%s\" is not an absolute path", transport, scope);
      if (strcmp (scope, "/") == 0)
        return bad (error, "transport %s: scope \"/\": use the default scope \"\" instead", transport);
      if (strcmp (clean, scope) != 0)
        return bad (error, "transport %s: scope \"%s\" is not a clean path (%s)", transport, scope, clean);
    }
  else if (strcmp (transport, "docker-archive") == 0)
    return bad (error, "transport docker-archive supports no scope but \"\" (got \"%s\")", scope);
  return TRUE;
}

SysctrPolicy *
sysctr_policy_parse (const char *data, gsize len, const char *path, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (SysctrPolicy) policy = g_new0 (SysctrPolicy, 1);
  policy->path = g_strdup (path);
  policy->transports = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_hash_table_unref);
  g_autoptr (json_t) j = sysctr_json_parse (data, len, "policy", &local);
  static const char *const top[] = { "default", "transports", NULL };
  if (j == NULL)
    goto out;
  if (!json_is_object (j))
    {
      bad (&local, "not a JSON object");
      goto out;
    }
  if (!only_keys (j, "policy", top, &local))
    goto out;
  json_t *def = json_object_get (j, "default");
  if (def == NULL)
    {
      bad (&local, "the default policy is missing");
      goto out;
    }
  policy->default_reqs = parse_requirements (def, "default", &local);
  if (policy->default_reqs == NULL)
    goto out;
  json_t *transports = json_object_get (j, "transports");
  if (transports && !json_is_object (transports))
    {
      bad (&local, "\"transports\" is not an object");
      goto out;
    }
  const char *tname;
  json_t *scopes;
  json_object_foreach (transports, tname, scopes)
    {
      if (!json_is_object (scopes))
        {
          g_autofree char *t = sysctr_printable (tname);
          bad (&local, "transport %s: not an object of scopes", t);
          goto out;
        }
      gboolean known = FALSE;
      for (guint i = 0; i < G_N_ELEMENTS (known_transports); i++)
        known = known || strcmp (known_transports[i], tname) == 0;
      GHashTable *h = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_ptr_array_unref);
      g_hash_table_insert (policy->transports, g_strdup (tname), h);
      const char *scope;
      json_t *reqs;
      json_object_foreach (scopes, scope, reqs)
        {
          g_autofree char *what = g_strdup_printf ("transport %s, scope \"%s\"", tname, scope);
          g_autofree char *what_p = sysctr_printable (what);
          if (known && !scope_valid (tname, scope, &local))
            goto out;
          GPtrArray *r = parse_requirements (reqs, what_p, &local);
          if (r == NULL)
            goto out;
          g_hash_table_insert (h, g_strdup (scope), r);
        }
    }
  return g_steal_pointer (&policy);
out:
  {
    g_autofree char *msg = sysctr_printable (local->message);
    g_autofree char *p = sysctr_printable (path);
    sysctr_throw (error, SYSCTR_ERROR_INVALID, "invalid policy in \"%s\": %s", p, msg);
    return NULL;
  }
}

gboolean
sysctr_policy_load (const char *path, SysctrPolicy **out_policy, GError **error)
{
  const char *p = path;
  *out_policy = NULL;
  if (p == NULL)
    {
      p = g_getenv ("SYSCTR_POLICY_PATH");
      if (p == NULL || *p == '\0')
        p = SYSCTR_POLICY_PATH;
      /* absent: no policy; anything else there (a dangling symlink, a
       * directory) must read as a policy or refuse */
      struct stat st;
      if (lstat (p, &st) != 0 && errno == ENOENT)
        return TRUE;
    }
  g_autofree char *data = NULL;
  gsize len = 0;
  g_autoptr (GError) local = NULL;
  if (!sysctr_read_file_at (AT_FDCWD, p, 4 * 1024 * 1024, &data, &len, &local))
    {
      g_autofree char *msg = sysctr_printable (local->message);
      return sysctr_throw (error, SYSCTR_ERROR_INVALID, "invalid policy in \"%s\": %s", p, msg);
    }
  *out_policy = sysctr_policy_parse (data, len, p, error);
  return *out_policy != NULL;
}

/* ------------------------------------------------------------- scopes --- */

static char *
ref_name (const SysctrRef *ref)
{
  return g_strdup_printf ("%s/%s", ref->domain, ref->path);
}

static char *
ref_full (const SysctrRef *ref)
{
  return g_strdup_printf ("%s/%s%s%s%s%s", ref->domain, ref->path, ref->tag ? ":" : "", ref->tag ? ref->tag : "",
                          ref->digest ? "@" : "", ref->digest ? ref->digest : "");
}

/* What containers/image calls PolicyConfigurationIdentity and
 * PolicyConfigurationNamespaces, most specific first. */
static GPtrArray *
scope_candidates (const SysctrRef *ref, const char **out_transport)
{
  GPtrArray *c = g_ptr_array_new_with_free_func (g_free);
  switch (ref->transport)
    {
    case SYSCTR_TRANSPORT_DOCKER:
      {
        *out_transport = "docker";
        g_ptr_array_unref (c);
        c = sysctr_ref_docker_scopes (ref);
        break;
      }
    case SYSCTR_TRANSPORT_OCI:
    case SYSCTR_TRANSPORT_OCI_ARCHIVE:
      {
        *out_transport = ref->transport == SYSCTR_TRANSPORT_OCI ? "oci" : "oci-archive";
        char *real = realpath (ref->file, NULL);
        g_autofree char *path = g_strdup (real ? real : ref->file);
        free (real);
        g_ptr_array_add (c, g_strdup (path));
        while (strcmp (path, "/") != 0 && strrchr (path, '/') != NULL)
          {
            g_ptr_array_add (c, g_strdup (path));
            char *slash = strrchr (path, '/');
            if (slash == path)
              break;
            *slash = '\0';
          }
        break;
      }
    case SYSCTR_TRANSPORT_DOCKER_ARCHIVE:
      *out_transport = "docker-archive";
      break;
    }
  return c;
}

static GPtrArray *
requirements_for (const SysctrPolicy *policy, const SysctrRef *ref, const char **out_transport, const char **out_scope)
{
  const char *transport = NULL;
  g_autoptr (GPtrArray) cands = scope_candidates (ref, &transport);
  *out_transport = transport;
  GHashTable *scopes = g_hash_table_lookup (policy->transports, transport);
  if (scopes)
    {
      for (guint i = 0; i < cands->len; i++)
        {
          gpointer key, value;
          if (g_hash_table_lookup_extended (scopes, cands->pdata[i], &key, &value))
            {
              *out_scope = key;
              return value;
            }
        }
      gpointer key, value;
      if (g_hash_table_lookup_extended (scopes, "", &key, &value))
        {
          *out_scope = key;
          return value;
        }
    }
  *out_scope = NULL;
  return policy->default_reqs;
}

const char *
sysctr_policy_scope_for (const SysctrPolicy *policy, const SysctrRef *ref, const char **out_transport)
{
  const char *scope = NULL;
  (void) requirements_for (policy, ref, out_transport, &scope);
  return scope;
}

/* ----------------------------------------------------------- identity --- */

/* matchRepoDigestOrExact on parsed references. */
static gboolean
repo_digest_or_exact (const SysctrRef *intended, const SysctrRef *sig)
{
  if (sig->tag == NULL && sig->digest == NULL)
    return FALSE;
  g_autofree char *i_full = ref_full (intended), *s_full = ref_full (sig);
  g_autofree char *i_name = ref_name (intended), *s_name = ref_name (sig);
  if (intended->tag)
    return strcmp (i_full, s_full) == 0;
  if (intended->digest)
    return strcmp (i_name, s_name) == 0;
  return FALSE;
}

static gboolean
prefix_matches (const char *name, const char *prefix)
{
  gsize n = strlen (name), p = strlen (prefix);
  if (n < p)
    return FALSE;
  if (n == p)
    return strcmp (name, prefix) == 0;
  return strncmp (name, prefix, p) == 0 && name[p] == '/';
}

/* Does the signature's claimed @identity satisfy @prm for the image
 * @intended? */
static gboolean
identity_matches (const Prm *prm, const SysctrRef *intended, const char *identity)
{
  g_autoptr (SysctrRef) sig = sysctr_docker_ref_parse_named (identity, NULL);
  if (sig == NULL)
    return FALSE;
  g_autofree char *s_full = ref_full (sig), *s_name = ref_name (sig);
  gboolean sig_name_only = sig->tag == NULL && sig->digest == NULL;
  switch (prm->type)
    {
    case PRM_MATCH_EXACT:
      {
        g_autofree char *i_full = ref_full (intended);
        return !sig_name_only && strcmp (i_full, s_full) == 0;
      }
    case PRM_MATCH_REPO_DIGEST_OR_EXACT:
      return repo_digest_or_exact (intended, sig);
    case PRM_MATCH_REPOSITORY:
      {
        g_autofree char *i_name = ref_name (intended);
        return strcmp (i_name, s_name) == 0;
      }
    case PRM_EXACT_REFERENCE:
    case PRM_EXACT_REPOSITORY:
      {
        g_autoptr (SysctrRef) want = sysctr_docker_ref_parse_named (prm->reference, NULL);
        if (want == NULL)
          return FALSE;
        g_autofree char *w_full = ref_full (want), *w_name = ref_name (want);
        if (prm->type == PRM_EXACT_REPOSITORY)
          return strcmp (w_name, s_name) == 0;
        return !sig_name_only && strcmp (w_full, s_full) == 0;
      }
    case PRM_REMAP_IDENTITY:
      {
        g_autofree char *i_name = ref_name (intended);
        if (!prefix_matches (i_name, prm->prefix))
          return repo_digest_or_exact (intended, sig);
        g_autofree char *i_full = ref_full (intended);
        g_autofree char *remapped = g_strconcat (prm->signed_prefix, i_full + strlen (prm->prefix), NULL);
        /* containers/image parses the result without normalising it: a
         * name that is not already canonical does not match */
        g_autoptr (SysctrRef) r = sysctr_docker_ref_parse_named (remapped, NULL);
        g_autofree char *r_full = r ? ref_full (r) : NULL;
        return r != NULL && strcmp (r_full, remapped) == 0 && repo_digest_or_exact (r, sig);
      }
    }
  return FALSE;
}

gboolean
sysctr_policy_identity_test (const char *prm_json, const char *image_ref, const char *identity, GError **error)
{
  g_autoptr (json_t) j = sysctr_json_parse (prm_json, strlen (prm_json), "signedIdentity", error);
  g_autoptr (SysctrRef) ref = j ? sysctr_ref_parse (image_ref, error) : NULL;
  Prm prm = { 0 };
  if (ref == NULL || !parse_prm (j, "test", &prm, error))
    return FALSE;
  gboolean ok = identity_matches (&prm, ref, identity);
  g_free (prm.reference);
  g_free (prm.prefix);
  g_free (prm.signed_prefix);
  return ok;
}

/* --------------------------------------------------------- evaluation --- */

typedef struct
{
  SysctrSigFetchFunc fetch;
  gpointer data;
  GPtrArray *sigs;
} Sigs;

static gboolean
sigs_get (Sigs *s, GError **error)
{
  if (s->sigs)
    return TRUE;
  if (s->fetch == NULL)
    {
      s->sigs = g_ptr_array_new ();
      return TRUE;
    }
  return s->fetch (s->data, &s->sigs, error);
}

static gboolean
load_keys (const Requirement *r, GPtrArray **out, GError **error)
{
  g_autoptr (GPtrArray) keys = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  for (guint i = 0; i < r->key_paths->len; i++)
    {
      const char *p = r->key_paths->pdata[i];
      char *data = NULL;
      gsize len = 0;
      if (!sysctr_read_file_at (AT_FDCWD, p, 1024 * 1024, &data, &len, error))
        return FALSE;
      g_ptr_array_add (keys, g_bytes_new_take (data, len));
    }
  for (guint i = 0; i < r->key_datas->len; i++)
    g_ptr_array_add (keys, g_bytes_ref (r->key_datas->pdata[i]));
  *out = g_steal_pointer (&keys);
  return TRUE;
}

/* The payload's digest and identity against the image. */
static gboolean
payload_accepted (const Requirement *r, const SysctrRef *ref, const char *manifest_digest, const char *payload,
                  gsize len, const char *type, char **out_identity, GError **error)
{
  g_autofree char *digest = NULL, *identity = NULL;
  if (!sysctr_signature_payload_parse (payload, len, type, &digest, &identity, error))
    return FALSE;
  if (strcmp (digest, manifest_digest) != 0)
    return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "Signature for digest %s does not match", digest);
  if (!identity_matches (&r->identity, ref, identity))
    return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "Signature for identity \"%s\" is not accepted", identity);
  *out_identity = g_steal_pointer (&identity);
  return TRUE;
}

/* One signature against one requirement; TRUE with *out_entry when it
 * verified; FALSE with the reason. */
static gboolean
signature_accepted (const Requirement *r, const SysctrRef *ref, const char *manifest_digest, const SysctrSignature *sig,
                    GPtrArray *keys, json_t **out_entry, GError **error)
{
  g_autofree char *key_id = NULL, *identity = NULL;
  if (r->type == PR_SIGNED_BY)
    {
      g_autoptr (GBytes) payload = NULL;
      if (!sysctr_gpg_verify (keys, sig->blob, &payload, &key_id, error))
        return FALSE;
      gsize len;
      const char *p = g_bytes_get_data (payload, &len);
      if (!payload_accepted (r, ref, manifest_digest, p, len, "atomic container signature", &identity, error))
        return FALSE;
      *out_entry = json_pack ("{s:s, s:s, s:s, s:s}", "type", "signedBy", "key", key_id, "identity", identity,
                              "signature", sig->origin);
      return TRUE;
    }
  if (r->unsupported)
    return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "sysctr does not verify %s (only public keys)", r->unsupported);
  if (sig->signature == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "missing dev.cosignproject.cosign/signature annotation");
  if (!sysctr_sigstore_verify (keys, sig->blob, sig->signature, &key_id, error))
    return FALSE;
  gsize len;
  const char *p = g_bytes_get_data (sig->blob, &len);
  if (!payload_accepted (r, ref, manifest_digest, p, len, "cosign container image signature", &identity, error))
    return FALSE;
  *out_entry = json_pack ("{s:s, s:s, s:s, s:s}", "type", "sigstoreSigned", "key", key_id, "identity", identity,
                          "signature", sig->origin);
  return TRUE;
}

static gboolean
requirement_check (const Requirement *r, const SysctrRef *ref, const char *shown, const char *manifest_digest,
                   Sigs *sigs, json_t **out_entry, GError **error)
{
  switch (r->type)
    {
    case PR_ACCEPT:
      *out_entry = json_pack ("{s:s}", "type", "insecureAcceptAnything");
      return TRUE;
    case PR_REJECT:
      return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "Running image %s is rejected by policy.", shown);
    case PR_SIGNED_BASE_LAYER:
      /* containers/image defines no check for it either: it always refuses */
      return sysctr_throw (error, SYSCTR_ERROR_REJECTED,
                           "signedBaseLayer requirements are refused (no verification is defined for them)");
    case PR_SIGNED_BY:
    case PR_SIGSTORE:
      break;
    }
  if (r->type == PR_SIGNED_BY && strcmp (r->key_type, "GPGKeys") != 0)
    return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "Unimplemented \"keyType\" value \"%s\"", r->key_type);
  if (ref->transport != SYSCTR_TRANSPORT_DOCKER)
    return sysctr_throw (error, SYSCTR_ERROR_REJECTED,
                         "A signature was required, but no signature exists (%s images carry no signatures)",
                         ref->transport == SYSCTR_TRANSPORT_DOCKER_ARCHIVE ? "docker-archive" : "OCI layout");
  if (!sigs_get (sigs, error))
    return FALSE;
  g_autoptr (GPtrArray) keys = NULL;
  g_autoptr (GPtrArray) reasons = g_ptr_array_new_with_free_func (g_free);
  guint other_kind = 0, not_signatures = 0;
  for (guint i = 0; i < sigs->sigs->len; i++)
    {
      const SysctrSignature *sig = sigs->sigs->pdata[i];
      if ((r->type == PR_SIGNED_BY) != (sig->kind == SYSCTR_SIG_SIMPLE))
        {
          other_kind++;
          continue;
        }
      if (sig->kind == SYSCTR_SIG_SIGSTORE
          && g_strcmp0 (sig->mime_type, "application/vnd.dev.cosign.simplesigning.v1+json") != 0)
        {
          not_signatures++;
          continue;
        }
      if (keys == NULL)
        {
          g_autoptr (GError) kerr = NULL;
          if (!load_keys (r, &keys, &kerr))
            return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "%s", kerr->message);
        }
      g_autoptr (GError) local = NULL;
      if (signature_accepted (r, ref, manifest_digest, sig, keys, out_entry, &local))
        return TRUE;
      g_ptr_array_add (reasons, g_strdup (local->message));
    }
  if (reasons->len == 0)
    {
      if (r->type == PR_SIGNED_BY || (other_kind == 0 && not_signatures == 0))
        return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "A signature was required, but no signature exists");
      return sysctr_throw (error, SYSCTR_ERROR_REJECTED,
                           "A signature was required, but no signature exists (%u non-sigstore signatures, %u "
                           "sigstore non-signature attachments)",
                           other_kind, not_signatures);
    }
  if (reasons->len == 1)
    return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "%s", (char *) reasons->pdata[0]);
  g_ptr_array_add (reasons, NULL);
  g_autofree char *all = g_strjoinv ("; ", (char **) reasons->pdata);
  return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "None of the signatures were accepted, reasons: %s", all);
}

gboolean
sysctr_policy_check (const SysctrPolicy *policy, const SysctrRef *ref, const char *manifest_digest,
                     SysctrSigFetchFunc fetch, gpointer fetch_data, json_t **out_record, GError **error)
{
  g_autoptr (json_t) record = json_object ();
  if (policy == NULL)
    {
      json_object_set_new (record, "policy", json_null ());
      *out_record = g_steal_pointer (&record);
      return TRUE;
    }
  const char *transport = NULL, *scope = NULL;
  GPtrArray *reqs = requirements_for (policy, ref, &transport, &scope);
  json_object_set_new (record, "policy", json_string (policy->path));
  json_object_set_new (record, "transport", json_string (transport));
  json_object_set_new (record, "scope", scope ? json_string (scope) : json_null ());
  json_t *verified = json_array ();
  json_object_set_new (record, "requirements", verified);

  /* NAME:TAG@DIGEST is pulled by digest, and judged as NAME@DIGEST (as
   * podman strips the tag before containers/image sees it) */
  g_autoptr (SysctrRef) by_digest = NULL;
  if (ref->transport == SYSCTR_TRANSPORT_DOCKER && ref->tag && ref->digest)
    {
      by_digest = g_new0 (SysctrRef, 1);
      by_digest->transport = ref->transport;
      by_digest->domain = g_strdup (ref->domain);
      by_digest->path = g_strdup (ref->path);
      by_digest->digest = g_strdup (ref->digest);
      ref = by_digest;
    }
  g_autofree char *canonical = sysctr_ref_to_string (ref);
  g_autofree char *shown
      = ref->transport == SYSCTR_TRANSPORT_DOCKER ? g_strconcat ("docker://", canonical, NULL) : g_strdup (canonical);
  Sigs sigs = { .fetch = fetch, .data = fetch_data };
  gboolean ok = TRUE;
  g_autoptr (GError) local = NULL;
  for (guint i = 0; ok && i < reqs->len; i++)
    {
      json_t *entry = NULL;
      ok = requirement_check (reqs->pdata[i], ref, shown, manifest_digest, &sigs, &entry, &local);
      if (ok)
        json_array_append_new (verified, entry);
    }
  g_clear_pointer (&sigs.sigs, g_ptr_array_unref);
  if (!ok)
    {
      /* as containers/image: whatever stopped the check (a signature that
       * could not be read, too) rejects the image */
      g_autofree char *msg = sysctr_printable (local->message);
      return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "Source image rejected: %s", msg);
    }
  *out_record = g_steal_pointer (&record);
  return TRUE;
}

char *
sysctr_policy_record_summary (json_t *record)
{
  if (!json_is_object (record))
    return g_strdup ("not recorded (pulled before sysctr checked signatures)");
  const char *policy = sysctr_json_get_string (record, "policy");
  if (policy == NULL)
    return g_strdup_printf ("accepted without a policy (%s does not exist)", SYSCTR_POLICY_PATH);
  const char *scope = sysctr_json_get_string (record, "scope");
  const char *transport = sysctr_json_get_string (record, "transport");
  g_autofree char *where = scope ? g_strdup_printf ("%s scope \"%s\"", transport ? transport : "?", scope)
                                 : g_strdup ("the default scope");
  GString *s = g_string_new (NULL);
  size_t i;
  json_t *e;
  json_array_foreach (json_object_get (record, "requirements"), i, e)
    {
      const char *type = sysctr_json_get_string (e, "type");
      if (s->len)
        g_string_append (s, "; ");
      if (g_strcmp0 (type, "insecureAcceptAnything") == 0)
        g_string_append (s, "accepted unsigned (insecureAcceptAnything)");
      else
        g_string_append_printf (s, "signed by %s key %s as %s", g_strcmp0 (type, "signedBy") == 0 ? "GPG" : "sigstore",
                                sysctr_json_get_string (e, "key"), sysctr_json_get_string (e, "identity"));
    }
  g_string_append_printf (s, ", by %s of %s", where, policy);
  return g_string_free (s, FALSE);
}
