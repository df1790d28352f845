/* zstd:chunked layers (podman/buildah push --compression-format
 * zstd:chunked): a zstd stream of one frame per file, plus a table of
 * contents (TOC) in a skippable frame, located and checksummed by the
 * layer descriptor's annotations in the manifest.
 *
 * A standard zstd decoder reads the files as a tar. But the tar that
 * podman 4 writes is not byte for byte the one the image config's diff_id
 * was computed over (its headers are rewritten), so such a layer cannot be
 * checked against its diff_id. It is checked against its TOC instead: the
 * TOC's checksum is in the manifest (which authenticates the blob too), and
 * every file of the tar must be the TOC's entry of that name (type, link
 * target; for files and directories mode and owner; for a regular file
 * the sha256 of its content), and every
 * TOC file must be in the tar.
 */
#pragma once

#include <jansson.h>

#include "sysctr-util.h"

G_BEGIN_DECLS

typedef struct SysctrToc SysctrToc;

/* The TOC's offset and compressed length in the blob, from the layer
 * descriptor's annotations; *out_length 0 when it has none. */
gboolean sysctr_toc_position (json_t *desc, guint64 *out_offset, guint64 *out_length, GError **error);

/* One entry of the TOC as the layer holds it, in order (chunks folded
 * into their file: a file's compressed data is offset..end_offset, one or
 * more zstd frames). Strings belong to the TOC. */
typedef struct
{
  char type; /* as sysctr_toc_check_entry's; 's' carries type_name */
  const char *type_name;
  const char *name;
  guint32 mode, uid, gid;
  guint64 size, offset, end_offset;
  const char *link, *digest, *modtime;
  json_t *xattrs; /* name -> base64 value, or NULL */
  guint32 devmajor, devminor;
} SysctrTocFile;
guint sysctr_toc_n_files (SysctrToc *toc);
const SysctrTocFile *sysctr_toc_file (SysctrToc *toc, guint i);

/* From the layer descriptor @desc and the blob in @fd: the TOC, or NULL
 * (no error) when the layer carries no zstd:chunked annotations. */
gboolean sysctr_toc_load (json_t *desc, int fd, SysctrToc **out_toc, GError **error);
void sysctr_toc_free (SysctrToc *toc);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SysctrToc, sysctr_toc_free)

/* One tar entry (path normalised as the layer reader does: no leading "/"
 * or "./", no trailing "/"). @type: 'f' regular (with @sha256 of its
 * content, "sha256:HEX"), 'd', 'l' symlink or 'h' hardlink (with @link),
 * or 's' another kind; for 'f' and 'd', @mode (permission bits), @uid and
 * @gid must be the TOC's too. */
gboolean sysctr_toc_check_entry (SysctrToc *toc, const char *path, char type, guint32 mode, guint32 uid, guint32 gid,
                                 const char *link, const char *sha256, GError **error);
/* After the last entry: every file the TOC lists was in the tar. */
gboolean sysctr_toc_check_complete (SysctrToc *toc, GError **error);

G_END_DECLS
