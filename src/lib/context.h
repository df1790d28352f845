/* What every command works on: the root (--root), the state directory
 * ROOT/var/lib/sysctr with its lock, and the image store in it. */
#pragma once

#include <ostree.h>

#include "sysctr-util.h"

G_BEGIN_DECLS

typedef struct
{
  char *root;    /* "/" or the --root DIR, absolute */
  gboolean live; /* root is "/": talk to systemd over D-Bus */
  int root_dfd;
  int state_dfd; /* ROOT/var/lib/sysctr */
  int tmp_dfd;   /* ROOT/var/lib/sysctr/tmp */
  OstreeRepo *repo;
  SysctrLock *lock;
} SysctrContext;

void sysctr_context_free (SysctrContext *ctx);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SysctrContext, sysctr_context_free)

/* @mutating: take the exclusive lock and create what is missing. */
SysctrContext *sysctr_context_new (const char *root, gboolean mutating, GError **error);

/* Lets this host's other sysctr commands run while a mutating command
 * waits for something outside (the cluster update lock). Nothing may be
 * staged in tmp/ across it (the next command to start clears tmp/), and
 * what was read before must be read again after sysctr_context_relock. */
void sysctr_context_unlock (SysctrContext *ctx);
/* Takes the state lock back (waiting for another command to finish) and
 * opens tmp/ again. */
gboolean sysctr_context_relock (SysctrContext *ctx, GError **error);

/* For the listing commands: a root with no state directory yet has
 * nothing to list; *out_ctx is then NULL and this returns TRUE. */
gboolean sysctr_context_open_for_listing (const char *root, SysctrContext **out_ctx, GError **error);

/* A path as seen when the tree boots: "/var/lib/sysctr/..." */
/* SYSCTR_STATE_DIR ("/var/lib/sysctr") comes from config.h: the shim knows it too */
#define SYSCTR_CONTAINERS_DIR SYSCTR_STATE_DIR "/containers"

G_END_DECLS
