/* Signature checks and the signed payload, read strictly (exact fields,
 * as containers/image reads them).
 *
 * Invariant: a payload is accepted only from a signature that verified
 * with a key given by the policy; every GPG check runs in a throw-away
 * GnuPG home that is removed before returning. */
#include "config.h"

#include "signature.h"

#include "policy.h"
#include "sysctr-util.h"

#include <errno.h>
#ifndef HAVE_GPGME /* config.h says (meson.build, -Dgpg); GPG unless it says otherwise */
#define HAVE_GPGME 1
#endif
#if HAVE_GPGME
#include <gpgme.h>
#endif
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

#define MAX_PAYLOAD (4 * 1024 * 1024)

/* ------------------------------------------------------------ payload --- */

static gboolean
exact_fields (json_t *obj, const char *what, const char *const *fields, GError **error)
{
  if (!json_is_object (obj))
    return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "invalid signature: %s is not a JSON object", what);
  guint n = 0;
  for (const char *const *f = fields; *f; f++, n++)
    if (json_object_get (obj, *f) == NULL)
      return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "invalid signature: %s lacks the field \"%s\"", what, *f);
  if (json_object_size (obj) != n)
    return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "invalid signature: %s has unknown fields", what);
  return TRUE;
}

/* opencontainers/go-digest's Parse: a known algorithm and its hex length. */
static gboolean
digest_parse_ok (const char *d)
{
  static const struct
  {
    const char *alg;
    gsize hex;
  } algs[] = { { "sha256:", 64 }, { "sha384:", 96 }, { "sha512:", 128 } };
  for (guint i = 0; i < G_N_ELEMENTS (algs); i++)
    if (g_str_has_prefix (d, algs[i].alg))
      {
        const char *h = d + strlen (algs[i].alg);
        if (strlen (h) != algs[i].hex)
          return FALSE;
        for (; *h; h++)
          if (!g_ascii_isdigit (*h) && !(*h >= 'a' && *h <= 'f'))
            return FALSE;
        return TRUE;
      }
  return FALSE;
}

gboolean
sysctr_signature_payload_parse (const char *data, gsize len, const char *type, char **out_digest, char **out_identity,
                                GError **error)
{
  static const char *const top[] = { "critical", "optional", NULL };
  static const char *const crit[] = { "type", "image", "identity", NULL };
  static const char *const image_f[] = { "docker-manifest-digest", NULL };
  static const char *const ident_f[] = { "docker-reference", NULL };
  json_error_t jerr;
  g_autoptr (json_t) j = json_loadb (data, len, JSON_REJECT_DUPLICATES, &jerr);
  if (j == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "invalid signature: payload is not JSON (%s)", jerr.text);
  if (!exact_fields (j, "the payload", top, error))
    return FALSE;
  json_t *optional = json_object_get (j, "optional");
  gboolean sigstore = strcmp (type, "cosign container image signature") == 0;
  if (!(sigstore && json_is_null (optional)))
    {
      if (!json_is_object (optional))
        return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "invalid signature: optional is not a JSON object");
      json_t *creator = json_object_get (optional, "creator");
      json_t *ts = json_object_get (optional, "timestamp");
      if (creator && !json_is_string (creator) && !json_is_null (creator))
        return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "invalid signature: optional.creator is not a string");
      /* an int64 (casting a double out of range is undefined: the fuzzer
       * found 1.7e54) */
      double v = json_is_real (ts) ? json_real_value (ts) : 0;
      gboolean int64_ok
          = json_is_integer (ts) || (json_is_real (ts) && v > -9.2e18 && v < 9.2e18 && v == (double) (gint64) v);
      if (ts && !json_is_null (ts) && !int64_ok)
        return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "Field optional.timestamp is not an integer");
    }
  json_t *critical = json_object_get (j, "critical");
  if (!exact_fields (critical, "critical", crit, error))
    return FALSE;
  json_t *t = json_object_get (critical, "type");
  if (!json_is_string (t) || strcmp (json_string_value (t), type) != 0)
    {
      g_autofree char *shown = json_is_string (t) ? sysctr_printable (json_string_value (t)) : g_strdup ("?");
      return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "Unrecognized signature type %s", shown);
    }
  json_t *image = json_object_get (critical, "image");
  json_t *identity = json_object_get (critical, "identity");
  if (!exact_fields (image, "critical.image", image_f, error)
      || !exact_fields (identity, "critical.identity", ident_f, error))
    return FALSE;
  json_t *d = json_object_get (image, "docker-manifest-digest");
  json_t *r = json_object_get (identity, "docker-reference");
  if (!json_is_string (d) || !digest_parse_ok (json_string_value (d)))
    return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "invalid signature: bad docker-manifest-digest");
  if (!json_is_string (r))
    return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "invalid signature: docker-reference is not a string");
  *out_digest = g_strdup (json_string_value (d));
  *out_identity = sysctr_printable (json_string_value (r));
  return TRUE;
}

/* ---------------------------------------------------------------- GPG --- */

#if HAVE_GPGME

typedef struct
{
  GByteArray *buf;
} Sink;

static ssize_t
sink_write (void *handle, const void *buffer, size_t size)
{
  Sink *s = handle;
  if (s->buf->len + size > MAX_PAYLOAD)
    {
      errno = EFBIG;
      return -1;
    }
  g_byte_array_append (s->buf, buffer, size);
  return (ssize_t) size;
}

static gboolean
gpg_fail (GError **error, const char *what, gpgme_error_t err)
{
  return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "%s: %s", what, gpgme_strerror (err));
}

typedef struct
{
  gpgme_ctx_t ctx;
  char *home;
} Gpg;

static void
gpg_clear (Gpg *g)
{
  if (g->ctx)
    gpgme_release (g->ctx);
  if (g->home)
    {
      /* gpgme need not have reaped its gpg yet, and a gpg on its way out
       * may still drop a file (a lock) into the home while it is removed:
       * remove until it is gone, for 2 s at most */
      for (guint i = 0; i < 100; i++)
        {
          (void) sysctr_rm_rf_at (AT_FDCWD, g->home, NULL);
          if (access (g->home, F_OK) != 0 && errno == ENOENT)
            break;
          g_usleep (20 * 1000);
        }
      g_free (g->home);
    }
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Gpg, gpg_clear)

gboolean
sysctr_gpg_verify (GPtrArray *keys, GBytes *sig, GBytes **out_payload, char **out_fingerprint, GError **error)
{
  static gsize inited;
  if (g_once_init_enter (&inited))
    {
      gpgme_check_version (NULL);
      g_once_init_leave (&inited, 1);
    }
  g_auto (Gpg) g = { 0 };
  g.home = g_dir_make_tmp ("sysctr-gpg-XXXXXX", NULL);
  if (g.home == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "cannot make a temporary GnuPG home");
  /* importing public keys and verifying need no agent: one started
   * for this home could outlive its removal (and recreate it) */
  static const char conf[] = "no-autostart\nno-auto-key-retrieve\n";
  g_autofree char *conf_path = g_build_filename (g.home, "gpg.conf", NULL);
  if (!g_file_set_contents (conf_path, conf, sizeof conf - 1, NULL))
    return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "cannot write %s", conf_path);
  gpgme_error_t err = gpgme_new (&g.ctx);
  if (!err)
    err = gpgme_set_protocol (g.ctx, GPGME_PROTOCOL_OpenPGP);
  if (!err)
    err = gpgme_ctx_set_engine_info (g.ctx, GPGME_PROTOCOL_OpenPGP, NULL, g.home);
  if (err)
    return gpg_fail (error, "GPGME", err);
  gpgme_set_armor (g.ctx, 0);
  gpgme_set_textmode (g.ctx, 0);

  g_autoptr (GPtrArray) trusted = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < keys->len; i++)
    {
      gsize len;
      const void *data = g_bytes_get_data (keys->pdata[i], &len);
      gpgme_data_t kd;
      if ((err = gpgme_data_new_from_mem (&kd, data, len, 0)))
        return gpg_fail (error, "importing keys", err);
      err = gpgme_op_import (g.ctx, kd);
      gpgme_data_release (kd);
      if (err)
        return gpg_fail (error, "importing keys", err);
      gpgme_import_result_t ir = gpgme_op_import_result (g.ctx);
      for (gpgme_import_status_t st = ir ? ir->imports : NULL; st; st = st->next)
        if (st->result == GPG_ERR_NO_ERROR && st->fpr)
          g_ptr_array_add (trusted, g_strdup (st->fpr));
    }
  if (trusted->len == 0)
    return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "No public keys imported");

  gsize sig_len;
  const void *sig_data = g_bytes_get_data (sig, &sig_len);
  gpgme_data_t sd, pd;
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  Sink sink = { buf };
  static struct gpgme_data_cbs cbs = { .write = sink_write };
  if ((err = gpgme_data_new_from_mem (&sd, sig_data, sig_len, 0)))
    return gpg_fail (error, "reading the signature", err);
  if ((err = gpgme_data_new_from_cbs (&pd, &cbs, &sink)))
    {
      gpgme_data_release (sd);
      return gpg_fail (error, "reading the signature", err);
    }
  err = gpgme_op_verify (g.ctx, sd, NULL, pd);
  gpgme_data_release (sd);
  gpgme_data_release (pd);
  if (err)
    return gpg_fail (error, "Invalid GPG signature", err);
  gpgme_verify_result_t vr = gpgme_op_verify_result (g.ctx);
  guint n = 0;
  for (gpgme_signature_t s = vr ? vr->signatures : NULL; s; s = s->next)
    n++;
  if (n != 1)
    return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "Unexpected GPG signature count %u", n);
  gpgme_signature_t s = vr->signatures;
  if (gpgme_err_code (s->status) != GPG_ERR_NO_ERROR || s->validity == GPGME_VALIDITY_NEVER || s->validity_reason != 0
      || s->wrong_key_usage || s->fpr == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "Invalid GPG signature: %s",
                         gpgme_strerror (s->status ? s->status : s->validity_reason));
  g_autofree char *fpr = g_strdup (s->fpr);
  gboolean ok = FALSE;
  for (guint i = 0; i < trusted->len && !ok; i++)
    ok = g_ascii_strcasecmp (trusted->pdata[i], fpr) == 0;
  if (!ok)
    {
      /* a subkey of an accepted key */
      gpgme_key_t key = NULL;
      if (gpgme_get_key (g.ctx, fpr, &key, 0) == 0 && key && key->subkeys && key->subkeys->fpr)
        {
          for (guint i = 0; i < trusted->len && !ok; i++)
            ok = g_ascii_strcasecmp (trusted->pdata[i], key->subkeys->fpr) == 0;
          if (ok)
            {
              g_free (fpr);
              fpr = g_strdup (key->subkeys->fpr);
            }
        }
      if (key)
        gpgme_key_unref (key);
    }
  if (!ok)
    return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "signature by key %s is not accepted", s->fpr);
  *out_payload = g_byte_array_free_to_bytes (g_steal_pointer (&buf));
  *out_fingerprint = g_steal_pointer (&fpr);
  return TRUE;
}

#else /* !HAVE_GPGME: built with -Dgpg=disabled */

gboolean
sysctr_gpg_verify (GPtrArray *keys, GBytes *sig, GBytes **out_payload, char **out_fingerprint, GError **error)
{
  return sysctr_throw (error, SYSCTR_ERROR_REJECTED,
                       "this sysctr was built without GPG support: signedBy requirements refuse");
}

#endif /* HAVE_GPGME */

/* ----------------------------------------------------------- sigstore --- */

static char *
key_id (EVP_PKEY *pk)
{
  unsigned char *der = NULL;
  int n = i2d_PUBKEY (pk, &der);
  if (n <= 0)
    return g_strdup ("SHA256:?");
  g_autofree char *hex = sysctr_sha256_hex (der, n);
  OPENSSL_free (der);
  return g_strconcat ("SHA256:", hex, NULL);
}

gboolean
sysctr_sigstore_verify (GPtrArray *keys, GBytes *payload, const char *b64_signature, char **out_key_id, GError **error)
{
  gsize plen;
  const unsigned char *pdata = g_bytes_get_data (payload, &plen);
  /* base64.StdEncoding: the alphabet and padding; line breaks are
   * skipped, as Go's decoder skips them */
  g_autofree char *b64 = g_strdup (b64_signature);
  {
    char *w = b64;
    for (const char *r = b64_signature; *r; r++)
      if (*r != '\r' && *r != '\n')
        *w++ = *r;
    *w = '\0';
  }
  b64_signature = b64;
  gsize blen = strlen (b64_signature);
  gboolean b64_ok = blen > 0 && blen % 4 == 0;
  for (gsize i = 0; b64_ok && i < blen; i++)
    {
      char c = b64_signature[i];
      b64_ok = g_ascii_isalnum (c) || c == '+' || c == '/' || (c == '=' && i >= blen - 2);
      if (c == '=' && i == blen - 2)
        b64_ok = b64_ok && b64_signature[blen - 1] == '=';
    }
  if (!b64_ok)
    return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "invalid signature: base64 decoding failed");
  gsize slen;
  g_autofree guchar *sigbytes = g_base64_decode (b64_signature, &slen);

  guint usable = 0;
  for (guint i = 0; i < keys->len; i++)
    {
      gsize klen;
      const void *kdata = g_bytes_get_data (keys->pdata[i], &klen);
      if (klen > G_MAXINT)
        continue;
      BIO *bio = BIO_new_mem_buf (kdata, (int) klen);
      EVP_PKEY *pk = bio ? PEM_read_bio_PUBKEY (bio, NULL, NULL, NULL) : NULL;
      BIO_free (bio);
      if (pk == NULL)
        {
          ERR_clear_error ();
          return sysctr_throw (error, SYSCTR_ERROR_REJECTED,
                               "public key %u of the policy is not a PEM \"PUBLIC KEY\" sysctr can read", i + 1);
        }
      usable++;
      int base = EVP_PKEY_get_base_id (pk);
      const EVP_MD *md = base == EVP_PKEY_ED25519 ? NULL : EVP_sha256 ();
      EVP_MD_CTX *mctx = EVP_MD_CTX_new ();
      gboolean ok = mctx && (base == EVP_PKEY_EC || base == EVP_PKEY_RSA || base == EVP_PKEY_ED25519)
                    && EVP_DigestVerifyInit (mctx, NULL, md, NULL, pk) == 1
                    && EVP_DigestVerify (mctx, sigbytes, slen, pdata, plen) == 1;
      EVP_MD_CTX_free (mctx);
      if (ok)
        {
          *out_key_id = key_id (pk);
          EVP_PKEY_free (pk);
          return TRUE;
        }
      EVP_PKEY_free (pk);
    }
  if (usable == 0)
    {
      ERR_clear_error ();
      return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "no usable public key (PEM \"PUBLIC KEY\") in the policy");
    }
  ERR_clear_error ();
  return sysctr_throw (error, SYSCTR_ERROR_REJECTED, "cryptographic signature verification failed");
}
