/* The update lock's pure parts (updatelock.c): options checked and merged
 * into what info.json keeps, info.json read strictly, the lock's name,
 * etcd users (options, the password file, the token), and the etcd
 * client's failover and strictness against a responder on
 * loopback that answers what a test tells it to (a real etcd is in
 * tests/live/update-lock.sh and fleet.sh). */
#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>

#include "sysctr-util.h"
#include "updatelock.h"

static json_t *
merged_tls (json_t *current, const char *spec, const char *cacert, const char *cert, const char *key, GError **error)
{
  SysctrUpdateLockOptions o = { .spec = spec, .cacert = cacert, .cert = cert, .key = key };
  json_t *out = NULL;
  if (!sysctr_update_lock_merge (current, &o, &out, error))
    return NULL;
  return out;
}

static json_t *
merged (json_t *current, const char *spec, const char *name, guint max, guint ttl, GError **error)
{
  SysctrUpdateLockOptions o = { .spec = spec, .name = name, .max = max, .ttl = ttl };
  json_t *out = NULL;
  if (!sysctr_update_lock_merge (current, &o, &out, error))
    return NULL;
  return out;
}

static void
test_merge (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) j = merged (NULL, "etcd:http://10.0.0.1:2379,https://[fd00::1],http://e3", NULL, 0, 0, &error);
  g_assert_no_error (error);
  g_autofree char *text = json_dumps (j, JSON_COMPACT | JSON_SORT_KEYS);
  g_assert_cmpstr (text, ==,
                   "{\"backend\":\"etcd\",\"endpoints\":[\"http://10.0.0.1:2379\",\"https://[fd00::1]:2379\","
                   "\"http://e3:2379\"],\"max\":1,\"name\":null,\"ttl\":30}");
  /* later options change one field and keep the others */
  g_autoptr (json_t) k = merged (j, NULL, "web", 2, 10, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (sysctr_json_get_string (k, "name"), ==, "web");
  g_assert_cmpint (json_integer_value (json_object_get (k, "max")), ==, 2);
  g_assert_cmpint (json_integer_value (json_object_get (k, "ttl")), ==, 10);
  g_assert_cmpint (json_array_size (json_object_get (k, "endpoints")), ==, 3);
  /* nothing said: the same; none: gone */
  g_autoptr (json_t) same = merged (k, NULL, NULL, 0, 0, &error);
  g_assert_true (json_equal (same, k));
  g_autoptr (json_t) none = merged (k, "none", NULL, 0, 0, &error);
  g_assert_no_error (error);
  g_assert_null (none);
  g_autoptr (json_t) nothing = merged (NULL, NULL, NULL, 0, 0, &error);
  g_assert_no_error (error);
  g_assert_null (nothing);
}

static void
test_refused (void)
{
  static const struct
  {
    const char *spec, *name;
    guint max, ttl;
    const char *says;
  } bad[] = {
    { "consul:http://a:1", NULL, 0, 0, "expected etcd:URL" },
    { "etcd:", NULL, 0, 0, "between 1 and 16" },
    { "etcd:ftp://a:1", NULL, 0, 0, "http:// or https://" },
    { "etcd:http://u:p@a:1", NULL, 0, 0, "nothing more" },
    { "etcd:http://a:1/v3", NULL, 0, 0, "nothing more" },
    { "etcd:http://a:1?x=1", NULL, 0, 0, "nothing more" },
    { "etcd:http://a:1#f", NULL, 0, 0, "nothing more" },
    { "etcd:http://a%0a:1", NULL, 0, 0, "bad host" },
    { "etcd:http://a:1,,http://b:2", NULL, 0, 0, "is not a URL" },
    { "etcd:http://a:1", "a/b", 0, 0, "--update-lock-name" },
    { "etcd:http://a:1", "..", 0, 0, "--update-lock-name" },
    { "etcd:http://a:1", "x\ny", 0, 0, "--update-lock-name" },
    { "etcd:http://a:1", NULL, 65, 0, "1 to 64" },
    { "etcd:http://a:1", NULL, 0, 4, "5 to 3600" },
    { "etcd:http://a:1", NULL, 0, 3601, "5 to 3600" },
    { "none", "x", 0, 0, "takes no other" },
    { NULL, "x", 0, 0, "need --update-lock" },
    { NULL, NULL, 2, 0, "need --update-lock" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autoptr (json_t) j = merged (NULL, bad[i].spec, bad[i].name, bad[i].max, bad[i].ttl, &error);
      g_assert_null (j);
      g_assert_nonnull (error);
      if (strstr (error->message, bad[i].says) == NULL)
        g_error ("case %u: \"%s\" does not say \"%s\"", i, error->message, bad[i].says);
      g_assert_null (strchr (error->message, '\n'));
    }
  /* seventeen endpoints */
  g_autoptr (GString) many = g_string_new ("etcd:");
  for (int i = 0; i < 17; i++)
    g_string_append_printf (many, "%shttp://e%d:2379", i ? "," : "", i);
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) j = merged (NULL, many->str, NULL, 0, 0, &error);
  g_assert_null (j);
  g_assert_error (error, SYSCTR_ERROR, SYSCTR_ERROR_INVALID);
}

static void
test_tls (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) j
      = merged_tls (NULL, "etcd:https://e1", "/etc/etcd/ca.pem", "/etc/etcd/c.pem", "/etc/etcd/c.key", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (sysctr_json_get_string (j, "cacert"), ==, "/etc/etcd/ca.pem");
  g_autoptr (SysctrUpdateLockConfig) cfg = NULL;
  g_assert_true (sysctr_update_lock_from_json (j, &cfg, &error));
  g_assert_cmpstr (cfg->key, ==, "/etc/etcd/c.key");
  g_autofree char *d = sysctr_update_lock_describe (cfg, "x");
  g_assert_nonnull (strstr (d, "TLS client certificate"));
  /* "" removes; the others stay */
  g_autoptr (json_t) k = merged_tls (j, NULL, "", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_null (json_object_get (k, "cacert"));
  g_assert_cmpstr (sysctr_json_get_string (k, "cert"), ==, "/etc/etcd/c.pem");
  static const char *bad[][3] = {
    { "ca.pem", NULL, NULL }, { NULL, "/a/../b", NULL }, { NULL, "/a\nb", NULL }, { NULL, NULL, "/k" }, /* no cert */
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) e = NULL;
      g_autoptr (json_t) b = merged_tls (NULL, "etcd:https://e1", bad[i][0], bad[i][1], bad[i][2], &e);
      g_assert_null (b);
      g_assert_error (e, SYSCTR_ERROR, SYSCTR_ERROR_INVALID);
      g_assert_null (strchr (e->message, '\n'));
    }
  /* without --update-lock: a usage error */
  g_autoptr (json_t) none = merged_tls (NULL, NULL, "/ca.pem", NULL, NULL, &error);
  g_assert_null (none);
  g_assert_error (error, SYSCTR_ERROR, SYSCTR_ERROR_USAGE);
}

static void
test_from_json (void)
{
  static const char *bad[] = {
    "[]",
    "{\"backend\":\"consul\",\"endpoints\":[\"http://a:1\"],\"max\":1,\"ttl\":30}",
    "{\"backend\":\"etcd\",\"endpoints\":[],\"max\":1,\"ttl\":30}",
    "{\"backend\":\"etcd\",\"endpoints\":[1],\"max\":1,\"ttl\":30}",
    "{\"backend\":\"etcd\",\"endpoints\":[\"file:///x\"],\"max\":1,\"ttl\":30}",
    "{\"backend\":\"etcd\",\"endpoints\":[\"http://a:1\"],\"max\":0,\"ttl\":30}",
    "{\"backend\":\"etcd\",\"endpoints\":[\"http://a:1\"],\"max\":1,\"ttl\":1}",
    "{\"backend\":\"etcd\",\"endpoints\":[\"http://a:1\"],\"max\":1,\"ttl\":30,\"name\":\"../x\"}",
    "{\"backend\":\"etcd\",\"endpoints\":[\"http://a:1\"],\"max\":1,\"ttl\":30,\"cert\":\"rel.pem\"}",
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (json_t) j = json_loads (bad[i], 0, NULL);
      g_autoptr (SysctrUpdateLockConfig) cfg = NULL;
      g_autoptr (GError) error = NULL;
      g_assert_false (sysctr_update_lock_from_json (j, &cfg, &error));
      g_assert_nonnull (error);
      g_assert_null (cfg);
    }
  g_autoptr (SysctrUpdateLockConfig) none = NULL;
  g_assert_true (sysctr_update_lock_from_json (NULL, &none, NULL));
  g_assert_null (none);
}

static void
test_name (void)
{
  g_autoptr (json_t) j
      = json_loads ("{\"backend\":\"etcd\",\"endpoints\":[\"http://a:1\"],\"max\":3,\"ttl\":9}", 0, NULL);
  g_autoptr (SysctrUpdateLockConfig) cfg = NULL;
  g_assert_true (sysctr_update_lock_from_json (j, &cfg, NULL));
  g_autoptr (json_t) no_values = json_object ();
  g_autofree char *a = sysctr_update_lock_name (cfg, no_values, "etcd", NULL);
  g_assert_cmpstr (a, ==, "etcd");
  g_autoptr (json_t) values = json_pack ("{s:s}", "UPDATE_LOCK_NAME", "etcd-cluster-1");
  g_autofree char *b = sysctr_update_lock_name (cfg, values, "etcd", NULL);
  g_assert_cmpstr (b, ==, "etcd-cluster-1");
  g_autoptr (json_t) hostile = json_pack ("{s:s}", "UPDATE_LOCK_NAME", "x/../../halt");
  g_autoptr (GError) error = NULL;
  g_autofree char *c = sysctr_update_lock_name (cfg, hostile, "etcd", &error);
  g_assert_null (c);
  g_assert_error (error, SYSCTR_ERROR, SYSCTR_ERROR_INVALID);
  g_autofree char *d = sysctr_update_lock_describe (cfg, "etcd");
  g_assert_cmpstr (d, ==, "etcd http://a:1; lock etcd, 3 hosts at a time, lease 9 s");
}

/* ---- a fake etcd: answers every request with the reply it is given ---- */

typedef struct
{
  GSocketListener *listener;
  GCancellable *stop;
  const char *reply; /* a whole HTTP response */
  char *last_request;
  guint requests;
} Fake;

static gpointer
fake_serve (gpointer data)
{
  Fake *f = data;
  for (;;)
    {
      g_autoptr (GSocketConnection) conn = g_socket_listener_accept (f->listener, NULL, f->stop, NULL);
      if (conn == NULL)
        return NULL;
      GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (conn));
      GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (conn));
      char req[8192];
      gsize got = 0;
      while (got < sizeof req - 1)
        {
          gssize n = g_input_stream_read (in, req + got, sizeof req - 1 - got, NULL, NULL);
          if (n <= 0)
            break;
          got += (gsize) n;
          req[got] = '\0';
          const char *body = strstr (req, "\r\n\r\n");
          const char *cl = g_strstr_len (req, (gssize) got, "Content-Length: ");
          if (body && cl && got - (gsize) (body + 4 - req) >= (gsize) g_ascii_strtoull (cl + 16, NULL, 10))
            break;
        }
      req[got] = '\0';
      g_free (f->last_request);
      f->last_request = g_strdup (req);
      f->requests++;
      g_output_stream_write_all (out, f->reply, strlen (f->reply), NULL, NULL, NULL);
      g_io_stream_close (G_IO_STREAM (conn), NULL, NULL);
    }
}

static guint16
fake_start (Fake *f, GThread **thread)
{
  f->listener = g_socket_listener_new ();
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_assert_true (g_socket_listener_add_address (f->listener, addr, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL,
                                                &bound, NULL));
  f->stop = g_cancellable_new ();
  *thread = g_thread_new ("fake-etcd", fake_serve, f);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static void
fake_stop (Fake *f, GThread *thread)
{
  g_cancellable_cancel (f->stop);
  g_thread_join (thread);
  g_clear_object (&f->stop);
  g_clear_object (&f->listener);
  g_clear_pointer (&f->last_request, g_free);
}

/* A port nothing listens on: bound, then closed. */
static guint16
closed_port (void)
{
  g_autoptr (GSocket) s = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, 0);
  g_assert_true (g_socket_bind (s, addr, FALSE, NULL));
  g_autoptr (GSocketAddress) bound = g_socket_get_local_address (s, NULL);
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static char *
http_ok (const char *body)
{
  return g_strdup_printf ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                          "Connection: close\r\n\r\n%s",
                          strlen (body), body);
}

static SysctrUpdateLockConfig *
config_for (guint16 first, guint16 second)
{
  g_autofree char *spec = g_strdup_printf ("etcd:http://127.0.0.1:%u,http://127.0.0.1:%u", first, second);
  g_autoptr (json_t) j = merged (NULL, spec, NULL, 0, 0, NULL);
  SysctrUpdateLockConfig *cfg = NULL;
  g_assert_true (sysctr_update_lock_from_json (j, &cfg, NULL));
  return cfg;
}

static void
test_halt_failover (void)
{
  /* the halt record, base64 in a range answer, from the second endpoint:
   * the first one refuses connections */
  const char *record = "{\"host\":\"h1\",\"version\":\"r@sha256:1\",\"reason\":\"not ready\",\"at\":\"t\"}";
  g_autofree char *value = g_base64_encode ((const guchar *) record, strlen (record));
  g_autofree char *body
      = g_strdup_printf ("{\"header\":{\"revision\":\"7\"},\"kvs\":[{\"key\":\"eA==\",\"value\":\"%s\"}]}", value);
  g_autofree char *reply = http_ok (body);
  Fake f = { .reply = reply };
  GThread *thread = NULL;
  guint16 port = fake_start (&f, &thread);
  g_autoptr (SysctrUpdateLockConfig) cfg = config_for (closed_port (), port);
  g_autoptr (json_t) halt = NULL;
  g_autoptr (GError) error = NULL;
  g_assert_true (sysctr_update_lock_get_halt (cfg, "etcd", &halt, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (sysctr_json_get_string (halt, "host"), ==, "h1");
  g_assert_cmpstr (sysctr_json_get_string (halt, "reason"), ==, "not ready");
  /* what was asked: the halt key of that lock, base64, as JSON */
  g_autofree char *key64
      = g_base64_encode ((const guchar *) "/sysctr/update/etcd/halt", strlen ("/sysctr/update/etcd/halt"));
  g_assert_nonnull (strstr (f.last_request, "POST /v3/kv/range "));
  g_assert_nonnull (strstr (f.last_request, key64));
  /* a lock that halts every update is acquired by nobody: refused before
   * any lease is asked for */
  guint before = f.requests;
  SysctrUpdateLock *lock = sysctr_update_lock_acquire (cfg, "etcd", "etcd", "a", "b", &error);
  g_assert_null (lock);
  g_assert_error (error, SYSCTR_ERROR, SYSCTR_ERROR_HALTED);
  g_assert_nonnull (strstr (error->message, "failed on h1"));
  g_assert_cmpuint (f.requests, ==, before + 1);
  fake_stop (&f, thread);
}

static void
test_hostile_answers (void)
{
  g_autofree char *big = g_malloc (2 * 1024 * 1024 + 1);
  memset (big, 'a', 2 * 1024 * 1024);
  big[2 * 1024 * 1024] = '\0';
  g_autofree char *huge = g_strdup_printf ("{\"kvs\":[{\"value\":\"%s\"}]}", big);
  const char *bodies[] = { "not json", "[1,2]", "{\"error\":{\"message\":\"etcdserver: no leader\"}}", huge };
  for (guint i = 0; i < G_N_ELEMENTS (bodies); i++)
    {
      g_autofree char *reply = http_ok (bodies[i]);
      Fake f = { .reply = reply };
      GThread *thread = NULL;
      guint16 port = fake_start (&f, &thread);
      g_autoptr (SysctrUpdateLockConfig) cfg = config_for (port, port);
      g_autoptr (json_t) halt = NULL;
      g_autoptr (GError) error = NULL;
      g_assert_false (sysctr_update_lock_get_halt (cfg, "etcd", &halt, &error));
      g_assert_error (error, SYSCTR_ERROR, SYSCTR_ERROR_NETWORK);
      g_assert_null (strchr (error->message, '\n'));
      g_assert_cmpuint (strlen (error->message), <, 1024);
      fake_stop (&f, thread);
    }
  /* a value that is not a halt record still halts (someone wrote it) */
  g_autofree char *reply = http_ok ("{\"kvs\":[{\"value\":\"Ym9ndXM=\"}]}");
  Fake f = { .reply = reply };
  GThread *thread = NULL;
  guint16 port = fake_start (&f, &thread);
  g_autoptr (SysctrUpdateLockConfig) cfg = config_for (port, port);
  g_autoptr (json_t) halt = NULL;
  g_assert_true (sysctr_update_lock_get_halt (cfg, "etcd", &halt, NULL));
  g_assert_nonnull (halt);
  g_assert_cmpstr (sysctr_json_get_string (halt, "reason"), ==, "an unreadable record");
  fake_stop (&f, thread);
}

static json_t *
merged_auth (json_t *current, const char *spec, const char *user, const char *password_file, GError **error)
{
  SysctrUpdateLockOptions o = { .spec = spec, .user = user, .password_file = password_file };
  json_t *out = NULL;
  if (!sysctr_update_lock_merge (current, &o, &out, error))
    return NULL;
  return out;
}

/* A password file in @dir with @content and @mode; its path. */
static char *
password_file (const char *dir, const char *name, const char *content, gsize len, int mode)
{
  char *path = g_build_filename (dir, name, NULL);
  g_assert_true (g_file_set_contents (path, content, (gssize) len, NULL));
  g_assert_cmpint (g_chmod (path, mode), ==, 0);
  return path;
}

static SysctrUpdateLockConfig *
config_auth (guint16 port, const char *file)
{
  g_autofree char *spec = g_strdup_printf ("etcd:http://127.0.0.1:%u", port);
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) j = merged_auth (NULL, spec, "upd", file, &error);
  g_assert_no_error (error);
  SysctrUpdateLockConfig *cfg = NULL;
  g_assert_true (sysctr_update_lock_from_json (j, &cfg, NULL));
  return cfg;
}

static void
test_auth (void)
{
  /* options: both or neither, checked, "" removes; info.json keeps the
   * path, never a password */
  g_autoptr (GError) error = NULL;
  g_autoptr (json_t) j = merged_auth (NULL, "etcd:http://e1", "upd", "/etc/sysctr/etcd-pw", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (sysctr_json_get_string (j, "user"), ==, "upd");
  g_assert_cmpstr (sysctr_json_get_string (j, "password_file"), ==, "/etc/sysctr/etcd-pw");
  g_autoptr (SysctrUpdateLockConfig) cfg = NULL;
  g_assert_true (sysctr_update_lock_from_json (j, &cfg, &error));
  g_autofree char *d = sysctr_update_lock_describe (cfg, "x");
  g_assert_nonnull (strstr (d, "; etcd user upd"));
  g_autoptr (json_t) gone = merged_auth (j, NULL, "", "", &error);
  g_assert_no_error (error);
  g_assert_null (json_object_get (gone, "user"));
  g_assert_null (json_object_get (gone, "password_file"));
  static const char *bad[][2] = {
    { "upd", NULL }, { NULL, "/pw" }, { "a:b", "/pw" },      { "a b", "/pw" },
    { "", "/pw" },   { "upd", "pw" }, { "upd", "/a/../pw" }, { "upd", "" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) e = NULL;
      g_autoptr (json_t) b = merged_auth (NULL, "etcd:http://e1", bad[i][0], bad[i][1], &e);
      g_assert_null (b);
      g_assert_error (e, SYSCTR_ERROR, SYSCTR_ERROR_INVALID);
    }
  /* the user only, on a lock that has one: a new user, the same file */
  g_autoptr (json_t) other = merged_auth (j, NULL, "other", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (sysctr_json_get_string (other, "password_file"), ==, "/etc/sysctr/etcd-pw");
  g_autoptr (json_t) half = json_loads ("{\"backend\":\"etcd\",\"endpoints\":[\"http://a:1\"],\"max\":1,\"ttl\":30,"
                                        "\"user\":\"upd\"}",
                                        0, NULL);
  g_autoptr (SysctrUpdateLockConfig) none = NULL;
  g_assert_false (sysctr_update_lock_from_json (half, &none, NULL));

  /* the password file, read at each call; refused before anything is sent */
  g_autofree char *dir = g_dir_make_tmp ("sysctr-test-XXXXXX", NULL);
  g_autofree char *long_pw = g_strnfill (4097, 'p');
  struct
  {
    const char *name, *content;
    gsize len;
    int mode;
    const char *says;
  } files[] = {
    { "open", "pw\n", 3, 0644, "open to group or others (mode 0644)" },
    { "group", "pw\n", 3, 0640, "open to group or others (mode 0640)" },
    { "empty", "\n", 1, 0600, "holds no password" },
    { "nul", "p\0w", 3, 0600, "holds a NUL byte" },
    { "long", long_pw, 4097, 0600, "is over 4 KiB" },
  };
  g_autofree char *reply = http_ok ("{\"token\":\"T1\",\"kvs\":[]}");
  Fake f = { .reply = reply };
  GThread *thread = NULL;
  guint16 port = fake_start (&f, &thread);
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *path = password_file (dir, files[i].name, files[i].content, files[i].len, files[i].mode);
      g_autoptr (SysctrUpdateLockConfig) c = config_auth (port, path);
      g_autoptr (json_t) halt = NULL;
      g_autoptr (GError) e = NULL;
      g_assert_false (sysctr_update_lock_get_halt (c, "etcd", &halt, &e));
      g_assert_nonnull (e);
      g_assert_nonnull (strstr (e->message, files[i].says));
      g_assert_cmpuint (f.requests, ==, 0);
      g_unlink (path);
    }
  g_autoptr (SysctrUpdateLockConfig) missing = config_auth (port, "/nonexistent/pw");
  g_autoptr (json_t) h0 = NULL;
  g_assert_false (sysctr_update_lock_get_halt (missing, "etcd", &h0, NULL));
  g_autoptr (SysctrUpdateLockConfig) dir_cfg = config_auth (port, dir);
  g_assert_false (sysctr_update_lock_get_halt (dir_cfg, "etcd", &h0, &error));
  g_assert_nonnull (strstr (error->message, "not a regular file"));
  g_clear_error (&error);
  g_assert_cmpuint (f.requests, ==, 0);

  /* a good file: authenticate (the password, its newline dropped), then
   * the call with the token in the Authorization header */
  g_autofree char *good = password_file (dir, "good", "s3cret\n", 7, 0600);
  g_autoptr (SysctrUpdateLockConfig) c = config_auth (port, good);
  g_autoptr (json_t) h1 = NULL;
  g_assert_true (sysctr_update_lock_get_halt (c, "etcd", &h1, &error));
  g_assert_no_error (error);
  g_assert_null (h1);
  g_assert_cmpuint (f.requests, ==, 2);
  g_assert_nonnull (strstr (f.last_request, "POST /v3/kv/range "));
  g_assert_nonnull (strstr (f.last_request, "\r\nAuthorization: T1\r\n"));
  fake_stop (&f, thread);

  /* a token that would inject a header is not used */
  g_autofree char *evil = http_ok ("{\"token\":\"T1\\r\\nX-Evil: 1\"}");
  Fake g = { .reply = evil };
  port = fake_start (&g, &thread);
  g_autoptr (SysctrUpdateLockConfig) ce = config_auth (port, good);
  g_autoptr (json_t) h2 = NULL;
  g_assert_false (sysctr_update_lock_get_halt (ce, "etcd", &h2, &error));
  g_assert_nonnull (strstr (error->message, "no usable token"));
  g_assert_cmpuint (g.requests, ==, 1);
  g_assert_nonnull (strstr (g.last_request, "\"password\":\"s3cret\""));
  fake_stop (&g, thread);
  g_unlink (good);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/updatelock/merge", test_merge);
  g_test_add_func ("/updatelock/refused", test_refused);
  g_test_add_func ("/updatelock/tls", test_tls);
  g_test_add_func ("/updatelock/from-json", test_from_json);
  g_test_add_func ("/updatelock/name", test_name);
  g_test_add_func ("/updatelock/halt-failover", test_halt_failover);
  g_test_add_func ("/updatelock/hostile-answers", test_hostile_answers);
  g_test_add_func ("/updatelock/auth", test_auth);
  return g_test_run ();
}
