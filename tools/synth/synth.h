/* synth: writes random-weight LFM2 GGUF files at real shapes, and "scripted"
 * models whose greedy output is a given text.
 *
 * Random models use the metadata keys, tensor names, shapes and per-tensor
 * quantization mixes of Liquid's published GGUFs (see docs LFM2.md), with a
 * deterministic byte-level BPE vocabulary (control tokens at ids 0-13).
 *
 * Scripted models have zero blocks and an untied output.weight: the next
 * token depends only on the current one, through a transition table built
 * into token_embd (one-hot rows) and output.weight. Every token that is not
 * part of the script leads to the script's first piece, so the greedy (and,
 * with a logit margin of ~32, practically any sampled) continuation of any
 * prompt is exactly the script followed by <|im_end|>. */
#ifndef LFM_SYNTH_H
#define LFM_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/tg_buf.h"

#define SYNTH_MAX_LAYERS 64

typedef struct {
    int n_embd;    /* E */
    int n_ff;      /* F */
    int n_head;    /* H (head dim = E / H) */
    int n_head_kv; /* KV heads of attention blocks */
    int n_layer;   /* blocks */
    int n_vocab;
    int n_attn;                        /* attention blocks ... */
    int attn_layers[SYNTH_MAX_LAYERS]; /* ... at these block indices */
    int n_ctx;                         /* lfm2.context_length */
    float rope_theta;
    float rms_eps;
    char type[16];    /* f32 f16 bf16 q8_0 q4_0 q4_k_m q5_k_m q6_k */
    uint64_t seed;    /* weights (the vocabulary does not depend on it) */
    bool untied;      /* write a separate output.weight */
    float weight_std; /* std of matrix weights (default 0.02) */
    char arch[32];    /* general.architecture (default "lfm2"; tests override) */
    char name[64];    /* general.name */
    /* Mixture of experts (lfm2moe) when n_expert > 0: blocks from
     * n_dense_lead on carry n_expert experts of width n_ff_exp, n_expert_used
     * per token; general.architecture becomes lfm2moe unless arch is set to
     * something other than "lfm2". moe_gating: expert_gating_func to write
     * (0 = 2, sigmoid; tests write others). */
    int n_expert, n_expert_used, n_ff_exp, n_dense_lead, moe_gating;
    bool lfm25;         /* write the LFM2.5 chat template (thinking model) */
    const char *script; /* non-NULL: scripted model (shape fields are derived) */
    size_t script_len;
} synth_opts;

/* Defaults: the "tiny" preset (fixture shapes), f32, seed 1. */
void synth_opts_default(synth_opts *o);
/* Applies a preset: tiny, 350m, 700m, 1.2b, 2.6b, and the mixtures of
 * experts tiny-moe (fixture shapes) and 8b-a1b. Returns 0 or -1. */
int synth_preset(const char *name, synth_opts *o);
/* Keeps only the first n blocks (and their attention layers). */
void synth_truncate(synth_opts *o, int n_layers);
/* Returns 1 if a mix name is known. */
bool synth_type_known(const char *type);

/* Writes the model. Returns 0, or -1 with a one-line message. */
int synth_write(const synth_opts *o, const char *path, char *err, size_t errlen);
/* Same into memory (appended to out). */
int synth_write_buf(const synth_opts *o, tg_buf *out, char *err, size_t errlen);

#endif
