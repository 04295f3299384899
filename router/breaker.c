/* breaker: see breaker.h. */
#include "router/breaker.h"

#include <string.h>

static void go(rt_breaker *b, rt_breaker_state to, uint64_t now_ms) {
    rt_breaker_state from = b->state;
    b->state = to;
    b->n_transitions[to]++;
    b->trial_out = false;
    if (to == RT_BREAKER_OPEN) b->opened_at_ms = now_ms;
    if (to == RT_BREAKER_CLOSED) {
        /* A fresh start: the failures that opened it are history. */
        b->consecutive = 0;
        b->ring_n = b->ring_pos = b->ring_fail = 0;
    }
    if (b->hook && from != to) b->hook(b->hook_user, b, from, to);
}

void rt_breaker_init(rt_breaker *b, const rt_breaker_conf *conf) {
    rt_breaker_hook hook = b->hook;
    void *user = b->hook_user;
    memset(b, 0, sizeof *b);
    b->hook = hook;
    b->hook_user = user;
    b->conf = *conf;
    if (b->conf.failures < 1) b->conf.failures = 1;
    if (b->conf.window < 2) b->conf.window = 2;
    if (b->conf.window > RT_BREAKER_MAX_WINDOW) b->conf.window = RT_BREAKER_MAX_WINDOW;
    if (b->conf.min_requests < 1) b->conf.min_requests = 1;
    if (b->conf.min_requests > b->conf.window) b->conf.min_requests = b->conf.window;
    if (b->conf.failure_rate_pct < 1) b->conf.failure_rate_pct = 1;
    b->state = RT_BREAKER_CLOSED;
}

static void record(rt_breaker *b, int fail) {
    if (b->ring_n == b->conf.window) {
        b->ring_fail -= b->ring[b->ring_pos];
    } else {
        b->ring_n++;
    }
    b->ring[b->ring_pos] = (uint8_t)fail;
    b->ring_fail += fail;
    b->ring_pos = (b->ring_pos + 1) % b->conf.window;
}

double rt_breaker_failure_rate(const rt_breaker *b) {
    return b->ring_n ? (double)b->ring_fail / b->ring_n : 0.0;
}

bool rt_breaker_allow(rt_breaker *b, uint64_t now_ms) {
    switch (b->state) {
    case RT_BREAKER_CLOSED: return true;
    case RT_BREAKER_OPEN:
        if (now_ms - b->opened_at_ms < b->conf.cooldown_ms) break;
        go(b, RT_BREAKER_HALF_OPEN, now_ms);
        b->trial_out = true;
        return true;
    case RT_BREAKER_HALF_OPEN:
        if (b->trial_out) break;
        b->trial_out = true;
        return true;
    }
    b->n_rejected++;
    return false;
}

void rt_breaker_success(rt_breaker *b, uint64_t now_ms) {
    b->n_success++;
    if (b->state == RT_BREAKER_HALF_OPEN) {
        go(b, RT_BREAKER_CLOSED, now_ms);
        return;
    }
    b->consecutive = 0;
    record(b, 0);
}

void rt_breaker_failure(rt_breaker *b, uint64_t now_ms) {
    b->n_failure++;
    if (b->state == RT_BREAKER_HALF_OPEN) {
        go(b, RT_BREAKER_OPEN, now_ms);
        return;
    }
    if (b->state == RT_BREAKER_OPEN) return; /* a request that started before it opened */
    b->consecutive++;
    record(b, 1);
    bool rate = b->ring_n >= b->conf.min_requests &&
                b->ring_fail * 100 >= b->conf.failure_rate_pct * b->ring_n;
    if (b->consecutive >= b->conf.failures || rate) go(b, RT_BREAKER_OPEN, now_ms);
}

void rt_breaker_release(rt_breaker *b) {
    if (b->state == RT_BREAKER_HALF_OPEN) b->trial_out = false;
}

void rt_breaker_force(rt_breaker *b, rt_breaker_state s, uint64_t now_ms) {
    go(b, s, now_ms);
}

const char *rt_breaker_state_name(rt_breaker_state s) {
    switch (s) {
    case RT_BREAKER_CLOSED: return "closed";
    case RT_BREAKER_OPEN: return "open";
    case RT_BREAKER_HALF_OPEN: return "half_open";
    }
    return "unknown";
}
