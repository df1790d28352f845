/* Layers checked out in order onto a deployment's rootfs: union mode,
 * whiteouts applied, files hardlinked from the store. */
#pragma once

#include <ostree.h>

G_BEGIN_DECLS

/* Checks out @layer_digests (manifest order) into @slot_dfd/"rootfs",
 * which must not exist yet. */
gboolean sysctr_deploy_rootfs (OstreeRepo *repo, char **layer_digests, int slot_dfd, GCancellable *cancellable,
                               GError **error);

/* Opens @path inside the tree at @root_dfd the way the container will
 * see it: symlinks resolved inside the root, never outside. With
 * @create_dir/@create_file, missing leaves are made (parents as dirs). */
gboolean sysctr_open_in_root (int root_dfd, const char *path, gboolean create_dir, gboolean create_file, int *out_fd,
                              GError **error);

/* sysctr_open_in_root, for a path that may be absent: TRUE and
 * *out_fd = -1 when it is. */
gboolean sysctr_open_in_root_optional (int root_dfd, const char *path, int *out_fd, GError **error);

/* A real fd (O_RDONLY | @flags, e.g. O_DIRECTORY) for the O_PATH fd
 * @path_fd, through /proc/self/fd: the one way sysctr reopens what it
 * resolved inside a root. -1 with errno set on failure. */
int sysctr_reopen_fd (int path_fd, int flags);

G_END_DECLS
