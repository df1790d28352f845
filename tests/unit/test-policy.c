/* containers-policy.json: parsing (strict, one line per problem), scope
 * selection, signedIdentity matchers, the signed payload, and sigstore
 * verification with keys and signatures made here with OpenSSL (GPG and
 * skopeo-made signatures: tests/integration/test-signatures.sh). */
#include "config.h"

#include "policy.h"
#include "signature.h"
#include "sysctr-util.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <string.h>

#define D1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define D2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static SysctrPolicy *
parse_ok (const char *json)
{
  g_autoptr (GError) error = NULL;
  SysctrPolicy *p = sysctr_policy_parse (json, strlen (json), "/etc/containers/policy.json", &error);
  g_assert_no_error (error);
  return p;
}

static void
parse_bad (const char *json, const char *part)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (SysctrPolicy) p = sysctr_policy_parse (json, strlen (json), "/p.json", &error);
  g_assert_null (p);
  g_assert_nonnull (error);
  if (strstr (error->message, part) == NULL)
    g_error ("\"%s\" not in \"%s\"", part, error->message);
  g_assert_true (g_str_has_prefix (error->message, "invalid policy in \"/p.json\": "));
  g_assert_null (strchr (error->message, '\n'));
}

static void
test_parse (void)
{
  g_autoptr (SysctrPolicy) debian = parse_ok ("{\"default\":[{\"type\":\"insecureAcceptAnything\"}],\"transports\":"
                                              "{\"docker-daemon\":{\"\":[{\"type\":\"insecureAcceptAnything\"}]}}}");
  g_autoptr (SysctrPolicy) full = parse_ok (
      "{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{"
      "\"r.io/a\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPaths\":[\"/k1\",\"/k2\"],"
      "\"signedIdentity\":{\"type\":\"remapIdentity\",\"prefix\":\"r.io/a\",\"signedPrefix\":\"q.io/b\"}}],"
      "\"r.io/"
      "b\":[{\"type\":\"sigstoreSigned\",\"keyData\":\"QUJD\",\"signedIdentity\":{\"type\":\"matchRepository\"}}],"
      "\"*.example.com\":[{\"type\":\"sigstoreSigned\",\"keyDatas\":[\"QUJD\"]}]},"
      "\"oci\":{\"/srv/images\":[{\"type\":\"insecureAcceptAnything\"}]},"
      "\"some-future-transport\":{\"anything\":[{\"type\":\"reject\"}]}}}");

  parse_bad ("", "invalid JSON");
  parse_bad ("[]", "not a JSON object");
  parse_bad ("{}", "the default policy is missing");
  parse_bad ("{\"default\":[]}", "must not be empty");
  parse_bad ("{\"default\":[{\"type\":\"reject\"}],\"extra\":1}", "unknown key \"extra\"");
  parse_bad ("{\"default\":[{\"type\":\"reject\"}],\"default\":[{\"type\":\"reject\"}]}", "duplicate");
  parse_bad ("{\"default\":[{\"type\":\"acceptEverything\"}]}", "unknown policy requirement type \"acceptEverything\"");
  parse_bad ("{\"default\":[{\"type\":\"reject\",\"keyPath\":\"/k\"}]}", "unknown key \"keyPath\"");
  parse_bad ("{\"default\":[{\"type\":\"signedBy\",\"keyPath\":\"/k\"}]}", "\"keyType\" is missing");
  parse_bad ("{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"PGP\",\"keyPath\":\"/k\"}]}", "unknown keyType");
  parse_bad ("{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\"}]}", "exactly one of");
  parse_bad ("{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k\",\"keyData\":\"QUJD\"}]}",
             "exactly one of");
  parse_bad ("{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyData\":\"not base64!\"}]}",
             "not valid base64");
  /* a relative key path is read as given (containers/image does) */
  g_autoptr (SysctrPolicy) relative
      = parse_ok ("{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"key.gpg\"}]}");
  /* remapIdentity prefixes: a registry (with a port), or a name under one */
  g_autoptr (SysctrPolicy) port = parse_ok ("{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":"
                                            "\"/k\",\"signedIdentity\":{\"type\":\"remapIdentity\",\"prefix\":"
                                            "\"mirror.internal:5000\",\"signedPrefix\":\"docker.io\"}}]}");
  parse_bad ("{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k\",\"signedIdentity\":"
             "{\"type\":\"remapIdentity\",\"prefix\":\"*.example.com\",\"signedPrefix\":\"q.io\"}}]}",
             "invalid prefix");
  parse_bad ("{\"default\":[{\"type\":\"sigstoreSigned\",\"pki\":{},\"rekorPublicKeyPath\":\"/r\"}]}",
             "cannot be used with a Rekor");
  /* base64 with line breaks, as Go reads it */
  g_autoptr (SysctrPolicy) wrapped
      = parse_ok ("{\"default\":[{\"type\":\"sigstoreSigned\",\"keyData\":\"QUJD\\nREVG\"}]}");
  parse_bad ("{\"default\":[{\"type\":\"sigstoreSigned\"}]}", "exactly one of a public key");
  parse_bad ("{\"default\":[{\"type\":\"sigstoreSigned\",\"fulcio\":{}}]}", "requires a Rekor public key");
  parse_bad ("{\"default\":[{\"type\":\"sigstoreSigned\",\"keyPath\":\"/k\",\"signedIdentity\":{\"type\":\"x\"}}]}",
             "unknown signedIdentity type");
  parse_bad ("{\"default\":[{\"type\":\"sigstoreSigned\",\"keyPath\":\"/k\",\"signedIdentity\":"
             "{\"type\":\"exactReference\",\"dockerReference\":\"r.io/a\"}}]}",
             "names a repository");
  parse_bad (
      "{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker-archive\":{\"/x\":[{\"type\":\"reject\"}]}}}",
      "supports no scope");
  parse_bad ("{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"oci\":{\"rel/dir\":[{\"type\":\"reject\"}]}}}",
             "not an absolute path");
  parse_bad ("{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"oci\":{\"/a/../b\":[{\"type\":\"reject\"}]}}}",
             "not a clean path");
  parse_bad ("{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{\"r.io\":[]}}}", "must not be empty");
  /* control characters from the file are not printed raw */
  parse_bad ("{\"default\":[{\"type\":\"x\\u001b[2J\"}]}", "unknown policy requirement type");
}

static void
check_scope (const SysctrPolicy *p, const char *ref_str, const char *want_transport, const char *want_scope)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (SysctrRef) ref = sysctr_ref_parse (ref_str, &error);
  g_assert_no_error (error);
  const char *transport = NULL;
  const char *scope = sysctr_policy_scope_for (p, ref, &transport);
  g_assert_cmpstr (transport, ==, want_transport);
  g_assert_cmpstr (scope, ==, want_scope);
}

static void
test_scopes (void)
{
  g_autoptr (SysctrPolicy) p = parse_ok ("{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{"
                                         "\"r.example.com:5000/ns/app:v1\":[{\"type\":\"reject\"}],"
                                         "\"r.example.com:5000/ns/app\":[{\"type\":\"reject\"}],"
                                         "\"r.example.com:5000/ns\":[{\"type\":\"reject\"}],"
                                         "\"r.example.com:5000\":[{\"type\":\"reject\"}],"
                                         "\"*.example.com\":[{\"type\":\"reject\"}],"
                                         "\"*.com\":[{\"type\":\"reject\"}],"
                                         "\"docker.io/library/busybox\":[{\"type\":\"reject\"}],"
                                         "\"\":[{\"type\":\"reject\"}]},"
                                         "\"oci\":{\"/srv/images\":[{\"type\":\"reject\"}]}}}");
  check_scope (p, "r.example.com:5000/ns/app:v1", "docker", "r.example.com:5000/ns/app:v1");
  check_scope (p, "r.example.com:5000/ns/app:v2", "docker", "r.example.com:5000/ns/app");
  check_scope (p, "r.example.com:5000/ns/other:v1", "docker", "r.example.com:5000/ns");
  check_scope (p, "r.example.com:5000/top:v1", "docker", "r.example.com:5000");
  check_scope (p, "q.example.com/x:v1", "docker", "*.example.com");
  check_scope (p, "q.other.com/x:v1", "docker", "*.com");
  check_scope (p, "busybox", "docker", "docker.io/library/busybox");
  check_scope (p, "localhost:5000/x", "docker", "");
  check_scope (p, "oci:/srv/images/etcd:v1", "oci", "/srv/images");
  check_scope (p, "oci:/srv/other:v1", "oci", NULL);
  check_scope (p, "docker-archive:/srv/images/x.tar", "docker-archive", NULL);
}

static void
check_identity (const char *prm, const char *image, const char *identity, gboolean want)
{
  g_autoptr (GError) error = NULL;
  gboolean got = sysctr_policy_identity_test (prm, image, identity, &error);
  g_assert_no_error (error);
  if (got != want)
    g_error ("%s: image %s, signed identity %s: expected %s", prm, image, identity, want ? "match" : "no match");
}

static void
test_identity (void)
{
  const char *def = "{\"type\":\"matchRepoDigestOrExact\"}";
  check_identity (def, "r.io/a:v1", "r.io/a:v1", TRUE);
  check_identity (def, "r.io/a:v1", "r.io/a:v2", FALSE);
  check_identity (def, "r.io/a:v1", "r.io/a", FALSE);
  check_identity (def, "r.io/a:v1", "r.io/b:v1", FALSE);
  check_identity (def, "r.io/a@" D1, "r.io/a:anything", TRUE);
  check_identity (def, "r.io/a@" D1, "r.io/b:anything", FALSE);
  check_identity (def, "busybox", "busybox:latest", TRUE);
  check_identity (def, "busybox", "docker.io/library/busybox:latest", TRUE);
  check_identity (def, "r.io/a:v1", "not a reference", FALSE);
  check_identity (def, "r.io/a:v1", "docker://r.io/a:v1", FALSE);

  const char *exact = "{\"type\":\"matchExact\"}";
  check_identity (exact, "r.io/a:v1", "r.io/a:v1", TRUE);
  check_identity (exact, "r.io/a@" D1, "r.io/a@" D1, TRUE);
  check_identity (exact, "r.io/a@" D1, "r.io/a:v1", FALSE);
  check_identity (exact, "r.io/a:v1", "r.io/a", FALSE);

  const char *repo = "{\"type\":\"matchRepository\"}";
  check_identity (repo, "r.io/a:v1", "r.io/a:v2", TRUE);
  check_identity (repo, "r.io/a:v1", "r.io/a", TRUE);
  check_identity (repo, "r.io/a:v1", "r.io/ab:v1", FALSE);

  const char *eref = "{\"type\":\"exactReference\",\"dockerReference\":\"q.io/x:y\"}";
  check_identity (eref, "r.io/a:v1", "q.io/x:y", TRUE);
  check_identity (eref, "r.io/a:v1", "q.io/x:z", FALSE);
  check_identity (eref, "r.io/a:v1", "r.io/a:v1", FALSE);

  const char *erepo = "{\"type\":\"exactRepository\",\"dockerRepository\":\"q.io/x\"}";
  check_identity (erepo, "r.io/a:v1", "q.io/x:anything", TRUE);
  check_identity (erepo, "r.io/a:v1", "q.io/y:v1", FALSE);

  const char *remap = "{\"type\":\"remapIdentity\",\"prefix\":\"mirror.local/ns\",\"signedPrefix\":\"quay.io/ns\"}";
  check_identity (remap, "mirror.local/ns/etcd:v1", "quay.io/ns/etcd:v1", TRUE);
  check_identity (remap, "mirror.local/ns/etcd:v1", "mirror.local/ns/etcd:v1", FALSE);
  check_identity (remap, "mirror.local/ns/etcd@" D1, "quay.io/ns/etcd:v3", TRUE);
  check_identity (remap, "mirror.local/nsx/etcd:v1", "quay.io/nsx/etcd:v1", FALSE);
  check_identity (remap, "mirror.local/nsx/etcd:v1", "mirror.local/nsx/etcd:v1", TRUE);
  check_identity (remap, "other.io/x:v1", "other.io/x:v1", TRUE);
  /* the remapped name must already be canonical (containers/image parses
   * it without normalising): docker.io/busybox is not */
  const char *to_hub = "{\"type\":\"remapIdentity\",\"prefix\":\"mirror.example.com\",\"signedPrefix\":\"docker.io\"}";
  check_identity (to_hub, "mirror.example.com/busybox:latest", "docker.io/library/busybox:latest", FALSE);
  check_identity (to_hub, "mirror.example.com/library/busybox:latest", "docker.io/library/busybox:latest", TRUE);
  const char *port = "{\"type\":\"remapIdentity\",\"prefix\":\"mirror.internal:5000\",\"signedPrefix\":\"quay.io\"}";
  check_identity (port, "mirror.internal:5000/ns/app:v1", "quay.io/ns/app:v1", TRUE);
  /* only the lowercase spelling is Docker Hub's alias */
  check_identity (def, "busybox", "INDEX.DOCKER.IO/library/busybox:latest", FALSE);
  check_identity (def, "busybox", "index.docker.io/library/busybox:latest", TRUE);
}

static void
payload_bad (const char *json, const char *type, const char *part)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *d = NULL, *i = NULL;
  g_assert_false (sysctr_signature_payload_parse (json, strlen (json), type, &d, &i, &error));
  if (strstr (error->message, part) == NULL)
    g_error ("\"%s\" not in \"%s\"", part, error->message);
}

#define SIMPLE "atomic container signature"
#define COSIGN "cosign container image signature"

static char *
payload (const char *type, const char *digest, const char *identity)
{
  return g_strdup_printf (
      "{\"critical\":{\"identity\":{\"docker-reference\":\"%s\"},\"image\":{\"docker-manifest-"
      "digest\":\"%s\"},\"type\":\"%s\"},\"optional\":{\"creator\":\"t\",\"timestamp\":1700000000}}",
      identity, digest, type);
}

static void
test_payload (void)
{
  g_autofree char *good = payload (SIMPLE, D1, "r.io/a:v1");
  g_autofree char *d = NULL, *i = NULL;
  g_autoptr (GError) error = NULL;
  g_assert_true (sysctr_signature_payload_parse (good, strlen (good), SIMPLE, &d, &i, &error));
  g_assert_cmpstr (d, ==, D1);
  g_assert_cmpstr (i, ==, "r.io/a:v1");
  payload_bad (good, COSIGN, "Unrecognized signature type");
  payload_bad ("[]", SIMPLE, "not a JSON object");
  payload_bad ("{\"critical\":{}}", SIMPLE, "lacks the field \"optional\"");
  payload_bad ("{\"critical\":{},\"optional\":{},\"x\":1}", SIMPLE, "unknown fields");
  payload_bad ("{\"critical\":{\"type\":\"" SIMPLE "\",\"image\":{\"docker-manifest-digest\":\"" D1
               "\"},\"identity\":{\"docker-reference\":\"r.io/a:v1\"}},\"optional\":null}",
               SIMPLE, "optional is not a JSON object");
  /* sigstore payloads may have a null optional */
  const char *cosign_null = "{\"critical\":{\"type\":\"" COSIGN "\",\"image\":{\"docker-manifest-digest\":\"" D1
                            "\"},\"identity\":{\"docker-reference\":\"r.io/a:v1\"}},\"optional\":null}";
  g_clear_pointer (&d, g_free);
  g_clear_pointer (&i, g_free);
  g_assert_true (sysctr_signature_payload_parse (cosign_null, strlen (cosign_null), COSIGN, &d, &i, NULL));
  payload_bad ("{\"critical\":{\"type\":\"" SIMPLE "\",\"image\":{\"docker-manifest-digest\":\"sha256:12\"},"
               "\"identity\":{\"docker-reference\":\"r.io/a:v1\"}},\"optional\":{}}",
               SIMPLE, "bad docker-manifest-digest");
  payload_bad ("{\"critical\":{\"type\":\"" SIMPLE "\",\"image\":{\"docker-manifest-digest\":\"" D1
               "\",\"more\":1},\"identity\":{\"docker-reference\":\"r.io/a:v1\"}},\"optional\":{}}",
               SIMPLE, "unknown fields");
  payload_bad ("{\"critical\":{\"type\":\"" SIMPLE "\",\"image\":{\"docker-manifest-digest\":\"" D1
               "\"},\"identity\":{\"docker-reference\":\"r.io/a:v1\"}},\"optional\":{\"timestamp\":1.5}}",
               SIMPLE, "timestamp is not an integer");
  payload_bad ("{\"critical\":{\"type\":\"" SIMPLE "\",\"type\":\"" SIMPLE "\"},\"optional\":{}}", SIMPLE, "not JSON");
}

/* ------------------------------------------ sigstore, signed with OpenSSL */

typedef struct
{
  EVP_PKEY *key;
  char *pub_b64; /* base64 of the PEM public key, as keyData */
} Key;

static Key
key_new (const char *type)
{
  Key k = { 0 };
  k.key = strcmp (type, "ed25519") == 0 ? EVP_PKEY_Q_keygen (NULL, NULL, "ED25519")
          : strcmp (type, "rsa") == 0   ? EVP_PKEY_Q_keygen (NULL, NULL, "RSA", (size_t) 2048)
                                        : EVP_PKEY_Q_keygen (NULL, NULL, "EC", "P-256");
  g_assert_nonnull (k.key);
  BIO *bio = BIO_new (BIO_s_mem ());
  g_assert_true (PEM_write_bio_PUBKEY (bio, k.key) == 1);
  char *pem;
  long n = BIO_get_mem_data (bio, &pem);
  k.pub_b64 = g_base64_encode ((const guchar *) pem, n);
  BIO_free (bio);
  return k;
}

static void
key_clear (Key *k)
{
  EVP_PKEY_free (k->key);
  g_free (k->pub_b64);
}

static char *
sign_b64 (const Key *k, const char *data)
{
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  gboolean ed = EVP_PKEY_get_base_id (k->key) == EVP_PKEY_ED25519;
  g_assert_true (EVP_DigestSignInit (ctx, NULL, ed ? NULL : EVP_sha256 (), NULL, k->key) == 1);
  size_t len = 0;
  g_assert_true (EVP_DigestSign (ctx, NULL, &len, (const guchar *) data, strlen (data)) == 1);
  g_autofree guchar *sig = g_malloc (len);
  g_assert_true (EVP_DigestSign (ctx, sig, &len, (const guchar *) data, strlen (data)) == 1);
  EVP_MD_CTX_free (ctx);
  return g_base64_encode (sig, len);
}

static SysctrSignature *
sigstore_sig (const Key *k, const char *payload_text, const char *mime)
{
  SysctrSignature *s = g_new0 (SysctrSignature, 1);
  s->kind = SYSCTR_SIG_SIGSTORE;
  s->blob = g_bytes_new (payload_text, strlen (payload_text));
  s->mime_type = g_strdup (mime ? mime : "application/vnd.dev.cosign.simplesigning.v1+json");
  s->signature = sign_b64 (k, payload_text);
  s->origin = g_strdup ("test");
  return s;
}

static gboolean
fetch_list (gpointer data, GPtrArray **out, GError **error)
{
  GPtrArray *sigs = data;
  *out = g_ptr_array_ref (sigs);
  return TRUE;
}

/* the policy's verdict on r.io/a:v1 with digest D1 and @sigs; NULL when
 * accepted, else the error message */
static char *
verdict (const char *policy_json, const char *ref_str, GPtrArray *sigs, json_t **out_record)
{
  g_autoptr (SysctrPolicy) p = parse_ok (policy_json);
  g_autoptr (SysctrRef) ref = sysctr_ref_parse (ref_str, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) record = NULL;
  if (sysctr_policy_check (p, ref, D1, fetch_list, sigs, &record, &error))
    {
      if (out_record)
        *out_record = g_steal_pointer (&record);
      return NULL;
    }
  g_assert_true (g_error_matches (error, SYSCTR_ERROR, SYSCTR_ERROR_REJECTED));
  g_assert_true (g_str_has_prefix (error->message, "Source image rejected: "));
  g_assert_null (strchr (error->message, '\n'));
  return g_strdup (error->message);
}

static void
expect (const char *policy_json, const char *ref, GPtrArray *sigs, const char *want_part)
{
  g_autofree char *v = verdict (policy_json, ref, sigs, NULL);
  if (want_part == NULL && v != NULL)
    g_error ("expected acceptance, got: %s", v);
  if (want_part != NULL && (v == NULL || strstr (v, want_part) == NULL))
    g_error ("expected a rejection with \"%s\", got: %s", want_part, v ? v : "accepted");
}

static void
test_sigstore_eval (void)
{
  static const char *const types[] = { "ec", "ed25519", "rsa" };
  for (guint t = 0; t < G_N_ELEMENTS (types); t++)
    {
      Key k = key_new (types[t]), other = key_new ("ec");
      g_autofree char *policy = g_strdup_printf (
          "{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"docker\":{\"r.io\":[{\"type\":\"sigstoreSigned\","
          "\"keyData\":\"%s\"}],\"r.io/repo\":[{\"type\":\"sigstoreSigned\",\"keyDatas\":[\"%s\",\"%s\"],"
          "\"signedIdentity\":{\"type\":\"matchRepository\"}}],\"r.io/gpg\":[{\"type\":\"signedBy\",\"keyType\":"
          "\"GPGKeys\",\"keyData\":\"%s\"}],\"r.io/open\":[{\"type\":\"insecureAcceptAnything\"}]}}}",
          k.pub_b64, other.pub_b64, k.pub_b64, k.pub_b64);
      g_autofree char *good = payload (COSIGN, D1, "r.io/a:v1");
      g_autofree char *other_digest = payload (COSIGN, D2, "r.io/a:v1");
      g_autofree char *other_ident = payload (COSIGN, D1, "r.io/a:v2");
      g_autofree char *simple_type = payload (SIMPLE, D1, "r.io/a:v1");
      g_autoptr (GPtrArray) none = g_ptr_array_new_with_free_func ((GDestroyNotify) sysctr_signature_free);

      g_autoptr (GPtrArray) ok = g_ptr_array_new_with_free_func ((GDestroyNotify) sysctr_signature_free);
      g_ptr_array_add (ok, sigstore_sig (&k, good, NULL));
      g_autoptr (json_t) record = NULL;
      g_autofree char *v = verdict (policy, "r.io/a:v1", ok, &record);
      g_assert_null (v);
      json_t *req = json_array_get (json_object_get (record, "requirements"), 0);
      g_assert_cmpstr (sysctr_json_get_string (req, "type"), ==, "sigstoreSigned");
      g_assert_cmpstr (sysctr_json_get_string (req, "identity"), ==, "r.io/a:v1");
      g_assert_true (g_str_has_prefix (sysctr_json_get_string (req, "key"), "SHA256:"));
      g_assert_cmpstr (sysctr_json_get_string (record, "scope"), ==, "r.io");

      expect (policy, "r.io/a:v1", none, "A signature was required, but no signature exists");
      expect (policy, "q.io/a:v1", ok, "is rejected by policy");
      expect (policy, "r.io/open/x:v1", none, NULL);

      g_autoptr (GPtrArray) s = g_ptr_array_new_with_free_func ((GDestroyNotify) sysctr_signature_free);
      g_ptr_array_add (s, sigstore_sig (&other, good, NULL));
      expect (policy, "r.io/a:v1", s, "cryptographic signature verification failed");
      /* two signatures, one good: accepted */
      g_ptr_array_add (s, sigstore_sig (&k, good, NULL));
      expect (policy, "r.io/a:v1", s, NULL);
      g_ptr_array_set_size (s, 0);

      g_ptr_array_add (s, sigstore_sig (&k, other_digest, NULL));
      expect (policy, "r.io/a:v1", s, "Signature for digest " D2 " does not match");
      g_ptr_array_set_size (s, 0);
      g_ptr_array_add (s, sigstore_sig (&k, other_ident, NULL));
      expect (policy, "r.io/a:v1", s, "Signature for identity \"r.io/a:v2\" is not accepted");
      /* pinned as NAME:TAG@DIGEST: judged by digest, any tag of the repository */
      expect (policy, "r.io/a:v1@" D1, s, NULL);
      /* matchRepository takes it, with either key of keyDatas */
      expect (policy, "r.io/repo:v1", s, "Signature for identity \"r.io/a:v2\"");
      g_ptr_array_set_size (s, 0);
      g_autofree char *repo_v2 = payload (COSIGN, D1, "r.io/repo:v2");
      g_ptr_array_add (s, sigstore_sig (&k, repo_v2, NULL));
      expect (policy, "r.io/repo:v1", s, NULL);
      g_ptr_array_set_size (s, 0);

      g_ptr_array_add (s, sigstore_sig (&k, simple_type, NULL));
      expect (policy, "r.io/a:v1", s, "Unrecognized signature type");
      g_ptr_array_set_size (s, 0);
      g_ptr_array_add (s, sigstore_sig (&k, good, "application/vnd.oci.image.config.v1+json"));
      expect (policy, "r.io/a:v1", s, "(0 non-sigstore signatures, 1 sigstore non-signature attachments)");
      g_ptr_array_set_size (s, 0);

      /* the payload changed after signing; the signature changed */
      SysctrSignature *t1 = sigstore_sig (&k, good, NULL);
      g_bytes_unref (t1->blob);
      g_autofree char *tampered = g_strdup (good);
      tampered[strlen (tampered) - 3] = '1';
      t1->blob = g_bytes_new (tampered, strlen (tampered));
      g_ptr_array_add (s, t1);
      SysctrSignature *t2 = sigstore_sig (&k, good, NULL);
      t2->signature[4] = t2->signature[4] == 'A' ? 'B' : 'A';
      g_ptr_array_add (s, t2);
      SysctrSignature *t3 = sigstore_sig (&k, good, NULL);
      t3->signature[0] = '*';
      g_ptr_array_add (s, t3);
      expect (policy, "r.io/a:v1", s, "None of the signatures were accepted, reasons: ");
      g_ptr_array_set_size (s, 0);

      /* a GPG requirement ignores sigstore signatures */
      expect (policy, "r.io/gpg/a:v1", ok, "A signature was required, but no signature exists");
      /* an OCI layout carries no signatures */
      g_autofree char *oci_policy
          = g_strdup_printf ("{\"default\":[{\"type\":\"sigstoreSigned\",\"keyData\":\"%s\"}]}", k.pub_b64);
      expect (oci_policy, "oci:/srv/x:v1", ok, "no signature exists (OCI layout images carry no signatures)");
      key_clear (&k);
      key_clear (&other);
    }
}

static void
test_unsupported (void)
{
  g_autoptr (GPtrArray) none = g_ptr_array_new_with_free_func ((GDestroyNotify) sysctr_signature_free);
  expect ("{\"default\":[{\"type\":\"signedBaseLayer\",\"baseLayerIdentity\":{\"type\":\"matchRepository\"}}]}",
          "r.io/a:v1", none, "signedBaseLayer requirements are refused");
  expect ("{\"default\":[{\"type\":\"signedBy\",\"keyType\":\"X509Certificates\",\"keyPath\":\"/k\"}]}", "r.io/a:v1",
          none, "Unimplemented \"keyType\" value \"X509Certificates\"");
  /* every requirement of the scope must hold */
  expect ("{\"default\":[{\"type\":\"insecureAcceptAnything\"},{\"type\":\"reject\"}]}", "r.io/a:v1", none,
          "is rejected by policy");
  /* no policy file: accepted, and recorded so */
  g_autoptr (SysctrRef) ref = sysctr_ref_parse ("r.io/a:v1", NULL);
  g_autoptr (json_t) record = NULL;
  g_assert_true (sysctr_policy_check (NULL, ref, D1, fetch_list, none, &record, NULL));
  g_autofree char *summary = sysctr_policy_record_summary (record);
  g_assert_nonnull (strstr (summary, "without a policy"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/policy/parse", test_parse);
  g_test_add_func ("/policy/scopes", test_scopes);
  g_test_add_func ("/policy/identity", test_identity);
  g_test_add_func ("/policy/payload", test_payload);
  g_test_add_func ("/policy/sigstore", test_sigstore_eval);
  g_test_add_func ("/policy/unsupported", test_unsupported);
  return g_test_run ();
}
