/* studio-error.c: engine status codes to GError, in one place. */
#define G_LOG_DOMAIN "studio"

#include "studio-error.h"

G_DEFINE_QUARK (studio-error-quark, studio_error)

gboolean
studio_error_from_status (SutraStatus status, const SutraError *err, GError **error)
{
  const char *msg = err && err->message[0] ? err->message : sutra_status_name (status);
  GQuark domain = STUDIO_ERROR;
  int code = STUDIO_ERROR_FAILED;

  switch (status)
    {
    case SUTRA_ERR_IO:
      domain = G_IO_ERROR;
      code = err && err->sys_errno ? g_io_error_from_errno (err->sys_errno) : G_IO_ERROR_FAILED;
      break;
    case SUTRA_ERR_NOT_FOUND:
      domain = G_IO_ERROR;
      code = G_IO_ERROR_NOT_FOUND;
      break;
    case SUTRA_ERR_CANCELLED:
      domain = G_IO_ERROR;
      code = G_IO_ERROR_CANCELLED;
      break;
    case SUTRA_ERR_FORMAT:      code = STUDIO_ERROR_FORMAT; break;
    case SUTRA_ERR_UNSUPPORTED: code = STUDIO_ERROR_UNSUPPORTED; break;
    case SUTRA_ERR_INVALID:     code = STUDIO_ERROR_INVALID; break;
    case SUTRA_ERR_NOMEM:       code = STUDIO_ERROR_NOMEM; break;
    case SUTRA_ERR_NUMERIC:     code = STUDIO_ERROR_NUMERIC; break;
    case SUTRA_ERR_NETWORK:     code = STUDIO_ERROR_NETWORK; break;
    case SUTRA_ERR_AUTH:        code = STUDIO_ERROR_AUTH; break;
    case SUTRA_OK:
    default:
      break;
    }
  g_set_error_literal (error, domain, code, msg);
  return FALSE;
}

gboolean
studio_error_from_sutra (const SutraError *err, GError **error)
{
  g_return_val_if_fail (err != NULL, FALSE);
  return studio_error_from_status (err->code, err, error);
}

gboolean
studio_error_missing_engine (const char *part, GError **error)
{
  g_set_error (error, STUDIO_ERROR, STUDIO_ERROR_MISSING_ENGINE,
               "This build of Sutra Studio does not include %s yet", part);
  return FALSE;
}

static void
engine_log (SutraLogLevel level, const char *message, void *data)
{
  GLogLevelFlags flags = level >= SUTRA_LOG_WARN ? G_LOG_LEVEL_MESSAGE
                       : level == SUTRA_LOG_INFO ? G_LOG_LEVEL_INFO : G_LOG_LEVEL_DEBUG;

  g_log ("sutra", flags, "%s", message);
}

void
studio_engine_log_init (void)
{
  sutra_log_set (engine_log, NULL);
}
