/* process.c: the payload's environment, fds, credentials and execve. */
#include "shim.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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
      strcpy (listen_pid, "LISTEN_PID=");
      e->listen_pid_slot = listen_pid;
      envp[i++] = listen_pid;
      if (fdnames)
        {
          char *s;
          if (asprintf (&s, "LISTEN_FDNAMES=%s", fdnames) < 0)
            return shim_errorf (-ENOMEM, "environment");
          envp[i++] = s;
        }
    }
  else
    e->listen_pid_slot = NULL;
  if (notify)
    envp[i++] = notify_socket;
  envp[i] = NULL;
  e->envp = envp;
  e->argv = c->args;
  e->n_listen_fds = n_listen_fds;
  return 0;
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
      return -errno;
    }
  if (!path)
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (p = path;; p++)
    {
      size_t len = strcspn (p, ":");
      if (len > 0 && len + strlen (argv[0]) + 2 <= sizeof buf)
        {
          snprintf (buf, sizeof buf, "%.*s/%s", (int) len, p, argv[0]);
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

int
exec_payload (const struct shim_config *c, struct shim_exec *e, int sync_fd)
{
  sigset_t none;
  int r;

  if (c->has_umask)
    umask (c->umask);
  if (chdir (c->cwd ? c->cwd : "/") < 0)
    return shim_errorf (-errno, "process.cwd %s", c->cwd ? c->cwd : "/");

  /* Socket-activated fds 3..3+N-1 pass through; anything else the shim
   * inherited must not (an fd leaked into a container is a way out: runc's
   * CVE-2024-21626). CLOEXEC rather than close, so sync_fd survives to
   * report a failed execve. */
  for (unsigned i = 0; i < e->n_listen_fds; i++)
    {
      int flags = fcntl (3 + (int) i, F_GETFD);
      if (flags < 0 || fcntl (3 + (int) i, F_SETFD, flags & ~FD_CLOEXEC) < 0)
        return shim_errorf (-errno, "socket activation fd %u", 3 + i);
    }
  if (close_range (3 + e->n_listen_fds, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
    return shim_errorf (-errno, "close_range");
  (void) sync_fd;

  /* sd_listen_fds() checks LISTEN_PID against getpid() as the payload sees it. */
  if (e->listen_pid_slot)
    snprintf (e->listen_pid_slot + strlen ("LISTEN_PID="), 20, "%d", (int) getpid ());

  if ((r = caps_apply (c)) < 0)
    return r;

  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  r = exec_search (e->argv, e->envp);
  return shim_errorf (r, "executing %s", e->argv[0]);
}
