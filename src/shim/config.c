/* config.c: read and validate the OCI runtime spec subset sysctr supports.
 *
 * Everything here runs before the first privileged step, so every refusal
 * leaves the host untouched. Unknown keys are refused unless they can only
 * restrict the payload (then they are ignored with one warning), because a
 * silently ignored key could widen what the payload sees or may do.
 */
#include "shim.h"

#include <fcntl.h>
#include <jansson.h>
#include <sched.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <linux/openat2.h>

/* --check: validate as a start would, but report a missing bind source
 * instead of refusing; with a root fd, absolute sources resolve inside it. */
static bool check_mode;
static int check_root_fd = -1;

/* The bounding set the payload's capabilities must fit in: the shim's
 * own when it starts a container; for --check (run by sysctr, which may
 * not be a child of systemd) the one systemd gives its services, PID 1's. */
static uint64_t
bounding_set (void)
{
  uint64_t set = 0;
  if (check_mode)
    {
      char line[256];
      FILE *f = fopen ("/proc/1/status", "re");
      bool found = false;
      while (f && fgets (line, sizeof line, f))
        if (strncmp (line, "CapBnd:", 7) == 0)
          found = sscanf (line + 7, "%" SCNx64, &set) == 1;
      if (f)
        fclose (f);
      if (found)
        return set;
    }
  for (int cap = 0; cap <= caps_last_cap () && cap < 64; cap++)
    if (prctl (PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
      set |= UINT64_C (1) << cap;
  return set;
}

void
config_set_check (int root_fd)
{
  check_mode = true;
  check_root_fd = root_fd;
}

static bool
has_prefix (const char *s, const char *p)
{
  return strncmp (s, p, strlen (p)) == 0;
}

void
strv_free (char **v)
{
  if (!v)
    return;
  for (char **p = v; *p; p++)
    free (*p);
  free (v);
}

void
config_free (struct shim_config *c)
{
  if (!c)
    return;
  strv_free (c->args);
  strv_free (c->env);
  strv_free (c->health.test);
  free (c->cwd);
  free (c->additional_gids);
  free (c->rlimits);
  free (c->root_path);
  free (c->hostname);
  free (c->domainname);
  for (size_t i = 0; i < c->n_mounts; i++)
    {
      struct shim_mount *m = &c->mounts[i];
      free (m->destination);
      free (m->type);
      free (m->source);
      strv_free (m->data);
    }
  free (c->mounts);
  for (size_t i = 0; i < c->n_ns_fds; i++)
    close (c->ns_fds[i]);
  strv_free (c->masked_paths);
  strv_free (c->readonly_paths);
  strv_free (c->sysctl_keys);
  strv_free (c->sysctl_values);
  for (size_t i = 0; i < c->n_store; i++)
    free (c->store_path[i]);
  seccomp_free (c->seccomp);
  free (c->text);
  free (c->apparmor_profile);
  free (c->selinux_label);
  free (c->mount_label);
  for (size_t i = 0; i < c->n_devices; i++)
    free (c->devices[i].path);
  free (c->devices);
  free (c);
}

int
shim_check_keys (struct json_t *obj, const char *what, const char *const *known)
{
  const char *key;
  json_t *v;
  json_object_foreach (obj, key, v)
    {
      bool ok = false;
      for (const char *const *k = known; *k; k++)
        if (strcmp (*k, key) == 0)
          ok = true;
      if (!ok)
        return shim_refusef ("config.json: %s%s%s: unsupported key", what, *what ? "." : "", key);
    }
  return 0;
}

static int
get_string (json_t *obj, const char *key, const char *what, char **ret)
{
  json_t *v = json_object_get (obj, key);
  if (!v || json_is_null (v))
    return 0;
  if (!json_is_string (v))
    return shim_refusef ("config.json: %s.%s: not a string", what, key);
  if (strlen (json_string_value (v)) != json_string_length (v))
    return shim_refusef ("config.json: %s.%s: contains a NUL byte", what, key);
  *ret = strdup (json_string_value (v));
  if (!*ret)
    return shim_errorf (-ENOMEM, "config.json");
  return 0;
}

static int
get_bool (json_t *obj, const char *key, const char *what, bool *ret)
{
  json_t *v = json_object_get (obj, key);
  if (!v || json_is_null (v))
    return 0;
  if (!json_is_boolean (v))
    return shim_refusef ("config.json: %s.%s: not a boolean", what, key);
  *ret = json_is_true (v);
  return 0;
}

static int
get_uint (json_t *v, const char *what, uint64_t max, uint64_t *ret)
{
  if (!json_is_integer (v) || json_integer_value (v) < 0 || (uint64_t) json_integer_value (v) > max)
    return shim_refusef ("config.json: %s: not an integer in 0..%llu", what, (unsigned long long) max);
  *ret = (uint64_t) json_integer_value (v);
  return 0;
}

/* A NULL-terminated copy of an array of strings. */
static int
get_strv (json_t *obj, const char *key, const char *what, char ***ret)
{
  json_t *v = json_object_get (obj, key);
  size_t i;
  json_t *e;
  _cleanup_strv_ char **r = NULL;

  if (!v || json_is_null (v))
    return 0;
  if (!json_is_array (v))
    return shim_refusef ("config.json: %s.%s: not an array", what, key);
  r = calloc (json_array_size (v) + 1, sizeof (char *));
  if (!r)
    return shim_errorf (-ENOMEM, "config.json");
  json_array_foreach (v, i, e)
    {
      if (!json_is_string (e) || strlen (json_string_value (e)) != json_string_length (e))
        return shim_refusef ("config.json: %s.%s[%zu]: not a string", what, key, i);
      r[i] = strdup (json_string_value (e));
      if (!r[i])
        return shim_errorf (-ENOMEM, "config.json");
    }
  *ret = steal_ptr (&r);
  return 0;
}

static int
parse_user (json_t *u, struct shim_config *c)
{
  static const char *const known[] = { "uid", "gid", "additionalGids", "umask", NULL };
  json_t *v;
  uint64_t n;
  int r;

  if (!json_is_object (u))
    return shim_refusef ("config.json: process.user: not an object");
  if (json_object_get (u, "username"))
    return shim_refusef ("config.json: process.user.username: only numeric uid/gid are supported");
  r = shim_check_keys (u, "process.user", known);
  if (r < 0)
    return r;
  if ((v = json_object_get (u, "uid")))
    {
      if ((r = get_uint (v, "process.user.uid", UINT32_MAX - 1, &n)) < 0)
        return r;
      c->uid = (uid_t) n;
    }
  if ((v = json_object_get (u, "gid")))
    {
      if ((r = get_uint (v, "process.user.gid", UINT32_MAX - 1, &n)) < 0)
        return r;
      c->gid = (gid_t) n;
    }
  if ((v = json_object_get (u, "umask")) && !json_is_null (v))
    {
      if ((r = get_uint (v, "process.user.umask", 0777, &n)) < 0)
        return r;
      c->has_umask = true;
      c->umask = (mode_t) n;
    }
  if ((v = json_object_get (u, "additionalGids")) && !json_is_null (v))
    {
      size_t i;
      json_t *e;
      if (!json_is_array (v))
        return shim_refusef ("config.json: process.user.additionalGids: not an array");
      c->additional_gids = calloc (json_array_size (v) + 1, sizeof (gid_t));
      if (!c->additional_gids)
        return shim_errorf (-ENOMEM, "config.json");
      json_array_foreach (v, i, e)
        {
          if ((r = get_uint (e, "process.user.additionalGids[]", UINT32_MAX - 1, &n)) < 0)
            return r;
          c->additional_gids[i] = (gid_t) n;
        }
      c->n_additional_gids = json_array_size (v);
    }
  return 0;
}

static int
parse_caps (json_t *caps, struct shim_config *c)
{
  static const char *const names[SHIM_CAP_N_SETS] = { "bounding", "effective", "permitted", "inheritable", "ambient" };
  static const char *const known[] = { "bounding", "effective", "permitted", "inheritable", "ambient", NULL };
  int last = caps_last_cap ();
  int r;

  if (!json_is_object (caps))
    return shim_refusef ("config.json: process.capabilities: not an object");
  if ((r = shim_check_keys (caps, "process.capabilities", known)) < 0)
    return r;
  for (int s = 0; s < SHIM_CAP_N_SETS; s++)
    {
      json_t *arr = json_object_get (caps, names[s]);
      size_t i;
      json_t *e;
      if (!arr || json_is_null (arr))
        continue;
      if (!json_is_array (arr))
        return shim_refusef ("config.json: process.capabilities.%s: not an array", names[s]);
      json_array_foreach (arr, i, e)
        {
          int cap = json_is_string (e) ? cap_from_name (json_string_value (e)) : -1;
          if (cap < 0)
            return shim_refusef ("config.json: process.capabilities.%s[%zu]: unknown capability", names[s], i);
          if (cap > last)
            {
              /* Not granting a capability this kernel lacks can only restrict. */
              shim_warn ("process.capabilities.%s: %s is not known to this kernel, ignored", names[s],
                         json_string_value (e));
              continue;
            }
          c->caps[s] |= UINT64_C (1) << cap;
        }
    }
  return 0;
}

static const struct
{
  const char *name;
  int resource;
} rlimit_names[] = {
  { "RLIMIT_AS", RLIMIT_AS },
  { "RLIMIT_CORE", RLIMIT_CORE },
  { "RLIMIT_CPU", RLIMIT_CPU },
  { "RLIMIT_DATA", RLIMIT_DATA },
  { "RLIMIT_FSIZE", RLIMIT_FSIZE },
  { "RLIMIT_LOCKS", RLIMIT_LOCKS },
  { "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },
  { "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE },
  { "RLIMIT_NICE", RLIMIT_NICE },
  { "RLIMIT_NOFILE", RLIMIT_NOFILE },
  { "RLIMIT_NPROC", RLIMIT_NPROC },
  { "RLIMIT_RSS", RLIMIT_RSS },
  { "RLIMIT_RTPRIO", RLIMIT_RTPRIO },
  { "RLIMIT_RTTIME", RLIMIT_RTTIME },
  { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
  { "RLIMIT_STACK", RLIMIT_STACK },
};

static int
parse_rlimits (json_t *arr, struct shim_config *c)
{
  static const char *const known[] = { "type", "soft", "hard", NULL };
  size_t i;
  json_t *e;
  int r;

  if (!json_is_array (arr))
    return shim_refusef ("config.json: process.rlimits: not an array");
  c->rlimits = calloc (json_array_size (arr) + 1, sizeof (struct shim_rlimit));
  if (!c->rlimits)
    return shim_errorf (-ENOMEM, "config.json");
  json_array_foreach (arr, i, e)
    {
      const char *type;
      struct shim_rlimit *rl = &c->rlimits[i];
      size_t k;
      if (!json_is_object (e) || (r = shim_check_keys (e, "process.rlimits[]", known)) < 0)
        return json_is_object (e) ? r : shim_refusef ("config.json: process.rlimits[%zu]: not an object", i);
      type = json_string_value (json_object_get (e, "type"));
      if (!type)
        return shim_refusef ("config.json: process.rlimits[%zu].type: missing", i);
      for (k = 0; k < sizeof rlimit_names / sizeof rlimit_names[0]; k++)
        if (strcmp (rlimit_names[k].name, type) == 0)
          break;
      if (k == sizeof rlimit_names / sizeof rlimit_names[0])
        return shim_refusef ("config.json: process.rlimits[%zu]: unknown type \"%s\"", i, type);
      rl->resource = rlimit_names[k].resource;
      if ((r = get_uint (json_object_get (e, "soft"), "process.rlimits[].soft", UINT64_MAX >> 1, &rl->soft)) < 0
          || (r = get_uint (json_object_get (e, "hard"), "process.rlimits[].hard", UINT64_MAX >> 1, &rl->hard)) < 0)
        return r;
      if (rl->soft > rl->hard)
        return shim_refusef ("config.json: process.rlimits[%zu]: soft limit above hard limit", i);
    }
  c->n_rlimits = json_array_size (arr);
  return 0;
}

bool
lsm_enabled (enum shim_lsm lsm)
{
  if (lsm == SHIM_LSM_SELINUX)
    return access ("/sys/fs/selinux/enforce", F_OK) == 0;
  {
    char y = 'N';
    _cleanup_close_ int fd = open ("/sys/module/apparmor/parameters/enabled", O_RDONLY | O_CLOEXEC);
    return fd >= 0 && read (fd, &y, 1) == 1 && y == 'Y';
  }
}

/* An LSM label is applied where that LSM is enabled; without it the label
 * cannot apply, and since it can only restrict, it is ignored. */
static int
lsm_label (json_t *obj, const char *key, const char *what, enum shim_lsm lsm, char **ret)
{
  json_t *v = json_object_get (obj, key);
  const char *name = lsm == SHIM_LSM_SELINUX ? "SELinux" : "AppArmor";
  if (!v || json_is_null (v) || (json_is_string (v) && json_string_length (v) == 0))
    return 0;
  if (!json_is_string (v) || strlen (json_string_value (v)) != json_string_length (v)
      || strchr (json_string_value (v), '\n'))
    return shim_refusef ("config.json: %s: not a label", what);
  if (!lsm_enabled (lsm))
    {
      shim_warn ("%s: %s is not enabled, label ignored", what, name);
      return 0;
    }
  *ret = strdup (json_string_value (v));
  if (!*ret)
    return shim_errorf (-ENOMEM, "config.json");
  return 0;
}

static int
parse_process (json_t *p, struct shim_config *c)
{
  static const char *const known[]
      = { "terminal",        "consoleSize",     "user",        "args",         "env", "cwd", "capabilities", "rlimits",
          "noNewPrivileges", "apparmorProfile", "oomScoreAdj", "selinuxLabel", NULL };
  bool terminal = false;
  json_t *v;
  int r;

  if (!json_is_object (p))
    return shim_refusef ("config.json: process: missing or not an object");
  if ((r = shim_check_keys (p, "process", known)) < 0)
    return r;
  if ((r = get_bool (p, "terminal", "process", &terminal)) < 0)
    return r;
  /* runc spec writes it; a service has no terminal: stdio stays the
   * unit's (the journal) */
  if (terminal)
    shim_warn ("process.terminal: true ignored, the payload runs without a terminal (output to the journal)");
  if ((r = get_strv (p, "args", "process", &c->args)) < 0 || (r = get_strv (p, "env", "process", &c->env)) < 0
      || (r = get_string (p, "cwd", "process", &c->cwd)) < 0)
    return r;
  if (!c->args || !c->args[0] || !*c->args[0])
    return shim_refusef ("config.json: process.args: missing or empty");
  if (c->cwd && c->cwd[0] != '/')
    return shim_refusef ("config.json: process.cwd: \"%s\" is not absolute", c->cwd);
  if ((v = json_object_get (p, "user")) && (r = parse_user (v, c)) < 0)
    return r;
  if ((v = json_object_get (p, "capabilities")) && !json_is_null (v) && (r = parse_caps (v, c)) < 0)
    return r;
  if ((v = json_object_get (p, "rlimits")) && !json_is_null (v) && (r = parse_rlimits (v, c)) < 0)
    return r;
  if ((r = get_bool (p, "noNewPrivileges", "process", &c->no_new_privileges)) < 0)
    return r;
  if ((v = json_object_get (p, "oomScoreAdj")) && !json_is_null (v))
    {
      if (!json_is_integer (v) || json_integer_value (v) < -1000 || json_integer_value (v) > 1000)
        return shim_refusef ("config.json: process.oomScoreAdj: not an integer in -1000..1000");
      c->has_oom_score_adj = true;
      c->oom_score_adj = (int) json_integer_value (v);
    }
  if ((r = lsm_label (p, "apparmorProfile", "process.apparmorProfile", SHIM_LSM_APPARMOR, &c->apparmor_profile)) < 0
      || (r = lsm_label (p, "selinuxLabel", "process.selinuxLabel", SHIM_LSM_SELINUX, &c->selinux_label)) < 0)
    return r;
  /* What the shim does not hold itself it cannot grant (capset fails
   * with EPERM, late and without saying which): a systemd in a container
   * may run with a smaller bounding set (nspawn drops CAP_NET_ADMIN
   * without a private network). Said here, by name, before anything. */
  if (check_root_fd < 0)
    {
      uint64_t asked = c->caps[SHIM_CAP_BOUNDING] | c->caps[SHIM_CAP_PERMITTED] | c->caps[SHIM_CAP_EFFECTIVE]
                       | c->caps[SHIM_CAP_INHERITABLE];
      uint64_t have = bounding_set ();
      int last = caps_last_cap ();
      for (int cap = 0; cap <= last && cap < 64; cap++)
        if ((asked & (UINT64_C (1) << cap)) && !(have & (UINT64_C (1) << cap)))
          return shim_refusef ("config.json: process.capabilities: %s is not in this system's bounding set, so the "
                               "shim cannot grant it",
                               cap_name (cap));
    }
  /* An ambient capability must be permitted and inheritable to be raised
   * (runc spec lists ambient ones without inheritable): as runc does, the
   * rest are skipped, with a warning here rather than a failure later. */
  {
    uint64_t raisable = c->caps[SHIM_CAP_PERMITTED] & c->caps[SHIM_CAP_INHERITABLE];
    uint64_t skipped = c->caps[SHIM_CAP_AMBIENT] & ~raisable;
    if (skipped)
      {
        shim_warn ("process.capabilities.ambient: %d capabilit%s not both permitted and inheritable, not raised",
                   __builtin_popcountll (skipped), __builtin_popcountll (skipped) == 1 ? "y" : "ies");
        c->caps[SHIM_CAP_AMBIENT] &= raisable;
      }
  }
  return 0;
}

/* ---- mounts --------------------------------------------------------------- */

static const struct
{
  const char *name;
  uint64_t set, clr;
} mount_flag_options[] = {
  { "ro", MOUNT_ATTR_RDONLY, 0 },
  { "rw", 0, MOUNT_ATTR_RDONLY },
  { "nosuid", MOUNT_ATTR_NOSUID, 0 },
  { "suid", 0, MOUNT_ATTR_NOSUID },
  { "nodev", MOUNT_ATTR_NODEV, 0 },
  { "dev", 0, MOUNT_ATTR_NODEV },
  { "noexec", MOUNT_ATTR_NOEXEC, 0 },
  { "exec", 0, MOUNT_ATTR_NOEXEC },
  { "relatime", MOUNT_ATTR_RELATIME, 0 },
  { "noatime", MOUNT_ATTR_NOATIME, 0 },
  { "strictatime", MOUNT_ATTR_STRICTATIME, 0 },
  { "nodiratime", MOUNT_ATTR_NODIRATIME, 0 },
};

static const struct
{
  const char *name;
  unsigned long prop;
  bool rec;
} mount_propagation_options[] = {
  { "private", MS_PRIVATE, false },       { "rprivate", MS_PRIVATE, true },       { "slave", MS_SLAVE, false },
  { "rslave", MS_SLAVE, true },           { "shared", MS_SHARED, false },         { "rshared", MS_SHARED, true },
  { "unbindable", MS_UNBINDABLE, false }, { "runbindable", MS_UNBINDABLE, true },
};

/* Filesystem data options we pass to fsconfig(), per type. Anything else is
 * refused here rather than failing half-way through the mount sequence. */
static bool
data_option_allowed (const char *type, const char *opt)
{
  static const char *const tmpfs[] = { "mode", "size", "nr_inodes", "nr_blocks", "uid", "gid", NULL };
  static const char *const devpts[] = { "newinstance", "ptmxmode", "mode", "gid", "max", NULL };
  static const char *const proc[] = { "hidepid", "subset", NULL };
  static const char *const none[] = { NULL };
  const char *const *list = none;
  size_t len = strcspn (opt, "=");

  if (strcmp (type, "tmpfs") == 0)
    list = tmpfs;
  else if (strcmp (type, "devpts") == 0)
    list = devpts;
  else if (strcmp (type, "proc") == 0)
    list = proc;
  for (; *list; list++)
    if (strlen (*list) == len && strncmp (*list, opt, len) == 0)
      return true;
  return false;
}

static int
parse_mount (const struct shim_config *c, json_t *m, size_t idx, int bundle_fd, const char *bundle_path,
             struct shim_mount *sm)
{
  static const char *const known[] = { "destination", "type", "source", "options", "uidMappings", "gidMappings", NULL };
  char what[64];
  _cleanup_strv_ char **options = NULL;
  size_t n_data = 0;
  bool bind = false;
  int r;

  snprintf (what, sizeof what, "mounts[%zu]", idx);
  if (!json_is_object (m))
    return shim_refusef ("config.json: %s: not an object", what);
  if ((r = shim_check_keys (m, what, known)) < 0)
    return r;
  if (json_object_get (m, "uidMappings") || json_object_get (m, "gidMappings"))
    return shim_refusef ("config.json: %s: idmapped mounts are not supported", what);
  if ((r = get_string (m, "destination", what, &sm->destination)) < 0
      || (r = get_string (m, "type", what, &sm->type)) < 0 || (r = get_string (m, "source", what, &sm->source)) < 0
      || (r = get_strv (m, "options", what, &options)) < 0)
    return r;
  if (!sm->destination || sm->destination[0] != '/')
    {
      return shim_refusef ("config.json: %s.destination: missing or not absolute", what);
    }
  for (char **o = options; o && *o; o++)
    if (strcmp (*o, "bind") == 0 || strcmp (*o, "rbind") == 0)
      {
        bind = true;
        sm->recursive |= strcmp (*o, "rbind") == 0;
      }
  if (!sm->type)
    sm->type = strdup (bind ? "bind" : "none");

  if (bind || strcmp (sm->type, "bind") == 0 || strcmp (sm->type, "rbind") == 0)
    {
      sm->kind = SHIM_MOUNT_BIND;
      if (strcmp (sm->type, "rbind") == 0)
        sm->recursive = true;
    }
  else if (strcmp (sm->type, "tmpfs") == 0 || strcmp (sm->type, "proc") == 0 || strcmp (sm->type, "sysfs") == 0
           || strcmp (sm->type, "devpts") == 0 || strcmp (sm->type, "mqueue") == 0)
    sm->kind = SHIM_MOUNT_FS;
  else if (strcmp (sm->type, "cgroup") == 0)
    {
      /* Atomic-era templates ask for a cgroup mount; the container shares the
       * unit's cgroup, so it gets a read-only view of the host hierarchy. */
      sm->kind = SHIM_MOUNT_CGROUP;
      sm->recursive = true;
    }
  else
    {
      return shim_refusef ("config.json: %s: unsupported mount type \"%s\" on %s", what, sm->type, sm->destination);
    }

  {
    size_t n_opts = 0;
    for (char **o = options; o && *o; o++)
      n_opts++;
    sm->data = calloc (n_opts + 1, sizeof (char *));
  }
  if (!sm->data)
    {
      return shim_errorf (-ENOMEM, "config.json");
    }
  for (char **o = options; o && *o; o++)
    {
      bool found = false;
      if (strcmp (*o, "bind") == 0 || strcmp (*o, "rbind") == 0)
        continue;
      for (size_t k = 0; k < sizeof mount_flag_options / sizeof mount_flag_options[0]; k++)
        if (strcmp (*o, mount_flag_options[k].name) == 0)
          {
            /* Later options override earlier ones, as with mount(8). */
            sm->attr_set = (sm->attr_set & ~mount_flag_options[k].clr) | mount_flag_options[k].set;
            sm->attr_clr = (sm->attr_clr & ~mount_flag_options[k].set) | mount_flag_options[k].clr;
            if (mount_flag_options[k].set & MOUNT_ATTR__ATIME)
              sm->attr_clr |= MOUNT_ATTR__ATIME;
            found = true;
          }
      for (size_t k = 0; k < sizeof mount_propagation_options / sizeof mount_propagation_options[0]; k++)
        if (strcmp (*o, mount_propagation_options[k].name) == 0)
          {
            sm->propagation = mount_propagation_options[k].prop;
            sm->propagation_rec = mount_propagation_options[k].rec;
            found = true;
          }
      if (found)
        continue;
      if (sm->kind != SHIM_MOUNT_FS && strchr (*o, '='))
        {
          /* mode=755 on a bind (9 of atomic's images): the kernel ignores
           * data for a bind, and runc passes it along unused */
          shim_warn ("%s: option \"%s\" means nothing for a bind mount on %s, ignored", what, *o, sm->destination);
          continue;
        }
      if (sm->kind == SHIM_MOUNT_FS && data_option_allowed (sm->type, *o))
        {
          sm->data[n_data] = strdup (*o);
          if (!sm->data[n_data++])
            {
              return shim_errorf (-ENOMEM, "config.json");
            }
          continue;
        }
      r = shim_refusef ("config.json: %s: unsupported option \"%s\" for %s mount on %s", what, *o, sm->type,
                        sm->destination);
      return r;
    }

  if (sm->kind == SHIM_MOUNT_BIND)
    {
      _cleanup_close_ int source_fd = -1;
      if (!sm->source || !*sm->source)
        return shim_refusef ("config.json: %s: bind mount on %s without a source", what, sm->destination);
      /* Opened now, on the host, so a missing source fails before any
       * privileged step, and closed again once checked; relative sources
       * are relative to the bundle. */
      if (check_root_fd >= 0 && sm->source[0] == '/')
        {
          /* --check --root: the source as the tree will see it at boot */
          struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
          source_fd = (int) syscall (SYS_openat2, check_root_fd, sm->source, &how, sizeof how);
        }
      else
        source_fd = openat (bundle_fd, sm->source, O_PATH | O_CLOEXEC);
      if (source_fd < 0 && errno == ENOENT && check_mode)
        {
          /* sysctr creates it at install (tmpfiles.d) or refuses: its call */
          printf ("missing-bind-source %s\n", sm->source);
          return 0;
        }
      if (source_fd < 0)
        return shim_errorf (-errno, "config.json: %s: bind source %s", what, sm->source);
      if (!(sm->attr_set & MOUNT_ATTR_RDONLY) && (r = store_check_source (c, source_fd, what)) < 0)
        return r;
      /* The child reopens it by path in its own mount namespace (open_tree
       * cannot copy a mount of another namespace); make it absolute now. */
      if (sm->source[0] != '/')
        {
          char *abs;
          if (asprintf (&abs, "%s/%s", bundle_path, sm->source) < 0)
            return shim_errorf (-ENOMEM, "config.json");
          free (sm->source);
          sm->source = abs;
        }
    }
  return 0;
}

/* ---- namespaces, sysctl --------------------------------------------------- */

static const struct
{
  const char *name;
  int flag;
} ns_names[] = {
  { "pid", CLONE_NEWPID }, { "mount", CLONE_NEWNS },    { "ipc", CLONE_NEWIPC },
  { "uts", CLONE_NEWUTS }, { "network", CLONE_NEWNET }, { "cgroup", CLONE_NEWCGROUP },
};

static int
parse_namespaces (json_t *arr, struct shim_config *c)
{
  static const char *const known[] = { "type", "path", NULL };
  size_t i;
  json_t *e;
  int r;

  if (!json_is_array (arr))
    return shim_refusef ("config.json: linux.namespaces: not an array");
  json_array_foreach (arr, i, e)
    {
      const char *type, *path;
      int flag = 0;
      if (!json_is_object (e))
        return shim_refusef ("config.json: linux.namespaces[%zu]: not an object", i);
      if ((r = shim_check_keys (e, "linux.namespaces[]", known)) < 0)
        return r;
      type = json_string_value (json_object_get (e, "type"));
      path = json_string_value (json_object_get (e, "path"));
      if (!type)
        return shim_refusef ("config.json: linux.namespaces[%zu].type: missing", i);
      for (size_t k = 0; k < sizeof ns_names / sizeof ns_names[0]; k++)
        if (strcmp (ns_names[k].name, type) == 0)
          flag = ns_names[k].flag;
      if (strcmp (type, "user") == 0)
        return shim_refusef ("config.json: linux.namespaces[%zu]: user namespaces are not supported by sysctr-shim", i);
      if (!flag)
        return shim_refusef ("config.json: linux.namespaces[%zu]: unknown namespace type \"%s\"", i, type);
      if (c->ns_present & flag)
        return shim_refusef ("config.json: linux.namespaces[%zu]: namespace \"%s\" listed twice", i, type);
      c->ns_present |= flag;
      if (path && *path)
        {
          int fd;
          /* Joining another container's mount namespace and then building a
           * root in it would rearrange that container's mounts. */
          if (flag == CLONE_NEWNS)
            return shim_refusef (
                "config.json: linux.namespaces[%zu]: joining a mount namespace (path) is not supported", i);
          fd = open (path, O_RDONLY | O_CLOEXEC);
          if (fd < 0)
            return shim_errorf (-errno, "config.json: linux.namespaces[%zu]: %s namespace %s", i, type, path);
          c->ns_fds[c->n_ns_fds] = fd;
          c->ns_types[c->n_ns_fds++] = flag;
        }
      else
        c->clone_flags |= flag;
    }
  if (!(c->ns_present & CLONE_NEWNS))
    return shim_refusef ("config.json: linux.namespaces: a mount namespace is required");
  return 0;
}

static int
parse_sysctl (json_t *obj, struct shim_config *c)
{
  const char *key;
  json_t *v;
  size_t i = 0, n;

  if (!json_is_object (obj))
    return shim_refusef ("config.json: linux.sysctl: not an object");
  n = json_object_size (obj);
  c->sysctl_keys = calloc (n + 1, sizeof (char *));
  c->sysctl_values = calloc (n + 1, sizeof (char *));
  if (!c->sysctl_keys || !c->sysctl_values)
    return shim_errorf (-ENOMEM, "config.json");
  json_object_foreach (obj, key, v)
    {
      int need;
      if (!json_is_string (v))
        return shim_refusef ("config.json: linux.sysctl.%s: not a string", key);
      /* Only keys that are per-namespace may be written: anything else would
       * change the host kernel. */
      if (has_prefix (key, "net."))
        need = CLONE_NEWNET;
      else if (has_prefix (key, "kernel.shm") || has_prefix (key, "kernel.msg") || strcmp (key, "kernel.sem") == 0
               || has_prefix (key, "fs.mqueue."))
        need = CLONE_NEWIPC;
      else
        return shim_refusef ("config.json: linux.sysctl: %s is not namespaced, refusing to change the host", key);
      if (!(c->ns_present & need))
        return shim_refusef ("config.json: linux.sysctl: %s needs a %s namespace", key,
                             need == CLONE_NEWNET ? "network" : "ipc");
      if (strstr (key, "..") || strchr (key, '/'))
        return shim_refusef ("config.json: linux.sysctl: invalid key \"%s\"", key);
      c->sysctl_keys[i] = strdup (key);
      c->sysctl_values[i] = strdup (json_string_value (v));
      if (!c->sysctl_keys[i] || !c->sysctl_values[i])
        return shim_errorf (-ENOMEM, "config.json");
      for (char *p = c->sysctl_keys[i]; *p; p++)
        if (*p == '.')
          *p = '/';
      c->n_sysctl = ++i;
    }
  return 0;
}

/* linux.devices: each node is bound from the host's /dev (the container's
 * /dev is nodev; a bound node is a mount of its own and keeps working). The
 * host node must be the device the config names. */
static int
parse_devices (json_t *arr, struct shim_config *c)
{
  static const char *const known[] = { "path", "type", "major", "minor", "fileMode", "uid", "gid", NULL };
  size_t i;
  json_t *e;
  int r;
  if (!json_is_array (arr))
    return shim_refusef ("config.json: linux.devices: not an array");
  c->devices = calloc (json_array_size (arr) + 1, sizeof *c->devices);
  if (!c->devices)
    return shim_errorf (-ENOMEM, "config.json");
  json_array_foreach (arr, i, e)
    {
      struct shim_device *d = &c->devices[c->n_devices];
      const char *type;
      uint64_t major, minor;
      struct stat st;
      char what[48];
      snprintf (what, sizeof what, "linux.devices[%zu]", i);
      if (!json_is_object (e) || (r = shim_check_keys (e, what, known)) < 0)
        return json_is_object (e) ? r : shim_refusef ("config.json: %s: not an object", what);
      if ((r = get_string (e, "path", what, &d->path)) < 0)
        return r;
      c->n_devices++;
      type = json_string_value (json_object_get (e, "type"));
      if (!d->path || !has_prefix (d->path, "/dev/") || strstr (d->path, "/../") || !type)
        return shim_refusef ("config.json: %s: needs a path under /dev and a type", what);
      if ((r = get_uint (json_object_get (e, "major"), "linux.devices[].major", UINT32_MAX, &major)) < 0
          || (r = get_uint (json_object_get (e, "minor"), "linux.devices[].minor", UINT32_MAX, &minor)) < 0)
        return r;
      if (strcmp (type, "c") != 0 && strcmp (type, "u") != 0 && strcmp (type, "b") != 0)
        return shim_refusef ("config.json: %s: type \"%s\" is not supported (c, u or b)", what, type);
      d->block = strcmp (type, "b") == 0;
      d->rdev = makedev ((unsigned) major, (unsigned) minor);
      /* --check of a tree being built: its /dev is the kernel's, at boot */
      if (check_root_fd >= 0)
        continue;
      if (stat (d->path, &st) < 0)
        return shim_errorf (-errno, "config.json: %s: %s on this host", what, d->path);
      if ((d->block ? !S_ISBLK (st.st_mode) : !S_ISCHR (st.st_mode)) || st.st_rdev != d->rdev)
        return shim_refusef ("config.json: %s: %s on this host is not the %s device %llu:%llu", what, d->path,
                             d->block ? "block" : "character", (unsigned long long) major, (unsigned long long) minor);
      if (json_object_get (e, "fileMode") || json_object_get (e, "uid") || json_object_get (e, "gid"))
        {
          json_t *fm = json_object_get (e, "fileMode");
          if ((fm && json_is_integer (fm) && (mode_t) (json_integer_value (fm) & 07777) != (st.st_mode & 07777))
              || (json_is_integer (json_object_get (e, "uid"))
                  && (uid_t) json_integer_value (json_object_get (e, "uid")) != st.st_uid)
              || (json_is_integer (json_object_get (e, "gid"))
                  && (gid_t) json_integer_value (json_object_get (e, "gid")) != st.st_gid))
            shim_warn ("%s: %s keeps the host node's mode and owner (it is bound, not created)", what, d->path);
        }
    }
  return 0;
}

static bool
json_empty (json_t *v)
{
  return !v || json_is_null (v) || (json_is_array (v) && json_array_size (v) == 0)
         || (json_is_object (v) && json_object_size (v) == 0);
}

static int
parse_linux (json_t *l, struct shim_config *c)
{
  static const char *const known[]
      = { "namespaces",    "uidMappings", "gidMappings",       "sysctl",  "resources", "cgroupsPath", "maskedPaths",
          "readonlyPaths", "mountLabel",  "rootfsPropagation", "devices", "seccomp",   NULL };
  json_t *v;
  int r;

  if (!json_is_object (l))
    return shim_refusef ("config.json: linux: missing or not an object");
  if ((r = shim_check_keys (l, "linux", known)) < 0)
    return r;
  if ((v = json_object_get (l, "seccomp")) && !json_is_null (v) && (r = seccomp_parse (v, &c->seccomp)) < 0)
    return r;
  if (!json_empty (json_object_get (l, "uidMappings")) || !json_empty (json_object_get (l, "gidMappings")))
    return shim_refusef ("config.json: linux.uidMappings: user namespaces are not supported by sysctr-shim");
  if (!json_empty (json_object_get (l, "devices")) && (r = parse_devices (json_object_get (l, "devices"), c)) < 0)
    return r;
  if ((r = parse_namespaces (json_object_get (l, "namespaces"), c)) < 0)
    return r;
  if ((v = json_object_get (l, "sysctl")) && !json_is_null (v) && (r = parse_sysctl (v, c)) < 0)
    return r;
  if ((r = get_strv (l, "maskedPaths", "linux", &c->masked_paths)) < 0
      || (r = get_strv (l, "readonlyPaths", "linux", &c->readonly_paths)) < 0)
    return r;
  for (char **p = c->masked_paths; p && *p; p++)
    if (**p != '/')
      return shim_refusef ("config.json: linux.maskedPaths: \"%s\" is not absolute", *p);
  for (char **p = c->readonly_paths; p && *p; p++)
    if (**p != '/')
      return shim_refusef ("config.json: linux.readonlyPaths: \"%s\" is not absolute", *p);
  /* The unit's cgroup is systemd's: limits belong in the unit file. */
  if (!json_empty (json_object_get (l, "resources")))
    shim_warn ("linux.resources: ignored, resource limits are set by the systemd unit");
  if ((v = json_object_get (l, "cgroupsPath")) && !json_empty (v)
      && !(json_is_string (v) && json_string_length (v) == 0))
    shim_warn ("linux.cgroupsPath: ignored, the container stays in the unit's cgroup");
  if ((r = lsm_label (l, "mountLabel", "linux.mountLabel", SHIM_LSM_SELINUX, &c->mount_label)) < 0)
    return r;
  if ((v = json_object_get (l, "rootfsPropagation")) && !json_is_null (v))
    {
      const char *s = json_string_value (v);
      if (!s)
        return shim_refusef ("config.json: linux.rootfsPropagation: not a string");
      c->rootfs_propagation = 0;
      for (size_t k = 0; k < sizeof mount_propagation_options / sizeof mount_propagation_options[0]; k++)
        if (strcmp (s, mount_propagation_options[k].name) == 0)
          c->rootfs_propagation = mount_propagation_options[k].prop;
      if (!c->rootfs_propagation || c->rootfs_propagation == MS_UNBINDABLE)
        return shim_refusef ("config.json: linux.rootfsPropagation: unsupported value \"%s\"", s);
    }
  return 0;
}

static int
parse_hooks (json_t *h)
{
  const char *key;
  json_t *v;
  if (!h || json_is_null (h))
    return 0;
  if (!json_is_object (h))
    return shim_refusef ("config.json: hooks: not an object");
  json_object_foreach (h, key, v)
    {
      if (!json_empty (v))
        return shim_refusef ("config.json: hooks.%s: hooks are not supported by sysctr-shim", key);
    }
  return 0;
}

/* org.sysctr.health.KEY: test (a JSON array of strings), interval,
 * timeout, start-period (ms), retries */
static int
parse_health (const char *key, const char *value, struct shim_config *c)
{
  if (strcmp (key, "test") == 0)
    {
      json_error_t je;
      json_t *doc = json_loads (value, 0, &je);
      json_t *wrap = json_pack ("{s:o}", "test", doc);
      int r = doc ? get_strv (wrap, "test", "annotations.org.sysctr.health.test", &c->health.test) : -EINVAL;
      json_decref (wrap);
      if (r < 0 || !c->health.test || !c->health.test[0])
        return shim_refusef ("config.json: annotations.org.sysctr.health.test: not a JSON array of strings");
      return 0;
    }
  char *end;
  errno = 0;
  unsigned long long v = strtoull (value, &end, 10);
  if (errno || end == value || *end || v > 86400000ULL)
    return shim_refusef ("config.json: annotations.org.sysctr.health.%s: not a number of milliseconds", key);
  if (strcmp (key, "interval") == 0)
    c->health.interval_ms = v;
  else if (strcmp (key, "timeout") == 0)
    c->health.timeout_ms = v;
  else if (strcmp (key, "start-period") == 0)
    c->health.start_period_ms = v;
  else if (strcmp (key, "retries") == 0 && v <= 100)
    c->health.retries = (unsigned) v;
  else
    return shim_refusef ("config.json: annotations.org.sysctr.health.%s: unknown or out of range", key);
  return 0;
}

static int
parse_annotations (json_t *a, struct shim_config *c)
{
  const char *key;
  json_t *v;
  size_t ignored = 0;
  if (!a || json_is_null (a))
    return 0;
  if (!json_is_object (a))
    return shim_refusef ("config.json: annotations: not an object");
  json_object_foreach (a, key, v)
    {
      if (!json_is_string (v))
        return shim_refusef ("config.json: annotations.%s: not a string", key);
      if (strcmp (key, "org.sysctr.init") == 0)
        {
          if (strcmp (json_string_value (v), "false") == 0)
            c->use_init = false;
          else if (strcmp (json_string_value (v), "true") == 0)
            c->use_init = true;
          else
            return shim_refusef ("config.json: annotations.org.sysctr.init: must be \"true\" or \"false\"");
        }
      else if (strncmp (key, "org.sysctr.health.", 18) == 0)
        {
          int r = parse_health (key + 18, json_string_value (v), c);
          if (r < 0)
            return r;
        }
      else
        ignored++;
    }
  if (c->health.test == NULL && c->health.interval_ms)
    return shim_refusef ("config.json: annotations: org.sysctr.health.* without org.sysctr.health.test");
  if (c->health.test && (c->health.interval_ms == 0 || c->health.timeout_ms == 0 || c->health.retries == 0))
    return shim_refusef ("config.json: annotations: org.sysctr.health.test needs interval, timeout and retries");
  if (ignored)
    shim_warn ("annotations: %zu annotation(s) not used by sysctr-shim, ignored", ignored);
  return 0;
}

static int
parse_root (json_t *root, struct shim_config *c)
{
  static const char *const known[] = { "path", "readonly", NULL };
  int r;
  if (!json_is_object (root))
    return shim_refusef ("config.json: root: missing or not an object");
  if ((r = shim_check_keys (root, "root", known)) < 0 || (r = get_string (root, "path", "root", &c->root_path)) < 0
      || (r = get_bool (root, "readonly", "root", &c->root_readonly)) < 0)
    return r;
  if (!c->root_path || !*c->root_path)
    return shim_refusef ("config.json: root.path: missing");
  return 0;
}

static int
parse_document (json_t *doc, int bundle_fd, const char *bundle_path, struct shim_config *c)
{
  static const char *const known[] = { "ociVersion", "process",     "root",  "hostname", "domainname", "mounts",
                                       "hooks",      "annotations", "linux", "platform", NULL };
  json_t *v;
  int r;

  if (!json_is_object (doc))
    return shim_refusef ("config.json: not a JSON object");
  if ((r = shim_check_keys (doc, "", known)) < 0)
    return r;
  v = json_object_get (doc, "ociVersion");
  if (v && (!json_is_string (v) || !has_prefix (json_string_value (v), "1.")))
    shim_warn ("ociVersion: not 1.x, ignored; reading the config as runtime-spec 1.x");
  if (json_object_get (doc, "platform"))
    shim_warn ("platform: ignored");
  if ((r = parse_hooks (json_object_get (doc, "hooks"))) < 0
      || (r = parse_annotations (json_object_get (doc, "annotations"), c)) < 0
      || (r = parse_process (json_object_get (doc, "process"), c)) < 0
      || (r = parse_root (json_object_get (doc, "root"), c)) < 0
      || (r = parse_linux (json_object_get (doc, "linux"), c)) < 0
      || (r = get_string (doc, "hostname", "", &c->hostname)) < 0
      || (r = get_string (doc, "domainname", "", &c->domainname)) < 0)
    return r;
  if ((c->hostname && *c->hostname) || (c->domainname && *c->domainname))
    if (!(c->ns_present & CLONE_NEWUTS))
      return shim_refusef ("config.json: hostname: setting a hostname needs a uts namespace");

  v = json_object_get (doc, "mounts");
  if (v && !json_is_null (v))
    {
      size_t i;
      json_t *e;
      if (!json_is_array (v))
        return shim_refusef ("config.json: mounts: not an array");
      c->mounts = calloc (json_array_size (v) + 1, sizeof (struct shim_mount));
      if (!c->mounts)
        return shim_errorf (-ENOMEM, "config.json");
      json_array_foreach (v, i, e)
        {
          c->n_mounts = i + 1;
          if ((r = parse_mount (c, e, i, bundle_fd, bundle_path, &c->mounts[i])) < 0)
            return r;
        }
    }
  return 0;
}

static struct shim_config *
config_new (void)
{
  struct shim_config *c = calloc (1, sizeof *c);
  if (!c)
    return NULL;
  c->use_init = true;
  c->rootfs_propagation = MS_SLAVE;
  return c;
}

static int
parse_json (json_t *doc, int bundle_fd, const char *bundle_path, struct shim_config **ret)
{
  _cleanup_config_ struct shim_config *c = config_new ();
  int r;
  if (!c)
    return shim_errorf (-ENOMEM, "config.json");
  r = store_init (c, bundle_path);
  if (r == 0)
    r = parse_document (doc, bundle_fd, bundle_path, c);
  if (r < 0)
    return r;
  *ret = steal_ptr (&c);
  return 0;
}

int
config_parse_string (const char *json, int bundle_fd, struct shim_config **ret)
{
  json_error_t err;
  json_t *doc = json_loads (json, JSON_REJECT_DUPLICATES, &err);
  int r;
  if (!doc)
    return shim_refusef ("config.json: invalid JSON at line %d: %s", err.line, err.text);
  r = parse_json (doc, bundle_fd, ".", ret);
  json_decref (doc);
  return r;
}

int
config_load (int bundle_fd, const char *bundle_path, struct shim_config **ret)
{
  _cleanup_close_ int fd = openat (bundle_fd, "config.json", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  _cleanup_free_ char *buf = NULL;
  size_t len = 0;
  struct stat st;
  json_error_t err;
  json_t *doc;
  int r;

  if (fd < 0 || fstat (fd, &st) < 0)
    return shim_errorf (-errno, "%s/config.json", bundle_path);
  if (!S_ISREG (st.st_mode) || st.st_size > 16 * 1024 * 1024)
    return shim_refusef ("%s/config.json: not a regular file of at most 16 MiB", bundle_path);
  /* One read, not json_loadfd(): jansson reads an fd a byte per syscall. */
  buf = malloc ((size_t) st.st_size + 1);
  if (!buf)
    return shim_errorf (-ENOMEM, "%s/config.json", bundle_path);
  while (len < (size_t) st.st_size)
    {
      ssize_t n = read (fd, buf + len, (size_t) st.st_size - len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return shim_errorf (-errno, "%s/config.json", bundle_path);
      if (n == 0)
        break;
      len += (size_t) n;
    }
  /* buf is _cleanup_free_; clang 14's analyzer does not model cleanup
   * attributes */
  // NOLINTNEXTLINE(clang-analyzer-unix.Malloc)
  doc = json_loadb (buf, len, JSON_REJECT_DUPLICATES, &err);
  if (!doc)
    return shim_refusef ("%s/config.json: invalid JSON at line %d: %s", bundle_path, err.line, err.text);
  r = parse_json (doc, bundle_fd, bundle_path, ret);
  json_decref (doc);
  if (r == 0)
    {
      (*ret)->text = steal_ptr (&buf);
      (*ret)->text_len = len;
    }
  return r;
}
