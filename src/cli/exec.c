/* sysctr exec: a command in a running container.
 *
 * Finds the container's unit and its main process (the sysctr-shim that
 * runs it) and execs that shim's --exec mode, which does the confining
 * (src/shim/exec.c): this process becomes the command's parent, so stdin,
 * stdout, stderr and the exit status pass straight through. Takes no lock:
 * a health check or an operator's shell never waits for an install. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "builtins.h"
#include "containers.h"
#include "context.h"
#include "systemd.h"

static gboolean opt_tty;
static char *opt_user;
static char *opt_workdir;
static char **opt_env;

static GOptionEntry entries[] = {
  { "tty", 't', 0, G_OPTION_ARG_NONE, &opt_tty, "Allocate a pseudo-terminal (an interactive shell)", NULL },
  { "user", 'u', 0, G_OPTION_ARG_STRING, &opt_user, "Run as UID[:GID] (numbers) instead of the container's user",
    "UID[:GID]" },
  { "env", 'e', 0, G_OPTION_ARG_STRING_ARRAY, &opt_env, "Set an environment variable (repeatable)", "K=V" },
  { "workdir", 'w', 0, G_OPTION_ARG_STRING, &opt_workdir, "Working directory inside the container", "DIR" },
  { NULL },
};

gboolean
sysctr_builtin_exec (int argc, char **argv, const SysctrGlobals *globals, GError **error)
{
  g_autoptr (GOptionContext) context
      = g_option_context_new ("NAME CMD [ARG...] - run a command in a running system container");
  g_option_context_add_main_entries (context, entries, NULL);
  /* options end at NAME: what follows is the command's */
  g_option_context_set_strict_posix (context, TRUE);
  if (!g_option_context_parse (context, &argc, &argv, error))
    {
      (*error)->domain = SYSCTR_ERROR, (*error)->code = SYSCTR_ERROR_USAGE;
      return FALSE;
    }
  int first = 1;
  if (argc > first && strcmp (argv[first], "--") == 0)
    first++;
  if (argc - first < 2)
    return sysctr_throw (error, SYSCTR_ERROR_USAGE, "usage: sysctr exec [OPTION...] NAME CMD [ARG...]");
  const char *name = argv[first];
  if (globals->root)
    return sysctr_throw (error, SYSCTR_ERROR_USAGE, "exec: --root is refused: a command runs in a running container");
  for (char **e = opt_env; e && *e; e++)
    if (strchr (*e, '=') == NULL || **e == '=')
      return sysctr_throw (error, SYSCTR_ERROR_USAGE, "--env=%s: not K=V", *e);

  g_autoptr (SysctrContext) ctx = NULL;
  g_autofree char *slot = NULL;
  g_autoptr (json_t) info = NULL;
  if (!sysctr_name_valid (name))
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s: not a container name", name);
  if (!sysctr_context_open_for_listing (NULL, &ctx, error))
    return FALSE;
  if (ctx == NULL || !sysctr_container_active_slot (ctx, name, &slot, error))
    return ctx == NULL ? sysctr_throw (error, SYSCTR_ERROR_NOT_FOUND, "%s: no such container", name) : FALSE;
  if (slot == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_NOT_FOUND, "%s: no such container", name);
  if (!sysctr_container_read_info (ctx, slot, &info, error))
    return FALSE;
  SysctrDeployment d;
  sysctr_deployment_view (info, &d);
  if (d.runtime && strcmp (d.runtime, "sysctr-shim") != 0)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s runs under %s: use its own exec", name, d.runtime);
  if (d.service == NULL || d.shim_path == NULL)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s: its deployment names no unit or shim", name);

  g_autoptr (SysctrSystemd) sd = sysctr_systemd_connect (error);
  if (sd == NULL)
    return FALSE;
  guint32 pid = sysctr_systemd_main_pid (sd, d.service);
  if (pid == 0)
    {
      g_autofree char *state = sysctr_systemd_active_state (sd, d.service, NULL);
      return sysctr_throw (error, SYSCTR_ERROR_INVALID, "%s is not running (%s is %s)", name, d.service,
                           state ? state : "unknown");
    }

  g_autoptr (GPtrArray) args = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (args, g_strdup (d.shim_path));
  g_ptr_array_add (args, g_strdup_printf ("--exec=%u", pid));
  g_ptr_array_add (args, g_strdup_printf ("--name=%s", name));
  if (opt_tty)
    g_ptr_array_add (args, g_strdup ("--tty"));
  if (opt_user)
    g_ptr_array_add (args, g_strdup_printf ("--user=%s", opt_user));
  if (opt_workdir)
    g_ptr_array_add (args, g_strdup_printf ("--workdir=%s", opt_workdir));
  for (char **e = opt_env; e && *e; e++)
    g_ptr_array_add (args, g_strdup_printf ("--env=%s", *e));
  g_ptr_array_add (args, g_strdup ("--"));
  for (int i = first + 1; i < argc; i++)
    g_ptr_array_add (args, g_strdup (argv[i]));
  g_ptr_array_add (args, NULL);
  /* nothing of ours may reach the command: the shim closes what is left,
   * but the bus and the state directory are released here already */
  g_clear_pointer (&sd, sysctr_systemd_free);
  g_clear_pointer (&ctx, sysctr_context_free);
  fflush (NULL);
  execv (d.shim_path, (char **) args->pdata);
  return sysctr_throw (error, SYSCTR_ERROR_FAILED, "%s: %s", d.shim_path, g_strerror (errno));
}
