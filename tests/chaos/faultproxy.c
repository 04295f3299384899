/* faultproxy: a TCP proxy that injects network faults, for the chaos drill.
 *
 * The drill puts it between the gateway and the mock cloud. This kernel has
 * no netem, so latency, loss, stalls and resets are made here, at the TCP
 * byte-stream level (TLS passes through untouched):
 *
 *   latency_ms=N, jitter_ms=N  every chunk is held N (+ uniform 0..jitter) ms,
 *                              in each direction, order kept
 *   loss=P                     each chunk is "lost" with probability P: TCP
 *                              would retransmit it, so it arrives
 *                              loss_penalty_ms (default 200, the minimum RTO)
 *                              late, and everything after it waits behind it
 *   stall=1                    new connections get no byte from upstream
 *                              (stall_after_bytes=N: after the first N bytes,
 *                              e.g. past the TLS handshake)
 *   reset_after_bytes=N        new connections are reset (RST both ways)
 *                              once N bytes have come down from upstream
 *   refuse=1                   new connections are reset at once
 *
 * Control: a line protocol on its own port, one command a line, one reply a
 * line (usable from bash with /dev/tcp):
 *   set k=v [k=v ...]   -> ok | error: ...
 *   clear               -> ok (all faults off; stalled connections stay stuck)
 *   reset_all           -> ok (RST every open connection now: a mid-stream cut)
 *   stats               -> one JSON object of counters
 *
 * Usage: faultproxy --listen HOST:PORT --upstream HOST:PORT
 *                   [--control HOST:PORT] [--port-file FILE] [--seed N]
 * Ports may be 0 (ephemeral); --port-file gets "LISTEN_PORT CONTROL_PORT". */

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

typedef struct {
    int latency_ms, jitter_ms, loss_penalty_ms;
    double loss;
    bool stall, refuse;
    int64_t stall_after_bytes; /* with stall: bytes let through first */
    int64_t reset_after_bytes; /* -1 = off */
} fp_faults;

typedef struct {
    uint64_t connections, active, resets, refused, stalled, delayed_chunks, lost_chunks;
    uint64_t bytes_up, bytes_down, upstream_errors;
} fp_stats;

typedef struct fp_chunk {
    struct fp_chunk *next;
    uint64_t due_ms;
    size_t len;
    char data[];
} fp_chunk;

struct fp_conn;
/* One direction of a connection: bytes read from `from` are written to `to`
 * after their delay. */
typedef struct {
    struct fp_conn *conn;
    uv_tcp_t *from, *to;
    uv_timer_t timer;
    fp_chunk *head, *tail;
    bool down;      /* upstream -> client */
    bool eof;       /* `from` ended: pass the end on once the queue is written */
    bool shut_sent; /* uv_shutdown issued on `to` */
    uv_shutdown_t shut;
} fp_pipe;

typedef struct fp_conn {
    struct fp_conn *prev, *next;
    uv_tcp_t client, upstream;
    fp_pipe up, dn;
    uv_connect_t connect_req;
    int open_handles;
    bool upstream_ready, closing;
    bool stall;
    int64_t stall_after, reset_after;
    uint64_t down_bytes;
} fp_conn;

typedef struct {
    uv_write_t req;
    uv_buf_t buf;
    fp_chunk *chunk;
} fp_write;

static uv_loop_t *g_loop;
static fp_faults g_faults;
static fp_stats g_stats;
static fp_conn *g_conns;
static struct sockaddr_storage g_upstream;
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t fp_rand(void) {
    /* xorshift64*: the drill's --seed makes a run's fault pattern repeatable */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ull;
}

static double fp_rand01(void) {
    return (double)(fp_rand() >> 11) / (double)(1ull << 53);
}

static void fp_faults_clear(void) {
    memset(&g_faults, 0, sizeof g_faults);
    g_faults.loss_penalty_ms = 200;
    g_faults.reset_after_bytes = -1;
}

static void fp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h;
    (void)suggested;
    buf->base = malloc(65536);
    buf->len = buf->base ? 65536 : 0;
}

static void fp_conn_handle_closed(uv_handle_t *h) {
    fp_conn *c = ((fp_pipe *)h->data)->conn; /* every handle's data is one of its pipes */
    if (--c->open_handles > 0) return;
    fp_pipe *pipes[2] = {&c->up, &c->dn};
    for (int i = 0; i < 2; i++) {
        fp_chunk *k = pipes[i]->head;
        while (k) {
            fp_chunk *n = k->next;
            free(k);
            k = n;
        }
    }
    free(c);
}

/* Closes both sides; with rst, the sockets are reset rather than shut. */
static void fp_conn_close(fp_conn *c, bool rst) {
    if (c->closing) return;
    c->closing = true;
    if (c->prev)
        c->prev->next = c->next;
    else
        g_conns = c->next;
    if (c->next) c->next->prev = c->prev;
    g_stats.active--;
    uv_tcp_t *socks[2] = {&c->client, &c->upstream};
    for (int i = 0; i < 2; i++) {
        uv_handle_t *h = (uv_handle_t *)socks[i];
        if (rst && (i == 0 || c->upstream_ready) &&
            uv_tcp_close_reset(socks[i], fp_conn_handle_closed) == 0)
            continue;
        uv_close(h, fp_conn_handle_closed);
    }
    uv_close((uv_handle_t *)&c->up.timer, fp_conn_handle_closed);
    uv_close((uv_handle_t *)&c->dn.timer, fp_conn_handle_closed);
}

static void fp_write_done(uv_write_t *req, int status) {
    fp_write *w = (fp_write *)req;
    free(w->chunk);
    free(w);
    (void)status; /* a failed write shows as a read error/EOF on that side */
}

static void fp_pipe_flush(fp_pipe *p);

static void fp_shutdown_done(uv_shutdown_t *req, int status) {
    fp_pipe *p = req->data;
    (void)status;
    /* The response is complete once the upstream's end reached the client;
     * the request side ending alone keeps the connection for the answer. */
    if (p->down || p->conn->dn.shut_sent) fp_conn_close(p->conn, false);
}

/* After `from` ended and every queued chunk was handed to libuv: shut down
 * `to` (the shutdown completes after those writes). */
static void fp_pipe_finish(fp_pipe *p) {
    if (!p->eof || p->head || p->shut_sent || p->conn->closing) return;
    p->shut_sent = true;
    p->shut.data = p;
    if (uv_shutdown(&p->shut, (uv_stream_t *)p->to, fp_shutdown_done) != 0)
        fp_conn_close(p->conn, false);
}

static void fp_pipe_timer(uv_timer_t *t) {
    fp_pipe_flush(t->data);
}

/* Writes every chunk that is due, in order; re-arms the timer for the next. */
static void fp_pipe_flush(fp_pipe *p) {
    fp_conn *c = p->conn;
    if (c->closing || (p->down == false && !c->upstream_ready)) return;
    uint64_t now = uv_now(g_loop);
    while (p->head && p->head->due_ms <= now) {
        fp_chunk *k = p->head;
        p->head = k->next;
        if (!p->head) p->tail = NULL;
        fp_write *w = calloc(1, sizeof *w);
        if (!w) {
            free(k);
            fp_conn_close(c, true);
            return;
        }
        w->chunk = k;
        w->buf = uv_buf_init(k->data, (unsigned)k->len);
        if (uv_write(&w->req, (uv_stream_t *)p->to, &w->buf, 1, fp_write_done) != 0) {
            free(k);
            free(w);
            fp_conn_close(c, false);
            return;
        }
    }
    if (p->head)
        uv_timer_start(&p->timer, fp_pipe_timer, p->head->due_ms - now, 0);
    else
        fp_pipe_finish(p);
}

static void fp_pipe_push(fp_pipe *p, const char *data, size_t len) {
    fp_chunk *k = malloc(sizeof *k + len);
    if (!k) {
        fp_conn_close(p->conn, true);
        return;
    }
    memcpy(k->data, data, len);
    k->len = len;
    k->next = NULL;
    uint64_t delay = (uint64_t)g_faults.latency_ms;
    if (g_faults.jitter_ms > 0) delay += fp_rand() % (uint64_t)(g_faults.jitter_ms + 1);
    if (g_faults.loss > 0 && fp_rand01() < g_faults.loss) {
        delay += (uint64_t)g_faults.loss_penalty_ms;
        g_stats.lost_chunks++;
    }
    if (delay > 0) g_stats.delayed_chunks++;
    k->due_ms = uv_now(g_loop) + delay;
    /* order is kept: a chunk never overtakes the one before it */
    if (p->tail && p->tail->due_ms > k->due_ms) k->due_ms = p->tail->due_ms;
    if (p->tail)
        p->tail->next = k;
    else
        p->head = k;
    p->tail = k;
    fp_pipe_flush(p);
}

static void fp_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    fp_pipe *p = s->data;
    fp_conn *c = p->conn;
    if (n < 0) {
        free(buf->base);
        if (n != UV_EOF) {
            g_stats.upstream_errors += p->down;
            fp_conn_close(c, true);
            return;
        }
        uv_read_stop(s);
        if (!p->down && c->stall) {
            fp_conn_close(c, false); /* the client gave up on a stalled peer */
            return;
        }
        if (p->down && c->stall) return; /* a stalled peer stays silent, even about its end */
        p->eof = true;
        fp_pipe_flush(p);
        return;
    }
    if (n == 0 || c->closing) {
        free(buf->base);
        return;
    }
    size_t len = (size_t)n;
    if (p->down) {
        g_stats.bytes_down += len;
        if (c->stall) {
            int64_t room = c->stall_after - (int64_t)c->down_bytes;
            if (room <= 0) {
                free(buf->base);
                return; /* swallowed: the client sees a silent peer */
            }
            if ((int64_t)len > room) len = (size_t)room;
        }
        if (c->reset_after >= 0 && (int64_t)(c->down_bytes + len) >= c->reset_after) {
            size_t keep = (size_t)(c->reset_after - (int64_t)c->down_bytes);
            c->down_bytes += keep;
            free(buf->base);
            g_stats.resets++;
            fp_conn_close(c, true);
            return;
        }
        c->down_bytes += len;
    } else {
        g_stats.bytes_up += len;
    }
    fp_pipe_push(p, buf->base, len);
    free(buf->base);
}

static void fp_on_upstream_connect(uv_connect_t *req, int status) {
    fp_conn *c = req->data;
    if (c->closing) return;
    if (status != 0) {
        g_stats.upstream_errors++;
        fp_conn_close(c, true); /* the client sees what a refused peer looks like */
        return;
    }
    c->upstream_ready = true;
    uv_read_start((uv_stream_t *)&c->upstream, fp_alloc, fp_on_read);
    fp_pipe_flush(&c->up);
}

static void fp_on_accept(uv_stream_t *server, int status) {
    if (status != 0) return;
    fp_conn *c = calloc(1, sizeof *c);
    if (!c) return;
    uv_tcp_init(g_loop, &c->client);
    uv_tcp_init(g_loop, &c->upstream);
    c->open_handles = 4;
    c->up = (fp_pipe){.conn = c, .from = &c->client, .to = &c->upstream, .down = false};
    c->dn = (fp_pipe){.conn = c, .from = &c->upstream, .to = &c->client, .down = true};
    uv_timer_init(g_loop, &c->up.timer);
    uv_timer_init(g_loop, &c->dn.timer);
    c->up.timer.data = &c->up;
    c->dn.timer.data = &c->dn;
    c->client.data = &c->up;
    c->upstream.data = &c->dn;
    c->next = g_conns;
    if (g_conns) g_conns->prev = c;
    g_conns = c;
    g_stats.connections++;
    g_stats.active++;
    if (uv_accept(server, (uv_stream_t *)&c->client) != 0) {
        fp_conn_close(c, false);
        return;
    }
    if (g_faults.refuse) {
        g_stats.refused++;
        fp_conn_close(c, true);
        return;
    }
    c->stall = g_faults.stall;
    c->stall_after = g_faults.stall_after_bytes;
    c->reset_after = g_faults.reset_after_bytes;
    if (c->stall) g_stats.stalled++;
    c->connect_req.data = c;
    uv_read_start((uv_stream_t *)&c->client, fp_alloc, fp_on_read);
    if (uv_tcp_connect(&c->connect_req, &c->upstream, (struct sockaddr *)&g_upstream,
                       fp_on_upstream_connect) != 0) {
        g_stats.upstream_errors++;
        fp_conn_close(c, true);
    }
}

/* ---- control port ---- */

typedef struct {
    uv_tcp_t tcp;
    char line[1024];
    size_t len;
} fp_ctl;

static void fp_ctl_closed(uv_handle_t *h) {
    free(h->data);
}

static void fp_ctl_reply(fp_ctl *k, const char *text) {
    size_t n = strlen(text);
    fp_write *w = calloc(1, sizeof *w);
    fp_chunk *chunk = w ? malloc(sizeof *chunk + n) : NULL;
    if (!chunk) {
        free(w);
        return;
    }
    memcpy(chunk->data, text, n);
    chunk->len = n;
    w->chunk = chunk;
    w->buf = uv_buf_init(chunk->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&k->tcp, &w->buf, 1, fp_write_done) != 0) {
        free(chunk);
        free(w);
    }
}

static int fp_set_one(const char *kv, char *err, size_t errsz) {
    const char *eq = strchr(kv, '=');
    if (!eq) {
        snprintf(err, errsz, "expected key=value, got '%.60s'", kv);
        return -1;
    }
    size_t klen = (size_t)(eq - kv);
    const char *v = eq + 1;
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (end == v || *end != '\0' || errno != 0) {
        snprintf(err, errsz, "bad number for %.*s", (int)klen, kv);
        return -1;
    }
#define FP_KEY(name) (klen == sizeof(name) - 1 && memcmp(kv, name, klen) == 0)
    if (FP_KEY("latency_ms") && d >= 0 && d <= 600000)
        g_faults.latency_ms = (int)d;
    else if (FP_KEY("jitter_ms") && d >= 0 && d <= 600000)
        g_faults.jitter_ms = (int)d;
    else if (FP_KEY("loss_penalty_ms") && d >= 0 && d <= 600000)
        g_faults.loss_penalty_ms = (int)d;
    else if (FP_KEY("loss") && d >= 0 && d <= 1)
        g_faults.loss = d;
    else if (FP_KEY("stall") && (d == 0 || d == 1))
        g_faults.stall = d == 1;
    else if (FP_KEY("stall_after_bytes") && d >= 0)
        g_faults.stall_after_bytes = (int64_t)d;
    else if (FP_KEY("reset_after_bytes") && d >= -1)
        g_faults.reset_after_bytes = (int64_t)d;
    else if (FP_KEY("refuse") && (d == 0 || d == 1))
        g_faults.refuse = d == 1;
    else {
        snprintf(err, errsz, "unknown key or value out of range: %.*s", (int)klen, kv);
        return -1;
    }
#undef FP_KEY
    return 0;
}

static void fp_ctl_command(fp_ctl *k, char *line) {
    char out[768];
    char *save = NULL;
    char *cmd = strtok_r(line, " \t\r", &save);
    if (!cmd) {
        fp_ctl_reply(k, "error: empty command\n");
    } else if (strcmp(cmd, "set") == 0) {
        fp_faults before = g_faults;
        char err[160] = "";
        char *kv;
        while ((kv = strtok_r(NULL, " \t\r", &save)) != NULL) {
            if (fp_set_one(kv, err, sizeof err) != 0) {
                g_faults = before; /* all or nothing */
                snprintf(out, sizeof out, "error: %s\n", err);
                fp_ctl_reply(k, out);
                return;
            }
        }
        fp_ctl_reply(k, "ok\n");
    } else if (strcmp(cmd, "clear") == 0) {
        fp_faults_clear();
        fp_ctl_reply(k, "ok\n");
    } else if (strcmp(cmd, "reset_all") == 0) {
        while (g_conns) {
            g_stats.resets++;
            fp_conn_close(g_conns, true);
        }
        fp_ctl_reply(k, "ok\n");
    } else if (strcmp(cmd, "stats") == 0) {
        snprintf(out, sizeof out,
                 "{\"connections\":%" PRIu64 ",\"active\":%" PRIu64 ",\"resets\":%" PRIu64
                 ",\"refused\":%" PRIu64 ",\"stalled\":%" PRIu64 ",\"delayed_chunks\":%" PRIu64
                 ",\"lost_chunks\":%" PRIu64 ",\"bytes_up\":%" PRIu64 ",\"bytes_down\":%" PRIu64
                 ",\"upstream_errors\":%" PRIu64 ",\"latency_ms\":%d,\"loss\":%g,\"stall\":%d,"
                 "\"refuse\":%d,\"reset_after_bytes\":%" PRId64 "}\n",
                 g_stats.connections, g_stats.active, g_stats.resets, g_stats.refused,
                 g_stats.stalled, g_stats.delayed_chunks, g_stats.lost_chunks, g_stats.bytes_up,
                 g_stats.bytes_down, g_stats.upstream_errors, g_faults.latency_ms, g_faults.loss,
                 g_faults.stall, g_faults.refuse, g_faults.reset_after_bytes);
        fp_ctl_reply(k, out);
    } else {
        fp_ctl_reply(k, "error: unknown command (set, clear, reset_all, stats)\n");
    }
}

static void fp_ctl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    fp_ctl *k = s->data;
    if (n < 0) {
        free(buf->base);
        uv_close((uv_handle_t *)&k->tcp, fp_ctl_closed);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        char ch = buf->base[i];
        if (ch == '\n') {
            k->line[k->len] = '\0';
            fp_ctl_command(k, k->line);
            k->len = 0;
        } else if (k->len + 1 < sizeof k->line) {
            k->line[k->len++] = ch;
        }
    }
    free(buf->base);
}

static void fp_ctl_accept(uv_stream_t *server, int status) {
    if (status != 0) return;
    fp_ctl *k = calloc(1, sizeof *k);
    if (!k) return;
    uv_tcp_init(g_loop, &k->tcp);
    k->tcp.data = k;
    if (uv_accept(server, (uv_stream_t *)&k->tcp) != 0) {
        uv_close((uv_handle_t *)&k->tcp, fp_ctl_closed);
        return;
    }
    uv_read_start((uv_stream_t *)&k->tcp, fp_alloc, fp_ctl_read);
}

/* ---- main ---- */

static int fp_parse_addr(const char *s, struct sockaddr_storage *out) {
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) return -1;
    char host[128];
    size_t hl = (size_t)(colon - s);
    if (hl >= sizeof host) return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535) return -1;
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)out) == 0 ? 0 : -1;
    }
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) == 0 ? 0 : -1;
}

static int fp_bound_port(uv_tcp_t *t) {
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(t, (struct sockaddr *)&ss, &len) != 0) return -1;
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void fp_on_signal(uv_signal_t *s, int signum) {
    (void)signum;
    uv_stop(s->loop);
}

static int fp_usage(void) {
    fprintf(stderr, "usage: faultproxy --listen HOST:PORT --upstream HOST:PORT "
                    "[--control HOST:PORT] [--port-file FILE] [--seed N]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *listen_s = NULL, *upstream_s = NULL, *control_s = "127.0.0.1:0";
    const char *port_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return fp_usage();
        if (strcmp(a, "--listen") == 0)
            listen_s = v;
        else if (strcmp(a, "--upstream") == 0)
            upstream_s = v;
        else if (strcmp(a, "--control") == 0)
            control_s = v;
        else if (strcmp(a, "--port-file") == 0)
            port_file = v;
        else if (strcmp(a, "--seed") == 0)
            g_rng = strtoull(v, NULL, 10) * 0x9e3779b97f4a7c15ull + 1;
        else
            return fp_usage();
        i++;
    }
    struct sockaddr_storage la, ca;
    if (!listen_s || !upstream_s || fp_parse_addr(listen_s, &la) != 0 ||
        fp_parse_addr(upstream_s, &g_upstream) != 0 || fp_parse_addr(control_s, &ca) != 0)
        return fp_usage();
    signal(SIGPIPE, SIG_IGN);
    fp_faults_clear();
    g_loop = uv_default_loop();
    uv_tcp_t lis, ctl;
    uv_tcp_init(g_loop, &lis);
    uv_tcp_init(g_loop, &ctl);
    int rc;
    if ((rc = uv_tcp_bind(&lis, (struct sockaddr *)&la, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&lis, 512, fp_on_accept)) != 0 ||
        (rc = uv_tcp_bind(&ctl, (struct sockaddr *)&ca, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&ctl, 16, fp_ctl_accept)) != 0) {
        fprintf(stderr, "faultproxy: cannot listen: %s\n", uv_strerror(rc));
        return 1;
    }
    int lp = fp_bound_port(&lis), cp = fp_bound_port(&ctl);
    if (port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%d %d\n", lp, cp) < 0 || fclose(f) != 0 ||
            rename(tmp, port_file) != 0) {
            fprintf(stderr, "faultproxy: cannot write %s\n", port_file);
            return 1;
        }
    }
    printf("faultproxy listening port=%d control_port=%d\n", lp, cp);
    fflush(stdout);
    uv_signal_t sig_term, sig_int;
    uv_signal_init(g_loop, &sig_term);
    uv_signal_init(g_loop, &sig_int);
    uv_signal_start(&sig_term, fp_on_signal, SIGTERM);
    uv_signal_start(&sig_int, fp_on_signal, SIGINT);
    uv_run(g_loop, UV_RUN_DEFAULT);
    return 0;
}
