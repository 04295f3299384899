/* health: a snapshot of the device and the upstreams, for routing.
 *
 * A snapshot is a flat vector of named values (rt_health_id), each either
 * known or unknown: a desktop has no battery, a container may hide thermal
 * zones, a gateway without cloud upstreams has no RTT. Policy conditions on
 * an unknown value are false, so "battery_pct < 20" never fires on a
 * machine without a battery.
 *
 * rt_health_sample_system() reads procfs/sysfs under a root directory
 * ("/" in production, a fake tree in tests): /proc/stat (CPU utilisation,
 * as the delta since the previous sample kept in rt_health_sampler),
 * /proc/loadavg, /proc/meminfo, /sys/class/thermal/thermal_zone*\/temp,
 * /sys/class/power_supply/{BAT*,AC*,ADP*}. It does file I/O: the gateway
 * calls it from a libuv timer, never on a request's path; requests read the
 * last snapshot. Engine and cloud values are filled by their owners
 * (rt_health_set). */
#ifndef RT_HEALTH_H
#define RT_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/tg_buf.h"

typedef enum {
    RT_H_CPU_UTIL = 0,       /* 0..1 since the previous sample */
    RT_H_LOAD1,              /* 1-minute load average divided by CPU count */
    RT_H_MEM_AVAILABLE_MB,   /* MemAvailable */
    RT_H_MEM_AVAILABLE_FRAC, /* MemAvailable / MemTotal */
    RT_H_THERMAL_MAX_C,      /* hottest thermal zone, degrees C */
    RT_H_BATTERY_PCT,        /* 0..100, lowest battery present */
    RT_H_AC_ONLINE,          /* 1 on mains power, 0 on battery */
    RT_H_ENGINE_QUEUE_DEPTH, /* requests waiting + running in the engine */
    RT_H_ENGINE_QUEUE_FRAC,  /* depth / capacity, 0..1 */
    RT_H_ENGINE_TOK_S,       /* decode tokens/s, moving average */
    RT_H_ENGINE_TTFT_MS,     /* time to first token, moving average */
    RT_H_CLOUD_RTT_MS,       /* best upstream's RTT, moving average */
    RT_H_CLOUD_SUCCESS,      /* best upstream's success rate, 0..1 */
    RT_H_COUNT
} rt_health_id;

typedef struct {
    double v[RT_H_COUNT];
    bool known[RT_H_COUNT];
    uint64_t sampled_ms; /* wall clock of the last system sample, 0 = never */
} rt_health;

/* What the system sampler keeps between samples (CPU deltas). */
typedef struct {
    char root[256]; /* "" = "/" */
    unsigned long long prev_busy, prev_total;
    bool have_prev;
    int ncpu; /* 0 = count from /proc/stat */
} rt_health_sampler;

const char *rt_health_name(int id);
int rt_health_by_name(const char *name);
/* Every value unknown. */
void rt_health_init(rt_health *h);
void rt_health_set(rt_health *h, rt_health_id id, double v);
void rt_health_unset(rt_health *h, rt_health_id id);

void rt_health_sampler_init(rt_health_sampler *s, const char *root);
/* Refreshes the system values of h (CPU, load, memory, thermal, battery,
 * AC); values it cannot read become unknown. Never fails. */
void rt_health_sample_system(rt_health_sampler *s, rt_health *h);

/* {"cpu_util":0.12,...,"battery_pct":null}: every name, unknown as null. */
void rt_health_json(const rt_health *h, tg_buf *out);
/* Parses that shape (extra keys rejected, missing keys unknown). Returns 0
 * or -1 with err ("key: message"). */
int rt_health_parse_json(const char *text, size_t len, rt_health *h, char *err, size_t errlen);

/* Exponential moving average helper: *avg = known ? a*v + (1-a)*avg : v. */
void rt_health_ema(rt_health *h, rt_health_id id, double v, double alpha);

#endif
