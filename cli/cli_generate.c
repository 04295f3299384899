/* tidegate generate: one prompt through the embedded engine, streamed to
 * stdout as it is produced. It goes through the scheduler (lfm_sched), the
 * same path the gateway uses, so what this prints is what a request gets.
 * Stats go to stderr at the end. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/lfm.h"
#include "engine/lfm_sched.h"
#include "cli/cli.h"

static const char k_usage[] =
    "tidegate generate -m MODEL -p TEXT [--chat] [--system TEXT] [-n N] [-c CTX] [--temp T] "
    "[--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] [--threads N] "
    "[--kernels scalar|auto] [--stop STR]...";

#define GEN_MAX_STOPS 16

typedef struct {
    const char *model;
    const char *prompt;
    const char *system;
    bool chat;
    long n_predict; /* -1 = until context end or EOG */
    long n_ctx;     /* 0 = model's (capped by the scheduler) */
    long threads;
    lfm_kernels kernels;
    lfm_sampler_params sp;
    const char *stops[GEN_MAX_STOPS];
    size_t n_stops;
} gen_args;

/* What the scheduler thread reports, read by the main thread under mu. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    lfm_finish finish;
    char error[256];
    int n_prompt, n_generated;
    double ttft_ms;
    double t_done;
    char last_char;
} gen_state;

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void on_event(void *user, const lfm_event *ev) {
    gen_state *g = user;
    if (ev->type == LFM_EV_TEXT) {
        /* Stream as produced: stdout is only written from this thread. */
        fwrite(ev->text, 1, ev->len, stdout);
        fflush(stdout);
        pthread_mutex_lock(&g->mu);
        if (ev->len) g->last_char = ev->text[ev->len - 1];
        pthread_mutex_unlock(&g->mu);
        return;
    }
    pthread_mutex_lock(&g->mu);
    g->done = true;
    g->finish = ev->finish;
    g->n_prompt = ev->n_prompt;
    g->n_generated = ev->n_generated;
    g->ttft_ms = ev->ttft_ms;
    g->t_done = now_ms();
    if (ev->error) snprintf(g->error, sizeof g->error, "%s", ev->error);
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static int parse_float_flag(const char *flag, const char *v, double min, double max, float *out) {
    double d;
    if (cli_parse_double(v, &d) || !(d >= min && d <= max))
        return cli_usage_error("generate", k_usage, "%s: expected a number in [%g, %g], got '%s'",
                               flag, min, max, v);
    *out = (float)d;
    return 0;
}

/* Returns 0, or the exit code (2) after printing a usage error. */
static int parse_args(int argc, char **argv, gen_args *a) {
    memset(a, 0, sizeof *a);
    a->n_predict = 256;
    a->kernels = LFM_KERNELS_AUTO;
    lfm_sampler_defaults(&a->sp);
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "--chat")) {
            a->chat = true;
            continue;
        }
        if (f[0] != '-') return cli_usage_error("generate", k_usage, "unexpected argument '%s'", f);
        static const char *const k_value_flags[] = {"-m",
                                                    "--model",
                                                    "-p",
                                                    "--prompt",
                                                    "--system",
                                                    "-n",
                                                    "--max-tokens",
                                                    "-c",
                                                    "--ctx",
                                                    "--temp",
                                                    "--temperature",
                                                    "--top-k",
                                                    "--top-p",
                                                    "--min-p",
                                                    "--repeat-penalty",
                                                    "--seed",
                                                    "--threads",
                                                    "-t",
                                                    "--kernels",
                                                    "--stop"};
        bool known = false;
        for (size_t k = 0; k < sizeof k_value_flags / sizeof k_value_flags[0]; k++)
            known = known || !strcmp(f, k_value_flags[k]);
        if (!known) return cli_usage_error("generate", k_usage, "unknown flag '%s'", f);
        if (i + 1 >= argc) return cli_usage_error("generate", k_usage, "%s needs a value", f);
        const char *v = argv[++i];
        int rc = 0;
        if (!strcmp(f, "-m") || !strcmp(f, "--model")) {
            a->model = v;
        } else if (!strcmp(f, "-p") || !strcmp(f, "--prompt")) {
            a->prompt = v;
        } else if (!strcmp(f, "--system")) {
            a->system = v;
        } else if (!strcmp(f, "-n") || !strcmp(f, "--max-tokens")) {
            if (cli_parse_int(v, -1, 1000000, &a->n_predict) || a->n_predict == 0)
                return cli_usage_error("generate", k_usage, "%s: expected -1 or 1..1000000", f);
        } else if (!strcmp(f, "-c") || !strcmp(f, "--ctx")) {
            if (cli_parse_int(v, 0, 1 << 20, &a->n_ctx))
                return cli_usage_error("generate", k_usage, "%s: expected 0..1048576", f);
        } else if (!strcmp(f, "--temp") || !strcmp(f, "--temperature")) {
            rc = parse_float_flag(f, v, 0, 100, &a->sp.temperature);
        } else if (!strcmp(f, "--top-k")) {
            long k;
            if (cli_parse_int(v, 0, 1 << 24, &k))
                return cli_usage_error("generate", k_usage, "%s: expected 0..16777216", f);
            a->sp.top_k = (int)k;
        } else if (!strcmp(f, "--top-p")) {
            rc = parse_float_flag(f, v, 0, 1, &a->sp.top_p);
        } else if (!strcmp(f, "--min-p")) {
            rc = parse_float_flag(f, v, 0, 1, &a->sp.min_p);
        } else if (!strcmp(f, "--repeat-penalty")) {
            rc = parse_float_flag(f, v, 0.01, 100, &a->sp.repeat_penalty);
        } else if (!strcmp(f, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (!*v || *end || errno || v[0] == '-')
                return cli_usage_error("generate", k_usage, "%s: expected an unsigned integer", f);
            a->sp.seed = (uint64_t)s;
        } else if (!strcmp(f, "--threads") || !strcmp(f, "-t")) {
            if (cli_parse_int(v, 0, 1024, &a->threads))
                return cli_usage_error("generate", k_usage, "%s: expected 0..1024", f);
        } else if (!strcmp(f, "--kernels")) {
            if (!strcmp(v, "scalar"))
                a->kernels = LFM_KERNELS_SCALAR;
            else if (!strcmp(v, "auto"))
                a->kernels = LFM_KERNELS_AUTO;
            else
                return cli_usage_error("generate", k_usage, "--kernels: expected scalar or auto");
        } else if (!strcmp(f, "--stop")) {
            if (a->n_stops == GEN_MAX_STOPS)
                return cli_usage_error("generate", k_usage, "at most %d --stop strings",
                                       GEN_MAX_STOPS);
            if (!*v) return cli_usage_error("generate", k_usage, "--stop: empty string");
            a->stops[a->n_stops++] = v;
        } else {
            return cli_usage_error("generate", k_usage, "unknown flag '%s'", f);
        }
        if (rc) return rc;
    }
    if (!a->model) return cli_usage_error("generate", k_usage, "missing -m MODEL");
    if (!a->prompt) return cli_usage_error("generate", k_usage, "missing -p TEXT");
    if (a->system) a->chat = true; /* a system prompt only means something in a chat */
    return 0;
}

/* Prompt text -> tokens (chat template when asked). */
static int build_prompt(const gen_args *a, const lfm_model *m, int32_t **toks, size_t *n) {
    const lfm_tokenizer *tok = lfm_model_tokenizer(m);
    if (!tok) {
        fprintf(stderr, "tidegate generate: %s: model has no tokenizer\n", a->model);
        return 1;
    }
    int rc;
    if (a->chat) {
        lfm_chat_msg msgs[2];
        size_t nm = 0;
        if (a->system) msgs[nm++] = (lfm_chat_msg){LFM_ROLE_SYSTEM, a->system, NULL};
        msgs[nm++] = (lfm_chat_msg){LFM_ROLE_USER, a->prompt, NULL};
        char err[256] = "";
        lfm_template_kind kind = lfm_chat_template_kind(lfm_model_chat_template(m));
        /* The prompt and system text stay plain text (no control tokens). */
        rc = lfm_chat_tokenize(tok, kind, msgs, nm, NULL, true, toks, n, err, sizeof err);
        if (rc == LFM_EINVAL) {
            fprintf(stderr, "tidegate generate: chat template: %s\n", err);
            return 1;
        }
    } else {
        rc = lfm_tokenize(tok, a->prompt, strlen(a->prompt), true, true, toks, n);
    }
    if (rc != LFM_OK || *n == 0) {
        fprintf(stderr, "tidegate generate: cannot tokenize the prompt: %s\n", lfm_strerror(rc));
        return 1;
    }
    return 0;
}

static void print_stats(const gen_state *g, double t_submit) {
    if (g->last_char && g->last_char != '\n') fputc('\n', stderr);
    static const char *const names[] = {"none", "stop", "length", "canceled", "error"};
    const char *why = (unsigned)g->finish < 5 ? names[g->finish] : "?";
    fprintf(stderr, "prompt tokens: %d, generated tokens: %d (finish: %s)\n", g->n_prompt,
            g->n_generated, why);
    if (g->n_generated > 0 && g->ttft_ms > 0) {
        fprintf(stderr, "TTFT: %.1f ms, prefill: %.1f tok/s\n", g->ttft_ms,
                g->n_prompt * 1e3 / g->ttft_ms);
        double decode_ms = g->t_done - (t_submit + g->ttft_ms);
        if (g->n_generated > 1 && decode_ms > 0)
            fprintf(stderr, "decode: %d tokens in %.1f ms, %.1f tok/s\n", g->n_generated - 1,
                    decode_ms, (g->n_generated - 1) * 1e3 / decode_ms);
    }
}

int cmd_generate(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: %s\n"
               "  Streams generated text to stdout; stats on stderr.\n"
               "  --chat renders the prompt (and --system) with the LFM2 chat template.\n"
               "  -n N max tokens (default 256, -1 = until context end), -c CTX context\n"
               "  (default: model's, at most 8192). Sampling defaults are LFM2's\n"
               "  recommendation (temp 0.3, min-p 0.15, repeat-penalty 1.05); --temp 0 is\n"
               "  greedy. --stop may repeat; the stop string is not printed.\n",
               k_usage);
        return 0;
    }
    gen_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;

    lfm_model_opts mo;
    lfm_model_opts_default(&mo);
    mo.n_threads = (int)a.threads;
    mo.kernels = a.kernels;
    lfm_model *m = NULL;
    char err[512] = "";
    if (lfm_model_load(a.model, &mo, &m, err, sizeof err) != LFM_OK) {
        fprintf(stderr, "tidegate generate: %s\n", err[0] ? err : "cannot load model");
        return 1;
    }
    int32_t *toks = NULL;
    size_t n_toks = 0;
    if (build_prompt(&a, m, &toks, &n_toks)) {
        lfm_model_free(m);
        return 1;
    }

    lfm_sched_opts so;
    lfm_sched_opts_default(&so);
    so.max_active = 1;
    so.queue_cap = 1;
    so.n_ctx = (int)a.n_ctx;
    lfm_sched *s = NULL;
    if (lfm_sched_new(m, &so, &s, err, sizeof err) != LFM_OK) {
        fprintf(stderr, "tidegate generate: %s\n", err);
        free(toks);
        lfm_model_free(m);
        return 1;
    }

    gen_state g;
    memset(&g, 0, sizeof g);
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    lfm_job_params jp = {
        .prompt = toks,
        .n_prompt = n_toks,
        .max_tokens = a.n_predict > 0 ? (int)a.n_predict : 0,
        .sampling = a.sp,
        .stop = a.stops,
        .n_stop = a.n_stops,
        .cb = on_event,
        .user = &g,
    };
    struct sigaction sa, old_sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old_sa);

    uint64_t id = 0;
    double t_submit = now_ms();
    rc = lfm_sched_submit(s, &jp, &id);
    int exit_code = 0;
    if (rc != LFM_OK) {
        if (rc == LFM_ECTX)
            fprintf(stderr, "tidegate generate: prompt has %zu tokens, context is %d\n", n_toks,
                    lfm_sched_n_ctx(s));
        else
            fprintf(stderr, "tidegate generate: %s\n", lfm_strerror(rc));
        exit_code = 1;
    } else {
        /* Wait for DONE; poll the interrupt flag so Ctrl-C cancels cleanly. */
        bool canceled = false;
        pthread_mutex_lock(&g.mu);
        while (!g.done) {
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_nsec += 100 * 1000000L;
            if (dl.tv_nsec >= 1000000000L) {
                dl.tv_sec++;
                dl.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&g.cv, &g.mu, &dl);
            if (g_interrupted && !canceled) {
                canceled = true;
                pthread_mutex_unlock(&g.mu);
                lfm_sched_cancel(s, id);
                pthread_mutex_lock(&g.mu);
            }
        }
        pthread_mutex_unlock(&g.mu);
        print_stats(&g, t_submit);
        if (g.finish == LFM_FINISH_ERROR) {
            fprintf(stderr, "tidegate generate: %s\n", g.error[0] ? g.error : "engine error");
            exit_code = 1;
        } else if (g.finish == LFM_FINISH_CANCELED) {
            exit_code = 130;
        }
    }
    lfm_sched_free(s);
    sigaction(SIGINT, &old_sa, NULL);
    pthread_mutex_destroy(&g.mu);
    pthread_cond_destroy(&g.cv);
    free(toks);
    lfm_model_free(m);
    return exit_code;
}
