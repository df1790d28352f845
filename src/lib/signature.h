/* Cryptographic checks of image signatures: GPG simple signing (GPGME, in
 * a keyring of its own made for the one check) and sigstore public keys
 * (OpenSSL: ECDSA, RSA PKCS#1 v1.5 and Ed25519, as cosign signs).
 *
 * Invariant: nothing is trusted but the keys passed in; a check never
 * reads or writes the caller's GnuPG home. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* @keys: GBytes, each one or more OpenPGP public keys (binary or armored).
 * @sig: an OpenPGP signed message. On success *out_payload is the signed
 * content and *out_fingerprint the primary key fingerprint of the key that
 * made it, one of @keys. Errors are SYSCTR_ERROR_REJECTED. */
gboolean sysctr_gpg_verify (GPtrArray *keys, GBytes *sig, GBytes **out_payload, char **out_fingerprint, GError **error);

/* @keys: GBytes, each a PEM public key. @b64_signature: the base64
 * signature of @payload. *out_key_id: "SHA256:" and the hex SHA-256 of the
 * key's SubjectPublicKeyInfo. Errors are SYSCTR_ERROR_REJECTED. */
gboolean sysctr_sigstore_verify (GPtrArray *keys, GBytes *payload, const char *b64_signature, char **out_key_id,
                                 GError **error);

G_END_DECLS
