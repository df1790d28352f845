/* sysctr-shim: shared declarations.
 *
 * Error convention (systemd/crun style): functions return 0 or -errno and
 * record what failed with shim_errorf()/shim_refusef(); only main() (or the
 * child's top level) prints, as one line "sysctr-shim: <what>: <why>".
 */
#pragma once

#include <errno.h>
#include <linux/filter.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#define SHIM_EXIT_FAILURE 125

/* ---- errors -------------------------------------------------------------- */

/* Record "<what>: strerror(-r)" and return r (r < 0). */
int shim_errorf (int r, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* Record a complete "<what>: <why>" message (no errno text); returns -EINVAL. */
int shim_refusef (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
/* Print the recorded error as one line on stderr. */
void shim_log_error (void);
/* The container's name, sent with the shim's own journal lines. */
void shim_log_set_name (const char *name);
/* From now on the shim's own lines go to stderr only (after entering a
 * container: its /run is not the host's). */
void shim_log_stderr_only (void);
/* One warning line on stderr. */
void shim_warn (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

/* -errno after a failed call; never 0, so a caller testing "< 0" cannot take
 * the failure for success (and read an output the callee did not write). */
static inline int
negative_errno (void)
{
  int e = errno;
  return e > 0 ? -e : -EIO;
}

/* What failed in the payload's last steps (credentials, fds, execve),
 * recorded without formatting: those steps run in a vfork()ed child that
 * shares the init's memory, so they may only write to their own stack. The
 * line is "WHAT[ ARG][ NUM]: strerror[ (HINT)]"; all pointers are constants
 * or point into the configuration. */
struct shim_step_error
{
  const char *what;
  const char *arg;
  long num; /* < 0: none */
  const char *hint;
};

/* ---- cleanup helpers ----------------------------------------------------- */

static inline void
closep (int *fd)
{
  if (*fd >= 0)
    {
      int saved = errno;
      close (*fd);
      errno = saved;
    }
}
static inline void
freep (void *p)
{
  free (*(void **) p);
}
#define _cleanup_close_ __attribute__ ((cleanup (closep)))
#define _cleanup_free_ __attribute__ ((cleanup (freep)))

static inline void *
steal_ptr (void *p)
{
  void *r = *(void **) p;
  *(void **) p = NULL;
  return r;
}

static inline int
steal_fd (int *fd)
{
  int r = *fd;
  *fd = -1;
  return r;
}

/* ---- parsed configuration ------------------------------------------------ */

enum shim_mount_kind
{
  SHIM_MOUNT_BIND,
  SHIM_MOUNT_FS,     /* a fresh filesystem instance: tmpfs proc sysfs devpts mqueue */
  SHIM_MOUNT_CGROUP, /* read-only rbind of the host's /sys/fs/cgroup */
};

struct shim_mount
{
  char *destination;
  char *type;   /* filesystem type for SHIM_MOUNT_FS */
  char *source; /* for reporting only */
  enum shim_mount_kind kind;
  bool recursive;
  uint64_t attr_set; /* MOUNT_ATTR_* */
  uint64_t attr_clr;
  uint64_t propagation; /* MS_PRIVATE/MS_SLAVE/MS_SHARED/MS_UNBINDABLE or 0 */
  bool propagation_rec;
  char **data; /* NULL-terminated "key" or "key=value" for fsconfig */
};

enum
{
  SHIM_CAP_BOUNDING,
  SHIM_CAP_EFFECTIVE,
  SHIM_CAP_PERMITTED,
  SHIM_CAP_INHERITABLE,
  SHIM_CAP_AMBIENT,
  SHIM_CAP_N_SETS,
};

struct shim_rlimit
{
  int resource;
  uint64_t soft, hard;
};

struct shim_device
{
  char *path; /* in the container and on the host */
  bool block;
  dev_t rdev;
};

enum shim_lsm
{
  SHIM_LSM_APPARMOR,
  SHIM_LSM_SELINUX,
};

struct shim_seccomp
{
  char *key;              /* the profile as canonical JSON: what the cache is keyed on */
  struct json_t *profile; /* linux.seccomp */
  unsigned flags;         /* SECCOMP_FILTER_FLAG_* */
  struct sock_fprog prog; /* filled by seccomp_compile() or seccomp_cache_load() */
};

/* A health check (config.json annotations org.sysctr.health.*, written by
 * sysctr install from the image's Healthcheck): run in the container every
 * interval, as sysctr exec runs a command (health.c). */
struct shim_health
{
  char **test; /* NULL: none */
  uint64_t interval_ms, timeout_ms, start_period_ms;
  unsigned retries;
};

struct shim_config
{
  /* process */
  char **args;
  char **env;
  char *cwd;
  uid_t uid;
  gid_t gid;
  gid_t *additional_gids;
  size_t n_additional_gids;
  bool has_umask;
  mode_t umask;
  uint64_t caps[SHIM_CAP_N_SETS];
  struct shim_rlimit *rlimits;
  size_t n_rlimits;
  bool no_new_privileges;
  bool has_oom_score_adj;
  int oom_score_adj;

  /* root */
  char *root_path;
  bool root_readonly;

  char *hostname;
  char *domainname;

  struct shim_mount *mounts;
  size_t n_mounts;

  /* linux */
  int clone_flags; /* CLONE_NEW* to create */
  int ns_fds[8];   /* namespaces to join, opened during validation */
  int ns_types[8];
  size_t n_ns_fds;
  int ns_present; /* CLONE_NEW* that the container has (new or joined) */
  char **masked_paths;
  char **readonly_paths;
  char **sysctl_keys;
  char **sysctl_values;
  size_t n_sysctl;
  unsigned long rootfs_propagation;

  bool use_init;
  struct shim_health health;
  struct shim_seccomp *seccomp; /* NULL: no filter */
  char *text;                   /* config.json as read (the seccomp cache's key) */
  size_t text_len;
  struct shim_device *devices; /* linux.devices */
  size_t n_devices;
  char *apparmor_profile; /* applied where AppArmor is enabled, else NULL */
  char *selinux_label;    /* likewise for SELinux */
  char *mount_label;

  /* The sysctr state directories this bundle may live in (store.c): never
   * bound writable into a container. */
  dev_t store_dev[2];
  ino_t store_ino[2];
  char *store_path[2];
  size_t n_store;
};

/* config.c */
int config_load (int bundle_fd, const char *bundle_path, struct shim_config **ret);
int config_parse_string (const char *json, int bundle_fd, struct shim_config **ret);
/* write(2) all of buf: 0, or -errno (-EIO for a write that made no
 * progress without an error); retried on EINTR and short writes. */
static inline int
shim_write_all (int fd, const void *buf, size_t len)
{
  const char *p = (const char *) buf;
  while (len > 0)
    {
      ssize_t n = write (fd, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -errno;
      if (n == 0)
        return -EIO;
      p += n;
      len -= (size_t) n;
    }
  return 0;
}

void config_free (struct shim_config *c);
void strv_free (char **v);
static inline void
config_freep (struct shim_config **c)
{
  config_free (*c);
}
static inline void
strv_freep (char ***v)
{
  strv_free (*v);
}
#define _cleanup_config_ __attribute__ ((cleanup (config_freep)))
#define _cleanup_strv_ __attribute__ ((cleanup (strv_freep)))
/* Keys of a JSON object must all be in `known` (NULL-terminated); `what`
 * names the object in the refusal ("" for the top level). */
int shim_check_keys (struct json_t *obj, const char *what, const char *const *known);
bool lsm_enabled (enum shim_lsm lsm);
/* --check mode (main.c): @root_fd, or -1, is the tree bind sources resolve in */
void config_set_check (int root_fd);

/* seccomp.c */
int seccomp_parse (struct json_t *profile, struct shim_seccomp **ret);
void seccomp_free (struct shim_seccomp *sc);
int seccomp_compile (struct shim_seccomp *sc);
/* 1: the bundle's seccomp.bpf was compiled from the config.json @key and
 * was loaded; 0: not */
int seccomp_cache_load (struct shim_seccomp *sc, int bundle_fd, const char *key, size_t klen);
int seccomp_cache_write (const struct shim_seccomp *sc, int bundle_fd, const char *key, size_t klen);
/* Frees the parsed profile: the compiled program is all a start needs. */
void seccomp_release_profile (struct shim_seccomp *sc);

/* store.c */
int store_init (struct shim_config *c, const char *bundle_abs);
int store_check_source (const struct shim_config *c, int src_fd, const char *what);
const char *store_inside (const struct shim_config *c, const char *src_path, size_t i);

/* caps.c */
int cap_from_name (const char *name);
const char *cap_name (int cap);
int caps_last_cap (void);
int caps_apply (const struct shim_config *c, int last_cap, struct shim_step_error *err);
int caps_restrict_init (int last_cap);

/* mounts.c */
int mounts_setup (const struct shim_config *c, int rootfs_fd, const char *root_path, const char *notify_dir);

/* notify.c */
#define SHIM_NOTIFY_QUEUE_MAX 64
#define SHIM_NOTIFY_STATUS_INTERVAL_MS 100
struct shim_notify_msg
{
  struct shim_notify_msg *next;
  bool status_only;
  size_t len;
  char text[];
};
struct shim_notify
{
  int listen_fd;   /* bound socket inside the private directory */
  int dir_fd;      /* O_PATH fd of the private directory */
  int upstream_fd; /* socket connected to NOTIFY_SOCKET */
  char *dir_path;
  char *upstream; /* value of NOTIFY_SOCKET */
  bool stopping;  /* a stop signal arrived: EXTEND_TIMEOUT_USEC= is dropped */
  bool reconnected;
  struct shim_notify_msg *head, *tail;
  size_t queued;
  unsigned dropped;
  uint64_t last_status_ms;
};
#define SHIM_NOTIFY_CONTAINER_DIR "/run/sysctr/notify"
#define SHIM_NOTIFY_CONTAINER_SOCKET SHIM_NOTIFY_CONTAINER_DIR "/notify"
int notify_setup (struct shim_notify *n, const char *name, uid_t uid, gid_t gid);
/* Reads what the container sent into the queue. */
void notify_receive (struct shim_notify *n);
/* Sends what may be sent now. Returns the ms to wait before the next send
 * (-1: none pending, or wait for POLLOUT when *want_write). */
int notify_flush (struct shim_notify *n, bool *want_write);
void notify_cleanup (struct shim_notify *n);
bool notify_line_allowed (const char *line, size_t len);
size_t notify_filter (const char *in, size_t len, bool stopping, char *out, bool *status_only);

/* init.c */
void shim_release_code (void);
_Noreturn void init_run (pid_t payload, int status_fd, const struct shim_config *c);

/* process.c */
struct shim_exec
{
  char **argv;
  char **envp;
  char *listen_pid_slot; /* points into envp: "LISTEN_PID=" + room for digits */
  unsigned n_listen_fds;
  int last_cap;        /* read on the host, so the child opens no file for it */
  char *apparmor_exec; /* "exec PROFILE", or NULL */
};
int exec_prepare (const struct shim_config *c, unsigned n_listen_fds, bool notify, struct shim_exec *e);
void exec_free (struct shim_exec *e);
int shim_apply_limits (const struct shim_config *c);
int exec_payload (const struct shim_config *c, struct shim_exec *e, struct shim_step_error *err);

/* exec.c: sysctr-shim --exec */
struct shim_exec_request
{
  pid_t shim_pid;     /* the unit's main process */
  const char *bundle; /* NULL: the shim's working directory */
  const char *name;   /* the container: its shim must be in NAME.service, or NULL */
  bool tty;
  const char *user;    /* UID[:GID] or NULL */
  const char *workdir; /* or NULL */
  char **env;          /* K=V to set */
  size_t n_env;
  char **argv;
};
/* Returns the exit status to exit with, or -errno (error recorded). */
int shim_exec_main (const struct shim_exec_request *rq);

/* health.c: the health check of a running container, driven by the shim's
 * relay loop */
enum shim_health_state
{
  SHIM_HEALTH_STARTING,
  SHIM_HEALTH_HEALTHY,
  SHIM_HEALTH_UNHEALTHY,
};
struct shim_health_run
{
  struct shim_health h; /* owned */
  const char *bundle;   /* the shim's bundle (absolute) */
  const char *name;
  uint64_t start_ms, next_ms, check_started_ms;
  pid_t check_pid; /* 0: none running */
  unsigned failures;
  enum shim_health_state state;
};
void health_init (struct shim_health_run *hr, struct shim_health *h, const char *bundle, const char *name);
/* ms until health_tick() has something to do, -1: never */
int health_timeout (const struct shim_health_run *hr);
/* reaps a finished check, kills one past its timeout, starts the next when
 * due; reports through @n (STATUS=, WATCHDOG=trigger) */
void health_tick (struct shim_health_run *hr, struct shim_notify *n);
void health_clear (struct shim_health_run *hr);
/* notify.c: a message of the shim's own to systemd */
void notify_send_own (struct shim_notify *n, const char *text);
uint64_t shim_now_ms (void);
