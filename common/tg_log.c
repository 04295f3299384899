#include "common/tg_log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int g_level = TG_LOG_INFO;
static const char *const k_names[] = {"debug", "info", "warn", "error", "off"};

void tg_log_set_level(tg_log_level lvl) {
    atomic_store(&g_level, (int)lvl);
}
tg_log_level tg_log_get_level(void) {
    return (tg_log_level)atomic_load(&g_level);
}

int tg_log_level_parse(const char *s, tg_log_level *out) {
    for (int i = 0; i <= TG_LOG_OFF; i++) {
        if (s && strcmp(s, k_names[i]) == 0) {
            *out = (tg_log_level)i;
            return 0;
        }
    }
    return -1;
}

void tg_log_init_from_env(void) {
    tg_log_level lvl;
    const char *e = getenv("TIDEGATE_LOG");
    if (e && tg_log_level_parse(e, &lvl) == 0) tg_log_set_level(lvl);
}

void tg_log_vwrite(tg_log_level lvl, const char *event, const char *fmt, va_list ap) {
    if ((int)lvl < atomic_load(&g_level) || lvl >= TG_LOG_OFF) return;
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, k_names[lvl], event ? event : "-");
    if (n < 0) return;
    if (fmt && *fmt && (size_t)n < sizeof line - 2) {
        line[n++] = ' ';
        int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        if (m > 0) n += m;
    }
    if ((size_t)n >= sizeof line - 1) n = (int)sizeof line - 2; /* truncated line */
    /* Control characters would let a value forge a second log line. */
    for (int i = 0; i < n; i++)
        if ((unsigned char)line[i] < 0x20) line[i] = ' ';
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void tg_log_write(tg_log_level lvl, const char *event, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    tg_log_vwrite(lvl, event, fmt, ap);
    va_end(ap);
}
