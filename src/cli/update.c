#include "config.h"

#include "builtins.h"
#include "sysctr-util.h"

gboolean
sysctr_builtin_update (int argc, char **argv, const SysctrGlobals *globals, GError **error)
{
  return sysctr_throw (error, SYSCTR_ERROR_FAILED, "this command is being written");
}
