/* Talking to systemd (PID 1) over D-Bus with sd-bus. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct SysctrSystemd SysctrSystemd;

/* Connects to systemd's private socket (as systemctl does for root), or
 * the system bus. */
SysctrSystemd *sysctr_systemd_connect (GError **error);
void sysctr_systemd_free (SysctrSystemd *sd);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SysctrSystemd, sysctr_systemd_free)

gboolean sysctr_systemd_reload (SysctrSystemd *sd, GError **error);
gboolean sysctr_systemd_enable (SysctrSystemd *sd, const char *unit_path_or_name, GError **error);
gboolean sysctr_systemd_disable (SysctrSystemd *sd, const char *unit, GError **error);
/* Start/stop/restart and wait for the job; a failed job is an error that
 * says the job result. */
gboolean sysctr_systemd_job (SysctrSystemd *sd, const char *method, const char *unit, GError **error);
/* Forgets a failed state (systemctl reset-failed). */
gboolean sysctr_systemd_reset_failed (SysctrSystemd *sd, const char *unit, GError **error);
/* ActiveState ("active", "failed", ...) */
char *sysctr_systemd_active_state (SysctrSystemd *sd, const char *unit, GError **error);
char *sysctr_systemd_unit_property (SysctrSystemd *sd, const char *unit, const char *iface, const char *prop,
                                    GError **error);

/* The service's MainPID, 0 when none or unknown. */
guint32 sysctr_systemd_main_pid (SysctrSystemd *sd, const char *unit);
/* The last @lines messages the unit logged, each "  LINE\n" (one printable
 * line each), or NULL. */
/* A uint32 property ("u"), 0 when it cannot be read. */
guint32 sysctr_systemd_unit_property_u32 (SysctrSystemd *sd, const char *unit, const char *iface, const char *prop);
char *sysctr_systemd_journal_tail (const char *unit, guint lines);

G_END_DECLS
