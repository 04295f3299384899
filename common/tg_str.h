/* tg_str: small string helpers every layer uses.
 *
 * Allocation failure aborts (as tg_buf does): a gateway out of memory has
 * no useful way to answer, and callers stay free of NULL checks. */
#ifndef TG_STR_H
#define TG_STR_H

/* A malloc'd copy of s; NULL for NULL. */
char *tg_xstrdup(const char *s);

#endif
