/* $VAR / ${VAR} / $$ substitution for atomic-style templates, with a
 * context that decides what a value may contain, so that a value can never
 * add a line, a directive, a JSON key or a field. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  SYSCTR_TEMPLATE_TEXT,     /* plain: values must be one printable line */
  SYSCTR_TEMPLATE_UNIT,     /* systemd unit: % and \ escaped, $ too in Exec*= */
  SYSCTR_TEMPLATE_TMPFILES, /* tmpfiles.d: no whitespace in values, % escaped */
  SYSCTR_TEMPLATE_JSON,     /* JSON: string-escaped inside strings; raw splices only as array elements */
} SysctrTemplateKind;

/* @values: name -> value. Fails naming the first variable that has no
 * value, or the value that does not fit where it is used. */
char *sysctr_template_render (const char *template_text, SysctrTemplateKind kind, GHashTable *values, const char *what,
                              GError **error);

/* Whether @name is a valid variable name: [A-Za-z_][A-Za-z0-9_]* */
gboolean sysctr_template_name_valid (const char *name);

/* The forced variables that hold sysctr's own command lines (whole
 * argument lists, never --set or image values). */
gboolean sysctr_template_value_is_command (const char *name);

/* Variables a template references, in order of first use. */
GPtrArray *sysctr_template_variables (const char *template_text);

G_END_DECLS
