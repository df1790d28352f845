/* mounts.c: build the container's root in the child's fresh mount namespace.
 *
 * Every destination is resolved inside the new root with openat2(2)
 * RESOLVE_IN_ROOT, so a symlink in the image (even an absolute one such as
 * /data -> /etc) can never send a mount out to the host, and every mount is
 * attached to the opened fd with the new mount API (open_tree/fsmount +
 * move_mount), so nothing is re-resolved by path after the check
 * (CVE-2021-30465 was exactly that race in runc).
 *
 * The rootfs is a checkout of hardlinks into the OSTree repo: it is never
 * written. Missing mountpoints are only created inside tmpfs instances this
 * code mounted itself.
 */
#include "shim.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x00001000U
#endif

/* Mount ids of the tmpfs instances mounted here: the only places where a
 * missing mountpoint may be created. */
static uint64_t own_tmpfs[64];
static size_t n_own_tmpfs;

/* linux.mountLabel, or NULL */
static const char *mount_label;

static int
sys_openat2 (int dirfd, const char *path, uint64_t flags, uint64_t resolve)
{
  struct open_how how = { .flags = flags, .mode = 0, .resolve = resolve };
  return (int) syscall (SYS_openat2, dirfd, path, &how, sizeof how);
}

/* false when the kernel cannot tell (statx without STATX_MNT_ID: < 5.8);
 * then no mountpoint is ever created, which only restricts. */
static bool
mnt_id_of (int fd, uint64_t *ret)
{
  struct statx stx;
  if (statx (fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) < 0 || !(stx.stx_mask & STATX_MNT_ID))
    return false;
  *ret = stx.stx_mnt_id;
  return true;
}

static void
remember_own_tmpfs (int mnt_fd)
{
  uint64_t id;
  if (n_own_tmpfs < sizeof own_tmpfs / sizeof own_tmpfs[0] && mnt_id_of (mnt_fd, &id))
    own_tmpfs[n_own_tmpfs++] = id;
}

static bool
is_own_tmpfs (int fd)
{
  uint64_t id;
  if (!mnt_id_of (fd, &id))
    return false;
  for (size_t i = 0; i < n_own_tmpfs; i++)
    if (own_tmpfs[i] == id)
      return true;
  return false;
}

static int
open_in_root (int root_fd, const char *path)
{
  /* No magic links: /proc/self/root and friends would lead out of the root. */
  int fd = sys_openat2 (root_fd, path, O_PATH | O_CLOEXEC, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
  return fd < 0 ? -errno : fd;
}

/* Resolve PATH inside the root; create what is missing, but only inside a
 * tmpfs we mounted. Returns an O_PATH fd. */
static int
resolve_mountpoint (int root_fd, const char *path, bool want_dir, int *ret)
{
  char prefix[4096];
  size_t plen = 0;
  _cleanup_close_ int cur = -1;
  const char *p = path;
  int fd;

  fd = open_in_root (root_fd, path);
  if (fd >= 0)
    {
      *ret = fd;
      return 0;
    }
  if (fd != -ENOENT)
    return shim_errorf (fd, "mount destination %s (resolved inside the rootfs)", path);
  if (strlen (path) >= sizeof prefix)
    return shim_errorf (-ENAMETOOLONG, "mount destination %s", path);

  cur = fcntl (root_fd, F_DUPFD_CLOEXEC, 3);
  if (cur < 0)
    return shim_errorf (-errno, "dup");
  prefix[0] = '\0';
  while (*p)
    {
      size_t len;
      int next;
      bool last;
      while (*p == '/')
        p++;
      len = strcspn (p, "/");
      if (len == 0)
        break;
      last = p[len + strspn (p + len, "/")] == '\0';
      prefix[plen++] = '/';
      memcpy (prefix + plen, p, len);
      plen += len;
      prefix[plen] = '\0';

      next = open_in_root (root_fd, prefix);
      if (next == -ENOENT)
        {
          char name[256];
          if (len >= sizeof name)
            return shim_errorf (-ENAMETOOLONG, "mount destination %s", path);
          memcpy (name, p, len);
          name[len] = '\0';
          {
            char target[256];
            ssize_t tl = readlinkat (cur, name, target, sizeof target - 1);
            if (tl > 0)
              {
                target[tl] = '\0';
                return shim_refusef ("mount destination %s: %s is a symlink to %s, which does not exist inside "
                                     "the rootfs (symlinks are resolved inside the rootfs, never on the host)",
                                     path, prefix, target);
              }
          }
          if (!is_own_tmpfs (cur))
            return shim_refusef ("mount destination %s: %s does not exist in the rootfs, and the rootfs is never "
                                 "written (add it to the image or mount a tmpfs on a parent)",
                                 path, prefix);
          if (last && !want_dir)
            {
              int f = openat (cur, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
              if (f < 0)
                return shim_errorf (-errno, "creating mountpoint %s", prefix);
              close (f);
            }
          else if (mkdirat (cur, name, 0755) < 0)
            return shim_errorf (-errno, "creating mountpoint %s", prefix);
          next = open_in_root (root_fd, prefix);
        }
      if (next < 0)
        return shim_errorf (next, "mount destination %s: %s", path, prefix);
      close (cur);
      cur = next;
      p += len;
    }
  *ret = steal_fd (&cur);
  return 0;
}

static int
attach (int tree_fd, int dst_fd, const char *dest)
{
  if (move_mount (tree_fd, "", dst_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return shim_errorf (-errno, "mounting on %s", dest);
  return 0;
}

static int
set_attr (int tree_fd, bool recursive, uint64_t set, uint64_t clr, uint64_t propagation, const char *dest)
{
  struct mount_attr attr = { .attr_set = set, .attr_clr = clr, .propagation = propagation };
  if (!set && !clr && !propagation)
    return 0;
  if (mount_setattr (tree_fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr, sizeof attr) < 0)
    return shim_errorf (-errno, "setting mount flags on %s", dest);
  return 0;
}

/* A detached copy of a path in the current (child's) mount namespace. */
static int
clone_tree (int dirfd, const char *path, bool recursive, const char *what)
{
  int fd = open_tree (
      dirfd, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0) | (*path ? 0 : AT_EMPTY_PATH));
  if (fd < 0)
    return shim_errorf (-errno, "cloning mount %s", what);
  return fd;
}

static int
new_fs (const char *type, char *const *data, uint64_t attr, const char *dest)
{
  _cleanup_close_ int fs = fsopen (type, FSOPEN_CLOEXEC);
  int mnt;

  if (fs < 0)
    return shim_errorf (-errno, "%s on %s: fsopen", type, dest);
  /* linux.mountLabel, where SELinux is enabled (config.c): the label of
   * what the container writes in its own filesystems */
  if (mount_label && (strcmp (type, "tmpfs") == 0 || strcmp (type, "devpts") == 0 || strcmp (type, "mqueue") == 0)
      && fsconfig (fs, FSCONFIG_SET_STRING, "context", mount_label, 0) < 0)
    return shim_errorf (-errno, "%s on %s: SELinux context %s", type, dest, mount_label);
  for (char *const *d = data; d && *d; d++)
    {
      char key[64];
      const char *eq = strchr (*d, '=');
      int r;
      if (eq)
        {
          snprintf (key, sizeof key, "%.*s", (int) (eq - *d), *d);
          r = fsconfig (fs, FSCONFIG_SET_STRING, key, eq + 1, 0);
        }
      else
        r = fsconfig (fs, FSCONFIG_SET_FLAG, *d, NULL, 0);
      if (r < 0)
        return shim_errorf (-errno, "%s on %s: option %s", type, dest, *d);
    }
  if (fsconfig (fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return shim_errorf (-errno, "%s on %s: creating the filesystem", type, dest);
  mnt = fsmount (fs, FSMOUNT_CLOEXEC, (unsigned int) attr);
  if (mnt < 0)
    return shim_errorf (-errno, "%s on %s: fsmount", type, dest);
  if (strcmp (type, "tmpfs") == 0)
    remember_own_tmpfs (mnt);
  return mnt;
}

static int
mount_fs_at (int root_fd, const char *dest, const char *type, char *const *data, uint64_t attr)
{
  _cleanup_close_ int dst = -1;
  _cleanup_close_ int mnt = -1;
  int r;

  if ((r = resolve_mountpoint (root_fd, dest, true, &dst)) < 0)
    return r;
  mnt = new_fs (type, data, attr, dest);
  if (mnt < 0)
    return mnt;
  /* new_fs() remembered a tmpfs already: a mount keeps its id when it is attached. */
  return attach (mnt, dst, dest);
}

static int readonly_path (int root_fd, const char *path);

/* @c: for a bind from the config (checked against the store), else NULL. */
static int
bind_host_path (const struct shim_config *c, int root_fd, const char *host_path, const char *dest, bool recursive,
                uint64_t set, uint64_t clr, uint64_t propagation, bool propagation_rec)
{
  _cleanup_close_ int src = -1;
  _cleanup_close_ int dst = -1;
  _cleanup_close_ int tree = -1;
  bool writable = !(set & MOUNT_ATTR_RDONLY);
  char what[256];
  struct stat st;
  int r;

  src = open (host_path, O_PATH | O_CLOEXEC);
  if (src < 0)
    return shim_errorf (-errno, "bind source %s", host_path);
  snprintf (what, sizeof what, "bind source %s", host_path);
  /* again, on what is opened now: the path may have changed since it was
   * validated */
  if (c && writable && (r = store_check_source (c, src, what)) < 0)
    return r;
  if (fstat (src, &st) < 0)
    return shim_errorf (-errno, "bind source %s", host_path);
  if ((r = resolve_mountpoint (root_fd, dest, S_ISDIR (st.st_mode), &dst)) < 0)
    return r;
  tree = clone_tree (src, "", recursive, host_path);
  if (tree < 0)
    return tree;
  /* Flags first, while the copy is detached: the payload never sees it writable. */
  if ((r = set_attr (tree, true, set, clr, 0, dest)) < 0)
    return r;
  if ((r = attach (tree, dst, dest)) < 0)
    return r;
  /* Propagation can only be changed once the copy is in our namespace. */
  if (propagation && (r = set_attr (tree, propagation_rec, 0, 0, propagation, dest)) < 0)
    return r;
  /* A granted writable bind of a parent of the state directory (/, /var):
   * the store inside it stays read-only. */
  if (c && writable && S_ISDIR (st.st_mode))
    {
      char link[64], real[4096], inner[4096];
      ssize_t n;
      snprintf (link, sizeof link, "/proc/self/fd/%d", src);
      n = readlink (link, real, sizeof real - 1);
      if (n <= 0)
        return shim_errorf (n < 0 ? -errno : -EIO, "%s", what);
      real[n] = '\0';
      for (size_t i = 0; i < c->n_store; i++)
        {
          const char *rel = store_inside (c, real, i);
          if (!rel)
            continue;
          if ((size_t) snprintf (inner, sizeof inner, "%s/%s", strcmp (dest, "/") ? dest : "", rel) >= sizeof inner)
            return shim_errorf (-ENAMETOOLONG, "%s", what);
          if ((r = readonly_path (root_fd, inner)) < 0)
            return r;
        }
    }
  return 0;
}

static bool
config_mounts (const struct shim_config *c, const char *dest)
{
  for (size_t i = 0; i < c->n_mounts; i++)
    if (strcmp (c->mounts[i].destination, dest) == 0)
      return true;
  return false;
}

/* A minimal /dev, as crun and runc make it: device nodes bound from the host
 * (no mknod, so nothing depends on the rootfs allowing devices). */
static int
populate_dev (const struct shim_config *c, int root_fd)
{
  static const char *const devices[] = { "null", "zero", "full", "tty", "random", "urandom" };
  static const char *const links[][2] = {
    { "fd", "/proc/self/fd" },       { "stdin", "/proc/self/fd/0" }, { "stdout", "/proc/self/fd/1" },
    { "stderr", "/proc/self/fd/2" }, { "ptmx", "pts/ptmx" },         { "core", "/proc/kcore" },
  };
  _cleanup_close_ int dev = open_in_root (root_fd, "/dev");
  char host[64], dest[64];
  int r;

  if (dev < 0)
    return shim_errorf (dev, "/dev");
  for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++)
    {
      snprintf (host, sizeof host, "/dev/%s", devices[i]);
      snprintf (dest, sizeof dest, "/dev/%s", devices[i]);
      if ((r = bind_host_path (NULL, root_fd, host, dest, false, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, 0, 0, false))
          < 0)
        return r;
    }
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    if (symlinkat (links[i][1], dev, links[i][0]) < 0 && errno != EEXIST)
      return shim_errorf (-errno, "/dev/%s", links[i][0]);

  if (!config_mounts (c, "/dev/pts"))
    {
      static char *const pts_data[] = { "newinstance", "ptmxmode=0666", "mode=0620", "gid=5", NULL };
      if ((r = mount_fs_at (root_fd, "/dev/pts", "devpts", pts_data, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC)) < 0)
        return r;
    }
  if (!config_mounts (c, "/dev/shm"))
    {
      static char *const shm_data[] = { "mode=1777", "size=65536k", NULL };
      if ((r = mount_fs_at (root_fd, "/dev/shm", "tmpfs", shm_data,
                            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC))
          < 0)
        return r;
    }
  return 0;
}

static int
do_mount (const struct shim_config *c, int root_fd, const struct shim_mount *m)
{
  int r;
  uint64_t attr = m->attr_set;

  switch (m->kind)
    {
    case SHIM_MOUNT_BIND:
      return bind_host_path (c, root_fd, m->source, m->destination, m->recursive, m->attr_set, m->attr_clr,
                             m->propagation, m->propagation_rec);
    case SHIM_MOUNT_CGROUP:
      return bind_host_path (NULL, root_fd, "/sys/fs/cgroup", m->destination, true,
                             MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, 0, 0, false);
    case SHIM_MOUNT_FS:
      if (strcmp (m->type, "proc") == 0 || strcmp (m->type, "sysfs") == 0 || strcmp (m->type, "mqueue") == 0)
        attr |= MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
      /* /dev is always nodev: a payload that could mknod there would reach
       * the host's disks. The standard nodes (and linux.devices) are bind
       * mounts of their own and keep working. */
      if (strcmp (m->destination, "/dev") == 0)
        attr |= MOUNT_ATTR_NODEV;
      /* /sys is read-only whatever the config says: it only restricts. */
      if (strcmp (m->type, "sysfs") == 0)
        attr |= MOUNT_ATTR_RDONLY;
      if ((r = mount_fs_at (root_fd, m->destination, m->type, m->data, attr)) < 0)
        return r;
      if (strcmp (m->type, "tmpfs") == 0 && strcmp (m->destination, "/dev") == 0)
        return populate_dev (c, root_fd);
      return 0;
    }
  return shim_errorf (-EINVAL, "mount on %s", m->destination);
}

static int
mask_path (int root_fd, const char *path)
{
  _cleanup_close_ int fd = open_in_root (root_fd, path);
  _cleanup_close_ int tree = -1;
  struct stat st;

  if (fd == -ENOENT)
    return 0;
  if (fd < 0)
    return shim_errorf (fd, "masked path %s", path);
  if (fstat (fd, &st) < 0)
    return shim_errorf (-errno, "masked path %s", path);
  if (S_ISDIR (st.st_mode))
    {
      static char *const data[] = { "size=0", "nr_inodes=1", NULL };
      tree = new_fs ("tmpfs", data, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, path);
    }
  else
    tree = clone_tree (AT_FDCWD, "/dev/null", false, "/dev/null");
  if (tree < 0)
    return tree;
  return attach (tree, fd, path);
}

static int
readonly_path (int root_fd, const char *path)
{
  _cleanup_close_ int fd = open_in_root (root_fd, path);
  _cleanup_close_ int tree = -1;
  int r;

  if (fd == -ENOENT)
    return 0;
  if (fd < 0)
    return shim_errorf (fd, "read-only path %s", path);
  /* A bind of the path onto itself, so only it (not its whole mount) turns read-only. */
  tree = clone_tree (fd, "", true, path);
  if (tree < 0)
    return tree;
  if ((r = set_attr (tree, true, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, 0, 0,
                     path))
      < 0)
    return r;
  return attach (tree, fd, path);
}

static bool
covers (const char *mount_dest, const char *path)
{
  size_t n = strlen (mount_dest);
  return strncmp (mount_dest, path, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

int
mounts_setup (const struct shim_config *c, int rootfs_fd, const char *root_path, const char *notify_dir)
{
  _cleanup_close_ int root = -1;
  _cleanup_close_ int tree = -1;
  struct stat st_expected, st;
  bool has_dev = false, has_run = false;
  int r;

  mount_label = c->mount_label;
  /* Nothing done below may propagate back to the host; rootfsPropagation
   * other than slave is applied after pivot_root, which refuses a shared parent. */
  if (mount (NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
    return shim_errorf (-errno, "making / a recursive slave");

  /* The fd from the host namespace cannot be cloned here (open_tree only
   * copies mounts of the caller's namespace), so reopen by path and check it
   * is still the directory that was validated. */
  root = open (root_path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root < 0)
    return shim_errorf (-errno, "rootfs %s", root_path);
  if (fstat (rootfs_fd, &st_expected) < 0 || fstat (root, &st) < 0)
    return shim_errorf (-errno, "rootfs %s", root_path);
  if (st.st_dev != st_expected.st_dev || st.st_ino != st_expected.st_ino)
    return shim_refusef ("rootfs %s: replaced while starting", root_path);

  tree = clone_tree (root, "", true, root_path);
  if (tree < 0)
    return tree;
  /* Read-only before it is attached: the payload never sees a writable root. */
  if (c->root_readonly && (r = set_attr (tree, true, MOUNT_ATTR_RDONLY, 0, 0, "/")) < 0)
    return r;
  if ((r = attach (tree, root, "rootfs")) < 0)
    return r;

  for (size_t i = 0; i < c->n_mounts; i++)
    {
      has_dev |= strcmp (c->mounts[i].destination, "/dev") == 0;
      if (notify_dir)
        has_run |= covers (c->mounts[i].destination, SHIM_NOTIFY_CONTAINER_DIR);
    }
  if (!has_dev)
    {
      static char *const dev_data[] = { "mode=0755", "size=65536k", NULL };
      if ((r = mount_fs_at (tree, "/dev", "tmpfs", dev_data, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC))
          < 0)
        return r;
      if ((r = populate_dev (c, tree)) < 0)
        return r;
    }

  for (size_t i = 0; i < c->n_mounts; i++)
    if ((r = do_mount (c, tree, &c->mounts[i])) < 0)
      return r;

  if (notify_dir)
    {
      if (!has_run)
        {
          static char *const run_data[] = { "mode=0755", "size=1024k", NULL };
          if ((r = mount_fs_at (tree, "/run", "tmpfs", run_data, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)) < 0)
            return r;
        }
      if ((r
           = bind_host_path (NULL, tree, notify_dir, SHIM_NOTIFY_CONTAINER_DIR, false,
                             MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, 0, 0, false))
          < 0)
        return r;
    }

  /* linux.devices: the host's nodes, each a bind of its own on the nodev /dev */
  for (size_t i = 0; i < c->n_devices; i++)
    if ((r = bind_host_path (NULL, tree, c->devices[i].path, c->devices[i].path, false,
                             MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, 0, 0, false))
        < 0)
      return r;

  for (char **p = c->masked_paths; p && *p; p++)
    if ((r = mask_path (tree, *p)) < 0)
      return r;
  for (char **p = c->readonly_paths; p && *p; p++)
    if ((r = readonly_path (tree, *p)) < 0)
      return r;

  if (fchdir (tree) < 0)
    return shim_errorf (-errno, "chdir to the rootfs");
  /* pivot_root(".", ".") stacks the old root on top of the new one; detaching
   * it leaves no path back to the host (bubblewrap and runc do the same). */
  if (syscall (SYS_pivot_root, ".", ".") < 0)
    return shim_errorf (-errno, "pivot_root");
  if (umount2 (".", MNT_DETACH) < 0)
    return shim_errorf (-errno, "detaching the old root");
  if (chdir ("/") < 0)
    return shim_errorf (-errno, "chdir /");
  if (c->rootfs_propagation != MS_SLAVE && mount (NULL, "/", NULL, MS_REC | c->rootfs_propagation, NULL) < 0)
    return shim_errorf (-errno, "rootfsPropagation");
  return 0;
}
