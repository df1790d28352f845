/* libFuzzer: the shim's bundle config reader (no GLib there). */
#include "config.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

int LLVMFuzzerTestOneInput (const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput (const unsigned char *data, size_t size)
{
  char *s = malloc (size + 1);
  memcpy (s, data, size);
  s[size] = '\0';
  int bundle = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  struct shim_config *c = NULL;
  if (config_parse_string (s, bundle, &c) == 0)
    config_free (c);
  close (bundle);
  free (s);
  return 0;
}
