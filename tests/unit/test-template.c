/* The template renderer: values never add a line, a directive, a JSON
 * key or a field. */
#include "config.h"

#include <jansson.h>

#include "template.h"
#include "sysctr-util.h"

static GHashTable *
values (const char *first, ...)
{
  GHashTable *t = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  va_list args;
  va_start (args, first);
  for (const char *k = first; k; k = va_arg (args, const char *))
    g_hash_table_replace (t, g_strdup (k), g_strdup (va_arg (args, const char *)));
  va_end (args);
  return t;
}

static char *
render (const char *tmpl, SysctrTemplateKind kind, GHashTable *v, GError **error)
{
  return sysctr_template_render (tmpl, kind, v, "test", error);
}

static void
test_basic (void)
{
  g_autoptr (GHashTable) v = values ("NAME", "etcd", "PORT", "2379", NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *out = render ("a=$NAME b=${PORT} c=$$ d=$ e=${NAME}x", SYSCTR_TEMPLATE_TEXT, v, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (out, ==, "a=etcd b=2379 c=$ d=$ e=etcdx");
}

static void
test_unresolved (void)
{
  g_autoptr (GHashTable) v = values ("NAME", "etcd", NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *out = render ("x=$MISSING_ONE", SYSCTR_TEMPLATE_TEXT, v, &error);
  g_assert_null (out);
  g_assert_nonnull (strstr (error->message, "MISSING_ONE"));
}

static void
test_no_recursion (void)
{
  g_autoptr (GHashTable) v = values ("A", "$A", "B", "${A}", NULL);
  g_autoptr (GError) error = NULL;
  g_autofree char *out = render ("$A $B", SYSCTR_TEMPLATE_TEXT, v, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (out, ==, "$A ${A}");
}

static void
test_unit_values (void)
{
  g_autoptr (GError) error = NULL;
  const char *tmpl = "[Service]\nDescription=$D\nExecStart=/bin/x $ARG\n";
  g_autoptr (GHashTable) ok = values ("D", "100% of $HOME \\n", "ARG", "a%b$c", NULL);
  g_autofree char *out = render (tmpl, SYSCTR_TEMPLATE_UNIT, ok, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (out, ==, "[Service]\nDescription=100%% of $HOME \\\\n\nExecStart=/bin/x a%%b$$c\n");

  const char *bad[] = { "x\nUser=root", "x\rExecStartPre=/bin/sh", "tab\there", "nul\x01" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GHashTable) v = values ("D", bad[i], "ARG", "x", NULL);
      g_autoptr (GError) e = NULL;
      g_autofree char *o = render (tmpl, SYSCTR_TEMPLATE_UNIT, v, &e);
      g_assert_null (o);
      g_assert_nonnull (strstr (e->message, "value of D"));
    }
  const struct
  {
    const char *value, *why;
  } bad_exec[] = { { "a\" \"b", "contains a quote" }, { "x;y", "contains ;" }, { "'q'", "contains a quote" } };
  for (guint i = 0; i < G_N_ELEMENTS (bad_exec); i++)
    {
      g_autoptr (GHashTable) v = values ("D", "d", "ARG", bad_exec[i].value, NULL);
      g_autoptr (GError) e = NULL;
      g_autofree char *o = render (tmpl, SYSCTR_TEMPLATE_UNIT, v, &e);
      g_assert_null (o);
      g_assert_error (e, SYSCTR_ERROR, SYSCTR_ERROR_INVALID);
      g_assert_nonnull (strstr (e->message, "value of ARG"));
      g_assert_nonnull (strstr (e->message, bad_exec[i].why));
    }
  /* systemd strips indentation and reads "Key = value": the directive, not
   * the column, decides how a value is escaped (before: an indented
   * Environment= took a space that added LD_PRELOAD=) */
  const struct
  {
    const char *tmpl, *value, *why;
  } split[] = {
    { "[Service]\n  Environment=G=$G\n", "hi LD_PRELOAD=/x.so", "a space" },
    { "[Service]\n\tEnvironment = G=$G\n", "hi LD_PRELOAD=/x.so", "a space" },
    { "[Service]\n  ExecStartPre=/bin/echo \"$G\"\n", "a\" \"b", "a quote" },
    { "[Service]\nExecStartPre = /bin/echo $G\n", "a -rf /", "a space" },
    { "[Service]\nExecStartPre=/bin/echo \\\n  $G\n", "a b", "a space" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (split); i++)
    {
      g_autoptr (GHashTable) v = values ("G", split[i].value, NULL);
      g_autoptr (GError) e = NULL;
      g_autofree char *o = render (split[i].tmpl, SYSCTR_TEMPLATE_UNIT, v, &e);
      g_assert_null (o);
      g_assert_nonnull (strstr (e->message, split[i].why));
    }
  /* inside quotes a space stays in its argument; Description= takes anything */
  g_autoptr (GHashTable) sv = values ("G", "hello world", NULL);
  g_autoptr (GError) se = NULL;
  g_autofree char *so = render ("[Service]\n  Environment=\"G=$G\"\n  Description=$G\n", SYSCTR_TEMPLATE_UNIT, sv, &se);
  g_assert_no_error (se);
  g_assert_cmpstr (so, ==, "[Service]\n  Environment=\"G=hello world\"\n  Description=hello world\n");
  /* sysctr's own command line is a whole argument list */
  g_autoptr (GHashTable) ev = values ("EXEC_START", "/usr/libexec/sysctr/sysctr-shim --bundle=/b --name=n", NULL);
  g_autoptr (GError) ee = NULL;
  g_autofree char *eo = render ("[Service]\nExecStart=$EXEC_START\n", SYSCTR_TEMPLATE_UNIT, ev, &ee);
  g_assert_no_error (ee);
  g_assert_nonnull (eo);

  g_autofree char *huge = g_strnfill (10000, 'x');
  g_autoptr (GHashTable) hv = values ("D", huge, "ARG", "x", NULL);
  g_autoptr (GError) he = NULL;
  g_autofree char *ho = render (tmpl, SYSCTR_TEMPLATE_UNIT, hv, &he);
  g_assert_null (ho);
  g_assert_error (he, SYSCTR_ERROR, SYSCTR_ERROR_INVALID);
  g_assert_nonnull (strstr (he->message, "value of D is longer than 8192 bytes"));
}

static void
test_tmpfiles_values (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GHashTable) v = values ("DIR", "/var/lib/x", NULL);
  g_autofree char *out = render ("d $DIR 0700 - - -\n", SYSCTR_TEMPLATE_TMPFILES, v, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (out, ==, "d /var/lib/x 0700 - - -\n");
  const struct
  {
    const char *value, *why;
  } bad[] = { { "/a /etc", "contains a space" },
              { "", "is empty" },
              { "/a\nR /", "control character" },
              { "/a/../etc", "contains \"..\"" } };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GHashTable) b = values ("DIR", bad[i].value, NULL);
      g_autoptr (GError) e = NULL;
      g_autofree char *o = render ("d $DIR 0700 - - -\n", SYSCTR_TEMPLATE_TMPFILES, b, &e);
      g_assert_null (o);
      g_assert_error (e, SYSCTR_ERROR, SYSCTR_ERROR_INVALID);
      if (strstr (e->message, bad[i].why) == NULL)
        g_error ("\"%s\": expected \"%s\" in: %s", bad[i].value, bad[i].why, e->message);
    }
}

static void
test_json_values (void)
{
  const char *tmpl = "{\"env\": [\"A=$A\"], \"mounts\": [{\"d\": 1} $EXTRA], \"h\": \"$H\"}";
  const char *hostile[] = { "x\", \"evil\": \"1", "\\\"", "\n", "}]}" };
  for (guint i = 0; i < G_N_ELEMENTS (hostile); i++)
    {
      g_autoptr (GHashTable) v = values ("A", hostile[i], "EXTRA", "", "H", "h", NULL);
      g_autoptr (GError) e = NULL;
      g_autofree char *o = render (tmpl, SYSCTR_TEMPLATE_JSON, v, &e);
      g_assert_no_error (e);
      json_error_t jerr;
      json_t *j = json_loads (o, 0, &jerr);
      g_assert_nonnull (j);
      g_assert_cmpuint (json_object_size (j), ==, 3);
      json_t *env0 = json_array_get (json_object_get (j, "env"), 0);
      g_autofree char *expect = g_strdup_printf ("A=%s", hostile[i]);
      g_assert_cmpstr (json_string_value (env0), ==, expect);
      json_decref (j);
    }
  /* raw splice: only whole array elements */
  g_autoptr (GHashTable) good = values ("A", "a", "EXTRA", ", {\"d\": 2}, {\"d\": 3}", "H", "h", NULL);
  g_autoptr (GError) ge = NULL;
  g_autofree char *go = render (tmpl, SYSCTR_TEMPLATE_JSON, good, &ge);
  g_assert_no_error (ge);
  json_t *gj = json_loads (go, 0, NULL);
  g_assert_cmpuint (json_array_size (json_object_get (gj, "mounts")), ==, 3);
  json_decref (gj);
  const char *bad[] = { "], \"x\": [", ", {\"d\": 2}], \"evil\": [1", "}", ", {" };
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr (GHashTable) v = values ("A", "a", "EXTRA", bad[i], "H", "h", NULL);
      g_autoptr (GError) e = NULL;
      g_autofree char *o = render (tmpl, SYSCTR_TEMPLATE_JSON, v, &e);
      g_assert_null (o);
      g_assert_nonnull (strstr (e->message, "EXTRA"));
    }
  /* a raw value in object position may only be empty */
  g_autoptr (GHashTable) ov = values ("X", "\"k\": 1", NULL);
  g_autoptr (GError) oe = NULL;
  g_autofree char *oo = render ("{\"a\": 1 $X}", SYSCTR_TEMPLATE_JSON, ov, &oe);
  g_assert_null (oo);
  g_assert_error (oe, SYSCTR_ERROR, SYSCTR_ERROR_INVALID);
  g_assert_nonnull (strstr (oe->message, "X is used outside a JSON string and outside an array"));
}

static void
test_variables (void)
{
  g_autoptr (GPtrArray) vars = sysctr_template_variables ("$A ${B} $$ $A $1 ${C");
  g_assert_cmpuint (vars->len, ==, 2);
  g_assert_cmpstr (vars->pdata[0], ==, "A");
  g_assert_cmpstr (vars->pdata[1], ==, "B");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/template/basic", test_basic);
  g_test_add_func ("/template/unresolved", test_unresolved);
  g_test_add_func ("/template/no-recursion", test_no_recursion);
  g_test_add_func ("/template/unit", test_unit_values);
  g_test_add_func ("/template/tmpfiles", test_tmpfiles_values);
  g_test_add_func ("/template/json", test_json_values);
  g_test_add_func ("/template/variables", test_variables);
  return g_test_run ();
}
