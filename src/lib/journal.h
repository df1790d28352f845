/* The journal of mutating commands and the steps after their commit
 * point (journal.c). */
#pragma once

#include "context.h"
#include "systemd.h"

#include <jansson.h>

G_BEGIN_DECLS

/* Records, before the commit point, that @op ("install", "update",
 * "rollback", "uninstall") of @name is under way: to @slot, from @from. */
gboolean sysctr_journal_write (SysctrContext *ctx, const char *name, const char *op, const char *slot, const char *from,
                               gboolean purge, GError **error);

/* The operation is complete: every step after its commit point is done. */
void sysctr_journal_remove (SysctrContext *ctx, const char *name);

/* Whether reconcile, in this process, just completed @op for @name (the
 * command that follows need not redo it). */
gboolean sysctr_journal_was_completed (const char *name, const char *op);

/* After the commit point of an install: host files, enablement, tmpfiles. */
gboolean sysctr_journal_finish_install (SysctrContext *ctx, SysctrSystemd **sd, const char *name, json_t *info,
                                        GError **error);

/* After the commit point of an update or a rollback: host files swapped,
 * enablement moved, systemd reloaded. */
gboolean sysctr_journal_finish_switch (SysctrContext *ctx, SysctrSystemd **sd, const char *name, json_t *old_info,
                                       json_t *new_info, GError **error);

/* After the commit point of an uninstall (the NAME symlink is gone):
 * units stopped and disabled, host files removed, slots removed. @info may
 * be NULL when the slot's info.json is already gone (then the files were
 * removed already). */
gboolean sysctr_journal_finish_uninstall (SysctrContext *ctx, SysctrSystemd **sd, const char *name, const char *slot,
                                          json_t *info, gboolean purge, GError **error);

G_END_DECLS
