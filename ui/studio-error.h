/* studio-error.h: the studio's GError domain and the one place engine errors become GErrors
 * (STYLE.md section 5). After this point the UI only deals in GError. */
#pragma once

#include <gio/gio.h>

#include "sutra-error.h"

G_BEGIN_DECLS

#define STUDIO_ERROR (studio_error_quark ())

typedef enum {
  STUDIO_ERROR_FAILED,        /* any engine status without a closer GIO code */
  STUDIO_ERROR_FORMAT,        /* malformed file (SUTRA_ERR_FORMAT) */
  STUDIO_ERROR_UNSUPPORTED,   /* valid input we do not handle */
  STUDIO_ERROR_INVALID,       /* a bad setting (SUTRA_ERR_INVALID) */
  STUDIO_ERROR_NOMEM,         /* a tensor buffer could not be allocated */
  STUDIO_ERROR_NUMERIC,       /* NaN/Inf during training */
  STUDIO_ERROR_NETWORK,
  STUDIO_ERROR_AUTH,
  STUDIO_ERROR_MISSING_ENGINE,/* this build lacks the engine part a page needs */
} StudioErrorCode;

GQuark studio_error_quark (void);

/* Converts an engine error; SUTRA_ERR_IO/NOT_FOUND/CANCELLED map to G_IO_ERROR codes so
 * g_error_matches (e, G_IO_ERROR, G_IO_ERROR_CANCELLED) works for every cancelled job.
 * Always sets *error (when not NULL) and returns FALSE, for `return studio_error_from_sutra`. */
gboolean studio_error_from_sutra (const SutraError *err, GError **error);
/* Same for a status with an error struct that may be empty (a message is made up then). */
gboolean studio_error_from_status (SutraStatus status, const SutraError *err, GError **error);
/* STUDIO_ERROR_MISSING_ENGINE naming the part ("the trainer (engine/...)"). */
gboolean studio_error_missing_engine (const char *part, GError **error);

/* Routes the engine's log lines (sutra_log) into GLib's log under the "sutra" domain:
 * engine warnings become g_message, never g_warning, because a missing chat template or a
 * skipped dataset row is information for the user, not a programming error (and under
 * g_test every warning is fatal). */
void     studio_engine_log_init (void);

G_END_DECLS
