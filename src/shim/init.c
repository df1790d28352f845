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

#include <link.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGQUIT };

static int
release_segment (struct dl_phdr_info *info, size_t size, void *data)
{
  long page = sysconf (_SC_PAGESIZE);
  (void) size;
  (void) data;
  for (int i = 0; i < info->dlpi_phnum; i++)
    {
      const ElfW (Phdr) *ph = &info->dlpi_phdr[i];
      uintptr_t start, end;
      if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W))
        continue;
      start = (info->dlpi_addr + ph->p_vaddr) & ~(uintptr_t) (page - 1);
      end = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
      /* read-only file pages: dropping the mappings loses nothing, the
       * pages come back from the page cache when they run again, one by
       * one (MADV_RANDOM turns fault-around off) */
      (void) madvise ((void *) start, end - start, MADV_DONTNEED);
      (void) madvise ((void *) start, end - start, MADV_RANDOM);
    }
  return 1; /* the executable is the first object: the static shim has no other */
}

/* The shim and its init stay resident for the container's life but run a
 * few hundred bytes of code from then on. The kernel mapped much more of
 * the static binary around every page it ran at start (fault-around):
 * unmapping the read-only segments leaves each process with the pages of
 * its steady-state loop only (bench/shim-start.sh measures it). */
void
shim_release_code (void)
{
  (void) dl_iterate_phdr (release_segment, NULL);
}

_Noreturn void
init_run (pid_t payload, int status_fd, const struct shim_config *c)
{
  sigset_t set;
  (void) c;

  shim_release_code ();
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
