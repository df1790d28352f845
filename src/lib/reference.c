#include "config.h"

#include "reference.h"
#include "sysctr-util.h"

#include <string.h>

void
sysctr_ref_free (SysctrRef *ref)
{
  if (ref == NULL)
    return;
  g_free (ref->domain);
  g_free (ref->path);
  g_free (ref->tag);
  g_free (ref->digest);
  g_free (ref->file);
  g_free (ref);
}

static gboolean
is_alnum_lower (char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* A path component as the distribution spec has it:
 * [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static gboolean
path_component_valid (const char *s, gsize len)
{
  if (len == 0 || !is_alnum_lower (s[0]) || !is_alnum_lower (s[len - 1]))
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      char c = s[i];
      if (is_alnum_lower (c))
        continue;
      if (c == '.' || c == '_')
        {
          gsize run = 1;
          while (i + run < len && s[i + run] == c)
            run++;
          if ((c == '.' && run > 1) || (c == '_' && run > 2))
            return FALSE;
          i += run - 1;
          continue;
        }
      if (c == '-')
        continue;
      return FALSE;
    }
  return TRUE;
}

static gboolean
repo_path_valid (const char *path)
{
  if (strlen (path) > 255)
    return FALSE;
  g_auto (GStrv) parts = g_strsplit (path, "/", -1);
  for (char **p = parts; *p; p++)
    if (!path_component_valid (*p, strlen (*p)))
      return FALSE;
  return TRUE;
}

static gboolean
tag_valid (const char *tag)
{
  gsize len = strlen (tag);
  if (len == 0 || len > 128)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      char c = tag[i];
      gboolean word = g_ascii_isalnum (c) || c == '_';
      if (i == 0 ? !word : !(word || c == '.' || c == '-'))
        return FALSE;
    }
  return TRUE;
}

static gboolean
domain_valid (const char *domain)
{
  gsize len = strlen (domain);
  if (len == 0 || len > 255)
    return FALSE;
  const char *colon = strrchr (domain, ':');
  if (domain[0] == '[')
    {
      const char *close = strchr (domain, ']');
      if (close == NULL)
        return FALSE;
      colon = close[1] == ':' ? close + 1 : NULL;
      if (close[1] != '\0' && colon == NULL)
        return FALSE;
      for (const char *p = domain + 1; p < close; p++)
        if (!g_ascii_isxdigit (*p) && *p != ':' && *p != '.')
          return FALSE;
    }
  else
    {
      const char *end = colon ? colon : domain + len;
      if (end == domain)
        return FALSE;
      for (const char *p = domain; p < end; p++)
        if (!g_ascii_isalnum (*p) && *p != '.' && *p != '-')
          return FALSE;
      if (domain[0] == '-' || domain[0] == '.')
        return FALSE;
    }
  if (colon)
    {
      const char *port = colon + 1;
      if (*port == '\0' || strlen (port) > 5)
        return FALSE;
      for (const char *p = port; *p; p++)
        if (!g_ascii_isdigit (*p))
          return FALSE;
      if (atoi (port) < 1 || atoi (port) > 65535)
        return FALSE;
    }
  return TRUE;
}

static gboolean
parse_docker (const char *str, SysctrRef *ref, gboolean default_tag, GError **error)
{
  g_autofree char *rest = g_strdup (str);

  char *at = strchr (rest, '@');
  if (at)
    {
      *at = '\0';
      if (!sysctr_digest_valid (at + 1))
        return sysctr_throw (error, SYSCTR_ERROR_INVALID,
                             "invalid image reference \"%s\": bad digest (expected sha256: and 64 hex digits)", str);
      ref->digest = g_strdup (at + 1);
    }

  /* The tag is after the last ':' that follows the last '/'. */
  char *slash = strrchr (rest, '/');
  char *colon = strrchr (slash ? slash : rest, ':');
  if (colon)
    {
      *colon = '\0';
      if (!tag_valid (colon + 1))
        return sysctr_throw (error, SYSCTR_ERROR_INVALID, "invalid image reference \"%s\": bad tag \"%s\"", str,
                             colon + 1);
      ref->tag = g_strdup (colon + 1);
    }

  char *first_slash = strchr (rest, '/');
  const char *name;
  if (first_slash != NULL)
    {
      *first_slash = '\0';
      if (strchr (rest, '.') || strchr (rest, ':') || strcmp (rest, "localhost") == 0 || rest[0] == '[')
        {
          ref->domain = g_strdup (rest);
          name = first_slash + 1;
        }
      else
        {
          *first_slash = '/';
          ref->domain = g_strdup ("docker.io");
          name = rest;
        }
    }
  else
    {
      ref->domain = g_strdup ("docker.io");
      name = rest;
    }

  /* as docker/reference: only this exact spelling is Docker Hub's alias */
  if (strcmp (ref->domain, "index.docker.io") == 0)
    {
      g_free (ref->domain);
      ref->domain = g_strdup ("docker.io");
    }
  if (strcmp (ref->domain, "docker.io") == 0 && strchr (name, '/') == NULL)
    ref->path = g_strconcat ("library/", name, NULL);
  else
    ref->path = g_strdup (name);

  if (!domain_valid (ref->domain))
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "invalid image reference \"%s\": bad registry host \"%s\"", str,
                         ref->domain);
  if (!repo_path_valid (ref->path))
    return sysctr_throw (
        error, SYSCTR_ERROR_INVALID,
        "invalid image reference \"%s\": repository name must be lowercase letters, digits and separators", str);
  if (ref->tag == NULL && ref->digest == NULL && default_tag)
    ref->tag = g_strdup ("latest");
  return TRUE;
}

/* oci:DIR[:REF] — as containers/image reads it: DIR ends at the first
 * ':', so REF may hold ':' and '/' (podman save and skopeo write names such
 * as "localhost/app:latest" into org.opencontainers.image.ref.name). */
static void
split_file_ref (const char *s, char **out_file, char **out_ref)
{
  const char *colon = strchr (s, ':');
  if (colon && colon[1] != '\0')
    {
      *out_file = g_strndup (s, colon - s);
      *out_ref = g_strdup (colon + 1);
    }
  else
    {
      *out_file = g_strndup (s, colon ? (gsize) (colon - s) : strlen (s));
      *out_ref = NULL;
    }
}

/* org.opencontainers.image.ref.name: components of letters and digits,
 * joined by '/', with '-' '.' '_' ':' '@' '+' between them. */
static gboolean
oci_ref_name_valid (const char *name)
{
  gsize len = strlen (name);
  if (len == 0 || len > 512)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      char c = name[i];
      gboolean alnum = g_ascii_isalnum (c);
      gboolean sep = c == '-' || c == '.' || c == '_' || c == ':' || c == '@' || c == '+' || c == '/';
      if (!alnum && !sep)
        return FALSE;
      /* a separator never starts or ends a component */
      if (sep
          && (i == 0 || i == len - 1 || (name[i - 1] == '/' && c != '-')
              || (c == '/' && !g_ascii_isalnum (name[i - 1]))))
        return FALSE;
    }
  return TRUE;
}

SysctrRef *
sysctr_ref_parse (const char *str, GError **error)
{
  g_autoptr (SysctrRef) ref = g_new0 (SysctrRef, 1);

  if (str == NULL || *str == '\0')
    {
      sysctr_throw (error, SYSCTR_ERROR_INVALID, "empty image reference");
      return NULL;
    }
  if (strlen (str) > 4096 || !g_utf8_validate (str, -1, NULL))
    {
      sysctr_throw (error, SYSCTR_ERROR_INVALID, "invalid image reference: too long or not UTF-8");
      return NULL;
    }
  for (const char *p = str; *p; p++)
    if ((unsigned char) *p < 0x20 || *p == 0x7f)
      {
        sysctr_throw (error, SYSCTR_ERROR_INVALID, "invalid image reference: contains a control character");
        return NULL;
      }

  if (g_str_has_prefix (str, "oci:") || g_str_has_prefix (str, "oci-archive:"))
    {
      gboolean archive = g_str_has_prefix (str, "oci-archive:");
      ref->transport = archive ? SYSCTR_TRANSPORT_OCI_ARCHIVE : SYSCTR_TRANSPORT_OCI;
      split_file_ref (strchr (str, ':') + 1, &ref->file, &ref->tag);
      if (*ref->file == '\0')
        {
          sysctr_throw (error, SYSCTR_ERROR_INVALID, "invalid image reference \"%s\": no path", str);
          return NULL;
        }
      if (ref->tag && !oci_ref_name_valid (ref->tag))
        {
          sysctr_throw (error, SYSCTR_ERROR_INVALID, "invalid image reference \"%s\": bad ref name \"%s\"", str,
                        ref->tag);
          return NULL;
        }
    }
  else if (g_str_has_prefix (str, "docker-archive:"))
    {
      ref->transport = SYSCTR_TRANSPORT_DOCKER_ARCHIVE;
      ref->file = g_strdup (str + strlen ("docker-archive:"));
      if (*ref->file == '\0')
        {
          sysctr_throw (error, SYSCTR_ERROR_INVALID, "invalid image reference \"%s\": no path", str);
          return NULL;
        }
    }
  else
    {
      const char *s = str;
      if (g_str_has_prefix (s, "docker://"))
        s += strlen ("docker://");
      else if (strstr (s, "://") != NULL)
        {
          sysctr_throw (error, SYSCTR_ERROR_INVALID, "invalid image reference \"%s\": unsupported transport", str);
          return NULL;
        }
      ref->transport = SYSCTR_TRANSPORT_DOCKER;
      if (!parse_docker (s, ref, TRUE, error))
        return NULL;
    }
  if (ref->file)
    {
      g_autofree char *abs = g_canonicalize_filename (ref->file, NULL);
      g_free (ref->file);
      ref->file = g_steal_pointer (&abs);
      /* DIR:REF is split at the last ':' with no '/' after it, so a last
       * path component holding ':' could not be told from a ref. */
      g_autofree char *base = g_path_get_basename (ref->file);
      if (ref->transport != SYSCTR_TRANSPORT_DOCKER_ARCHIVE && strchr (base, ':') != NULL)
        {
          sysctr_throw (error, SYSCTR_ERROR_INVALID,
                        "invalid image reference \"%s\": a path whose last component contains ':' is ambiguous", str);
          return NULL;
        }
    }
  return g_steal_pointer (&ref);
}

GPtrArray *
sysctr_ref_docker_scopes (const SysctrRef *ref)
{
  GPtrArray *c = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (c, ref->digest ? g_strdup_printf ("%s/%s@%s", ref->domain, ref->path, ref->digest)
                                  : g_strdup_printf ("%s/%s:%s", ref->domain, ref->path, ref->tag));
  g_autofree char *name = g_strdup_printf ("%s/%s", ref->domain, ref->path);
  for (;;)
    {
      g_ptr_array_add (c, g_strdup (name));
      char *slash = strrchr (name, '/');
      if (slash == NULL)
        break;
      *slash = '\0';
    }
  char *colon = strchr (name, ':');
  if (colon)
    *colon = '\0';
  for (char *dot = strchr (name, '.'); dot; dot = strchr (dot + 1, '.'))
    g_ptr_array_add (c, g_strdup_printf ("*.%s", dot + 1));
  return c;
}

gboolean
sysctr_docker_prefix_valid (const char *s)
{
  const char *slash = strchr (s, '/');
  g_autofree char *host = slash ? g_strndup (s, slash - s) : g_strdup (s);
  return domain_valid (host) && (slash == NULL || repo_path_valid (slash + 1));
}

SysctrRef *
sysctr_docker_ref_parse_named (const char *str, GError **error)
{
  g_autoptr (SysctrRef) ref = g_new0 (SysctrRef, 1);
  ref->transport = SYSCTR_TRANSPORT_DOCKER;
  if (str == NULL || *str == '\0' || strlen (str) > 4096 || strstr (str, "://") != NULL)
    {
      sysctr_throw (error, SYSCTR_ERROR_INVALID, "invalid docker reference");
      return NULL;
    }
  for (const char *p = str; *p; p++)
    if ((unsigned char) *p <= 0x20 || *p == 0x7f)
      {
        sysctr_throw (error, SYSCTR_ERROR_INVALID, "invalid docker reference: contains a control character");
        return NULL;
      }
  if (!parse_docker (str, ref, FALSE, error))
    return NULL;
  return g_steal_pointer (&ref);
}

char *
sysctr_ref_to_string (const SysctrRef *ref)
{
  switch (ref->transport)
    {
    case SYSCTR_TRANSPORT_DOCKER:
      {
        GString *s = g_string_new (NULL);
        g_string_append_printf (s, "%s/%s", ref->domain, ref->path);
        /* a registry host named like a transport ("oci-archive:70/a/b")
         * would read back as that transport: keep the docker:// that
         * says which it is */
        if (g_str_has_prefix (s->str, "oci:") || g_str_has_prefix (s->str, "oci-archive:")
            || g_str_has_prefix (s->str, "docker-archive:"))
          g_string_prepend (s, "docker://");
        if (ref->tag)
          g_string_append_printf (s, ":%s", ref->tag);
        if (ref->digest)
          g_string_append_printf (s, "@%s", ref->digest);
        return g_string_free (s, FALSE);
      }
    case SYSCTR_TRANSPORT_OCI:
    case SYSCTR_TRANSPORT_OCI_ARCHIVE:
      return g_strdup_printf ("%s:%s%s%s", ref->transport == SYSCTR_TRANSPORT_OCI ? "oci" : "oci-archive", ref->file,
                              ref->tag ? ":" : "", ref->tag ? ref->tag : "");
    case SYSCTR_TRANSPORT_DOCKER_ARCHIVE:
      return g_strdup_printf ("docker-archive:%s", ref->file);
    }
  g_assert_not_reached ();
}

const char *
sysctr_ref_registry_host (const SysctrRef *ref)
{
  if (strcmp (ref->domain, "docker.io") == 0)
    return "registry-1.docker.io";
  return ref->domain;
}

gboolean
sysctr_name_valid (const char *name)
{
  gsize len = strlen (name);
  if (len == 0 || len > 64 || !g_ascii_isalnum (name[0]))
    return FALSE;
  for (gsize i = 1; i < len; i++)
    if (!g_ascii_isalnum (name[i]) && name[i] != '_' && name[i] != '-')
      return FALSE;
  return TRUE;
}

char *
sysctr_ref_default_name (const SysctrRef *ref)
{
  g_autofree char *base = NULL;
  if (ref->transport == SYSCTR_TRANSPORT_DOCKER)
    {
      const char *slash = strrchr (ref->path, '/');
      base = g_strdup (slash ? slash + 1 : ref->path);
      if (ref->tag && strcmp (ref->tag, "latest") != 0)
        {
          char *t = g_strconcat (base, "-", ref->tag, NULL);
          g_free (base);
          base = t;
        }
    }
  else if (ref->tag && (strchr (ref->tag, '/') || strchr (ref->tag, ':')))
    {
      /* a ref name that is an image name ("localhost/app:v1"): as for a
       * registry reference, "app-v1" */
      const char *slash = strrchr (ref->tag, '/');
      base = g_strdup (slash ? slash + 1 : ref->tag);
      char *colon = strchr (base, ':');
      if (colon)
        {
          *colon = strcmp (colon + 1, "latest") == 0 ? '\0' : '-';
        }
    }
  else
    {
      base = g_path_get_basename (ref->file);
      char *dot = strchr (base, '.');
      if (dot && ref->transport != SYSCTR_TRANSPORT_OCI)
        *dot = '\0';
      if (ref->tag && strcmp (ref->tag, "latest") != 0)
        {
          char *t = g_strconcat (base, "-", ref->tag, NULL);
          g_free (base);
          base = t;
        }
    }
  /* Tags may hold '.', names may not. */
  for (char *p = base; *p; p++)
    if (*p == '.')
      *p = '_';
  if (!sysctr_name_valid (base))
    return NULL;
  return g_steal_pointer (&base);
}

char *
sysctr_ref_escape (const char *canonical)
{
  GString *s = g_string_new (NULL);
  for (const unsigned char *p = (const unsigned char *) canonical; *p; p++)
    {
      if (g_ascii_isalnum (*p) || *p == '.' || *p == '-')
        g_string_append_c (s, *p);
      else
        g_string_append_printf (s, "_%02X", *p);
    }
  return g_string_free (s, FALSE);
}

char *
sysctr_ref_unescape (const char *escaped)
{
  GString *s = g_string_new (NULL);
  for (const char *p = escaped; *p; p++)
    {
      if (*p == '_' && g_ascii_isxdigit (p[1]) && g_ascii_isxdigit (p[2]))
        {
          g_string_append_c (s, (char) (g_ascii_xdigit_value (p[1]) * 16 + g_ascii_xdigit_value (p[2])));
          p += 2;
        }
      else
        g_string_append_c (s, *p);
    }
  return g_string_free (s, FALSE);
}
