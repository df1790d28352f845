/* Image references: [docker://]HOST[:PORT]/PATH[:TAG][@sha256:...],
 * oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  SYSCTR_TRANSPORT_DOCKER,
  SYSCTR_TRANSPORT_OCI,
  SYSCTR_TRANSPORT_OCI_ARCHIVE,
  SYSCTR_TRANSPORT_DOCKER_ARCHIVE,
} SysctrTransport;

typedef struct
{
  SysctrTransport transport;
  char *domain; /* docker: "docker.io", "127.0.0.1:5000" */
  char *path;   /* docker: "library/busybox" */
  char *tag;    /* docker: tag or NULL when only a digest is given; oci: the ref name or NULL */
  char *digest; /* "sha256:..." or NULL */
  char *file;   /* oci, oci-archive, docker-archive: the path on disk */
} SysctrRef;

void sysctr_ref_free (SysctrRef *ref);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SysctrRef, sysctr_ref_free)

SysctrRef *sysctr_ref_parse (const char *str, GError **error);
/* A docker reference as containers/image's ParseNormalizedNamed reads it
 * (signatures, policy.json): no transport, and no default tag, so tag and
 * digest are both NULL for a bare repository name. */
SysctrRef *sysctr_docker_ref_parse_named (const char *str, GError **error);
/* A registry reference's scopes as containers/image names them (policy.json
 * transports.docker, registries.d docker:), most specific first: the exact
 * reference (by digest when it has one), the repository, each parent
 * namespace, the host, then *.DOMAIN wildcards. */
GPtrArray *sysctr_ref_docker_scopes (const SysctrRef *ref);
/* HOST[:PORT][/PATH]: a repository prefix as policy.json's remapIdentity
 * takes it (a registry, or a namespace in one). */
gboolean sysctr_docker_prefix_valid (const char *s);
/* Canonical form: docker.io/library/busybox:latest, oci:/dir:ref, ... */
char *sysctr_ref_to_string (const SysctrRef *ref);
/* The host to talk to: docker.io is served from registry-1.docker.io. */
const char *sysctr_ref_registry_host (const SysctrRef *ref);
/* Default container name, as atomic did: last path component, plus -TAG
 * when the tag is not "latest". NULL if no valid name can be derived. */
char *sysctr_ref_default_name (const SysctrRef *ref);

gboolean sysctr_name_valid (const char *name);

/* Reversible encoding of a reference into one OSTree ref component. */
char *sysctr_ref_escape (const char *canonical);
char *sysctr_ref_unescape (const char *escaped);

G_END_DECLS
