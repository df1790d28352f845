/* sysctr-probe: a tiny static program placed in test rootfs to report what
 * the container looks like from the inside. Output is "key=value" lines.
 *
 *   sysctr-probe report            everything below, one key per line
 *   sysctr-probe notify MSG...     send one datagram (lines MSG) to $NOTIFY_SOCKET
 *   sysctr-probe sleep-notify S MSG...  sleep S seconds, then notify, then sleep
 *   sysctr-probe accept            accept one connection on fd 3, answer "hello from pid PID" and
 *                                  what sd_listen_fds() and /proc/self/fd said before accepting
 *   sysctr-probe alloc MIB         touch MIB MiB of memory, report, sleep
 *   sysctr-probe sleep SECONDS     sleep (no signal handlers)
 *   sysctr-probe exit CODE         exit with CODE
 *   sysctr-probe cat FILE          copy FILE to stdout
 *   sysctr-probe write FILE TEXT   write TEXT into FILE (prints errno name on failure)
 *   sysctr-probe init-fds          what /proc/1/fd shows, and whether any of pid 1's fds opens
 *   sysctr-probe unmask PATH       try to undo a masked path (umount, remount rw, bind over it)
 *   sysctr-probe fds               the open fds only
 *   sysctr-probe print TEXT...     print each TEXT as a line, then sleep (for the journal)
 *   sysctr-probe mknod PATH MAJ MIN  make a char device node, then try to open it read-write
 *   sysctr-probe cwd               getcwd(), then try to walk ".." out of the working directory
 *                                  and create /sysctr-escape there
 *   sysctr-probe syscalls          try syscalls the default seccomp filter denies, with harmless
 *                                  arguments, and report the errno each one got
 *   sysctr-probe notify-flood N MSG  send MSG N times as fast as possible, then sleep
 *   sysctr-probe tiocsti TEXT      push TEXT into the input of the terminal on fd 0 (TIOCSTI), one
 *                                  character at a time; "tiocsti=ok" or "tiocsti=ERRNO-NAME"
 *   sysctr-probe watchdog N        READY=1, then WATCHDOG=1 every 300 ms for N pings, then silence
 *   sysctr-probe term-extend       on SIGTERM, notify "EXTEND_TIMEOUT_USEC=600000000" and
 *                                  "STATUS=stopping", then exit 0 a moment later
 *   sysctr-probe true
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

static const char *
errname (int e)
{
  switch (e)
    {
    case 0:
      return "OK";
    case EROFS:
      return "EROFS";
    case EACCES:
      return "EACCES";
    case EPERM:
      return "EPERM";
    case ENOENT:
      return "ENOENT";
    case EEXIST:
      return "EEXIST";
    case ENOTDIR:
      return "ENOTDIR";
    default:
      return strerror (e);
    }
}

static void
status_field (const char *field)
{
  FILE *f = fopen ("/proc/self/status", "re");
  char line[256];
  size_t n = strlen (field);
  if (!f)
    {
      printf ("%s=unreadable\n", field);
      return;
    }
  while (fgets (line, sizeof line, f))
    if (strncmp (line, field, n) == 0 && line[n] == ':')
      {
        char *v = line + n + 1;
        while (*v == ' ' || *v == '\t')
          v++;
        v[strcspn (v, "\n")] = '\0';
        printf ("%s=%s\n", field, v);
      }
  fclose (f);
}

/* mount options of the mount at MOUNTPOINT, from /proc/self/mountinfo (last one wins) */
static void
mount_opts (const char *key, const char *mountpoint)
{
  FILE *f = fopen ("/proc/self/mountinfo", "re");
  char line[4096], found[512] = "none";
  if (f)
    {
      while (fgets (line, sizeof line, f))
        {
          char mp[1024], opts[512];
          if (sscanf (line, "%*s %*s %*s %*s %1023s %511s", mp, opts) == 2 && strcmp (mp, mountpoint) == 0)
            snprintf (found, sizeof found, "%s", opts);
        }
      fclose (f);
    }
  printf ("%s=%s\n", key, found);
}

static void
sd_listen_fds_report (void)
{
  const char *pid = getenv ("LISTEN_PID"), *fds = getenv ("LISTEN_FDS");
  int n = -1;
  /* sd_listen_fds() semantics */
  if (pid && fds && atoi (pid) == getpid ())
    n = atoi (fds);
  printf ("listen_pid=%s\n", pid ? pid : "unset");
  printf ("listen_fds_env=%s\n", fds ? fds : "unset");
  printf ("sd_listen_fds=%d\n", n < 0 ? 0 : n);
  printf ("listen_fdnames=%s\n", getenv ("LISTEN_FDNAMES") ? getenv ("LISTEN_FDNAMES") : "unset");
}

static void
fds_report (void)
{
  DIR *d = opendir ("/proc/self/fd");
  struct dirent *de;
  char buf[512] = "";
  size_t o = 0;
  if (!d)
    {
      puts ("fds=unreadable");
      return;
    }
  while ((de = readdir (d)))
    {
      int fd;
      if (de->d_name[0] == '.')
        continue;
      fd = atoi (de->d_name);
      if (fd == dirfd (d))
        continue;
      o += (size_t) snprintf (buf + o, sizeof buf - o, "%s%d", o ? "," : "", fd);
      if (o >= sizeof buf)
        break;
    }
  closedir (d);
  printf ("fds=%s\n", buf);
}

static void
write_test (const char *key, const char *path)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int e = fd < 0 ? errno : 0;
  if (fd >= 0)
    {
      close (fd);
      unlink (path);
    }
  printf ("%s=%s\n", key, errname (e));
}

static void
masked (const char *path)
{
  struct stat st;
  const char *r;
  if (stat (path, &st) < 0)
    r = errname (errno);
  else if (S_ISCHR (st.st_mode) && st.st_rdev == makedev (1, 3))
    r = "devnull";
  else if (S_ISDIR (st.st_mode))
    {
      DIR *d = opendir (path);
      int n = 0;
      struct dirent *de;
      while (d && (de = readdir (d)))
        if (de->d_name[0] != '.')
          n++;
      if (d)
        closedir (d);
      r = n == 0 ? "emptydir" : "visible";
    }
  else
    r = "visible";
  printf ("masked:%s=%s\n", path, r);
}

static int
report (void)
{
  char host[256] = "";
  gethostname (host, sizeof host);
  printf ("hostname=%s\n", host);
  printf ("pid=%d\n", (int) getpid ());
  printf ("ppid=%d\n", (int) getppid ());
  printf ("uid=%d\ngid=%d\n", (int) getuid (), (int) getgid ());
  status_field ("CapInh");
  status_field ("CapPrm");
  status_field ("CapEff");
  status_field ("CapBnd");
  status_field ("CapAmb");
  status_field ("NoNewPrivs");
  status_field ("Seccomp");
  printf ("no_new_privs=%d\n", prctl (PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
  mount_opts ("root_opts", "/");
  mount_opts ("proc_opts", "/proc");
  mount_opts ("sys_opts", "/sys");
  mount_opts ("dev_opts", "/dev");
  mount_opts ("proc_sys_opts", "/proc/sys");
  write_test ("write_root", "/probe-write-test");
  write_test ("write_tmp", "/tmp/probe-write-test");
  write_test ("write_proc_sysrq", "/proc/sysrq-trigger");
  masked ("/proc/kcore");
  masked ("/proc/keys");
  masked ("/proc/acpi");
  masked ("/sys/firmware");
  {
    struct stat st;
    printf ("dev_null=%s\n", stat ("/dev/null", &st) == 0 && S_ISCHR (st.st_mode) ? "chr" : "missing");
    printf ("dev_pts_ptmx=%s\n", stat ("/dev/pts/ptmx", &st) == 0 ? "present" : "missing");
  }
  fds_report ();
  sd_listen_fds_report ();
  printf ("notify_socket=%s\n", getenv ("NOTIFY_SOCKET") ? getenv ("NOTIFY_SOCKET") : "unset");
  printf ("path_env=%s\n", getenv ("PATH") ? getenv ("PATH") : "unset");
  {
    char cwd[512];
    printf ("cwd=%s\n", getcwd (cwd, sizeof cwd) ? cwd : "?");
  }
  return 0;
}

static int notify_quiet;

static int
notify (int argc, char **argv)
{
  const char *path = getenv ("NOTIFY_SOCKET");
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  char msg[4096];
  size_t o = 0;
  int fd;
  if (!path || strlen (path) >= sizeof sa.sun_path)
    {
      fprintf (stderr, "sysctr-probe: NOTIFY_SOCKET unset\n");
      return 1;
    }
  memcpy (sa.sun_path, path, strlen (path) + 1);
  if (path[0] == '@')
    sa.sun_path[0] = '\0';
  for (int i = 0; i < argc; i++)
    o += (size_t) snprintf (msg + o, sizeof msg - o, "%s%s", i ? "\n" : "", argv[i]);
  fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || sendto (fd, msg, o, 0, (struct sockaddr *) &sa, sizeof sa) < 0)
    {
      fprintf (stderr, "sysctr-probe: notify: %s\n", strerror (errno));
      if (fd >= 0)
        close (fd);
      return 1;
    }
  close (fd);
  if (!notify_quiet)
    puts ("notify=sent");
  return 0;
}

/* pid 1 is the shim's init (or the payload itself): the fds it holds must be
 * nothing a payload could open its way out through (/proc/1/fd/N on a host
 * O_PATH fd is a way to the host's filesystem). */
static int
init_fds (void)
{
  DIR *d = opendir ("/proc/1/fd");
  struct dirent *de;
  char list[512] = "";
  size_t o = 0;
  int opened = 0;
  if (!d)
    {
      printf ("init_fds=%s\ninit_fds_opened=0\n", errname (errno));
      return 0;
    }
  while ((de = readdir (d)))
    {
      char path[300];
      int fd;
      if (de->d_name[0] == '.')
        continue;
      if (o < sizeof list)
        o += (size_t) snprintf (list + o, sizeof list - o, "%s%s", o ? "," : "", de->d_name);
      snprintf (path, sizeof path, "/proc/1/fd/%s", de->d_name);
      fd = open (path, O_PATH | O_CLOEXEC);
      if (fd >= 0)
        {
          char target[256] = "";
          ssize_t n = readlink (path, target, sizeof target - 1);
          if (n > 0)
            target[n] = '\0';
          printf ("init_fd_open:%s=%s\n", de->d_name, target);
          opened++;
          close (fd);
        }
    }
  closedir (d);
  printf ("init_fds=%s\ninit_fds_opened=%d\n", list, opened);
  return 0;
}

/* Each way a payload could try to see under a masked path again. */
static int
do_mknod (const char *path, unsigned maj, unsigned min)
{
  int r = mknod (path, S_IFCHR | 0600, makedev (maj, min));
  printf ("mknod=%s\n", errname (r < 0 ? errno : 0));
  if (r == 0)
    {
      int fd = open (path, O_RDWR | O_CLOEXEC);
      printf ("open=%s\n", errname (fd < 0 ? errno : 0));
      if (fd >= 0)
        close (fd);
      unlink (path);
    }
  return 0;
}

/* CVE-2024-21626: a working directory that is an fd of the runtime's,
 * in the host's mount namespace, leads out of the container by "..". */
static int
cwd_escape (void)
{
  char buf[4096];
  long r = syscall (SYS_getcwd, buf, sizeof buf);
  printf ("getcwd=%s\n", r < 0 ? errname (errno) : buf);
  for (int i = 0; i < 16; i++)
    if (chdir ("..") < 0)
      break;
  {
    int fd = open ("sysctr-escape", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    printf ("escape_write=%s\n", errname (fd < 0 ? errno : 0));
    if (fd >= 0)
      close (fd);
  }
  return 0;
}

static void
try_syscall (const char *name, long nr, long a0, long a1, long a2)
{
  long r;
  errno = 0;
  r = syscall (nr, a0, a1, a2, 0, 0, 0);
  printf ("syscall:%s=%s\n", name, r < 0 ? errname (errno) : "OK");
}

static int
syscalls (void)
{
  /* arguments that fail harmlessly even if the call is allowed */
  try_syscall ("getpid", SYS_getpid, 0, 0, 0);
  try_syscall ("keyctl", SYS_keyctl, -1, 0, 0);
  try_syscall ("add_key", SYS_add_key, 0, 0, 0);
  try_syscall ("bpf", SYS_bpf, -1, 0, 0);
  try_syscall ("kexec_load", SYS_kexec_load, 0, 0, 0);
  try_syscall ("open_by_handle_at", SYS_open_by_handle_at, -1, 0, 0);
  try_syscall ("userfaultfd", SYS_userfaultfd, -1, 0, 0);
  try_syscall ("swapon", SYS_swapon, 0, 0, 0);
  try_syscall ("perf_event_open", SYS_perf_event_open, 0, 0, 0);
  try_syscall ("personality", SYS_personality, 0x0040000 /* ADDR_NO_RANDOMIZE */, 0, 0);
  try_syscall ("vmsplice", SYS_vmsplice, -1, 0, 0);
  {
    int s = socket (AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 9 /* NETLINK_AUDIT */);
    printf ("syscall:socket_audit=%s\n", s < 0 ? errname (errno) : "OK");
    if (s >= 0)
      close (s);
  }
  return 0;
}

static volatile sig_atomic_t got_term;
static void
on_term (int sig)
{
  (void) sig;
  got_term = 1;
}

static int
term_extend (void)
{
  char *msgs[] = { "EXTEND_TIMEOUT_USEC=600000000", "STATUS=stopping" };
  signal (SIGTERM, on_term);
  puts ("term_extend=waiting");
  fflush (stdout);
  while (!got_term)
    pause ();
  notify (2, msgs);
  fflush (stdout);
  usleep (300 * 1000);
  return 0;
}

static int
unmask (const char *path)
{
  int r;
  r = umount2 (path, MNT_DETACH);
  printf ("umount=%s\n", errname (r < 0 ? errno : 0));
  r = mount (NULL, path, NULL, MS_REMOUNT | MS_BIND, NULL);
  printf ("remount=%s\n", errname (r < 0 ? errno : 0));
  r = mount ("/proc", path, NULL, MS_BIND, NULL);
  printf ("bind=%s\n", errname (r < 0 ? errno : 0));
  masked (path);
  return 0;
}

int
main (int argc, char **argv)
{
  const char *cmd = argc > 1 ? argv[1] : "report";
  setvbuf (stdout, NULL, _IOLBF, 0);
  if (strcmp (cmd, "report") == 0)
    return report ();
  if (strcmp (cmd, "true") == 0)
    return 0;
  if (strcmp (cmd, "exit") == 0)
    return argc > 2 ? atoi (argv[2]) : 0;
  if (strcmp (cmd, "sleep") == 0)
    {
      unsigned s = argc > 2 ? (unsigned) atoi (argv[2]) : 3600;
      while (s)
        s = sleep (s);
      return 0;
    }
  if (strcmp (cmd, "notify") == 0)
    return notify (argc - 2, argv + 2);
  if (strcmp (cmd, "notify-sleep") == 0)
    {
      int r = notify (argc - 2, argv + 2);
      fflush (stdout);
      sleep (3600);
      return r;
    }
  if (strcmp (cmd, "sleep-notify") == 0 && argc > 2)
    {
      unsigned s = (unsigned) atoi (argv[2]);
      int r;
      while (s)
        s = sleep (s);
      r = notify (argc - 3, argv + 3);
      fflush (stdout);
      sleep (3600);
      return r;
    }
  if (strcmp (cmd, "alloc") == 0 && argc > 2)
    {
      size_t mib = (size_t) atoi (argv[2]);
      for (size_t i = 0; i < mib; i++)
        {
          char *p = malloc (1 << 20);
          if (!p)
            {
              printf ("alloc=ENOMEM at %zu MiB\n", i);
              return 1;
            }
          memset (p, 1, 1 << 20);
        }
      printf ("alloc=%zu MiB\n", mib);
      fflush (stdout);
      sleep (3600);
      return 0;
    }
  if (strcmp (cmd, "accept") == 0)
    {
      const char *lpid = getenv ("LISTEN_PID"), *lfds = getenv ("LISTEN_FDS");
      int nfds = lpid && lfds && atoi (lpid) == getpid () ? atoi (lfds) : 0;
      char buf[640];
      int c, n;
      sd_listen_fds_report ();
      fds_report ();
      fflush (stdout);
      c = accept (3, NULL, NULL);
      if (c < 0)
        {
          printf ("accept=%s\n", strerror (errno));
          return 1;
        }
      {
        /* the fds as they were before accept(): the report above, again, in the answer */
        char fdl[512] = "";
        size_t o = 0;
        DIR *d = opendir ("/proc/self/fd");
        struct dirent *de;
        while (d && (de = readdir (d)))
          {
            int fd = atoi (de->d_name);
            if (de->d_name[0] == '.' || fd == dirfd (d) || fd == c)
              continue;
            if (o < sizeof fdl)
              o += (size_t) snprintf (fdl + o, sizeof fdl - o, "%s%d", o ? "," : "", fd);
          }
        if (d)
          closedir (d);
        n = snprintf (buf, sizeof buf, "hello from pid %d sd_listen_fds=%d fds=%s\n", (int) getpid (), nfds, fdl);
      }
      if (write (c, buf, (size_t) n) < 0)
        return 1;
      close (c);
      puts ("accept=ok");
      return 0;
    }
  if (strcmp (cmd, "init-fds") == 0)
    return init_fds ();
  if (strcmp (cmd, "unmask") == 0 && argc > 2)
    return unmask (argv[2]);
  if (strcmp (cmd, "mknod") == 0 && argc > 4)
    return do_mknod (argv[2], (unsigned) atoi (argv[3]), (unsigned) atoi (argv[4]));
  if (strcmp (cmd, "term-extend") == 0)
    return term_extend ();
  if (strcmp (cmd, "cwd") == 0)
    return cwd_escape ();
  if (strcmp (cmd, "syscalls") == 0)
    return syscalls ();
  if (strcmp (cmd, "tiocsti") == 0 && argc > 2)
    {
      for (const char *p = argv[2]; *p; p++)
        if (ioctl (0, TIOCSTI, p) < 0)
          {
            printf ("tiocsti=%s\n", errno == EPERM ? "EPERM" : errno == EIO ? "EIO" : strerror (errno));
            return 1;
          }
      puts ("tiocsti=ok");
      return 0;
    }
  if (strcmp (cmd, "watchdog") == 0 && argc > 2)
    {
      int n = atoi (argv[2]);
      char *ready[] = { (char *) "READY=1" }, *ping[] = { (char *) "WATCHDOG=1" };
      notify_quiet = 1;
      if (notify (1, ready) != 0)
        return 1;
      for (int i = 0; i < n; i++)
        {
          usleep (300 * 1000);
          notify (1, ping);
        }
      printf ("watchdog_pings=%d\n", n);
      fflush (stdout);
      sleep (3600); /* silent: systemd's watchdog must end it */
      return 0;
    }
  if (strcmp (cmd, "notify-flood") == 0 && argc > 3)
    {
      int n = atoi (argv[2]), sent = 0;
      notify_quiet = 1;
      for (int i = 0; i < n; i++)
        sent += notify (1, argv + 3) == 0;
      printf ("flood_sent=%d\n", sent);
      fflush (stdout);
      sleep (3600);
      return 0;
    }
  if (strcmp (cmd, "fds") == 0)
    {
      fds_report ();
      return 0;
    }
  if (strcmp (cmd, "print") == 0)
    {
      for (int i = 2; i < argc; i++)
        puts (argv[i]);
      fflush (stdout);
      sleep (3600);
      return 0;
    }
  if (strcmp (cmd, "cat") == 0 && argc > 2)
    {
      FILE *f = fopen (argv[2], "re");
      int ch;
      if (!f)
        {
          printf ("cat=%s\n", errname (errno));
          return 1;
        }
      while ((ch = fgetc (f)) != EOF)
        putchar (ch);
      fclose (f);
      return 0;
    }
  if (strcmp (cmd, "write") == 0 && argc > 3)
    {
      int fd = open (argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      int e = 0;
      if (fd < 0 || write (fd, argv[3], strlen (argv[3])) < 0)
        e = errno;
      printf ("write=%s\n", errname (e));
      return e ? 1 : 0;
    }
  fprintf (stderr, "sysctr-probe: unknown command %s\n", cmd);
  return 2;
}
