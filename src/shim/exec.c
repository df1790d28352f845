/* exec.c: sysctr-shim --exec, a command in a running container.
 *
 *   sysctr-shim --exec=PID [--bundle=DIR] [--name=NAME] [--tty] [--user=UID[:GID]]
 *               [--env=K=V]... [--workdir=DIR] -- CMD [ARG...]
 *
 * PID is the unit's main process, a sysctr-shim running the container.
 * Invariant: the command gets what the container's payload got and nothing
 * of the host. It joins the namespaces of the container's init (through a
 * pidfd, checked to be that shim's child while the pidfd is held) and its
 * root (/proc/INIT/root), the unit's cgroup; the credentials, capabilities,
 * no_new_privs, seccomp filter, rlimits, environment and cwd come from the
 * bundle the shim runs (its working directory), and are applied by the same
 * code as the payload's (exec_payload: fds other than 0-2 closed, a cwd that
 * must resolve inside the root); host fds are closed before the fork, and
 * the child gets a session of its own (the caller's terminal is not its
 * controlling terminal). This process is not dumpable, so nothing in the
 * container can open its /proc/PID (fds, cwd: CVE-2024-21626), and it is
 * never in the container's pid namespace (only its child is). Not done
 * here: re-executing from a sealed memfd copy as runc does; until the
 * child's execve the child runs this file, and what keeps a container from
 * writing to it (CVE-2019-5736) is that running shims keep it busy
 * (ETXTBSY), not this code.
 *
 * Exit status: the command's; 128+N if a signal N ended it; 125 when this
 * could not run it, 126 when it could not be executed, 127 when not found.
 * No lock is taken: a health check never waits for an install. */
#include "shim.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <termios.h>

#include <linux/magic.h>

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif

static int
pidfd_open_ (pid_t pid)
{
  return (int) syscall (SYS_pidfd_open, pid, 0);
}

/* the process behind @pidfd is still running (so a /proc/PID path read
 * since it was opened was that process's) */
static bool
pidfd_alive (int pidfd)
{
  return syscall (SYS_pidfd_send_signal, pidfd, 0, NULL, 0) == 0;
}

static int
read_small (const char *path, char *buf, size_t size)
{
  _cleanup_close_ int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return negative_errno ();
  ssize_t n = read (fd, buf, size - 1);
  if (n < 0)
    return negative_errno ();
  buf[n] = '\0';
  return (int) n;
}

/* the parent pid in /proc/PID/stat (after the last ')' of the comm) */
static pid_t
parent_of (pid_t pid)
{
  char path[64], buf[1024];
  snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
  if (read_small (path, buf, sizeof buf) < 0)
    return -1;
  char *p = strrchr (buf, ')');
  int ppid;
  char state;
  if (!p || sscanf (p + 1, " %c %d", &state, &ppid) != 2)
    return -1;
  return (pid_t) ppid;
}

/* @shim runs this shim's file: the same path (a package upgrade replaces
 * the inode under running shims, so not the same inode), and, when @name is
 * given, it is in NAME.service's cgroup (not another container's shim that
 * got the main pid's number since systemd named it) */
static int
check_is_shim (pid_t shim, const char *name)
{
  char path[64], exe[PATH_MAX], self[PATH_MAX], cg[4096];
  snprintf (path, sizeof path, "/proc/%d/exe", (int) shim);
  ssize_t n = readlink (path, exe, sizeof exe - 1), m = readlink ("/proc/self/exe", self, sizeof self - 1);
  if (n < 0 || m < 0)
    return shim_errorf (negative_errno (), "process %d", (int) shim);
  exe[n] = self[m] = '\0';
  char *del = strstr (exe, " (deleted)");
  if (del && del[10] == '\0')
    *del = '\0';
  del = strstr (self, " (deleted)");
  if (del && del[10] == '\0')
    *del = '\0';
  if (strcmp (exe, self) != 0)
    return shim_refusef ("process %d is not a sysctr-shim (a container run by runc or crun: use its exec)", (int) shim);
  if (name)
    {
      char want[128];
      snprintf (want, sizeof want, "/%s.service\n", name);
      snprintf (path, sizeof path, "/proc/%d/cgroup", (int) shim);
      if (read_small (path, cg, sizeof cg) < 0 || !strstr (cg, want))
        return shim_refusef ("process %d is not the shim of %s.service", (int) shim, name);
    }
  return 0;
}

/* field 22 of /proc/PID/stat: when it started (clock ticks after boot) */
static unsigned long long
start_time_of (pid_t pid)
{
  char path[64], buf[1024];
  snprintf (path, sizeof path, "/proc/%d/stat", (int) pid);
  if (read_small (path, buf, sizeof buf) < 0)
    return ~0ULL;
  char *p = strrchr (buf, ')');
  if (!p)
    return ~0ULL;
  int field = 2;
  char *save = NULL;
  for (char *t = strtok_r (p + 1, " ", &save); t; t = strtok_r (NULL, " ", &save))
    if (++field == 22)
      return strtoull (t, NULL, 10);
  return ~0ULL;
}

/* /proc/A/WHAT and /proc/B/WHAT are different objects (false when either
 * cannot be looked at: the caller refuses) */
static bool
differ (pid_t a, pid_t b, const char *what)
{
  char pa[64], pb[64];
  struct stat sa, sb;
  snprintf (pa, sizeof pa, "/proc/%d/%s", (int) a, what);
  snprintf (pb, sizeof pb, "/proc/%d/%s", (int) b, what);
  return stat (pa, &sa) == 0 && stat (pb, &sb) == 0 && (sa.st_dev != sb.st_dev || sa.st_ino != sb.st_ino);
}

/* The container's init: the shim's first child (a health check the shim
 * runs is a later one, and starts in the host's namespaces), checked to
 * be in a mount namespace of its own. A pidfd of it in *pidfd_ret,
 * checked to be the shim's child while held. */
static int
find_init (pid_t shim, int *pidfd_ret)
{
  char path[96], buf[1024];
  snprintf (path, sizeof path, "/proc/%d/task/%d/children", (int) shim, (int) shim);
  int r = read_small (path, buf, sizeof buf);
  if (r < 0)
    return shim_errorf (r, "%s", path);
  pid_t init = 0;
  unsigned long long oldest = ~0ULL;
  char *save = NULL;
  for (char *t = strtok_r (buf, " \n", &save); t; t = strtok_r (NULL, " \n", &save))
    {
      pid_t c = (pid_t) atoi (t);
      unsigned long long st = c > 0 ? start_time_of (c) : ~0ULL;
      if (c > 0 && st < oldest)
        oldest = st, init = c;
    }
  if (init <= 0)
    return shim_refusef ("the container is not running (its shim, pid %d, has no child)", (int) shim);
  int fd = pidfd_open_ (init);
  if (fd < 0)
    return shim_errorf (negative_errno (), "pidfd_open %d", (int) init);
  /* read what /proc says of the pid, then check it was still this one. Set
   * up: a mount namespace and a root of its own (it has its own mount
   * namespace from clone(), but its root is the host's until pivot_root) */
  bool own_mounts = differ (init, shim, "ns/mnt") && differ (init, shim, "root");
  if (parent_of (init) != shim || !pidfd_alive (fd))
    {
      close (fd);
      return shim_refusef ("the container's init (pid %d) went away", (int) init);
    }
  if (!own_mounts)
    {
      close (fd);
      return shim_refusef ("the container (pid %d) is not set up yet (starting): its root is still its shim's",
                           (int) init);
    }
  *pidfd_ret = fd;
  return init;
}

/* Moves this process into the cgroups of @pid (v2 and the named v1
 * hierarchies systemd tracks units by; v1 controllers too where their
 * mount is writable), so the unit's limits and stop reach the command. */
static void
join_cgroups (pid_t pid)
{
  char path[64], buf[4096];
  snprintf (path, sizeof path, "/proc/%d/cgroup", (int) pid);
  if (read_small (path, buf, sizeof buf) < 0)
    {
      shim_warn ("%s: %m; the command runs outside the unit's cgroup", path);
      return;
    }
  char *save = NULL;
  for (char *line = strtok_r (buf, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *c1 = strchr (line, ':'), *c2 = c1 ? strchr (c1 + 1, ':') : NULL;
      if (!c2 || c2[1] != '/' || strstr (c2 + 1, "/.."))
        continue;
      *c2 = '\0';
      const char *ctrl = c1 + 1, *cg = c2 + 1;
      char procs[PATH_MAX];
      struct statfs sf;
      if (*ctrl == '\0')
        {
          /* cgroup2: /sys/fs/cgroup itself, or /sys/fs/cgroup/unified (hybrid) */
          const char *base = statfs ("/sys/fs/cgroup", &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC
                                 ? "/sys/fs/cgroup"
                                 : "/sys/fs/cgroup/unified";
          snprintf (procs, sizeof procs, "%s%s/cgroup.procs", base, cg);
        }
      else
        snprintf (procs, sizeof procs, "/sys/fs/cgroup/%s%s/cgroup.procs",
                  strncmp (ctrl, "name=", 5) == 0 ? ctrl + 5 : ctrl, cg);
      _cleanup_close_ int fd = open (procs, O_WRONLY | O_CLOEXEC);
      if (fd < 0 || shim_write_all (fd, "0", 1) < 0)
        {
          /* v1 controllers are often read-only (in a container) */
          if (*ctrl == '\0' || strcmp (ctrl, "name=systemd") == 0)
            shim_warn ("%s: %m; the command runs outside the unit's cgroup", procs);
        }
    }
}

static int
parse_user (const char *s, struct shim_config *c)
{
  char *end;
  errno = 0;
  unsigned long uid = strtoul (s, &end, 10), gid = 0;
  if (errno || end == s || uid > 0xfffffffeUL || (*end && *end != ':'))
    return shim_refusef ("--user=%s: not UID[:GID] (numbers)", s);
  if (*end == ':')
    {
      const char *g = end + 1;
      gid = strtoul (g, &end, 10);
      if (errno || end == g || *end || gid > 0xfffffffeUL)
        return shim_refusef ("--user=%s: not UID[:GID] (numbers)", s);
    }
  c->uid = (uid_t) uid;
  c->gid = (gid_t) gid;
  c->n_additional_gids = 0;
  return 0;
}

/* c->env with @set (K=V, replacing K) appended; the strings stay owned by
 * their arrays */
static char **
merge_env (char **env, char *const *set, size_t n_set, bool tty)
{
  size_t n = 0;
  for (char **p = env; p && *p; p++)
    n++;
  char **out = calloc (n + n_set + 2, sizeof (char *));
  if (!out)
    return NULL;
  size_t o = 0;
  for (char **p = env; p && *p; p++)
    {
      size_t klen = strcspn (*p, "=");
      bool replaced = false;
      for (size_t i = 0; i < n_set; i++)
        replaced |= strncmp (set[i], *p, klen) == 0 && set[i][klen] == '=';
      replaced |= tty && strncmp (*p, "TERM=", 5) == 0 && getenv ("TERM");
      if (!replaced)
        out[o++] = *p;
    }
  for (size_t i = 0; i < n_set; i++)
    out[o++] = set[i];
  static char term[256];
  if (tty && getenv ("TERM") && snprintf (term, sizeof term, "TERM=%s", getenv ("TERM")) < (int) sizeof term)
    out[o++] = term;
  out[o] = NULL;
  return out;
}

static struct termios saved_termios;
static bool termios_saved;

static void
restore_terminal (void)
{
  if (termios_saved)
    tcsetattr (STDIN_FILENO, TCSAFLUSH, &saved_termios);
}

static void
copy_winsize (int to)
{
  struct winsize ws;
  if (ioctl (STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
    ioctl (to, TIOCSWINSZ, &ws);
}

/* copies what can be read from @from to @to; false at EOF or error */
static bool
pump (int from, int to)
{
  char buf[4096];
  ssize_t n = read (from, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return true;
  if (n <= 0)
    return false;
  return shim_write_all (to, buf, (size_t) n) == 0;
}

static int
exit_code (int status)
{
  if (WIFSIGNALED (status))
    return 128 + WTERMSIG (status);
  return WIFEXITED (status) ? WEXITSTATUS (status) : SHIM_EXIT_FAILURE;
}

int
shim_exec_main (const struct shim_exec_request *rq)
{
  _cleanup_config_ struct shim_config *c = NULL;
  _cleanup_close_ int shim_fd = -1, init_fd = -1, root_fd = -1, bundle_fd = -1, master = -1, slave = -1, sig_fd = -1;
  struct shim_exec e = { 0 };
  char bundle_abs[PATH_MAX];
  int r;

  /* first: nothing in the container may open our /proc/PID */
  if (prctl (PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
    return shim_errorf (negative_errno (), "PR_SET_DUMPABLE");
  if ((shim_fd = pidfd_open_ (rq->shim_pid)) < 0)
    return shim_errorf (negative_errno (), "process %d", (int) rq->shim_pid);
  if ((r = check_is_shim (rq->shim_pid, rq->name)) < 0)
    return r;

  /* the bundle the running shim started from: its working directory */
  if (rq->bundle)
    snprintf (bundle_abs, sizeof bundle_abs, "%s", rq->bundle);
  else
    {
      char cwd[64];
      snprintf (cwd, sizeof cwd, "/proc/%d/cwd", (int) rq->shim_pid);
      ssize_t n = readlink (cwd, bundle_abs, sizeof bundle_abs - 1);
      if (n < 0)
        return shim_errorf (negative_errno (), "%s", cwd);
      bundle_abs[n] = '\0';
    }
  if (!pidfd_alive (shim_fd))
    return shim_refusef ("the container's shim (pid %d) went away", (int) rq->shim_pid);
  bundle_fd = open (bundle_abs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (bundle_fd < 0)
    return shim_errorf (negative_errno (), "bundle %s", bundle_abs);
  if ((r = config_load (bundle_fd, bundle_abs, &c)) < 0)
    return r;
  if (c->seccomp)
    {
      if (!seccomp_cache_load (c->seccomp, bundle_fd, c->text, c->text_len) && (r = seccomp_compile (c->seccomp)) < 0)
        return r;
      seccomp_release_profile (c->seccomp);
    }

  /* what this command runs as, with, and where */
  if (rq->user && (r = parse_user (rq->user, c)) < 0)
    return r;
  if (rq->workdir)
    {
      if (rq->workdir[0] != '/')
        return shim_refusef ("--workdir=%s: not an absolute path", rq->workdir);
      free (c->cwd);
      c->cwd = strdup (rq->workdir);
      if (!c->cwd)
        return shim_errorf (-ENOMEM, "--workdir");
    }
  _cleanup_free_ char **env = merge_env (c->env, rq->env, rq->n_env, rq->tty);
  if (!env)
    return shim_errorf (-ENOMEM, "environment");
  char **config_env = c->env, **config_args = c->args;
  c->env = env;
  c->args = rq->argv;
  r = exec_prepare (c, 0, false, &e);
  c->env = config_env;
  c->args = config_args;
  if (r < 0)
    return r;

  /* the container's init, its root */
  pid_t init = find_init (rq->shim_pid, &init_fd);
  if (init < 0)
    {
      exec_free (&e);
      return init;
    }
  char root[64];
  snprintf (root, sizeof root, "/proc/%d/root", (int) init);
  root_fd = open (root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0 || !pidfd_alive (init_fd))
    {
      exec_free (&e);
      return root_fd < 0 ? shim_errorf (negative_errno (), "%s", root)
                         : shim_refusef ("the container's init (pid %d) went away", (int) init);
    }

  if (rq->tty)
    {
      master = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
      if (master < 0 || grantpt (master) < 0 || unlockpt (master) < 0)
        {
          exec_free (&e);
          return shim_errorf (negative_errno (), "allocating a pty");
        }
      const char *pts = ptsname (master);
      slave = pts ? open (pts, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
      if (slave < 0)
        {
          exec_free (&e);
          return shim_errorf (negative_errno (), "opening the pty");
        }
      copy_winsize (master);
    }

  /* on the host still: the unit's cgroup, the limits */
  join_cgroups (init);
  if ((r = shim_apply_limits (c)) < 0)
    {
      exec_free (&e);
      return r;
    }
  /* into the container: its namespaces (the pid namespace applies to the
   * child), then its root */
  if (setns (init_fd, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | CLONE_NEWCGROUP) < 0)
    {
      exec_free (&e);
      return shim_errorf (negative_errno (), "joining the container's namespaces");
    }
  /* from here /run/systemd/journal/socket would be the container's */
  shim_log_stderr_only ();
  if (fchdir (root_fd) < 0 || chroot (".") < 0 || chdir ("/") < 0)
    {
      exec_free (&e);
      return shim_errorf (negative_errno (), "entering the container's root");
    }

  sigset_t sigs;
  sigemptyset (&sigs);
  sigaddset (&sigs, SIGCHLD);
  static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
    sigaddset (&sigs, forwarded[i]);
  sigprocmask (SIG_BLOCK, &sigs, NULL);
  sig_fd = signalfd (-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sig_fd < 0)
    {
      exec_free (&e);
      return shim_errorf (negative_errno (), "signalfd");
    }

  /* nothing of the host past this point: the child sees none of these */
  close (steal_fd (&root_fd));
  close (steal_fd (&bundle_fd));
  close (steal_fd (&shim_fd));
  close (steal_fd (&init_fd));
  int alive[2];
  if (pipe2 (alive, O_CLOEXEC) < 0)
    {
      exec_free (&e);
      return shim_errorf (negative_errno (), "pipe2");
    }
  pid_t pid = fork ();
  if (pid < 0)
    {
      exec_free (&e);
      return shim_errorf (negative_errno (), "fork");
    }
  if (pid == 0)
    {
      struct shim_step_error err;
      struct pollfd gone = { .fd = alive[0], .events = POLLIN };
      close (alive[1]);
      if (master >= 0)
        close (master);
      /* the command ends with this process (a health check past its
       * timeout, a killed sysctr exec; a uid change clears it, so the
       * health check also kills the command itself). If the parent died
       * before this, the pipe says so. */
      if (prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || poll (&gone, 1, 0) != 0)
        _exit (SHIM_EXIT_FAILURE);
      close (alive[0]);
      /* a session of its own, always: the caller's terminal (fds 0-2
       * without --tty) is then not its controlling terminal, so it cannot
       * push input into the caller's shell (TIOCSTI, CVE-2016-2779) */
      if (setsid () < 0)
        _exit (SHIM_EXIT_FAILURE);
      if (rq->tty
          && (ioctl (slave, TIOCSCTTY, 0) < 0 || dup2 (slave, 0) < 0 || dup2 (slave, 1) < 0 || dup2 (slave, 2) < 0))
        {
          shim_errorf (negative_errno (), "the pty");
          shim_log_error ();
          _exit (SHIM_EXIT_FAILURE);
        }
      r = exec_payload (c, &e, &err);
      dprintf (STDERR_FILENO, "sysctr exec: %s%s%s: %s%s%s%s\n", err.what ? err.what : "executing", err.arg ? " " : "",
               err.arg ? err.arg : "", strerror (-r), err.hint ? " (" : "", err.hint ? err.hint : "",
               err.hint ? ")" : "");
      bool executing = err.what && strcmp (err.what, "executing") == 0;
      _exit (!executing ? SHIM_EXIT_FAILURE : r == -ENOENT ? 127 : 126);
    }
  exec_free (&e);
  close (alive[0]);
  close (steal_fd (&slave));
  signal (SIGPIPE, SIG_IGN); /* a closed stdout must not leave the terminal raw */

  if (rq->tty && isatty (STDIN_FILENO) && tcgetattr (STDIN_FILENO, &saved_termios) == 0)
    {
      struct termios raw = saved_termios;
      cfmakeraw (&raw);
      termios_saved = tcsetattr (STDIN_FILENO, TCSANOW, &raw) == 0;
    }

  int status = 0;
  bool in_open = rq->tty, out_open = rq->tty;
  for (;;)
    {
      struct pollfd pfd[3] = {
        { .fd = sig_fd, .events = POLLIN },
        { .fd = in_open ? STDIN_FILENO : -1, .events = POLLIN },
        { .fd = out_open ? master : -1, .events = POLLIN },
      };
      if (poll (pfd, 3, -1) < 0 && errno != EINTR)
        {
          r = shim_errorf (negative_errno (), "poll");
          kill (pid, SIGKILL);
          waitpid (pid, NULL, 0);
          restore_terminal ();
          return r;
        }
      if (pfd[2].revents & (POLLIN | POLLHUP | POLLERR))
        out_open = pump (master, STDOUT_FILENO);
      if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR) && !pump (STDIN_FILENO, master))
        {
          /* end of input: from a terminal its EOF character went through
           * already; from a pipe, say it as the terminal would */
          in_open = false;
          if (!termios_saved)
            {
              struct termios t;
              char eof = tcgetattr (master, &t) == 0 ? (char) t.c_cc[VEOF] : 4;
              (void) shim_write_all (master, &eof, 1);
            }
        }
      struct signalfd_siginfo si;
      while (read (sig_fd, &si, sizeof si) == sizeof si)
        {
          if (si.ssi_signo == SIGCHLD)
            continue;
          if (si.ssi_signo == SIGWINCH && rq->tty)
            copy_winsize (master);
          else
            kill (pid, (int) si.ssi_signo);
        }
      if (waitpid (pid, &status, WNOHANG) == pid)
        break;
    }
  /* what the command wrote just before it exited */
  while (rq->tty && out_open)
    {
      struct pollfd p = { .fd = master, .events = POLLIN };
      if (poll (&p, 1, 0) <= 0 || !pump (master, STDOUT_FILENO))
        break;
    }
  restore_terminal ();
  return exit_code (status);
}
