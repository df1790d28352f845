#include "config.h"

#include "auth.h"
#include "sysctr-util.h"

#include <string.h>

void
sysctr_auth_challenge_free (SysctrAuthChallenge *c)
{
  if (c == NULL)
    return;
  g_free (c->scheme);
  g_free (c->realm);
  g_free (c->service);
  g_free (c->scope);
  g_free (c);
}

/* Bearer realm="https://auth.example/token",service="registry",scope="..." */
SysctrAuthChallenge *
sysctr_auth_parse_challenge (const char *header)
{
  while (g_ascii_isspace (*header))
    header++;
  const char *sp = header;
  while (*sp && !g_ascii_isspace (*sp))
    sp++;
  g_autoptr (SysctrAuthChallenge) c = g_new0 (SysctrAuthChallenge, 1);
  c->scheme = g_ascii_strdown (header, sp - header);
  if (strcmp (c->scheme, "bearer") != 0 && strcmp (c->scheme, "basic") != 0)
    return NULL;

  const char *p = sp;
  while (*p)
    {
      while (*p == ',' || g_ascii_isspace (*p))
        p++;
      const char *key = p;
      while (*p && *p != '=' && *p != ',')
        p++;
      if (*p != '=')
        break;
      g_autofree char *k = g_ascii_strdown (key, p - key);
      g_strstrip (k);
      p++;
      GString *v = g_string_new (NULL);
      if (*p == '"')
        {
          p++;
          while (*p && *p != '"')
            {
              if (*p == '\\' && p[1])
                p++;
              g_string_append_c (v, *p++);
            }
          if (*p == '"')
            p++;
        }
      else
        {
          while (*p && *p != ',' && !g_ascii_isspace (*p))
            g_string_append_c (v, *p++);
        }
      char **slot = NULL;
      if (strcmp (k, "realm") == 0)
        slot = &c->realm;
      else if (strcmp (k, "service") == 0)
        slot = &c->service;
      else if (strcmp (k, "scope") == 0)
        slot = &c->scope;
      if (slot && *slot == NULL)
        *slot = g_string_free (v, FALSE);
      else
        g_string_free (v, TRUE);
    }
  if (strcmp (c->scheme, "bearer") == 0 && c->realm == NULL)
    return NULL;
  return g_steal_pointer (&c);
}

static char *
decode_auth (const char *b64)
{
  gsize len = 0;
  g_autofree guchar *raw = g_base64_decode (b64, &len);
  if (raw == NULL || len == 0 || memchr (raw, ':', len) == NULL || memchr (raw, '\0', len) != NULL)
    return NULL;
  return g_strndup ((const char *) raw, len);
}

/* containers-auth.json: keys are "host[:port]" or "host[:port]/path..." —
 * the most specific namespace wins; docker's config also uses URLs. */
static gboolean
lookup_in_file (const char *file, const char *domain, const char *path, gboolean must_exist, char **out_creds,
                GError **error)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  g_autoptr (GError) local_error = NULL;
  if (!sysctr_read_file_at (AT_FDCWD, file, 1024 * 1024, &data, &len, &local_error))
    {
      if (!must_exist && g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
        return TRUE;
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "reading auth file: ");
      return FALSE;
    }
  g_autoptr (json_t) json = sysctr_json_parse (data, len, file, error);
  if (json == NULL)
    return FALSE;
  json_t *auths = json_object_get (json, "auths");
  if (!json_is_object (auths))
    return TRUE;

  g_autofree char *full = g_strdup_printf ("%s/%s", domain, path);
  const char *is_hub = strcmp (domain, "docker.io") == 0 ? "yes" : NULL;
  g_autofree char *best = NULL;
  gsize best_len = 0;
  const char *key;
  json_t *val;
  json_object_foreach (auths, key, val)
    {
      const char *k = key;
      if (g_str_has_prefix (k, "https://"))
        k += strlen ("https://");
      else if (g_str_has_prefix (k, "http://"))
        k += strlen ("http://");
      g_autofree char *norm = g_strdup (k);
      gsize nlen = strlen (norm);
      while (nlen > 0 && norm[nlen - 1] == '/')
        norm[--nlen] = '\0';
      if (g_str_has_suffix (norm, "/v1") || g_str_has_suffix (norm, "/v2"))
        norm[nlen - 3] = '\0', nlen -= 3;
      if (is_hub && (strcmp (norm, "index.docker.io") == 0 || strcmp (norm, "registry-1.docker.io") == 0))
        {
          g_free (norm);
          norm = g_strdup ("docker.io");
          nlen = strlen (norm);
        }
      gboolean match = strcmp (norm, domain) == 0 || (g_str_has_prefix (full, norm) && full[nlen] == '/');
      if (!match || nlen < best_len)
        continue;
      const char *b64 = sysctr_json_get_string (val, "auth");
      if (b64 == NULL)
        continue;
      char *creds = decode_auth (b64);
      if (creds == NULL)
        return sysctr_throw (error, SYSCTR_ERROR_INVALID, "auth file %s: entry for %s is not base64 of user:password",
                             file, key);
      g_free (best);
      best = creds;
      best_len = nlen;
    }
  if (best)
    *out_creds = g_steal_pointer (&best);
  return TRUE;
}

gboolean
sysctr_auth_lookup (const char *domain, const char *path, const char *creds, const char *authfile, char **out_creds,
                    GError **error)
{
  *out_creds = NULL;
  if (creds)
    {
      if (strchr (creds, ':') == NULL)
        return sysctr_throw (error, SYSCTR_ERROR_INVALID, "--creds must be USER:PASSWORD");
      *out_creds = g_strdup (creds);
      return TRUE;
    }
  if (authfile)
    return lookup_in_file (authfile, domain, path, TRUE, out_creds, error);

  g_autoptr (GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  const char *env = g_getenv ("REGISTRY_AUTH_FILE");
  if (env && *env)
    g_ptr_array_add (files, g_strdup (env));
  const char *xdg_runtime = g_getenv ("XDG_RUNTIME_DIR");
  if (xdg_runtime && *xdg_runtime)
    g_ptr_array_add (files, g_build_filename (xdg_runtime, "containers", "auth.json", NULL));
  g_ptr_array_add (files, g_strdup_printf ("/run/containers/%u/auth.json", (unsigned) getuid ()));
  g_ptr_array_add (files, g_build_filename (g_get_user_config_dir (), "containers", "auth.json", NULL));
  g_ptr_array_add (files, g_build_filename (g_get_home_dir (), ".docker", "config.json", NULL));
  for (guint i = 0; i < files->len; i++)
    {
      if (!lookup_in_file (files->pdata[i], domain, path, FALSE, out_creds, error))
        return FALSE;
      if (*out_creds)
        return TRUE;
    }
  return TRUE;
}
