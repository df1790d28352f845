/* Extended attributes of layer files and the objects they become: every
 * stored object must be named by what it holds (content, owner, mode and
 * the xattrs as they read back). A tar may name one xattr twice (libarchive's
 * own pax writer records each one as SCHILY.xattr and LIBARCHIVE.xattr):
 * checksummed twice, the object would be named by metadata it cannot have,
 * and a later image whose file has that name (the same content without
 * xattrs) would be given this one's xattrs. Root: a bare repo sets owners. */
#include "config.h"

#include "layer.h"
#include "sysctr-util.h"

#include <archive.h>
#include <archive_entry.h>
#include <string.h>

/* A tar of one file "f" holding "x", with @n xattrs (name, value pairs). */
static GBytes *
make_tar (const char *const *xattrs)
{
  struct archive *w = archive_write_new ();
  archive_write_set_format_pax_restricted (w);
  gsize cap = 1 << 20, used = 0;
  g_autofree guint8 *buf = g_malloc (cap);
  g_assert_cmpint (archive_write_open_memory (w, buf, cap, &used), ==, ARCHIVE_OK);
  struct archive_entry *e = archive_entry_new ();
  archive_entry_set_pathname (e, "f");
  archive_entry_set_filetype (e, AE_IFREG);
  archive_entry_set_perm (e, 0644);
  archive_entry_set_size (e, 1);
  for (const char *const *x = xattrs; x && *x; x += 2)
    archive_entry_xattr_add_entry (e, x[0], x[1], strlen (x[1]));
  g_assert_cmpint (archive_write_header (w, e), ==, ARCHIVE_OK);
  g_assert_cmpint (archive_write_data (w, "x", 1), ==, 1);
  archive_entry_free (e);
  g_assert_cmpint (archive_write_close (w), ==, ARCHIVE_OK);
  archive_write_free (w);
  return g_bytes_new (buf, used);
}

/* The object of "f" in @commit: its checksum, checked against what it
 * holds as ostree reads it back; *out_xattrs its xattrs. */
static char *
checked_object (OstreeRepo *repo, const char *commit, GVariant **out_xattrs)
{
  g_autoptr (GFile) root = NULL;
  g_autoptr (GError) error = NULL;
  g_assert_true (ostree_repo_read_commit (repo, commit, &root, NULL, NULL, &error));
  g_autoptr (GFile) f = g_file_get_child (root, "f");
  const char *csum = ostree_repo_file_get_checksum (OSTREE_REPO_FILE (f));
  g_autoptr (GInputStream) in = NULL;
  g_autoptr (GFileInfo) info = NULL;
  g_assert_true (ostree_repo_load_file (repo, csum, &in, &info, out_xattrs, NULL, &error));
  g_assert_no_error (error);
  g_autofree guchar *raw = NULL;
  g_assert_true (ostree_checksum_file_from_input (info, *out_xattrs, in, OSTREE_OBJECT_TYPE_FILE, &raw, NULL, &error));
  g_autofree char *actual = ostree_checksum_from_bytes (raw);
  g_assert_cmpstr (actual, ==, csum);
  return g_strdup (csum);
}

static char *
import (OstreeRepo *repo, GBytes *tar)
{
  g_autoptr (GError) error = NULL;
  char *commit = NULL;
  g_assert_true (ostree_repo_prepare_transaction (repo, NULL, NULL, &error));
  gsize len;
  const void *data = g_bytes_get_data (tar, &len);
  g_assert_true (sysctr_layer_import_bytes (repo, data, len, &commit, &error));
  g_assert_no_error (error);
  g_assert_true (ostree_repo_commit_transaction (repo, NULL, NULL, &error));
  return commit;
}

static void
test_duplicate_xattrs (void)
{
  if (getuid () != 0)
    {
      g_test_skip ("needs root (a bare repo sets owners)");
      return;
    }
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("sysctr-xattrs-XXXXXX", &error);
  g_assert_no_error (error);
  g_autoptr (GFile) path = g_file_new_for_path (dir);
  g_autoptr (OstreeRepo) repo = ostree_repo_new (path);
  g_assert_true (ostree_repo_create (repo, OSTREE_REPO_MODE_BARE, NULL, &error));
  g_assert_no_error (error);

  /* one xattr (the pax writer records it twice), then the same name twice
   * with two values: the last one counts */
  static const char *const once[] = { "user.a", "one", NULL };
  static const char *const twice[] = { "user.b", "first", "user.a", "one", "user.b", "second", NULL };
  g_autoptr (GBytes) t1 = make_tar (once);
  g_autoptr (GBytes) t2 = make_tar (twice);
  g_autoptr (GBytes) plain = make_tar (NULL);
  g_autofree char *c1 = import (repo, t1);
  g_autofree char *c2 = import (repo, t2);
  g_autoptr (GVariant) x1 = NULL, x2 = NULL, x3 = NULL;
  g_autofree char *o1 = checked_object (repo, c1, &x1);
  g_autofree char *o2 = checked_object (repo, c2, &x2);
  g_assert_cmpuint (g_variant_n_children (x1), ==, 1);
  g_assert_cmpuint (g_variant_n_children (x2), ==, 2);
  g_autofree char *s2 = g_variant_print (x2, FALSE);
  g_assert_nonnull (strstr (s2, "'second'") ? s2 : strstr (s2, "0x73, 0x65, 0x63"));
  /* the same content without xattrs is an object of its own, without them */
  g_autofree char *c3 = import (repo, plain);
  g_autofree char *o3 = checked_object (repo, c3, &x3);
  g_assert_cmpuint (g_variant_n_children (x3), ==, 0);
  g_assert_cmpstr (o3, !=, o1);
  (void) sysctr_rm_rf_at (AT_FDCWD, dir, NULL);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/layer/duplicate-xattrs", test_duplicate_xattrs);
  return g_test_run ();
}
