#include "config.h"

#include <stdio.h>

#include "builtins.h"
#include "context.h"
#include "install.h"
#include "lookaside.h"
#include "policy.h"
#include "pull.h"

/* The pull options, shared by pull, install and update. */
static struct
{
  char *tls_verify;
  char *creds;
  char *authfile;
  char *platform;
  char *signature_policy;
  char *registries_d;
  gboolean quiet;
} cli;

static GOptionEntry pull_entries[] = {
  { "tls-verify", 0, 0, G_OPTION_ARG_STRING, &cli.tls_verify, "Verify TLS; false also allows plain HTTP", "BOOL" },
  { "creds", 0, 0, G_OPTION_ARG_STRING, &cli.creds, "Registry credentials (never stored)", "USER:PASS" },
  { "authfile", 0, 0, G_OPTION_ARG_FILENAME, &cli.authfile, "containers-auth.json file", "FILE" },
  { "platform", 0, 0, G_OPTION_ARG_STRING, &cli.platform, "Platform to pick from an index", "OS/ARCH[/VARIANT]" },
  { "signature-policy", 0, 0, G_OPTION_ARG_FILENAME, &cli.signature_policy,
    "containers-policy.json to apply (default " SYSCTR_POLICY_PATH ")", "FILE" },
  { "registries.d", 0, 0, G_OPTION_ARG_FILENAME, &cli.registries_d,
    "Where signatures are (default " SYSCTR_REGISTRIES_D ")", "DIR" },
  { "quiet", 'q', 0, G_OPTION_ARG_NONE, &cli.quiet, "No progress output", NULL },
  { NULL },
};

void
sysctr_add_pull_options (GOptionContext *context)
{
  g_option_context_add_main_entries (context, pull_entries, NULL);
}

gboolean
sysctr_pull_options_given (void)
{
  return cli.tls_verify || cli.creds || cli.authfile || cli.platform || cli.signature_policy || cli.registries_d;
}

gboolean
sysctr_pull_options_from_cli (SysctrPullOptions *opts, GError **error)
{
  sysctr_pull_options_init (opts);
  if (cli.tls_verify && !sysctr_parse_bool (cli.tls_verify, "--tls-verify", &opts->tls_verify, error))
    return FALSE;
  opts->tls_verify_set = cli.tls_verify != NULL;
  opts->creds = g_strdup (cli.creds);
  opts->authfile = cli.authfile ? g_canonicalize_filename (cli.authfile, NULL) : NULL;
  opts->platform = g_strdup (cli.platform);
  opts->signature_policy = cli.signature_policy ? g_canonicalize_filename (cli.signature_policy, NULL) : NULL;
  opts->registries_d = cli.registries_d ? g_canonicalize_filename (cli.registries_d, NULL) : NULL;
  opts->quiet = cli.quiet;
  return TRUE;
}

gboolean
sysctr_builtin_pull (int argc, char **argv, const SysctrGlobals *globals, GError **error)
{
  static GOptionEntry no_entries[] = { { NULL } };
  g_autoptr (GOptionContext) context = g_option_context_new ("IMAGE - pull an image into the store");
  sysctr_add_pull_options (context);
  if (!sysctr_parse_options (context, no_entries, &argc, &argv, error))
    return FALSE;
  if (argc != 2)
    return sysctr_throw (error, SYSCTR_ERROR_USAGE, "usage: sysctr pull [OPTION…] IMAGE");

  g_auto (SysctrPullOptions) opts = { 0 };
  if (!sysctr_pull_options_from_cli (&opts, error))
    return FALSE;
  g_autoptr (SysctrContext) ctx = sysctr_context_new (globals->root, TRUE, error);
  if (ctx == NULL || !sysctr_reconcile (ctx, error))
    {
      return FALSE;
    }
  g_autoptr (SysctrImage) image = NULL;
  SysctrPullResult result;
  gint64 start = g_get_monotonic_time ();
  gboolean ok = sysctr_pull (ctx, argv[1], &opts, &image, &result, error);
  if (!ok)
    return FALSE;
  if (!cli.quiet)
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
