/* log.c: the shim's error record and its one output line. */
#include "shim.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static char error_buf[1024];

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

void
shim_log_error (void)
{
  dprintf (STDERR_FILENO, "sysctr-shim: %s\n", error_buf[0] ? error_buf : "unknown error");
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
  dprintf (STDERR_FILENO, "sysctr-shim: warning: %s\n", buf);
}
