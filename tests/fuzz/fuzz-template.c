/* libFuzzer: the template renderer in every context (this is also the
 * unit writer: units are rendered in the UNIT context). The input is
 * "TEMPLATE\0VALUE": whatever the value, a rendered unit or tmpfiles line
 * has the template's line count, and a rendered JSON has its keys. */
#include "config.h"

#include <jansson.h>
#include <string.h>

#include "template.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static guint
count_lines (const char *s)
{
  guint n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  const char *nul = memchr (data, '\0', size);
  g_autofree char *tmpl = g_strndup ((const char *) data, nul ? (gsize) (nul - (const char *) data) : size);
  g_autofree char *value = nul ? g_strndup (nul + 1, size - (nul + 1 - (const char *) data)) : g_strdup ("v");
  g_autoptr (GHashTable) v = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (v, (gpointer) "V", value);
  g_hash_table_insert (v, (gpointer) "NAME", (gpointer) "x");

  /* The same template with a harmless value, to compare against. */
  g_autoptr (GHashTable) plain = g_hash_table_new (g_str_hash, g_str_equal);
  g_hash_table_insert (plain, (gpointer) "V", (gpointer) "v");
  g_hash_table_insert (plain, (gpointer) "NAME", (gpointer) "x");

  SysctrTemplateKind kinds[] = { SYSCTR_TEMPLATE_TEXT, SYSCTR_TEMPLATE_UNIT, SYSCTR_TEMPLATE_TMPFILES };
  for (guint k = 0; k < G_N_ELEMENTS (kinds); k++)
    {
      g_autofree char *out = sysctr_template_render (tmpl, kinds[k], v, "fuzz", NULL);
      g_autofree char *ref = sysctr_template_render (tmpl, kinds[k], plain, "fuzz", NULL);
      if (out && ref)
        g_assert_cmpuint (count_lines (out), ==, count_lines (ref));
    }
  g_autofree char *jout = sysctr_template_render (tmpl, SYSCTR_TEMPLATE_JSON, v, "fuzz", NULL);
  g_autofree char *jref = sysctr_template_render (tmpl, SYSCTR_TEMPLATE_JSON, plain, "fuzz", NULL);
  if (jout && jref)
    {
      json_t *a = json_loads (jout, 0, NULL);
      json_t *b = json_loads (jref, 0, NULL);
      if (a && b && json_is_object (a) && json_is_object (b))
        g_assert_cmpuint (json_object_size (a), ==, json_object_size (b));
      if (a)
        json_decref (a);
      if (b)
        json_decref (b);
    }
  return 0;
}
