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

G_END_DECLS
