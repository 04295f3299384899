/* tg_log: leveled, structured key=value logging to stderr.
 *
 *   tg_log_info("listening", "addr=%s port=%d", host, port);
 *
 * One line per event: `ts level event k=v k=v`. Values that hold secrets
 * (API keys, prompt text) must never be passed here; callers log ids and
 * sizes instead. Thread-safe: one write(2) per line. */
#ifndef TG_LOG_H
#define TG_LOG_H

#include <stdarg.h>

typedef enum { TG_LOG_DEBUG = 0, TG_LOG_INFO, TG_LOG_WARN, TG_LOG_ERROR, TG_LOG_OFF } tg_log_level;

void tg_log_set_level(tg_log_level lvl);
tg_log_level tg_log_get_level(void);
/* Parses "debug|info|warn|error|off"; returns -1 on unknown text. */
int tg_log_level_parse(const char *s, tg_log_level *out);
/* Reads TIDEGATE_LOG (level name) from the environment if set. */
void tg_log_init_from_env(void);

void tg_log_write(tg_log_level lvl, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tg_log_vwrite(tg_log_level lvl, const char *event, const char *fmt, va_list ap);

#define tg_log_debug(ev, ...) tg_log_write(TG_LOG_DEBUG, ev, __VA_ARGS__)
#define tg_log_info(ev, ...)  tg_log_write(TG_LOG_INFO, ev, __VA_ARGS__)
#define tg_log_warn(ev, ...)  tg_log_write(TG_LOG_WARN, ev, __VA_ARGS__)
#define tg_log_error(ev, ...) tg_log_write(TG_LOG_ERROR, ev, __VA_ARGS__)

#endif
