/* Unit tests of the shim's config parser and notify filter (TAP). */
#include "shim.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>

static int n_test, failed;

static void
tap (bool ok, const char *what)
{
  printf ("%sok %d - %s\n", ok ? "" : "not ", ++n_test, what);
  if (!ok)
    failed = 1;
}

#define MINIMAL_PROCESS "\"process\": {\"args\": [\"/bin/true\"], \"cwd\": \"/\"}"
#define MINIMAL_ROOT "\"root\": {\"path\": \"rootfs\"}"
#define MINIMAL_LINUX "\"linux\": {\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"pid\"}]}"

static struct shim_config *
parse (const char *json)
{
  struct shim_config *c = NULL;
  int fd = open ("/", O_PATH | O_CLOEXEC);
  if (config_parse_string (json, fd, &c) < 0)
    c = NULL;
  close (fd);
  return c;
}

/* The refusal must happen, and its message must contain `needle`. */
static void
refused (const char *json, const char *needle, const char *what)
{
  struct shim_config *c = NULL;
  int fd = open ("/", O_PATH | O_CLOEXEC);
  int r = config_parse_string (json, fd, &c);
  char msg[1024] = "";
  close (fd);
  if (r == 0)
    config_free (c);
  {
    /* capture the recorded message */
    FILE *f = tmpfile ();
    int saved = dup (2);
    dup2 (fileno (f), 2);
    shim_log_error ();
    dup2 (saved, 2);
    close (saved);
    rewind (f);
    if (!fgets (msg, sizeof msg, f))
      msg[0] = '\0';
    fclose (f);
  }
  tap (r < 0 && strstr (msg, needle) != NULL, what);
  if (r >= 0 || !strstr (msg, needle))
    printf ("# got r=%d msg=%s", r, msg);
}

int
main (void)
{
  struct shim_config *c;

  c = parse ("{" MINIMAL_PROCESS "," MINIMAL_ROOT "," MINIMAL_LINUX "}");
  tap (c != NULL, "minimal config parses");
  if (c)
    {
      tap (c->use_init, "init is the default");
      tap (c->clone_flags == (CLONE_NEWNS | CLONE_NEWPID), "namespaces to clone");
      tap (c->caps[SHIM_CAP_BOUNDING] == 0, "no capabilities unless asked");
      config_free (c);
    }

  c = parse ("{" MINIMAL_ROOT "," MINIMAL_LINUX ", \"annotations\": {\"org.sysctr.init\": \"false\"},"
             "\"process\": {\"args\": [\"x\"], \"user\": {\"uid\": 7, \"gid\": 8, \"additionalGids\": [9, 10]},"
             "\"capabilities\": {\"bounding\": [\"CAP_KILL\", \"NET_BIND_SERVICE\"], \"ambient\": [\"CAP_KILL\"],"
             "\"permitted\": [\"CAP_KILL\"], \"inheritable\": [\"CAP_KILL\"]},"
             "\"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"soft\": 10, \"hard\": 20}], \"oomScoreAdj\": -500}}");
  tap (c != NULL, "process fields parse");
  if (c)
    {
      tap (!c->use_init, "org.sysctr.init=false");
      tap (c->uid == 7 && c->gid == 8 && c->n_additional_gids == 2 && c->additional_gids[1] == 10, "user");
      tap (c->caps[SHIM_CAP_BOUNDING] == ((1u << 5) | (1u << 10)), "bounding set by name, with or without CAP_");
      tap (c->caps[SHIM_CAP_AMBIENT] == (1u << 5), "ambient set when permitted and inheritable");
      tap (c->n_rlimits == 1 && c->rlimits[0].soft == 10, "rlimits");
      tap (c->has_oom_score_adj && c->oom_score_adj == -500, "oomScoreAdj");
      config_free (c);
    }

  /* runc spec writes ambient caps that are not inheritable: the kernel
     would refuse to raise them, so they are skipped with a warning. */
  c = parse ("{" MINIMAL_ROOT "," MINIMAL_LINUX ", \"process\": {\"args\": [\"x\"], \"capabilities\": "
             "{\"bounding\": [\"CAP_KILL\"], \"permitted\": [\"CAP_KILL\"], \"ambient\": [\"CAP_KILL\"]}}}");
  tap (c != NULL && c->caps[SHIM_CAP_AMBIENT] == 0, "ambient not inheritable is skipped, not refused");
  config_free (c);

  /* runc spec also writes terminal: true; under systemd there is no tty. */
  c = parse ("{\"process\": {\"args\": [\"x\"], \"terminal\": true}," MINIMAL_ROOT "," MINIMAL_LINUX "}");
  tap (c != NULL, "terminal: true accepted and ignored");
  config_free (c);

  c = parse (
      "{" MINIMAL_PROCESS "," MINIMAL_ROOT "," MINIMAL_LINUX ", \"mounts\": ["
      "{\"destination\": \"/tmp\", \"type\": \"tmpfs\", \"options\": [\"nosuid\", \"mode=1777\", \"ro\", \"rw\"]},"
      "{\"destination\": \"/x\", \"type\": \"bind\", \"source\": \"/\", \"options\": [\"rbind\", \"ro\", "
      "\"rslave\"]}]}");
  tap (c != NULL, "mounts parse");
  if (c)
    {
      tap (c->mounts[0].kind == SHIM_MOUNT_FS && !(c->mounts[0].attr_set & MOUNT_ATTR_RDONLY)
               && (c->mounts[0].attr_set & MOUNT_ATTR_NOSUID),
           "later rw overrides ro; nosuid kept");
      tap (c->mounts[0].data && strcmp (c->mounts[0].data[0], "mode=1777") == 0 && !c->mounts[0].data[1],
           "tmpfs data options");
      tap (c->mounts[1].kind == SHIM_MOUNT_BIND && c->mounts[1].recursive && (c->mounts[1].attr_set & MOUNT_ATTR_RDONLY)
               && c->mounts[1].propagation == MS_SLAVE,
           "rbind ro rslave");
      config_free (c);
    }

  refused ("{", "invalid JSON", "bad JSON refused");
  refused ("{" MINIMAL_PROCESS "," MINIMAL_ROOT
           ", \"linux\": {\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"time\"}]}}",
           "unknown namespace type \"time\"", "unknown namespace refused");
  refused ("{" MINIMAL_PROCESS "," MINIMAL_ROOT
           ", \"linux\": {\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"user\"}]}}",
           "user namespaces are not supported", "user namespace refused");
  refused ("{" MINIMAL_PROCESS "," MINIMAL_ROOT "," MINIMAL_LINUX
           ", \"mounts\": [{\"destination\": \"/n\", \"type\": \"nfs\"}]}",
           "unsupported mount type \"nfs\"", "unsupported mount type refused");
  refused ("{" MINIMAL_PROCESS "," MINIMAL_ROOT "," MINIMAL_LINUX
           ", \"mounts\": [{\"destination\": \"/t\", \"type\": \"tmpfs\", \"options\": [\"uid=0\", \"huge=always\"]}]}",
           "unsupported option \"huge=always\"", "unknown tmpfs option refused");
  refused ("{" MINIMAL_PROCESS "," MINIMAL_ROOT "," MINIMAL_LINUX
           ", \"hooks\": {\"prestart\": [{\"path\": \"/bin/x\"}]}}",
           "hooks are not supported", "hooks refused");
  refused ("{" MINIMAL_PROCESS "," MINIMAL_ROOT "," MINIMAL_LINUX ", \"linux2\": {}}", "linux2: unsupported key",
           "unknown top-level key refused");
  refused ("{" MINIMAL_PROCESS "," MINIMAL_ROOT
           ", \"linux\": {\"namespaces\": [{\"type\": \"mount\"}], \"sysctl\": {\"kernel.hostname\": \"x\"}}}",
           "not namespaced", "host sysctl refused");
  refused ("{" MINIMAL_PROCESS "," MINIMAL_ROOT
           ", \"linux\": {\"namespaces\": [{\"type\": \"mount\"}], \"sysctl\": {\"net.ipv4.ip_forward\": \"1\"}}}",
           "needs a network namespace", "net sysctl without netns refused");
  refused ("{" MINIMAL_PROCESS "," MINIMAL_ROOT
           ", \"hostname\": \"h\", \"linux\": {\"namespaces\": [{\"type\": \"mount\"}]}}",
           "needs a uts namespace", "hostname without uts refused");
  refused ("{" MINIMAL_PROCESS "," MINIMAL_ROOT "," MINIMAL_LINUX
           ", \"mounts\": [{\"destination\": \"/b\", \"type\": \"bind\", \"source\": \"/nonexistent-sysctr\"}]}",
           "bind source /nonexistent-sysctr", "missing bind source refused");
  refused ("{\"process\": {\"args\": [\"x\"], \"capabilities\": {\"bounding\": [\"CAP_FLY\"]}}," MINIMAL_ROOT
           "," MINIMAL_LINUX "}",
           "unknown capability", "unknown capability refused");
  /* linux.seccomp */
#define SECCOMP_CONFIG(profile)                                                                                        \
  "{" MINIMAL_PROCESS "," MINIMAL_ROOT ", \"linux\": {\"namespaces\": [{\"type\": \"mount\"}], \"seccomp\": " profile  \
  "}}"
  refused (SECCOMP_CONFIG ("{\"defaultAction\": \"SCMP_ACT_NOTIFY\"}"), "SCMP_ACT_NOTIFY needs a seccomp agent",
           "seccomp: SCMP_ACT_NOTIFY refused");
  refused (SECCOMP_CONFIG ("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_VAX\"]}"),
           "unknown architecture", "seccomp: unknown architecture refused");
  refused (SECCOMP_CONFIG ("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], "
                           "\"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 9, \"value\": 1, \"op\": "
                           "\"SCMP_CMP_EQ\"}]}]}"),
           "index: not in 0..5", "seccomp: argument index out of range refused");
  refused (SECCOMP_CONFIG ("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"listenerPath\": \"/run/agent\"}"),
           "seccomp agents are not supported", "seccomp: listenerPath refused");
  {
    struct shim_config *sc = parse (SECCOMP_CONFIG (
        "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 38, \"architectures\": [\"SCMP_ARCH_X86_64\"], "
        "\"syscalls\": [{\"names\": [\"read\", \"write\", \"no_such_syscall\"], \"action\": \"SCMP_ACT_ALLOW\"}, "
        "{\"names\": [\"socket\"], \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 0, \"value\": 16, \"op\": "
        "\"SCMP_CMP_NE\"}, {\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_NE\"}]}]}"));
    char dir[] = "/tmp/sysctr-seccomp-XXXXXX";
    int dfd = -1, loaded = 0;
    tap (sc && sc->seccomp && seccomp_compile (sc->seccomp) == 0 && sc->seccomp->prog.len > 0,
         "seccomp: a profile compiles (unknown names skipped, a repeated argument split)");
    if (sc && sc->seccomp && mkdtemp (dir) && (dfd = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) >= 0)
      {
        unsigned short len = sc->seccomp->prog.len;
        const char key[] = "{\"a config\": 1}", other[] = "{\"a config\": 2}";
        tap (seccomp_cache_write (sc->seccomp, dfd, key, strlen (key)) == 0,
             "seccomp: the compiled filter is cached in the bundle");
        free (sc->seccomp->prog.filter);
        sc->seccomp->prog.filter = NULL;
        loaded = seccomp_cache_load (sc->seccomp, dfd, key, strlen (key));
        tap (loaded == 1 && sc->seccomp->prog.len == len, "seccomp: ... and loaded back for the same config");
        free (sc->seccomp->prog.filter);
        sc->seccomp->prog.filter = NULL;
        tap (seccomp_cache_load (sc->seccomp, dfd, other, strlen (other)) == 0,
             "seccomp: ... but not for another config");
        unlinkat (dfd, "seccomp.bpf", 0);
        close (dfd);
        rmdir (dir);
      }
    config_free (sc);
  }

  /* the notify filter */
  {
    char out[256];
    bool status_only;
    const char msg[] = "READY=1\nEXTEND_TIMEOUT_USEC=9\nMAINPID=1\nSTATUS=up";
    size_t n = notify_filter (msg, sizeof msg - 1, false, out, &status_only);
    tap (n == strlen ("READY=1\nEXTEND_TIMEOUT_USEC=9\nSTATUS=up")
             && memcmp (out, "READY=1\nEXTEND_TIMEOUT_USEC=9\nSTATUS=up", n) == 0 && !status_only,
         "notify: allowed lines kept, in order");
    n = notify_filter (msg, sizeof msg - 1, true, out, &status_only);
    tap (n == strlen ("READY=1\nSTATUS=up") && memcmp (out, "READY=1\nSTATUS=up", n) == 0,
         "notify: EXTEND_TIMEOUT_USEC= dropped once stopping");
    n = notify_filter ("STATUS=a\nSTATUS=b", 17, false, out, &status_only);
    tap (n == 17 && status_only, "notify: a STATUS=-only message is marked for coalescing");
  }

  tap (notify_line_allowed ("READY=1", 7), "READY= allowed");
  tap (notify_line_allowed ("EXTEND_TIMEOUT_USEC=5", 21), "EXTEND_TIMEOUT_USEC= allowed");
  tap (!notify_line_allowed ("MAINPID=1", 9), "MAINPID= dropped");
  tap (!notify_line_allowed ("FDSTORE=1", 9), "FDSTORE= dropped");
  tap (!notify_line_allowed ("READY", 5), "READY without = dropped");

  /* error paths: a -errno of 0 (taken after a short write) is still a
   * failure; a write that stops halfway is not a success */
  tap (shim_errorf (0, "short write") < 0, "shim_errorf (0) returns a failure, not success");
  {
    int p[2];
    static char big[65536 * 2];
    signal (SIGPIPE, SIG_IGN);
    if (pipe2 (p, O_NONBLOCK | O_CLOEXEC) == 0)
      {
        int r = shim_write_all (p[1], big, sizeof big); /* more than the pipe holds */
        tap (r == -EAGAIN, "shim_write_all: a write that stops halfway returns its error");
        close (p[0]);
        tap (shim_write_all (p[1], "x", 1) == -EPIPE, "shim_write_all: no reader, -EPIPE");
        close (p[1]);
      }
  }

  printf ("1..%d\n", n_test);
  return failed;
}
