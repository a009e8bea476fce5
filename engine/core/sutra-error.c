/* sutra-error.c: error struct helpers, log sink, aborting allocators. */
#include "sutra-error.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static SutraLogFunc log_func;
static void *log_data;

SutraStatus
sutra_error_set (SutraError *err, SutraStatus code, const char *fmt, ...)
{
  if (err) {
    va_list ap;
    va_start (ap, fmt);
    err->code = code;
    err->sys_errno = 0;
    vsnprintf (err->message, sizeof err->message, fmt, ap);
    va_end (ap);
  }
  return code;
}

SutraStatus
sutra_error_set_sys (SutraError *err, SutraStatus code, int errnum, const char *fmt, ...)
{
  if (err) {
    va_list ap;
    va_start (ap, fmt);
    err->code = code;
    err->sys_errno = errnum;
    int n = vsnprintf (err->message, sizeof err->message, fmt, ap);
    va_end (ap);
    if (n >= 0 && (size_t) n < sizeof err->message)
      snprintf (err->message + n, sizeof err->message - (size_t) n, ": %s", strerror (errnum));
  }
  return code;
}

void
sutra_error_prefix (SutraError *err, const char *fmt, ...)
{
  if (!err)
    return;
  char prefix[SUTRA_ERROR_MESSAGE_MAX];
  char old[SUTRA_ERROR_MESSAGE_MAX];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (prefix, sizeof prefix, fmt, ap);
  va_end (ap);
  memcpy (old, err->message, sizeof old);
  old[sizeof old - 1] = '\0';
  size_t lp = strnlen (prefix, sizeof err->message - 3);
  memcpy (err->message, prefix, lp);
  memcpy (err->message + lp, ": ", 2);
  size_t room = sizeof err->message - lp - 3;
  size_t lo = strnlen (old, room);
  memcpy (err->message + lp + 2, old, lo);
  err->message[lp + 2 + lo] = '\0';
}

void
sutra_error_clear (SutraError *err)
{
  if (err) {
    err->code = SUTRA_OK;
    err->sys_errno = 0;
    err->message[0] = '\0';
  }
}

const char *
sutra_status_name (SutraStatus code)
{
  switch (code) {
  case SUTRA_OK: return "ok";
  case SUTRA_ERR_IO: return "i/o error";
  case SUTRA_ERR_FORMAT: return "malformed file";
  case SUTRA_ERR_UNSUPPORTED: return "unsupported";
  case SUTRA_ERR_INVALID: return "invalid value";
  case SUTRA_ERR_NOMEM: return "out of memory";
  case SUTRA_ERR_CANCELLED: return "cancelled";
  case SUTRA_ERR_NETWORK: return "network error";
  case SUTRA_ERR_NUMERIC: return "numeric error";
  case SUTRA_ERR_NOT_FOUND: return "not found";
  case SUTRA_ERR_AUTH: return "not authorised";
  }
  return "unknown error";
}

void
sutra_log_set (SutraLogFunc func, void *user_data)
{
  pthread_mutex_lock (&log_lock);
  log_func = func;
  log_data = user_data;
  pthread_mutex_unlock (&log_lock);
}

void
sutra_log (SutraLogLevel level, const char *fmt, ...)
{
  pthread_mutex_lock (&log_lock);
  SutraLogFunc f = log_func;
  void *d = log_data;
  pthread_mutex_unlock (&log_lock);
  if (!f)
    return;
  char buf[1024];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (buf, sizeof buf, fmt, ap);
  va_end (ap);
  f (level, buf, d);
}

_Noreturn void
sutra_assert_fail (const char *file, int line, const char *expr)
{
  fprintf (stderr, "%s:%d: SUTRA_ASSERT(%s) failed\n", file, line, expr);
  fflush (stderr);
  abort ();
}

static _Noreturn void
oom (size_t n)
{
  fprintf (stderr, "libsutra: out of memory allocating %zu bytes\n", n);
  abort ();
}

void *
sutra_xmalloc (size_t n)
{
  void *p = malloc (n ? n : 1);
  if (!p)
    oom (n);
  return p;
}

void *
sutra_xcalloc (size_t count, size_t size)
{
  void *p = calloc (count ? count : 1, size ? size : 1);
  if (!p)
    oom (count * size);
  return p;
}

void *
sutra_xrealloc (void *p, size_t n)
{
  void *q = realloc (p, n ? n : 1);
  if (!q)
    oom (n);
  return q;
}

char *
sutra_xstrdup (const char *s)
{
  if (!s)
    return NULL;
  return sutra_xstrndup (s, strlen (s));
}

char *
sutra_xstrndup (const char *s, size_t n)
{
  char *p = sutra_xmalloc (n + 1);
  memcpy (p, s, n);
  p[n] = '\0';
  return p;
}

char *
sutra_xasprintf (const char *fmt, ...)
{
  va_list ap, ap2;
  va_start (ap, fmt);
  va_copy (ap2, ap);
  int n = vsnprintf (NULL, 0, fmt, ap);
  va_end (ap);
  SUTRA_ASSERT (n >= 0);
  char *p = sutra_xmalloc ((size_t) n + 1);
  vsnprintf (p, (size_t) n + 1, fmt, ap2);
  va_end (ap2);
  return p;
}

void *
sutra_try_alloc (size_t n, const char *what, SutraError *err)
{
  size_t rounded = (n + 63) & ~(size_t) 63;
  if (rounded < n) {
    sutra_error_set (err, SUTRA_ERR_NOMEM, "%s: size overflow", what ? what : "buffer");
    return NULL;
  }
  void *p = NULL;
  if (posix_memalign (&p, 64, rounded ? rounded : 64) != 0) {
    sutra_error_set (err, SUTRA_ERR_NOMEM, "%s: cannot allocate %.1f MiB", what ? what : "buffer",
                     (double) n / (1024.0 * 1024.0));
    return NULL;
  }
  memset (p, 0, rounded ? rounded : 64);
  return p;
}

void
sutra_aligned_free (void *p)
{
  free (p);
}
