#include "config.h"

#include "template.h"

#include "sysctr-util.h"

#include <jansson.h>
#include <string.h>

gboolean
sysctr_template_name_valid (const char *name)
{
  if (!(g_ascii_isalpha (name[0]) || name[0] == '_'))
    return FALSE;
  for (const char *p = name + 1; *p; p++)
    if (!(g_ascii_isalnum (*p) || *p == '_'))
      return FALSE;
  return strlen (name) <= 128;
}

/* Reads a reference at p (which points at '$'). Returns the length
 * consumed and the name (NULL for "$$"); 0 when '$' starts no reference. */
static gsize
scan_ref (const char *p, char **out_name)
{
  *out_name = NULL;
  if (p[1] == '$')
    return 2;
  if (p[1] == '{')
    {
      const char *end = strchr (p + 2, '}');
      if (end == NULL)
        return 0;
      g_autofree char *name = g_strndup (p + 2, end - (p + 2));
      if (!sysctr_template_name_valid (name))
        return 0;
      *out_name = g_steal_pointer (&name);
      return end + 1 - p;
    }
  const char *q = p + 1;
  if (!(g_ascii_isalpha (*q) || *q == '_'))
    return 0;
  while (g_ascii_isalnum (*q) || *q == '_')
    q++;
  *out_name = g_strndup (p + 1, q - (p + 1));
  return q - p;
}

GPtrArray *
sysctr_template_variables (const char *text)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);
  for (const char *p = text; *p; p++)
    {
      if (*p != '$')
        continue;
      char *name = NULL;
      gsize n = scan_ref (p, &name);
      if (n == 0)
        continue;
      if (name && !g_ptr_array_find_with_equal_func (out, name, g_str_equal, NULL))
        g_ptr_array_add (out, name);
      else
        g_free (name);
      p += n - 1;
    }
  return out;
}

gboolean
sysctr_template_value_is_command (const char *name)
{
  static const char *const names[] = { "EXEC_START", "EXEC_STOP", "EXEC_STARTPRE", "EXEC_STOPPOST" };
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    if (strcmp (name, names[i]) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
check_printable (const char *value, const char *name, const char *what, GError **error)
{
  if (!g_utf8_validate (value, -1, NULL))
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s: value of %s is not valid UTF-8", what, name);
  for (const unsigned char *p = (const unsigned char *) value; *p; p++)
    if (*p < 0x20 || *p == 0x7f)
      return sysctr_throw (error, SYSCTR_ERROR_INVALID,
                           "%s: value of %s contains a control character (newline, tab, ...); refused", what, name);
  if (strlen (value) > 8192)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s: value of %s is longer than 8192 bytes", what, name);
  return TRUE;
}

/* The directive a position in a unit file belongs to, read as systemd
 * reads it: a logical line is physical lines joined where one ends in an
 * unescaped backslash; leading whitespace is dropped; the key runs to '='
 * or whitespace ("Key = value" is the same directive as "Key=value").
 * Writes the key (empty for a comment, section header or no '=') and where
 * the value starts. */
static void
unit_directive_at (const char *text, const char *at, char *key, gsize key_size, const char **value_start)
{
  const char *line = at;
  /* back to the start of this physical line, then over continued ones */
  while (line > text && line[-1] != '\n')
    line--;
  while (line > text)
    {
      const char *prev_end = line - 1; /* the '\n' */
      const char *prev = prev_end;
      while (prev > text && prev[-1] != '\n')
        prev--;
      gsize bs = 0;
      for (const char *q = prev_end; q > prev && q[-1] == '\\'; q--)
        bs++;
      if (bs % 2 == 0)
        break;
      line = prev;
    }
  while (line < at && (*line == ' ' || *line == '\t'))
    line++;
  key[0] = '\0';
  *value_start = at;
  if (*line == '#' || *line == ';' || *line == '[')
    return;
  const char *k = line;
  while (k < at && *k != '=' && *k != ' ' && *k != '\t')
    k++;
  const char *eq = k;
  while (eq < at && (*eq == ' ' || *eq == '\t'))
    eq++;
  if (eq >= at || *eq != '=')
    return;
  gsize n = MIN ((gsize) (k - line), key_size - 1);
  memcpy (key, line, n);
  key[n] = '\0';
  *value_start = eq + 1;
}

/* Unit files: systemd expands %-specifiers everywhere and $VAR in Exec*=
 * lines, and joins lines ending in '\'. A value is kept literal, and
 * cannot add an argument (Exec*=) or an assignment (Environment=). */
static gboolean
append_unit (GString *out, const char *value, const char *text, const char *at, const char *name, const char *what,
             GError **error)
{
  if (!check_printable (value, name, what, error))
    return FALSE;
  char key[64];
  const char *value_start;
  unit_directive_at (text, at, key, sizeof key, &value_start);
  gboolean exec_line = g_str_has_prefix (key, "Exec");
  /* Environment= takes whitespace-separated assignments: outside quotes a
   * space would add a variable (LD_PRELOAD=... for ExecStartPre=), a quote
   * would change the quoting. Exec*= lines split arguments the same way. */
  gboolean split_line = exec_line || strcmp (key, "Environment") == 0;
  /* sysctr's own command lines (EXEC_START: the shim and its arguments)
   * are meant to be whole argument lists */
  if (g_str_has_prefix (name, "EXEC_") && sysctr_template_value_is_command (name))
    split_line = FALSE;
  gboolean quoted = FALSE;
  for (const char *q = value_start; q < at; q++)
    if (*q == '\\' && q + 1 < at)
      q++;
    else if (*q == '"')
      quoted = !quoted;
  for (const char *p = value; *p; p++)
    {
      if (split_line && ((!quoted && g_ascii_isspace (*p)) || *p == '"' || *p == '\''))
        return sysctr_throw (error, SYSCTR_ERROR_INVALID,
                             "%s: value of %s contains %s, which would add or change %s; refused", what, name,
                             g_ascii_isspace (*p) ? "a space" : "a quote",
                             exec_line ? "an argument of the command line" : "an Environment= assignment");
      switch (*p)
        {
        case '%':
          g_string_append (out, "%%");
          break;
        case '\\':
          g_string_append (out, "\\\\");
          break;
        case '$':
          g_string_append (out, exec_line ? "$$" : "$");
          break;
        case ';':
          if (exec_line)
            return sysctr_throw (error, SYSCTR_ERROR_INVALID,
                                 "%s: value of %s contains ;, which would change the command line; refused", what,
                                 name);
          g_string_append_c (out, *p);
          break;
        default:
          g_string_append_c (out, *p);
        }
    }
  return TRUE;
}

static gboolean
append_tmpfiles (GString *out, const char *value, const char *name, const char *what, GError **error)
{
  if (!check_printable (value, name, what, error))
    return FALSE;
  if (*value == '\0')
    return sysctr_throw (error, SYSCTR_ERROR_INVALID,
                         "%s: value of %s is empty, which would shift the tmpfiles.d fields", what, name);
  g_auto (GStrv) parts = g_strsplit (value, "/", -1);
  for (char **c = parts; *c; c++)
    if (strcmp (*c, "..") == 0)
      return sysctr_throw (error, SYSCTR_ERROR_INVALID,
                           "%s: value of %s contains \"..\", which would leave its path; refused", what, name);
  for (const char *p = value; *p; p++)
    {
      if (*p == ' ')
        return sysctr_throw (error, SYSCTR_ERROR_INVALID,
                             "%s: value of %s contains a space, which would add a tmpfiles.d field; refused", what,
                             name);
      if (*p == '"' || *p == '\'')
        return sysctr_throw (error, SYSCTR_ERROR_INVALID,
                             "%s: value of %s contains a quote, which would change the tmpfiles.d fields; refused",
                             what, name);
      if (*p == '%')
        g_string_append (out, "%%");
      else if (*p == '\\')
        g_string_append (out, "\\\\");
      else
        g_string_append_c (out, *p);
    }
  return TRUE;
}

static void
append_json_string_content (GString *out, const char *value)
{
  g_autoptr (json_t) s = json_string (value);
  g_autofree char *dumped = NULL;
  char *d = json_dumps (s, JSON_ENCODE_ANY);
  dumped = g_strdup (d);
  free (d);
  /* strip the surrounding quotes */
  g_string_append_len (out, dumped + 1, strlen (dumped) - 2);
}

/* A raw splice (outside any JSON string) may only add whole elements to
 * the array it sits in: it must parse on its own as array elements. */
static gboolean
append_json_raw (GString *out, const char *value, char container, const char *name, const char *what, GError **error)
{
  const char *v = value;
  while (g_ascii_isspace (*v))
    v++;
  if (*v == '\0')
    return TRUE;
  if (container != '[')
    return sysctr_throw (
        error, SYSCTR_ERROR_INVALID,
        "%s: %s is used outside a JSON string and outside an array; only an empty value is accepted there", what, name);
  g_autofree char *wrapped = g_strdup_printf (*v == ',' ? "[0 %s]" : "[%s]", value);
  json_error_t jerr;
  g_autoptr (json_t) j = json_loads (wrapped, JSON_REJECT_DUPLICATES, &jerr);
  if (j == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID,
                         "%s: value of %s is not a list of JSON values for the array it is spliced into: %s", what,
                         name, jerr.text);
  g_string_append (out, value);
  return TRUE;
}

char *
sysctr_template_render (const char *text, SysctrTemplateKind kind, GHashTable *values, const char *what, GError **error)
{
  g_autoptr (GString) out = g_string_new (NULL);
  gboolean in_string = FALSE;           /* JSON */
  GString *stack = g_string_new (NULL); /* JSON containers: '[' or '{' */
  gboolean ok = TRUE;

  for (const char *p = text; *p && ok; p++)
    {
      if (kind == SYSCTR_TEMPLATE_JSON)
        {
          if (in_string && *p == '\\' && p[1])
            {
              g_string_append_c (out, *p++);
              g_string_append_c (out, *p);
              continue;
            }
          if (*p == '"')
            in_string = !in_string;
          else if (!in_string && (*p == '[' || *p == '{'))
            g_string_append_c (stack, *p);
          else if (!in_string && (*p == ']' || *p == '}') && stack->len > 0)
            g_string_truncate (stack, stack->len - 1);
        }
      if (*p != '$')
        {
          g_string_append_c (out, *p);
          continue;
        }
      char *name_raw = NULL;
      gsize n = scan_ref (p, &name_raw);
      g_autofree char *name = name_raw;
      if (n == 0)
        {
          g_string_append_c (out, '$');
          continue;
        }
      p += n - 1;
      if (name == NULL)
        {
          /* "$$": a literal dollar, kept as systemd's own "$$" in units. */
          g_string_append (out, kind == SYSCTR_TEMPLATE_UNIT ? "$$" : "$");
          continue;
        }
      const char *value = g_hash_table_lookup (values, name);
      if (value == NULL)
        {
          ok = sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s: variable %s has no value (set it with --set %s=VALUE)",
                             what, name, name);
          break;
        }
      switch (kind)
        {
        case SYSCTR_TEMPLATE_TEXT:
          ok = check_printable (value, name, what, error);
          if (ok)
            g_string_append (out, value);
          break;
        case SYSCTR_TEMPLATE_UNIT:
          ok = append_unit (out, value, text, p - (n - 1), name, what, error);
          break;
        case SYSCTR_TEMPLATE_TMPFILES:
          ok = append_tmpfiles (out, value, name, what, error);
          break;
        case SYSCTR_TEMPLATE_JSON:
          if (in_string)
            {
              if (!g_utf8_validate (value, -1, NULL))
                ok = sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s: value of %s is not valid UTF-8", what, name);
              else
                append_json_string_content (out, value);
            }
          else
            ok = append_json_raw (out, value, stack->len ? stack->str[stack->len - 1] : 0, name, what, error);
          break;
        }
    }
  g_string_free (stack, TRUE);
  if (!ok)
    return NULL;
  return g_string_free (g_steal_pointer (&out), FALSE);
}
