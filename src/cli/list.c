#include "config.h"

#include <stdio.h>

#include "builtins.h"
#include "containers.h"
#include "context.h"
#include "systemd.h"

static gboolean opt_json;

static GOptionEntry entries[] = {
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON", NULL },
  { NULL },
};

gboolean
sysctr_builtin_list (int argc, char **argv, const SysctrGlobals *globals, GError **error)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("- list installed system containers");
  if (!sysctr_parse_options (context, entries, &argc, &argv, error))
    return FALSE;
  g_autoptr (SysctrContext) ctx = NULL;
  g_autoptr (GPtrArray) names = NULL;
  if (!sysctr_context_open_for_listing (globals->root, &ctx, error))
    return FALSE;
  if (ctx == NULL)
    names = g_ptr_array_new ();
  else if (!sysctr_containers_list (ctx, &names, error))
    return FALSE;

  g_autoptr (SysctrSystemd) sd = NULL;
  if (ctx && ctx->live && names->len > 0)
    sd = sysctr_systemd_connect (NULL);

  g_autoptr (json_t) arr = json_array ();
  for (guint i = 0; i < names->len; i++)
    {
      const char *name = names->pdata[i];
      g_autofree char *slot = NULL;
      g_autoptr (json_t) info = NULL;
      g_autoptr (GError) e = NULL;
      if (!sysctr_container_active_slot (ctx, name, &slot, &e) || slot == NULL
          || !sysctr_container_read_info (ctx, slot, &info, &e))
        {
          g_printerr ("warning: %s: %s\n", name, e ? e->message : "not installed");
          continue;
        }
      json_t *image = json_object_get (info, "image");
      json_t *units = json_object_get (info, "units");
      const char *service = json_string_value (json_array_get (units, 0));
      g_autofree char *state = NULL;
      if (sd && service)
        state = sysctr_systemd_active_state (sd, service, NULL);
      json_array_append_new (arr, json_pack ("{s:s, s:s?, s:s?, s:s, s:s?, s:s, s:O}", "name", name, "image",
                                             sysctr_json_get_string (image, "reference"), "digest",
                                             sysctr_json_get_string (image, "manifest_digest"), "deployment", slot,
                                             "runtime", sysctr_json_get_string (info, "runtime"), "state",
                                             state ? state : "unknown", "units", units ? units : json_array ()));
    }
  if (opt_json)
    {
      g_autofree char *s = sysctr_json_dump (arr, TRUE);
      printf ("%s\n", s);
      return TRUE;
    }
  printf ("%-20s %-50s %-19s %-12s %-12s %s\n", "NAME", "IMAGE", "DIGEST", "DEPLOYMENT", "RUNTIME", "STATE");
  size_t i;
  json_t *c;
  json_array_foreach (arr, i, c)
    printf ("%-20s %-50s %-19.19s %-12s %-12s %s\n", sysctr_json_get_string (c, "name"),
            sysctr_json_get_string (c, "image"), sysctr_json_get_string (c, "digest"),
            sysctr_json_get_string (c, "deployment"), sysctr_json_get_string (c, "runtime"),
            sysctr_json_get_string (c, "state"));
  return TRUE;
}
