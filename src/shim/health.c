/* health.c: the container's health check, run by the resident shim.
 *
 * Every interval (the first one interval after the start) the test runs in
 * the container as `sysctr exec` runs a command: a child re-executes this
 * shim (/proc/self/exe) in --exec mode against our own pid, so the test is
 * confined exactly as the payload is and the resident shim keeps no
 * configuration. Exit 0 is a pass; anything else, or running past the
 * timeout (the check is killed), a failure. Failures inside the start period
 * do not count until a first pass. After `retries` failures in a row the
 * container is unhealthy: systemd gets "STATUS=health: unhealthy" and
 * "WATCHDOG=trigger", which makes it stop the unit (WatchdogSignal=) and
 * restart it (Restart=on-failure); a pass after that reports healthy again.
 * Invariant: at most one check runs at a time, and it never outlives its
 * timeout. */
#include "shim.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

/* the check's command (the --exec process's child, in the container) and
 * then the --exec process */
static void
kill_check (pid_t pid)
{
  char path[64], buf[256];
  snprintf (path, sizeof path, "/proc/%d/task/%d/children", (int) pid, (int) pid);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd < 0 ? -1 : read (fd, buf, sizeof buf - 1);
  if (fd >= 0)
    close (fd);
  if (n > 0)
    {
      buf[n] = '\0';
      char *save = NULL;
      for (char *t = strtok_r (buf, " \n", &save); t; t = strtok_r (NULL, " \n", &save))
        if (atoi (t) > 1)
          kill (atoi (t), SIGKILL);
    }
  kill (pid, SIGKILL);
  waitpid (pid, NULL, 0);
}

void
health_init (struct shim_health_run *hr, struct shim_health *h, const char *bundle, const char *name)
{
  *hr = (struct shim_health_run){ .h = *h, .bundle = bundle, .name = name };
  h->test = NULL; /* ours now */
  hr->start_ms = shim_now_ms ();
  hr->next_ms = hr->start_ms + hr->h.interval_ms;
}

void
health_clear (struct shim_health_run *hr)
{
  if (hr->check_pid > 0)
    {
      kill_check (hr->check_pid);
      hr->check_pid = 0;
    }
  strv_free (hr->h.test);
  hr->h.test = NULL;
}

int
health_timeout (const struct shim_health_run *hr)
{
  if (hr->h.test == NULL)
    return -1;
  /* a running check: its timeout (SIGCHLD wakes the loop sooner); else
   * the next one */
  uint64_t now = shim_now_ms ();
  uint64_t due = hr->check_pid > 0 ? hr->check_started_ms + hr->h.timeout_ms : hr->next_ms;
  return due > now ? (int) (due - now) : 0;
}

static void
start_check (struct shim_health_run *hr)
{
  char pid_arg[32], *bundle_arg = NULL, *name_arg = NULL;
  size_t n = 0;
  for (char **t = hr->h.test; *t; t++)
    n++;
  char **argv = calloc (n + 6, sizeof (char *));
  snprintf (pid_arg, sizeof pid_arg, "--exec=%d", (int) getpid ());
  if (!argv || asprintf (&bundle_arg, "--bundle=%s", hr->bundle) < 0 || asprintf (&name_arg, "--name=%s", hr->name) < 0)
    {
      shim_warn ("health check: out of memory");
      free (argv);
      free (bundle_arg);
      hr->next_ms = shim_now_ms () + hr->h.interval_ms;
      return;
    }
  argv[0] = (char *) "sysctr-shim";
  argv[1] = pid_arg;
  argv[2] = bundle_arg;
  argv[3] = name_arg;
  argv[4] = (char *) "--";
  for (size_t i = 0; i < n; i++)
    argv[5 + i] = hr->h.test[i];
  pid_t pid = fork ();
  if (pid == 0)
    {
      sigset_t none;
      sigemptyset (&none);
      sigprocmask (SIG_SETMASK, &none, NULL);
      int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
      if (null < 0 || dup2 (null, 0) < 0 || dup2 (null, 1) < 0 || dup2 (null, 2) < 0)
        _exit (SHIM_EXIT_FAILURE);
      execv ("/proc/self/exe", argv);
      _exit (SHIM_EXIT_FAILURE);
    }
  free (argv);
  free (bundle_arg);
  free (name_arg);
  if (pid < 0)
    {
      shim_warn ("health check: fork: %s", strerror (errno));
      hr->next_ms = shim_now_ms () + hr->h.interval_ms;
      return;
    }
  hr->check_pid = pid;
  hr->check_started_ms = shim_now_ms ();
}

static void
report (struct shim_health_run *hr, struct shim_notify *n, bool pass, const char *why)
{
  uint64_t now = shim_now_ms ();
  if (pass)
    {
      if (hr->state != SHIM_HEALTH_HEALTHY)
        {
          notify_send_own (n, "STATUS=health: healthy");
          if (hr->state == SHIM_HEALTH_UNHEALTHY || hr->failures)
            shim_warn ("health check passed again");
        }
      hr->state = SHIM_HEALTH_HEALTHY;
      hr->failures = 0;
      return;
    }
  if (hr->state == SHIM_HEALTH_STARTING && now < hr->start_ms + hr->h.start_period_ms)
    return; /* the start period: not counted */
  hr->failures++;
  shim_warn ("health check failed (%s): %u of %u", why, hr->failures, hr->h.retries);
  if (hr->failures >= hr->h.retries && hr->state != SHIM_HEALTH_UNHEALTHY)
    {
      char status[128];
      shim_warn ("unhealthy after %u failed checks: triggering the unit's watchdog (systemd restarts it)",
                 hr->failures);
      snprintf (status, sizeof status, "STATUS=health: unhealthy (%u failed checks)", hr->failures);
      notify_send_own (n, status);
      notify_send_own (n, "WATCHDOG=trigger");
      hr->state = SHIM_HEALTH_UNHEALTHY;
    }
}

void
health_tick (struct shim_health_run *hr, struct shim_notify *n)
{
  if (hr->h.test == NULL)
    return;
  uint64_t now = shim_now_ms ();
  if (hr->check_pid > 0)
    {
      int status;
      pid_t r = waitpid (hr->check_pid, &status, WNOHANG);
      if (r == 0 && now < hr->check_started_ms + hr->h.timeout_ms)
        return;
      char why[64];
      if (r == 0)
        {
          kill_check (hr->check_pid);
          snprintf (why, sizeof why, "timed out after %llu ms", (unsigned long long) hr->h.timeout_ms);
        }
      else if (r < 0)
        snprintf (why, sizeof why, "waitpid: %s", strerror (errno));
      else if (WIFEXITED (status))
        snprintf (why, sizeof why, "exit status %d", WEXITSTATUS (status));
      else
        snprintf (why, sizeof why, "killed by signal %d", WTERMSIG (status));
      hr->check_pid = 0;
      hr->next_ms = now + hr->h.interval_ms;
      report (hr, n, r > 0 && WIFEXITED (status) && WEXITSTATUS (status) == 0, why);
      return;
    }
  /* no new check once the unit is stopping */
  if (now >= hr->next_ms && !n->stopping)
    start_check (hr);
}
