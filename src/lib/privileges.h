/* Privileges: what an image asks for beyond a locked-down container, and
 * what the admin granted.
 *
 * A container granted nothing gets its own mount/pid/ipc/uts namespaces, a
 * read-only root, podman's default capabilities, the default seccomp
 * filter, masked /proc and /sys paths, no_new_privs, a nodev /dev, and units
 * whose only host-side command is sysctr's shim. Everything beyond that
 * which the *image* supplies (its unit and socket templates and labels,
 * config.json template, tmpfiles, hostfs) is asked for as one of a few
 * named privileges, each with details (paths, capabilities, units, lines).
 * What sysctr renders itself never asks for anything.
 *
 * The asks and the grant are JSON objects: {"host-mounts": ["/ (rw)"], ...},
 * details sorted and unique. A grant covers an ask when it holds every
 * detail ("P (ro)" is covered by "P (rw)"): a later version that adds a
 * bind under an already granted privilege asks for more.
 */
#pragma once

#include <jansson.h>

#include "sysctr-util.h"

G_BEGIN_DECLS

typedef enum
{
  SYSCTR_PRIV_HOST_EXEC,       /* unit lines that run commands on the host or change how it runs them */
  SYSCTR_PRIV_HOST_FILES,      /* host files and directories outside the container's own */
  SYSCTR_PRIV_HOST_MOUNTS,     /* bind mounts of host paths */
  SYSCTR_PRIV_HOST_NAMESPACES, /* pid/ipc/uts/mount shared with the host, namespaces joined */
  SYSCTR_PRIV_CAPABILITIES,    /* capabilities beyond the default set */
  SYSCTR_PRIV_DEVICES,         /* device nodes, device cgroup rules */
  SYSCTR_PRIV_UNCONFINED,      /* no_new_privs off, paths unmasked, no or a permissive seccomp filter */
  SYSCTR_PRIV_UNIT_DEPS,       /* dependencies on, or ordering before, other units */
  SYSCTR_N_PRIVILEGES,
} SysctrPrivilege;

extern const char *const sysctr_privilege_names[SYSCTR_N_PRIVILEGES];

/* What belongs to the container: asking for these is asking for nothing. */
typedef struct
{
  const char *name;
  const char *slot_path;    /* DESTDIR, as seen at boot */
  const char *own_dirs[4];  /* STATE_DIRECTORY/NAME, RUN_DIRECTORY/NAME, CONF_DIRECTORY/NAME; NULL-terminated */
  GHashTable *values;       /* rendered values: EXEC_* are sysctr's own command lines */
  GHashTable *sysctr_units; /* units that sysctr wrote for its containers (may be NULL) */
} SysctrOwn;

json_t *sysctr_asks_new (void);
void sysctr_ask (json_t *asks, SysctrPrivilege p, const char *fmt, ...) G_GNUC_PRINTF (3, 4);

/* Classifies what an image supplied; each adds what it finds to @asks. */
void sysctr_classify_unit (json_t *asks, const SysctrOwn *own, const char *text);
void sysctr_classify_unit_dependency (json_t *asks, const SysctrOwn *own, const char *directive, const char *units);
void sysctr_classify_tmpfiles (json_t *asks, const SysctrOwn *own, const char *text);
void sysctr_classify_host_file (json_t *asks, const SysctrOwn *own, const char *path);
/* Fails on what is never granted (a writable bind into /var/lib/sysctr). */
gboolean sysctr_classify_config (json_t *asks, const SysctrOwn *own, json_t *config, GError **error);

/* "host-mounts,capabilities" -> a mask of (1 << SysctrPrivilege). */
gboolean sysctr_privileges_parse (const char *csv, guint *mask, GError **error);
/* @previous (may be NULL) plus what @asks holds of the privileges in @mask
 * (all of them with @all). */
json_t *sysctr_privileges_grant (json_t *asks, json_t *previous, guint mask, gboolean all);
/* What @asks holds that @grant does not cover: an empty object when none. */
json_t *sysctr_privileges_missing (json_t *asks, json_t *grant);
/* One line per privilege, "PREFIXname: detail, detail" */
char *sysctr_privileges_describe (json_t *privs, const char *prefix);
/* "name,name" */
char *sysctr_privileges_names (json_t *privs);

G_END_DECLS
