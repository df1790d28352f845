/* Host files: what sysctr writes on the host for its containers (units,
 * tmpfiles.d, hostfs) and the directories it makes for them.
 *
 * Ownership is by path, recorded in containers/.owners.json before a file is
 * created: a file is a container's only if sysctr created it for that
 * container; content never makes a file anyone's (an image shipping the
 * exact bytes of another container's unit takes nothing over). A path that
 * exists and is not a regular file owned by the container, or that another
 * container owns, is refused before the commit point; a FIFO, a directory
 * or a dangling symlink is never opened as if it were the file.
 */
#pragma once

#include "context.h"

G_BEGIN_DECLS

/* Opens the directory that holds host file @path (absolute, as seen when
 * the tree boots), resolving symlinks inside the root: in a --root tree an
 * absolute link such as etc/foo -> /etc/foo points into the tree, never at
 * the build host's files. With @create the directory is made (recorded, so
 * that it goes when it is empty again). Never a directory inside
 * /var/lib/sysctr. */
gboolean sysctr_host_open_parent (SysctrContext *ctx, const char *path, gboolean create, int *out_dfd,
                                  const char **out_base, GError **error);

/* Reads a small regular host file; NULL with no error when it is absent. */
GBytes *sysctr_host_read (SysctrContext *ctx, const char *path, gsize max_size, GError **error);

/* Before the commit point: every file @info lists may be written for
 * @name (absent and unclaimed, or a regular file @name owns). */
gboolean sysctr_host_files_check (SysctrContext *ctx, const char *name, json_t *info, GError **error);

/* Makes the host files match @info's slot: writes what differs, removes
 * what @old_info had and @info does not. Files an admin edited are kept and
 * reported (@report: reconcile keeps quiet about edits it already knows).
 * *out_changed says whether any unit file changed. */
gboolean sysctr_host_files_apply (SysctrContext *ctx, const char *name, json_t *info, json_t *old_info, gboolean report,
                                  gboolean *out_changed, GError **error);

/* Records @name as the owner of the files its deployments list that have
 * no owner yet and still hold what sysctr wrote (deployments made before
 * ownership was recorded); forgets owners that are no longer installed. */
gboolean sysctr_host_owners_repair (SysctrContext *ctx, GError **error);

/* Removes the directories sysctr created that are empty now. */
gboolean sysctr_host_dirs_prune (SysctrContext *ctx, GError **error);

G_END_DECLS
