/* log.c: the shim's error record and its one output line.
 *
 * The unit's SyslogIdentifier= is the container's name, so the payload's
 * output reads as that service's. The shim's own lines are told apart: when
 * stderr is the unit's journal stream (JOURNAL_STREAM), they go to journald
 * directly as SYSLOG_IDENTIFIER=sysctr-shim (still under the unit: journald
 * takes the unit from the sender's cgroup); otherwise, and if that fails, to
 * stderr. Either way each line starts with "sysctr-shim:". */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static char error_buf[1024];
static const char *log_name; /* the container's name, for SYSCTR_CONTAINER= */

static bool stderr_only;

void
shim_log_set_name (const char *name)
{
  log_name = name;
}

void
shim_log_stderr_only (void)
{
  stderr_only = true;
}

int
shim_errorf (int r, const char *fmt, ...)
{
  va_list ap;
  size_t n;
  /* a caller that took -errno after a short read or write may hold 0:
   * that is still a failure, never a success */
  if (r >= 0)
    r = -EIO;
  va_start (ap, fmt);
  /* ap is va_start()ed above; clang-tidy 14 reports this only when log.c is
   * not the first file of one invocation (stale state across TUs). */
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  vsnprintf (error_buf, sizeof error_buf, fmt, ap);
  va_end (ap);
  n = strlen (error_buf);
  snprintf (error_buf + n, sizeof error_buf - n, ": %s", strerror (-r));
  return r;
}

int
shim_refusef (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  /* ap is va_start()ed above; clang-tidy 14 reports this only when log.c is
   * not the first file of one invocation (stale state across TUs). */
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  vsnprintf (error_buf, sizeof error_buf, fmt, ap);
  va_end (ap);
  return -EINVAL;
}

/* stderr is the journal stream systemd connected (not a pipe or a file
 * someone redirected it to) */
static bool
stderr_is_journal (void)
{
  const char *js = getenv ("JOURNAL_STREAM");
  unsigned long long dev, ino;
  struct stat st;
  char tail;
  if (js == NULL || sscanf (js, "%llu:%llu%c", &dev, &ino, &tail) != 2 || fstat (STDERR_FILENO, &st) < 0)
    return false;
  return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

/* The unit this process runs in (the last part of its cgroup path), into
 * @buf, or "" */
static void
own_unit (char *buf, size_t size)
{
  char text[2048];
  buf[0] = '\0';
  _cleanup_close_ int fd = open ("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd < 0 ? -1 : read (fd, text, sizeof text - 1);
  if (n <= 0)
    return;
  text[n] = '\0';
  char *save = NULL;
  for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    if (strncmp (line, "0::", 3) == 0 || strstr (line, ":name=systemd:"))
      {
        const char *last = strrchr (line, '/');
        if (last && strlen (last + 1) < size && strchr (last + 1, '.'))
          snprintf (buf, size, "%s", last + 1);
        return;
      }
}

/* One datagram of journald's native protocol; 0 or -errno. journald finds
 * the unit of a datagram from the sender's cgroup, which it cannot when the
 * shim has exited already (a refusal at start): OBJECT_SYSTEMD_UNIT= (from
 * root, which `journalctl -u` honours) keeps the line with its unit. */
static int
journal_send (int priority, const char *line)
{
  static const char path[] = "/run/systemd/journal/socket";
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  char msg[1280];
  const char *name = log_name;
  char unit[256];
  own_unit (unit, sizeof unit);
  int n = snprintf (msg, sizeof msg, "PRIORITY=%d\nSYSLOG_IDENTIFIER=sysctr-shim\n%s%s%s%s%s%sMESSAGE=%s\n", priority,
                    name ? "SYSCTR_CONTAINER=" : "", name ? name : "", name ? "\n" : "",
                    unit[0] ? "OBJECT_SYSTEMD_UNIT=" : "", unit, unit[0] ? "\n" : "", line);
  if (n < 0 || (size_t) n >= sizeof msg)
    return -E2BIG;
  /* MESSAGE= ends at the first newline: the line must hold none */
  for (char *p = strstr (msg, "MESSAGE=") + 8; *p && p < msg + n - 1; p++)
    if (*p == '\n')
      *p = ' ';
  memcpy (sa.sun_path, path, sizeof path);
  _cleanup_close_ int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return negative_errno ();
  if (sendto (fd, msg, (size_t) n, MSG_NOSIGNAL, (struct sockaddr *) &sa, sizeof sa) < 0)
    return negative_errno ();
  return 0;
}

static void
emit (int priority, const char *line)
{
  if (!stderr_only && stderr_is_journal () && journal_send (priority, line) == 0)
    return;
  dprintf (STDERR_FILENO, "%s\n", line);
}

void
shim_log_error (void)
{
  char line[1100];
  snprintf (line, sizeof line, "sysctr-shim: %s", error_buf[0] ? error_buf : "unknown error");
  emit (3, line);
}

void
shim_warn (const char *fmt, ...)
{
  char buf[1024];
  va_list ap;
  va_start (ap, fmt);
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): as above
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  char line[1100];
  snprintf (line, sizeof line, "sysctr-shim: warning: %s", buf);
  emit (4, line);
}
