/* Values and rendering: image templates (atomic /exports/, org.sysctr.
 * labels, or derived from the image config) -> config.json, units,
 * tmpfiles.d and host files. */
#pragma once

#include <jansson.h>

#include "store.h"

G_BEGIN_DECLS

#define SYSCTR_MARKER_PREFIX "# sysctr: generated for container "

typedef struct
{
  char *path;   /* absolute, as seen when the tree boots */
  GBytes *data; /* rendered content, or NULL: a hostfs file copied as it is from... */
  char *source; /* ...this path in the rootfs (streamed, never held in memory) */
  guint32 mode;
} SysctrHostFile;

/* hostfs budgets: a file as big as real binaries get (kubectl ~50 MB), and
 * a total that a 1 MB image cannot multiply into gigabytes with hardlinks */
#define SYSCTR_HOSTFS_MAX_FILE (256ull * 1024 * 1024)
#define SYSCTR_HOSTFS_MAX_TOTAL (1024ull * 1024 * 1024)
#define SYSCTR_HOSTFS_MAX_FILES 1000

typedef struct
{
  const char *name;
  const SysctrImage *image;
  int rootfs_dfd;        /* the deployed rootfs (read /exports from it) */
  const char *slot_path; /* DESTDIR as seen at boot: /var/lib/sysctr/containers/NAME.N */
  GHashTable *set;       /* --set values (may be NULL) */
  GHashTable *previous;  /* values of the previous deployment (UUID kept) or NULL */
  const char
      *runtime; /* NULL or "sysctr-shim": the shim; else a program found in PATH (runc, crun) or an absolute path */
  const char *shim_path;
  GHashTable *sysctr_units; /* units sysctr wrote for its containers: depending on them asks nothing */
  int root_dfd;             /* the host (or --root tree): bind sources are looked up there; -1: not */
  gboolean live;            /* the running host, not a --root tree */
  json_t *previous_created; /* host directories the previous deployment created (info.json), or NULL */
} SysctrRenderInput;

typedef struct
{
  GHashTable *values; /* every value used */
  json_t *config;     /* OCI runtime config */
  GPtrArray *files;   /* SysctrHostFile*: units, tmpfiles.d, hostfs */
  GPtrArray *units;   /* unit file names (NAME.service, NAME.socket) */
  char *enable_unit;  /* what to enable: the socket if any, else the service; NULL if not installable */
  char *runtime_path;
  char *state_path; /* STATE_DIRECTORY/NAME */
  GPtrArray *warnings;
  json_t *asks;            /* privileges the image asks for (privileges.h) */
  GString *service_lines;  /* [Service] directives translated from config.json (MemoryMax=, DeviceAllow=...) */
  GString *tmpfiles_lines; /* tmpfiles.d lines for what the host lacks (missing bind sources, hostfs dirs) */
  json_t *created;         /* the paths those lines create: removed at uninstall when empty */
} SysctrRendered;

void sysctr_rendered_free (SysctrRendered *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (SysctrRendered, sysctr_rendered_free)

SysctrRendered *sysctr_render (const SysctrRenderInput *in, GError **error);

/* What a container granted nothing gets (NULL-terminated). */
extern const char *const sysctr_default_caps[];
extern const char *const sysctr_default_masked[];
extern const char *const sysctr_default_readonly[];
/* The default seccomp profile for an image of @platform ("os/arch[/variant]"). */
json_t *sysctr_default_seccomp (const char *platform, GError **error);

/* Whether the rendered host files or tmpfiles.d lines make @path exist. */
gboolean sysctr_rendered_provides (SysctrRendered *r, const char *path);

/* For the parts of rendering in other files (ociconfig.c). */
void sysctr_rendered_warn (SysctrRendered *r, const char *fmt, ...) G_GNUC_PRINTF (2, 3);
json_t *sysctr_render_mount (const char *dest, const char *type, const char *source, const char *opts_csv);
gboolean sysctr_runtime_is_shim (const char *path, const char *shim_path);

/* The default runtime command lines */
char *sysctr_runtime_resolve (const char *runtime, const char *shim_path, GError **error);

/* Parses --set KEY=VALUE into @table. */
gboolean sysctr_parse_set (GHashTable *table, const char *arg, GError **error);

/* First line of every file sysctr writes on the host. */
char *sysctr_marker_line (const char *name);
/* Name of the container that owns @data, or NULL. */
char *sysctr_marker_owner (const char *data, gsize len);

G_END_DECLS
