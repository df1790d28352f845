#include "config.h"

#include <stdio.h>

#include "builtins.h"
#include "context.h"
#include "install.h"
#include "pull.h"

static char *opt_tls_verify;
static char *opt_creds;
static char *opt_authfile;
static char *opt_platform;
static gboolean opt_quiet;

static GOptionEntry entries[] = {
  { "tls-verify", 0, 0, G_OPTION_ARG_STRING, &opt_tls_verify, "Verify TLS; false also allows plain HTTP", "BOOL" },
  { "creds", 0, 0, G_OPTION_ARG_STRING, &opt_creds, "Registry credentials", "USER:PASS" },
  { "authfile", 0, 0, G_OPTION_ARG_FILENAME, &opt_authfile, "containers-auth.json file", "FILE" },
  { "platform", 0, 0, G_OPTION_ARG_STRING, &opt_platform, "Platform to pick from an index", "OS/ARCH[/VARIANT]" },
  { "quiet", 'q', 0, G_OPTION_ARG_NONE, &opt_quiet, "No progress output", NULL },
  { NULL },
};

/* Shared with install and update, which pull too. */
gboolean sysctr_pull_options_from_cli (SysctrPullOptions *opts, const char *tls_verify, const char *creds,
                                       const char *authfile, const char *platform, gboolean quiet, GError **error);

gboolean
sysctr_pull_options_from_cli (SysctrPullOptions *opts, const char *tls_verify, const char *creds, const char *authfile,
                              const char *platform, gboolean quiet, GError **error)
{
  sysctr_pull_options_init (opts);
  if (tls_verify && !sysctr_parse_bool (tls_verify, "--tls-verify", &opts->tls_verify, error))
    return FALSE;
  opts->creds = g_strdup (creds);
  opts->authfile = authfile ? g_canonicalize_filename (authfile, NULL) : NULL;
  opts->platform = g_strdup (platform);
  opts->quiet = quiet;
  return TRUE;
}

gboolean
sysctr_builtin_pull (int argc, char **argv, const SysctrGlobals *globals, GError **error)
{
  g_autoptr (GOptionContext) context = g_option_context_new ("IMAGE - pull an image into the store");
  if (!sysctr_parse_options (context, entries, &argc, &argv, error))
    return FALSE;
  if (argc != 2)
    return sysctr_throw (error, SYSCTR_ERROR_INVALID, "usage: sysctr pull [OPTION…] IMAGE");

  SysctrPullOptions opts;
  if (!sysctr_pull_options_from_cli (&opts, opt_tls_verify, opt_creds, opt_authfile, opt_platform, opt_quiet, error))
    return FALSE;
  g_autoptr (SysctrContext) ctx = sysctr_context_new (globals->root, TRUE, error);
  if (ctx == NULL || !sysctr_reconcile (ctx, error))
    {
      sysctr_pull_options_clear (&opts);
      return FALSE;
    }
  g_autoptr (SysctrImage) image = NULL;
  SysctrPullResult result;
  gint64 start = g_get_monotonic_time ();
  gboolean ok = sysctr_pull (ctx, argv[1], &opts, &image, &result, error);
  sysctr_pull_options_clear (&opts);
  if (!ok)
    return FALSE;
  if (!opt_quiet)
    {
      double secs = (g_get_monotonic_time () - start) / 1e6;
      if (result.up_to_date)
        printf ("%s: up to date (%s)\n", image->reference, image->manifest_digest);
      else
        {
          g_autofree char *sz = sysctr_format_size (result.bytes_fetched);
          printf ("%s: pulled %s (%u layer(s), %s fetched, %.2fs)\n", image->reference, image->manifest_digest,
                  result.layers_fetched, sz, secs);
        }
    }
  if (g_getenv ("SYSCTR_REPORT_REQUESTS"))
    fprintf (stderr, "requests: %u\n", result.requests);
  return TRUE;
}
