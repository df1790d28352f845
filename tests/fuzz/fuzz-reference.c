/* libFuzzer: image references, default names, ref escaping. */
#include "config.h"

#include "reference.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autofree char *s = g_strndup ((const char *) data, size);
  g_autoptr (SysctrRef) ref = sysctr_ref_parse (s, NULL);
  if (ref)
    {
      g_autofree char *canon = sysctr_ref_to_string (ref);
      g_autofree char *name = sysctr_ref_default_name (ref);
      if (name)
        g_assert (sysctr_name_valid (name));
      g_autofree char *esc = sysctr_ref_escape (canon);
      g_autofree char *back = sysctr_ref_unescape (esc);
      g_assert_cmpstr (back, ==, canon);
      /* canonical form parses to itself */
      g_autoptr (SysctrRef) again = sysctr_ref_parse (canon, NULL);
      g_assert (again != NULL);
      g_autofree char *canon2 = sysctr_ref_to_string (again);
      g_assert_cmpstr (canon, ==, canon2);
    }
  return 0;
}
