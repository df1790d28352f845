/* install, uninstall, update, rollback: deployments in two slots,
 * switched by renaming a symlink (the commit point), units and host files
 * made to match the active slot. */
#pragma once

#include "context.h"
#include "reference.h"
#include "registry.h"
#include "store.h"
#include "updatelock.h"

G_BEGIN_DECLS

/* What the admin grants on this command line (privileges.h). */
typedef struct
{
  guint allow;         /* 1 << SysctrPrivilege of --allow= */
  gboolean privileged; /* --privileged: whatever this image asks */
} SysctrGrantOptions;

typedef struct
{
  const char *name; /* NULL: derived from the reference */
  const char *image;
  GHashTable *set;     /* KEY -> VALUE */
  const char *runtime; /* NULL: sysctr-shim */
  gboolean now;
  const SysctrPullOptions *pull;
  SysctrGrantOptions grant;
  SysctrUpdateLockOptions lock; /* --update-lock* */
} SysctrInstallOptions;

gboolean sysctr_install (SysctrContext *ctx, const SysctrInstallOptions *opts, GError **error);
gboolean sysctr_uninstall (SysctrContext *ctx, const char *name, gboolean purge, GError **error);

typedef struct
{
  const char *rebase; /* another reference, or NULL */
  GHashTable *set;
  gboolean no_pull;
  const SysctrPullOptions *pull; /* NULL: the options kept at install */
  gboolean gate;                 /* roll back when the restarted unit does not come up */
  SysctrGrantOptions grant;      /* widens the grant kept at install */
  SysctrUpdateLockOptions lock;  /* changes the lock kept at install */
} SysctrUpdateOptions;

/* *out_changed tells whether a new deployment was made. */
gboolean sysctr_update (SysctrContext *ctx, const char *name, const SysctrUpdateOptions *opts, gboolean *out_changed,
                        GError **error);
gboolean sysctr_rollback (SysctrContext *ctx, const char *name, GError **error);
/* Deletes the halt record of @name's update lock (updatelock.h). */
gboolean sysctr_update_clear_halt (SysctrContext *ctx, const char *name, GError **error);

/* Completes or reverts what an interrupted command left: host files and
 * units not matching the active deployment, units of containers that are
 * gone. Every mutating command runs it first. */
gboolean sysctr_reconcile (SysctrContext *ctx, GError **error);

/* Shared by install and update (install.c). */
/* The pull options kept in info.json (never credentials), and back. */
json_t *sysctr_pull_options_to_json (const SysctrPullOptions *pull);

void sysctr_pull_options_from_json (json_t *j, SysctrPullOptions *opts);

/* Uses the image from the store when the reference is there. */
gboolean sysctr_install_get_image (SysctrContext *ctx, const SysctrRef *ref, const SysctrPullOptions *pull,
                                   gboolean force_pull, SysctrImage **out, GError **error);

G_END_DECLS
