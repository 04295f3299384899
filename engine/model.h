/* model.h: engine-internal layout of a loaded LFM2 model and of a sequence's
 * decode state. Public API in lfm.h; the forward pass is in forward.c, the
 * loader and validation in model_load.c, sequence state in seq.c.
 *
 * Notation in shape comments: E embedding, F ffn inner, V vocab, H query
 * heads, Hkv KV heads of that block, hd head dim, K conv width. Matrices are
 * row-major W[out][in] (GGUF dims [in, out]). */
#ifndef LFM_MODEL_H
#define LFM_MODEL_H

#include <pthread.h>
#include <stdint.h>

#include "engine/gguf.h"
#include "engine/lfm.h"
#include "engine/quant.h"
#include "engine/quant_q8.h"
#include "engine/threadpool.h"

/* Most experts an lfm2moe block may have (LFM2-8B-A1B has 32). */
#define LIM_MOE_EXPERTS 1024

/* A weight matrix left in the mapping, in its file type. */
typedef struct {
    lq_type type;
    const void *data; /* n_out rows of lq_row_bytes(type, n_in) bytes */
    int64_t n_out, n_in;
} lfm_mat;

typedef struct {
    int n_head_kv;    /* 0 = short-conv block */
    float *attn_norm; /* (E) operator norm before the mixer, owned f32 */
    float *ffn_norm;  /* (E) */
    lfm_mat ffn_gate; /* (F, E) */
    lfm_mat ffn_up;   /* (F, E) */
    lfm_mat ffn_down; /* (E, F) */
    /* short-conv block */
    lfm_mat conv_in;  /* (3E, E): rows [B | C | X] */
    lfm_mat conv_out; /* (E, E) */
    float *conv_w;    /* (E, K): channel c's taps at conv_w[c*K .. c*K+K-1], owned */
    /* attention block */
    lfm_mat wq;     /* (E, E) */
    lfm_mat wk, wv; /* (Hkv*hd, E) */
    lfm_mat wo;     /* (E, E) */
    float *q_norm;  /* (hd) */
    float *k_norm;  /* (hd) */
    int attn_index; /* index among attention blocks (KV slot), -1 for conv */
    int conv_index; /* index among conv blocks (conv state slot), -1 for attn */
    /* mixture-of-experts block (lfm2moe, block >= n_dense_lead): ffn_* unused */
    int moe;
    float *router;     /* (X, E) ffn_gate_inp, owned f32; X = n_expert */
    float *exp_bias;   /* (X) exp_probs_b, selection only, owned f32 */
    lfm_mat gate_exps; /* (X*Fx, E): expert x's rows at [x*Fx, (x+1)*Fx) */
    lfm_mat up_exps;   /* (X*Fx, E) */
    lfm_mat down_exps; /* (X*E, Fx): expert x's rows at [x*E, (x+1)*E) */
} lfm_layer;

struct lfm_model {
    gguf_file *gguf; /* keeps the mapping alive */
    lfm_hparams hp;
    lfm_model_opts opts;
    lq_kernels kernels;
    lfm_mat tok_embd;  /* (V, E) */
    lfm_mat output;    /* (V, E): output.weight, or tok_embd when tied */
    float *final_norm; /* (E) token_embd_norm.weight, owned */
    lfm_layer layers[LFM_MAX_LAYERS];
    int n_attn, n_conv;  /* counts of each block kind */
    lfm_tokenizer *tok;  /* NULL when the file has no usable vocabulary */
    char *chat_template; /* owned NUL-terminated copy, or NULL */
    uint64_t weight_bytes;

    /* Evaluation: one caller at a time (mutex); scratch grows on demand. */
    pthread_mutex_t mu;
    tp_pool *pool;
    float *scratch;
    size_t scratch_floats;
    double *dscratch; /* (n_threads, n_ctx + hd) attention scores + accumulators */
    size_t dscratch_doubles;
    lq_q8blk *xq;    /* (rows, max(E, F, Fx) / 32) activations quantized for the integer kernels */
    lq_q8blk *xq256; /* the same with a scale per 256 values (K-quant weights) */
    size_t xq_blocks;
    void *moe_scratch; /* moe.c's buffers, sized by lfm_moe_reserve */
    size_t moe_scratch_rows;
    /* Weight bytes the expert matmuls have read (moe.c adds per expert call),
     * for the bench's bytes-per-token figure. */
    uint64_t moe_bytes_read;
    /* Weight bytes handed to the kernels since load: every matmul's matrix
     * (once per call, whatever its row count), embedding rows, routers. */
    uint64_t weight_reads;
    unsigned char *moe_paged; /* (n_layer, n_expert): expert asked for (moe.c) */
};

/* y = x W^T for n_rows rows of x, on the model's thread pool (forward.c). */
void lfm_fwd_matmul(lfm_model *m, const lfm_mat *W, const float *x, int64_t n_rows, float *y);
/* Two matrices reading the same x (gate and up): x is quantized once per
 * activation format they need. */
void lfm_fwd_matmul2(lfm_model *m, const lfm_mat *W1, float *y1, const lfm_mat *W2, float *y2,
                     const float *x, int64_t n_rows);

/* Mixture-of-experts FFN (moe.c): t = sum over the chosen experts of
 * weight * SwiGLU_expert(h), for n rows of h (n, E). Needs
 * lfm_moe_reserve(m, >= n) first (under m->mu). */
void lfm_moe_ffn(lfm_model *m, const lfm_layer *L, int n, const float *h, float *t);
/* Sizes the MoE scratch for `rows` rows: 0 or LFM_ENOMEM. No-op for dense. */
int lfm_moe_reserve(lfm_model *m, int rows);
/* Page-cache advice for a mixture of experts (moe.c). advise_random: before
 * any tensor data is touched, no read-around anywhere in the tensor region.
 * advise_loaded: after the layers are loaded, exact MADV_WILLNEED of every
 * dense matrix, and the per-expert first-use table: 0 or LFM_ENOMEM. */
void lfm_moe_advise_random(const gguf_file *f);
int lfm_moe_advise_loaded(lfm_model *m);
/* Expert choice for one row (exposed for tests): writes the k chosen expert
 * indices (ascending) and their normalized weights. */
void lfm_moe_route(const lfm_layer *L, int n_expert, int k, int E, const float *h, int *sel,
                   double *w);

/* Per-sequence state. KV caches hold K and V of every attention block for
 * positions [0, pos); conv state holds the last K-1 `u` vectors of every conv
 * block, oldest first. */
struct lfm_seq {
    lfm_model *m;
    int n_ctx;
    int pos;
    int kv_cap;    /* positions allocated in each KV buffer (grows to n_ctx) */
    size_t kv_elt; /* 4 (f32) or 2 (f16) */
    void **k, **v; /* [n_attn] each (kv_cap, Hkv*hd) */
    float *conv;   /* (n_conv, K-1, E) */
};

/* Makes room in s's KV buffers for `need` positions (<= n_ctx). 0 or LFM_ENOMEM;
 * on failure the sequence is unchanged. */
int lfm_seq_reserve(lfm_seq *s, int need);

#endif
