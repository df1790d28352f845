#include "config.h"

#include "sysctr-util.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

G_DEFINE_QUARK (sysctr - error - quark, sysctr_error)

static gboolean verbose_flag;

gboolean
sysctr_verbose (void)
{
  return verbose_flag;
}

void
sysctr_set_verbose (gboolean verbose)
{
  verbose_flag = verbose;
}

void
sysctr_debug (const char *fmt, ...)
{
  if (!verbose_flag)
    return;
  va_list args;
  va_start (args, fmt);
  g_autofree char *line = g_strdup_vprintf (fmt, args);
  va_end (args);
  g_autofree char *shown = sysctr_printable (line);
  g_printerr ("sysctr: %s\n", shown);
}

static void print_line (FILE *f, const char *prefix, const char *fmt, va_list args) G_GNUC_PRINTF (3, 0);

static void
print_line (FILE *f, const char *prefix, const char *fmt, va_list args)
{
  g_autofree char *line = g_strdup_vprintf (fmt, args);
  g_autofree char *shown = sysctr_printable (line);
  if (f == stdout)
    {
      /* a line at a time, also into a pipe or a file: a command that
       * waits (for a lock, for a unit) says so when it starts waiting */
      g_print ("%s%s\n", prefix, shown);
      fflush (stdout);
    }
  else
    g_printerr ("%s%s\n", prefix, shown);
}

void
sysctr_warn (const char *fmt, ...)
{
  va_list args;
  va_start (args, fmt);
  print_line (stderr, "warning: ", fmt, args);
  va_end (args);
}

void
sysctr_note (const char *fmt, ...)
{
  va_list args;
  va_start (args, fmt);
  print_line (stderr, "", fmt, args);
  va_end (args);
}

void
sysctr_say (const char *fmt, ...)
{
  va_list args;
  va_start (args, fmt);
  print_line (stdout, "", fmt, args);
  va_end (args);
}

void
sysctr_say_lines (gboolean to_stderr, const char *prefix, const char *text)
{
  g_auto (GStrv) lines = g_strsplit (text, "\n", -1);
  for (char **l = lines; *l; l++)
    {
      if (**l == '\0' && l[1] == NULL)
        break; /* the text's final newline */
      g_autofree char *shown = sysctr_printable (*l);
      if (to_stderr)
        g_printerr ("%s%s\n", prefix, shown);
      else
        g_print ("%s%s\n", prefix, shown);
    }
}

gboolean
sysctr_throw_errno (GError **error, const char *fmt, ...)
{
  int errsv = errno;
  va_list args;
  va_start (args, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, args);
  va_end (args);
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv), "%s: %s", msg, g_strerror (errsv));
  return FALSE;
}

gboolean
sysctr_throw (GError **error, SysctrError code, const char *fmt, ...)
{
  va_list args;
  va_start (args, fmt);
  g_autofree char *msg = g_strdup_vprintf (fmt, args);
  va_end (args);
  g_set_error_literal (error, SYSCTR_ERROR, code, msg);
  return FALSE;
}

void
sysctr_prefix_error (GError **error, const char *fmt, ...)
{
  if (error == NULL || *error == NULL)
    return;
  va_list args;
  va_start (args, fmt);
  g_autofree char *prefix = g_strdup_vprintf (fmt, args);
  va_end (args);
  g_prefix_error (error, "%s: ", prefix);
}

/* Write to a temporary name in the same directory, fsync, then rename over
 * the target: readers see the old or the new content, never a partial one. */
gboolean
sysctr_write_file_at (int dfd, const char *path, const void *data, gsize len, mode_t mode, GError **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *tmp = g_strdup_printf ("%s/.%s.tmp-%d", dir, base, (int) getpid ());
  sysctr_autofd int fd = openat (dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0)
    return sysctr_throw_errno (error, "creating %s", path);
  const char *p = data;
  gsize left = len;
  while (left > 0)
    {
      ssize_t n = write (fd, p, left);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          int errsv = errno;
          (void) unlinkat (dfd, tmp, 0);
          errno = errsv;
          return sysctr_throw_errno (error, "writing %s", path);
        }
      p += n;
      left -= n;
    }
  if (fchmod (fd, mode) < 0 || fsync (fd) < 0)
    {
      int errsv = errno;
      (void) unlinkat (dfd, tmp, 0);
      errno = errsv;
      return sysctr_throw_errno (error, "writing %s", path);
    }
  if (renameat (dfd, tmp, dfd, path) < 0)
    {
      int errsv = errno;
      (void) unlinkat (dfd, tmp, 0);
      errno = errsv;
      return sysctr_throw_errno (error, "renaming into %s", path);
    }
  return TRUE;
}

gboolean
sysctr_read_file_at (int dfd, const char *path, gsize max_size, char **out_data, gsize *out_len, GError **error)
{
  /* O_NONBLOCK: a FIFO where a file was expected must not hang the caller
   * (it is then refused as not a regular file) */
  sysctr_autofd int fd = openat (dfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return sysctr_throw_errno (error, "opening %s", path);
  return sysctr_read_fd (fd, max_size, path, out_data, out_len, error);
}

gboolean
sysctr_read_fd (int fd, gsize max_size, const char *path, char **out_data, gsize *out_len, GError **error)
{
  struct stat st;
  if (fstat (fd, &st) < 0)
    return sysctr_throw_errno (error, "stat %s", path);
  if (!S_ISREG (st.st_mode))
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s: not a regular file", path);
  if ((gsize) st.st_size > max_size)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID,
                         "%s: %" G_GUINT64_FORMAT " bytes, more than the limit of %" G_GSIZE_FORMAT, path,
                         (guint64) st.st_size, max_size);
  g_autoptr (GByteArray) buf = g_byte_array_sized_new (st.st_size + 1);
  char chunk[65536];
  for (;;)
    {
      ssize_t n = read (fd, chunk, sizeof chunk);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return sysctr_throw_errno (error, "reading %s", path);
        }
      if (n == 0)
        break;
      if (buf->len + (gsize) n > max_size)
        return sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s: larger than the limit of %" G_GSIZE_FORMAT " bytes",
                             path, max_size);
      g_byte_array_append (buf, (guint8 *) chunk, n);
    }
  gsize len = buf->len;
  g_byte_array_append (buf, (const guint8 *) "", 1);
  if (out_len)
    *out_len = len;
  *out_data = (char *) g_byte_array_free (g_steal_pointer (&buf), FALSE);
  return TRUE;
}

gboolean
sysctr_mkdir_p_at (int dfd, const char *path, mode_t mode, GError **error)
{
  g_autofree char *copy = g_strdup (path);
  for (char *p = copy + 1; *p; p++)
    {
      if (*p != '/')
        continue;
      *p = '\0';
      if (mkdirat (dfd, copy, mode) < 0 && errno != EEXIST)
        return sysctr_throw_errno (error, "creating %s", copy);
      *p = '/';
    }
  if (mkdirat (dfd, copy, mode) < 0 && errno != EEXIST)
    return sysctr_throw_errno (error, "creating %s", copy);
  return TRUE;
}

gboolean
sysctr_opendir_at (int dfd, const char *path, gboolean create, int *out_fd, GError **error)
{
  if (create && !sysctr_mkdir_p_at (dfd, path, 0755, error))
    return FALSE;
  int fd = openat (dfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return sysctr_throw_errno (error, "opening directory %s", path);
  *out_fd = fd;
  return TRUE;
}

gboolean
sysctr_dir_list_at (int dfd, const char *path, gboolean missing_ok, GPtrArray **out_names, GError **error)
{
  g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  int fd = openat (dfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    {
      if (errno == ENOENT && missing_ok)
        {
          *out_names = g_steal_pointer (&names);
          return TRUE;
        }
      return sysctr_throw_errno (error, "opening directory %s", path);
    }
  DIR *d = fdopendir (fd);
  if (d == NULL)
    {
      close (fd);
      return sysctr_throw_errno (error, "reading directory %s", path);
    }
  struct dirent *de;
  while ((de = readdir (d)) != NULL)
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      g_ptr_array_add (names, g_strdup (de->d_name));
  closedir (d);
  g_ptr_array_sort (names, sysctr_strptr_cmp);
  *out_names = g_steal_pointer (&names);
  return TRUE;
}

static gboolean
rm_rf_children (int dfd, GError **error)
{
  int dup_fd = fcntl (dfd, F_DUPFD_CLOEXEC, 3);
  if (dup_fd < 0)
    return sysctr_throw_errno (error, "dup");
  DIR *d = fdopendir (dup_fd);
  if (d == NULL)
    {
      close (dup_fd);
      return sysctr_throw_errno (error, "fdopendir");
    }
  struct dirent *de;
  gboolean ok = TRUE;
  while (ok && (de = readdir (d)) != NULL)
    {
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      if (unlinkat (dfd, de->d_name, 0) == 0)
        continue;
      if (errno != EISDIR && errno != EPERM)
        {
          ok = sysctr_throw_errno (error, "removing %s", de->d_name);
          break;
        }
      sysctr_autofd int child = openat (dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (child < 0)
        {
          ok = sysctr_throw_errno (error, "opening %s", de->d_name);
          break;
        }
      if (!rm_rf_children (child, error))
        {
          ok = FALSE;
          break;
        }
      if (unlinkat (dfd, de->d_name, AT_REMOVEDIR) < 0)
        ok = sysctr_throw_errno (error, "removing %s", de->d_name);
    }
  closedir (d);
  return ok;
}

/* Never crosses a symlink: a deployment's rootfs may contain links to
 * anywhere, and removing it must touch nothing outside it. */
gboolean
sysctr_rm_rf_at (int dfd, const char *path, GError **error)
{
  if (unlinkat (dfd, path, 0) == 0 || errno == ENOENT)
    return TRUE;
  sysctr_autofd int fd = openat (dfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return sysctr_throw_errno (error, "opening %s", path);
  if (!rm_rf_children (fd, error))
    {
      sysctr_prefix_error (error, "removing %s", path);
      return FALSE;
    }
  if (unlinkat (dfd, path, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return sysctr_throw_errno (error, "removing %s", path);
  return TRUE;
}

json_t *
sysctr_json_parse (const char *data, gsize len, const char *what, GError **error)
{
  json_error_t jerr;
  json_t *json = json_loadb (data, len, JSON_REJECT_DUPLICATES, &jerr);
  if (json == NULL)
    {
      sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s: invalid JSON at line %d: %s", what, jerr.line, jerr.text);
      return NULL;
    }
  return json;
}

char *
sysctr_json_dump (json_t *json, gboolean pretty)
{
  char *s = json_dumps (json, (pretty ? JSON_INDENT (2) : JSON_COMPACT) | JSON_ENCODE_ANY);
  char *ret = g_strdup (s);
  free (s);
  return ret;
}

const char *
sysctr_json_get_string (json_t *obj, const char *key)
{
  json_t *v = json_is_object (obj) ? json_object_get (obj, key) : NULL;
  return json_is_string (v) ? json_string_value (v) : NULL;
}

char *
sysctr_sha256_hex (const void *data, gsize len)
{
  g_autoptr (SysctrSha256) h = sysctr_sha256_new ();
  sysctr_sha256_update (h, data, len);
  g_autofree char *d = sysctr_sha256_digest (h);
  return g_strdup (d + strlen ("sha256:"));
}

struct SysctrSha256
{
  EVP_MD_CTX *ctx;
};

SysctrSha256 *
sysctr_sha256_new (void)
{
  SysctrSha256 *h = g_new0 (SysctrSha256, 1);
  h->ctx = EVP_MD_CTX_new ();
  if (h->ctx == NULL || EVP_DigestInit_ex (h->ctx, EVP_sha256 (), NULL) != 1)
    g_error ("OpenSSL: cannot set up SHA-256");
  return h;
}

void
sysctr_sha256_update (SysctrSha256 *h, const void *data, gsize len)
{
  if (len > 0 && EVP_DigestUpdate (h->ctx, data, len) != 1)
    g_error ("OpenSSL: SHA-256 update failed");
}

char *
sysctr_sha256_digest (SysctrSha256 *h)
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_DigestFinal_ex (h->ctx, md, &n) != 1 || n != 32)
    g_error ("OpenSSL: SHA-256 final failed");
  GString *s = g_string_new ("sha256:");
  for (unsigned int i = 0; i < n; i++)
    g_string_append_printf (s, "%02x", md[i]);
  return g_string_free (s, FALSE);
}

void
sysctr_sha256_reset (SysctrSha256 *h)
{
  if (EVP_DigestInit_ex (h->ctx, EVP_sha256 (), NULL) != 1)
    g_error ("OpenSSL: cannot set up SHA-256");
}

void
sysctr_sha256_free (SysctrSha256 *h)
{
  if (h == NULL)
    return;
  EVP_MD_CTX_free (h->ctx);
  g_free (h);
}

gboolean
sysctr_digest_valid (const char *digest)
{
  if (!g_str_has_prefix (digest, "sha256:"))
    return FALSE;
  const char *hex = digest + strlen ("sha256:");
  if (strlen (hex) != 64)
    return FALSE;
  for (const char *p = hex; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
      return FALSE;
  return TRUE;
}

gint
sysctr_strptr_cmp (gconstpointer a, gconstpointer b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* C0 and C1 controls, DEL, line/paragraph separators and bidi overrides
 * escaped, invalid UTF-8 bytes shown as \xNN, newlines as spaces. */
char *
sysctr_printable (const char *s)
{
  GString *out = g_string_sized_new (strlen (s));
  const char *p = s;
  const char *end = s + strlen (s);
  while (p < end)
    {
      gunichar c = g_utf8_get_char_validated (p, end - p);
      if (c == (gunichar) -1 || c == (gunichar) -2)
        {
          g_string_append_printf (out, "\\x%02x", (guchar) *p);
          p++;
          continue;
        }
      const char *next = g_utf8_next_char (p);
      if (c == '\n' || c == '\r' || c == '\t')
        g_string_append_c (out, ' ');
      else if (c < 0x20 || c == 0x7f)
        g_string_append_printf (out, "\\x%02x", c);
      else if ((c >= 0x80 && c <= 0x9f) || (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069))
        g_string_append_printf (out, "\\u%04x", c);
      else
        g_string_append_len (out, p, next - p);
      p = next;
    }
  return g_string_free (out, FALSE);
}

guint64
sysctr_io_write_bytes (void)
{
  g_autofree char *data = NULL;
  if (!g_file_get_contents ("/proc/self/io", &data, NULL, NULL))
    return 0;
  const char *p = strstr (data, "\nwrite_bytes: ");
  return p ? g_ascii_strtoull (p + strlen ("\nwrite_bytes: "), NULL, 10) : 0;
}

char *
sysctr_format_size (guint64 bytes)
{
  return g_format_size_full (bytes, G_FORMAT_SIZE_DEFAULT);
}

struct SysctrLock
{
  int fd;
};

gboolean
sysctr_lock_acquire (int state_dfd, SysctrLock **out_lock, GError **error)
{
  sysctr_autofd int fd = openat (state_dfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return sysctr_throw_errno (error, "opening the state lock");
  if (flock (fd, LOCK_EX | LOCK_NB) < 0)
    {
      if (errno != EWOULDBLOCK)
        return sysctr_throw_errno (error, "locking the state directory");
      g_printerr ("Waiting for another sysctr command to finish (state directory locked)...\n");
      while (flock (fd, LOCK_EX) < 0)
        if (errno != EINTR)
          return sysctr_throw_errno (error, "locking the state directory");
    }
  SysctrLock *lock = g_new0 (SysctrLock, 1);
  lock->fd = sysctr_steal_fd (&fd);
  *out_lock = lock;
  return TRUE;
}

void
sysctr_lock_release (SysctrLock *lock)
{
  if (lock == NULL)
    return;
  close (lock->fd);
  g_free (lock);
}

void
sysctr_crash_point (const char *name)
{
  static int counter;
  const char *at = g_getenv ("SYSCTR_CRASH_AT");
  counter++;
  if (at == NULL)
    return;
  if (g_getenv ("SYSCTR_CRASH_TRACE"))
    g_printerr ("crash-point %d %s\n", counter, name);
  char *end = NULL;
  long n = strtol (at, &end, 10);
  if ((end && *end == '\0' && n == counter) || strcmp (at, name) == 0)
    kill (getpid (), SIGKILL);
}

char *
sysctr_iso_now (void)
{
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  return g_date_time_format_iso8601 (now);
}
