#include "config.h"

#include "registry.h"

#include "auth.h"
#include "sysctr-util.h"

#include <curl/curl.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_REDIRECTS 5
#define MAX_ERROR_BODY (64 * 1024)
#define MAX_TOKEN_BODY (256 * 1024)

struct SysctrRegistry
{
  char *domain;
  char *host; /* host[:port] we talk to */
  char *path;
  char *scheme; /* "https" or "http" */
  gboolean tls_verify;
  char *creds;
  CURLSH *share;
  GMutex share_locks[CURL_LOCK_DATA_LAST];
  GBytes *ca_blob;
  char *client_cert;
  char *client_key;

  gint cancelled; /* atomic */

  GMutex lock;         /* guards what follows */
  char *authorization; /* full header value, "Bearer x" or "Basic y" */
  SysctrAuthChallenge *challenge;
  guint requests;
};

void
sysctr_pull_options_init (SysctrPullOptions *opts)
{
  memset (opts, 0, sizeof *opts);
  opts->tls_verify = TRUE;
}

void
sysctr_pull_options_clear (SysctrPullOptions *opts)
{
  g_clear_pointer (&opts->creds, g_free);
  g_clear_pointer (&opts->authfile, g_free);
  g_clear_pointer (&opts->platform, g_free);
  g_clear_pointer (&opts->signature_policy, g_free);
  g_clear_pointer (&opts->registries_d, g_free);
}

static void
share_lock (CURL *handle, curl_lock_data data, curl_lock_access access, void *userptr)
{
  SysctrRegistry *reg = userptr;
  g_mutex_lock (&reg->share_locks[data]);
}

static void
share_unlock (CURL *handle, curl_lock_data data, void *userptr)
{
  SysctrRegistry *reg = userptr;
  g_mutex_unlock (&reg->share_locks[data]);
}

void
sysctr_registry_free (SysctrRegistry *reg)
{
  if (reg == NULL)
    return;
  if (reg->share)
    curl_share_cleanup (reg->share);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    g_mutex_clear (&reg->share_locks[i]);
  g_mutex_clear (&reg->lock);
  g_free (reg->domain);
  g_free (reg->host);
  g_free (reg->path);
  g_free (reg->scheme);
  if (reg->creds)
    explicit_bzero (reg->creds, strlen (reg->creds));
  g_free (reg->creds);
  g_free (reg->authorization);
  sysctr_auth_challenge_free (reg->challenge);
  g_clear_pointer (&reg->ca_blob, g_bytes_unref);
  g_free (reg->client_cert);
  g_free (reg->client_key);
  g_free (reg);
}

void
sysctr_registry_cancel (SysctrRegistry *reg)
{
  g_atomic_int_set (&reg->cancelled, 1);
}

guint
sysctr_registry_request_count (SysctrRegistry *reg)
{
  g_mutex_lock (&reg->lock);
  guint n = reg->requests;
  g_mutex_unlock (&reg->lock);
  return n;
}

/* /etc/containers/certs.d/HOST[:PORT]/: *.crt are CAs, *.cert + *.key a
 * client certificate — the layout podman and skopeo read. */
static gboolean
load_certs_d (SysctrRegistry *reg, GError **error)
{
  const char *dirs[] = { "/etc/containers/certs.d", "/etc/docker/certs.d" };
  const char *override = g_getenv ("SYSCTR_CERTS_D");
  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++)
    {
      g_autofree char *dir = g_build_filename (override ? override : dirs[i], reg->host, NULL);
      g_autoptr (GDir) d = g_dir_open (dir, 0, NULL);
      if (d == NULL)
        continue;
      g_autoptr (GByteArray) cas = g_byte_array_new ();
      const char *name;
      g_autoptr (GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
      while ((name = g_dir_read_name (d)))
        g_ptr_array_add (names, g_strdup (name));
      g_ptr_array_sort (names, sysctr_strptr_cmp);
      for (guint j = 0; j < names->len; j++)
        {
          name = names->pdata[j];
          g_autofree char *file = g_build_filename (dir, name, NULL);
          if (g_str_has_suffix (name, ".crt"))
            {
              g_autofree char *data = NULL;
              gsize len = 0;
              if (!sysctr_read_file_at (AT_FDCWD, file, 1024 * 1024, &data, &len, error))
                return FALSE;
              g_byte_array_append (cas, (guint8 *) data, len);
              g_byte_array_append (cas, (guint8 *) "\n", 1);
            }
          else if (g_str_has_suffix (name, ".cert"))
            {
              g_autofree char *base = g_strndup (name, strlen (name) - strlen (".cert"));
              g_autofree char *key = g_strdup_printf ("%s/%s.key", dir, base);
              if (!g_file_test (key, G_FILE_TEST_EXISTS))
                return sysctr_throw (error, SYSCTR_ERROR_INVALID, "client certificate %s has no matching key %s", file,
                                     key);
              g_free (reg->client_cert);
              g_free (reg->client_key);
              reg->client_cert = g_steal_pointer (&file);
              reg->client_key = g_steal_pointer (&key);
            }
        }
      if (cas->len > 0)
        reg->ca_blob = g_byte_array_free_to_bytes (g_steal_pointer (&cas));
      return TRUE;
    }
  return TRUE;
}

typedef struct
{
  SysctrRegistry *reg;
  CURL *curl;
  /* body sinks: memory or fd */
  GByteArray *buf;
  gsize max;
  int fd;
  SysctrSha256 *sum;
  guint64 received;
  gint64 expect; /* exact size or -1 */
  gboolean overflow;
  int write_errno;
  SysctrProgressFunc progress;
  gpointer progress_data;
  /* stall detection: when the byte count last moved */
  curl_off_t last_bytes;
  gint64 last_change;
  gint64 stall_usec;
  gboolean stalled;
  /* non-2xx responses go here instead of into the sink */
  GByteArray *error_body;
  /* headers of the current response */
  char *www_authenticate;
  char *content_type;
  char *location;
  char *docker_digest;
  char *content_range;
  GByteArray *owned_buf;  /* @buf when the request made it */
  const char *range;      /* a Range header's value, or NULL */
  gboolean range_ignored; /* the server answered 200 to a range request */
} Request;

static void
request_reset_response (Request *r)
{
  g_clear_pointer (&r->content_range, g_free);
  r->range_ignored = FALSE;
  g_clear_pointer (&r->www_authenticate, g_free);
  g_clear_pointer (&r->content_type, g_free);
  g_clear_pointer (&r->location, g_free);
  g_clear_pointer (&r->docker_digest, g_free);
  if (r->buf)
    g_byte_array_set_size (r->buf, 0);
  g_byte_array_set_size (r->error_body, 0);
  if (r->fd >= 0)
    {
      (void) ftruncate (r->fd, 0);
      (void) lseek (r->fd, 0, SEEK_SET);
    }
  if (r->sum)
    sysctr_sha256_reset (r->sum);
  r->received = 0;
  r->overflow = FALSE;
  r->write_errno = 0;
}

/* Frees what the request owns; a caller's fd and buffer are left as they
 * are (g_auto (Request) runs it on every return). */
static void
request_clear (Request *r)
{
  g_clear_pointer (&r->www_authenticate, g_free);
  g_clear_pointer (&r->content_type, g_free);
  g_clear_pointer (&r->location, g_free);
  g_clear_pointer (&r->docker_digest, g_free);
  g_clear_pointer (&r->content_range, g_free);
  g_clear_pointer (&r->curl, curl_easy_cleanup);
  g_clear_pointer (&r->error_body, g_byte_array_unref);
  g_clear_pointer (&r->owned_buf, g_byte_array_unref);
  g_clear_pointer (&r->sum, sysctr_sha256_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Request, request_clear)

static size_t
header_cb (char *buffer, size_t size, size_t nitems, void *userdata)
{
  Request *r = userdata;
  size_t len = size * nitems;
  /* A new status line starts a new response (e.g. after 100 Continue). */
  if (len >= 5 && g_ascii_strncasecmp (buffer, "HTTP/", 5) == 0)
    {
      g_clear_pointer (&r->www_authenticate, g_free);
      g_clear_pointer (&r->content_type, g_free);
      g_clear_pointer (&r->location, g_free);
      g_clear_pointer (&r->docker_digest, g_free);
      return len;
    }
  const char *colon = memchr (buffer, ':', len);
  if (colon == NULL || len > 8192)
    return len;
  g_autofree char *name = g_ascii_strdown (buffer, colon - buffer);
  g_autofree char *value = g_strndup (colon + 1, len - (colon + 1 - buffer));
  g_strstrip (value);
  char **slot = NULL;
  if (strcmp (name, "www-authenticate") == 0)
    {
      /* Prefer a Bearer challenge when several are offered. */
      if (r->www_authenticate && g_ascii_strncasecmp (r->www_authenticate, "bearer", 6) == 0)
        return len;
      slot = &r->www_authenticate;
    }
  else if (strcmp (name, "content-type") == 0)
    slot = &r->content_type;
  else if (strcmp (name, "location") == 0)
    slot = &r->location;
  else if (strcmp (name, "docker-content-digest") == 0)
    slot = &r->docker_digest;
  else if (strcmp (name, "content-range") == 0)
    slot = &r->content_range;
  if (slot)
    {
      g_free (*slot);
      *slot = g_steal_pointer (&value);
    }
  return len;
}

static size_t
write_cb (char *ptr, size_t size, size_t nmemb, void *userdata)
{
  Request *r = userdata;
  size_t len = size * nmemb;
  long status = 0;
  curl_easy_getinfo (r->curl, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status >= 300)
    {
      if (r->error_body->len + len <= MAX_ERROR_BODY)
        g_byte_array_append (r->error_body, (guint8 *) ptr, len);
      return len;
    }
  if (r->range && status == 200)
    {
      /* the whole blob instead of the ranges: the caller fetches it */
      r->range_ignored = TRUE;
      return 0;
    }
  if ((r->expect >= 0 && r->received + len > (guint64) r->expect) || (r->max > 0 && r->received + len > r->max))
    {
      r->overflow = TRUE;
      return 0; /* aborts the transfer */
    }
  if (r->sum)
    sysctr_sha256_update (r->sum, ptr, len);
  if (r->buf)
    g_byte_array_append (r->buf, (guint8 *) ptr, len);
  else if (r->fd >= 0)
    {
      const char *p = ptr;
      size_t left = len;
      while (left > 0)
        {
          ssize_t n = write (r->fd, p, left);
          if (n < 0)
            {
              if (errno == EINTR)
                continue;
              r->write_errno = errno;
              return 0;
            }
          p += n;
          left -= n;
        }
    }
  r->received += len;
  if (r->progress)
    r->progress (r->progress_data, len);
  return len;
}

/* @r was zeroed by its g_auto declaration; with @own_buf the body goes
 * into a buffer the request owns. */
static gboolean
request_init (SysctrRegistry *reg, Request *r, gboolean own_buf)
{
  r->reg = reg;
  r->fd = -1;
  r->expect = -1;
  r->error_body = g_byte_array_new ();
  if (own_buf)
    r->buf = r->owned_buf = g_byte_array_new ();
  r->curl = curl_easy_init ();
  return r->curl != NULL;
}

static void
setup_tls (SysctrRegistry *reg, CURL *curl)
{
  if (!reg->tls_verify)
    {
      curl_easy_setopt (curl, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt (curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
  if (reg->ca_blob)
    {
      struct curl_blob blob = {
        .data = (void *) g_bytes_get_data (reg->ca_blob, NULL),
        .len = g_bytes_get_size (reg->ca_blob),
        .flags = CURL_BLOB_COPY,
      };
      curl_easy_setopt (curl, CURLOPT_CAINFO_BLOB, &blob);
    }
  if (reg->client_cert)
    {
      curl_easy_setopt (curl, CURLOPT_SSLCERT, reg->client_cert);
      curl_easy_setopt (curl, CURLOPT_SSLKEY, reg->client_key);
    }
}

static long
stall_timeout (void)
{
  const char *s = g_getenv ("SYSCTR_STALL_TIMEOUT");
  long v = s ? atol (s) : 0;
  return v > 0 ? v : 30;
}

/* A transfer that receives nothing for the stall timeout is cut, whatever
 * phase it is in (waiting for headers, mid-body). curl's own low-speed
 * check averages over a few seconds of history, so a burst followed by
 * silence would live on for several seconds more than asked. */
static int
xferinfo_cb (void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
  Request *r = userdata;
  if (g_atomic_int_get (&r->reg->cancelled))
    return 1;
  gint64 now = g_get_monotonic_time ();
  if (dlnow != r->last_bytes)
    {
      r->last_bytes = dlnow;
      r->last_change = now;
      return 0;
    }
  if (now - r->last_change > r->stall_usec)
    {
      r->stalled = TRUE;
      return 1; /* CURLE_ABORTED_BY_CALLBACK */
    }
  return 0;
}

/* One HTTP GET of an absolute URL, no redirects followed. */
static gboolean
perform_once (Request *r, const char *url, const char *accept, const char *authorization, long *out_status,
              GError **error)
{
  SysctrRegistry *reg = r->reg;
  CURL *curl = r->curl;
  curl_easy_reset (curl);
  request_reset_response (r);

  struct curl_slist *headers = NULL;
  if (accept)
    {
      g_autofree char *h = g_strdup_printf ("Accept: %s", accept);
      headers = curl_slist_append (headers, h);
    }
  g_autofree char *range_header = NULL;
  if (r->range)
    {
      range_header = g_strdup_printf ("Range: bytes=%s", r->range);
      headers = curl_slist_append (headers, range_header);
    }
  g_autofree char *auth_header = NULL;
  if (authorization)
    {
      auth_header = g_strdup_printf ("Authorization: %s", authorization);
      headers = curl_slist_append (headers, auth_header);
    }
  curl_easy_setopt (curl, CURLOPT_URL, url);
  curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt (curl, CURLOPT_USERAGENT, "sysctr/" PACKAGE_VERSION);
  curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, reg->tls_verify ? "https" : "https,http");
  curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT, 30L);
  /* A trickle (a byte now and then) is a stall too: ask for 1 KiB/s on
   * average over the stall window. */
  curl_easy_setopt (curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt (curl, CURLOPT_LOW_SPEED_TIME, stall_timeout ());
  r->stall_usec = (gint64) stall_timeout () * G_USEC_PER_SEC;
  r->last_bytes = 0;
  r->last_change = g_get_monotonic_time ();
  r->stalled = FALSE;
  curl_easy_setopt (curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt (curl, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
  curl_easy_setopt (curl, CURLOPT_XFERINFODATA, r);
  curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt (curl, CURLOPT_HEADERDATA, r);
  curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt (curl, CURLOPT_WRITEDATA, r);
  curl_easy_setopt (curl, CURLOPT_SHARE, reg->share);
  curl_easy_setopt (curl, CURLOPT_ACCEPT_ENCODING, NULL);
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, errbuf);
  setup_tls (reg, curl);

  gint64 t0 = g_get_monotonic_time ();
  CURLcode res = curl_easy_perform (curl);
  curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, NULL); /* errbuf is on this stack */
  curl_easy_setopt (curl, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all (headers);
  if (auth_header)
    explicit_bzero (auth_header, strlen (auth_header));

  /* Count HTTP exchanges, not connection attempts: the HTTPS probe that
   * --tls-verify=false makes before falling back to plain HTTP sends no
   * request, and a warm re-pull must stay at a ping and one manifest. */
  long answered = 0;
  curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &answered);
  if (sysctr_verbose ())
    {
      curl_off_t got = 0;
      curl_easy_getinfo (curl, CURLINFO_SIZE_DOWNLOAD_T, &got);
      sysctr_debug ("GET %s%s: %s%ld, %" G_GINT64_FORMAT " bytes, %" G_GINT64_FORMAT " ms", url,
                    authorization ? " (with credentials)" : "",
                    answered ? "HTTP " : "no answer: ", answered ? answered : (long) res, (gint64) got,
                    (g_get_monotonic_time () - t0) / 1000);
    }
  if (answered != 0)
    {
      g_mutex_lock (&reg->lock);
      reg->requests++;
      g_mutex_unlock (&reg->lock);
    }

  if (r->range_ignored)
    {
      *out_status = 200;
      return TRUE;
    }
  if (r->overflow)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "the server sent more data than %s",
                         r->expect >= 0 ? "the manifest declared" : "the size limit allows");
  if (r->write_errno)
    {
      errno = r->write_errno;
      return sysctr_throw_errno (error, "writing download");
    }
  if (g_atomic_int_get (&reg->cancelled))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
      return FALSE;
    }
  if (r->stalled || res == CURLE_OPERATION_TIMEDOUT)
    return sysctr_throw (error, SYSCTR_ERROR_NETWORK, "transfer stalled: %s for %ld s",
                         r->stalled ? "no data" : "under 1 KiB/s", stall_timeout ());
  if (res == CURLE_PEER_FAILED_VERIFICATION)
    return sysctr_throw (
        error, SYSCTR_ERROR_NETWORK,
        "TLS certificate verification failed (%s); a private CA goes in /etc/containers/certs.d/%s/ca.crt",
        errbuf[0] ? errbuf : curl_easy_strerror (res), reg->host);
  if (res == CURLE_SSL_CONNECT_ERROR && reg->tls_verify)
    return sysctr_throw (error, SYSCTR_ERROR_NETWORK,
                         "TLS handshake failed (%s); a plain-HTTP registry needs --tls-verify=false",
                         curl_easy_strerror (res));
  if (res != CURLE_OK)
    return sysctr_throw (error, SYSCTR_ERROR_NETWORK, "%s", curl_easy_strerror (res));
  curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, out_status);
  return TRUE;
}

static char *
error_body_message (Request *r)
{
  if (r->error_body->len == 0)
    return NULL;
  g_autoptr (json_t) json = json_loadb ((const char *) r->error_body->data, r->error_body->len, 0, NULL);
  json_t *errors = json ? json_object_get (json, "errors") : NULL;
  json_t *first = json_is_array (errors) ? json_array_get (errors, 0) : NULL;
  const char *code = sysctr_json_get_string (first, "code");
  const char *msg = sysctr_json_get_string (first, "message");
  if (msg == NULL)
    return NULL;
  /* Error bodies are the server's words: keep them to one printable line. */
  g_autofree char *text = g_strdup_printf ("%s%s%s", code ? code : "", code ? ": " : "", msg);
  for (char *p = text; *p; p++)
    if ((unsigned char) *p < 0x20 || (unsigned char) *p == 0x7f)
      *p = ' ';
  if (strlen (text) > 200)
    text[200] = '\0';
  return g_steal_pointer (&text);
}

static gboolean
same_origin (const char *a, const char *b)
{
  g_autoptr (GUri) ua = g_uri_parse (a, G_URI_FLAGS_NONE, NULL);
  g_autoptr (GUri) ub = g_uri_parse (b, G_URI_FLAGS_NONE, NULL);
  if (ua == NULL || ub == NULL)
    return FALSE;
  return g_strcmp0 (g_uri_get_scheme (ua), g_uri_get_scheme (ub)) == 0
         && g_ascii_strcasecmp (g_uri_get_host (ua) ? g_uri_get_host (ua) : "",
                                g_uri_get_host (ub) ? g_uri_get_host (ub) : "")
                == 0
         && g_uri_get_port (ua) == g_uri_get_port (ub);
}

/* "Basic base64(user:pass)"; the intermediate copy is wiped. */
static char *
basic_auth_value (SysctrRegistry *reg)
{
  char *b64 = g_base64_encode ((guchar *) reg->creds, strlen (reg->creds));
  char *value = g_strdup_printf ("Basic %s", b64);
  explicit_bzero (b64, strlen (b64));
  g_free (b64);
  return value;
}

static gboolean fetch_token (SysctrRegistry *reg, const SysctrAuthChallenge *c, GError **error);

/* GET with auth and manual redirects: credentials go only to the
 * registry's own origin, never to a host a redirect names. */
static gboolean
do_get (Request *r, const char *path, const char *accept, long *out_status, GError **error)
{
  SysctrRegistry *reg = r->reg;
  g_autofree char *base = g_strdup_printf ("%s://%s", reg->scheme, reg->host);
  g_autofree char *url = g_strconcat (base, path, NULL);
  gboolean retried_auth = FALSE;

  for (int redirects = 0;;)
    {
      g_autofree char *authorization = NULL;
      if (same_origin (url, base))
        {
          g_mutex_lock (&reg->lock);
          authorization = g_strdup (reg->authorization);
          g_mutex_unlock (&reg->lock);
        }
      long status = 0;
      if (!perform_once (r, url, accept, authorization, &status, error))
        return FALSE;

      if (status == 401 && !retried_auth && same_origin (url, base))
        {
          retried_auth = TRUE;
          g_autoptr (SysctrAuthChallenge) c
              = r->www_authenticate ? sysctr_auth_parse_challenge (r->www_authenticate) : NULL;
          if (c == NULL)
            return sysctr_throw (error, SYSCTR_ERROR_AUTH,
                                 "authentication required, but the registry offers no scheme sysctr speaks");
          if (strcmp (c->scheme, "basic") == 0)
            {
              if (reg->creds == NULL)
                return sysctr_throw (error, SYSCTR_ERROR_AUTH,
                                     "authentication required (no credentials for %s; use --creds or --authfile)",
                                     reg->domain);
              if (authorization != NULL)
                return sysctr_throw (error, SYSCTR_ERROR_AUTH,
                                     "authentication failed: the registry rejected the credentials for %s",
                                     reg->domain);
              g_mutex_lock (&reg->lock);
              g_free (reg->authorization);
              reg->authorization = basic_auth_value (reg);
              g_mutex_unlock (&reg->lock);
            }
          else if (!fetch_token (reg, c, error))
            return FALSE;
          continue;
        }
      if (status == 401)
        return sysctr_throw (error, SYSCTR_ERROR_AUTH, "authentication failed for %s: the registry refused access%s",
                             reg->domain, reg->creds ? " with the given credentials" : " (no credentials given)");

      if (status >= 300 && status < 400 && status != 304)
        {
          if (r->location == NULL)
            return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "HTTP %ld redirect without a Location", status);
          if (++redirects > MAX_REDIRECTS)
            return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "too many redirects");
          g_autofree char *resolved = g_uri_resolve_relative (url, r->location, G_URI_FLAGS_NONE, NULL);
          if (resolved == NULL)
            return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "redirect to an invalid URL");
          if (!g_str_has_prefix (resolved, "https://") && !(g_str_has_prefix (resolved, "http://") && !reg->tls_verify))
            return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                                 "redirect to a non-HTTPS URL refused (use --tls-verify=false to allow)");
          sysctr_debug ("redirected to %s%s", resolved,
                        g_str_has_prefix (resolved, reg->scheme) ? "" : " (another origin: no credentials sent)");
          g_free (url);
          url = g_steal_pointer (&resolved);
          continue;
        }
      *out_status = status;
      return TRUE;
    }
}

static gboolean
fetch_token (SysctrRegistry *reg, const SysctrAuthChallenge *c, GError **error)
{
  if (!g_str_has_prefix (c->realm, "https://") && !(g_str_has_prefix (c->realm, "http://") && !reg->tls_verify))
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "token realm %s is not HTTPS; refusing to send credentials there",
                         c->realm);

  g_auto (Request) r = { 0 };
  if (!request_init (reg, &r, TRUE))
    return sysctr_throw (error, SYSCTR_ERROR_FAILED, "curl init failed");
  r.max = MAX_TOKEN_BODY;

  GString *url = g_string_new (c->realm);
  char sep = strchr (c->realm, '?') ? '&' : '?';
  if (c->service)
    {
      char *e = curl_easy_escape (r.curl, c->service, 0);
      g_string_append_printf (url, "%cservice=%s", sep, e);
      curl_free (e);
      sep = '&';
    }
  g_autofree char *scope = g_strdup_printf ("repository:%s:pull", reg->path);
  char *e = curl_easy_escape (r.curl, scope, 0);
  g_string_append_printf (url, "%cscope=%s", sep, e);
  curl_free (e);
  g_autofree char *url_s = g_string_free (url, FALSE);

  g_autofree char *basic = reg->creds ? basic_auth_value (reg) : NULL;
  long status = 0;
  gboolean ok = perform_once (&r, url_s, "application/json", basic, &status, error);
  if (basic)
    explicit_bzero (basic, strlen (basic));
  if (!ok)
    {
      sysctr_prefix_error (error, "getting a token from %s", c->realm);
      return FALSE;
    }
  if (status == 401 || status == 403)
    {
      return sysctr_throw (error, SYSCTR_ERROR_AUTH, "authentication failed for %s: the token server refused %s",
                           reg->domain,
                           reg->creds ? "the given credentials" : "anonymous access (no credentials given)");
    }
  if (status != 200)
    return sysctr_throw (error, SYSCTR_ERROR_AUTH, "token server %s answered HTTP %ld", c->realm, status);
  g_autoptr (json_t) json = json_loadb ((const char *) r.buf->data, r.buf->len, 0, NULL);
  const char *token = sysctr_json_get_string (json, "token");
  if (token == NULL)
    token = sysctr_json_get_string (json, "access_token");
  if (token == NULL || *token == '\0' || strlen (token) > 16384)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "token server %s returned no usable token", c->realm);
  for (const char *p = token; *p; p++)
    if (*p <= 0x20 || *p >= 0x7f)
      return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "token server %s returned a token with invalid characters",
                           c->realm);

  g_mutex_lock (&reg->lock);
  g_free (reg->authorization);
  reg->authorization = g_strdup_printf ("Bearer %s", token);
  g_mutex_unlock (&reg->lock);
  return TRUE;
}

static gboolean
ping (SysctrRegistry *reg, GError **error)
{
  g_auto (Request) r = { 0 };
  if (!request_init (reg, &r, TRUE))
    return sysctr_throw (error, SYSCTR_ERROR_FAILED, "curl init failed");
  r.max = 64 * 1024;
  g_autofree char *url = g_strdup_printf ("https://%s/v2/", reg->host);
  long status = 0;
  g_autoptr (GError) local_error = NULL;
  gboolean ok = perform_once (&r, url, NULL, NULL, &status, &local_error);
  if (!ok && !reg->tls_verify)
    {
      /* --tls-verify=false also allows plain HTTP, as skopeo does. */
      g_clear_error (&local_error);
      g_free (url);
      url = g_strdup_printf ("http://%s/v2/", reg->host);
      g_free (reg->scheme);
      reg->scheme = g_strdup ("http");
      ok = perform_once (&r, url, NULL, NULL, &status, &local_error);
    }
  if (!ok)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "registry %s unreachable: ", reg->domain);
      return FALSE;
    }
  if (status == 401 && r.www_authenticate)
    reg->challenge = sysctr_auth_parse_challenge (r.www_authenticate);
  if (status != 200 && status != 401)
    return sysctr_throw (error, SYSCTR_ERROR_NETWORK, "registry %s: /v2/ answered HTTP %ld (not a registry?)",
                         reg->domain, status);
  /* Get a token up front when we already know the realm: saves a 401
   * round trip on the manifest request. */
  if (reg->challenge && strcmp (reg->challenge->scheme, "bearer") == 0)
    return fetch_token (reg, reg->challenge, error);
  if (reg->challenge && strcmp (reg->challenge->scheme, "basic") == 0 && reg->creds)
    {
      g_mutex_lock (&reg->lock);
      g_free (reg->authorization);
      reg->authorization = basic_auth_value (reg);
      g_mutex_unlock (&reg->lock);
    }
  return TRUE;
}

SysctrRegistry *
sysctr_registry_new (const SysctrRef *ref, const SysctrPullOptions *opts, GError **error)
{
  static gsize curl_inited;
  if (g_once_init_enter (&curl_inited))
    {
      curl_global_init (CURL_GLOBAL_DEFAULT);
      g_once_init_leave (&curl_inited, 1);
    }
  g_autoptr (SysctrRegistry) reg = g_new0 (SysctrRegistry, 1);
  g_mutex_init (&reg->lock);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    g_mutex_init (&reg->share_locks[i]);
  reg->domain = g_strdup (ref->domain);
  reg->host = g_strdup (sysctr_ref_registry_host (ref));
  reg->path = g_strdup (ref->path);
  reg->scheme = g_strdup ("https");
  reg->tls_verify = opts->tls_verify;
  reg->share = curl_share_init ();
  curl_share_setopt (reg->share, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt (reg->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt (reg->share, CURLSHOPT_USERDATA, reg);
  curl_share_setopt (reg->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt (reg->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  /* Not CURL_LOCK_DATA_CONNECT: curl does not support sharing connections
   * between threads that run transfers at the same time (the layer
   * workers do), whatever the lock callbacks. */

  if (!sysctr_auth_lookup (ref->domain, ref->path, opts->creds, opts->authfile, &reg->creds, error))
    return NULL;
  if (!load_certs_d (reg, error))
    return NULL;
  if (!ping (reg, error))
    return NULL;
  return g_steal_pointer (&reg);
}

/* The answer's status as an error; the caller prefixes what it asked for. */
static gboolean
check_status (Request *r, long status, GError **error)
{
  if (status == 200)
    return TRUE;
  g_autofree char *msg = error_body_message (r);
  if (status == 404)
    return sysctr_throw (error, SYSCTR_ERROR_NOT_FOUND, "not found%s%s%s", msg ? " (" : "", msg ? msg : "",
                         msg ? ")" : "");
  return sysctr_throw (error, SYSCTR_ERROR_NETWORK, "HTTP %ld%s%s", status, msg ? ": " : "", msg ? msg : "");
}

gboolean
sysctr_registry_get_manifest (SysctrRegistry *reg, const char *reference, GBytes **out_data, char **out_media_type,
                              char **out_digest, GError **error)
{
  static const char accept[] = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
                               "application/vnd.docker.distribution.manifest.v2+json, "
                               "application/vnd.docker.distribution.manifest.list.v2+json";
  g_auto (Request) r = { 0 };
  if (!request_init (reg, &r, TRUE))
    return sysctr_throw (error, SYSCTR_ERROR_FAILED, "curl init failed");
  r.max = SYSCTR_MAX_MANIFEST_SIZE;
  g_autofree char *path = g_strdup_printf ("/v2/%s/manifests/%s", reg->path, reference);
  g_autofree char *what = g_strdup_printf ("manifest %s:%s", reg->path, reference);
  long status = 0;
  gboolean ok = do_get (&r, path, accept, &status, error) && check_status (&r, status, error);
  if (!ok)
    {
      sysctr_prefix_error (error, "%s", what);
      return FALSE;
    }
  g_autofree char *hex = sysctr_sha256_hex (r.buf->data, r.buf->len);
  g_autofree char *digest = g_strdup_printf ("sha256:%s", hex);
  if (g_str_has_prefix (reference, "sha256:") && strcmp (reference, digest) != 0)
    {
      return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: digest mismatch (content hashes to %s)", what, digest);
    }
  if (out_media_type)
    {
      char *ct = r.content_type ? g_strdup (r.content_type) : NULL;
      if (ct)
        {
          char *semi = strchr (ct, ';');
          if (semi)
            *semi = '\0';
          g_strstrip (ct);
        }
      *out_media_type = ct;
    }
  r.buf = NULL;
  *out_data = g_byte_array_free_to_bytes (g_steal_pointer (&r.owned_buf));
  if (out_digest)
    *out_digest = g_steal_pointer (&digest);
  return TRUE;
}

static gboolean
fetch_blob_common (SysctrRegistry *reg, const char *digest, gint64 size, int fd, GByteArray *buf, gsize max,
                   SysctrProgressFunc progress, gpointer progress_data, GError **error)
{
  if (!sysctr_digest_valid (digest))
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "invalid blob digest \"%.80s\"", digest);
  g_auto (Request) r = { 0 };
  if (!request_init (reg, &r, FALSE))
    return sysctr_throw (error, SYSCTR_ERROR_FAILED, "curl init failed");
  r.fd = fd;
  r.buf = buf; /* the caller's */
  r.max = max;
  r.expect = size;
  r.sum = sysctr_sha256_new ();
  r.progress = progress;
  r.progress_data = progress_data;
  g_autofree char *path = g_strdup_printf ("/v2/%s/blobs/%s", reg->path, digest);
  g_autofree char *what = g_strdup_printf ("blob %s", digest);
  long status = 0;
  gboolean ok = do_get (&r, path, NULL, &status, error) && check_status (&r, status, error);
  if (!ok)
    sysctr_prefix_error (error, "%s", what);
  else
    {
      g_autofree char *got = sysctr_sha256_digest (r.sum);
      if (size >= 0 && r.received != (guint64) size)
        ok = sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                           "%s: got %" G_GUINT64_FORMAT " bytes, the manifest says %" G_GINT64_FORMAT, what, r.received,
                           size);
      else if (strcmp (got, digest) != 0)
        ok = sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "%s: digest mismatch (content hashes to %s)", what, got);
    }
  return ok;
}

gboolean
sysctr_registry_fetch_blob (SysctrRegistry *reg, const char *digest, gint64 size, int fd, SysctrProgressFunc progress,
                            gpointer progress_data, GError **error)
{
  return fetch_blob_common (reg, digest, size, fd, NULL, 0, progress, progress_data, error);
}

gboolean
sysctr_registry_fetch_blob_bytes (SysctrRegistry *reg, const char *digest, gint64 size, gsize max_size, GBytes **out,
                                  GError **error)
{
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  if (size > (gint64) max_size)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "blob %s: declared size %" G_GINT64_FORMAT " is over the limit",
                         digest, size);
  if (!fetch_blob_common (reg, digest, size, -1, buf, max_size, NULL, NULL, error))
    return FALSE;
  *out = g_byte_array_free_to_bytes (g_steal_pointer (&buf));
  return TRUE;
}

/* "bytes A-B/TOTAL" -> [A, B+1) */
static gboolean
parse_content_range (const char *v, guint64 *out_start, guint64 *out_end)
{
  guint64 a, b;
  char slash;
  if (v == NULL || sscanf (v, "bytes %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT "%c", &a, &b, &slash) != 3
      || slash != '/' || b < a)
    return FALSE;
  *out_start = a;
  *out_end = b + 1;
  return TRUE;
}

static gboolean
put_part (int fd, guint64 blob_size, const guint8 *data, gsize len, guint64 start, guint64 end, GArray *got,
          GError **error)
{
  if (end > blob_size || end - start != len)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "a range answer does not fit the blob");
  gsize done = 0;
  while (done < len)
    {
      ssize_t n = pwrite (fd, data + done, len - done, start + done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return sysctr_throw_errno (error, "writing a range");
      done += n;
    }
  SysctrRange r = { start, end };
  g_array_append_val (got, r);
  return TRUE;
}

static gint
range_cmp (gconstpointer a, gconstpointer b)
{
  const SysctrRange *x = a, *y = b;
  return x->start < y->start ? -1 : x->start > y->start;
}

/* multipart/byteranges, as RFC 9110 and Go's http.ServeContent write it */
static gboolean
parse_multipart (const char *content_type, const guint8 *body, gsize len, int fd, guint64 blob_size, GArray *got,
                 GError **error)
{
  const char *b = strstr (content_type, "boundary=");
  if (b == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "multipart answer without a boundary");
  g_autofree char *boundary = g_strdup (b + strlen ("boundary="));
  g_strdelimit (boundary, "\";", ' ');
  g_strstrip (boundary);
  if (boundary[0] == '"')
    memmove (boundary, boundary + 1, strlen (boundary));
  g_autofree char *delim = g_strconcat ("--", boundary, NULL);
  gsize dlen = strlen (delim), pos = 0;
  for (;;)
    {
      const guint8 *d = dlen <= len - pos ? memmem (body + pos, len - pos, delim, dlen) : NULL;
      if (d == NULL)
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "multipart answer ends without its closing boundary");
      pos = d - body + dlen;
      if (len - pos >= 2 && memcmp (body + pos, "--", 2) == 0)
        return TRUE;
      const guint8 *hend = memmem (body + pos, len - pos, "\r\n\r\n", 4);
      if (hend == NULL)
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "multipart part without an end of headers");
      g_autofree char *headers = g_strndup ((const char *) body + pos, hend - (body + pos));
      guint64 start = 0, end = 0;
      gboolean found = FALSE;
      g_auto (GStrv) lines = g_strsplit (headers, "\r\n", -1);
      for (char **l = lines; *l; l++)
        if (g_ascii_strncasecmp (*l, "content-range:", 14) == 0)
          found = parse_content_range (g_strstrip (*l + 14), &start, &end);
      if (!found)
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "multipart part without a Content-Range");
      pos = hend - body + 4;
      if (end - start > len - pos)
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "multipart part shorter than its Content-Range");
      if (!put_part (fd, blob_size, body + pos, end - start, start, end, got, error))
        return FALSE;
      pos += end - start;
    }
}

gboolean
sysctr_registry_fetch_ranges (SysctrRegistry *reg, const char *digest, guint64 blob_size, const SysctrRange *ranges,
                              guint n, int fd, gboolean *out_whole, GError **error)
{
  *out_whole = FALSE;
  if (!sysctr_digest_valid (digest))
    return sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "invalid blob digest \"%.80s\"", digest);
  GString *spec = g_string_new (NULL);
  guint64 want = 0;
  for (guint i = 0; i < n; i++)
    {
      g_string_append_printf (spec, "%s%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT, i ? "," : "", ranges[i].start,
                              ranges[i].end - 1);
      want += ranges[i].end - ranges[i].start;
    }
  g_autofree char *range = g_string_free (spec, FALSE);
  g_auto (Request) r = { 0 };
  if (!request_init (reg, &r, TRUE))
    return sysctr_throw (error, SYSCTR_ERROR_FAILED, "curl init failed");
  r.range = range;
  r.max = want + 512 * (gsize) n + 4096; /* the parts and their headers */
  g_autofree char *path = g_strdup_printf ("/v2/%s/blobs/%s", reg->path, digest);
  long status = 0;
  if (!do_get (&r, path, NULL, &status, error))
    {
      sysctr_prefix_error (error, "blob %s, %u ranges", digest, n);
      return FALSE;
    }
  if (status == 200 && r.range_ignored)
    {
      *out_whole = TRUE;
      return TRUE;
    }
  if (status != 206)
    {
      if (!check_status (&r, status, error))
        return FALSE;
      return sysctr_throw (error, SYSCTR_ERROR_NETWORK, "blob %s: HTTP %ld to a range request", digest, status);
    }
  g_autoptr (GArray) got = g_array_new (FALSE, FALSE, sizeof (SysctrRange));
  gboolean ok;
  if (r.content_type && g_ascii_strncasecmp (r.content_type, "multipart/byteranges", 20) == 0)
    ok = parse_multipart (r.content_type, r.buf->data, r.buf->len, fd, blob_size, got, error);
  else
    {
      guint64 start, end;
      ok = parse_content_range (r.content_range, &start, &end)
               ? put_part (fd, blob_size, r.buf->data, r.buf->len, start, end, got, error)
               : sysctr_throw (error, SYSCTR_ERROR_HOSTILE, "blob %s: 206 without a Content-Range", digest);
    }
  if (!ok)
    return FALSE;
  /* every range asked for is inside what came back */
  g_array_sort (got, range_cmp);
  for (guint i = 0; i < n; i++)
    {
      gboolean covered = FALSE;
      for (guint j = 0; j < got->len && !covered; j++)
        {
          const SysctrRange *g = &g_array_index (got, SysctrRange, j);
          covered = g->start <= ranges[i].start && ranges[i].end <= g->end;
        }
      if (!covered)
        return sysctr_throw (error, SYSCTR_ERROR_HOSTILE,
                             "blob %s: the answer lacks bytes %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT, digest,
                             ranges[i].start, ranges[i].end - 1);
    }
  return TRUE;
}
