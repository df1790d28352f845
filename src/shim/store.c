/* store.c: the store is never written through a container.
 *
 * /var/lib/sysctr holds the OSTree repo, whose objects are hardlinked into
 * every deployment's rootfs: a writable bind of anything below it would let
 * a payload change the files of every container that shares an object (and
 * corrupt the repo). So a writable bind whose source resolves into a state
 * directory is refused whatever the config says, checked on the opened fd
 * (symlinks and bind-mount aliases resolved by the kernel), once on the host
 * while validating and again in the child when the mount is made. A
 * writable bind of a parent (/, /var, /var/lib) is allowed when granted, and
 * the state directory is made read-only inside the container (mounts.c).
 *
 * The state directories are the compiled-in /var/lib/sysctr and, for a
 * bundle at DIR/containers/NAME.N (a --root tree, the tests), DIR.
 */
#include "shim.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"

static int
add_store (struct shim_config *c, const char *path)
{
  struct stat st;
  char real[PATH_MAX];
  if (c->n_store >= sizeof c->store_dev / sizeof c->store_dev[0])
    return 0;
  if (stat (path, &st) < 0 || !S_ISDIR (st.st_mode) || !realpath (path, real))
    return 0; /* no state directory there: nothing to protect */
  for (size_t i = 0; i < c->n_store; i++)
    if (c->store_dev[i] == st.st_dev && c->store_ino[i] == st.st_ino)
      return 0;
  c->store_path[c->n_store] = strdup (real);
  if (!c->store_path[c->n_store])
    return -ENOMEM;
  c->store_dev[c->n_store] = st.st_dev;
  c->store_ino[c->n_store] = st.st_ino;
  c->n_store++;
  return 0;
}

int
store_init (struct shim_config *c, const char *bundle_abs)
{
  char parent[PATH_MAX];
  const char *slash;
  int r;

  if ((r = add_store (c, SYSCTR_STATE_DIR)) < 0)
    return shim_errorf (r, "state directory");
  /* BUNDLE = STATE/containers/NAME.N */
  slash = bundle_abs ? strrchr (bundle_abs, '/') : NULL;
  if (!slash || (size_t) (slash - bundle_abs) >= sizeof parent)
    return 0;
  memcpy (parent, bundle_abs, (size_t) (slash - bundle_abs));
  parent[slash - bundle_abs] = '\0';
  slash = strrchr (parent, '/');
  if (!slash || strcmp (slash, "/containers") != 0)
    return 0;
  parent[slash - parent] = '\0';
  if ((r = add_store (c, *parent ? parent : "/")) < 0)
    return shim_errorf (r, "state directory");
  return 0;
}

static bool
is_store (const struct shim_config *c, const struct stat *st)
{
  for (size_t i = 0; i < c->n_store; i++)
    if (c->store_dev[i] == st->st_dev && c->store_ino[i] == st->st_ino)
      return true;
  return false;
}

/* The directory holding the O_PATH fd @fd: for a directory, itself. */
static int
dir_of (int fd, int *ret)
{
  struct stat st, st2;
  char link[64], path[PATH_MAX];
  ssize_t n;
  char *slash;
  int d;

  if (fstat (fd, &st) < 0)
    return negative_errno ();
  if (S_ISDIR (st.st_mode))
    {
      d = fcntl (fd, F_DUPFD_CLOEXEC, 3);
      if (d < 0)
        return negative_errno ();
      *ret = d;
      return 0;
    }
  snprintf (link, sizeof link, "/proc/self/fd/%d", fd);
  n = readlink (link, path, sizeof path - 1);
  if (n <= 0 || path[0] != '/')
    return n < 0 ? negative_errno () : -EIO;
  path[n] = '\0';
  slash = strrchr (path, '/');
  *slash = '\0';
  d = open (*path ? path : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (d < 0)
    return negative_errno ();
  /* the name must still be this file: otherwise it moved meanwhile */
  if (fstatat (d, slash + 1, &st2, AT_SYMLINK_NOFOLLOW) < 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino)
    {
      close (d);
      return -ESTALE;
    }
  *ret = d;
  return 0;
}

int
store_check_source (const struct shim_config *c, int src_fd, const char *what)
{
  _cleanup_close_ int cur = -1;
  int r;

  if (c->n_store == 0)
    return 0;
  if ((r = dir_of (src_fd, &cur)) < 0)
    return shim_errorf (r, "%s: resolving the bind source", what);
  /* Up through "..": each ancestor (and the source itself) must not be a
   * state directory. A bind-mount alias of the store has its inode. */
  for (int depth = 0; depth < 4096; depth++)
    {
      struct stat st, up_st;
      int up;
      if (fstat (cur, &st) < 0)
        return shim_errorf (negative_errno (), "%s: resolving the bind source", what);
      if (is_store (c, &st))
        return shim_refusef ("%s: a writable bind of sysctr's state directory (the image store, deployments) is "
                             "never allowed",
                             what);
      up = openat (cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (up < 0)
        return shim_errorf (negative_errno (), "%s: resolving the bind source", what);
      if (fstat (up, &up_st) < 0)
        {
          close (up);
          return shim_errorf (negative_errno (), "%s: resolving the bind source", what);
        }
      close (cur);
      cur = up;
      if (up_st.st_dev == st.st_dev && up_st.st_ino == st.st_ino)
        return 0; /* the root */
    }
  return shim_refusef ("%s: bind source nested too deeply", what);
}

/* For a writable bind of @src_path (resolved, absolute): the part of
 * state directory @i below it ("var/lib/sysctr" for "/"), or NULL when that
 * directory is not inside it. */
const char *
store_inside (const struct shim_config *c, const char *src_path, size_t i)
{
  size_t n = strlen (src_path);
  const char *s = c->store_path[i];
  if (n == 1 && src_path[0] == '/')
    return s + 1;
  if (strncmp (s, src_path, n) == 0 && s[n] == '/')
    return s + n + 1;
  return NULL;
}
