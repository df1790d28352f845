/* sockserve — a tiny socket-activated server for the live tests.
 *
 * Takes its listening sockets the way sd_listen_fds(3) hands them over:
 * LISTEN_PID must equal getpid() and LISTEN_FDS (>= 1) sockets start at
 * fd 3.  It serves fd 3: for every connection it answers one line
 *
 *     sockserve pid=<pid> conn=<n> [<SOCKSERVE_GREETING>]
 *
 * and closes it.  Without valid LISTEN_* variables it exits 2 with one line
 * on stderr (that is a test failure: the socket was not passed).  SIGTERM
 * ends it with status 0.  Linked statically: an image needs only this file.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void
on_term (int sig)
{
  (void) sig;
  stop = 1;
}

static int
parse_long (const char *s, long *out)
{
  char *end;
  if (s == NULL || *s == '\0')
    return -1;
  errno = 0;
  long v = strtol (s, &end, 10);
  if (errno || *end)
    return -1;
  *out = v;
  return 0;
}

int
main (void)
{
  long pid, nfds;
  const char *greeting = getenv ("SOCKSERVE_GREETING");

  if (parse_long (getenv ("LISTEN_PID"), &pid) < 0 || pid != (long) getpid ())
    {
      fprintf (stderr, "sockserve: LISTEN_PID=%s is not my pid %ld: no socket passed\n",
               getenv ("LISTEN_PID") ? getenv ("LISTEN_PID") : "(unset)", (long) getpid ());
      return 2;
    }
  if (parse_long (getenv ("LISTEN_FDS"), &nfds) < 0 || nfds < 1)
    {
      fprintf (stderr, "sockserve: LISTEN_FDS=%s: no socket passed\n",
               getenv ("LISTEN_FDS") ? getenv ("LISTEN_FDS") : "(unset)");
      return 2;
    }
  /* as sd_listen_fds(unset_environment=1) does */
  unsetenv ("LISTEN_PID");
  unsetenv ("LISTEN_FDS");
  unsetenv ("LISTEN_FDNAMES");

  int lfd = 3;
  struct stat st;
  int type = 0, listening = 0;
  socklen_t l = sizeof type;
  if (fstat (lfd, &st) < 0 || !S_ISSOCK (st.st_mode) || getsockopt (lfd, SOL_SOCKET, SO_TYPE, &type, &l) < 0
      || type != SOCK_STREAM)
    {
      fprintf (stderr, "sockserve: fd 3 is not a stream socket\n");
      return 2;
    }
  l = sizeof listening;
  if (getsockopt (lfd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l) < 0 || !listening)
    {
      fprintf (stderr, "sockserve: fd 3 is not listening\n");
      return 2;
    }

  struct sigaction sa;
  memset (&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  signal (SIGPIPE, SIG_IGN);

  fprintf (stderr, "sockserve: pid %ld serving %ld passed socket(s)\n", (long) getpid (), nfds);
  unsigned long n = 0;
  while (!stop)
    {
      int c = accept4 (lfd, NULL, NULL, SOCK_CLOEXEC);
      if (c < 0)
        {
          if (errno == EINTR || errno == ECONNABORTED)
            continue;
          fprintf (stderr, "sockserve: accept: %s\n", strerror (errno));
          return 1;
        }
      n++;
      char line[256];
      int len = snprintf (line, sizeof line, "sockserve pid=%ld conn=%lu%s%s\n", (long) getpid (), n,
                          greeting ? " " : "", greeting ? greeting : "");
      if (len > (int) sizeof line - 1)
        len = sizeof line - 1;
      if (write (c, line, len) != len)
        fprintf (stderr, "sockserve: write: %s\n", strerror (errno));
      shutdown (c, SHUT_WR);
      close (c);
    }
  fprintf (stderr, "sockserve: stopping after %lu connection(s)\n", n);
  return 0;
}
