/* sysctr-shim: run an OCI runtime bundle as the main process of a systemd unit.
 *
 *   sysctr-shim [--bundle=DIR] [--name=NAME]
 *
 * The parent stays on the host as the unit's main pid: it relays sd_notify
 * messages, forwards signals and finally exits the way the payload did. The
 * child, created with clone(2) in new namespaces, builds the root and becomes
 * the container's init (or the payload itself).
 */
#include "shim.h"

#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "config.h"

/* ---- the child ------------------------------------------------------------ */

static const int forwarded_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGQUIT };

struct child_args
{
  const struct shim_config *config;
  struct shim_exec *exec;
  int rootfs_fd;
  const char *root_path;
  const char *notify_dir;
  int sync_fd;   /* child end; CLOEXEC, so EOF tells the parent execve happened */
  int status_fd; /* write end of the init's status pipe */
};

static int
write_sysctls (const struct shim_config *c)
{
  int r;
  /* The host's /proc is still visible here, and net.* and IPC sysctls
   * resolve to the namespaces of the writer: ours. */
  for (size_t i = 0; i < c->n_sysctl; i++)
    {
      char path[512];
      _cleanup_close_ int fd = -1;
      size_t len = strlen (c->sysctl_values[i]);
      snprintf (path, sizeof path, "/proc/sys/%s", c->sysctl_keys[i]);
      fd = open (path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0)
        return shim_errorf (-errno, "sysctl %s", path + 10);
      if ((r = shim_write_all (fd, c->sysctl_values[i], len)) < 0)
        return shim_errorf (r, "sysctl %s", path + 10);
    }
  return 0;
}

static _Noreturn void
child_fail (int sync_fd)
{
  char e = 'E';
  shim_log_error ();
  if (write (sync_fd, &e, 1) < 0)
    {
      /* the parent is gone; PDEATHSIG is about to end us anyway */
    }
  _exit (SHIM_EXIT_FAILURE);
}

static size_t
append (char *buf, size_t o, size_t size, const char *s)
{
  while (*s && o + 1 < size)
    buf[o++] = *s++;
  return o;
}

/* The payload's last steps failed: one line on stderr, 'E' to the shim.
 * This may run in the vfork()ed child, so the line is put together on the
 * stack without stdio, strerror() or the shared error record. */
static _Noreturn void
payload_fail (int sync_fd, int r, const struct shim_step_error *err)
{
  char line[1024], num[24];
  const char *desc = strerrordesc_np (-r);
  size_t o = 0;

  o = append (line, o, sizeof line - 1, "sysctr-shim: ");
  o = append (line, o, sizeof line - 1, err->what ? err->what : "starting the payload");
  if (err->arg)
    {
      o = append (line, o, sizeof line - 1, " ");
      o = append (line, o, sizeof line - 1, err->arg);
    }
  if (err->num >= 0)
    {
      size_t n = 0;
      unsigned long v = (unsigned long) err->num;
      char *p = num + sizeof num;
      *--p = '\0';
      do
        {
          *--p = (char) ('0' + v % 10);
          n++;
        }
      while ((v /= 10) > 0 && n < sizeof num - 1);
      o = append (line, o, sizeof line - 1, " ");
      o = append (line, o, sizeof line - 1, p);
    }
  o = append (line, o, sizeof line - 1, ": ");
  o = append (line, o, sizeof line - 1, desc ? desc : "unknown error");
  if (err->hint)
    {
      o = append (line, o, sizeof line - 1, " (");
      o = append (line, o, sizeof line - 1, err->hint);
      o = append (line, o, sizeof line - 1, ")");
    }
  line[o++] = '\n';
  if (write (STDERR_FILENO, line, o) < 0 || write (sync_fd, "E", 1) < 0)
    {
      /* nobody left to tell */
    }
  _exit (SHIM_EXIT_FAILURE);
}

static _Noreturn void
payload_exec (struct child_args *a)
{
  struct shim_step_error err = { .num = -1 };
  int r = exec_payload (a->config, a->exec, &err);
  payload_fail (a->sync_fd, r, &err);
}

/* The vfork()ed payload, until execve(). It shares the init's memory and
 * runs on its stack below the init's frame: only syscalls and async-signal-
 * safe string functions, writing its own stack, the LISTEN_PID slot and
 * errno (which the init does not read after vfork() returns). */
static _Noreturn void
payload_after_vfork (struct child_args *a)
{
  close (a->status_fd);
  /* The init is our parent now; it dying (and with it the namespace) ends us. */
  prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  payload_exec (a);
}

/* Close every fd from 3 up, except 3 .. 3+N_LISTEN-1 and A and B. */
static int
close_other_fds (unsigned n_listen, int a, int b)
{
  unsigned lo = 3 + n_listen;
  unsigned keep[2] = { (unsigned) (a < b ? a : b), (unsigned) (a < b ? b : a) };

  for (size_t i = 0; i < 2; i++)
    {
      if (keep[i] < lo)
        continue;
      if (keep[i] > lo && close_range (lo, keep[i] - 1, 0) < 0)
        return negative_errno ();
      lo = keep[i] + 1;
    }
  return close_range (lo, ~0U, 0) < 0 ? negative_errno () : 0;
}

/* Before the payload exists, the init drops every fd of the host's that the
 * shim held: the bundle and rootfs (O_PATH, in the host's mount namespace),
 * the sd_notify sockets, the signalfd, fds inherited from systemd. A payload
 * that may open /proc/1/fd/N (same uid, caps that cover the init's) would
 * otherwise walk out through them. It keeps only what the vfork()ed payload
 * still needs (the socket-activation fds, sync_fd) and its status pipe, and
 * turns non-dumpable, so /proc/1/fd is closed to a payload without
 * CAP_SYS_PTRACE even in the moment before those go too (runc's init does
 * the same, CVE-2016-9962). The mm is shared with the vfork()ed child until
 * execve(), which resets dumpability for the payload. */
static int
init_seal_before_payload (const struct child_args *a)
{
  int r;
  if ((r = close_other_fds (a->exec->n_listen_fds, a->sync_fd, a->status_fd)) < 0)
    return shim_errorf (r, "init: closing inherited fds");
  if (prctl (PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
    return shim_errorf (negative_errno (), "init: PR_SET_DUMPABLE");
  return 0;
}

/* After execve(): the init keeps only the status pipe, and CAP_KILL. */
static int
init_seal (const struct child_args *a)
{
  int r;
  if ((r = close_other_fds (0, a->status_fd, a->status_fd)) < 0)
    return shim_errorf (r, "init: closing fds");
  return caps_restrict_init (a->exec->last_cap);
}

static _Noreturn void
child_main (struct child_args *a)
{
  const struct shim_config *c = a->config;
  char go;

  /* The container must not outlive the shim; the go byte closes the race
   * where the shim died before PDEATHSIG was armed. */
  if (prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
    {
      shim_errorf (-errno, "PR_SET_PDEATHSIG");
      child_fail (a->sync_fd);
    }
  if (read (a->sync_fd, &go, 1) != 1)
    _exit (SHIM_EXIT_FAILURE);

  for (size_t i = 0; i < c->n_ns_fds; i++)
    if (c->ns_types[i] != CLONE_NEWPID && setns (c->ns_fds[i], c->ns_types[i]) < 0)
      {
        shim_errorf (-errno, "joining a namespace from linux.namespaces");
        child_fail (a->sync_fd);
      }
  if (write_sysctls (c) < 0)
    child_fail (a->sync_fd);
  if (c->hostname && *c->hostname && sethostname (c->hostname, strlen (c->hostname)) < 0)
    {
      shim_errorf (-errno, "sethostname %s", c->hostname);
      child_fail (a->sync_fd);
    }
  if (c->domainname && *c->domainname && setdomainname (c->domainname, strlen (c->domainname)) < 0)
    {
      shim_errorf (-errno, "setdomainname %s", c->domainname);
      child_fail (a->sync_fd);
    }
  if (mounts_setup (c, a->rootfs_fd, a->root_path, a->notify_dir) < 0)
    child_fail (a->sync_fd);

  if (c->use_init)
    {
      /* vfork: no page tables copied, and the init only waits (a few
       * syscalls) until the payload's execve(). See payload_after_vfork()
       * for what the child may do meanwhile. */
      pid_t pid;
      if (init_seal_before_payload (a) < 0)
        child_fail (a->sync_fd);
      pid = vfork ();
      if (pid < 0)
        {
          shim_errorf (-errno, "fork");
          child_fail (a->sync_fd);
        }
      if (pid == 0)
        /* The child makes only syscalls and async-signal-safe string calls,
         * and writes only its stack, errno and the LISTEN_PID slot (see
         * payload_after_vfork). */
        // NOLINTNEXTLINE(clang-analyzer-unix.Vfork)
        payload_after_vfork (a);
      if (init_seal (a) < 0)
        {
          shim_log_error ();
          kill (pid, SIGKILL);
        }
      init_run (pid, a->status_fd, c);
    }
  close (a->status_fd);
  /* The payload is pid 1: nothing of the host's may be open when it sets its
   * working directory, or a cwd of /proc/self/fd/N (an O_PATH fd of the
   * bundle or the rootfs, in the host's mount namespace) would put it
   * outside the container: CVE-2024-21626. The init path did this above. */
  {
    int r = close_other_fds (a->exec->n_listen_fds, a->sync_fd, a->sync_fd);
    if (r < 0)
      {
        shim_errorf (r, "closing inherited fds");
        child_fail (a->sync_fd);
      }
  }
  payload_exec (a);
}

/* ---- the parent ----------------------------------------------------------- */

static int
parse_listen_fds (unsigned *ret)
{
  const char *fds = getenv ("LISTEN_FDS");
  const char *pid = getenv ("LISTEN_PID");
  char *end;
  unsigned long n;

  *ret = 0;
  if (!fds)
    return 0;
  /* As sd_listen_fds(): the fds are ours only if LISTEN_PID names us. */
  if (!pid || strtol (pid, &end, 10) != getpid () || *end)
    return 0;
  errno = 0;
  n = strtoul (fds, &end, 10);
  if (errno || *end || end == fds || n > 4096)
    return shim_refusef ("LISTEN_FDS=%s: not a valid fd count", fds);
  for (unsigned long i = 0; i < n; i++)
    if (fcntl (3 + (int) i, F_GETFD) < 0)
      return shim_errorf (-errno, "LISTEN_FDS=%lu: fd %lu", n, 3 + i);
  *ret = (unsigned) n;
  return 0;
}

static bool
valid_name (const char *s)
{
  size_t n = strlen (s);
  if (n == 0 || n > 64 || s[0] == '.' || s[0] == '-')
    return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'
          || *p == '.'))
      return false;
  return true;
}

static int
open_rootfs (int bundle_fd, const char *bundle_abs, const char *root, char **abs_ret, int *fd_ret)
{
  struct stat st;
  int fd;
  char *abs;

  if (root[0] == '/')
    abs = strdup (root);
  else if (asprintf (&abs, "%s/%s", bundle_abs, root) < 0)
    abs = NULL;
  if (!abs)
    return shim_errorf (-ENOMEM, "rootfs");
  if (lstat (abs, &st) < 0)
    {
      int r = shim_errorf (-errno, "rootfs %s", abs);
      free (abs);
      return r;
    }
  if (S_ISLNK (st.st_mode))
    {
      int r = shim_refusef ("rootfs %s: is a symlink, refusing (give the real path in root.path)", abs);
      free (abs);
      return r;
    }
  fd = open (abs, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    {
      int r = shim_errorf (-errno, "rootfs %s", abs);
      free (abs);
      return r;
    }
  *abs_ret = abs;
  *fd_ret = fd;
  return 0;
}

static void
usage (FILE *f)
{
  fputs ("Usage: sysctr-shim [--bundle=DIR] [--name=NAME] [--check [--root=TREE]]\n"
         "       sysctr-shim --exec=PID [--tty] [--user=UID[:GID]] [--env=K=V]... [--workdir=DIR] -- CMD [ARG...]\n"
         "Run the OCI runtime bundle DIR (default: the working directory) as a system container.\n"
         "--check: validate the bundle as a start would, do nothing privileged, and keep the\n"
         "compiled seccomp filter in DIR/seccomp.bpf; exit 0 when a start would proceed. Bind\n"
         "sources that do not exist yet are listed as \"missing-bind-source PATH\"; with\n"
         "--root, absolute ones are looked up inside TREE.\n"
         "--exec: run CMD in the container whose shim is PID, confined as its payload is\n"
         "(sysctr exec).\n",
         f);
}

static _Noreturn void
die_like (int status)
{
  if (WIFSIGNALED (status))
    {
      int sig = WTERMSIG (status);
      struct rlimit no_core = { 0, 0 };
      sigset_t set;
      /* Die of the payload's signal, so systemd sees what really happened
       * (a stop by SIGTERM is clean, Restart= sees a crash as a crash);
       * no core of the shim for the payload's SIGSEGV. */
      setrlimit (RLIMIT_CORE, &no_core);
      signal (sig, SIG_DFL);
      sigemptyset (&set);
      sigaddset (&set, sig);
      sigprocmask (SIG_UNBLOCK, &set, NULL);
      raise (sig);
      _exit (128 + sig);
    }
  _exit (WIFEXITED (status) ? WEXITSTATUS (status) : SHIM_EXIT_FAILURE);
}

/* What the start path holds; run_clear releases it on every way out that
 * is not the payload's own exit (die_like). */
struct run
{
  const char *name;
  char bundle_abs[PATH_MAX];
  int check_root_fd;
  int bundle_fd;
  int rootfs_fd;
  int sig_fd;
  char *root_abs;
  struct shim_config *c;
  struct shim_notify notify;
  struct shim_exec exec;
  int sync_fds[2];
  int status_fds[2];
  unsigned n_listen_fds;
  pid_t pid;
  struct shim_health_run health;
};

static void
run_close (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

static void
run_clear (struct run *run)
{
  run_close (&run->check_root_fd);
  run_close (&run->bundle_fd);
  run_close (&run->rootfs_fd);
  run_close (&run->sig_fd);
  for (int i = 0; i < 2; i++)
    {
      run_close (&run->sync_fds[i]);
      run_close (&run->status_fds[i]);
    }
  /* the environment borrows the config's strings: freed before it */
  exec_free (&run->exec);
  free (steal_ptr (&run->root_abs));
  config_free (steal_ptr (&run->c));
  notify_cleanup (&run->notify);
  health_clear (&run->health);
}

/* 1. Validate everything; nothing privileged happens before this is
 * done. With --check, this (and compiling the filter) is all. */
static int
validate (struct run *run, const char *bundle, const char *name, bool check, const char *check_root)
{
  run->bundle_fd = open (bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (run->bundle_fd < 0 || !realpath (bundle, run->bundle_abs))
    return shim_errorf (-errno, "bundle %s", bundle);
  if (!name)
    {
      name = strrchr (run->bundle_abs, '/') + 1;
      if (!*name)
        name = "root";
    }
  if (!valid_name (name))
    return shim_refusef ("--name=%s: invalid name (letters, digits, '.', '_' and '-', at most 64)", name);
  run->name = name;
  shim_log_set_name (name);
  if (check_root && !check)
    return shim_refusef ("--root is for --check only");
  if (check)
    {
      if (check_root && (run->check_root_fd = open (check_root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        return shim_errorf (-errno, "--root=%s", check_root);
      config_set_check (run->check_root_fd);
    }
  int r;
  if ((r = config_load (run->bundle_fd, run->bundle_abs, &run->c)) < 0
      || (r = open_rootfs (run->bundle_fd, run->bundle_abs, run->c->root_path, &run->root_abs, &run->rootfs_fd)) < 0)
    return r;
  return 0;
}

/* --check: everything above, the filter compiled and kept for the starts */
static int
keep_filter (struct run *run)
{
  struct shim_config *c = run->c;
  int r;
  if (c == NULL)
    return shim_errorf (-EINVAL, "no configuration");
  if (c->seccomp
      && ((r = seccomp_compile (c->seccomp)) < 0
          || (r = seccomp_cache_write (c->seccomp, run->bundle_fd, c->text, c->text_len)) < 0))
    return r;
  return 0;
}

/* 2. On the host: the filter, limits, the notify relay, the payload's
 * environment, the signals to forward, the pipes to the child. */
static int
prepare_host (struct run *run)
{
  struct shim_config *c = run->c;
  int r;
  if (c == NULL)
    return shim_errorf (-EINVAL, "no configuration");
  if (c->seccomp)
    {
      if (!seccomp_cache_load (c->seccomp, run->bundle_fd, c->text, c->text_len)
          && (r = seccomp_compile (c->seccomp)) < 0)
        return r;
      /* what the container's init inherits at clone() should be small */
      seccomp_release_profile (c->seccomp);
    }
  free (steal_ptr (&c->text));
  malloc_trim (0);
  if ((r = parse_listen_fds (&run->n_listen_fds)) < 0 || (r = shim_apply_limits (c)) < 0)
    return r;
  run->notify.upstream = getenv ("NOTIFY_SOCKET");
  if (run->notify.upstream && *run->notify.upstream && (r = notify_setup (&run->notify, run->name, c->uid, c->gid)) < 0)
    return r;
  if ((r = exec_prepare (c, run->n_listen_fds, run->notify.dir_path != NULL, &run->exec)) < 0)
    return r;

  sigset_t sigs;
  sigemptyset (&sigs);
  sigaddset (&sigs, SIGCHLD);
  for (size_t i = 0; i < sizeof forwarded_signals / sizeof forwarded_signals[0]; i++)
    sigaddset (&sigs, forwarded_signals[i]);
  /* Blocked before clone(), so the init inherits a mask that queues them. */
  sigprocmask (SIG_BLOCK, &sigs, NULL);
  run->sig_fd = signalfd (-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
  if (run->sig_fd < 0)
    return shim_errorf (-errno, "signalfd");
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, run->sync_fds) < 0)
    return shim_errorf (-errno, "socketpair");
  if (pipe2 (run->status_fds, O_CLOEXEC) < 0)
    return shim_errorf (-errno, "pipe2");
  for (size_t i = 0; i < c->n_ns_fds; i++)
    /* pid namespaces apply to children: join before clone() */
    if (c->ns_types[i] == CLONE_NEWPID && setns (c->ns_fds[i], CLONE_NEWPID) < 0)
      return shim_errorf (-errno, "joining the pid namespace from linux.namespaces");
  return 0;
}

/* 3. clone(): fork semantics (no new stack), new namespaces. The process
 * stays in the unit's cgroup; a cgroup namespace rooted there, if asked.
 * 0: the payload runs; 1: the child failed and said why; < 0: our error
 * (the child, if any, is killed and reaped). */
static int
start_container (struct run *run)
{
  struct child_args args = { .config = run->c,
                             .exec = &run->exec,
                             .rootfs_fd = run->rootfs_fd,
                             .root_path = run->root_abs,
                             .notify_dir = run->notify.dir_path,
                             .sync_fd = run->sync_fds[1],
                             .status_fd = run->status_fds[1] };
  char byte = 'G';
  ssize_t n;
  int r;

  if (run->c == NULL)
    return shim_errorf (-EINVAL, "no configuration");
  run->pid = (pid_t) syscall (SYS_clone, (unsigned long) run->c->clone_flags | SIGCHLD, NULL, NULL, NULL, NULL);
  if (run->pid < 0)
    return shim_errorf (-errno, "clone");
  if (run->pid == 0)
    {
      close (run->sync_fds[0]);
      close (run->status_fds[0]);
      child_main (&args);
    }
  run_close (&run->sync_fds[1]);
  run_close (&run->status_fds[1]);
  if ((r = shim_write_all (run->sync_fds[0], &byte, 1)) < 0)
    {
      shim_errorf (r, "starting the container");
      kill (run->pid, SIGKILL);
      waitpid (run->pid, NULL, 0);
      return r;
    }
  /* EOF: the payload's execve() closed the last copy. 'E': it failed and
   * already said why. */
  do
    n = read (run->sync_fds[0], &byte, 1);
  while (n < 0 && errno == EINTR);
  run_close (&run->sync_fds[0]);
  if (n != 0)
    {
      kill (run->pid, SIGKILL);
      waitpid (run->pid, NULL, 0);
      return 1;
    }
  return 0;
}

/* 4. Steady state: keep the resident parent small, relay notify messages,
 * forward signals, until the container ends; its status in *status. */
static int
relay_until_exit (struct run *run, int *status)
{
  for (unsigned i = 0; i < run->n_listen_fds; i++)
    close (3 + (int) i);
  run_close (&run->rootfs_fd);
  run_close (&run->bundle_fd);
  exec_free (&run->exec);
  if (run->c->health.test)
    health_init (&run->health, &run->c->health, run->bundle_abs, run->name);
  config_free (steal_ptr (&run->c));
  free (steal_ptr (&run->root_abs));
  malloc_trim (0);
  shim_release_code ();

  for (;;)
    {
      bool want_write;
      int timeout = notify_flush (&run->notify, &want_write);
      int health_ms = health_timeout (&run->health);
      if (health_ms >= 0 && (timeout < 0 || health_ms < timeout))
        timeout = health_ms;
      struct pollfd pfd[3] = {
        { .fd = run->sig_fd, .events = POLLIN },
        { .fd = run->notify.listen_fd, .events = POLLIN },
        { .fd = want_write ? run->notify.upstream_fd : -1, .events = POLLOUT },
      };
      struct signalfd_siginfo si;
      if (poll (pfd, 3, timeout) < 0)
        {
          if (errno == EINTR)
            continue;
          /* the shim can no longer relay or forward: end the container
           * and fail, never report the payload's status as ours */
          int r = shim_errorf (-errno, "poll");
          kill (run->pid, SIGKILL);
          waitpid (run->pid, NULL, 0);
          return r;
        }
      if (pfd[1].revents & POLLIN)
        notify_receive (&run->notify);
      while (read (run->sig_fd, &si, sizeof si) == sizeof si)
        {
          if (si.ssi_signo == SIGCHLD)
            continue;
          if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT || si.ssi_signo == SIGQUIT)
            run->notify.stopping = true;
          kill (run->pid, (int) si.ssi_signo);
        }
      if (waitpid (run->pid, status, WNOHANG) == run->pid)
        break;
      health_tick (&run->health, &run->notify);
    }
  health_clear (&run->health);

  /* The init reports the payload's status; without it (payload is pid 1, or
   * the init was killed) the child's own status is the answer. */
  int payload_status;
  if (read (run->status_fds[0], &payload_status, sizeof payload_status) == sizeof payload_status)
    *status = payload_status;
  notify_receive (&run->notify);
  bool want_write;
  (void) notify_flush (&run->notify, &want_write);
  return 0;
}

int
main (int argc, char **argv)
{
  static const struct option opts[] = {
    { "bundle", required_argument, NULL, 'b' },  { "name", required_argument, NULL, 'n' },
    { "help", no_argument, NULL, 'h' },          { "version", no_argument, NULL, 'V' },
    { "check", no_argument, NULL, 'c' },         { "root", required_argument, NULL, 'r' },
    { "exec", required_argument, NULL, 'x' },    { "tty", no_argument, NULL, 't' },
    { "user", required_argument, NULL, 'u' },    { "env", required_argument, NULL, 'e' },
    { "workdir", required_argument, NULL, 'w' }, { NULL, 0, NULL, 0 },
  };
  struct shim_exec_request rq = { 0 };
  char *env_set[64];
  const char *bundle = ".", *name = NULL;
  bool check = false;
  const char *check_root = NULL;
  struct run run = {
    .check_root_fd = -1,
    .bundle_fd = -1,
    .rootfs_fd = -1,
    .sig_fd = -1,
    .notify = { .listen_fd = -1, .dir_fd = -1, .upstream_fd = -1, .head = NULL },
    .sync_fds = { -1, -1 },
    .status_fds = { -1, -1 },
  };
  int opt, r, status = 0;

  /* "+": options end at the first argument (the command of --exec) */
  while ((opt = getopt_long (argc, argv, "+", opts, NULL)) >= 0)
    {
      /* optarg is never NULL for a required_argument; "" keeps the analyzer
       * from following NULL through every option */
      const char *arg = optarg ? optarg : "";
      switch (opt)
        {
        case 'b':
          bundle = rq.bundle = arg;
          break;
        case 'n':
          name = arg;
          break;
        case 'h':
          usage (stdout);
          return 0;
        case 'V':
          puts ("sysctr-shim " PACKAGE_VERSION);
          return 0;
        case 'c':
          check = true;
          break;
        case 'r':
          check_root = arg;
          break;
        case 'x':
          {
            char *end;
            long pid = strtol (arg, &end, 10);
            if (*end || pid <= 1 || pid > INT_MAX)
              {
                dprintf (STDERR_FILENO, "sysctr-shim: --exec=%s: not a process id\n", arg);
                return SHIM_EXIT_FAILURE;
              }
            rq.shim_pid = (pid_t) pid;
            break;
          }
        case 't':
          rq.tty = true;
          break;
        case 'u':
          rq.user = arg;
          break;
        case 'w':
          rq.workdir = arg;
          break;
        case 'e':
          if (!strchr (arg, '=') || arg[0] == '=' || rq.n_env >= sizeof env_set / sizeof env_set[0])
            {
              dprintf (STDERR_FILENO, "sysctr-shim: --env=%s: not K=V (at most 64)\n", arg);
              return SHIM_EXIT_FAILURE;
            }
          env_set[rq.n_env++] = (char *) arg;
          break;
        default:
          usage (stderr);
          return SHIM_EXIT_FAILURE;
        }
    }
  if (rq.shim_pid)
    {
      if (optind >= argc || check)
        {
          dprintf (STDERR_FILENO, "sysctr-shim: --exec needs a command (and no --check)\n");
          return SHIM_EXIT_FAILURE;
        }
      rq.env = env_set;
      rq.argv = argv + optind;
      rq.name = name;
      if (name)
        shim_log_set_name (name);
      if ((r = shim_exec_main (&rq)) < 0)
        {
          shim_log_error ();
          return SHIM_EXIT_FAILURE;
        }
      return r;
    }
  if (rq.tty || rq.user || rq.workdir || rq.n_env)
    {
      dprintf (STDERR_FILENO, "sysctr-shim: --tty, --user, --env and --workdir are for --exec\n");
      return SHIM_EXIT_FAILURE;
    }
  if (optind < argc)
    {
      dprintf (STDERR_FILENO, "sysctr-shim: unexpected argument \"%s\"\n", argv[optind]);
      return SHIM_EXIT_FAILURE;
    }

  if (validate (&run, bundle, name, check, check_root) < 0)
    goto fail;
  if (check)
    {
      if (keep_filter (&run) < 0)
        goto fail;
      run_clear (&run);
      return 0;
    }
  if (prepare_host (&run) < 0 || (r = start_container (&run)) < 0)
    goto fail;
  if (r == 1)
    {
      run_clear (&run); /* the child said why already */
      return SHIM_EXIT_FAILURE;
    }
  if (relay_until_exit (&run, &status) < 0)
    goto fail;
  notify_cleanup (&run.notify);
  die_like (status);

fail:
  shim_log_error ();
  run_clear (&run);
  return SHIM_EXIT_FAILURE;
}
