/* sutra-error.h: status codes, the caller-provided error struct, logging and the
 * allocation policy of libsutra.
 *
 * Runtime failures (I/O, malformed file, unsupported setting, out of memory, cancelled,
 * network) return a SutraStatus and fill an optional SutraError whose message names the
 * file, line, tensor or key at fault. Bugs (our own shape mismatches, forbidden NULLs)
 * hit SUTRA_ASSERT, which aborts with file:line. The library never calls exit() and
 * never prints: log lines go through sutra_log_set(). */
#pragma once
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
  SUTRA_OK = 0,
  SUTRA_ERR_IO,          /* open/read/write/rename failed; sys_errno set */
  SUTRA_ERR_FORMAT,      /* malformed or truncated file */
  SUTRA_ERR_UNSUPPORTED, /* valid input we do not handle (architecture, dtype, setting) */
  SUTRA_ERR_INVALID,     /* bad argument or value supplied by the user */
  SUTRA_ERR_NOMEM,       /* a tensor/optimizer buffer could not be allocated */
  SUTRA_ERR_CANCELLED,   /* a stop/cancel flag was honoured */
  SUTRA_ERR_NETWORK,     /* transfer failed */
  SUTRA_ERR_NUMERIC,     /* NaN/Inf in loss, gradients or weights */
  SUTRA_ERR_NOT_FOUND,   /* a file, tensor, key or repository does not exist */
  SUTRA_ERR_AUTH,        /* the server refused our credentials */
} SutraStatus;

#define SUTRA_ERROR_MESSAGE_MAX 512

typedef struct {
  SutraStatus code;
  int sys_errno;                          /* errno of the failing call, or 0 */
  char message[SUTRA_ERROR_MESSAGE_MAX];  /* one line, no trailing newline */
} SutraError;

/* Fills err (when not NULL) and returns code, so `return sutra_error_set (...)` works. */
SutraStatus sutra_error_set     (SutraError *err, SutraStatus code, const char *fmt, ...)
  __attribute__ ((format (printf, 3, 4)));
/* Like sutra_error_set, appending ": <strerror(errnum)>" and recording errnum. */
SutraStatus sutra_error_set_sys (SutraError *err, SutraStatus code, int errnum,
                                 const char *fmt, ...) __attribute__ ((format (printf, 4, 5)));
/* Prepends "<prefix>: " to an already-set message (adds context on the way up). */
void        sutra_error_prefix  (SutraError *err, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));
void        sutra_error_clear   (SutraError *err);
const char *sutra_status_name   (SutraStatus code);

/* ---- logging ---- */
typedef enum { SUTRA_LOG_DEBUG, SUTRA_LOG_INFO, SUTRA_LOG_WARN, SUTRA_LOG_ERROR } SutraLogLevel;
typedef void (*SutraLogFunc) (SutraLogLevel level, const char *message, void *user_data);
/* Installs the process-wide log sink (NULL: discard). Thread-safe. */
void sutra_log_set (SutraLogFunc func, void *user_data);
void sutra_log     (SutraLogLevel level, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

/* ---- assertions (bugs, not bad input) ---- */
_Noreturn void sutra_assert_fail (const char *file, int line, const char *expr);
#define SUTRA_ASSERT(x) \
  do { if (__builtin_expect (!(x), 0)) sutra_assert_fail (__FILE__, __LINE__, #x); } while (0)

/* ---- allocation ----
 * Small bookkeeping allocations abort on failure (GLib's policy); tensor, activation and
 * optimizer buffers use sutra_try_alloc, which reports SUTRA_ERR_NOMEM with the size. */
void *sutra_xmalloc  (size_t n);
void *sutra_xcalloc  (size_t count, size_t size);
void *sutra_xrealloc (void *p, size_t n);
char *sutra_xstrdup  (const char *s);
char *sutra_xstrndup (const char *s, size_t n);
char *sutra_xasprintf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
/* 64-byte aligned, zeroed; free with sutra_aligned_free. what names the buffer in the error. */
void *sutra_try_alloc (size_t n, const char *what, SutraError *err);
void  sutra_aligned_free (void *p);
