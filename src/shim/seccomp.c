/* seccomp.c: OCI linux.seccomp, compiled to a BPF program before clone().
 *
 * Parsing (seccomp_parse) checks every field up front, like the rest of
 * config.c. Compiling with libseccomp costs ~9 ms for a default-sized
 * profile, four times the whole start path, so `sysctr-shim --check` (run
 * by sysctr at install) writes the program into the bundle as seccomp.bpf,
 * keyed by the exact config.json and the architecture; a start finds it
 * there and only compiles when the key does not match (a hand-edited
 * config, a bundle built on another architecture). The bundle is written
 * by root only and never mounted into the container, like config.json.
 *
 * The program is loaded by the payload itself (process.c) with one
 * seccomp(2) call: no allocation in the vfork()ed child.
 */
#include "shim.h"

#include <fcntl.h>
#include <jansson.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/stat.h>

#define CACHE_NAME "seccomp.bpf"
#define CACHE_MAGIC "SYSCTR-SECCOMP-1\n"
#define MAX_CACHE (4 * 1024 * 1024)

static const struct
{
  const char *name;
  uint32_t action; /* SCMP_ACT_ERRNO / SCMP_ACT_TRACE take the errno below */
  bool takes_errno;
} actions[] = {
  { "SCMP_ACT_KILL", SCMP_ACT_KILL_THREAD, false },
  { "SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD, false },
  { "SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS, false },
  { "SCMP_ACT_TRAP", SCMP_ACT_TRAP, false },
  { "SCMP_ACT_ERRNO", SCMP_ACT_ERRNO (0), true },
  { "SCMP_ACT_TRACE", SCMP_ACT_TRACE (0), true },
  { "SCMP_ACT_ALLOW", SCMP_ACT_ALLOW, false },
  { "SCMP_ACT_LOG", SCMP_ACT_LOG, false },
};

static const struct
{
  const char *name;
  enum scmp_compare op;
} ops[] = {
  { "SCMP_CMP_NE", SCMP_CMP_NE },
  { "SCMP_CMP_LT", SCMP_CMP_LT },
  { "SCMP_CMP_LE", SCMP_CMP_LE },
  { "SCMP_CMP_EQ", SCMP_CMP_EQ },
  { "SCMP_CMP_GE", SCMP_CMP_GE },
  { "SCMP_CMP_GT", SCMP_CMP_GT },
  { "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
};

static const struct
{
  const char *name;
  unsigned flag;
} flags[] = {
  { "SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC },
  { "SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG },
  { "SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW },
};

/* action name (+ errnoRet) -> libseccomp action */
static int
parse_action (json_t *obj, const char *akey, const char *ekey, const char *what, uint32_t *ret)
{
  const char *name = json_string_value (json_object_get (obj, akey));
  json_t *e = json_object_get (obj, ekey);
  if (!name)
    return shim_refusef ("config.json: %s.%s: missing or not a string", what, akey);
  for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
    if (strcmp (actions[i].name, name) == 0)
      {
        uint32_t a = actions[i].action;
        if (actions[i].takes_errno)
          {
            json_int_t n = 1; /* EPERM, as runc */
            if (e && !json_is_null (e))
              {
                if (!json_is_integer (e) || json_integer_value (e) < 0 || json_integer_value (e) > 4095)
                  return shim_refusef ("config.json: %s.%s: not an errno", what, ekey);
                n = json_integer_value (e);
              }
            a = actions[i].action == SCMP_ACT_TRACE (0) ? SCMP_ACT_TRACE ((uint16_t) n) : SCMP_ACT_ERRNO ((uint16_t) n);
          }
        *ret = a;
        return 0;
      }
  if (strcmp (name, "SCMP_ACT_NOTIFY") == 0)
    return shim_refusef ("config.json: %s.%s: SCMP_ACT_NOTIFY needs a seccomp agent, which sysctr-shim does not run",
                         what, akey);
  return shim_refusef ("config.json: %s.%s: unknown action \"%s\"", what, akey, name);
}

/* OCI "SCMP_ARCH_X86_64" -> libseccomp's "x86_64" */
static uint32_t
arch_token (const char *name)
{
  char lower[32];
  size_t i;
  if (strncmp (name, "SCMP_ARCH_", 10) != 0 || strlen (name + 10) >= sizeof lower)
    return 0;
  for (i = 0; name[10 + i]; i++)
    lower[i] = (char) (name[10 + i] >= 'A' && name[10 + i] <= 'Z' ? name[10 + i] - 'A' + 'a' : name[10 + i]);
  lower[i] = '\0';
  return seccomp_arch_resolve_name (lower);
}

/* Walks the profile; with @ctx, adds what it reads to the filter. */
static int
walk (json_t *s, scmp_filter_ctx ctx)
{
  static const char *const known[] = { "defaultAction", "defaultErrnoRet", "architectures",    "flags",
                                       "syscalls",      "listenerPath",    "listenerMetadata", NULL };
  static const char *const known_rule[] = { "names", "action", "errnoRet", "args", NULL };
  static const char *const known_arg[] = { "index", "value", "valueTwo", "op", NULL };
  uint32_t default_action = SCMP_ACT_KILL_PROCESS;
  json_t *v, *rule;
  size_t i;
  int r;

  if (!json_is_object (s))
    return shim_refusef ("config.json: linux.seccomp: not an object");
  if ((r = shim_check_keys (s, "linux.seccomp", known)) < 0)
    return r;
  if ((v = json_object_get (s, "listenerPath")) && !(json_is_string (v) && json_string_length (v) == 0))
    return shim_refusef ("config.json: linux.seccomp.listenerPath: seccomp agents are not supported");
  if ((r = parse_action (s, "defaultAction", "defaultErrnoRet", "linux.seccomp", &default_action)) < 0)
    return r;

  json_array_foreach (json_object_get (s, "architectures"), i, v)
    {
      uint32_t a = json_is_string (v) ? arch_token (json_string_value (v)) : 0;
      if (!a)
        return shim_refusef ("config.json: linux.seccomp.architectures[%zu]: unknown architecture", i);
      if (ctx && (r = seccomp_arch_add (ctx, a)) < 0 && r != -EEXIST)
        return shim_errorf (r, "linux.seccomp: architecture %s", json_string_value (v));
    }
  if ((v = json_object_get (s, "architectures")) && !json_is_array (v) && !json_is_null (v))
    return shim_refusef ("config.json: linux.seccomp.architectures: not an array");
  if ((v = json_object_get (s, "flags")) && !json_is_array (v) && !json_is_null (v))
    return shim_refusef ("config.json: linux.seccomp.flags: not an array");
  json_array_foreach (json_object_get (s, "flags"), i, v)
    {
      bool found = false;
      for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
        found |= json_is_string (v) && strcmp (json_string_value (v), flags[k].name) == 0;
      if (!found)
        return shim_refusef ("config.json: linux.seccomp.flags[%zu]: unknown flag", i);
    }

  v = json_object_get (s, "syscalls");
  if (v && !json_is_array (v) && !json_is_null (v))
    return shim_refusef ("config.json: linux.seccomp.syscalls: not an array");
  json_array_foreach (v, i, rule)
    {
      char what[64];
      struct scmp_arg_cmp cmp[6];
      unsigned n_cmp = 0;
      bool repeated = false;
      uint32_t action = SCMP_ACT_KILL_PROCESS;
      json_t *names, *args, *name, *arg;
      size_t k;

      snprintf (what, sizeof what, "linux.seccomp.syscalls[%zu]", i);
      if (!json_is_object (rule))
        return shim_refusef ("config.json: %s: not an object", what);
      if ((r = shim_check_keys (rule, what, known_rule)) < 0
          || (r = parse_action (rule, "action", "errnoRet", what, &action)) < 0)
        return r;
      names = json_object_get (rule, "names");
      if (!json_is_array (names))
        return shim_refusef ("config.json: %s.names: missing or not an array", what);
      args = json_object_get (rule, "args");
      if (args && !json_is_array (args) && !json_is_null (args))
        return shim_refusef ("config.json: %s.args: not an array", what);
      json_array_foreach (args, k, arg)
        {
          const char *op;
          json_t *idx, *val, *val2;
          bool found = false;
          if (!json_is_object (arg) || (r = shim_check_keys (arg, what, known_arg)) < 0)
            return json_is_object (arg) ? r : shim_refusef ("config.json: %s.args[%zu]: not an object", what, k);
          if (n_cmp >= 6)
            return shim_refusef ("config.json: %s.args: more than 6 conditions", what);
          idx = json_object_get (arg, "index");
          val = json_object_get (arg, "value");
          val2 = json_object_get (arg, "valueTwo");
          op = json_string_value (json_object_get (arg, "op"));
          if (!json_is_integer (idx) || json_integer_value (idx) < 0 || json_integer_value (idx) > 5)
            return shim_refusef ("config.json: %s.args[%zu].index: not in 0..5", what, k);
          if (!json_is_integer (val) || (val2 && !json_is_null (val2) && !json_is_integer (val2)))
            return shim_refusef ("config.json: %s.args[%zu]: value not an integer", what, k);
          for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++)
            if (op && strcmp (op, ops[o].name) == 0)
              {
                cmp[n_cmp].op = ops[o].op;
                found = true;
              }
          if (!found)
            return shim_refusef ("config.json: %s.args[%zu].op: unknown comparison", what, k);
          cmp[n_cmp].arg = (unsigned) json_integer_value (idx);
          /* jansson's integers are signed: a value above INT64_MAX arrives
           * as its two's complement, which is the same 64 bits */
          cmp[n_cmp].datum_a = (scmp_datum_t) json_integer_value (val);
          cmp[n_cmp].datum_b = val2 && json_is_integer (val2) ? (scmp_datum_t) json_integer_value (val2) : 0;
          for (unsigned p = 0; p < n_cmp; p++)
            repeated |= cmp[p].arg == cmp[n_cmp].arg;
          n_cmp++;
        }
      json_array_foreach (names, k, name)
        {
          int nr;
          if (!json_is_string (name) || json_string_length (name) == 0)
            return shim_refusef ("config.json: %s.names[%zu]: not a syscall name", what, k);
          if (!ctx)
            continue;
          nr = seccomp_syscall_resolve_name (json_string_value (name));
          /* a name this architecture (or libseccomp) does not know cannot
           * be called here: nothing to add (runc skips them too) */
          if (nr == __NR_SCMP_ERROR)
            continue;
          if (action == default_action)
            continue;
          /* libseccomp cannot AND two conditions on one argument: runc
           * adds such a rule once per condition, and so does this */
          if (repeated)
            {
              for (unsigned p = 0; p < n_cmp; p++)
                if ((r = seccomp_rule_add_array (ctx, action, nr, 1, &cmp[p])) < 0)
                  return shim_errorf (r, "%s: %s", what, json_string_value (name));
            }
          else if ((r = seccomp_rule_add_array (ctx, action, nr, n_cmp, cmp)) < 0)
            return shim_errorf (r, "%s: %s", what, json_string_value (name));
        }
    }
  return 0;
}

static unsigned
filter_flags (json_t *s)
{
  unsigned f = 0;
  size_t i;
  json_t *v;
  json_array_foreach (json_object_get (s, "flags"), i, v)
    for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
      if (json_is_string (v) && strcmp (json_string_value (v), flags[k].name) == 0)
        f |= flags[k].flag;
  return f;
}

int
seccomp_parse (json_t *s, struct shim_seccomp **ret)
{
  struct shim_seccomp *sc;
  int r = walk (s, NULL);
  if (r < 0)
    return r;
  sc = calloc (1, sizeof *sc);
  if (!sc)
    return shim_errorf (-ENOMEM, "config.json");
  sc->flags = filter_flags (s);
  sc->profile = json_incref (s);
  *ret = sc;
  return 0;
}

void
seccomp_free (struct shim_seccomp *sc)
{
  if (!sc)
    return;
  free (sc->prog.filter);
  json_decref (sc->profile);
  free (sc);
}

void
seccomp_release_profile (struct shim_seccomp *sc)
{
  json_decref (sc->profile);
  sc->profile = NULL;
}

int
seccomp_compile (struct shim_seccomp *sc)
{
  uint32_t default_action = SCMP_ACT_KILL_PROCESS;
  scmp_filter_ctx ctx;
  _cleanup_close_ int fd = -1;
  struct stat st;
  void *buf;
  int r;

  if ((r = parse_action (sc->profile, "defaultAction", "defaultErrnoRet", "linux.seccomp", &default_action)) < 0)
    return r;
  ctx = seccomp_init (default_action);
  if (!ctx)
    return shim_errorf (-ENOMEM, "linux.seccomp: seccomp_init");
  /* a binary tree instead of a linear list: ~370 rules are checked on
   * every syscall the payload makes */
  (void) seccomp_attr_set (ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
  r = walk (sc->profile, ctx);
  if (r == 0)
    {
      fd = memfd_create ("seccomp", MFD_CLOEXEC);
      if (fd < 0)
        r = shim_errorf (-errno, "linux.seccomp: memfd_create");
      else if ((r = seccomp_export_bpf (ctx, fd)) < 0)
        r = shim_errorf (r, "linux.seccomp: exporting the filter");
    }
  seccomp_release (ctx);
  if (r < 0)
    return r;
  if (fstat (fd, &st) < 0)
    return shim_errorf (-errno, "linux.seccomp");
  if (st.st_size <= 0 || st.st_size % (off_t) sizeof (struct sock_filter) != 0
      || st.st_size / (off_t) sizeof (struct sock_filter) > BPF_MAXINSNS)
    return shim_refusef ("linux.seccomp: the compiled filter has %lld bytes, more than the kernel takes",
                         (long long) st.st_size);
  buf = malloc ((size_t) st.st_size);
  if (!buf)
    return shim_errorf (-ENOMEM, "linux.seccomp");
  if (pread (fd, buf, (size_t) st.st_size, 0) != st.st_size)
    {
      free (buf);
      return shim_errorf (-EIO, "linux.seccomp: reading the compiled filter");
    }
  free (sc->prog.filter);
  sc->prog.filter = buf;
  sc->prog.len = (unsigned short) (st.st_size / (off_t) sizeof (struct sock_filter));
  return 0;
}

/* The cache: CACHE_MAGIC "arch=%08x\nkey=%zu\n" KEY "bpf=%zu\n" BPF, where KEY
 * is the whole config.json it was compiled from: comparing bytes is
 * cheaper than any canonical form, and a config edited by hand simply
 * compiles again. */
static int
cache_header (size_t key_len, char *buf, size_t size)
{
  return snprintf (buf, size, CACHE_MAGIC "arch=%08x\nkey=%zu\n", seccomp_arch_native (), key_len);
}

int
seccomp_cache_load (struct shim_seccomp *sc, int bundle_fd, const char *key, size_t klen)
{
  _cleanup_close_ int fd = openat (bundle_fd, CACHE_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  _cleanup_free_ char *data = NULL;
  char header[128], *p;
  size_t hlen, blen;
  struct stat st;
  ssize_t n;

  if (fd < 0 || fstat (fd, &st) < 0 || !S_ISREG (st.st_mode) || st.st_size > MAX_CACHE)
    return 0;
  data = malloc ((size_t) st.st_size + 1);
  if (!data)
    return 0;
  n = pread (fd, data, (size_t) st.st_size, 0);
  if (n != st.st_size)
    return 0;
  data[n] = '\0';
  hlen = (size_t) cache_header (klen, header, sizeof header);
  if ((size_t) n < hlen + klen || memcmp (data, header, hlen) != 0 || memcmp (data + hlen, key, klen) != 0)
    return 0; /* another config or architecture: compile */
  p = data + hlen + klen;
  if (sscanf (p, "bpf=%zu\n", &blen) != 1 || !(p = strchr (p, '\n')))
    return 0;
  p++;
  if (blen == 0 || blen % sizeof (struct sock_filter) != 0 || blen / sizeof (struct sock_filter) > BPF_MAXINSNS
      || (size_t) (data + n - p) != blen)
    return 0;
  sc->prog.filter = malloc (blen);
  if (!sc->prog.filter)
    return 0;
  memcpy (sc->prog.filter, p, blen);
  sc->prog.len = (unsigned short) (blen / sizeof (struct sock_filter));
  return 1;
}

int
seccomp_cache_write (const struct shim_seccomp *sc, int bundle_fd, const char *key, size_t klen)
{
  char header[128], bpfline[64];
  size_t blen = (size_t) sc->prog.len * sizeof (struct sock_filter);
  _cleanup_close_ int fd = -1;
  int hlen = cache_header (klen, header, sizeof header);
  int llen = snprintf (bpfline, sizeof bpfline, "bpf=%zu\n", blen);
  struct iovec iov[] = {
    { header, (size_t) hlen },
    { (void *) key, klen },
    { bpfline, (size_t) llen },
    { sc->prog.filter, blen },
  };
  size_t total = 0;

  for (size_t i = 0; i < sizeof iov / sizeof iov[0]; i++)
    total += iov[i].iov_len;
  (void) unlinkat (bundle_fd, CACHE_NAME ".tmp", 0);
  fd = openat (bundle_fd, CACHE_NAME ".tmp", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return shim_errorf (-errno, "writing %s", CACHE_NAME);
  if (writev (fd, iov, sizeof iov / sizeof iov[0]) != (ssize_t) total || fsync (fd) < 0)
    return shim_errorf (errno ? -errno : -EIO, "writing %s", CACHE_NAME);
  if (renameat (bundle_fd, CACHE_NAME ".tmp", bundle_fd, CACHE_NAME) < 0)
    return shim_errorf (-errno, "writing %s", CACHE_NAME);
  return 0;
}
