#include "config.h"

#include "context.h"

#include "store.h"

#include <fcntl.h>
#include <sys/stat.h>

void
sysctr_context_free (SysctrContext *ctx)
{
  if (ctx == NULL)
    return;
  g_clear_object (&ctx->repo);
  sysctr_lock_release (ctx->lock);
  if (ctx->tmp_dfd >= 0)
    close (ctx->tmp_dfd);
  if (ctx->state_dfd >= 0)
    close (ctx->state_dfd);
  if (ctx->root_dfd >= 0)
    close (ctx->root_dfd);
  g_free (ctx->root);
  g_free (ctx);
}

void
sysctr_context_unlock (SysctrContext *ctx)
{
  g_return_if_fail (ctx->lock != NULL);
  g_clear_pointer (&ctx->lock, sysctr_lock_release);
}

gboolean
sysctr_context_relock (SysctrContext *ctx, GError **error)
{
  g_return_val_if_fail (ctx->lock == NULL, FALSE);
  if (!sysctr_lock_acquire (ctx->state_dfd, &ctx->lock, error))
    return FALSE;
  /* another command may have cleared (and made again) tmp/ meanwhile */
  if (ctx->tmp_dfd >= 0)
    close (ctx->tmp_dfd);
  ctx->tmp_dfd = -1;
  return sysctr_mkdir_p_at (ctx->state_dfd, "tmp", 0700, error)
         && sysctr_opendir_at (ctx->state_dfd, "tmp", FALSE, &ctx->tmp_dfd, error);
}

SysctrContext *
sysctr_context_new (const char *root, gboolean mutating, GError **error)
{
  g_autoptr (SysctrContext) ctx = g_new0 (SysctrContext, 1);
  ctx->root_dfd = ctx->state_dfd = ctx->tmp_dfd = -1;
  ctx->root = g_canonicalize_filename (root ? root : "/", NULL);
  ctx->live = g_strcmp0 (ctx->root, "/") == 0;

  /* The bare store keeps the images' file owners, and deployments,
   * units and systemd are root's: say that, rather than EPERM later. */
  if (mutating && geteuid () != 0)
    {
      sysctr_throw (error, SYSCTR_ERROR_INVALID, "this command changes %s%s and needs to run as root",
                    ctx->live ? "" : ctx->root, SYSCTR_STATE_DIR);
      return NULL;
    }
  if (!sysctr_opendir_at (AT_FDCWD, ctx->root, FALSE, &ctx->root_dfd, error))
    return NULL;

  const char *state = &SYSCTR_STATE_DIR[1];
  if (mutating)
    {
      if (!sysctr_mkdir_p_at (ctx->root_dfd, state, 0755, error))
        return NULL;
    }
  int fd = openat (ctx->root_dfd, state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    {
      if (errno == ENOENT && !mutating)
        {
          sysctr_throw (error, SYSCTR_ERROR_NOT_FOUND, "no sysctr state under %s (nothing pulled or installed yet)",
                        ctx->root);
          return NULL;
        }
      sysctr_throw_errno (error, "opening %s%s", ctx->root, SYSCTR_STATE_DIR);
      return NULL;
    }
  ctx->state_dfd = fd;

  if (mutating)
    {
      /* Deployments hold setuid files and the store hardlinks them: no
       * unprivileged host user may reach into either. */
      if (fchmod (ctx->state_dfd, 0700) < 0)
        {
          sysctr_throw_errno (error, "chmod %s", SYSCTR_STATE_DIR);
          return NULL;
        }
      if (!sysctr_lock_acquire (ctx->state_dfd, &ctx->lock, error))
        return NULL;
      if (!sysctr_mkdir_p_at (ctx->state_dfd, "containers", 0700, error)
          || !sysctr_mkdir_p_at (ctx->state_dfd, "tmp", 0700, error))
        return NULL;
      /* Leftovers of interrupted runs. */
      (void) sysctr_rm_rf_at (ctx->state_dfd, "tmp", NULL);
      if (!sysctr_mkdir_p_at (ctx->state_dfd, "tmp", 0700, error)
          || !sysctr_opendir_at (ctx->state_dfd, "tmp", FALSE, &ctx->tmp_dfd, error))
        return NULL;
    }

  gboolean has_repo = faccessat (ctx->state_dfd, "repo/config", F_OK, 0) == 0;
  if (has_repo || mutating)
    {
      ctx->repo = sysctr_store_open (ctx->state_dfd, !has_repo, error);
      if (ctx->repo == NULL)
        return NULL;
    }
  return g_steal_pointer (&ctx);
}

gboolean
sysctr_context_open_for_listing (const char *root, SysctrContext **out_ctx, GError **error)
{
  g_autoptr (GError) local_error = NULL;
  *out_ctx = sysctr_context_new (root, FALSE, &local_error);
  if (*out_ctx == NULL && !g_error_matches (local_error, SYSCTR_ERROR, SYSCTR_ERROR_NOT_FOUND))
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
  return TRUE;
}
