/* sutra-hub-private.h: helpers shared by sutra-hub.c, sutra-hub-api.c and sutra-hub-cache.c. */
#pragma once
#include <stddef.h>

/* Copies s into buf (size n) for an error message: non-printable bytes become \xNN and
 * long names are cut with "...", so a server cannot inject terminal escapes into logs. */
const char *sutra_hub_quote (const char *s, char *buf, size_t n);
