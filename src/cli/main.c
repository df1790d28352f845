#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "builtins.h"
#include "sysctr-util.h"

typedef struct
{
  const char *name;
  SysctrBuiltinFunc fn;
  const char *summary;
} Command;

static const Command commands[] = {
  { "pull", sysctr_builtin_pull, "Pull an image into the store" },
  { "images", sysctr_builtin_images, "List, inspect, remove and prune stored images" },
  { "install", sysctr_builtin_install, "Install an image as a system container" },
  { "uninstall", sysctr_builtin_uninstall, "Remove an installed system container" },
  { "list", sysctr_builtin_list, "List installed system containers" },
  { "update", sysctr_builtin_update, "Update installed containers to the image their reference names now" },
  { "rollback", sysctr_builtin_rollback, "Switch a container back to its previous deployment" },
  { "info", sysctr_builtin_info, "Show one installed container: image, deployments, units, health, grants" },
  { "exec", sysctr_builtin_exec, "Run a command in a running container" },
};

static void
usage (FILE *f)
{
  fprintf (f, "Usage: sysctr [--root=DIR] [--verbose] COMMAND [OPTION…]\n\nCommands:\n");
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (f, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf (f, "\nSee sysctr(1) and sysctr-COMMAND(1).\n");
}

gboolean
sysctr_parse_bool (const char *value, const char *option, gboolean *out, GError **error)
{
  if (value == NULL || g_ascii_strcasecmp (value, "true") == 0 || strcmp (value, "1") == 0
      || g_ascii_strcasecmp (value, "yes") == 0)
    *out = TRUE;
  else if (g_ascii_strcasecmp (value, "false") == 0 || strcmp (value, "0") == 0
           || g_ascii_strcasecmp (value, "no") == 0)
    *out = FALSE;
  else
    return sysctr_throw (error, SYSCTR_ERROR_USAGE, "%s expects true or false, not \"%s\"", option, value);
  return TRUE;
}

gboolean
sysctr_parse_options (GOptionContext *context, const GOptionEntry *entries, int *argc, char ***argv, GError **error)
{
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_set_strict_posix (context, FALSE);
  if (!g_option_context_parse (context, argc, argv, error))
    {
      if (error && *error)
        (*error)->domain = SYSCTR_ERROR, (*error)->code = SYSCTR_ERROR_USAGE;
      return FALSE;
    }
  return TRUE;
}

int
main (int argc, char **argv)
{
  setlocale (LC_ALL, "");
  g_set_prgname ("sysctr");

  SysctrGlobals globals = { 0 };
  int i = 1;
  for (; i < argc; i++)
    {
      const char *a = argv[i];
      if (g_str_has_prefix (a, "--root="))
        globals.root = a + strlen ("--root=");
      else if (strcmp (a, "--root") == 0 && i + 1 < argc)
        globals.root = argv[++i];
      else if (strcmp (a, "--verbose") == 0 || strcmp (a, "-v") == 0)
        sysctr_set_verbose (TRUE);
      else if (strcmp (a, "--version") == 0)
        {
          printf ("sysctr %s\n", PACKAGE_VERSION);
          return 0;
        }
      else if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0)
        {
          usage (stdout);
          return 0;
        }
      else if (a[0] == '-')
        {
          fprintf (stderr, "sysctr: unknown option %s\n", a);
          usage (stderr);
          return 2;
        }
      else
        break;
    }
  if (i >= argc)
    {
      usage (stderr);
      return 2;
    }
  if (globals.root && *globals.root == '\0')
    {
      fprintf (stderr, "sysctr: --root needs a directory\n");
      return 2;
    }

  const Command *cmd = NULL;
  for (guint c = 0; c < G_N_ELEMENTS (commands); c++)
    if (strcmp (argv[i], commands[c].name) == 0)
      cmd = &commands[c];
  if (cmd == NULL)
    {
      fprintf (stderr, "sysctr: unknown command \"%s\"\n", argv[i]);
      usage (stderr);
      return 2;
    }

  g_autofree char *prgname = g_strdup_printf ("sysctr %s", cmd->name);
  g_set_prgname (prgname); /* "Usage: sysctr install ..." */
  g_autoptr (GError) error = NULL;
  guint64 written_before = sysctr_verbose () ? sysctr_io_write_bytes () : 0;
  gboolean ok = cmd->fn (argc - i, argv + i, &globals, &error);
  /* flash wears by what is written: every command says, with --verbose */
  if (sysctr_verbose ())
    {
      guint64 written = sysctr_io_write_bytes () - written_before;
      g_autofree char *w = sysctr_format_size (written);
      sysctr_debug ("%s wrote %s (%" G_GUINT64_FORMAT " bytes) to storage (file data; not the filesystem's own "
                    "metadata)",
                    cmd->name, w, written);
    }
  if (!ok)
    {
      if (error)
        {
          /* one line, whatever the message quotes from outside */
          g_autofree char *msg = sysctr_printable (error->message);
          fprintf (stderr, "sysctr %s: %s\n", cmd->name, msg);
        }
      /* exec passes the command's status through: its own failures are
       * 125, as podman exec's and the shim's */
      if (cmd->fn == sysctr_builtin_exec)
        return 125;
      return g_error_matches (error, SYSCTR_ERROR, SYSCTR_ERROR_USAGE) ? 2 : 1;
    }
  return 0;
}
