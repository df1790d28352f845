/* The cluster lock an update takes before it restarts anything (etcd's v3
 * lock and lease API), the halt record a failed update leaves, and the
 * record of a container's last update attempt. See updatelock.c. */
#pragma once

#include "context.h"

#include <jansson.h>

G_BEGIN_DECLS

/* A container's lock, as kept in info.json ("update_lock"). */
typedef struct
{
  char **endpoints;    /* http(s)://HOST:PORT of etcd members, tried in order */
  char *name;          /* the lock's name, or NULL: value UPDATE_LOCK_NAME, else the container's name */
  guint max;           /* hosts that may update at once (1..64) */
  guint ttl;           /* seconds the lease outlives a host that stops renewing it */
  char *cacert;        /* PEM CA bundle for https endpoints (NULL: the system's) */
  char *cert;          /* PEM client certificate (etcd --client-cert-auth), or NULL */
  char *key;           /* its private key (NULL: in the cert file) */
  char *user;          /* etcd user (etcd auth enabled), or NULL */
  char *password_file; /* a file only its owner can read, holding that user's password */
} SysctrUpdateLockConfig;

void sysctr_update_lock_config_free (SysctrUpdateLockConfig *cfg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SysctrUpdateLockConfig, sysctr_update_lock_config_free)

/* What a command line says about the lock; NULL/0 fields say nothing. */
typedef struct
{
  const char *spec; /* "etcd:URL[,URL…]" or "none" */
  const char *name;
  guint max;
  guint ttl;
  const char *cacert; /* absolute paths; "" removes */
  const char *cert;
  const char *key;
  const char *user;          /* "" removes */
  const char *password_file; /* absolute path; "" removes */
} SysctrUpdateLockOptions;

/* Some --update-lock… option was given. */
gboolean sysctr_update_lock_options_given (const SysctrUpdateLockOptions *opts);

#define SYSCTR_UPDATE_LOCK_TTL_DEFAULT 30
#define SYSCTR_UPDATE_LOCK_WAIT_SECONDS 3600

/* @current (info.json's "update_lock", may be NULL) with @opts on top;
 * *out_json is the new "update_lock" (NULL: none). Every field checked:
 * what would fail at update time is refused here. */
gboolean sysctr_update_lock_merge (json_t *current, const SysctrUpdateLockOptions *opts, json_t **out_json,
                                   GError **error);
/* The configuration @json describes, or NULL (no error) when it is NULL. */
gboolean sysctr_update_lock_from_json (json_t *json, SysctrUpdateLockConfig **out_cfg, GError **error);
/* The lock's name for container @container whose values are @values. */
char *sysctr_update_lock_name (const SysctrUpdateLockConfig *cfg, json_t *values, const char *container,
                               GError **error);
/* "etcd http://a:2379,http://b:2379; lock NAME, 1 host at a time, lease 30 s" */
char *sysctr_update_lock_describe (const SysctrUpdateLockConfig *cfg, const char *lock_name);

/* The lock of deployment @info (info.json) of container @container is one
 * an update can take (its name resolves to a valid one); TRUE without one.
 * What an update would refuse is refused at install. */
gboolean sysctr_update_lock_check (const char *container, json_t *info, GError **error);

typedef struct SysctrUpdateLock SysctrUpdateLock;

/* Takes one of the lock's @max slots for @container (waits, at most
 * SYSCTR_UPDATE_LOCK_WAIT_SECONDS): a lease kept alive by a thread, the
 * lock, and a holder record bound to the lease. Refuses with
 * SYSCTR_ERROR_HALTED while a halt record exists (checked before waiting
 * and again once the lock is held). @from/@to are the versions. */
SysctrUpdateLock *sysctr_update_lock_acquire (const SysctrUpdateLockConfig *cfg, const char *lock_name,
                                              const char *container, const char *from, const char *to, GError **error);
/* FALSE when the lease could not be kept alive: the lock may be another
 * host's by now. */
gboolean sysctr_update_lock_held (SysctrUpdateLock *lock, GError **error);
/* Leaves the halt record (no lease: it outlives this host) naming this
 * host, @version and @reason. */
gboolean sysctr_update_lock_halt (SysctrUpdateLock *lock, const char *version, const char *reason, GError **error);
/* What the lock did, for the last-update record: {name, slot, waited_ms,
 * held_ms, acquired_revision, released_revision, lease}. */
json_t *sysctr_update_lock_summary (SysctrUpdateLock *lock);
/* Deletes the holder record, unlocks, revokes the lease; says so with the
 * etcd revision. Never fails (a lease that cannot be revoked expires);
 * once is enough, _free does it when it was not done. */
void sysctr_update_lock_release (SysctrUpdateLock *lock);
void sysctr_update_lock_free (SysctrUpdateLock *lock);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SysctrUpdateLock, sysctr_update_lock_free)

/* The halt record of @lock_name (NULL when there is none). */
gboolean sysctr_update_lock_get_halt (const SysctrUpdateLockConfig *cfg, const char *lock_name, json_t **out_halt,
                                      GError **error);
/* Deletes it; *out_halt is what was deleted (NULL: there was none). */
gboolean sysctr_update_lock_clear_halt (const SysctrUpdateLockConfig *cfg, const char *lock_name, json_t **out_halt,
                                        GError **error);

/* ROOT/var/lib/sysctr/updates/NAME.json: the last update attempt. */
gboolean sysctr_last_update_write (SysctrContext *ctx, const char *name, json_t *record, GError **error);
json_t *sysctr_last_update_read (SysctrContext *ctx, const char *name);
gboolean sysctr_last_update_remove (SysctrContext *ctx, const char *name, GError **error);

G_END_DECLS
