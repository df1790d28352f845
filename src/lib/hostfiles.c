/* hostfiles.c: files and directories sysctr writes on the host, owned by
 * path (see hostfiles.h). */
#include "config.h"

#include "hostfiles.h"

#include "containers.h"
#include "deploy.h"
#include "render.h"

#include <string.h>
#include <sys/stat.h>

#define OWNERS_REL "containers/.owners.json"
#define HOST_DIRS_REL "containers/.host-dirs"

/* ---- the state directory is never a host file's parent ---------------------- */

/* Whether the directory @dfd is ROOT/var/lib/sysctr or below it (the
 * kernel's answer: symlinks and bind mounts of it included). */
static gboolean
inside_state_dir (SysctrContext *ctx, int dfd)
{
  struct stat state, st, up_st;
  if (fstat (ctx->state_dfd, &state) < 0)
    return FALSE;
  sysctr_autofd int cur = fcntl (dfd, F_DUPFD_CLOEXEC, 3);
  for (int depth = 0; cur >= 0 && depth < 4096; depth++)
    {
      if (fstat (cur, &st) < 0)
        return FALSE;
      if (st.st_dev == state.st_dev && st.st_ino == state.st_ino)
        return TRUE;
      int up = openat (cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (up < 0 || fstat (up, &up_st) < 0)
        {
          if (up >= 0)
            close (up);
          return FALSE;
        }
      close (cur);
      cur = up;
      if (up_st.st_dev == st.st_dev && up_st.st_ino == st.st_ino)
        return FALSE;
    }
  return FALSE;
}

/* ---- directories sysctr made ---------------------------------------------- */

/* Directories sysctr created on the host (relative to the root), so that
 * removing the last file in them removes them too and an uninstall leaves
 * the tree as it was. Recorded before they are made (write-ahead): a crash
 * leaves at most a name of a directory that never appeared. */
static json_t *
host_dirs_load (SysctrContext *ctx)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  json_t *j = NULL;
  if (sysctr_read_file_at (ctx->state_dfd, HOST_DIRS_REL, 1024 * 1024, &data, &len, NULL))
    j = json_loadb (data, len, 0, NULL);
  if (!json_is_array (j))
    {
      if (j)
        json_decref (j);
      j = json_array ();
    }
  return j;
}

static gboolean
host_dirs_store (SysctrContext *ctx, json_t *dirs, GError **error)
{
  if (json_array_size (dirs) == 0)
    {
      if (unlinkat (ctx->state_dfd, HOST_DIRS_REL, 0) < 0 && errno != ENOENT)
        return sysctr_throw_errno (error, "removing %s", HOST_DIRS_REL);
      return TRUE;
    }
  g_autofree char *text = sysctr_json_dump (dirs, TRUE);
  return sysctr_write_file_at (ctx->state_dfd, HOST_DIRS_REL, text, strlen (text), 0600, error);
}

/* mkdir -p @rel under the root, recording the directories it creates. */
static gboolean
make_host_dir (SysctrContext *ctx, const char *rel, GError **error)
{
  g_autoptr (GPtrArray) missing = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *copy = g_strdup (rel);
  gsize n = strlen (copy);
  for (gsize i = 1; i <= n; i++)
    {
      if (copy[i] != '/' && copy[i] != '\0')
        continue;
      char c = copy[i];
      copy[i] = '\0';
      struct stat st;
      if (fstatat (ctx->root_dfd, copy, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
        g_ptr_array_add (missing, g_strdup (copy));
      copy[i] = c;
    }
  if (missing->len > 0)
    {
      g_autoptr (json_t) dirs = host_dirs_load (ctx);
      for (guint i = 0; i < missing->len; i++)
        {
          gboolean known = FALSE;
          size_t k;
          json_t *d;
          json_array_foreach (dirs, k, d)
            known |= g_strcmp0 (json_string_value (d), missing->pdata[i]) == 0;
          if (!known)
            json_array_append_new (dirs, json_string (missing->pdata[i]));
        }
      if (!host_dirs_store (ctx, dirs, error))
        return FALSE;
    }
  sysctr_autofd int fd = -1;
  return sysctr_open_in_root (ctx->root_dfd, rel, TRUE, FALSE, &fd, error);
}

static gint
longest_first (gconstpointer a, gconstpointer b)
{
  gsize la = strlen (*(const char *const *) a), lb = strlen (*(const char *const *) b);
  return la < lb ? 1 : la > lb ? -1 : 0;
}

gboolean
sysctr_host_dirs_prune (SysctrContext *ctx, GError **error)
{
  g_autoptr (json_t) dirs = host_dirs_load (ctx);
  if (json_array_size (dirs) == 0)
    return host_dirs_store (ctx, dirs, error);
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  size_t i;
  json_t *d;
  json_array_foreach (dirs, i, d)
    if (json_is_string (d) && json_string_value (d)[0] != '/' && !strstr (json_string_value (d), ".."))
      g_ptr_array_add (names, (gpointer) json_string_value (d));
  g_ptr_array_sort (names, longest_first);
  g_autoptr (json_t) kept = json_array ();
  for (guint k = 0; k < names->len; k++)
    {
      g_autofree char *abs = g_strconcat ("/", (char *) names->pdata[k], NULL);
      sysctr_autofd int pdfd = -1;
      const char *base = NULL;
      g_autoptr (GError) local_error = NULL;
      if (!sysctr_host_open_parent (ctx, abs, FALSE, &pdfd, &base, &local_error))
        continue; /* its parent is gone: so is it */
      if (unlinkat (pdfd, base, AT_REMOVEDIR) < 0 && errno != ENOENT)
        json_array_append_new (kept, json_string (names->pdata[k]));
    }
  /* With no container left, what remains in them is the admin's. */
  g_autoptr (GPtrArray) installed = NULL;
  if (sysctr_containers_list (ctx, &installed, NULL) && installed->len == 0)
    json_array_clear (kept);
  return host_dirs_store (ctx, kept, error);
}

gboolean
sysctr_host_open_parent (SysctrContext *ctx, const char *path, gboolean create, int *out_dfd, const char **out_base,
                         GError **error)
{
  /* set first, whatever happens: a caller's base is never NULL */
  *out_base = strrchr (path, '/') + 1;
  g_autofree char *dir = g_path_get_dirname (path + 1);
  if (create && !make_host_dir (ctx, dir, error))
    return FALSE;
  sysctr_autofd int dfd = -1;
  if (!sysctr_open_in_root (ctx->root_dfd, dir, FALSE, FALSE, &dfd, error))
    return FALSE;
  if (inside_state_dir (ctx, dfd))
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: its directory resolves into %s; refused", path,
                         SYSCTR_STATE_DIR);
  *out_dfd = g_steal_fd (&dfd);
  return TRUE;
}

/* ---- what is at a path ------------------------------------------------------ */

typedef enum
{
  HOST_ABSENT,
  HOST_REGULAR,
  HOST_OTHER, /* a directory, fifo, socket, device or symlink */
} HostKind;

typedef struct
{
  HostKind kind;
  const char *type; /* for HOST_OTHER */
  char *sha256;     /* for HOST_REGULAR */
  char *marker;     /* the container its first line names, or NULL */
} HostState;

static void
host_state_clear (HostState *s)
{
  g_clear_pointer (&s->sha256, g_free);
  g_clear_pointer (&s->marker, g_free);
}

static const char *
kind_name (mode_t mode)
{
  switch (mode & S_IFMT)
    {
    case S_IFDIR:
      return "a directory";
    case S_IFIFO:
      return "a FIFO";
    case S_IFSOCK:
      return "a socket";
    case S_IFLNK:
      return "a symlink";
    case S_IFCHR:
    case S_IFBLK:
      return "a device node";
    default:
      return "not a regular file";
    }
}

/* Looks at @path without following a symlink at it or blocking on a FIFO;
 * a regular file is hashed as it is read, never held in memory. */
static gboolean
host_state (SysctrContext *ctx, const char *path, HostState *out, GError **error)
{
  memset (out, 0, sizeof *out);
  sysctr_autofd int pdfd = -1;
  const char *base = NULL;
  g_autoptr (GError) local_error = NULL;
  if (!sysctr_host_open_parent (ctx, path, FALSE, &pdfd, &base, &local_error))
    {
      if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
        {
          out->kind = HOST_ABSENT;
          return TRUE;
        }
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  struct stat st;
  if (fstatat (pdfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
    {
      if (errno == ENOENT)
        {
          out->kind = HOST_ABSENT;
          return TRUE;
        }
      return sysctr_throw_errno (error, "%s", path);
    }
  if (!S_ISREG (st.st_mode))
    {
      out->kind = HOST_OTHER;
      out->type = kind_name (st.st_mode);
      return TRUE;
    }
  sysctr_autofd int fd = openat (pdfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return sysctr_throw_errno (error, "opening %s", path);
  if (fstat (fd, &st) < 0 || !S_ISREG (st.st_mode))
    return sysctr_throw (error, SYSCTR_ERROR_FAILED, "%s: replaced while reading it", path);
  g_autoptr (SysctrSha256) h = sysctr_sha256_new ();
  g_autoptr (GString) head = g_string_new (NULL);
  char buf[65536];
  for (;;)
    {
      ssize_t n = read (fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return sysctr_throw_errno (error, "reading %s", path);
      if (n == 0)
        break;
      sysctr_sha256_update (h, buf, n);
      if (head->len < 256)
        g_string_append_len (head, buf, MIN ((gsize) n, 256 - head->len));
    }
  g_autofree char *digest = sysctr_sha256_digest (h);
  out->kind = HOST_REGULAR;
  out->sha256 = g_strdup (digest + strlen ("sha256:"));
  out->marker = sysctr_marker_owner (head->str, head->len);
  return TRUE;
}

GBytes *
sysctr_host_read (SysctrContext *ctx, const char *path, gsize max_size, GError **error)
{
  sysctr_autofd int pdfd = -1;
  const char *base = NULL;
  g_autoptr (GError) local_error = NULL;
  g_autofree char *data = NULL;
  gsize len = 0;
  struct stat st;
  if (!sysctr_host_open_parent (ctx, path, FALSE, &pdfd, &base, &local_error))
    {
      if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
        return NULL;
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  if (fstatat (pdfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
    {
      if (errno != ENOENT)
        sysctr_throw_errno (error, "%s", path);
      return NULL;
    }
  if (!S_ISREG (st.st_mode))
    {
      sysctr_throw (error, SYSCTR_ERROR_FAILED, "%s is %s", path, kind_name (st.st_mode));
      return NULL;
    }
  if (!sysctr_read_file_at (pdfd, base, max_size, &data, &len, error))
    return NULL;
  return g_bytes_new_take (g_steal_pointer (&data), len);
}

/* ---- owners ----------------------------------------------------------------- */

static json_t *
owners_load (SysctrContext *ctx)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  json_t *j = NULL;
  if (sysctr_read_file_at (ctx->state_dfd, OWNERS_REL, 16 * 1024 * 1024, &data, &len, NULL))
    j = json_loadb (data, len, 0, NULL);
  if (!json_is_object (j))
    {
      if (j)
        json_decref (j);
      j = json_object ();
    }
  return j;
}

static gboolean
owners_store (SysctrContext *ctx, json_t *owners, GError **error)
{
  if (json_object_size (owners) == 0)
    {
      if (unlinkat (ctx->state_dfd, OWNERS_REL, 0) < 0 && errno != ENOENT)
        return sysctr_throw_errno (error, "removing %s", OWNERS_REL);
      return TRUE;
    }
  g_autofree char *text = sysctr_json_dump (owners, TRUE);
  return sysctr_write_file_at (ctx->state_dfd, OWNERS_REL, text, strlen (text), 0600, error);
}

static gboolean
owners_set (SysctrContext *ctx, const char *path, const char *name, GError **error)
{
  g_autoptr (json_t) owners = owners_load (ctx);
  if (g_strcmp0 (sysctr_json_get_string (owners, path), name) == 0)
    return TRUE;
  if (name)
    json_object_set_new (owners, path, json_string (name));
  else if (json_object_del (owners, path) != 0)
    return TRUE;
  return owners_store (ctx, owners, error);
}

/* ---- check, apply ----------------------------------------------------------- */

/* The nearest existing directory on @path's way must take a new file (a
 * read-only /usr, say): found now, not after the commit point. */
static gboolean
writable_where (SysctrContext *ctx, const char *path, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  for (;;)
    {
      sysctr_autofd int fd = -1;
      g_autoptr (GError) local_error = NULL;
      if (sysctr_open_in_root (ctx->root_dfd, dir, FALSE, FALSE, &fd, &local_error))
        {
          g_autofree char *proc = g_strdup_printf ("/proc/self/fd/%d", fd);
          if (access (proc, W_OK) < 0)
            return sysctr_throw_errno (error, "cannot write %s%s", ctx->live ? "" : ctx->root, path);
          return TRUE;
        }
      if (!g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND) || strcmp (dir, "/") == 0)
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return FALSE;
        }
      char *up = g_path_get_dirname (dir);
      g_free (dir);
      dir = up;
    }
}

gboolean
sysctr_host_files_check (SysctrContext *ctx, const char *name, json_t *info, GError **error)
{
  SysctrDeployment d;
  sysctr_deployment_view (info, &d);
  g_autoptr (json_t) owners = owners_load (ctx);
  const char *shown_root = ctx->live ? "" : ctx->root;
  size_t i;
  json_t *f;
  json_array_foreach (d.files, i, f)
    {
      const char *path = sysctr_json_get_string (f, "path");
      const char *owner = sysctr_json_get_string (owners, path);
      if (owner && strcmp (owner, name) != 0)
        return sysctr_throw (error, SYSCTR_ERROR_EXISTS, "%s%s belongs to container %s; refusing to write it for %s",
                             shown_root, path, owner, name);
      HostState st;
      if (!host_state (ctx, path, &st, error))
        return FALSE;
      host_state_clear (&st);
      if (st.kind == HOST_OTHER)
        return sysctr_throw (error, SYSCTR_ERROR_EXISTS, "%s%s exists and is %s, where %s would write a file; refused",
                             shown_root, path, st.type, name);
      if (st.kind == HOST_REGULAR && owner == NULL)
        return sysctr_throw (error, SYSCTR_ERROR_EXISTS,
                             "%s%s already exists and was not written by sysctr; refusing to overwrite it", shown_root,
                             path);
      if (!writable_where (ctx, path, error))
        return FALSE;
    }
  return TRUE;
}

/* Streams the rendered copy of @path in @slot over the host file. */
static gboolean
write_from_rendered (SysctrContext *ctx, const char *slot, const char *path, guint32 mode, GError **error)
{
  g_autofree char *rel = g_strdup_printf ("containers/%s/rendered%s", slot, path);
  sysctr_autofd int src = openat (ctx->state_dfd, rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (src < 0)
    return sysctr_throw_errno (error, "opening %s", rel);
  sysctr_autofd int pdfd = -1;
  const char *base = NULL;
  if (!sysctr_host_open_parent (ctx, path, TRUE, &pdfd, &base, error))
    return FALSE;
  g_autofree char *tmp = g_strdup_printf (".%s.tmp-%d", base, (int) getpid ());
  (void) unlinkat (pdfd, tmp, 0);
  sysctr_autofd int dst = openat (pdfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (dst < 0)
    return sysctr_throw_errno (error, "creating %s", path);
  char buf[65536];
  for (;;)
    {
      ssize_t n = read (src, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          if (n < 0)
            {
              (void) unlinkat (pdfd, tmp, 0);
              return sysctr_throw_errno (error, "reading %s", rel);
            }
          break;
        }
      for (ssize_t off = 0; off < n;)
        {
          ssize_t w = write (dst, buf + off, n - off);
          if (w < 0 && errno == EINTR)
            continue;
          if (w < 0)
            {
              int errsv = errno;
              (void) unlinkat (pdfd, tmp, 0);
              errno = errsv;
              return sysctr_throw_errno (error, "writing %s", path);
            }
          off += w;
        }
    }
  if (fchmod (dst, mode) < 0 || fsync (dst) < 0 || renameat (pdfd, tmp, pdfd, base) < 0)
    {
      int errsv = errno;
      (void) unlinkat (pdfd, tmp, 0);
      errno = errsv;
      return sysctr_throw_errno (error, "writing %s", path);
    }
  return TRUE;
}

gboolean
sysctr_host_files_apply (SysctrContext *ctx, const char *name, json_t *info, json_t *old_info, gboolean report,
                         gboolean *out_changed, GError **error)
{
  SysctrDeployment d, old;
  sysctr_deployment_view (info, &d);
  sysctr_deployment_view (old_info, &old);
  const char *slot = d.slot;
  const char *shown_root = ctx->live ? "" : ctx->root;
  gboolean changed = FALSE;
  size_t i;
  json_t *f;
  json_array_foreach (d.files, i, f)
    {
      const char *path = sysctr_json_get_string (f, "path");
      const char *sha = sysctr_json_get_string (f, "sha256");
      if (path == NULL || path[0] != '/' || strstr (path, "/../") || sha == NULL)
        return sysctr_throw (error, SYSCTR_ERROR_FAILED, "%s: corrupt info.json (file entry)", slot);
      g_autoptr (json_t) owners = owners_load (ctx);
      const char *owner = sysctr_json_get_string (owners, path);
      HostState st;
      if (!host_state (ctx, path, &st, error))
        return FALSE;
      g_autofree char *cur_sha = g_steal_pointer (&st.sha256);
      g_autofree char *marker = g_steal_pointer (&st.marker);
      if (st.kind == HOST_OTHER)
        return sysctr_throw (error, SYSCTR_ERROR_EXISTS, "%s%s is %s, not the file %s wrote", shown_root, path, st.type,
                             name);
      if (owner && strcmp (owner, name) != 0)
        {
          if (report)
            sysctr_note ("%s: kept %s%s: it belongs to container %s", name, shown_root, path, owner);
          continue;
        }
      if (st.kind == HOST_REGULAR && g_strcmp0 (cur_sha, sha) == 0)
        {
          if (owner == NULL && !owners_set (ctx, path, name, error))
            return FALSE;
          continue;
        }
      if (st.kind == HOST_REGULAR)
        {
          /* ours, and what one of our deployments wrote (units carry the
           * marker: the admin changes them with drop-ins, so a marked unit
           * is replaced whatever its content) */
          gboolean ours
              = owner != NULL
                && (g_strcmp0 (marker, name) == 0 || g_strcmp0 (sysctr_deployment_file_sha (&d, path), cur_sha) == 0
                    || g_strcmp0 (sysctr_deployment_file_sha (&old, path), cur_sha) == 0);
          if (!ours)
            {
              if (report)
                sysctr_note ("%s: kept %s%s: edited since sysctr wrote it (the new version is in %s%s/%s/rendered%s)",
                             name, shown_root, path, shown_root, SYSCTR_CONTAINERS_DIR, slot, path);
              continue;
            }
        }
      /* write-ahead: the path is ours before the file exists */
      if (!owners_set (ctx, path, name, error))
        return FALSE;
      guint32 mode = json_integer_value (json_object_get (f, "mode")) ?: 0644;
      if (!write_from_rendered (ctx, slot, path, mode & 0777, error))
        return FALSE;
      sysctr_debug ("%s: wrote %s%s (mode %04o)", name, shown_root, path, mode & 0777);
      if (g_str_has_prefix (path, "/etc/systemd/"))
        changed = TRUE;
      sysctr_crash_point ("host-file-written");
    }
  json_array_foreach (old.files, i, f)
    {
      const char *path = sysctr_json_get_string (f, "path");
      if (path == NULL || sysctr_deployment_file_sha (&d, path) != NULL)
        continue;
      g_autoptr (json_t) owners = owners_load (ctx);
      if (g_strcmp0 (sysctr_json_get_string (owners, path), name) != 0)
        continue; /* never ours */
      HostState st;
      g_autoptr (GError) local_error = NULL;
      if (!host_state (ctx, path, &st, &local_error))
        {
          sysctr_warn ("%s: %s", name, local_error->message);
          continue;
        }
      g_autofree char *cur_sha = g_steal_pointer (&st.sha256);
      g_autofree char *marker = g_steal_pointer (&st.marker);
      if (st.kind == HOST_REGULAR)
        {
          if (g_strcmp0 (marker, name) != 0 && g_strcmp0 (sysctr_deployment_file_sha (&old, path), cur_sha) != 0)
            {
              /* edited: the admin's from now on */
              if (report)
                sysctr_note ("%s: kept %s%s: edited since sysctr wrote it", name, shown_root, path);
            }
          else
            {
              sysctr_autofd int pdfd = -1;
              const char *base = NULL;
              if (!sysctr_host_open_parent (ctx, path, FALSE, &pdfd, &base, error))
                return FALSE;
              if (unlinkat (pdfd, base, 0) < 0 && errno != ENOENT)
                return sysctr_throw_errno (error, "removing %s", path);
              sysctr_debug ("%s: removed %s%s", name, shown_root, path);
              if (g_str_has_prefix (path, "/etc/systemd/"))
                changed = TRUE;
            }
        }
      if (!owners_set (ctx, path, NULL, error))
        return FALSE;
    }
  if (out_changed)
    *out_changed = changed;
  return TRUE;
}

/* ---- repair ----------------------------------------------------------------- */

static gboolean
slot_lists (SysctrContext *ctx, const char *name, const char *path)
{
  for (int s = 0; s < 2; s++)
    {
      g_autofree char *slot = g_strdup_printf ("%s.%d", name, s);
      g_autoptr (json_t) info = NULL;
      if (!sysctr_container_read_info (ctx, slot, &info, NULL))
        continue;
      SysctrDeployment d;
      sysctr_deployment_view (info, &d);
      if (sysctr_deployment_file_sha (&d, path))
        return TRUE;
    }
  return FALSE;
}

gboolean
sysctr_host_owners_repair (SysctrContext *ctx, GError **error)
{
  g_autoptr (json_t) owners = owners_load (ctx);
  gboolean dirty = FALSE;
  /* owners that are gone, or paths none of their deployments lists */
  const char *path;
  json_t *v;
  void *tmp;
  json_object_foreach_safe (owners, tmp, path, v)
    {
      const char *name = json_string_value (v);
      g_autofree char *slot = NULL;
      g_autofree char *journal = name ? g_strdup_printf ("containers/.%s.pending", name) : NULL;
      if (name && faccessat (ctx->state_dfd, journal, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
        continue; /* an operation of its is still being completed */
      if (name && sysctr_container_active_slot (ctx, name, &slot, NULL) && slot && slot_lists (ctx, name, path))
        continue;
      json_object_del (owners, path);
      dirty = TRUE;
    }
  /* deployments from before ownership was recorded: a file still holding
   * what that container's deployment wrote, that nobody owns */
  g_autoptr (GPtrArray) names = NULL;
  if (!sysctr_containers_list (ctx, &names, error))
    return FALSE;
  for (guint n = 0; n < names->len; n++)
    {
      const char *name = names->pdata[n];
      g_autofree char *slot = NULL;
      g_autoptr (json_t) info = NULL;
      if (!sysctr_container_active_slot (ctx, name, &slot, NULL) || slot == NULL
          || !sysctr_container_read_info (ctx, slot, &info, NULL))
        continue;
      SysctrDeployment d;
      sysctr_deployment_view (info, &d);
      size_t i;
      json_t *f;
      json_array_foreach (d.files, i, f)
        {
          const char *p = sysctr_json_get_string (f, "path");
          if (p == NULL || json_object_get (owners, p))
            continue;
          HostState st;
          if (!host_state (ctx, p, &st, NULL))
            continue;
          if (st.kind == HOST_REGULAR
              && (g_strcmp0 (st.marker, name) == 0 || g_strcmp0 (st.sha256, sysctr_json_get_string (f, "sha256")) == 0))
            {
              json_object_set_new (owners, p, json_string (name));
              dirty = TRUE;
            }
          host_state_clear (&st);
        }
    }
  return !dirty || owners_store (ctx, owners, error);
}
