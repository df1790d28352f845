/* A container's units: conflicts, enablement, tmpfiles, start, settle
 * (units.c). */
#pragma once

#include "context.h"
#include "systemd.h"

#include <jansson.h>

G_BEGIN_DECLS

/* A unit of this name that sysctr did not write for this container, in
 * any directory systemd loads units from, makes install refuse. */
gboolean sysctr_units_check_conflicts (SysctrContext *ctx, const char *name, GError **error);

/* Disables @unit in a --root tree: every <target>.wants|requires/@unit
 * link that points to it, found by scanning (the rendered unit may be gone
 * after an interrupted uninstall). */
gboolean sysctr_units_offline_disable (SysctrContext *ctx, const char *unit, GError **error);

/* Enables (or disables) the units of @info in a --root tree as
 * systemctl --root does: the [Install] links. */
gboolean sysctr_units_offline_enable (SysctrContext *ctx, json_t *info, gboolean enable, GError **error);

/* systemd-tmpfiles @action ("--create", "--remove") on the container's
 * tmpfiles.d file. */
gboolean sysctr_units_run_tmpfiles (SysctrContext *ctx, const char *name, const char *action, GError **error);

/* Connects to systemd once per command (live hosts only). */
gboolean sysctr_units_connect (SysctrContext *ctx, SysctrSystemd **sd, GError **error);

/* @method ("StartUnit", "RestartUnit") on the unit the container
 * enables (its socket when it has one), waiting for the job. */
gboolean sysctr_units_start (SysctrContext *ctx, SysctrSystemd *sd, json_t *info, const char *method, GError **error);

/* Whether the container's service (or socket) is active now. */
gboolean sysctr_units_is_active (SysctrSystemd *sd, json_t *info);

/* A started (or restarted) service whose start job succeeded must also
 * stay up: a Type=exec/simple service that dies a second after starting
 * passes the job. It must still be active with the same main process at
 * the end of the settle window (3 s, as sysctr-update(1) says), or this
 * fails with what the unit logged last. Type=notify services were gated by
 * READY=1 in the job itself, oneshots by their result; a socket-activated
 * container has not started at all. */
gboolean sysctr_units_wait_settled (SysctrSystemd *sd, json_t *info, GError **error);
/* With a health check: until the shim reports the first pass ("health:
 * healthy" in the unit's status), within start period + (retries + 1) x
 * (interval + timeout); fails on "unhealthy", a restart or a stop. */
gboolean sysctr_units_wait_healthy (SysctrSystemd *sd, json_t *info, GError **error);

G_END_DECLS
