/* init.c: the container's pid 1 when the payload is not (the default).
 *
 * A payload that is pid 1 of its namespace gets no default signal actions,
 * so without its own handler it ignores SIGTERM and every stop waits for
 * systemd's timeout. This init forwards signals, reaps orphans and exits as
 * soon as the payload does; the kernel then kills whatever else is left in
 * the pid namespace. It reports the payload's raw wait status on status_fd,
 * because an init cannot die of a signal sent by itself.
 */
#include "shim.h"

#include <signal.h>
#include <sys/wait.h>

static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGQUIT };

_Noreturn void
init_run (pid_t payload, int status_fd, const struct shim_config *c)
{
  sigset_t set;
  (void) c;

  sigemptyset (&set);
  sigaddset (&set, SIGCHLD);
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
    sigaddset (&set, forwarded[i]);

  for (;;)
    {
      siginfo_t si;
      int sig = sigwaitinfo (&set, &si);
      if (sig < 0)
        continue;
      if (sig != SIGCHLD)
        {
          kill (payload, sig);
          continue;
        }
      for (;;)
        {
          int status;
          pid_t pid = waitpid (-1, &status, WNOHANG);
          if (pid <= 0)
            break;
          if (pid == payload)
            {
              ssize_t w = write (status_fd, &status, sizeof status);
              (void) w;
              _exit (WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status));
            }
        }
    }
}
