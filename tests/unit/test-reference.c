/* Image references, names and ref escaping. */
#include "config.h"

#include "reference.h"
#include "sysctr-util.h"

static void
check (const char *input, const char *canonical)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (SysctrRef) ref = sysctr_ref_parse (input, &error);
  g_assert_no_error (error);
  g_autofree char *s = sysctr_ref_to_string (ref);
  g_assert_cmpstr (s, ==, canonical);
}

static void
check_bad (const char *input, const char *message_part)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (SysctrRef) ref = sysctr_ref_parse (input, &error);
  g_assert_null (ref);
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, message_part));
  g_assert_null (strchr (error->message, '\n'));
}

static void
test_docker_refs (void)
{
  check ("busybox", "docker.io/library/busybox:latest");
  check ("docker://busybox:1.36", "docker.io/library/busybox:1.36");
  check ("quay.io/coreos/etcd:v3.5", "quay.io/coreos/etcd:v3.5");
  check ("localhost/foo", "localhost/foo:latest");
  check ("127.0.0.1:5000/a/b/c:t", "127.0.0.1:5000/a/b/c:t");
  check ("index.docker.io/library/alpine", "docker.io/library/alpine:latest");
  check ("user/repo", "docker.io/user/repo:latest");
  check ("[::1]:5000/x:y", "[::1]:5000/x:y");
  /* a registry host spelled like a transport stays docker:// (fuzz find) */
  check ("docker://oci-archive:70/a/b", "docker://oci-archive:70/a/b:latest");
  check ("docker://oci:5000/a:t", "docker://oci:5000/a:t");
  check ("docker://docker-archive:1/x", "docker://docker-archive:1/x:latest");
  check ("reg.example/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
         "reg.example/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  check ("reg.example/x:t@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
         "reg.example/x:t@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
}

static void
test_bad_refs (void)
{
  check_bad ("", "empty");
  check_bad ("Busybox", "lowercase");
  check_bad ("reg.example/x:bad tag", "bad tag");
  check_bad ("reg.example/../x", "lowercase");
  check_bad ("reg.example/x@sha256:xyz", "bad digest");
  check_bad ("reg.example/x\nfoo", "control character");
  check_bad ("ftp://reg.example/x", "unsupported transport");
  check_bad ("reg.example:99999/x", "bad registry host");
  check_bad ("oci:", "no path");
  g_autofree char *longname = g_strnfill (300, 'a');
  g_autofree char *longref = g_strdup_printf ("reg.example/%s", longname);
  check_bad (longref, "lowercase");
}

static void
test_file_refs (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (SysctrRef) ref = sysctr_ref_parse ("oci:/srv/images/etcd:v3", &error);
  g_assert_no_error (error);
  g_assert_cmpint (ref->transport, ==, SYSCTR_TRANSPORT_OCI);
  g_assert_cmpstr (ref->file, ==, "/srv/images/etcd");
  g_assert_cmpstr (ref->tag, ==, "v3");
  g_autofree char *name = sysctr_ref_default_name (ref);
  g_assert_cmpstr (name, ==, "etcd-v3");

  g_autoptr (SysctrRef) a = sysctr_ref_parse ("docker-archive:/tmp/x.tar", &error);
  g_assert_no_error (error);
  g_assert_cmpint (a->transport, ==, SYSCTR_TRANSPORT_DOCKER_ARCHIVE);
  g_autofree char *aname = sysctr_ref_default_name (a);
  g_assert_cmpstr (aname, ==, "x");

  /* ref names as podman save and skopeo write them: '/' and ':' in them,
   * the path ends at the first ':' (as containers/image reads it) */
  const struct
  {
    const char *ref, *file, *tag, *name;
  } named[] = {
    { "oci:/srv/layout:localhost/app:latest", "/srv/layout", "localhost/app:latest", "app" },
    { "oci-archive:/tmp/app.tar:quay.io/org/etcd:v3.5", "/tmp/app.tar", "quay.io/org/etcd:v3.5", "etcd-v3_5" },
    { "oci:/srv/layout", "/srv/layout", NULL, "layout" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (named); i++)
    {
      g_autoptr (GError) e = NULL;
      g_autoptr (SysctrRef) r = sysctr_ref_parse (named[i].ref, &e);
      g_assert_no_error (e);
      g_assert_cmpstr (r->file, ==, named[i].file);
      g_assert_cmpstr (r->tag, ==, named[i].tag);
      g_autofree char *n = sysctr_ref_default_name (r);
      g_assert_cmpstr (n, ==, named[i].name);
      g_autofree char *back = sysctr_ref_to_string (r);
      g_autoptr (SysctrRef) again = sysctr_ref_parse (back, &e);
      g_assert_no_error (e);
      g_assert_cmpstr (again->tag, ==, named[i].tag);
    }
  const char *bad[] = { "oci:/srv/l:a//b", "oci:/srv/l:/abs", "oci:/srv/l:a b", "oci:/srv/l:trailing/" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GError) e = NULL;
      g_autoptr (SysctrRef) r = sysctr_ref_parse (bad[i], &e);
      g_assert_null (r);
      g_assert_nonnull (strstr (e->message, "bad ref name"));
    }
}

static void
test_default_names (void)
{
  const char *cases[][2] = {
    { "quay.io/coreos/etcd:v3.5", "etcd-v3_5" },
    { "busybox", "busybox" },
    { "reg.example/flannel:latest", "flannel" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (SysctrRef) ref = sysctr_ref_parse (cases[i][0], NULL);
      g_autofree char *name = sysctr_ref_default_name (ref);
      g_assert_cmpstr (name, ==, cases[i][1]);
    }
  g_assert_true (sysctr_name_valid ("etcd"));
  g_assert_true (sysctr_name_valid ("a_b-9"));
  g_assert_false (sysctr_name_valid ("a.b"));
  g_assert_false (sysctr_name_valid ("-a"));
  g_assert_false (sysctr_name_valid ("a/b"));
  g_assert_false (sysctr_name_valid (".."));
  g_assert_false (sysctr_name_valid ("a b"));
  g_assert_false (sysctr_name_valid ("été"));
  g_assert_false (sysctr_name_valid ("a@b"));
  g_autofree char *n65 = g_strnfill (65, 'a');
  g_assert_false (sysctr_name_valid (n65));
}

static void
test_escape (void)
{
  const char *refs[] = { "127.0.0.1:5000/a/b:v1", "docker.io/library/x@sha256:00", "oci:/x y/z:t" };
  for (guint i = 0; i < G_N_ELEMENTS (refs); i++)
    {
      g_autofree char *e = sysctr_ref_escape (refs[i]);
      for (const char *p = e; *p; p++)
        g_assert_true (g_ascii_isalnum (*p) || *p == '.' || *p == '-' || *p == '_');
      g_autofree char *u = sysctr_ref_unescape (e);
      g_assert_cmpstr (u, ==, refs[i]);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/reference/docker", test_docker_refs);
  g_test_add_func ("/reference/bad", test_bad_refs);
  g_test_add_func ("/reference/file", test_file_refs);
  g_test_add_func ("/reference/names", test_default_names);
  g_test_add_func ("/reference/escape", test_escape);
  return g_test_run ();
}
