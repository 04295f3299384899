/* cli_logits: `tidegate engine logits`, the engine's verification verb.
 *
 * Feeds a token list through the engine exactly as the fixtures describe:
 * the first N tokens as ONE prefill batch, the rest one at a time through
 * decode, and writes the next-token logits after each listed position as
 * float32 little-endian rows (no header). Comparing that file with a
 * reference's logits checks the whole forward pass from outside. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tg_buf.h"
#include "engine/lfm.h"
#include "cli/cli.h"

static const char *k_usage =
    "tidegate engine logits -m MODEL (--tokens 1,2,3 | --tokens-file FILE) --prefill N "
    "--rows R1,R2,... --out FILE [--kernels scalar|auto] [--kv f32|f16] [--threads N]";

/* Parses non-negative integers separated by commas and/or whitespace; with
 * json=1 a surrounding [ ] is accepted too. Returns 0, or -1 on a bad char
 * or value. *out is malloc'd (may be NULL when empty). */
static int parse_ids(const char *s, size_t len, int json, int32_t **out, size_t *n_out) {
    size_t n = 0, cap = 0;
    int32_t *v = NULL;
    size_t i = 0;
    int opened = 0, closed = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == ',' || isspace(c)) {
            i++;
        } else if (json && c == '[' && !opened && n == 0) {
            opened = 1;
            i++;
        } else if (json && c == ']' && opened && !closed) {
            closed = 1;
            i++;
        } else if (isdigit(c) && !closed) {
            long long x = 0;
            while (i < len && isdigit((unsigned char)s[i])) {
                x = x * 10 + (s[i] - '0');
                if (x > INT32_MAX) goto bad;
                i++;
            }
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                int32_t *nv = realloc(v, cap * sizeof *nv);
                if (!nv) goto bad;
                v = nv;
            }
            v[n++] = (int32_t)x;
        } else {
            goto bad;
        }
    }
    if (opened != closed) goto bad;
    *out = v;
    *n_out = n;
    return 0;
bad:
    free(v);
    return -1;
}

static int fail1(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "tidegate engine logits: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 1;
}

int cmd_engine_logits(int argc, char **argv) {
    const char *model = NULL, *tokens_arg = NULL, *tokens_file = NULL, *rows_arg = NULL,
               *out_path = NULL;
    long prefill = -1, threads = 0;
    lfm_model_opts opts;
    lfm_model_opts_default(&opts);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: %s\n\nWrites the next-token logits after each position in --rows "
                   "(0-based, strictly increasing)\nas float32 little-endian rows to --out. The "
                   "first --prefill tokens are one batch,\nthe rest are decoded one at a time.\n",
                   k_usage);
            return 0;
        }
        if (i + 1 >= argc) return cli_usage_error("engine logits", k_usage, "%s needs a value", a);
        const char *val = argv[++i];
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            model = val;
        else if (!strcmp(a, "--tokens"))
            tokens_arg = val;
        else if (!strcmp(a, "--tokens-file"))
            tokens_file = val;
        else if (!strcmp(a, "--rows"))
            rows_arg = val;
        else if (!strcmp(a, "--out"))
            out_path = val;
        else if (!strcmp(a, "--prefill")) {
            if (cli_parse_int(val, 0, 1L << 30, &prefill))
                return cli_usage_error("engine logits", k_usage, "bad --prefill '%s'", val);
        } else if (!strcmp(a, "--threads")) {
            if (cli_parse_int(val, 0, 256, &threads))
                return cli_usage_error("engine logits", k_usage, "bad --threads '%s'", val);
            opts.n_threads = (int)threads;
        } else if (!strcmp(a, "--kernels")) {
            if (!strcmp(val, "scalar"))
                opts.kernels = LFM_KERNELS_SCALAR;
            else if (!strcmp(val, "auto"))
                opts.kernels = LFM_KERNELS_AUTO;
            else
                return cli_usage_error("engine logits", k_usage, "bad --kernels '%s'", val);
        } else if (!strcmp(a, "--kv")) {
            if (!strcmp(val, "f32"))
                opts.kv_type = LFM_KV_F32;
            else if (!strcmp(val, "f16"))
                opts.kv_type = LFM_KV_F16;
            else
                return cli_usage_error("engine logits", k_usage, "bad --kv '%s'", val);
        } else {
            return cli_usage_error("engine logits", k_usage, "unknown flag '%s'", a);
        }
    }
    if (!model) return cli_usage_error("engine logits", k_usage, "missing -m MODEL");
    if (!tokens_arg == !tokens_file)
        return cli_usage_error("engine logits", k_usage,
                               "give exactly one of --tokens, --tokens-file");
    if (prefill < 0) return cli_usage_error("engine logits", k_usage, "missing --prefill N");
    if (!rows_arg) return cli_usage_error("engine logits", k_usage, "missing --rows");
    if (!out_path) return cli_usage_error("engine logits", k_usage, "missing --out FILE");

    int32_t *toks = NULL, *rows = NULL;
    size_t ntok = 0, nrows = 0;
    if (tokens_arg) {
        if (parse_ids(tokens_arg, strlen(tokens_arg), 0, &toks, &ntok))
            return cli_usage_error("engine logits", k_usage, "bad --tokens list");
    } else {
        tg_buf b = TG_BUF_INIT;
        if (tg_buf_read_file(&b, tokens_file) != 0) {
            tg_buf_free(&b);
            return fail1("%s: %s", tokens_file, strerror(errno));
        }
        int bad = parse_ids(b.data ? b.data : "", b.len, 1, &toks, &ntok);
        tg_buf_free(&b);
        if (bad)
            return fail1("%s: %s", tokens_file,
                         "expected token ids separated by commas/whitespace or a JSON array");
    }
    if (parse_ids(rows_arg, strlen(rows_arg), 0, &rows, &nrows) || nrows == 0) {
        free(toks);
        return cli_usage_error("engine logits", k_usage, "bad --rows list");
    }
    int rc = 1;
    lfm_model *m = NULL;
    lfm_seq *s = NULL;
    float *logits = NULL;
    uint8_t *want = NULL;
    FILE *out = NULL;
    char err[512] = "", num[32];
    if (ntok == 0) {
        fail1("%s%s", "no tokens", "");
        goto done;
    }
    if ((size_t)prefill > ntok) {
        snprintf(num, sizeof num, "%ld", prefill);
        fail1("--prefill %s exceeds the %s", num, "token count");
        goto done;
    }
    for (size_t i = 0; i < nrows; i++) {
        if ((size_t)rows[i] >= ntok || (i > 0 && rows[i] <= rows[i - 1])) {
            fail1("%s%s", "--rows must be strictly increasing positions inside the token list", "");
            goto done;
        }
    }
    if ((rc = lfm_model_load(model, &opts, &m, err, sizeof err)) != 0) {
        rc = 1;
        fail1("%s%s", err, "");
        goto done;
    }
    rc = 1;
    int V = lfm_model_hparams(m)->n_vocab;
    s = lfm_seq_new(m, (int)(ntok < 0x7fffffff ? ntok : 0x7fffffff));
    logits = malloc(nrows * (size_t)V * sizeof *logits);
    want = calloc(ntok, 1);
    out = fopen(out_path, "wb");
    if (!s || !logits || !want) {
        fail1("%s%s", "out of memory", "");
        goto done;
    }
    if (!out) {
        fail1("%s: %s", out_path, strerror(errno));
        goto done;
    }
    size_t k = 0; /* next listed row */
    for (size_t i = 0; i < nrows; i++)
        want[rows[i]] = 1;
    if (prefill > 0) {
        size_t nw = 0;
        for (long i = 0; i < prefill; i++)
            nw += want[i];
        lfm_seq **seqs = malloc((size_t)prefill * sizeof *seqs);
        if (!seqs) {
            fail1("%s%s", "out of memory", "");
            goto done;
        }
        for (long i = 0; i < prefill; i++)
            seqs[i] = s;
        int e = lfm_eval(m, (int)prefill, toks, seqs, want, logits, err, sizeof err);
        free(seqs);
        if (e) {
            fail1("%s%s", err, "");
            goto done;
        }
        k = nw;
    }
    for (size_t i = (size_t)prefill; i < ntok; i++) {
        int e = lfm_eval(m, 1, toks + i, &s, want + i, logits + k * (size_t)V, err, sizeof err);
        if (e) {
            fail1("%s%s", err, "");
            goto done;
        }
        k += want[i];
    }
    if (fwrite(logits, sizeof *logits * (size_t)V, nrows, out) != nrows) {
        fail1("%s: %s", out_path, "write failed");
        goto done;
    }
    rc = 0;
done:
    if (out && fclose(out) != 0 && rc == 0) rc = fail1("%s: %s", out_path, strerror(errno));
    free(toks);
    free(rows);
    free(logits);
    free(want);
    lfm_seq_free(s);
    lfm_model_free(m);
    return rc;
}
