/* Where an image's signatures are: containers-registries.d(5) names a
 * lookaside store per registry namespace (file://, http://, https://) and
 * whether sigstore attachments (the sha256-HEX.sig tag) are read.
 *
 * Invariant: signatures are fetched, never trusted here; each is bounded
 * (4 MiB, at most 128 per image) and its origin recorded. */
#pragma once

#include "policy.h"
#include "reference.h"
#include "registry.h"

G_BEGIN_DECLS

#define SYSCTR_REGISTRIES_D "/etc/containers/registries.d"

typedef struct
{
  char *lookaside;      /* URL; file:///var/lib/containers/sigstore when none is set */
  gboolean attachments; /* use-sigstore-attachments */
} SysctrSigConfig;

void sysctr_sig_config_clear (SysctrSigConfig *c);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (SysctrSigConfig, sysctr_sig_config_clear)

/* The configuration for @ref from the *.yaml files of @dir (NULL: the
 * system directory; a missing directory configures nothing). */
gboolean sysctr_sig_config_load (const char *dir, const SysctrRef *ref, SysctrSigConfig *out, GError **error);

/* For the fuzzer: one registries.d file, parsed and merged. */
gboolean sysctr_registries_d_parse (const char *data, gsize len, GError **error);

/* Every signature of the manifest @digest of @ref: the lookaside's
 * signature-1, -2, … then the attachment's layers. @reg: for attachments. */
gboolean sysctr_signatures_fetch (const SysctrSigConfig *config, const SysctrRef *ref, const char *digest,
                                  SysctrRegistry *reg, gboolean tls_verify, GPtrArray **out_sigs, GError **error);

G_END_DECLS
