/* breaker: a circuit breaker for one target (a cloud upstream or the engine).
 *
 *   closed --(N consecutive failures, or failure rate >= R over the last W
 *             outcomes once at least M are known)--> open
 *   open   --(cooldown elapsed; the next request is the one trial)--> half-open
 *   half-open --(trial succeeds)--> closed   --(trial fails)--> open again
 *
 * An open breaker answers rt_breaker_allow() false at once, so an outage
 * costs a request nothing once the breaker has opened. Only one trial runs
 * in half-open; others are refused until its outcome is known.
 *
 * Pure state: time comes in as an argument (milliseconds, any monotonic
 * origin), nothing is allocated, no I/O; a transition hook reports changes
 * (metrics, logs). Loop thread only. */
#ifndef RT_BREAKER_H
#define RT_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { RT_BREAKER_CLOSED = 0, RT_BREAKER_OPEN, RT_BREAKER_HALF_OPEN } rt_breaker_state;

#define RT_BREAKER_MAX_WINDOW 64

typedef struct {
    int failures;         /* consecutive failures that open it (>= 1) */
    int failure_rate_pct; /* rate over the window that opens it (1..100) */
    int window;           /* outcomes the rate is taken over (2..64) */
    int min_requests;     /* outcomes needed before the rate counts */
    uint32_t cooldown_ms; /* open -> half-open */
} rt_breaker_conf;

typedef struct rt_breaker rt_breaker;
typedef void (*rt_breaker_hook)(void *user, const rt_breaker *b, rt_breaker_state from,
                                rt_breaker_state to);

struct rt_breaker {
    rt_breaker_conf conf;
    rt_breaker_state state;
    int consecutive;                     /* failures in a row */
    uint8_t ring[RT_BREAKER_MAX_WINDOW]; /* 1 = failure, oldest overwritten */
    int ring_n, ring_pos, ring_fail;
    uint64_t opened_at_ms;
    bool trial_out; /* half-open: the one trial is running */
    uint64_t n_success, n_failure, n_rejected;
    uint64_t n_transitions[3]; /* entries into each state */
    rt_breaker_hook hook;
    void *hook_user;
};

void rt_breaker_init(rt_breaker *b, const rt_breaker_conf *conf);
/* May a request go to this target now? Moves open -> half-open when the
 * cooldown has passed and hands out the one trial. A true answer must be
 * followed by rt_breaker_success, _failure or _release. */
bool rt_breaker_allow(rt_breaker *b, uint64_t now_ms);
void rt_breaker_success(rt_breaker *b, uint64_t now_ms);
void rt_breaker_failure(rt_breaker *b, uint64_t now_ms);
/* The request ended without saying anything about the target (client
 * gone, canceled): a half-open trial is handed back. */
void rt_breaker_release(rt_breaker *b);
/* Failures among the last outcomes, 0..1 (0 with none). */
double rt_breaker_failure_rate(const rt_breaker *b);
/* Forces a state (tests, admin); runs the hook. */
void rt_breaker_force(rt_breaker *b, rt_breaker_state s, uint64_t now_ms);
const char *rt_breaker_state_name(rt_breaker_state s);

#endif
