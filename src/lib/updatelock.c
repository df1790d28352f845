/* updatelock.c: the cluster lock an update takes before it restarts
 * anything, so that at most N hosts update a container at a time. The
 * engine is etcd's own v3 lock and lease API, spoken through its JSON
 * gateway; nothing here is a server of ours. Invariants:
 * - the lock is held with a lease that a thread keeps alive; a host that
 *   dies (or stops renewing) releases it when the lease expires;
 * - "N at a time" is N lock names (the v3 lock is a mutex): a slot is
 *   waited for, never shared;
 * - a halt record (a key with no lease) stops every host from updating
 *   that lock's container until an admin deletes it; it is checked before
 *   waiting and again once the lock is held;
 * - every value sent to etcd is built here from checked parts (names
 *   match [A-Za-z0-9._-]), every answer is parsed strictly and bounded.
 * - an etcd user's password is read from its file (owner-only) when a
 *   token is needed, sent once to /v3/auth/authenticate and wiped; the
 *   token is never written anywhere nor shown.
 * Keys, under /sysctr/update/LOCKNAME/: lock/SLOT (the mutex), holder/HOST
 * (who holds a slot, bound to the lease), halt (the halt record). */
#include "config.h"

#include "updatelock.h"

#include "containers.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_ANSWER (1024 * 1024)
#define CONNECT_TIMEOUT_MS 2000L
#define CALL_TIMEOUT_MS 5000L
#define MAX_ENDPOINTS 16
#define MAX_SLOTS 64
#define MIN_TTL 5
#define MAX_TTL 3600

void
sysctr_update_lock_config_free (SysctrUpdateLockConfig *cfg)
{
  if (cfg == NULL)
    return;
  g_strfreev (cfg->endpoints);
  g_free (cfg->name);
  g_free (cfg->cacert);
  g_free (cfg->cert);
  g_free (cfg->key);
  g_free (cfg->user);
  g_free (cfg->password_file);
  g_free (cfg);
}

gboolean
sysctr_update_lock_options_given (const SysctrUpdateLockOptions *o)
{
  return o->spec || o->name || o->max || o->ttl || o->cacert || o->cert || o->key || o->user || o->password_file;
}

static gboolean
name_valid (const char *s, gsize max)
{
  gsize n = s ? strlen (s) : 0;
  if (n == 0 || n > max || strcmp (s, ".") == 0 || strcmp (s, "..") == 0)
    return FALSE;
  for (const char *p = s; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '.' && *p != '_' && *p != '-')
      return FALSE;
  return TRUE;
}

/* An etcd client URL: http or https, a host, a port, nothing else. The
 * normalised form is "SCHEME://HOST:PORT". */
static char *
endpoint_parse (const char *given, GError **error)
{
  g_autoptr (GError) local = NULL;
  g_autoptr (GUri) uri = g_uri_parse (given, G_URI_FLAGS_NONE, &local);
  g_autofree char *s = sysctr_printable (given); /* as messages show it */
  if (uri == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "--update-lock: \"%s\" is not a URL", s), NULL;
  const char *scheme = g_uri_get_scheme (uri);
  const char *path = g_uri_get_path (uri);
  if (g_strcmp0 (scheme, "http") != 0 && g_strcmp0 (scheme, "https") != 0)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "--update-lock: \"%s\": an etcd endpoint is http:// or https://",
                         s),
           NULL;
  if (g_uri_get_userinfo (uri) || g_uri_get_query (uri) || g_uri_get_fragment (uri)
      || (*path && strcmp (path, "/") != 0))
    return sysctr_throw (error, SYSCTR_ERROR_INVALID,
                         "--update-lock: \"%s\": an etcd endpoint is SCHEME://HOST:PORT, nothing more", s),
           NULL;
  const char *host = g_uri_get_host (uri);
  if (host == NULL || *host == '\0')
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "--update-lock: \"%s\" names no host", s), NULL;
  for (const char *p = host; *p; p++)
    if (!g_ascii_isalnum (*p) && !strchr (".-:[]", *p))
      return sysctr_throw (error, SYSCTR_ERROR_INVALID, "--update-lock: \"%s\": bad host", s), NULL;
  int port = g_uri_get_port (uri);
  if (port <= 0)
    port = 2379;
  gboolean v6 = strchr (host, ':') != NULL && host[0] != '[';
  return g_strdup_printf ("%s://%s%s%s:%d", scheme, v6 ? "[" : "", host, v6 ? "]" : "", port);
}

static json_t *
config_to_json (const SysctrUpdateLockConfig *cfg)
{
  json_t *eps = json_array ();
  for (char **e = cfg->endpoints; e && *e; e++)
    json_array_append_new (eps, json_string (*e));
  json_t *j = json_pack ("{s:s, s:o, s:o, s:I, s:I}", "backend", "etcd", "endpoints", eps, "name",
                         cfg->name ? json_string (cfg->name) : json_null (), "max", (json_int_t) cfg->max, "ttl",
                         (json_int_t) cfg->ttl);
  /* TLS files: paths only (the admin's files, read at each update) */
  if (cfg->cacert)
    json_object_set_new (j, "cacert", json_string (cfg->cacert));
  if (cfg->cert)
    json_object_set_new (j, "cert", json_string (cfg->cert));
  if (cfg->key)
    json_object_set_new (j, "key", json_string (cfg->key));
  /* etcd authentication: the user and where its password is, never the
   * password itself */
  if (cfg->user)
    json_object_set_new (j, "user", json_string (cfg->user));
  if (cfg->password_file)
    json_object_set_new (j, "password_file", json_string (cfg->password_file));
  return j;
}

/* An etcd user name as an option may give it: 1 to 128 of A-Z a-z 0-9 . _ - @ */
static gboolean
user_valid (const char *s)
{
  gsize n = s ? strlen (s) : 0;
  if (n == 0 || n > 128)
    return FALSE;
  for (const char *p = s; *p; p++)
    if (!g_ascii_isalnum (*p) && !strchr ("._-@", *p))
      return FALSE;
  return TRUE;
}

/* A file option: an absolute, clean path with no control character. */
static gboolean
file_path_valid (const char *p)
{
  if (p == NULL || p[0] != '/' || strlen (p) > 4096 || strstr (p, "/../") || g_str_has_suffix (p, "/.."))
    return FALSE;
  for (const char *c = p; *c; c++)
    if ((unsigned char) *c < 0x20 || *c == 0x7f)
      return FALSE;
  return TRUE;
}

gboolean
sysctr_update_lock_from_json (json_t *json, SysctrUpdateLockConfig **out_cfg, GError **error)
{
  *out_cfg = NULL;
  if (json == NULL || json_is_null (json))
    return TRUE;
  json_t *eps = json_object_get (json, "endpoints");
  if (!json_is_object (json) || g_strcmp0 (sysctr_json_get_string (json, "backend"), "etcd") != 0
      || !json_is_array (eps) || json_array_size (eps) == 0 || json_array_size (eps) > MAX_ENDPOINTS)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "info.json: \"update_lock\" is not an etcd lock");
  g_autoptr (SysctrUpdateLockConfig) cfg = g_new0 (SysctrUpdateLockConfig, 1);
  g_autoptr (GPtrArray) list = g_ptr_array_new ();
  size_t i;
  json_t *e;
  json_array_foreach (eps, i, e)
    {
      char *ep = json_is_string (e) ? endpoint_parse (json_string_value (e), error) : NULL;
      if (ep == NULL)
        {
          g_ptr_array_set_free_func (list, g_free);
          return json_is_string (e)
                     ? FALSE
                     : sysctr_throw (error, SYSCTR_ERROR_INVALID, "info.json: a bad update_lock endpoint");
        }
      g_ptr_array_add (list, ep);
    }
  g_ptr_array_add (list, NULL);
  cfg->endpoints = (char **) g_ptr_array_free (g_steal_pointer (&list), FALSE);
  const char *name = sysctr_json_get_string (json, "name");
  if (name && !name_valid (name, 128))
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "info.json: a bad update lock name");
  cfg->name = g_strdup (name);
  json_int_t max = json_integer_value (json_object_get (json, "max"));
  json_int_t ttl = json_integer_value (json_object_get (json, "ttl"));
  if (max < 1 || max > MAX_SLOTS || ttl < MIN_TTL || ttl > MAX_TTL)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "info.json: update lock max or ttl out of range");
  cfg->max = (guint) max;
  cfg->ttl = (guint) ttl;
  const char *files[] = { "cacert", "cert", "key", "password_file" };
  char **fields[] = { &cfg->cacert, &cfg->cert, &cfg->key, &cfg->password_file };
  for (guint f = 0; f < G_N_ELEMENTS (files); f++)
    {
      json_t *v = json_object_get (json, files[f]);
      if (v == NULL)
        continue;
      if (!file_path_valid (json_string_value (v)))
        return sysctr_throw (error, SYSCTR_ERROR_INVALID, "info.json: a bad update lock %s path", files[f]);
      *fields[f] = g_strdup (json_string_value (v));
    }
  json_t *user = json_object_get (json, "user");
  if (user && !user_valid (json_string_value (user)))
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "info.json: a bad update lock user");
  cfg->user = g_strdup (json_string_value (user));
  if ((cfg->user == NULL) != (cfg->password_file == NULL))
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "info.json: an update lock user without a password file");
  *out_cfg = g_steal_pointer (&cfg);
  return TRUE;
}

gboolean
sysctr_update_lock_merge (json_t *current, const SysctrUpdateLockOptions *opts, json_t **out_json, GError **error)
{
  *out_json = NULL;
  g_autoptr (SysctrUpdateLockConfig) cfg = NULL;
  if (!sysctr_update_lock_from_json (current, &cfg, error))
    return FALSE;
  if (opts->spec && strcmp (opts->spec, "none") == 0)
    {
      SysctrUpdateLockOptions rest = *opts;
      rest.spec = NULL;
      if (sysctr_update_lock_options_given (&rest))
        return sysctr_throw (error, SYSCTR_ERROR_USAGE, "--update-lock=none takes no other --update-lock-* option");
      return TRUE;
    }
  if (opts->spec)
    {
      g_autofree char *shown_spec = sysctr_printable (opts->spec);
      if (!g_str_has_prefix (opts->spec, "etcd:"))
        return sysctr_throw (error, SYSCTR_ERROR_INVALID,
                             "--update-lock=%s: expected etcd:URL[,URL…] (etcd's v3 API) or none", shown_spec);
      g_auto (GStrv) parts = g_strsplit (opts->spec + strlen ("etcd:"), ",", -1);
      guint n = g_strv_length (parts);
      if (n == 0 || n > MAX_ENDPOINTS)
        return sysctr_throw (error, SYSCTR_ERROR_INVALID, "--update-lock: between 1 and %d etcd endpoints",
                             MAX_ENDPOINTS);
      g_autoptr (GPtrArray) list = g_ptr_array_new_with_free_func (g_free);
      for (guint i = 0; i < n; i++)
        {
          char *ep = endpoint_parse (parts[i], error);
          if (ep == NULL)
            return FALSE;
          g_ptr_array_add (list, ep);
        }
      g_ptr_array_add (list, NULL);
      if (cfg == NULL)
        {
          cfg = g_new0 (SysctrUpdateLockConfig, 1);
          cfg->max = 1;
          cfg->ttl = SYSCTR_UPDATE_LOCK_TTL_DEFAULT;
        }
      g_strfreev (cfg->endpoints);
      g_ptr_array_set_free_func (list, NULL);
      cfg->endpoints = (char **) g_ptr_array_free (g_steal_pointer (&list), FALSE);
    }
  SysctrUpdateLockOptions others = *opts;
  others.spec = NULL;
  if (sysctr_update_lock_options_given (&others) && cfg == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_USAGE,
                         "--update-lock-name, -max, -ttl, -cacert, -cert, -key, -user and -password-file need "
                         "--update-lock=etcd:URL");
  if (cfg == NULL)
    return TRUE;
  if (opts->name)
    {
      if (!name_valid (opts->name, 128))
        {
          g_autofree char *shown = sysctr_printable (opts->name);
          return sysctr_throw (error, SYSCTR_ERROR_INVALID,
                               "--update-lock-name=%s: 1 to 128 of A-Z a-z 0-9 . _ - (and not . or ..)", shown);
        }
      g_free (cfg->name);
      cfg->name = g_strdup (opts->name);
    }
  if (opts->max)
    {
      if (opts->max > MAX_SLOTS)
        return sysctr_throw (error, SYSCTR_ERROR_INVALID, "--update-lock-max: 1 to %d hosts at a time", MAX_SLOTS);
      cfg->max = opts->max;
    }
  if (opts->ttl)
    {
      if (opts->ttl < MIN_TTL || opts->ttl > MAX_TTL)
        return sysctr_throw (error, SYSCTR_ERROR_INVALID, "--update-lock-ttl: %d to %d seconds", MIN_TTL, MAX_TTL);
      cfg->ttl = opts->ttl;
    }
  const char *given[] = { opts->cacert, opts->cert, opts->key, opts->password_file };
  const char *option[]
      = { "--update-lock-cacert", "--update-lock-cert", "--update-lock-key", "--update-lock-password-file" };
  char **fields[] = { &cfg->cacert, &cfg->cert, &cfg->key, &cfg->password_file };
  for (guint i = 0; i < G_N_ELEMENTS (given); i++)
    {
      if (given[i] == NULL)
        continue;
      if (*given[i] && !file_path_valid (given[i]))
        {
          g_autofree char *shown = sysctr_printable (given[i]);
          return sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s=%s: an absolute path (\"\" removes it)", option[i],
                               shown);
        }
      g_free (*fields[i]);
      *fields[i] = *given[i] ? g_strdup (given[i]) : NULL;
    }
  if (cfg->key && cfg->cert == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "--update-lock-key needs --update-lock-cert");
  if (opts->user)
    {
      if (*opts->user && !user_valid (opts->user))
        {
          g_autofree char *shown = sysctr_printable (opts->user);
          return sysctr_throw (error, SYSCTR_ERROR_INVALID,
                               "--update-lock-user=%s: 1 to 128 of A-Z a-z 0-9 . _ - @ (\"\" removes it)", shown);
        }
      g_free (cfg->user);
      cfg->user = *opts->user ? g_strdup (opts->user) : NULL;
    }
  if (cfg->user && cfg->password_file == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "--update-lock-user needs --update-lock-password-file");
  if (cfg->password_file && cfg->user == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "--update-lock-password-file needs --update-lock-user");
  *out_json = config_to_json (cfg);
  return TRUE;
}

char *
sysctr_update_lock_name (const SysctrUpdateLockConfig *cfg, json_t *values, const char *container, GError **error)
{
  const char *name = cfg->name;
  const char *from = "--update-lock-name";
  if (name == NULL)
    {
      name = sysctr_json_get_string (values, "UPDATE_LOCK_NAME");
      from = "the value UPDATE_LOCK_NAME";
    }
  if (name == NULL || *name == '\0')
    return g_strdup (container);
  if (!name_valid (name, 128))
    {
      g_autofree char *shown = sysctr_printable (name);
      return sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s \"%s\" is not a lock name (1 to 128 of A-Z a-z 0-9 . _ -)",
                           from, shown),
             NULL;
    }
  return g_strdup (name);
}

gboolean
sysctr_update_lock_check (const char *container, json_t *info, GError **error)
{
  SysctrDeployment d;
  sysctr_deployment_view (info, &d);
  g_autoptr (SysctrUpdateLockConfig) cfg = NULL;
  if (!sysctr_update_lock_from_json (d.update_lock, &cfg, error))
    return FALSE;
  g_autofree char *lock_name = cfg ? sysctr_update_lock_name (cfg, d.values, container, error) : NULL;
  return cfg == NULL || lock_name != NULL;
}

char *
sysctr_update_lock_describe (const SysctrUpdateLockConfig *cfg, const char *lock_name)
{
  g_autofree char *eps = g_strjoinv (",", cfg->endpoints);
  g_autofree char *user = cfg->user ? g_strdup_printf ("; etcd user %s", cfg->user) : g_strdup ("");
  return g_strdup_printf ("etcd %s; lock %s, %u host%s at a time, lease %u s%s%s", eps, lock_name, cfg->max,
                          cfg->max == 1 ? "" : "s", cfg->ttl, cfg->cert ? "; TLS client certificate" : "", user);
}

/* ---- etcd's JSON gateway ---- */

typedef enum
{
  CALL_OK,
  CALL_TIMEOUT, /* the request's own time ran out (a lock not yet granted) */
  CALL_FAILED,
  CALL_UNAUTHENTICATED, /* etcd refused the token (expired): authenticate again */
} CallResult;

typedef struct
{
  SysctrUpdateLockConfig *cfg; /* an owned copy: endpoints, TLS files, user */
  gint preferred;              /* index of the endpoint that answered last (atomic) */
  GMutex token_lock;           /* the token is shared with the keepalive thread */
  char *token;
} Etcd;

static void
etcd_init (Etcd *etcd, const SysctrUpdateLockConfig *cfg)
{
  /* a copy through what info.json keeps: one list of fields */
  g_autoptr (json_t) j = config_to_json (cfg);
  if (!sysctr_update_lock_from_json (j, &etcd->cfg, NULL))
    g_error ("an update lock configuration does not survive a copy");
  g_mutex_init (&etcd->token_lock);
}

static void
etcd_clear (Etcd *etcd)
{
  g_clear_pointer (&etcd->cfg, sysctr_update_lock_config_free);
  if (etcd->token)
    explicit_bzero (etcd->token, strlen (etcd->token));
  g_free (etcd->token);
  g_mutex_clear (&etcd->token_lock);
}

static size_t
collect (char *data, size_t size, size_t n, void *user)
{
  GString *s = user;
  if (s->len + size * n > MAX_ANSWER)
    return 0;
  g_string_append_len (s, data, (gssize) (size * n));
  return size * n;
}

static char *
b64 (const char *s)
{
  return g_base64_encode ((const guchar *) s, strlen (s));
}

static char *
unb64 (json_t *obj, const char *key)
{
  const char *v = sysctr_json_get_string (obj, key);
  if (v == NULL)
    return NULL;
  gsize len = 0;
  g_autofree guchar *raw = g_base64_decode (v, &len);
  if (raw == NULL || memchr (raw, '\0', len))
    return NULL;
  return g_strndup ((const char *) raw, len);
}

static gint64
header_revision (json_t *answer)
{
  json_t *hdr = json_object_get (answer, "header");
  const char *rev = sysctr_json_get_string (hdr, "revision");
  return rev ? g_ascii_strtoll (rev, NULL, 10) : 0;
}

/* The gRPC status code of an error answer: {"error": "...", "code": N}, or
 * a streamed call's {"error": {"grpc_code": N, ...}}; -1 when none. */
static int
grpc_code (json_t *j)
{
  json_t *code = json_object_get (j, "code");
  if (json_is_integer (code))
    return (int) json_integer_value (code);
  code = json_object_get (json_object_get (j, "error"), "grpc_code");
  return json_is_integer (code) ? (int) json_integer_value (code) : -1;
}

#define GRPC_UNAUTHENTICATED 16

/* POSTs @text to @path on one endpoint after another, starting from the
 * one that answered last, until one answers 200 with a JSON object.
 * @token (may be NULL) goes in the Authorization header. */
static CallResult
etcd_call_once (Etcd *etcd, const char *path, const char *text, const char *token, long timeout_ms, gboolean may_wait,
                json_t **out, GError **error)
{
  *out = NULL;
  guint n = g_strv_length (etcd->cfg->endpoints);
  guint start = (guint) g_atomic_int_get (&etcd->preferred) % n;
  g_autofree char *last = NULL;
  gboolean refused = FALSE; /* the last failure was an answer, not silence */
  for (guint k = 0; k < n; k++)
    {
      guint i = (start + k) % n;
      g_autofree char *url = g_strconcat (etcd->cfg->endpoints[i], path, NULL);
      CURL *c = curl_easy_init ();
      if (c == NULL)
        return sysctr_throw (error, SYSCTR_ERROR_FAILED, "curl init failed"), CALL_FAILED;
      g_autoptr (GString) answer = g_string_new (NULL);
      struct curl_slist *headers = curl_slist_append (NULL, "Content-Type: application/json");
      g_autofree char *auth = token ? g_strconcat ("Authorization: ", token, NULL) : NULL;
      if (auth)
        headers = curl_slist_append (headers, auth);
      curl_easy_setopt (c, CURLOPT_URL, url);
      curl_easy_setopt (c, CURLOPT_PROTOCOLS_STR, "http,https");
      curl_easy_setopt (c, CURLOPT_FOLLOWLOCATION, 0L);
      curl_easy_setopt (c, CURLOPT_HTTPHEADER, headers);
      curl_easy_setopt (c, CURLOPT_POSTFIELDS, text);
      curl_easy_setopt (c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
      curl_easy_setopt (c, CURLOPT_TIMEOUT_MS, timeout_ms);
      curl_easy_setopt (c, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt (c, CURLOPT_WRITEFUNCTION, collect);
      curl_easy_setopt (c, CURLOPT_WRITEDATA, answer);
      if (etcd->cfg->cacert)
        curl_easy_setopt (c, CURLOPT_CAINFO, etcd->cfg->cacert);
      if (etcd->cfg->cert)
        curl_easy_setopt (c, CURLOPT_SSLCERT, etcd->cfg->cert);
      if (etcd->cfg->key)
        curl_easy_setopt (c, CURLOPT_SSLKEY, etcd->cfg->key);
      CURLcode rc = curl_easy_perform (c);
      long status = 0;
      curl_off_t connected = 0;
      curl_easy_getinfo (c, CURLINFO_RESPONSE_CODE, &status);
      curl_easy_getinfo (c, CURLINFO_CONNECT_TIME_T, &connected);
      curl_easy_cleanup (c);
      curl_slist_free_all (headers);
      if (auth)
        explicit_bzero (auth, strlen (auth));
      if (may_wait && rc == CURLE_OPERATION_TIMEDOUT && connected > 0 && status == 0)
        {
          /* connected, asked, no answer yet: a lock still held */
          g_atomic_int_set (&etcd->preferred, (gint) i);
          return CALL_TIMEOUT;
        }
      if (rc != CURLE_OK)
        {
          g_free (last);
          last = g_strdup_printf ("%s: %s", etcd->cfg->endpoints[i], curl_easy_strerror (rc));
          refused = FALSE;
          continue;
        }
      g_autoptr (GError) local = NULL;
      g_autoptr (json_t) j = sysctr_json_parse (answer->str, answer->len, "an etcd answer", &local);
      /* a streamed call (keepalive) answers {"result": …} or {"error": …} */
      json_t *err = json_object_get (j, "error");
      if (status != 200 || !json_is_object (j) || err)
        {
          if (token && grpc_code (j) == GRPC_UNAUTHENTICATED)
            {
              sysctr_throw (error, SYSCTR_ERROR_NETWORK, "etcd %s: %s: the auth token was refused", path,
                            etcd->cfg->endpoints[i]);
              return CALL_UNAUTHENTICATED;
            }
          const char *msg = sysctr_json_get_string (j, "message");
          if (msg == NULL)
            msg = sysctr_json_get_string (j, "error");
          if (msg == NULL)
            msg = sysctr_json_get_string (err, "message");
          g_autofree char *shown = sysctr_printable (msg ? msg
                                                         : (local ? local->message
                                                            : err ? "an error"
                                                                  : "no JSON object"));
          /* an etcd with authentication on, asked without a user */
          gboolean no_user = token == NULL && msg && strstr (msg, "user name is empty");
          g_autofree char *http = status != 200 ? g_strdup_printf ("HTTP %ld: ", status) : g_strdup ("");
          g_free (last);
          last = g_strdup_printf ("%s: %s%s%s", etcd->cfg->endpoints[i], http, shown,
                                  no_user ? " (this etcd has authentication on: give --update-lock-user and "
                                            "--update-lock-password-file)"
                                          : "");
          refused = TRUE;
          continue;
        }
      g_atomic_int_set (&etcd->preferred, (gint) i);
      *out = g_steal_pointer (&j);
      return CALL_OK;
    }
  if (refused)
    sysctr_throw (error, SYSCTR_ERROR_NETWORK, "etcd %s: %s", path, last);
  else
    sysctr_throw (error, SYSCTR_ERROR_NETWORK, "etcd %s: no endpoint answered (%s)", path, last ? last : "none");
  return CALL_FAILED;
}

/* The password in @path: a regular file that only its owner (this user)
 * can read or write, up to 4 KiB, one trailing newline dropped. */
static char *
read_password (const char *path, GError **error)
{
  g_autofree char *shown = sysctr_printable (path);
  sysctr_autofd int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return sysctr_throw_errno (error, "update lock password file %s", shown), NULL;
  struct stat st;
  if (fstat (fd, &st) != 0)
    return sysctr_throw_errno (error, "update lock password file %s", shown), NULL;
  if (!S_ISREG (st.st_mode))
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "update lock password file %s is not a regular file", shown),
           NULL;
  if (st.st_uid != geteuid ())
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "update lock password file %s is owned by uid %u, not %u", shown,
                         (unsigned) st.st_uid, (unsigned) geteuid ()),
           NULL;
  if (st.st_mode & 077)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID,
                         "update lock password file %s is open to group or others (mode %04o): chmod 600 it", shown,
                         (unsigned) (st.st_mode & 07777)),
           NULL;
  char buf[4097];
  gsize len = 0;
  for (;;)
    {
      ssize_t r = read (fd, buf + len, sizeof buf - len);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        {
          explicit_bzero (buf, sizeof buf);
          return sysctr_throw_errno (error, "reading update lock password file %s", shown), NULL;
        }
      if (r == 0 || (len += (gsize) r) == sizeof buf)
        break;
    }
  const char *why = NULL;
  if (len == sizeof buf)
    why = "is over 4 KiB";
  if (len > 0 && buf[len - 1] == '\n')
    len--;
  if (len > 0 && buf[len - 1] == '\r')
    len--;
  if (why == NULL && len == 0)
    why = "holds no password";
  if (why == NULL && memchr (buf, '\0', len))
    why = "holds a NUL byte";
  char *password = why ? NULL : g_strndup (buf, len);
  explicit_bzero (buf, sizeof buf);
  if (why)
    sysctr_throw (error, SYSCTR_ERROR_INVALID, "update lock password file %s %s", shown, why);
  return password;
}

/* A token for etcd's user: the one held, unless it is @stale (refused),
 * else a new one from /v3/auth/authenticate. */
static char *
etcd_token (Etcd *etcd, const char *stale, GError **error)
{
  g_mutex_lock (&etcd->token_lock);
  if (etcd->token && (stale == NULL || strcmp (etcd->token, stale) != 0))
    {
      char *t = g_strdup (etcd->token);
      g_mutex_unlock (&etcd->token_lock);
      return t;
    }
  char *token = NULL;
  char *password = read_password (etcd->cfg->password_file, error);
  if (password)
    {
      g_autoptr (json_t) body = json_pack ("{s:s, s:s}", "name", etcd->cfg->user, "password", password);
      char *text = sysctr_json_dump (body, FALSE);
      explicit_bzero (password, strlen (password));
      g_free (password);
      g_autoptr (json_t) answer = NULL;
      g_autoptr (GError) local = NULL;
      if (etcd_call_once (etcd, "/v3/auth/authenticate", text, NULL, CALL_TIMEOUT_MS, FALSE, &answer, &local)
          == CALL_OK)
        {
          const char *t = sysctr_json_get_string (answer, "token");
          if (t && *t && strlen (t) < 4096 && !strpbrk (t, "\r\n"))
            {
              token = g_strdup (t);
              sysctr_debug ("etcd: authenticated as user %s%s", etcd->cfg->user,
                            stale ? " again (etcd refused the token it gave before)" : "");
            }
          else
            sysctr_throw (error, SYSCTR_ERROR_NETWORK, "etcd gave user %s no usable token", etcd->cfg->user);
        }
      else
        sysctr_throw (error, SYSCTR_ERROR_NETWORK, "etcd user %s: %s", etcd->cfg->user, local->message);
      explicit_bzero (text, strlen (text));
      g_free (text);
    }
  if (etcd->token)
    explicit_bzero (etcd->token, strlen (etcd->token));
  g_free (etcd->token);
  etcd->token = g_strdup (token);
  g_mutex_unlock (&etcd->token_lock);
  return token;
}

/* etcd_call_once with the user's token, authenticating again once when
 * etcd refuses it (a token expires, or a member restarted). */
static CallResult
etcd_call (Etcd *etcd, const char *path, json_t *body, long timeout_ms, gboolean may_wait, json_t **out, GError **error)
{
  g_autofree char *text = sysctr_json_dump (body, FALSE);
  g_autofree char *stale = NULL;
  for (guint attempt = 0;; attempt++)
    {
      g_autofree char *token = NULL;
      if (etcd->cfg->user && (token = etcd_token (etcd, stale, error)) == NULL)
        return CALL_FAILED;
      g_autoptr (GError) local = NULL;
      CallResult r = etcd_call_once (etcd, path, text, token, timeout_ms, may_wait, out, &local);
      if (r == CALL_UNAUTHENTICATED && attempt == 0)
        {
          g_free (stale);
          stale = g_steal_pointer (&token);
          continue;
        }
      if (local)
        g_propagate_error (error, g_steal_pointer (&local));
      return r == CALL_UNAUTHENTICATED ? CALL_FAILED : r;
    }
}

static gboolean
etcd_ok (Etcd *etcd, const char *path, json_t *body, json_t **out, GError **error)
{
  g_autoptr (json_t) answer = NULL;
  if (etcd_call (etcd, path, body, CALL_TIMEOUT_MS, FALSE, &answer, error) != CALL_OK)
    return FALSE;
  if (out)
    *out = g_steal_pointer (&answer);
  return TRUE;
}

static gboolean
kv_put (Etcd *etcd, const char *key, const char *value, const char *lease, gint64 *out_revision, GError **error)
{
  g_autofree char *k = b64 (key), *v = b64 (value);
  g_autoptr (json_t) body = json_pack ("{s:s, s:s}", "key", k, "value", v);
  if (lease)
    json_object_set_new (body, "lease", json_string (lease));
  g_autoptr (json_t) answer = NULL;
  if (!etcd_ok (etcd, "/v3/kv/put", body, &answer, error))
    return FALSE;
  if (out_revision)
    *out_revision = header_revision (answer);
  return TRUE;
}

/* The value of @key (NULL: no such key), and the answer's revision. */
static gboolean
kv_get (Etcd *etcd, const char *key, char **out_value, GError **error)
{
  *out_value = NULL;
  g_autofree char *k = b64 (key);
  g_autoptr (json_t) body = json_pack ("{s:s}", "key", k);
  g_autoptr (json_t) answer = NULL;
  if (!etcd_ok (etcd, "/v3/kv/range", body, &answer, error))
    return FALSE;
  json_t *kvs = json_object_get (answer, "kvs");
  if (json_array_size (kvs) > 0)
    {
      *out_value = unb64 (json_array_get (kvs, 0), "value");
      if (*out_value == NULL)
        *out_value = g_strdup ("");
    }
  return TRUE;
}

/* The values of every key under @prefix. */
static gboolean
kv_get_prefix (Etcd *etcd, const char *prefix, GPtrArray **out_values, GError **error)
{
  g_autofree char *k = b64 (prefix);
  /* range_end: the prefix with its last byte incremented (names are ASCII) */
  g_autofree char *end_raw = g_strdup (prefix);
  end_raw[strlen (end_raw) - 1]++;
  g_autofree char *end = b64 (end_raw);
  g_autoptr (json_t) body = json_pack ("{s:s, s:s, s:i}", "key", k, "range_end", end, "limit", 256);
  g_autoptr (json_t) answer = NULL;
  if (!etcd_ok (etcd, "/v3/kv/range", body, &answer, error))
    return FALSE;
  *out_values = g_ptr_array_new_with_free_func (g_free);
  size_t i;
  json_t *kv;
  json_array_foreach (json_object_get (answer, "kvs"), i, kv)
    {
      char *v = unb64 (kv, "value");
      if (v)
        g_ptr_array_add (*out_values, v);
    }
  return TRUE;
}

static gboolean
kv_delete (Etcd *etcd, const char *key, gint64 *out_deleted, gint64 *out_revision, GError **error)
{
  g_autofree char *k = b64 (key);
  g_autoptr (json_t) body = json_pack ("{s:s}", "key", k);
  g_autoptr (json_t) answer = NULL;
  if (!etcd_ok (etcd, "/v3/kv/deleterange", body, &answer, error))
    return FALSE;
  if (out_deleted)
    {
      const char *d = sysctr_json_get_string (answer, "deleted");
      *out_deleted = d ? g_ascii_strtoll (d, NULL, 10) : 0;
    }
  if (out_revision)
    *out_revision = header_revision (answer);
  return TRUE;
}

static char *
key_for (const char *lock_name, const char *what)
{
  return g_strdup_printf ("/sysctr/update/%s/%s", lock_name, what);
}

static char *
this_host (void)
{
  char buf[256] = { 0 };
  if (gethostname (buf, sizeof buf - 1) != 0 || buf[0] == '\0')
    return g_strdup ("unknown-host");
  return sysctr_printable (buf);
}

/* One line for a halt record: "halted by HOST at TIME: VERSION: REASON" */
static char *
halt_line (const char *lock_name, json_t *halt)
{
  g_autofree char *host = sysctr_printable (sysctr_json_get_string (halt, "host"));
  g_autofree char *at = sysctr_printable (sysctr_json_get_string (halt, "at"));
  g_autofree char *version = sysctr_printable (sysctr_json_get_string (halt, "version"));
  g_autofree char *reason = sysctr_printable (sysctr_json_get_string (halt, "reason"));
  return g_strdup_printf ("updates of lock %s are halted: %s failed on %s at %s (%s); after a look, "
                          "\"sysctr update --clear-halt NAME\" lets them go on",
                          lock_name, version, host, at, reason);
}

static gboolean
read_halt (Etcd *etcd, const char *lock_name, json_t **out_halt, GError **error)
{
  *out_halt = NULL;
  g_autofree char *key = key_for (lock_name, "halt");
  g_autofree char *value = NULL;
  if (!kv_get (etcd, key, &value, error))
    return FALSE;
  if (value == NULL)
    return TRUE;
  json_t *j = json_loads (value, 0, NULL);
  if (!json_is_object (j))
    {
      /* written by someone else: it still halts */
      json_decref (j);
      j = json_pack ("{s:s, s:s, s:s, s:s}", "host", "?", "at", "?", "version", "?", "reason", "an unreadable record");
    }
  *out_halt = j;
  return TRUE;
}

/* FALSE (SYSCTR_ERROR_HALTED, one line naming host, version and reason)
 * when @lock_name has a halt record, or when it cannot be read. */
static gboolean
refuse_if_halted (Etcd *etcd, const char *lock_name, GError **error)
{
  g_autoptr (json_t) halt = NULL;
  if (!read_halt (etcd, lock_name, &halt, error))
    return FALSE;
  if (halt == NULL)
    return TRUE;
  g_autofree char *line = halt_line (lock_name, halt);
  return sysctr_throw (error, SYSCTR_ERROR_HALTED, "%s", line);
}

/* ---- the lock ---- */

struct SysctrUpdateLock
{
  Etcd etcd;
  char *lock_name;
  char *container;
  char *host;
  guint ttl;
  char *lease; /* decimal ID, as the gateway spells int64s */
  char *key;   /* the mutex key we hold (base64, as etcd gave it) */
  guint slot;
  gint64 acquired_revision, released_revision;
  gint64 waited_ms, acquired_at;
  gint64 held_ms;
  gboolean released;
  /* the keepalive thread */
  GThread *thread;
  GMutex mutex;
  GCond cond;
  gboolean stopping;
  gboolean lost;
  char *lost_why;
};

static gpointer
keepalive (gpointer data)
{
  SysctrUpdateLock *l = data;
  gint64 interval = (gint64) l->ttl * G_USEC_PER_SEC / 3;
  gint64 last_ok = g_get_monotonic_time ();
  g_mutex_lock (&l->mutex);
  while (!l->stopping)
    {
      gint64 until = g_get_monotonic_time () + interval;
      while (!l->stopping && g_cond_wait_until (&l->cond, &l->mutex, until))
        ;
      if (l->stopping)
        break;
      g_mutex_unlock (&l->mutex);
      g_autoptr (json_t) body = json_pack ("{s:s}", "ID", l->lease);
      g_autoptr (json_t) answer = NULL;
      g_autoptr (GError) local = NULL;
      CallResult r = etcd_call (&l->etcd, "/v3/lease/keepalive", body, CALL_TIMEOUT_MS, FALSE, &answer, &local);
      json_t *result = json_object_get (answer, "result");
      const char *ttl = sysctr_json_get_string (result, "TTL");
      gint64 now = g_get_monotonic_time ();
      g_mutex_lock (&l->mutex);
      if (r == CALL_OK && ttl && g_ascii_strtoll (ttl, NULL, 10) > 0)
        last_ok = now;
      else if (r == CALL_OK && !l->lost)
        {
          l->lost = TRUE;
          l->lost_why = g_strdup_printf ("etcd says lease %s has expired", l->lease);
        }
      else if (now - last_ok > (gint64) l->ttl * G_USEC_PER_SEC && !l->lost)
        {
          l->lost = TRUE;
          l->lost_why = g_strdup_printf ("the lease could not be renewed for %u s (%s)", l->ttl,
                                         local ? local->message : "no answer");
        }
    }
  g_mutex_unlock (&l->mutex);
  return NULL;
}

static void
stop_keepalive (SysctrUpdateLock *l)
{
  if (l->thread == NULL)
    return;
  g_mutex_lock (&l->mutex);
  l->stopping = TRUE;
  g_cond_signal (&l->cond);
  g_mutex_unlock (&l->mutex);
  g_thread_join (l->thread);
  l->thread = NULL;
}

static void
lock_free (SysctrUpdateLock *l)
{
  stop_keepalive (l);
  g_mutex_clear (&l->mutex);
  g_cond_clear (&l->cond);
  etcd_clear (&l->etcd);
  g_free (l->lock_name);
  g_free (l->container);
  g_free (l->host);
  g_free (l->lease);
  g_free (l->key);
  g_free (l->lost_why);
  g_free (l);
}

static void
revoke_lease (SysctrUpdateLock *l)
{
  g_autoptr (json_t) body = json_pack ("{s:s}", "ID", l->lease);
  g_autoptr (GError) local = NULL;
  if (!etcd_ok (&l->etcd, "/v3/lease/revoke", body, NULL, &local))
    sysctr_note ("%s: could not revoke lease %s (%s); it expires in %u s", l->container, l->lease, local->message,
                 l->ttl);
}

/* The hosts holding a slot now, for a "waiting" line. */
static char *
holders (SysctrUpdateLock *l)
{
  g_autofree char *prefix = key_for (l->lock_name, "holder/");
  g_autoptr (GPtrArray) values = NULL;
  if (!kv_get_prefix (&l->etcd, prefix, &values, NULL) || values->len == 0)
    return g_strdup ("no holder recorded");
  g_autoptr (GString) s = g_string_new ("held by ");
  for (guint i = 0; i < values->len; i++)
    {
      g_autoptr (json_t) j = json_loads (values->pdata[i], 0, NULL);
      g_autofree char *host = sysctr_printable (sysctr_json_get_string (j, "host"));
      g_string_append_printf (s, "%s%s", i ? ", " : "", host);
    }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static gboolean
take (SysctrUpdateLock *l, const SysctrUpdateLockConfig *cfg, const char *from, const char *to, GError **error)
{
  const char *lock_name = l->lock_name, *container = l->container;
  gint64 t0 = g_get_monotonic_time ();

  if (!refuse_if_halted (&l->etcd, lock_name, error))
    return FALSE;
  /* the lease, kept alive from now on: waiting needs it too */
  g_autoptr (json_t) grant_body = json_pack ("{s:I}", "TTL", (json_int_t) cfg->ttl);
  g_autoptr (json_t) granted = NULL;
  if (!etcd_ok (&l->etcd, "/v3/lease/grant", grant_body, &granted, error))
    return FALSE;
  l->lease = g_strdup (sysctr_json_get_string (granted, "ID"));
  if (l->lease == NULL)
    {
      sysctr_throw (error, SYSCTR_ERROR_NETWORK, "etcd granted no lease");
      return FALSE;
    }
  l->thread = g_thread_new ("sysctr-lease", keepalive, l);

  /* one slot of max: with one, wait on it; with more, take turns with a
   * short wait on each (a request given up removes its waiter key) */
  gint64 deadline = t0 + (gint64) SYSCTR_UPDATE_LOCK_WAIT_SECONDS * G_USEC_PER_SEC;
  gboolean said = FALSE;
  for (guint round = 0; l->key == NULL; round++)
    {
      /* the first round asks briefly, so that "waiting" is said at once */
      long wait_ms = round == 0 ? 1000L : cfg->max == 1 ? 30000L : 1500L;
      for (guint s = 0; s < cfg->max && l->key == NULL; s++)
        {
          if (!sysctr_update_lock_held (l, error))
            return FALSE;
          g_autofree char *name = g_strdup_printf ("/sysctr/update/%s/lock/%u", lock_name, s);
          g_autofree char *name64 = b64 (name);
          g_autoptr (json_t) body = json_pack ("{s:s, s:s}", "name", name64, "lease", l->lease);
          g_autoptr (json_t) answer = NULL;
          CallResult r = etcd_call (&l->etcd, "/v3/lock/lock", body, wait_ms, TRUE, &answer, error);
          if (r == CALL_FAILED)
            return FALSE;
          if (r == CALL_OK)
            {
              l->key = g_strdup (sysctr_json_get_string (answer, "key"));
              l->slot = s;
              l->acquired_revision = header_revision (answer);
              if (l->key == NULL)
                {
                  sysctr_throw (error, SYSCTR_ERROR_NETWORK, "etcd's lock answer names no key");
                  return FALSE;
                }
            }
        }
      if (l->key)
        break;
      if (!said)
        {
          g_autofree char *who = holders (l);
          sysctr_say ("%s: waiting for the update lock %s (%s)", container, lock_name, who);
          said = TRUE;
        }
      if (g_get_monotonic_time () > deadline)
        {
          sysctr_throw (error, SYSCTR_ERROR_FAILED, "%s: the update lock %s was not granted in %d s", container,
                        lock_name, SYSCTR_UPDATE_LOCK_WAIT_SECONDS);
          return FALSE;
        }
    }
  l->released = FALSE;
  l->acquired_at = g_get_monotonic_time ();
  l->waited_ms = (l->acquired_at - t0) / 1000;

  /* another host may have failed and halted while this one waited */
  if (!refuse_if_halted (&l->etcd, lock_name, error))
    return FALSE;
  g_autofree char *now = sysctr_iso_now ();
  g_autoptr (json_t) holder = json_pack ("{s:s, s:s, s:s?, s:s?, s:s, s:i}", "host", l->host, "container", container,
                                         "from", from, "to", to, "since", now, "slot", (int) l->slot);
  g_autofree char *holder_text = sysctr_json_dump (holder, FALSE);
  g_autofree char *holder_key = g_strdup_printf ("/sysctr/update/%s/holder/%s", lock_name, l->host);
  if (!kv_put (&l->etcd, holder_key, holder_text, l->lease, NULL, error))
    return FALSE;
  sysctr_say ("%s: took the update lock %s (slot %u of %u, etcd revision %" G_GINT64_FORMAT ", waited %.1f s)",
              container, lock_name, l->slot + 1, cfg->max, l->acquired_revision, l->waited_ms / 1000.0);
  return TRUE;
}

SysctrUpdateLock *
sysctr_update_lock_acquire (const SysctrUpdateLockConfig *cfg, const char *lock_name, const char *container,
                            const char *from, const char *to, GError **error)
{
  SysctrUpdateLock *l = g_new0 (SysctrUpdateLock, 1);
  g_mutex_init (&l->mutex);
  g_cond_init (&l->cond);
  etcd_init (&l->etcd, cfg);
  l->lock_name = g_strdup (lock_name);
  l->container = g_strdup (container);
  l->host = this_host ();
  l->ttl = cfg->ttl;
  l->released = TRUE; /* nothing to release until the lock is held */
  if (take (l, cfg, from, to, error))
    return l;
  /* a lock taken and then refused (a halt found) is released too */
  sysctr_update_lock_free (l);
  return NULL;
}

gboolean
sysctr_update_lock_held (SysctrUpdateLock *l, GError **error)
{
  g_mutex_lock (&l->mutex);
  gboolean lost = l->lost;
  g_autofree char *why = g_strdup (l->lost_why);
  g_mutex_unlock (&l->mutex);
  if (lost)
    return sysctr_throw (error, SYSCTR_ERROR_NETWORK, "lost the update lock %s: %s", l->lock_name, why);
  return TRUE;
}

gboolean
sysctr_update_lock_halt (SysctrUpdateLock *l, const char *version, const char *reason, GError **error)
{
  g_autofree char *now = sysctr_iso_now ();
  g_autoptr (json_t) halt = json_pack ("{s:s, s:s, s:s?, s:s, s:s}", "host", l->host, "container", l->container,
                                       "version", version, "reason", reason, "at", now);
  g_autofree char *text = sysctr_json_dump (halt, FALSE);
  g_autofree char *key = key_for (l->lock_name, "halt");
  if (!kv_put (&l->etcd, key, text, NULL, NULL, error))
    return FALSE;
  sysctr_note ("%s: left a halt record in etcd (%s): no host updates lock %s until \"sysctr update --clear-halt %s\"",
               l->container, key, l->lock_name, l->container);
  return TRUE;
}

json_t *
sysctr_update_lock_summary (SysctrUpdateLock *l)
{
  return json_pack ("{s:s, s:i, s:I, s:I, s:I, s:I, s:s}", "name", l->lock_name, "slot", (int) l->slot, "waited_ms",
                    (json_int_t) l->waited_ms, "held_ms", (json_int_t) l->held_ms, "acquired_revision",
                    (json_int_t) l->acquired_revision, "released_revision", (json_int_t) l->released_revision, "host",
                    l->host);
}

void
sysctr_update_lock_release (SysctrUpdateLock *l)
{
  if (!l->released)
    {
      l->released = TRUE;
      l->held_ms = (g_get_monotonic_time () - l->acquired_at) / 1000;
      g_autofree char *holder_key = g_strdup_printf ("/sysctr/update/%s/holder/%s", l->lock_name, l->host);
      g_autoptr (GError) local = NULL;
      gboolean ok = kv_delete (&l->etcd, holder_key, NULL, NULL, &local);
      g_autoptr (json_t) body = json_pack ("{s:s}", "key", l->key);
      g_autoptr (json_t) answer = NULL;
      ok = ok && etcd_ok (&l->etcd, "/v3/lock/unlock", body, &answer, &local);
      if (ok)
        {
          l->released_revision = header_revision (answer);
          sysctr_say ("%s: released the update lock %s (etcd revision %" G_GINT64_FORMAT ", held %.1f s)", l->container,
                      l->lock_name, l->released_revision, l->held_ms / 1000.0);
        }
      else
        sysctr_note ("%s: could not release the update lock %s (%s); its lease expires in %u s", l->container,
                     l->lock_name, local->message, l->ttl);
    }
  stop_keepalive (l);
  if (l->lease)
    {
      revoke_lease (l);
      g_clear_pointer (&l->lease, g_free);
    }
}

void
sysctr_update_lock_free (SysctrUpdateLock *l)
{
  if (l == NULL)
    return;
  sysctr_update_lock_release (l);
  lock_free (l);
}

gboolean
sysctr_update_lock_get_halt (const SysctrUpdateLockConfig *cfg, const char *lock_name, json_t **out_halt,
                             GError **error)
{
  Etcd etcd = { 0 };
  etcd_init (&etcd, cfg);
  gboolean ok = read_halt (&etcd, lock_name, out_halt, error);
  etcd_clear (&etcd);
  return ok;
}

gboolean
sysctr_update_lock_clear_halt (const SysctrUpdateLockConfig *cfg, const char *lock_name, json_t **out_halt,
                               GError **error)
{
  Etcd etcd = { 0 };
  etcd_init (&etcd, cfg);
  g_autofree char *key = key_for (lock_name, "halt");
  gboolean ok = read_halt (&etcd, lock_name, out_halt, error) && kv_delete (&etcd, key, NULL, NULL, error);
  etcd_clear (&etcd);
  return ok;
}

/* ---- the last attempt, on this host ---- */

static char *
last_update_path (const char *name)
{
  return g_strdup_printf ("updates/%s.json", name);
}

gboolean
sysctr_last_update_write (SysctrContext *ctx, const char *name, json_t *record, GError **error)
{
  if (!sysctr_mkdir_p_at (ctx->state_dfd, "updates", 0700, error))
    return FALSE;
  g_autofree char *path = last_update_path (name);
  g_autofree char *text = sysctr_json_dump (record, TRUE);
  return sysctr_write_file_at (ctx->state_dfd, path, text, strlen (text), 0600, error);
}

json_t *
sysctr_last_update_read (SysctrContext *ctx, const char *name)
{
  g_autofree char *path = last_update_path (name);
  g_autofree char *data = NULL;
  gsize len = 0;
  if (!sysctr_read_file_at (ctx->state_dfd, path, 1024 * 1024, &data, &len, NULL))
    return NULL;
  json_t *j = json_loadb (data, len, 0, NULL);
  if (!json_is_object (j))
    {
      json_decref (j);
      return NULL;
    }
  return j;
}

gboolean
sysctr_last_update_remove (SysctrContext *ctx, const char *name, GError **error)
{
  g_autofree char *path = last_update_path (name);
  if (unlinkat (ctx->state_dfd, path, 0) != 0 && errno != ENOENT)
    return sysctr_throw_errno (error, "removing %s", path);
  return TRUE;
}
