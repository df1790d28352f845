/* Parts of the registry client: auth challenges, platform choice, and
 * error paths against a minimal HTTP responder on loopback. */
#include "config.h"

#include <fcntl.h>
#include <gio/gio.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "pull.h"
#include "reference.h"
#include "registry.h"
#include "render.h"
#include "sysctr-util.h"

static void
test_challenge (void)
{
  g_autoptr (SysctrAuthChallenge) c = sysctr_auth_parse_challenge (
      "Bearer realm=\"https://auth.example/token\",service=\"registry.example\",scope=\"repository:a/b:pull\"");
  g_assert_nonnull (c);
  g_assert_cmpstr (c->scheme, ==, "bearer");
  g_assert_cmpstr (c->realm, ==, "https://auth.example/token");
  g_assert_cmpstr (c->service, ==, "registry.example");
  g_assert_cmpstr (c->scope, ==, "repository:a/b:pull");
  g_autoptr (SysctrAuthChallenge) b = sysctr_auth_parse_challenge ("Basic realm=\"Registry Realm\"");
  g_assert_cmpstr (b->scheme, ==, "basic");
  g_assert_null (sysctr_auth_parse_challenge ("Negotiate abc"));
  g_assert_null (sysctr_auth_parse_challenge ("Bearer service=\"x\""));
  g_assert_null (sysctr_auth_parse_challenge (""));
}

static const char index_json[]
    = "{\"schemaVersion\":2,\"manifests\":["
      "{\"digest\":\"sha256:aaaa\",\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
      "{\"digest\":\"sha256:v6\",\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v6\"}},"
      "{\"digest\":\"sha256:v7\",\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v7\"}},"
      "{\"digest\":\"sha256:a64\",\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"
      "{\"digest\":\"sha256:win\",\"platform\":{\"os\":\"windows\",\"architecture\":\"amd64\"}}]}";

/* an error that says why: its code, and a piece of its message */
static void
assert_error (const GError *e, int code, const char *part)
{
  g_assert_nonnull (e);
  if (e->code != code || strstr (e->message, part) == NULL)
    g_error ("expected error %d with \"%s\", got %d: %s", code, part, e->code, e->message);
}

static void
check_platform_error (const char *platform, int code, const char *part)
{
  json_t *index = json_loads (index_json, 0, NULL);
  const char *digest = NULL;
  g_autofree char *chosen = NULL;
  g_autoptr (GError) error = NULL;
  g_assert_false (sysctr_index_select (index, platform, &digest, &chosen, &error));
  assert_error (error, code, part);
  json_decref (index);
}

static void
check_platform (const char *platform, const char *expect)
{
  json_t *index = json_loads (index_json, 0, NULL);
  const char *digest = NULL;
  g_autofree char *chosen = NULL;
  g_autoptr (GError) error = NULL;
  gboolean ok = sysctr_index_select (index, platform, &digest, &chosen, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
  g_assert_cmpstr (digest, ==, expect);
  json_decref (index);
}

static void
test_platforms (void)
{
  check_platform ("linux/amd64", "sha256:aaaa");
  check_platform ("linux/x86_64", "sha256:aaaa");
  check_platform ("linux/arm/v7", "sha256:v7");
  check_platform ("linux/arm/7", "sha256:v7");
  check_platform ("linux/arm/v6", "sha256:v6");
  check_platform ("linux/armel", "sha256:v6");
  /* as containerd and podman: arm is arm/v7, armhf too, arm64 is arm64/v8 */
  check_platform ("linux/arm", "sha256:v7");
  check_platform ("linux/armhf", "sha256:v7");
  check_platform ("linux/arm64", "sha256:a64");
  check_platform ("linux/aarch64", "sha256:a64");
  check_platform ("linux/arm64/v8", "sha256:a64");
  check_platform_error ("linux/arm/v5", SYSCTR_ERROR_NOT_FOUND, "no variant for platform linux/arm/v5");
  check_platform_error ("linux/s390x", SYSCTR_ERROR_NOT_FOUND, "no variant for platform linux/s390x");
  check_platform_error ("bogus", SYSCTR_ERROR_INVALID, "invalid platform \"bogus\"");
  check_platform_error ("linux/", SYSCTR_ERROR_INVALID, "invalid platform");

  /* an index whose arm entry has no variant: that is v7, not below v6 */
  json_t *idx = json_loads ("{\"manifests\":[{\"digest\":\"sha256:plain\",\"platform\":{\"os\":\"linux\","
                            "\"architecture\":\"arm\"}}]}",
                            0, NULL);
  const char *d = NULL;
  g_autofree char *chosen = NULL;
  g_autoptr (GError) e = NULL;
  g_assert_true (sysctr_index_select (idx, "linux/arm/v7", &d, &chosen, &e));
  g_assert_cmpstr (d, ==, "sha256:plain");
  g_assert_false (sysctr_index_select (idx, "linux/arm/v6", &d, &chosen, &e));
  json_decref (idx);
}

static void
test_marker (void)
{
  g_autofree char *line = sysctr_marker_line ("etcd");
  g_autofree char *owner = sysctr_marker_owner (line, strlen (line));
  g_assert_cmpstr (owner, ==, "etcd");
  g_assert_null (sysctr_marker_owner ("[Unit]\n", 7));
  const char *fake = "# sysctr: generated for container ../x; ";
  g_assert_null (sysctr_marker_owner (fake, strlen (fake)));
}

static void
test_set (void)
{
  g_autoptr (GHashTable) t = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autoptr (GError) e = NULL;
  g_assert_true (sysctr_parse_set (t, "PORT=1=2", &e));
  g_assert_cmpstr (g_hash_table_lookup (t, "PORT"), ==, "1=2");
  g_assert_false (sysctr_parse_set (t, "NOEQUALS", &e));
  assert_error (e, SYSCTR_ERROR_INVALID, "NOEQUALS");
  g_clear_error (&e);
  g_assert_false (sysctr_parse_set (t, "BAD-NAME=1", &e));
  assert_error (e, SYSCTR_ERROR_INVALID, "BAD-NAME");
  g_clear_error (&e);
  g_assert_false (sysctr_parse_set (t, "NAME=other", &e));
  assert_error (e, SYSCTR_ERROR_INVALID, "set by sysctr");
  g_clear_error (&e);
  g_assert_false (sysctr_parse_set (t, "EXEC_START=/bin/sh", &e));
  assert_error (e, SYSCTR_ERROR_INVALID, "set by sysctr");
}

/* A registry that answers the ping (GET /v2/) and 404s everything else,
 * one connection at a time, until the listener is closed. */
static GCancellable *responder_stop;

static gpointer
responder (gpointer data)
{
  GSocketListener *listener = data;
  for (;;)
    {
      g_autoptr (GSocketConnection) conn = g_socket_listener_accept (listener, NULL, responder_stop, NULL);
      if (conn == NULL)
        return NULL;
      GInputStream *in = g_io_stream_get_input_stream (G_IO_STREAM (conn));
      GOutputStream *out = g_io_stream_get_output_stream (G_IO_STREAM (conn));
      char req[4096];
      gsize got = 0;
      while (got < sizeof req - 1)
        {
          gssize n = g_input_stream_read (in, req + got, sizeof req - 1 - got, NULL, NULL);
          if (n <= 0)
            break;
          got += (gsize) n;
          req[got] = '\0';
          /* a TLS hello (sysctr tries https first): not HTTP, hang up */
          if (strstr (req, "\r\n\r\n")
              || (got >= 4 && !g_str_has_prefix (req, "GET ") && !g_str_has_prefix (req, "HEAD")))
            break;
        }
      req[got] = '\0';
      if (!g_str_has_prefix (req, "GET ") && !g_str_has_prefix (req, "HEAD"))
        {
          g_io_stream_close (G_IO_STREAM (conn), NULL, NULL);
          continue;
        }
      const char *reply = g_str_has_prefix (req, "GET /v2/ ")
                              ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
                              : "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      g_output_stream_write_all (out, reply, strlen (reply), NULL, NULL, NULL);
      g_io_stream_close (G_IO_STREAM (conn), NULL, NULL);
    }
}

/* A caller may pass a NULL GError**: a failing request must then fail
 * quietly, not dereference it. */
static void
test_null_error (void)
{
  g_autoptr (GSocketListener) listener = g_socket_listener_new ();
  g_autoptr (GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr (GSocketAddress) addr = g_inet_socket_address_new (lo, 0);
  g_autoptr (GSocketAddress) bound = NULL;
  g_assert_true (
      g_socket_listener_add_address (listener, addr, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL, &bound, NULL));
  guint16 port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_setenv ("HOME", "/nonexistent", TRUE); /* no auth file of the caller's */
  responder_stop = g_cancellable_new ();
  GThread *thread = g_thread_new ("responder", responder, listener);

  g_autofree char *name = g_strdup_printf ("127.0.0.1:%u/test/image:v1", port);
  g_autoptr (GError) error = NULL;
  g_autoptr (SysctrRef) ref = sysctr_ref_parse (name, &error);
  g_assert_no_error (error);
  SysctrPullOptions opts;
  sysctr_pull_options_init (&opts);
  opts.tls_verify = FALSE;
  g_autoptr (SysctrRegistry) reg = sysctr_registry_new (ref, &opts, &error);
  g_assert_no_error (error);
  const char *digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
  int fd = open ("/dev/null", O_WRONLY | O_CLOEXEC);
  g_assert_false (sysctr_registry_fetch_blob (reg, digest, -1, fd, NULL, NULL, NULL));
  g_autoptr (GBytes) bytes = NULL;
  g_assert_false (sysctr_registry_fetch_blob_bytes (reg, digest, -1, 1024, &bytes, NULL));
  g_autoptr (GBytes) manifest = NULL;
  g_autofree char *mt = NULL, *md = NULL;
  g_assert_false (sysctr_registry_get_manifest (reg, "v1", &manifest, &mt, &md, NULL));
  /* and with an error, it says what and why */
  g_assert_false (sysctr_registry_fetch_blob (reg, digest, -1, fd, NULL, NULL, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, digest));
  close (fd);
  sysctr_pull_options_clear (&opts);

  g_cancellable_cancel (responder_stop);
  g_thread_join (thread);
  g_clear_object (&responder_stop);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/auth/challenge", test_challenge);
  g_test_add_func ("/pull/platforms", test_platforms);
  g_test_add_func ("/render/marker", test_marker);
  g_test_add_func ("/render/set", test_set);
  g_test_add_func ("/registry/null-error", test_null_error);
  return g_test_run ();
}
