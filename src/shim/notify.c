/* notify.c: the sd_notify relay.
 *
 * The payload gets its own socket, in a private host directory that is bound
 * read-only into the container (the directory, not the socket: a socket
 * bind-mounted alone goes stale if it is ever re-created). The shim, which is
 * the unit's main pid, forwards an allow-list of messages to systemd itself,
 * so NotifyAccess=main units work and the container can never claim
 * MAINPID= or pass fds to systemd (Quadlet/conmon relay the same set).
 *
 * The relay never blocks: messages wait in a short queue until systemd's
 * socket has room, a flood of STATUS= lines is coalesced to its latest, and
 * EXTEND_TIMEOUT_USEC= is dropped once the unit is being stopped.
 */
#include "shim.h"

#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

static const char *const allowed[]
    = { "READY=", "RELOADING=", "STOPPING=", "WATCHDOG=", "STATUS=", "ERRNO=", "EXTEND_TIMEOUT_USEC=" };

bool
notify_line_allowed (const char *line, size_t len)
{
  for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
    {
      size_t n = strlen (allowed[i]);
      if (len >= n && memcmp (line, allowed[i], n) == 0)
        return true;
    }
  return false;
}

static int
upstream_address (const char *path, struct sockaddr_un *sa, socklen_t *len)
{
  size_t n = strlen (path);
  memset (sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (path[0] != '/' && path[0] != '@')
    return -EAFNOSUPPORT;
  if (n >= sizeof sa->sun_path)
    return -ENAMETOOLONG;
  memcpy (sa->sun_path, path, n);
  /* '@' is systemd's spelling of the abstract namespace: a leading NUL,
   * and the length counts exactly the name (no trailing NUL). */
  if (path[0] == '@')
    sa->sun_path[0] = '\0';
  *len = (socklen_t) (offsetof (struct sockaddr_un, sun_path) + n + (path[0] == '@' ? 0 : 1));
  return 0;
}

static int
upstream_connect (struct shim_notify *n)
{
  struct sockaddr_un up;
  socklen_t up_len;
  int r = upstream_address (n->upstream, &up, &up_len);
  if (r < 0)
    return r;
  if (connect (n->upstream_fd, (struct sockaddr *) &up, up_len) < 0)
    return negative_errno ();
  return 0;
}

static int
mkdir_p_0700 (const char *path)
{
  if (mkdir (path, 0700) < 0 && errno != EEXIST)
    return -errno;
  return 0;
}

int
notify_setup (struct shim_notify *n, const char *name, uid_t uid, gid_t gid)
{
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  struct sockaddr_un up;
  socklen_t up_len;
  char *sock_path = NULL;
  size_t len;
  int r;

  n->listen_fd = n->dir_fd = n->upstream_fd = -1;
  r = upstream_address (n->upstream, &up, &up_len);
  if (r < 0)
    return shim_errorf (r, "NOTIFY_SOCKET=%s", n->upstream);
  n->upstream_fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (n->upstream_fd < 0)
    return shim_errorf (-errno, "NOTIFY_SOCKET: socket");
  /* connected, so POLLOUT says when systemd has room again; if it cannot
   * be reached now, sending tries again */
  if ((r = upstream_connect (n)) < 0)
    {
      errno = -r;
      shim_warn ("NOTIFY_SOCKET=%s: %m", n->upstream);
    }

  if ((r = mkdir_p_0700 ("/run/sysctr")) < 0 || (r = mkdir_p_0700 ("/run/sysctr/notify")) < 0)
    return shim_errorf (r, "creating /run/sysctr/notify");
  if (asprintf (&n->dir_path, "/run/sysctr/notify/%s-%d", name, (int) getpid ()) < 0)
    return shim_errorf (-ENOMEM, "notify directory");
  /* A leftover of a previous shim with our pid (after a crash and pid reuse). */
  if (asprintf (&sock_path, "%s/notify", n->dir_path) < 0)
    return shim_errorf (-ENOMEM, "notify directory");
  unlink (sock_path);
  rmdir (n->dir_path);
  if (mkdir (n->dir_path, 0700) < 0)
    {
      free (sock_path);
      return shim_errorf (-errno, "creating %s", n->dir_path);
    }
  /* Owned by the payload's user so it can reach the socket; it is mounted
   * read-only in the container, so the payload cannot replace the socket. */
  if (chown (n->dir_path, uid, gid) < 0)
    {
      free (sock_path);
      return shim_errorf (-errno, "chown %s", n->dir_path);
    }
  n->listen_fd = socket (AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (n->listen_fd < 0)
    {
      free (sock_path);
      return shim_errorf (-errno, "notify socket");
    }
  len = strlen (sock_path);
  if (len >= sizeof sa.sun_path)
    {
      r = shim_errorf (-ENAMETOOLONG, "notify socket %s", sock_path);
      free (sock_path);
      return r;
    }
  memcpy (sa.sun_path, sock_path, len + 1);
  if (bind (n->listen_fd, (struct sockaddr *) &sa, sizeof sa) < 0 || chown (sock_path, uid, gid) < 0
      || chmod (sock_path, 0600) < 0)
    {
      r = shim_errorf (-errno, "binding %s", sock_path);
      free (sock_path);
      return r;
    }
  free (sock_path);
  return 0;
}

/* Keeps the allowed lines of one datagram (EXTEND_TIMEOUT_USEC= not once
 * the unit is stopping: a payload could otherwise hold "systemctl stop"
 * forever). Returns the length written to @out (no trailing newline). */
size_t
notify_filter (const char *in, size_t len, bool stopping, char *out, bool *status_only)
{
  const char *p, *end = in + len;
  size_t o = 0;
  *status_only = true;
  for (p = in; p < end;)
    {
      const char *nl = memchr (p, '\n', (size_t) (end - p));
      size_t l = nl ? (size_t) (nl - p) : (size_t) (end - p);
      if (l > 0 && notify_line_allowed (p, l) && !memchr (p, '\0', l)
          && !(stopping && l >= 20 && memcmp (p, "EXTEND_TIMEOUT_USEC=", 20) == 0))
        {
          memcpy (out + o, p, l);
          o += l;
          out[o++] = '\n';
          if (!(l >= 7 && memcmp (p, "STATUS=", 7) == 0))
            *status_only = false;
        }
      p += l + 1;
    }
  return o ? o - 1 : 0;
}

uint64_t
shim_now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void
queue_drop_head (struct shim_notify *n)
{
  struct shim_notify_msg *m = n->head;
  n->head = m->next;
  if (!n->head)
    n->tail = NULL;
  n->queued--;
  free (m);
}

/* A STATUS=-only message replaces a STATUS=-only one still waiting at the
 * tail: a flood reaches systemd as its latest line, at most every
 * SHIM_NOTIFY_STATUS_INTERVAL_MS. Other messages keep their order. */
static void
enqueue (struct shim_notify *n, const char *text, size_t len, bool status_only)
{
  struct shim_notify_msg *m;
  if (status_only && n->tail && n->tail->status_only)
    {
      /* replace the tail in place: find its predecessor */
      struct shim_notify_msg **pp = &n->head;
      while (*pp != n->tail)
        pp = &(*pp)->next;
      free (n->tail);
      *pp = NULL;
      n->tail = NULL;
      for (struct shim_notify_msg *q = n->head; q; q = q->next)
        n->tail = q;
      n->queued--;
    }
  if (n->queued >= SHIM_NOTIFY_QUEUE_MAX)
    {
      /* full of state changes the payload sent faster than systemd reads */
      if (!n->dropped++)
        shim_warn ("notify: systemd is not reading; dropping notifications");
      return;
    }
  m = malloc (sizeof *m + len);
  if (!m)
    return;
  m->next = NULL;
  m->status_only = status_only;
  m->len = len;
  memcpy (m->text, text, len);
  if (n->tail)
    n->tail->next = m;
  else
    n->head = m;
  n->tail = m;
  n->queued++;
}

void
notify_receive (struct shim_notify *n)
{
  char in[4096 + 1], out[4096 + 1];
  if (n->listen_fd < 0)
    return;
  /* bounded, so a flood cannot keep the shim from forwarding signals */
  for (int i = 0; i < 256; i++)
    {
      /* MSG_CMSG_CLOEXEC and no control buffer: passed fds are discarded. */
      ssize_t len = recv (n->listen_fd, in, sizeof in - 1, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
      bool status_only;
      size_t o;
      if (len < 0)
        {
          if (errno == EINTR)
            continue;
          return;
        }
      o = notify_filter (in, (size_t) len, n->stopping, out, &status_only);
      if (o > 0)
        enqueue (n, out, o, status_only);
    }
}

int
notify_flush (struct shim_notify *n, bool *want_write)
{
  *want_write = false;
  while (n->head)
    {
      struct shim_notify_msg *m = n->head;
      uint64_t t = shim_now_ms ();
      if (m->status_only && n->last_status_ms && t < n->last_status_ms + SHIM_NOTIFY_STATUS_INTERVAL_MS)
        return (int) (n->last_status_ms + SHIM_NOTIFY_STATUS_INTERVAL_MS - t);
      /* never blocking: a slow reader must not keep the shim from
       * forwarding a stop signal */
      if (send (n->upstream_fd, m->text, m->len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        {
          if (errno == EAGAIN || errno == EINTR)
            {
              *want_write = true;
              return -1;
            }
          /* systemd re-executed: its socket is a new one */
          if ((errno == ECONNREFUSED || errno == ENOTCONN || errno == EDESTADDRREQ || errno == ENOENT)
              && !n->reconnected)
            {
              n->reconnected = true;
              if (upstream_connect (n) == 0)
                continue;
            }
          shim_warn ("relaying a notification to %s: %m", n->upstream);
        }
      else
        n->reconnected = false;
      if (m->status_only)
        n->last_status_ms = t;
      queue_drop_head (n);
    }
  return -1;
}

void
notify_cleanup (struct shim_notify *n)
{
  if (n->dir_path)
    {
      char path[4096];
      snprintf (path, sizeof path, "%s/notify", n->dir_path);
      unlink (path);
      rmdir (n->dir_path);
      free (n->dir_path);
      n->dir_path = NULL;
    }
  if (n->listen_fd >= 0)
    close (n->listen_fd);
  if (n->upstream_fd >= 0)
    close (n->upstream_fd);
  if (n->dir_fd >= 0)
    close (n->dir_fd);
  n->listen_fd = n->upstream_fd = n->dir_fd = -1;
  while (n->head)
    queue_drop_head (n);
}

void
notify_send_own (struct shim_notify *n, const char *text)
{
  if (n->upstream_fd < 0 && n->upstream == NULL)
    return;
  enqueue (n, text, strlen (text), false);
}
