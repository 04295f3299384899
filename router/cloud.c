/* cloud: libcurl multi_socket on libuv. See cloud.h for the contract.
 *
 * Re-entrancy: curl calls our write/header callbacks from inside
 * curl_multi_socket_action, where an easy handle must not be removed. So a
 * cancel that arrives there only marks the call, the write callback then
 * refuses further bytes, and the call is reaped once curl has returned
 * (c->in_curl counts the depth). Outcomes are handed to the caller only
 * from outside curl (check_done), where starting the next attempt is safe. */
#include "router/cloud.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/tg_buf.h"

#define ERR_BODY_MAX 8192

struct rt_cloud {
    uv_loop_t *loop;
    CURLM *multi;
    CURLSH *share;
    uv_timer_t timer;
    int in_curl;   /* depth of curl_multi_socket_action on the stack */
    int n_handles; /* open libuv handles that point back to c */
    bool freeing;  /* rt_cloud_free called: free when n_handles hits 0 */
    rt_cloud_call *calls;
    size_t n_calls;
    uint64_t n_pauses;
};

typedef struct {
    uv_poll_t poll;
    curl_socket_t fd;
    rt_cloud *c;
} sock_ctx;

struct rt_cloud_call {
    rt_cloud *c;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    char *url;
    rt_cloud_cbs cbs;
    void *user;
    bool stream, probe;
    bool canceled;  /* no callbacks any more; reap when curl lets go */
    bool got_first; /* first byte (body when streamed, head otherwise) seen */
    bool in_multi;
    bool paused; /* rt_cloud_pause: gap_timer polls can_resume meanwhile */
    int n_timers_open;
    uv_timer_t gap_timer;   /* first byte, then idle gap */
    uv_timer_t total_timer; /* whole call */
    uint32_t idle_ms;
    uint64_t t0_ns, first_ns;
    rt_fail_cause forced; /* decided by us (timers, on_data) rather than curl */
    int status;
    int retry_after;
    tg_buf err_body;
    char errbuf[CURL_ERROR_SIZE];
    rt_cloud_call *prev, *next;
};

const char *rt_fail_cause_name(rt_fail_cause c) {
    static const char *const names[RT_FAIL__COUNT] = {"none",
                                                      "refused",
                                                      "connect_timeout",
                                                      "first_byte_timeout",
                                                      "idle_timeout",
                                                      "total_timeout",
                                                      "tls",
                                                      "5xx",
                                                      "429",
                                                      "http_status",
                                                      "reset",
                                                      "malformed",
                                                      "breaker_open",
                                                      "offline",
                                                      "engine",
                                                      "low_confidence",
                                                      "engine_busy",
                                                      "mode"};
    return (unsigned)c < RT_FAIL__COUNT ? names[c] : "unknown";
}

bool rt_fail_is_network(rt_fail_cause c) {
    switch (c) {
    case RT_FAIL_REFUSED:
    case RT_FAIL_CONNECT_TIMEOUT:
    case RT_FAIL_FIRST_BYTE_TIMEOUT:
    case RT_FAIL_IDLE_TIMEOUT:
    case RT_FAIL_TLS:
    case RT_FAIL_RESET: return true;
    default: return false;
    }
}

static double ms_since(uint64_t t0_ns) {
    return (double)(uv_hrtime() - t0_ns) / 1e6;
}

/* ------------------------------------------------------------- lifetime -- */

static void maybe_free_cloud(rt_cloud *c) {
    if (c->freeing && c->n_handles == 0) {
        curl_share_cleanup(c->share);
        free(c);
    }
}

static void on_call_timer_closed(uv_handle_t *h) {
    rt_cloud_call *call = h->data;
    if (--call->n_timers_open > 0) return;
    rt_cloud *c = call->c;
    free(call);
    c->n_handles--;
    maybe_free_cloud(c);
}

/* Takes the call out of curl and the list; frees it once its timers close. */
static void call_destroy(rt_cloud_call *call) {
    rt_cloud *c = call->c;
    if (call->in_multi) curl_multi_remove_handle(c->multi, call->easy);
    call->in_multi = false;
    curl_easy_cleanup(call->easy);
    curl_slist_free_all(call->hdrs);
    free(call->body);
    free(call->url);
    tg_buf_free(&call->err_body);
    if (call->prev)
        call->prev->next = call->next;
    else
        c->calls = call->next;
    if (call->next) call->next->prev = call->prev;
    c->n_calls--;
    uv_close((uv_handle_t *)&call->gap_timer, on_call_timer_closed);
    uv_close((uv_handle_t *)&call->total_timer, on_call_timer_closed);
}

/* Calls canceled while curl was on the stack. */
static void reap(rt_cloud *c) {
    rt_cloud_call *call = c->calls;
    while (call) {
        rt_cloud_call *next = call->next;
        if (call->canceled) call_destroy(call);
        call = next;
    }
}

/* --------------------------------------------------------------- outcome -- */

static rt_fail_cause map_curl(CURLcode rc) {
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return RT_FAIL_REFUSED;
    case CURLE_OPERATION_TIMEDOUT: return RT_FAIL_CONNECT_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED: return RT_FAIL_TLS;
    default: return RT_FAIL_RESET;
    }
}

/* Hands the outcome to the caller (outside curl) and frees the call. */
static void finish(rt_cloud_call *call, CURLcode rc) {
    if (call->canceled) {
        call_destroy(call);
        return;
    }
    rt_cloud_result r = {0};
    r.http_status = call->status;
    r.retry_after_s = call->retry_after;
    if (call->forced)
        r.cause = call->forced;
    else if (rc != CURLE_OK)
        r.cause = map_curl(rc);
    else if (call->probe)
        r.cause = RT_FAIL_NONE;
    else if (call->status == 429)
        r.cause = RT_FAIL_429;
    else if (call->status >= 500)
        r.cause = RT_FAIL_5XX;
    else if (call->status < 200 || call->status >= 300)
        r.cause = RT_FAIL_HTTP;
    curl_off_t t_conn = 0, t_app = 0;
    curl_easy_getinfo(call->easy, CURLINFO_CONNECT_TIME_T, &t_conn);
    curl_easy_getinfo(call->easy, CURLINFO_APPCONNECT_TIME_T, &t_app);
    r.connect_ms = (double)(t_app > t_conn ? t_app : t_conn) / 1000.0;
    r.first_byte_ms = call->first_ns ? (double)(call->first_ns - call->t0_ns) / 1e6 : 0;
    r.total_ms = ms_since(call->t0_ns);
    long ver = 0;
    curl_easy_getinfo(call->easy, CURLINFO_HTTP_VERSION, &ver);
    r.http_version = ver == CURL_HTTP_VERSION_2_0 ? "2" : ver ? "1.1" : "";
    char detail[CURL_ERROR_SIZE + 64];
    if (call->forced)
        snprintf(detail, sizeof detail, "%s", rt_fail_cause_name(call->forced));
    else if (rc != CURLE_OK)
        snprintf(detail, sizeof detail, "%s",
                 call->errbuf[0] ? call->errbuf : curl_easy_strerror(rc));
    else
        snprintf(detail, sizeof detail, "HTTP %d", call->status);
    r.detail = detail;
    if (r.cause != RT_FAIL_NONE && call->err_body.len) {
        r.body = call->err_body.data;
        r.body_len = call->err_body.len;
    }
    /* Out of curl before the callback: it may start the next attempt. */
    curl_multi_remove_handle(call->c->multi, call->easy);
    call->in_multi = false;
    call->canceled = true; /* no callback after done, even if done cancels */
    call->cbs.on_done(call->user, &r);
    call_destroy(call);
}

static void check_done(rt_cloud *c) {
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        char *p = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p);
        CURLcode rc = m->data.result;
        if (p) finish((rt_cloud_call *)p, rc);
    }
}

static void action(rt_cloud *c, curl_socket_t s, int flags) {
    int running = 0;
    c->in_curl++;
    curl_multi_socket_action(c->multi, s, flags, &running);
    c->in_curl--;
    if (c->in_curl == 0) {
        reap(c);
        check_done(c);
    }
}

/* ----------------------------------------------------- curl <-> libuv glue -- */

static void on_sock_closed(uv_handle_t *h) {
    sock_ctx *sc = h->data;
    rt_cloud *c = sc->c;
    free(sc);
    c->n_handles--;
    maybe_free_cloud(c);
}

static void on_poll(uv_poll_t *h, int status, int events) {
    sock_ctx *sc = h->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    }
    action(sc->c, sc->fd, flags);
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
    rt_cloud *c = userp;
    sock_ctx *sc = socketp;
    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (sc) {
            uv_poll_stop(&sc->poll);
            curl_multi_assign(c->multi, s, NULL);
            uv_close((uv_handle_t *)&sc->poll, on_sock_closed);
        }
        return 0;
    }
    if (!sc) {
        sc = calloc(1, sizeof *sc);
        if (!sc) abort();
        sc->fd = s;
        sc->c = c;
        if (uv_poll_init_socket(c->loop, &sc->poll, s) != 0) {
            free(sc);
            return -1;
        }
        sc->poll.data = sc;
        c->n_handles++;
        curl_multi_assign(c->multi, s, sc);
    }
    int ev = 0;
    if (what & CURL_POLL_IN) ev |= UV_READABLE;
    if (what & CURL_POLL_OUT) ev |= UV_WRITABLE;
    uv_poll_start(&sc->poll, ev, on_poll);
    return 0;
}

static void on_multi_timeout(uv_timer_t *t) {
    action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp) {
    rt_cloud *c = userp;
    (void)m;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_multi_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ------------------------------------------------------------- timeouts -- */

/* Our own timeout: the call ends with its cause, from outside curl. */
static void expire(rt_cloud_call *call, rt_fail_cause cause) {
    if (call->canceled) return;
    call->forced = cause;
    finish(call, CURLE_OPERATION_TIMEDOUT);
}

static void on_gap_timer(uv_timer_t *t) {
    rt_cloud_call *call = t->data;
    expire(call, call->got_first ? RT_FAIL_IDLE_TIMEOUT : RT_FAIL_FIRST_BYTE_TIMEOUT);
}

static void on_total_timer(uv_timer_t *t) {
    expire(t->data, RT_FAIL_TOTAL_TIMEOUT);
}

static void first_byte(rt_cloud_call *call) {
    if (call->got_first) return;
    call->got_first = true;
    call->first_ns = uv_hrtime();
    if (call->idle_ms)
        uv_timer_start(&call->gap_timer, on_gap_timer, call->idle_ms, call->idle_ms);
    else
        uv_timer_stop(&call->gap_timer);
}

/* ------------------------------------------------------- curl callbacks -- */

static size_t on_header(char *buf, size_t size, size_t n, void *user) {
    rt_cloud_call *call = user;
    size_t len = size * n;
    if (call->canceled) return 0;
    if (len > 5 && !strncmp(buf, "HTTP/", 5)) {
        /* A status line (a new one after 1xx): "HTTP/1.1 200 OK", "HTTP/2 429". */
        const char *sp = memchr(buf, ' ', len);
        call->status = sp ? atoi(sp + 1) : 0;
        call->retry_after = -1;
        if (!call->stream && call->status >= 200) first_byte(call);
    } else if (len > 12 && !strncasecmp(buf, "retry-after:", 12)) {
        char tmp[32];
        size_t k = len - 12 < sizeof tmp - 1 ? len - 12 : sizeof tmp - 1;
        memcpy(tmp, buf + 12, k);
        tmp[k] = 0;
        char *end;
        long v = strtol(tmp, &end, 10);
        if (end != tmp && v >= 0 && v < 86400) call->retry_after = (int)v;
    }
    return len;
}

static size_t on_write(char *buf, size_t size, size_t n, void *user) {
    rt_cloud_call *call = user;
    size_t len = size * n;
    if (call->canceled) return 0;
    if (call->status < 200 || call->status >= 300) {
        /* An error answer: kept (bounded) for the caller's log and relay. */
        size_t room = ERR_BODY_MAX - call->err_body.len;
        tg_buf_append(&call->err_body, buf, len < room ? len : room);
        return len;
    }
    first_byte(call);
    if (call->idle_ms && !call->paused) uv_timer_again(&call->gap_timer);
    if (call->cbs.on_data && call->cbs.on_data(call->user, buf, len) != 0) {
        if (!call->canceled) call->forced = RT_FAIL_MALFORMED;
        return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
    }
    return call->canceled ? 0 : len;
}

/* ---------------------------------------------------------- backpressure -- */

static void on_pause_timer(uv_timer_t *t) {
    rt_cloud_call *call = t->data;
    if (call->canceled || !call->paused) return;
    if (call->cbs.can_resume && !call->cbs.can_resume(call->user)) return;
    call->paused = false;
    uv_timer_stop(&call->gap_timer);
    if (call->idle_ms) uv_timer_start(&call->gap_timer, on_gap_timer, call->idle_ms, call->idle_ms);
    /* Unpausing hands curl's held bytes to on_write at once: as inside
     * action(), a cancel from there is reaped afterwards, and a transfer
     * that ends there is finished. */
    rt_cloud *c = call->c;
    c->in_curl++;
    curl_easy_pause(call->easy, CURLPAUSE_CONT);
    c->in_curl--;
    if (c->in_curl == 0) {
        reap(c);
        check_done(c);
    }
}

void rt_cloud_pause(rt_cloud_call *call) {
    if (!call || call->canceled || call->paused || call->probe) return;
    call->paused = true;
    call->c->n_pauses++;
    curl_easy_pause(call->easy, CURLPAUSE_RECV);
    uv_timer_stop(&call->gap_timer);
    uv_timer_start(&call->gap_timer, on_pause_timer, RT_CLOUD_RESUME_POLL_MS,
                   RT_CLOUD_RESUME_POLL_MS);
}

uint64_t rt_cloud_pauses(const rt_cloud *c) {
    return c ? c->n_pauses : 0;
}

/* ---------------------------------------------------------------- public -- */

rt_cloud *rt_cloud_new(uv_loop_t *loop) {
    static int global_done;
    if (!global_done) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        global_done = 1;
    }
    rt_cloud *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->loop = loop;
    c->multi = curl_multi_init();
    c->share = curl_share_init();
    if (!c->multi || !c->share) abort();
    /* TLS sessions and DNS answers shared by every call; connections are
     * shared by the multi handle itself. */
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 64L);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->n_handles = 1;
    return c;
}

static void on_cloud_timer_closed(uv_handle_t *h) {
    rt_cloud *c = h->data;
    c->n_handles--;
    maybe_free_cloud(c);
}

void rt_cloud_free(rt_cloud *c) {
    if (!c) return;
    while (c->calls)
        call_destroy(c->calls);
    /* Closes cached connections; curl reports their sockets as removed. */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    c->freeing = true;
    uv_close((uv_handle_t *)&c->timer, on_cloud_timer_closed);
}

size_t rt_cloud_active(const rt_cloud *c) {
    return c->n_calls;
}

static rt_cloud_call *call_new(rt_cloud *c, const rt_cloud_target *t, const rt_cloud_cbs *cbs,
                               void *user) {
    rt_cloud_call *call = calloc(1, sizeof *call);
    if (!call) abort();
    call->c = c;
    call->cbs = *cbs;
    call->user = user;
    call->retry_after = -1;
    call->t0_ns = uv_hrtime();
    call->easy = curl_easy_init();
    if (!call->easy) {
        free(call);
        return NULL;
    }
    CURL *e = call->easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)call);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_SHARE, c->share);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, call->errbuf);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    /* Verification is not configurable: a cloud upstream is always checked. */
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (t->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (t->connect_timeout_ms)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)t->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "tidegate/0.1");
    uv_timer_init(c->loop, &call->gap_timer);
    uv_timer_init(c->loop, &call->total_timer);
    call->gap_timer.data = call->total_timer.data = call;
    call->n_timers_open = 2;
    c->n_handles++;
    call->next = c->calls;
    if (c->calls) c->calls->prev = call;
    c->calls = call;
    c->n_calls++;
    return call;
}

static int call_go(rt_cloud_call *call, const rt_cloud_target *t) {
    if (t->first_byte_timeout_ms)
        uv_timer_start(&call->gap_timer, on_gap_timer, t->first_byte_timeout_ms, 0);
    call->idle_ms = t->idle_timeout_ms;
    if (t->total_timeout_ms)
        uv_timer_start(&call->total_timer, on_total_timer, t->total_timeout_ms, 0);
    if (curl_multi_add_handle(call->c->multi, call->easy) != CURLM_OK) {
        call_destroy(call);
        return -1;
    }
    call->in_multi = true;
    return 0;
}

int rt_cloud_start(rt_cloud *c, const rt_cloud_target *t, const char *body, size_t len, bool stream,
                   const rt_cloud_cbs *cbs, void *user, rt_cloud_call **out) {
    rt_cloud_call *call = call_new(c, t, cbs, user);
    if (!call) return -1;
    call->stream = stream;
    size_t ul = strlen(t->base_url);
    call->url = malloc(ul + 32);
    if (!call->url) abort();
    while (ul && t->base_url[ul - 1] == '/')
        ul--;
    snprintf(call->url, ul + 32, "%.*s/chat/completions", (int)ul, t->base_url);
    call->body = malloc(len ? len : 1);
    if (!call->body) abort();
    memcpy(call->body, body, len);
    CURL *e = call->easy;
    curl_easy_setopt(e, CURLOPT_URL, call->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, call);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, call);
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, stream ? "Accept: text/event-stream" : "Accept: application/json");
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    for (int i = 0; i < t->n_headers; i++)
        h = curl_slist_append(h, t->headers[i]);
    if (t->api_key && *t->api_key) {
        tg_buf a = TG_BUF_INIT;
        tg_buf_printf(&a, "Authorization: Bearer %s", t->api_key);
        h = curl_slist_append(h, a.data);
        /* Wipe our copy; curl keeps its own in the list, freed with it. */
        memset(a.data, 0, a.len);
        tg_buf_free(&a);
    }
    call->hdrs = h;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    if (call_go(call, t) != 0) return -1;
    *out = call;
    return 0;
}

int rt_cloud_probe(rt_cloud *c, const rt_cloud_target *t, const rt_cloud_cbs *cbs, void *user,
                   rt_cloud_call **out) {
    rt_cloud_call *call = call_new(c, t, cbs, user);
    if (!call) return -1;
    call->probe = true;
    call->url = strdup(t->base_url);
    if (!call->url) abort();
    curl_easy_setopt(call->easy, CURLOPT_URL, call->url);
    curl_easy_setopt(call->easy, CURLOPT_CONNECT_ONLY, 1L);
    /* A probe must not keep a connection nobody will use. */
    curl_easy_setopt(call->easy, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(call->easy, CURLOPT_FRESH_CONNECT, 1L);
    rt_cloud_target pt = *t;
    pt.first_byte_timeout_ms = 0;
    pt.idle_timeout_ms = 0;
    pt.total_timeout_ms = t->connect_timeout_ms ? t->connect_timeout_ms + 100 : 5000;
    if (call_go(call, &pt) != 0) return -1;
    *out = call;
    return 0;
}

void rt_cloud_cancel(rt_cloud_call *call) {
    if (!call || call->canceled) return;
    call->canceled = true;
    if (call->c->in_curl == 0) call_destroy(call);
    /* else reaped when curl returns (action) */
}
