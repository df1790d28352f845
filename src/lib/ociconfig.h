/* The config.json an image supplies (atomic's config.json.template or
 * /exports/config.json), made into what sysctr-shim and runc run, so that
 * images built for `atomic install --system` and bundles from `runc spec`
 * run unchanged:
 *
 *   normalised   pre-1.0 layouts (linux.capabilities, linux.rlimits, a flat
 *                capability list, linux.apparmorProfile) into runtime-spec 1.0;
 *   translated   linux.resources into unit directives (MemoryMax=, CPUWeight=,
 *                CPUQuota=, TasksMax=, IOWeight=, DeviceAllow=): the container
 *                stays in the unit's cgroup, where systemd enforces them;
 *   ignored      with one warning, what only restricts and cannot apply here
 *                (an LSM label without that LSM, data options on a bind,
 *                platform, terminal);
 *   refused      with one line, what would change what the payload sees or
 *                does and cannot be honoured (non-empty hooks, a bind source
 *                under /dev, /sys or /proc that this host lacks).
 *
 * Bind sources missing on the host under ordinary directories are created
 * as atomic did, with tmpfiles.d lines, and recorded so that uninstall
 * removes them when they are empty.
 */
#pragma once

#include "render.h"

G_BEGIN_DECLS

gboolean sysctr_config_normalize (const SysctrRenderInput *in, SysctrRendered *r, json_t *config, GError **error);

/* Mount points must exist in the read-only rootfs: made in the deployment
 * (new directories or empty files, never a store file), once the host
 * files are known (a bind of a hostfs file needs a file to mount on). */
gboolean sysctr_config_make_mountpoints (const SysctrRenderInput *in, SysctrRendered *r, json_t *config,
                                         GError **error);

/* A bind source as sysctr makes and tracks it: canonical ("/var/run/" is
 * "/var/run"), and under /var/run or /var/lock, the /run path those
 * symlink to (systemd's own tmpfiles.d makes the symlinks; a line of ours
 * for /var/run would turn it into a directory at boot). */
char *sysctr_bind_source_canonical (const char *source);

/* Whether a bind source is the kernel's (under /dev, /sys, /proc), /run
 * itself, or a file every system has (/etc/resolv.conf, /etc/hosts,
 * /etc/hostname, /etc/localtime, /etc/machine-id): a tree being built
 * (--root) may have none of them yet; they come with the OS or at boot. */
gboolean sysctr_bind_source_made_at_boot (const char *canonical);

/* Whether an LSM is enabled on this host: "apparmor" or "selinux". */
gboolean sysctr_lsm_enabled (const char *which);

G_END_DECLS
