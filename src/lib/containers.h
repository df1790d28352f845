/* Installed containers: ROOT/var/lib/sysctr/containers/NAME -> NAME.0|NAME.1,
 * each slot an OCI runtime bundle plus info.json. */
#pragma once

#include "context.h"

G_BEGIN_DECLS

#define SYSCTR_INFO_FORMAT 2

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
