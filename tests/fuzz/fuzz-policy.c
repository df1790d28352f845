/* libFuzzer: what an admin's policy files and a registry's signatures
 * feed sysctr before any cryptography: containers-policy.json (parse,
 * scope choice, evaluation without signatures), the signed payload of
 * both signature kinds, signedIdentity matchers, registries.d YAML.
 * The first byte picks the parser. */
#include "config.h"

#include "lookaside.h"
#include "policy.h"
#include "sysctr-util.h"

#include <string.h>

#define DIGEST "sha256:1111111111111111111111111111111111111111111111111111111111111111"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static gboolean
no_signatures (gpointer data, GPtrArray **out, GError **error)
{
  *out = g_ptr_array_new ();
  return TRUE;
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  if (size < 1)
    return 0;
  const char *text = (const char *) data + 1;
  gsize len = size - 1;
  static const char *const refs[] = {
    "r.example.com:5000/ns/app:v1", "docker.io/library/busybox:latest", ("localhost/x@" DIGEST),
    "oci:/srv/images/etcd:v1",      "docker-archive:/tmp/x.tar",
  };
  switch (data[0] % 4)
    {
    case 0:
      {
        g_autoptr (SysctrPolicy) p = sysctr_policy_parse (text, len, "/fuzz/policy.json", NULL);
        if (p == NULL)
          break;
        for (guint i = 0; i < G_N_ELEMENTS (refs); i++)
          {
            g_autoptr (SysctrRef) ref = sysctr_ref_parse (refs[i], NULL);
            g_assert (ref != NULL);
            const char *transport = NULL;
            (void) sysctr_policy_scope_for (p, ref, &transport);
            g_autoptr (json_t) record = NULL;
            g_autoptr (GError) error = NULL;
            /* no signature: never accepted through a signature requirement */
            if (sysctr_policy_check (p, ref, DIGEST, no_signatures, NULL, &record, &error))
              {
                g_autofree char *summary = sysctr_policy_record_summary (record);
                g_assert (summary != NULL);
                json_t *e;
                size_t k;
                json_array_foreach (json_object_get (record, "requirements"), k, e)
                  g_assert (g_strcmp0 (sysctr_json_get_string (e, "type"), "insecureAcceptAnything") == 0);
              }
            else
              g_assert (error && strchr (error->message, '\n') == NULL);
          }
        break;
      }
    case 1:
    case 2:
      {
        g_autofree char *d = NULL, *i = NULL;
        const char *type = data[0] % 4 == 1 ? "atomic container signature" : "cosign container image signature";
        if (sysctr_signature_payload_parse (text, len, type, &d, &i, NULL))
          {
            g_assert (d != NULL && i != NULL);
            g_assert (strchr (i, '\n') == NULL);
          }
        break;
      }
    case 3:
      {
        /* a signedIdentity and a claimed identity, split at the first NUL */
        const char *nul = memchr (text, '\0', len);
        g_autofree char *prm = g_strndup (text, nul ? (gsize) (nul - text) : len);
        g_autofree char *ident = nul ? g_strndup (nul + 1, len - (nul - text) - 1) : g_strdup ("r.io/a:v1");
        for (guint k = 0; k < 3; k++)
          (void) sysctr_policy_identity_test (prm, refs[k], ident, NULL);
        (void) sysctr_registries_d_parse (text, len, NULL);
        break;
      }
    }
  return 0;
}
