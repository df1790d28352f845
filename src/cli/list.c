#include "config.h"

#include <stdio.h>

#include "builtins.h"
#include "containers.h"
#include "context.h"
#include "privileges.h"
#include "systemd.h"
#include "updatelock.h"

static gboolean opt_json;

/* "host" unless the deployment's config.json gives it a network namespace
 * of its own: system containers are host infrastructure by default. */
static const char *
container_network (SysctrContext *ctx, const char *slot)
{
  g_autofree char *rel = g_strdup_printf ("containers/%s/config.json", slot);
  g_autofree char *data = NULL;
  gsize len = 0;
  if (!sysctr_read_file_at (ctx->state_dfd, rel, 16 * 1024 * 1024, &data, &len, NULL))
    return "unknown";
  g_autoptr (json_t) config = json_loadb (data, len, 0, NULL);
  size_t i;
  json_t *ns;
  json_array_foreach (json_object_get (json_object_get (config, "linux"), "namespaces"), i, ns)
    if (g_strcmp0 (sysctr_json_get_string (ns, "type"), "network") == 0)
      return sysctr_json_get_string (ns, "path") ? "joined" : "private";
  return "host";
}

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
          sysctr_warn ("%s: %s", name, e ? e->message : "not installed");
          continue;
        }
      SysctrDeployment d;
      sysctr_deployment_view (info, &d);
      g_autofree char *state = NULL;
      if (sd && d.service)
        state = sysctr_systemd_active_state (sd, d.service, NULL);
      /* what the admin granted (info.json format 1 recorded nothing: granted nothing) */
      json_t *entry = json_pack (
          "{s:s, s:s?, s:s?, s:s, s:s?, s:s, s:o, s:o, s:s, s:o}", "name", name, "image", d.reference, "digest",
          d.manifest_digest, "deployment", slot, "runtime", d.runtime, "state", state ? state : "unknown", "units",
          d.units ? json_incref (d.units) : json_array (), "granted",
          d.granted ? json_incref (d.granted) : json_object (), "network", container_network (ctx, slot),
          "exposed_ports", json_is_array (d.exposed_ports) ? json_incref (d.exposed_ports) : json_array ());
      /* the cluster lock updates take and the last attempt on this host */
      g_autoptr (SysctrUpdateLockConfig) lock = NULL;
      g_autofree char *lock_name = NULL;
      if (sysctr_update_lock_from_json (d.update_lock, &lock, NULL) && lock)
        lock_name = sysctr_update_lock_name (lock, d.values, name, NULL);
      json_object_set_new (entry, "update_lock", lock_name ? json_string (lock_name) : json_null ());
      json_t *last = sysctr_last_update_read (ctx, name);
      json_object_set_new (entry, "last_update", last ? last : json_null ());
      json_array_append_new (arr, entry);
    }
  if (opt_json)
    {
      g_autofree char *s = sysctr_json_dump (arr, TRUE);
      printf ("%s\n", s);
      return TRUE;
    }
  printf ("%-20s %-50s %-19s %-12s %-12s %-12s %-8s %-12s %-16s %s\n", "NAME", "IMAGE", "DIGEST", "DEPLOYMENT",
          "RUNTIME", "STATE", "NETWORK", "UPDATE LOCK", "LAST UPDATE", "GRANTED");
  size_t i;
  json_t *c;
  json_array_foreach (arr, i, c)
    {
      g_autofree char *granted = sysctr_privileges_names (json_object_get (c, "granted"));
      const char *lock = sysctr_json_get_string (c, "update_lock");
      const char *last = sysctr_json_get_string (json_object_get (c, "last_update"), "result");
      printf ("%-20s %-50s %-19.19s %-12s %-12s %-12s %-8s %-12s %-16s %s\n", sysctr_json_get_string (c, "name"),
              sysctr_json_get_string (c, "image"), sysctr_json_get_string (c, "digest"),
              sysctr_json_get_string (c, "deployment"), sysctr_json_get_string (c, "runtime"),
              sysctr_json_get_string (c, "state"), sysctr_json_get_string (c, "network"), lock ? lock : "-",
              last ? last : "-", *granted ? granted : "-");
    }
  return TRUE;
}
