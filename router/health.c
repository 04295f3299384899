/* health: snapshot values, the procfs/sysfs sampler, JSON. See health.h. */
#include "router/health.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

static const char *const k_hnames[RT_H_COUNT] = {
    "cpu_util",       "load1",        "mem_available_mb",   "mem_available_frac", "thermal_max_c",
    "battery_pct",    "ac_online",    "engine_queue_depth", "engine_queue_frac",  "engine_tok_s",
    "engine_ttft_ms", "cloud_rtt_ms", "cloud_success",
};

const char *rt_health_name(int id) {
    return id >= 0 && id < RT_H_COUNT ? k_hnames[id] : "unknown";
}

int rt_health_by_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < RT_H_COUNT; i++)
        if (!strcmp(k_hnames[i], name)) return i;
    return -1;
}

void rt_health_init(rt_health *h) {
    memset(h, 0, sizeof *h);
}

void rt_health_set(rt_health *h, rt_health_id id, double v) {
    if ((int)id < 0 || id >= RT_H_COUNT || !isfinite(v)) return;
    h->v[id] = v;
    h->known[id] = true;
}

void rt_health_unset(rt_health *h, rt_health_id id) {
    if ((int)id < 0 || id >= RT_H_COUNT) return;
    h->v[id] = 0;
    h->known[id] = false;
}

void rt_health_ema(rt_health *h, rt_health_id id, double v, double alpha) {
    if ((int)id < 0 || id >= RT_H_COUNT || !isfinite(v)) return;
    if (h->known[id])
        h->v[id] = alpha * v + (1 - alpha) * h->v[id];
    else
        rt_health_set(h, id, v);
}

/* ------------------------------------------------------------ sampler -- */

void rt_health_sampler_init(rt_health_sampler *s, const char *root) {
    memset(s, 0, sizeof *s);
    if (root && strcmp(root, "/")) snprintf(s->root, sizeof s->root, "%s", root);
}

/* Reads a small file under the root into buf; returns bytes or -1. */
static int read_small(const rt_health_sampler *s, const char *rel, char *buf, size_t cap) {
    char path[512];
    snprintf(path, sizeof path, "%s%s", s->root, rel);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    return (int)n;
}

static void sample_cpu(rt_health_sampler *s, rt_health *h) {
    char buf[8192];
    if (read_small(s, "/proc/stat", buf, sizeof buf) < 0) {
        rt_health_unset(h, RT_H_CPU_UTIL);
        return;
    }
    unsigned long long v[10] = {0};
    int n = sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                   &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
    if (n < 4) {
        rt_health_unset(h, RT_H_CPU_UTIL);
        return;
    }
    int ncpu = 0;
    for (char *p = buf; (p = strstr(p, "\ncpu")); p++)
        if (p[4] >= '0' && p[4] <= '9') ncpu++;
    s->ncpu = ncpu > 0 ? ncpu : 1;
    /* user nice system idle iowait irq softirq steal (guest is in user). */
    unsigned long long idle = v[3] + v[4], total = 0;
    for (int i = 0; i < 8 && i < n; i++)
        total += v[i];
    unsigned long long busy = total - idle;
    if (s->have_prev && total > s->prev_total) {
        double dt = (double)(total - s->prev_total);
        double db = busy >= s->prev_busy ? (double)(busy - s->prev_busy) : 0;
        rt_health_set(h, RT_H_CPU_UTIL, db / dt > 1 ? 1 : db / dt);
    }
    s->prev_busy = busy, s->prev_total = total, s->have_prev = true;
}

static void sample_load(rt_health_sampler *s, rt_health *h) {
    char buf[256];
    double l1;
    if (read_small(s, "/proc/loadavg", buf, sizeof buf) < 0 || sscanf(buf, "%lf", &l1) != 1) {
        rt_health_unset(h, RT_H_LOAD1);
        return;
    }
    rt_health_set(h, RT_H_LOAD1, l1 / (s->ncpu > 0 ? s->ncpu : 1));
}

static void sample_mem(rt_health_sampler *s, rt_health *h) {
    char buf[8192];
    rt_health_unset(h, RT_H_MEM_AVAILABLE_MB);
    rt_health_unset(h, RT_H_MEM_AVAILABLE_FRAC);
    if (read_small(s, "/proc/meminfo", buf, sizeof buf) < 0) return;
    const char *t = strstr(buf, "MemTotal:"), *a = strstr(buf, "MemAvailable:");
    unsigned long long tk = 0, ak = 0;
    if (!a || sscanf(a, "MemAvailable: %llu", &ak) != 1) return;
    rt_health_set(h, RT_H_MEM_AVAILABLE_MB, (double)ak / 1024.0);
    if (t && sscanf(t, "MemTotal: %llu", &tk) == 1 && tk > 0)
        rt_health_set(h, RT_H_MEM_AVAILABLE_FRAC, (double)ak / (double)tk);
}

static void sample_thermal(rt_health_sampler *s, rt_health *h) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/sys/class/thermal", s->root);
    rt_health_unset(h, RT_H_THERMAL_MAX_C);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    double hottest = -1e9;
    bool any = false;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "thermal_zone", 12)) continue;
        char rel[512], buf[64];
        snprintf(rel, sizeof rel, "/sys/class/thermal/%.200s/temp", e->d_name);
        long mc;
        if (read_small(s, rel, buf, sizeof buf) < 0 || sscanf(buf, "%ld", &mc) != 1) continue;
        double c = (double)mc / 1000.0;
        if (c > hottest) hottest = c;
        any = true;
    }
    closedir(d);
    if (any) rt_health_set(h, RT_H_THERMAL_MAX_C, hottest);
}

static void sample_power(rt_health_sampler *s, rt_health *h) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/sys/class/power_supply", s->root);
    rt_health_unset(h, RT_H_BATTERY_PCT);
    rt_health_unset(h, RT_H_AC_ONLINE);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    double lowest = 1e9;
    bool have_bat = false, have_ac = false, ac = false;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char rel[512], buf[64];
        snprintf(rel, sizeof rel, "/sys/class/power_supply/%.200s/type", e->d_name);
        if (read_small(s, rel, buf, sizeof buf) < 0) continue;
        if (!strncmp(buf, "Battery", 7)) {
            long pct;
            snprintf(rel, sizeof rel, "/sys/class/power_supply/%.200s/capacity", e->d_name);
            if (read_small(s, rel, buf, sizeof buf) < 0 || sscanf(buf, "%ld", &pct) != 1) continue;
            if (pct < lowest) lowest = (double)pct;
            have_bat = true;
        } else if (!strncmp(buf, "Mains", 5) || !strncmp(buf, "USB", 3)) {
            long on;
            snprintf(rel, sizeof rel, "/sys/class/power_supply/%.200s/online", e->d_name);
            if (read_small(s, rel, buf, sizeof buf) < 0 || sscanf(buf, "%ld", &on) != 1) continue;
            have_ac = true;
            ac = ac || on != 0;
        }
    }
    closedir(d);
    if (have_bat) rt_health_set(h, RT_H_BATTERY_PCT, lowest);
    /* No supply listed at all: a server on mains; a battery but no AC
     * entry: report nothing rather than guess. */
    if (have_ac) rt_health_set(h, RT_H_AC_ONLINE, ac ? 1 : 0);
}

void rt_health_sample_system(rt_health_sampler *s, rt_health *h) {
    sample_cpu(s, h);
    sample_load(s, h);
    sample_mem(s, h);
    sample_thermal(s, h);
    sample_power(s, h);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->sampled_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* --------------------------------------------------------------- JSON -- */

void rt_health_json(const rt_health *h, tg_buf *out) {
    tg_buf_putc(out, '{');
    for (int i = 0; i < RT_H_COUNT; i++) {
        if (i) tg_buf_putc(out, ',');
        tg_buf_printf(out, "\"%s\":", k_hnames[i]);
        if (!h->known[i])
            tg_buf_puts(out, "null");
        else if (i == RT_H_AC_ONLINE)
            tg_buf_puts(out, h->v[i] != 0 ? "true" : "false");
        else
            tg_buf_printf(out, "%.6g", h->v[i]);
    }
    tg_buf_putc(out, '}');
}

int rt_health_parse_json(const char *text, size_t len, rt_health *h, char *err, size_t errlen) {
    rt_health_init(h);
    json_tokener *tok = json_tokener_new_ex(16);
    if (!tok) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    json_object *root = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error je = json_tokener_get_error(tok);
    json_tokener_free(tok);
    if (!root || je != json_tokener_success) {
        snprintf(err, errlen, "health: not valid JSON (%s)", json_tokener_error_desc(je));
        json_object_put(root);
        return -1;
    }
    /* The /admin/state document nests it under "health"; accept both. */
    json_object *obj = root, *inner;
    if (json_object_is_type(root, json_type_object) &&
        json_object_object_get_ex(root, "health", &inner))
        obj = inner;
    if (!json_object_is_type(obj, json_type_object)) {
        snprintf(err, errlen, "health: must be an object");
        json_object_put(root);
        return -1;
    }
    int rc = 0;
    json_object_object_foreach(obj, key, val) {
        int id = rt_health_by_name(key);
        if (id < 0) {
            snprintf(err, errlen, "%.64s: unknown health value", key);
            rc = -1;
            break;
        }
        if (!val) continue; /* null: unknown */
        if (json_object_is_type(val, json_type_boolean))
            rt_health_set(h, id, json_object_get_boolean(val) ? 1 : 0);
        else if (json_object_is_type(val, json_type_int) ||
                 json_object_is_type(val, json_type_double))
            rt_health_set(h, id, json_object_get_double(val));
        else {
            snprintf(err, errlen, "%s: must be a number, a boolean or null", k_hnames[id]);
            rc = -1;
            break;
        }
    }
    json_object_put(root);
    return rc;
}
