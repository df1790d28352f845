#include "config.h"

#include "builtins.h"
#include "context.h"
#include "install.h"

static gboolean opt_purge;

static GOptionEntry entries[] = {
  { "purge", 0, 0, G_OPTION_ARG_NONE, &opt_purge, "Also remove the service's state data", NULL },
  { NULL },
};

gboolean
sysctr_builtin_uninstall (int argc, char **argv, const SysctrGlobals *globals, GError **error)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("NAME… - remove installed system containers");
  if (!sysctr_parse_options (context, entries, &argc, &argv, error))
    return FALSE;
  if (argc < 2)
    return sysctr_throw (error, SYSCTR_ERROR_USAGE, "usage: sysctr uninstall [--purge] NAME…");
  g_autoptr (SysctrContext) ctx = sysctr_context_new (globals->root, TRUE, error);
  if (ctx == NULL || !sysctr_reconcile (ctx, error))
    return FALSE;
  for (int i = 1; i < argc; i++)
    if (!sysctr_uninstall (ctx, argv[i], opt_purge, error))
      return FALSE;
  return TRUE;
}
