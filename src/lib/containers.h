/* Installed containers: ROOT/var/lib/sysctr/containers/NAME -> NAME.0|NAME.1,
 * each slot an OCI runtime bundle plus info.json. */
#pragma once

#include "context.h"

#include <jansson.h>

G_BEGIN_DECLS

#define SYSCTR_INFO_FORMAT 2

/* A deployment's info.json, typed: sysctr_deployment_view reads one
 * (pointers borrowed from the document, which must outlive the view),
 * sysctr_deployment_to_json writes one; no other code spells its keys. */
typedef struct
{
  int format;
  const char *name;
  const char *slot;        /* NAME.0 or NAME.1 */
  const char *deployed_at; /* ISO 8601, UTC */
  json_t *image;           /* {reference, manifest_digest, commit, platform, layers[], verification} */
  const char *reference;   /* image.reference */
  const char *manifest_digest;
  json_t *layers;      /* image.layers: digests, manifest order */
  json_t *values;      /* every value the templates saw */
  json_t *set;         /* the --set values of the command lines */
  const char *runtime; /* "sysctr-shim", "runc", "crun" or a path */
  const char *runtime_path;
  const char *shim_path;
  json_t *pull_options; /* as sysctr_pull_options_to_json */
  json_t *units;        /* unit names, the service first */
  const char *service;  /* units[0] */
  const char *enable;   /* the unit enabled and started (the socket when there is one), or NULL */
  const char *state_path;
  json_t *files;   /* host files: [{path, sha256, mode}] */
  json_t *created; /* host directories sysctr made for it */
  json_t *asked;   /* privileges the image asks for */
  json_t *granted; /* privileges the admin granted */
  json_t *exposed_ports;
  json_t *health;      /* {test, interval_ms, timeout_ms, start_period_ms, retries} or NULL: no health check */
  json_t *update_lock; /* the cluster lock updates take (updatelock.h), or NULL */
} SysctrDeployment;

void sysctr_deployment_view (json_t *info, SysctrDeployment *d);
json_t *sysctr_deployment_to_json (const SysctrDeployment *d);
/* The sha256 the deployment records for host file @path, or NULL. */
const char *sysctr_deployment_file_sha (const SysctrDeployment *d, const char *path);

/* Adds the manifest digests and layer digests every slot of every
 * container uses; @out_names gets the container names (may be NULL). */
gboolean sysctr_containers_collect_usage (SysctrContext *ctx, GHashTable *images, GHashTable *layers,
                                          GPtrArray *out_names, GError **error);

/* Names of installed containers (those with a NAME symlink), sorted. */
gboolean sysctr_containers_list (SysctrContext *ctx, GPtrArray **out_names, GError **error);

/* Reads containers/@slot/info.json. */
gboolean sysctr_container_read_info (SysctrContext *ctx, const char *slot, json_t **out_info, GError **error);

/* The slot NAME points to ("etcd.0"), or NULL (no error) when not installed. */
gboolean sysctr_container_active_slot (SysctrContext *ctx, const char *name, char **out_slot, GError **error);

G_END_DECLS
