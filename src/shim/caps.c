/* caps.c: credentials and capabilities, in the order crun and runc use.
 *
 * bounding set first (needs CAP_SETPCAP, which we still hold), then
 * PR_SET_KEEPCAPS so setresuid() to a non-root uid does not clear the
 * permitted set, then the ids, then capset(), then the ambient set (which
 * requires the caps to be both permitted and inheritable), then no_new_privs.
 */
#include "shim.h"
#include "cap-names.h"

#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

int
cap_from_name (const char *name)
{
  for (size_t i = 0; i < sizeof sysctr_cap_names / sizeof sysctr_cap_names[0]; i++)
    if (strcasecmp (sysctr_cap_names[i], name) == 0 || strcasecmp (sysctr_cap_names[i] + 4, name) == 0)
      return (int) i;
  return -1;
}

int
caps_last_cap (void)
{
  static int last = -1;
  FILE *f;
  if (last >= 0)
    return last;
  f = fopen ("/proc/sys/kernel/cap_last_cap", "re");
  if (!f || fscanf (f, "%d", &last) != 1 || last < 0 || last > 63)
    last = CAP_LAST_CAP;
  if (f)
    fclose (f);
  return last;
}

static int
capset_sets (uint64_t eff, uint64_t perm, uint64_t inh)
{
  struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
  struct __user_cap_data_struct data[2] = {
    { .effective = (uint32_t) eff, .permitted = (uint32_t) perm, .inheritable = (uint32_t) inh },
    { .effective = (uint32_t) (eff >> 32),
      .permitted = (uint32_t) (perm >> 32),
      .inheritable = (uint32_t) (inh >> 32) },
  };
  if (syscall (SYS_capset, &hdr, data) < 0)
    return negative_errno ();
  return 0;
}

const char *
cap_name (int cap)
{
  return cap >= 0 && cap < (int) (sizeof sysctr_cap_names / sizeof sysctr_cap_names[0]) ? sysctr_cap_names[cap]
                                                                                        : "(unnamed capability)";
}

/* Returns 0, or -errno with the capability that could not be dropped. */
static int
drop_bounding (uint64_t keep, int last, int *failed_cap)
{
  for (int cap = 0; cap <= last; cap++)
    if (!(keep & (UINT64_C (1) << cap)) && prctl (PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
      {
        *failed_cap = cap;
        return negative_errno ();
      }
  return 0;
}

static int
fail_step (struct shim_step_error *err, const char *what, const char *arg, long num, const char *hint)
{
  int r = negative_errno ();
  *err = (struct shim_step_error){ .what = what, .arg = arg, .num = num, .hint = hint };
  return r;
}

/* Runs in the vfork()ed payload (see main.c): syscalls only, nothing written
 * but *err. The ids are set with raw syscalls, as posix_spawn() does: glibc's
 * wrappers may broadcast the change to all threads through shared state. */
int
caps_apply (const struct shim_config *c, int last, struct shim_step_error *err)
{
  int r, cap = -1;

  if ((r = drop_bounding (c->caps[SHIM_CAP_BOUNDING], last, &cap)) < 0)
    {
      *err = (struct shim_step_error){ .what = "dropping from the bounding set", .arg = cap_name (cap), .num = -1 };
      return r;
    }
  if (prctl (PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    return fail_step (err, "PR_SET_KEEPCAPS", NULL, -1, NULL);
  if (syscall (SYS_setgroups, c->n_additional_gids, c->additional_gids) < 0)
    return fail_step (err, "setgroups (process.user.additionalGids)", NULL, -1, NULL);
  if (syscall (SYS_setresgid, c->gid, c->gid, c->gid) < 0)
    return fail_step (err, "setresgid", NULL, (long) c->gid, NULL);
  if (syscall (SYS_setresuid, c->uid, c->uid, c->uid) < 0)
    return fail_step (err, "setresuid", NULL, (long) c->uid, NULL);
  if ((r = capset_sets (c->caps[SHIM_CAP_EFFECTIVE], c->caps[SHIM_CAP_PERMITTED], c->caps[SHIM_CAP_INHERITABLE])) < 0)
    {
      *err = (struct shim_step_error){ .what = "capset", .num = -1 };
      return r;
    }
  if (prctl (PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
    return fail_step (err, "PR_SET_KEEPCAPS", NULL, -1, NULL);
  if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return fail_step (err, "clearing the ambient capabilities", NULL, -1, NULL);
  for (cap = 0; cap <= last; cap++)
    if ((c->caps[SHIM_CAP_AMBIENT] & (UINT64_C (1) << cap))
        && prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
      return fail_step (err, "raising ambient", cap_name (cap), -1, "it must be permitted and inheritable too");
  if (c->no_new_privileges && prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return fail_step (err, "PR_SET_NO_NEW_PRIVS", NULL, -1, NULL);
  return 0;
}

/* The container's init only signals and reaps: it keeps CAP_KILL (so it can
 * signal a payload that changed its uid) and nothing else. It stays uid 0 so a
 * non-root payload cannot ptrace or signal it. */
int
caps_restrict_init (int last)
{
  const uint64_t keep = UINT64_C (1) << CAP_KILL;
  int r, cap = -1;
  if ((r = drop_bounding (keep, last, &cap)) < 0)
    return shim_errorf (r, "init: dropping %s from the bounding set", cap_name (cap));
  if ((r = capset_sets (keep, keep, 0)) < 0)
    return shim_errorf (r, "init: capset");
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return shim_errorf (-errno, "init: PR_SET_NO_NEW_PRIVS");
  return 0;
}
