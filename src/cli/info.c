/* sysctr info: one container, everything an operator asks on day two.
 *
 * Read-only and lock-free (as list): the image and both deployments, the
 * values the templates saw, the units and what systemd says of them (the
 * health status included), what the image asked for and what was granted,
 * the host files sysctr owns for it, and the store bytes its images pin.
 * The text form and --json carry the same facts. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "builtins.h"
#include "containers.h"
#include "context.h"
#include "policy.h"
#include "privileges.h"
#include "store.h"
#include "systemd.h"
#include "updatelock.h"

static gboolean opt_json;

static GOptionEntry entries[] = {
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, "Print JSON", NULL },
  { NULL },
};

/* the stored image with @digest: its compressed size (the manifest's layer
 * sizes, what the store holds for it) or -1 when it is gone */
static gint64
image_bytes (SysctrContext *ctx, const char *digest, guint *out_layers)
{
  g_autoptr (GPtrArray) images = NULL;
  *out_layers = 0;
  if (digest == NULL || !sysctr_store_list_images (ctx->repo, &images, NULL))
    return -1;
  for (guint i = 0; i < images->len; i++)
    {
      SysctrImage *im = images->pdata[i];
      if (g_strcmp0 (im->manifest_digest, digest) != 0)
        continue;
      gint64 total = 0;
      size_t k;
      json_t *l;
      json_array_foreach (json_object_get (im->manifest, "layers"), k, l)
        {
          total += json_integer_value (json_object_get (l, "size"));
          (*out_layers)++;
        }
      return total;
    }
  return -1;
}

static json_t *
deployment_json (SysctrContext *ctx, const char *slot, gboolean active)
{
  g_autoptr (json_t) info = NULL;
  if (!sysctr_container_read_info (ctx, slot, &info, NULL))
    return NULL;
  SysctrDeployment d;
  sysctr_deployment_view (info, &d);
  guint layers;
  gint64 bytes = image_bytes (ctx, d.manifest_digest, &layers);
  json_t *j = json_pack ("{s:s, s:b, s:s?, s:s?, s:s?, s:s?}", "slot", slot, "active", active, "deployed_at",
                         d.deployed_at, "image", d.reference, "digest", d.manifest_digest, "runtime", d.runtime);
  json_object_set_new (j, "store_bytes", bytes >= 0 ? json_integer (bytes) : json_null ());
  json_t *verification = json_object_get (d.image, "verification");
  g_autofree char *summary = sysctr_policy_record_summary (verification);
  json_object_set_new (j, "signature", json_string (summary));
  if (verification)
    json_object_set (j, "verification", verification);
  json_object_set_new (j, "layers", json_integer (layers));
  return j;
}

static gint
compare_names (gconstpointer a, gconstpointer b)
{
  return strcmp (*(char *const *) a, *(char *const *) b);
}

gboolean
sysctr_builtin_info (int argc, char **argv, const SysctrGlobals *globals, GError **error)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("NAME - show one installed system container");
  if (!sysctr_parse_options (context, entries, &argc, &argv, error))
    return FALSE;
  if (argc != 2)
    return sysctr_throw (error, SYSCTR_ERROR_USAGE, "usage: sysctr info [--json] NAME");
  const char *name = argv[1];
  if (!sysctr_name_valid (name))
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s: not a container name", name);
  g_autoptr (SysctrContext) ctx = NULL;
  g_autofree char *slot = NULL;
  g_autoptr (json_t) info = NULL;
  if (!sysctr_context_open_for_listing (globals->root, &ctx, error))
    return FALSE;
  if (ctx == NULL || !sysctr_container_active_slot (ctx, name, &slot, error) || slot == NULL)
    return error && *error ? FALSE : sysctr_throw (error, SYSCTR_ERROR_NOT_FOUND, "%s: no such container", name);
  if (!sysctr_container_read_info (ctx, slot, &info, error))
    return FALSE;
  SysctrDeployment d;
  sysctr_deployment_view (info, &d);

  g_autoptr (json_t) out = json_object ();
  json_object_set_new (out, "name", json_string (name));
  json_object_set_new (out, "image", json_pack ("{s:s?, s:s?}", "reference", d.reference, "digest", d.manifest_digest));
  /* both deployments: the active one first */
  json_t *deps = json_array ();
  g_autofree char *other = g_strdup_printf ("%s.%c", name, g_str_has_suffix (slot, ".0") ? '1' : '0');
  json_t *a = deployment_json (ctx, slot, TRUE);
  if (a)
    json_array_append_new (deps, a);
  json_t *b = deployment_json (ctx, other, FALSE);
  if (b)
    json_array_append_new (deps, b);
  json_object_set_new (out, "deployments", deps);
  json_object_set_new (out, "values", d.values ? json_incref (d.values) : json_object ());
  json_object_set_new (out, "set", d.set ? json_incref (d.set) : json_object ());

  /* units and what systemd says (nothing to ask with --root) */
  g_autoptr (SysctrSystemd) sd = ctx->live ? sysctr_systemd_connect (NULL) : NULL;
  json_t *units = json_array ();
  size_t i;
  json_t *u;
  json_array_foreach (d.units, i, u)
    {
      const char *unit = json_string_value (u);
      g_autofree char *active = sd ? sysctr_systemd_active_state (sd, unit, NULL) : NULL;
      g_autofree char *sub
          = sd ? sysctr_systemd_unit_property (sd, unit, "org.freedesktop.systemd1.Unit", "SubState", NULL) : NULL;
      g_autofree char *status
          = sd && g_str_has_suffix (unit, ".service")
                ? sysctr_systemd_unit_property (sd, unit, "org.freedesktop.systemd1.Service", "StatusText", NULL)
                : NULL;
      json_t *uj = json_pack ("{s:s, s:s, s:s}", "unit", unit, "active", active ? active : "unknown", "sub",
                              sub ? sub : "unknown");
      if (status && *status)
        json_object_set_new (uj, "status", json_string (status));
      if (sd && g_str_has_suffix (unit, ".service"))
        {
          json_object_set_new (uj, "restarts",
                               json_integer (sysctr_systemd_unit_property_u32 (
                                   sd, unit, "org.freedesktop.systemd1.Service", "NRestarts")));
          json_object_set_new (uj, "main_pid", json_integer (sysctr_systemd_main_pid (sd, unit)));
        }
      json_array_append_new (units, uj);
    }
  json_object_set_new (out, "units", units);
  if (d.health)
    {
      json_t *h = json_deep_copy (d.health);
      const char *st = sysctr_json_get_string (json_array_get (units, 0), "status");
      json_object_set_new (h, "state",
                           json_string (st && g_str_has_prefix (st, "health: ") ? st + 8
                                        : sd                                    ? "starting"
                                                                                : "unknown"));
      json_object_set_new (out, "health", h);
    }
  json_object_set_new (out, "privileges",
                       json_pack ("{s:O, s:O}", "asked", d.asked ? d.asked : json_object (), "granted",
                                  d.granted ? d.granted : json_object ()));
  json_t *files = json_array ();
  json_array_foreach (d.files, i, u)
    json_array_append_new (files, json_string (sysctr_json_get_string (u, "path")));
  json_object_set_new (out, "host_files", files);
  json_object_set_new (out, "created_directories", d.created ? json_incref (d.created) : json_array ());
  json_object_set_new (out, "state_directory", d.state_path ? json_string (d.state_path) : json_null ());
  /* the cluster lock updates take (what info.json keeps, read locally: no
   * network call) and the last update attempt on this host */
  g_autoptr (SysctrUpdateLockConfig) lock = NULL;
  g_autofree char *lock_name = NULL;
  g_autoptr (GError) lock_error = NULL;
  if (sysctr_update_lock_from_json (d.update_lock, &lock, &lock_error) && lock)
    lock_name = sysctr_update_lock_name (lock, d.values, name, &lock_error);
  if (lock && lock_name)
    {
      json_t *lj = json_deep_copy (d.update_lock);
      json_object_set_new (lj, "name", json_string (lock_name));
      json_object_set_new (out, "update_lock", lj);
    }
  else
    json_object_set_new (out, "update_lock", json_null ());
  json_t *last = sysctr_last_update_read (ctx, name);
  json_object_set_new (out, "last_update", last ? last : json_null ());

  if (opt_json)
    {
      g_autofree char *s = sysctr_json_dump (out, TRUE);
      printf ("%s\n", s);
      return TRUE;
    }

    /* text: the same facts, every string made printable */
#define P(s) sysctr_printable (s ? s : "-")
  g_autofree char *ref = P (d.reference);
  printf ("Name:        %s\nImage:       %s\nDigest:      %s\n", name, ref,
          d.manifest_digest ? d.manifest_digest : "-");
  json_array_foreach (deps, i, u)
    {
      g_autofree char *img = P (sysctr_json_get_string (u, "image"));
      json_t *by = json_object_get (u, "store_bytes");
      g_autofree char *sz = json_is_integer (by) ? sysctr_format_size ((guint64) json_integer_value (by))
                                                 : g_strdup ("not in the store");
      printf ("%s %s  %s  %s  %s (%s, %lld layers)\n", i == 0 ? "Deployment: " : "             ",
              json_is_true (json_object_get (u, "active")) ? "*" : " ", sysctr_json_get_string (u, "slot"),
              sysctr_json_get_string (u, "deployed_at") ? sysctr_json_get_string (u, "deployed_at") : "-", img, sz,
              (long long) json_integer_value (json_object_get (u, "layers")));
      g_autofree char *sig = P (sysctr_json_get_string (u, "signature"));
      printf ("                   Signature: %s\n", sig);
    }
  json_array_foreach (units, i, u)
    {
      g_autofree char *status = sysctr_json_get_string (u, "status") ? P (sysctr_json_get_string (u, "status")) : NULL;
      printf ("%s %s: %s (%s)%s%s%s\n", i == 0 ? "Units:      " : "            ", sysctr_json_get_string (u, "unit"),
              sysctr_json_get_string (u, "active"), sysctr_json_get_string (u, "sub"), status ? ", \"" : "",
              status ? status : "", status ? "\"" : "");
    }
  json_t *h = json_object_get (out, "health");
  if (h)
    {
      g_autofree char *test = json_dumps (json_object_get (h, "test"), JSON_COMPACT);
      g_autofree char *shown = P (test);
      g_autofree char *state = P (sysctr_json_get_string (h, "state"));
      printf ("Health:      %s; every %lld ms, timeout %lld ms, %lld retries, start period %lld ms: %s\n", state,
              (long long) json_integer_value (json_object_get (h, "interval_ms")),
              (long long) json_integer_value (json_object_get (h, "timeout_ms")),
              (long long) json_integer_value (json_object_get (h, "retries")),
              (long long) json_integer_value (json_object_get (h, "start_period_ms")), shown);
    }
  g_autofree char *asked = sysctr_privileges_names (d.asked);
  g_autofree char *granted = sysctr_privileges_names (d.granted);
  printf ("Asked for:   %s\nGranted:     %s\n", *asked ? asked : "nothing", *granted ? granted : "nothing");
  g_autofree char *details = sysctr_privileges_describe (d.asked, "             ");
  if (details && *details)
    printf ("%s", details);
  json_array_foreach (files, i, u)
    {
      g_autofree char *path = P (json_string_value (u));
      printf ("%s %s\n", i == 0 ? "Host files: " : "            ", path);
    }
  g_autofree char *state_dir = P (d.state_path);
  printf ("State:       %s\n", state_dir);
  if (lock && lock_name)
    {
      g_autofree char *what = sysctr_update_lock_describe (lock, lock_name);
      g_autofree char *shown = P (what);
      printf ("Update lock: %s\n", shown);
    }
  else
    printf ("Update lock: none%s%s\n", lock_error ? ": " : "", lock_error ? lock_error->message : "");
  if (last)
    {
      json_t *lk = json_object_get (last, "lock");
      g_autofree char *result = P (sysctr_json_get_string (last, "result"));
      g_autofree char *at = P (sysctr_json_get_string (last, "at"));
      g_autofree char *to = P (sysctr_json_get_string (last, "to"));
      g_autofree char *msg
          = sysctr_json_get_string (last, "message") ? P (sysctr_json_get_string (last, "message")) : NULL;
      printf ("Last update: %s at %s (to %s)%s%s\n", result, at, to, msg ? ": " : "", msg ? msg : "");
      if (json_is_integer (json_object_get (lk, "acquired_revision")))
        printf ("             lock %s slot %lld: waited %.1f s, held %.1f s (etcd revisions %lld-%lld)\n",
                sysctr_json_get_string (lk, "name"), (long long) json_integer_value (json_object_get (lk, "slot")),
                json_integer_value (json_object_get (lk, "waited_ms")) / 1000.0,
                json_integer_value (json_object_get (lk, "held_ms")) / 1000.0,
                (long long) json_integer_value (json_object_get (lk, "acquired_revision")),
                (long long) json_integer_value (json_object_get (lk, "released_revision")));
    }
  else
    printf ("Last update: none recorded\n");
  printf ("Values:\n");
  const char *k;
  json_t *v;
  g_autoptr (GPtrArray) names = g_ptr_array_new ();
  json_object_foreach (d.values, k, v)
    g_ptr_array_add (names, (gpointer) k);
  g_ptr_array_sort (names, compare_names);
  for (guint n = 0; n < names->len; n++)
    {
      g_autofree char *val = P (sysctr_json_get_string (d.values, names->pdata[n]));
      printf ("  %s=%s%s\n", (char *) names->pdata[n], val,
              json_object_get (d.set, names->pdata[n]) ? "  (--set)" : "");
    }
#undef P
  return TRUE;
}
