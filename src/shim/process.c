/* process.c: the payload's environment, fds, credentials and execve.
 *
 * exec_prepare() runs on the host and does all the allocating and
 * formatting. exec_payload() runs in the child that becomes the payload,
 * which with the default init is vfork()ed and shares the init's memory
 * (main.c): it makes syscalls and calls async-signal-safe string functions
 * only, and writes nothing but its stack and the LISTEN_PID slot reserved
 * for it here (as glibc's posix_spawn child writes only its error slot). */
#include "shim.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>

static bool
is_var (const char *entry, const char *name)
{
  size_t n = strlen (name);
  return strncmp (entry, name, n) == 0 && entry[n] == '=';
}

/* Built on the host before clone(), so the child only fills in its pid. */
int
exec_prepare (const struct shim_config *c, unsigned n_listen_fds, bool notify, struct shim_exec *e)
{
  static char listen_pid[32];
  static char listen_fds[32];
  static char notify_socket[] = "NOTIFY_SOCKET=" SHIM_NOTIFY_CONTAINER_SOCKET;
  const char *fdnames = getenv ("LISTEN_FDNAMES");
  size_t n = 0, i = 0;
  char **envp;

  for (char **p = c->env; p && *p; p++)
    n++;
  envp = calloc (n + 5, sizeof (char *));
  if (!envp)
    return shim_errorf (-ENOMEM, "environment");
  for (char **p = c->env; p && *p; p++)
    {
      /* These describe the shim's own activation; only the rewritten
       * values below may reach the payload. */
      if (is_var (*p, "LISTEN_FDS") || is_var (*p, "LISTEN_PID") || is_var (*p, "LISTEN_FDNAMES")
          || is_var (*p, "NOTIFY_SOCKET"))
        continue;
      envp[i++] = *p;
    }
  if (n_listen_fds > 0)
    {
      snprintf (listen_fds, sizeof listen_fds, "LISTEN_FDS=%u", n_listen_fds);
      envp[i++] = listen_fds;
      snprintf (listen_pid, sizeof listen_pid, "LISTEN_PID=");
      envp[i++] = listen_pid;
      if (fdnames)
        {
          char *s;
          if (asprintf (&s, "LISTEN_FDNAMES=%s", fdnames) < 0)
            {
              free (envp);
              return shim_errorf (-ENOMEM, "environment");
            }
          envp[i++] = s;
        }
    }
  if (notify)
    envp[i++] = notify_socket;
  envp[i] = NULL;
  if (c->apparmor_profile && asprintf (&e->apparmor_exec, "exec %s", c->apparmor_profile) < 0)
    {
      free (envp);
      return shim_errorf (-ENOMEM, "AppArmor profile");
    }
  e->envp = envp;
  e->listen_pid_slot = n_listen_fds > 0 ? listen_pid : NULL;
  e->argv = c->args;
  e->n_listen_fds = n_listen_fds;
  e->last_cap = caps_last_cap ();
  return 0;
}

/* Only the LISTEN_FDNAMES entry is ours; the rest are static or belong to the config. */
void
exec_free (struct shim_exec *e)
{
  if (!e || !e->envp)
    return;
  for (char **p = e->envp; *p; p++)
    if (strncmp (*p, "LISTEN_FDNAMES=", 15) == 0)
      free (*p);
  free (e->envp);
  e->envp = NULL;
  free (e->apparmor_exec);
  e->apparmor_exec = NULL;
}

/* Decimal digits of V at DST (room for 20 + NUL); snprintf() is not
 * async-signal-safe. */
static void
format_ulong (char *dst, unsigned long v)
{
  char tmp[24];
  size_t n = 0;
  do
    tmp[n++] = (char) ('0' + v % 10);
  while ((v /= 10) > 0);
  while (n > 0)
    *dst++ = tmp[--n];
  *dst = '\0';
}

static const char *
env_get (char **envp, const char *name)
{
  size_t n = strlen (name);
  for (char **p = envp; *p; p++)
    if (strncmp (*p, name, n) == 0 && (*p)[n] == '=')
      return *p + n + 1;
  return NULL;
}

/* execvpe() searches the shim's PATH; the payload's PATH is the one that
 * counts (runtime-spec: args[0] is looked up in the container's env). */
static int
exec_search (char **argv, char **envp)
{
  const char *path = env_get (envp, "PATH");
  const char *p;
  int saved = ENOENT;
  char buf[4096];

  if (strchr (argv[0], '/'))
    {
      execve (argv[0], argv, envp);
      return negative_errno ();
    }
  if (!path)
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (p = path;; p++)
    {
      size_t len = strcspn (p, ":");
      size_t alen = strlen (argv[0]);
      if (len > 0 && len + alen + 2 <= sizeof buf)
        {
          memcpy (buf, p, len);
          buf[len] = '/';
          memcpy (buf + len + 1, argv[0], alen + 1);
          execve (buf, argv, envp);
          if (errno != ENOENT && errno != ENOTDIR)
            saved = errno;
        }
      p += len;
      if (!*p)
        break;
    }
  return -saved;
}

/* Writes @value to the LSM attribute the next execve() takes: the payload's
 * own (/proc of the container; this runs in the payload's task). */
static int
lsm_exec_attr (const char *lsm_dir, const char *value)
{
  char path[64] = "/proc/thread-self/attr/";
  size_t n = strlen (path), len = strlen (value);
  int fd;
  if (lsm_dir)
    {
      memcpy (path + n, lsm_dir, strlen (lsm_dir) + 1);
      n = strlen (path);
    }
  memcpy (path + n, "exec", 5);
  fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 && lsm_dir)
    fd = open ("/proc/thread-self/attr/exec", O_WRONLY | O_CLOEXEC); /* before Linux 5.8 */
  if (fd < 0)
    return negative_errno ();
  if (write (fd, value, len) != (ssize_t) len)
    {
      int r = negative_errno ();
      close (fd);
      return r;
    }
  close (fd);
  return 0;
}

/* One syscall on a program built before clone(): safe in the vfork()ed child. */
static int
seccomp_load (const struct shim_seccomp *sc)
{
  if (syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, sc->flags, &sc->prog) < 0)
    return negative_errno ();
  return 0;
}

int
exec_payload (const struct shim_config *c, struct shim_exec *e, struct shim_step_error *err)
{
  sigset_t none;
  int r;

  *err = (struct shim_step_error){ .num = -1 };
  if (c->has_umask)
    umask (c->umask);
  if (chdir (c->cwd ? c->cwd : "/") < 0)
    {
      r = negative_errno ();
      *err = (struct shim_step_error){ .what = "process.cwd", .arg = c->cwd ? c->cwd : "/", .num = -1 };
      return r;
    }
  /* The kernel answers "(unreachable)..." for a directory outside our root:
   * the working directory must be inside the container (CVE-2024-21626:
   * a cwd reached through a leaked fd). The raw syscall, because glibc's
   * getcwd() may allocate. */
  {
    char cwd[4096];
    if (syscall (SYS_getcwd, cwd, sizeof cwd) < 0 || cwd[0] != '/')
      {
        *err = (struct shim_step_error){ .what = "process.cwd",
                                         .arg = c->cwd ? c->cwd : "/",
                                         .num = -1,
                                         .hint = "the working directory is outside the container" };
        return -EPERM;
      }
  }

  /* Socket-activated fds 3..3+N-1 pass through; anything else the shim
   * inherited must not (an fd leaked into a container is a way out: runc's
   * CVE-2024-21626). CLOEXEC rather than close, so sync_fd survives to
   * report a failed execve. */
  for (unsigned i = 0; i < e->n_listen_fds; i++)
    {
      int flags = fcntl (3 + (int) i, F_GETFD);
      if (flags < 0 || fcntl (3 + (int) i, F_SETFD, flags & ~FD_CLOEXEC) < 0)
        {
          r = negative_errno ();
          *err = (struct shim_step_error){ .what = "socket activation fd", .num = 3 + (long) i };
          return r;
        }
    }
  if (close_range (3 + e->n_listen_fds, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
    {
      r = negative_errno ();
      *err = (struct shim_step_error){ .what = "close_range", .num = -1, .hint = "Linux 5.11 or later is needed" };
      return r;
    }

  /* sd_listen_fds() checks LISTEN_PID against getpid() as the payload sees it. */
  if (e->listen_pid_slot)
    format_ulong (e->listen_pid_slot + strlen ("LISTEN_PID="), (unsigned long) getpid ());

  /* Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: before the
   * capabilities are dropped (the filter must then allow what caps_apply
   * calls). With it, as late as possible (runc orders it the same way). */
  if (c->seccomp && !c->no_new_privileges && (r = seccomp_load (c->seccomp)) < 0)
    {
      *err = (struct shim_step_error){ .what = "loading the seccomp filter", .num = -1 };
      return r;
    }
  if ((r = caps_apply (c, e->last_cap, err)) < 0)
    return r;
  if (c->seccomp && c->no_new_privileges && (r = seccomp_load (c->seccomp)) < 0)
    {
      *err = (struct shim_step_error){ .what = "loading the seccomp filter", .num = -1 };
      return r;
    }

  /* the payload's label for its execve (needs the container's /proc) */
  if (e->apparmor_exec && (r = lsm_exec_attr ("apparmor/", e->apparmor_exec)) < 0)
    {
      *err = (struct shim_step_error){ .what = "setting the AppArmor profile", .arg = c->apparmor_profile, .num = -1 };
      return r;
    }
  if (c->selinux_label && (r = lsm_exec_attr (NULL, c->selinux_label)) < 0)
    {
      *err = (struct shim_step_error){ .what = "setting the SELinux label", .arg = c->selinux_label, .num = -1 };
      return r;
    }

  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  r = exec_search (e->argv, e->envp);
  *err = (struct shim_step_error){ .what = "executing", .arg = e->argv[0], .num = -1 };
  return r;
}

/* process.rlimits and oomScoreAdj, on the calling process (inherited by
 * what it starts) */
int
shim_apply_limits (const struct shim_config *c)
{
  int r;
  for (size_t i = 0; i < c->n_rlimits; i++)
    {
      struct rlimit rl = { .rlim_cur = c->rlimits[i].soft, .rlim_max = c->rlimits[i].hard };
      if (setrlimit (c->rlimits[i].resource, &rl) == 0)
        continue;
      /* Raising a hard limit above what the unit was given fails without
       * CAP_SYS_RESOURCE (e.g. in a container): the unit's Limit*= is the
       * operator's word, so keep within it rather than refuse to start. */
      struct rlimit cur;
      if (errno != EPERM || getrlimit (c->rlimits[i].resource, &cur) < 0)
        return shim_errorf (-errno, "process.rlimits: setrlimit %d", c->rlimits[i].resource);
      rl.rlim_max = rl.rlim_max > cur.rlim_max ? cur.rlim_max : rl.rlim_max;
      rl.rlim_cur = rl.rlim_cur > rl.rlim_max ? rl.rlim_max : rl.rlim_cur;
      if (setrlimit (c->rlimits[i].resource, &rl) < 0)
        return shim_errorf (-errno, "process.rlimits: setrlimit %d", c->rlimits[i].resource);
      shim_warn ("process.rlimits: limit %d capped at the unit's hard limit %llu", c->rlimits[i].resource,
                 (unsigned long long) rl.rlim_max);
    }
  if (c->has_oom_score_adj)
    {
      char buf[16];
      int len = snprintf (buf, sizeof buf, "%d", c->oom_score_adj);
      _cleanup_close_ int fd = open ("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
      if (fd < 0)
        return shim_errorf (-errno, "process.oomScoreAdj");
      if ((r = shim_write_all (fd, buf, (size_t) len)) < 0)
        return shim_errorf (r, "process.oomScoreAdj");
    }
  return 0;
}
