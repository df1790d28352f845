/* containers-policy.json(5): which images may be pulled at all.
 *
 * Invariant: a policy is read whole and strictly (unknown keys, duplicate
 * keys, a requirement of an unknown type, a key source missing or given
 * twice: the policy is invalid and refuses every pull); the requirements of
 * the most specific scope all hold, or the image is rejected before a byte
 * of it is stored. What sysctr cannot check (Fulcio, Rekor, PKI,
 * signedBaseLayer, X.509 keyTypes) rejects, it never accepts. */
#pragma once

#include <jansson.h>

#include "reference.h"

G_BEGIN_DECLS

#define SYSCTR_POLICY_PATH "/etc/containers/policy.json"

typedef struct SysctrPolicy SysctrPolicy;

/* @path NULL: the system file, SYSCTR_POLICY_PATH (or $SYSCTR_POLICY_PATH
 * for tests); when it does not exist, *out_policy is NULL and every image
 * is accepted (recorded as such). A file named by --signature-policy must
 * exist. */
gboolean sysctr_policy_load (const char *path, SysctrPolicy **out_policy, GError **error);
SysctrPolicy *sysctr_policy_parse (const char *data, gsize len, const char *path, GError **error);
void sysctr_policy_free (SysctrPolicy *policy);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SysctrPolicy, sysctr_policy_free)

/* A signature as found, not yet trusted. */
typedef enum
{
  SYSCTR_SIG_SIMPLE,   /* GPG "atomic container signature" (lookaside) */
  SYSCTR_SIG_SIGSTORE, /* cosign payload + annotations (attachment) */
} SysctrSigKind;

typedef struct
{
  SysctrSigKind kind;
  GBytes *blob;     /* simple: the OpenPGP message; sigstore: the payload */
  char *mime_type;  /* sigstore: the layer's media type */
  char *signature;  /* sigstore: dev.cosignproject.cosign/signature (base64) */
  gboolean has_set; /* sigstore: a dev.sigstore.cosign/bundle annotation */
  char *origin;     /* where it was read, for messages and the record */
} SysctrSignature;

void sysctr_signature_free (SysctrSignature *sig);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SysctrSignature, sysctr_signature_free)

/* Fetches the image's signatures (of SysctrSignature); called at most
 * once, and only when a requirement needs them. */
typedef gboolean (*SysctrSigFetchFunc) (gpointer data, GPtrArray **out_sigs, GError **error);

/* Decides on the image @ref whose top-level manifest has @manifest_digest.
 * TRUE: allowed, *out_record says why (policy file, scope, and per
 * requirement the key and identity that verified it). FALSE: an error
 * SYSCTR_ERROR_REJECTED "Source image rejected: …" (also when the
 * signatures could not be read, as containers/image). @policy NULL: no
 * policy file. */
gboolean sysctr_policy_check (const SysctrPolicy *policy, const SysctrRef *ref, const char *manifest_digest,
                              SysctrSigFetchFunc fetch, gpointer fetch_data, json_t **out_record, GError **error);

/* One line for a record (images inspect, info): "signed by GPG key FPR
 * (identity …)", "accepted unsigned (insecureAcceptAnything, scope …)". */
char *sysctr_policy_record_summary (json_t *record);

/* For tests: the scope that applies to @ref ("" for the transport's
 * default, NULL for the policy's default). */
const char *sysctr_policy_scope_for (const SysctrPolicy *policy, const SysctrRef *ref, const char **out_transport);

/* For tests: does a signature claiming @identity satisfy the signedIdentity
 * @prm_json (a JSON object as in the policy) for the image @image_ref? */
gboolean sysctr_policy_identity_test (const char *prm_json, const char *image_ref, const char *identity,
                                      GError **error);

/* Exposed for tests and the fuzzer: a signed payload, strictly.
 * @type is "atomic container signature" or "cosign container image
 * signature". */
gboolean sysctr_signature_payload_parse (const char *data, gsize len, const char *type, char **out_digest,
                                         char **out_identity, GError **error);

G_END_DECLS
