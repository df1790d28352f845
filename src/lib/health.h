/* Health checks and reload: image config and labels -> config.json
 * annotations (run by the shim) and [Service] lines. See health.c. */
#pragma once

#include <glib.h>
#include <jansson.h>

#include "store.h"

G_BEGIN_DECLS

/* Adds the health check of @image (if any) to @config's annotations and its
 * unit lines to @service_lines; *out_health tells whether there is one
 * (never under runc/crun: @shim FALSE). */
gboolean sysctr_render_health (const SysctrImage *image, gboolean shim, json_t *config, GString *service_lines,
                               gboolean *out_health, GError **error);
/* ExecReload= from org.sysctr.reload-signal or org.sysctr.reload. */
gboolean sysctr_render_reload (const SysctrImage *image, const char *shim_path, const char *name,
                               GString *service_lines, GError **error);

/* The health check a rendered config.json carries, for info.json:
 * {test, interval_ms, timeout_ms, start_period_ms, retries}, or NULL. */
json_t *sysctr_health_from_config (json_t *config);

G_END_DECLS
