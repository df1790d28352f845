/* bench/ready.c — the lightest Type=notify service there is, for the boot
 * benchmark (bench/b10-boot.sh): sends READY=1 to $NOTIFY_SOCKET (a path or
 * an abstract '@' name), then waits; SIGTERM ends it with status 0 (it may
 * be PID 1 of its container, where SIGTERM has no default action).
 * Built static (cc -static), so the same file runs on the host and in an
 * image with nothing else in it. */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void
on_term (int sig)
{
  (void) sig;
  _exit (0);
}

int
main (void)
{
  signal (SIGTERM, on_term);
  signal (SIGINT, on_term);
  const char *path = getenv ("NOTIFY_SOCKET");
  if (path && *path)
    {
      struct sockaddr_un sa = { .sun_family = AF_UNIX };
      size_t len = strlen (path);
      if (len >= sizeof sa.sun_path)
        return 1;
      memcpy (sa.sun_path, path, len);
      if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0';
      int fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      static const char msg[] = "READY=1";
      if (fd < 0
          || sendto (fd, msg, sizeof msg - 1, 0, (struct sockaddr *) &sa,
                     (socklen_t) (offsetof (struct sockaddr_un, sun_path) + len))
                 < 0)
        {
          perror ("ready: NOTIFY_SOCKET");
          return 1;
        }
      close (fd);
    }
  for (;;)
    pause ();
}
