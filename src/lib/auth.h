/* Registry credentials: --creds, --authfile, and the containers-auth.json
 * locations podman and skopeo read; WWW-Authenticate challenges. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Looks up "user:pass" for DOMAIN/PATH. Returns TRUE with *out_creds NULL
 * when none is configured; FALSE only for a broken file that was named. */
gboolean sysctr_auth_lookup (const char *domain, const char *path, const char *creds, const char *authfile,
                             char **out_creds, GError **error);

typedef struct
{
  char *scheme; /* "bearer" or "basic", lowercased */
  char *realm;
  char *service;
  char *scope;
} SysctrAuthChallenge;

void sysctr_auth_challenge_free (SysctrAuthChallenge *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SysctrAuthChallenge, sysctr_auth_challenge_free)

/* Parses one WWW-Authenticate header value; NULL if it is not one we speak. */
SysctrAuthChallenge *sysctr_auth_parse_challenge (const char *header);

G_END_DECLS
