#include "config.h"

#include "builtins.h"
#include "context.h"
#include "install.h"

static GOptionEntry entries[] = { { NULL } };

gboolean
sysctr_builtin_rollback (int argc, char **argv, const SysctrGlobals *globals, GError **error)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("NAME - switch back to the previous deployment");
  if (!sysctr_parse_options (context, entries, &argc, &argv, error))
    return FALSE;
  if (argc != 2)
    return sysctr_throw (error, SYSCTR_ERROR_USAGE, "usage: sysctr rollback NAME");
  g_autoptr (SysctrContext) ctx = sysctr_context_new (globals->root, TRUE, error);
  if (ctx == NULL || !sysctr_reconcile (ctx, error))
    return FALSE;
  return sysctr_rollback (ctx, argv[1], error);
}
