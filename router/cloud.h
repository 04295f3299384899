/* cloud: HTTPS client for OpenAI-compatible upstreams, on libcurl's
 * multi_socket interface driven by the gateway's libuv loop: curl says which
 * sockets to watch (uv_poll_t) and when to wake it (uv_timer_t); no thread,
 * no blocking call. One rt_cloud (one multi handle) serves every upstream,
 * so connections and TLS sessions are reused across requests, and HTTP/2
 * multiplexes when the upstream offers it (ALPN).
 *
 * A call POSTs one body to <base_url>/chat/completions and reports, on the
 * loop: the response body bytes as they arrive (2xx only; the caller parses
 * SSE incrementally) and one done event with the outcome. Timeouts: connect
 * (curl), first byte, idle gap between received bytes, total (our timers,
 * so each has its own cause). TLS verification is always on; the CA file is
 * the upstream's, else the system's.
 *
 * Secrets: the API key goes only into the Authorization header of the
 * request; nothing here logs headers, and curl's verbose mode is never on.
 *
 * Lifetimes: the caller owns `user`; after rt_cloud_cancel or the done
 * callback no callback comes for that call. Everything on the loop thread. */
#ifndef RT_CLOUD_H
#define RT_CLOUD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* Why an attempt failed; also the `cause=` of x-tidegate-failover. */
typedef enum {
    RT_FAIL_NONE = 0,
    RT_FAIL_REFUSED,            /* connection refused / unreachable / DNS */
    RT_FAIL_CONNECT_TIMEOUT,    /* TCP+TLS connect exceeded its budget */
    RT_FAIL_FIRST_BYTE_TIMEOUT, /* connected, nothing came in time */
    RT_FAIL_IDLE_TIMEOUT,       /* a gap between chunks exceeded its budget */
    RT_FAIL_TOTAL_TIMEOUT,
    RT_FAIL_TLS,       /* handshake or certificate verification failed */
    RT_FAIL_5XX,       /* the upstream answered 5xx */
    RT_FAIL_429,       /* the upstream answered 429 */
    RT_FAIL_HTTP,      /* another non-2xx answer (4xx: key, request) */
    RT_FAIL_RESET,     /* the connection broke mid-way */
    RT_FAIL_MALFORMED, /* the body was not what the protocol says */
    RT_FAIL_BREAKER_OPEN,
    RT_FAIL_OFFLINE,        /* the connectivity mode keeps requests off the network */
    RT_FAIL_ENGINE,         /* the engine failed (error, queue full) */
    RT_FAIL_LOW_CONFIDENCE, /* a cascade judged the engine's first tokens unsure */
    RT_FAIL_ENGINE_BUSY,    /* the engine shed the request (queue full): busy, not broken */
    RT_FAIL_MODE,           /* a mode switch since the plan forbids this target now */
    RT_FAIL__COUNT
} rt_fail_cause;

const char *rt_fail_cause_name(rt_fail_cause c);
/* Failures that say the network path is broken (vs. the upstream answering
 * badly): they drive the automatic offline mode. */
bool rt_fail_is_network(rt_fail_cause c);

typedef struct {
    const char *base_url;       /* https://host[:port]/v1 */
    const char *api_key;        /* bearer token or NULL */
    const char *const *headers; /* "Name: value" */
    int n_headers;
    const char *ca_file; /* NULL = system CAs */
    uint32_t connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms, total_timeout_ms;
} rt_cloud_target;

typedef struct {
    rt_fail_cause cause; /* RT_FAIL_NONE: a complete 2xx answer */
    int http_status;     /* 0 when none came */
    int retry_after_s;   /* from Retry-After (429/503), -1 when absent */
    double connect_ms;   /* TCP+TLS (0 when a connection was reused) */
    double first_byte_ms;
    double total_ms;
    const char *http_version; /* "1.1", "2" */
    const char *detail;       /* one line (curl's error text); never holds the key */
    const char *body;         /* non-2xx: the error body (at most 8 KiB), else NULL */
    size_t body_len;
} rt_cloud_result;

typedef struct {
    /* 2xx body bytes, in order. Return nonzero to stop the call (it then
     * ends with cause RT_FAIL_MALFORMED and done is called). */
    int (*on_data)(void *user, const char *buf, size_t len);
    void (*on_done)(void *user, const rt_cloud_result *r);
    /* Optional, for rt_cloud_pause: may receiving go on? */
    bool (*can_resume)(void *user);
} rt_cloud_cbs;

typedef struct rt_cloud rt_cloud;
typedef struct rt_cloud_call rt_cloud_call;

rt_cloud *rt_cloud_new(uv_loop_t *loop);
/* Cancels every call (no callbacks) and frees once libuv has closed the
 * handles (the loop must run afterwards for that). */
void rt_cloud_free(rt_cloud *c);

/* Starts a POST of body (copied) to <base_url>/chat/completions. stream
 * selects which timeout guards the first byte: the first body byte when
 * streamed, the response head otherwise. Returns 0 and *out, or -1 (out of
 * handles; nothing started, no callback). */
int rt_cloud_start(rt_cloud *c, const rt_cloud_target *t, const char *body, size_t len, bool stream,
                   const rt_cloud_cbs *cbs, void *user, rt_cloud_call **out);
/* Stops a call; no callback comes afterwards. Safe from inside on_data. */
void rt_cloud_cancel(rt_cloud_call *call);

/* Backpressure: the caller's consumer (a slow client) is behind. Receiving
 * pauses (curl stops reading the socket, so TCP flow control reaches the
 * upstream instead of the gateway buffering its stream) until
 * cbs.can_resume(user) says yes, asked every RT_CLOUD_RESUME_POLL_MS. The
 * idle-gap budget does not run meanwhile (the gap is ours, not the
 * upstream's); the total budget does. Safe from inside on_data. */
#define RT_CLOUD_RESUME_POLL_MS 5
void rt_cloud_pause(rt_cloud_call *call);
/* Pauses so far (metrics, tests). */
uint64_t rt_cloud_pauses(const rt_cloud *c);

/* A light probe: TCP + TLS handshake to the target's host, no request.
 * done gets RT_FAIL_NONE or why it failed. */
int rt_cloud_probe(rt_cloud *c, const rt_cloud_target *t, const rt_cloud_cbs *cbs, void *user,
                   rt_cloud_call **out);

/* Calls in flight (tests, metrics). */
size_t rt_cloud_active(const rt_cloud *c);

#endif
