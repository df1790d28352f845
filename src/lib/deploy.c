#include "config.h"

#include "deploy.h"

#include "store.h"
#include "sysctr-util.h"

#include <linux/openat2.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* ostree's union checkout opens existing directories following symlinks:
 * a layer that made "etc" a symlink to /somewhere, followed by a layer with
 * etc/passwd, would write into /somewhere on the host. Before each layer
 * goes down we walk its directories and replace any non-directory in the
 * rootfs at those paths (what overlayfs does: the upper dir wins). */
static gboolean
guard_dirs (OstreeRepo *repo, const char *dirtree, int rootfs_dir_fd, GCancellable *cancellable, GError **error)
{
  /* Only directories matter, and a dirtree object lists them apart from
   * the files: no file object is read (walking the GFile API would load
   * every file's header, the larger part of an install's time). */
  g_autoptr (GVariant) tree = NULL;
  if (!ostree_repo_load_variant (repo, OSTREE_OBJECT_TYPE_DIR_TREE, dirtree, &tree, error))
    return FALSE;
  g_autoptr (GVariant) dirs = g_variant_get_child_value (tree, 1);
  gsize n = g_variant_n_children (dirs);
  for (gsize i = 0; i < n; i++)
    {
      const char *name = NULL;
      g_autoptr (GVariant) tree_csum = NULL;
      g_autoptr (GVariant) meta_csum = NULL;
      g_variant_get_child (dirs, i, "(&s@ay@ay)", &name, &tree_csum, &meta_csum);
      struct stat st;
      if (fstatat (rootfs_dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        {
          if (errno == ENOENT)
            continue; /* created fresh by the checkout */
          return sysctr_throw_errno (error, "stat %s", name);
        }
      if (!S_ISDIR (st.st_mode))
        {
          if (unlinkat (rootfs_dir_fd, name, 0) < 0)
            return sysctr_throw_errno (error, "replacing %s by a directory", name);
          continue;
        }
      sysctr_autofd int sub = openat (rootfs_dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0)
        return sysctr_throw_errno (error, "opening %s", name);
      g_autofree char *sub_tree = ostree_checksum_from_bytes_v (tree_csum);
      if (!guard_dirs (repo, sub_tree, sub, cancellable, error))
        return FALSE;
    }
  return TRUE;
}

gboolean
sysctr_deploy_rootfs (OstreeRepo *repo, char **layer_digests, int slot_dfd, GCancellable *cancellable, GError **error)
{
  if (mkdirat (slot_dfd, "rootfs", 0755) < 0)
    return sysctr_throw_errno (error, "creating rootfs");
  sysctr_autofd int rootfs_fd = openat (slot_dfd, "rootfs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (rootfs_fd < 0)
    return sysctr_throw_errno (error, "opening rootfs");

  for (guint i = 0; layer_digests[i]; i++)
    {
      g_autofree char *commit = sysctr_store_layer_commit (repo, layer_digests[i]);
      if (commit == NULL)
        return sysctr_throw (error, SYSCTR_ERROR_NOT_FOUND, "layer %s is missing from the store (pull the image again)",
                             layer_digests[i]);
      if (i > 0)
        {
          g_autoptr (GVariant) commit_v = NULL;
          if (!ostree_repo_load_variant (repo, OSTREE_OBJECT_TYPE_COMMIT, commit, &commit_v, error))
            return FALSE;
          g_autoptr (GVariant) root_csum = g_variant_get_child_value (commit_v, 6);
          g_autofree char *root_tree = ostree_checksum_from_bytes_v (root_csum);
          if (!guard_dirs (repo, root_tree, rootfs_fd, cancellable, error))
            {
              sysctr_prefix_error (error, "layer %s", layer_digests[i]);
              return FALSE;
            }
        }
      OstreeRepoCheckoutAtOptions opts = { 0 };
      opts.mode = OSTREE_REPO_CHECKOUT_MODE_NONE;
      opts.overwrite_mode = OSTREE_REPO_CHECKOUT_OVERWRITE_UNION_FILES;
      opts.process_whiteouts = TRUE;
      opts.no_copy_fallback = TRUE;
      if (!ostree_repo_checkout_at (repo, &opts, rootfs_fd, ".", commit, cancellable, error))
        {
          sysctr_prefix_error (error, "checking out layer %s", layer_digests[i]);
          return FALSE;
        }
    }
  return TRUE;
}

gboolean
sysctr_open_in_root (int root_dfd, const char *path, gboolean create_dir, gboolean create_file, int *out_fd,
                     GError **error)
{
  struct open_how how = {
    .flags = O_PATH | O_CLOEXEC,
    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
  };
  const char *rel = path;
  while (*rel == '/')
    rel++;
  if (*rel == '\0')
    rel = ".";
  int fd = syscall (SYS_openat2, root_dfd, rel, &how, sizeof how);
  if (fd >= 0)
    {
      *out_fd = fd;
      return TRUE;
    }
  if (errno != ENOENT || (!create_dir && !create_file))
    return sysctr_throw_errno (error, "resolving %s in the rootfs", path);

  /* Create the missing part, one component at a time, each resolved in root. */
  g_auto (GStrv) parts = g_strsplit (rel, "/", -1);
  GString *cur = g_string_new (NULL);
  gboolean ok = TRUE;
  for (guint i = 0; parts[i] && ok; i++)
    {
      if (*parts[i] == '\0' || strcmp (parts[i], ".") == 0)
        continue;
      if (strcmp (parts[i], "..") == 0)
        {
          ok = sysctr_throw (error, SYSCTR_ERROR_INVALID, "path %s contains \"..\"", path);
          break;
        }
      gboolean last = parts[i + 1] == NULL;
      g_autofree char *parent = g_strdup (cur->len ? cur->str : ".");
      if (cur->len)
        g_string_append_c (cur, '/');
      g_string_append (cur, parts[i]);
      int pfd = syscall (SYS_openat2, root_dfd, cur->str, &how, sizeof how);
      if (pfd >= 0)
        {
          close (pfd);
          continue;
        }
      struct open_how dhow = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC, .resolve = how.resolve };
      sysctr_autofd int dfd = syscall (SYS_openat2, root_dfd, parent, &dhow, sizeof dhow);
      if (dfd < 0)
        {
          ok = sysctr_throw_errno (error, "resolving %s in the rootfs", parent);
          break;
        }
      if (last && create_file)
        {
          int f = openat (dfd, parts[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
          if (f < 0 && errno != EEXIST)
            ok = sysctr_throw_errno (error, "creating mount point %s", path);
          if (f >= 0)
            close (f);
        }
      else if (mkdirat (dfd, parts[i], 0755) < 0 && errno != EEXIST)
        ok = sysctr_throw_errno (error, "creating mount point %s", path);
    }
  g_string_free (cur, TRUE);
  if (!ok)
    return FALSE;
  fd = syscall (SYS_openat2, root_dfd, rel, &how, sizeof how);
  if (fd < 0)
    return sysctr_throw_errno (error, "resolving %s in the rootfs", path);
  *out_fd = fd;
  return TRUE;
}

gboolean
sysctr_open_in_root_optional (int root_dfd, const char *path, int *out_fd, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  *out_fd = -1;
  if (sysctr_open_in_root (root_dfd, path, FALSE, FALSE, out_fd, &local_error))
    return TRUE;
  if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
    return TRUE;
  g_propagate_error (error, g_steal_pointer (&local_error));
  return FALSE;
}

int
sysctr_reopen_fd (int path_fd, int flags)
{
  char proc[64];
  g_snprintf (proc, sizeof proc, "/proc/self/fd/%d", path_fd);
  return open (proc, O_RDONLY | O_CLOEXEC | flags);
}
