/* libFuzzer: manifest / index / config JSON as the pull path reads them. */
#include "config.h"

#include "pull.h"
#include "sysctr-util.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  g_autoptr (json_t) j = sysctr_json_parse ((const char *) data, size, "fuzz", NULL);
  if (j == NULL)
    return 0;
  const char *digest = NULL;
  g_autofree char *platform = NULL;
  (void) sysctr_index_select (j, "linux/amd64", &digest, &platform, NULL);
  g_free (platform);
  platform = NULL;
  (void) sysctr_index_select (j, "linux/arm/v7", &digest, &platform, NULL);
  json_t *layers = json_object_get (j, "layers");
  size_t i;
  json_t *l;
  json_array_foreach (layers, i, l)
    {
      const char *d = sysctr_json_get_string (l, "digest");
      if (d)
        (void) sysctr_digest_valid (d);
    }
  return 0;
}
