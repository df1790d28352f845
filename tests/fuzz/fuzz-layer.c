/* libFuzzer: the tar import path (gzip/zstd/plain) into a real bare
 * OSTree repo, in a transaction that is aborted after each input. */
#include "config.h"

#include "layer.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);
int LLVMFuzzerInitialize (int *argc, char ***argv);

static OstreeRepo *repo;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  g_autofree char *dir = g_dir_make_tmp ("sysctr-fuzz-XXXXXX", NULL);
  g_autoptr (GFile) path = g_file_new_for_path (dir);
  repo = ostree_repo_new (path);
  if (!ostree_repo_create (repo, OSTREE_REPO_MODE_BARE_USER_ONLY, NULL, NULL))
    g_error ("cannot create a repo in %s", dir);
  return 0;
}

int
LLVMFuzzerTestOneInput (const guint8 *data, size_t size)
{
  if (!ostree_repo_prepare_transaction (repo, NULL, NULL, NULL))
    return 0;
  g_autofree char *commit = NULL;
  (void) sysctr_layer_import_bytes (repo, data, size, &commit, NULL);
  (void) ostree_repo_abort_transaction (repo, NULL, NULL);
  return 0;
}
