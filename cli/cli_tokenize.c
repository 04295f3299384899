/* `tidegate engine tokenize -m MODEL --text-file FILE`: prints the token ids
 * of the file's bytes (any bytes; BOS added per the model's metadata,
 * special tokens parsed) as one compact JSON array on one stdout line.
 * Opens only the GGUF metadata (no weights are touched), so it works on any
 * file with a tokenizer. Logs go to stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/tg_buf.h"
#include "common/tg_log.h"
#include "engine/gguf.h"
#include "engine/lfm.h"
#include "engine/tokenizer.h"
#include "cli/cli.h"

static const char USAGE[] = "tidegate engine tokenize -m MODEL --text-file FILE";

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int cmd_engine_tokenize(int argc, char **argv) {
    const char *model = NULL, *text_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: %s\n\n"
                   "Prints the token ids of FILE's bytes as a JSON array on one line.\n"
                   "BOS is added when the model's metadata says so; special tokens are parsed.\n"
                   "  -m, --model MODEL    GGUF file (only its tokenizer metadata is read)\n"
                   "  --text-file FILE     input bytes (any bytes, UTF-8 or not)\n",
                   USAGE);
            return 0;
        }
        const char **dst = NULL;
        if (!strcmp(a, "-m") || !strcmp(a, "--model"))
            dst = &model;
        else if (!strcmp(a, "--text-file"))
            dst = &text_file;
        else
            return cli_usage_error("engine tokenize", USAGE, "unknown option '%s'", a);
        if (i + 1 >= argc) return cli_usage_error("engine tokenize", USAGE, "%s needs a value", a);
        *dst = argv[++i];
    }
    if (!model) return cli_usage_error("engine tokenize", USAGE, "missing -m MODEL");
    if (!text_file) return cli_usage_error("engine tokenize", USAGE, "missing --text-file FILE");
    tg_log_init_from_env();

    tg_buf text = TG_BUF_INIT;
    if (tg_buf_read_file(&text, text_file) != 0) {
        fprintf(stderr, "tidegate engine tokenize: %s: %s\n", text_file, strerror(errno));
        tg_buf_free(&text);
        return 1;
    }
    char err[512];
    gguf_file *f = NULL;
    if (gguf_open(model, &f, err, sizeof err) != 0) {
        fprintf(stderr, "tidegate engine tokenize: %s\n", err);
        tg_buf_free(&text);
        return 1;
    }
    lfm_tokenizer *tok = NULL;
    int rc = lfm_tokenizer_from_gguf(f, &tok, err, sizeof err);
    gguf_close(f);
    if (rc != 0) {
        fprintf(stderr, "tidegate engine tokenize: %s: %s\n", model, err);
        tg_buf_free(&text);
        return 1;
    }
    double t0 = now_ms();
    int32_t *ids = NULL;
    size_t n = 0;
    rc = lfm_tokenize(tok, text.data, text.len, true, true, &ids, &n);
    double dt = now_ms() - t0;
    if (rc != 0) {
        fprintf(stderr, "tidegate engine tokenize: %s\n", lfm_strerror(rc));
        lfm_tokenizer_free(tok);
        tg_buf_free(&text);
        return 1;
    }
    tg_buf out = TG_BUF_INIT;
    tg_buf_reserve(&out, n * 6 + 4);
    tg_buf_putc(&out, '[');
    for (size_t i = 0; i < n; i++)
        tg_buf_printf(&out, i ? ",%d" : "%d", (int)ids[i]);
    tg_buf_puts(&out, "]\n");
    int wrc = fwrite(out.data, 1, out.len, stdout) == out.len && fflush(stdout) == 0 ? 0 : 1;
    if (wrc) fprintf(stderr, "tidegate engine tokenize: cannot write output\n");
    tg_log_info("tokenized", "bytes=%zu tokens=%zu ms=%.3f vocab=%d", text.len, n, dt,
                lfm_vocab_size(tok));
    tg_buf_free(&out);
    free(ids);
    lfm_tokenizer_free(tok);
    tg_buf_free(&text);
    return wrc;
}
