/* Deployment slots: writing one aside, switching the NAME symlink,
 * reading the active one (slot.c). */
#pragma once

#include "context.h"
#include "install.h"
#include "store.h"

#include <jansson.h>

G_BEGIN_DECLS

/* The "values" object of info.json as a KEY -> VALUE table. */
GHashTable *sysctr_values_from_json (json_t *o);

/* NAME.1 for NAME.0 and back. */
char *sysctr_slot_other (const char *name, const char *slot);

/* A deployment is built in containers/.SLOT.staging and renamed onto @slot
 * only once it is complete (info.json written last): until then the old
 * content of @slot, the rollback target, stays as it was, and a failed
 * render or a full disk lose nothing. */
/* What a new deployment carries over from the running one (an update):
 * its grant, widened only by what this command line grants, and the host
 * directories it created. */
typedef struct
{
  json_t *previous_grant;   /* NULL at install */
  json_t *previous_created; /* NULL at install */
  SysctrGrantOptions options;
  json_t *update_lock; /* kept in info.json as it is (NULL: none) */
} SysctrSlotRequest;

gboolean sysctr_slot_write (SysctrContext *ctx, const char *name, const char *slot, const SysctrImage *image,
                            GHashTable *set, GHashTable *previous, const char *runtime, json_t *pull_json,
                            const SysctrSlotRequest *grant, json_t **out_info, GError **error);

/* The commit point: a new symlink renamed over the old one. */
gboolean sysctr_slot_switch (SysctrContext *ctx, const char *name, const char *slot, GError **error);

/* The active slot of @name and its info.json; "not installed"
 * (SYSCTR_ERROR_NOT_FOUND) when there is none. */
gboolean sysctr_slot_read_active (SysctrContext *ctx, const char *name, char **out_slot, json_t **out_info,
                                  GError **error);

G_END_DECLS
