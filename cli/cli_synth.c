/* cli_synth: `tidegate synth-model` writes random-weight LFM2 GGUFs at real
 * shapes (for tests and benchmarks) and scripted models (see engine/synth.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/tg_buf.h"
#include "tools/synth/synth.h"
#include "cli/cli.h"

static const char USAGE[] =
    "tidegate synth-model -o OUT.gguf [--preset tiny|350m|700m|1.2b|2.6b|tiny-moe|8b-a1b | "
    "--dims E,F,H,HKV,LAYERS,VOCAB] [--attn-layers I,J,..|none] [--moe X,K,FX,LEAD] "
    "[--type f32|f16|bf16|q8_0|q4_0|q4_k_m|q5_k_m|q6_k] [--seed S] [--layers N] [--ctx N] "
    "[--rope-theta F] [--untied] [--lfm25] [--arch NAME] [--name NAME] [--script FILE_OR_TEXT]";

static const char HELP[] =
    "\n"
    "Writes an LFM2 GGUF with random weights at real shapes (default preset: tiny,\n"
    "the fixture shapes: E 256, F 512, 4 heads, 2 KV heads, 6 blocks, attention\n"
    "at 2,4, vocab 1024). Quantized types follow the published mixes.\n"
    "\n"
    "  -o OUT            output file\n"
    "  --preset NAME     tiny, 350m, 700m, 1.2b, 2.6b (vocab 65536, ctx 128000);\n"
    "                    mixtures of experts (lfm2moe): tiny-moe (the fixture shape),\n"
    "                    8b-a1b (LFM2-8B-A1B: 24 blocks, E 2048, dense F 7168 in\n"
    "                    blocks 0-1, 32 experts of width 1792, 4 used per token)\n"
    "  --moe X,K,FX,LEAD X experts of width FX, K used per token, from block LEAD on\n"
    "  --dims LIST       E,F,H,HKV,LAYERS,VOCAB (attention blocks default to 2,5,8,..)\n"
    "  --attn-layers L   attention block indices, or 'none'\n"
    "  --type T          weight mix (default f32)\n"
    "  --seed S          weight seed (default 1; the vocabulary is fixed)\n"
    "  --layers N        keep only the first N blocks\n"
    "  --ctx N           lfm2.context_length\n"
    "  --rope-theta F    lfm2.rope.freq_base\n"
    "  --untied          add a separate output.weight\n"
    "  --lfm25           LFM2.5 chat template (thinking model: past turns lose their\n"
    "                    <think> blocks; the gateway splits reasoning_content out)\n"
    "  --arch NAME       general.architecture (tests of the loader's check)\n"
    "  --name NAME       general.name\n"
    "  --script S        scripted model: S is a file, or else the text itself. The\n"
    "                    model has zero blocks and continues any chat prompt (any\n"
    "                    prompt whose last token is not a piece of S) with exactly S\n"
    "                    and then <|im_end|>. Control tokens such as\n"
    "                    <|tool_call_start|> may appear in S, each at most once.\n";

static int parse_list(const char *s, int *out, int max, int *n) {
    *n = 0;
    if (!strcmp(s, "none") || !*s) return 0;
    char *copy = strdup(s), *save = NULL;
    if (!copy) return -1;
    int rc = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long v;
        if (*n >= max || cli_parse_int(tok, 0, 1 << 30, &v)) {
            rc = -1;
            break;
        }
        out[(*n)++] = (int)v;
    }
    free(copy);
    return rc;
}

/* --script: a readable regular file's contents, else the argument itself. */
static int load_script(const char *arg, tg_buf *out) {
    struct stat st;
    if (stat(arg, &st) == 0 && S_ISREG(st.st_mode)) return tg_buf_read_file(out, arg);
    tg_buf_puts(out, arg);
    return 0;
}

int cmd_synth_model(int argc, char **argv) {
    synth_opts o;
    synth_opts_default(&o);
    const char *out = NULL, *preset = NULL, *dims = NULL, *attn = NULL, *script = NULL;
    const char *name = NULL, *moe = NULL;
    long layers = -1, ctx = -1;
    double theta = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("usage: %s\n%s", USAGE, HELP);
            return 0;
        }
        if (!strcmp(a, "--untied")) {
            o.untied = true;
            continue;
        }
        if (!strcmp(a, "--lfm25")) {
            o.lfm25 = true;
            continue;
        }
        if (i + 1 >= argc)
            return cli_usage_error("synth-model", USAGE, "unknown or incomplete flag %s", a);
        const char *v = argv[++i];
        if (!strcmp(a, "-o"))
            out = v;
        else if (!strcmp(a, "--preset"))
            preset = v;
        else if (!strcmp(a, "--dims"))
            dims = v;
        else if (!strcmp(a, "--moe"))
            moe = v;
        else if (!strcmp(a, "--attn-layers"))
            attn = v;
        else if (!strcmp(a, "--script"))
            script = v;
        else if (!strcmp(a, "--type")) {
            if (!synth_type_known(v))
                return cli_usage_error("synth-model", USAGE, "unknown --type %s", v);
            snprintf(o.type, sizeof o.type, "%s", v);
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || *end || !*v)
                return cli_usage_error("synth-model", USAGE, "bad --seed %s", v);
            o.seed = s;
        } else if (!strcmp(a, "--layers")) {
            if (cli_parse_int(v, 0, SYNTH_MAX_LAYERS, &layers))
                return cli_usage_error("synth-model", USAGE, "bad --layers %s", v);
        } else if (!strcmp(a, "--ctx")) {
            if (cli_parse_int(v, 1, 1L << 30, &ctx))
                return cli_usage_error("synth-model", USAGE, "bad --ctx %s", v);
        } else if (!strcmp(a, "--rope-theta")) {
            if (cli_parse_double(v, &theta) || !(theta > 0))
                return cli_usage_error("synth-model", USAGE, "bad --rope-theta %s", v);
        } else if (!strcmp(a, "--arch")) {
            if (!*v || strlen(v) >= sizeof o.arch)
                return cli_usage_error("synth-model", USAGE, "bad --arch %s", v);
            snprintf(o.arch, sizeof o.arch, "%s", v);
        } else if (!strcmp(a, "--name")) {
            name = v;
        } else {
            return cli_usage_error("synth-model", USAGE, "unknown flag %s", a);
        }
    }
    if (!out) return cli_usage_error("synth-model", USAGE, "-o OUT is required");
    if (preset && dims)
        return cli_usage_error("synth-model", USAGE, "--preset and --dims exclude each other");
    if (preset && synth_preset(preset, &o))
        return cli_usage_error("synth-model", USAGE, "unknown --preset %s", preset);
    if (dims) {
        int d[6], nd;
        if (parse_list(dims, d, 6, &nd) || nd != 6)
            return cli_usage_error("synth-model", USAGE, "--dims needs E,F,H,HKV,LAYERS,VOCAB");
        o.n_embd = d[0], o.n_ff = d[1], o.n_head = d[2], o.n_head_kv = d[3];
        o.n_layer = d[4], o.n_vocab = d[5];
        o.n_attn = 0;
        for (int l = 2; l < o.n_layer && o.n_attn < SYNTH_MAX_LAYERS; l += 3)
            o.attn_layers[o.n_attn++] = l;
        snprintf(o.name, sizeof o.name, "lfm2-synth");
    }
    /* Explicit flags win over the preset's values. */
    if (ctx > 0) o.n_ctx = (int)ctx;
    if (theta > 0) o.rope_theta = (float)theta;
    if (attn && parse_list(attn, o.attn_layers, SYNTH_MAX_LAYERS, &o.n_attn))
        return cli_usage_error("synth-model", USAGE, "bad --attn-layers %s", attn);
    if (moe) {
        int d[4], nd;
        if (parse_list(moe, d, 4, &nd) || nd != 4)
            return cli_usage_error("synth-model", USAGE, "--moe needs X,K,FX,LEAD");
        o.n_expert = d[0], o.n_expert_used = d[1], o.n_ff_exp = d[2], o.n_dense_lead = d[3];
    }
    if (layers >= 0) synth_truncate(&o, (int)layers);

    tg_buf sbuf = TG_BUF_INIT;
    if (script) {
        if (load_script(script, &sbuf)) {
            fprintf(stderr, "tidegate synth-model: %s: cannot read: %s\n", script, strerror(errno));
            return 1;
        }
        o.script = sbuf.data ? sbuf.data : "";
        o.script_len = sbuf.len;
        snprintf(o.name, sizeof o.name, o.lfm25 ? "lfm2.5-scripted" : "lfm2-scripted");
    }
    if (name) snprintf(o.name, sizeof o.name, "%s", name);
    char err[512];
    int rc = synth_write(&o, out, err, sizeof err);
    tg_buf_free(&sbuf);
    if (rc) {
        fprintf(stderr, "tidegate synth-model: %s\n", err);
        return 1;
    }
    struct stat st;
    if (stat(out, &st) == 0)
        printf("wrote %s (%s, %lld bytes)\n", out, o.script ? "scripted" : o.type,
               (long long)st.st_size);
    return 0;
}
