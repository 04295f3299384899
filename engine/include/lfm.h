/* lfm.h: the embedded LFM2 inference engine's public interface.
 *
 * Usable without the gateway: load a GGUF, tokenize, render the chat
 * template, evaluate batches of tokens for several sequences, sample, and
 * (through lfm_sched) serve concurrent generation jobs from a scheduler
 * thread. Nothing here knows about HTTP or libuv.
 *
 * Errors: functions returning int give 0 on success and a negative LFM_E*
 * code on failure, with a one-line message in (err, errlen) when given. */
#ifndef LFM_H
#define LFM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/tg_buf.h"

enum {
    LFM_OK = 0,
    LFM_EINVAL = -1,  /* bad argument or malformed input */
    LFM_EIO = -2,     /* file could not be read */
    LFM_EFORMAT = -3, /* GGUF is malformed or not an LFM2 model */
    LFM_ECTX = -4,    /* context length exceeded */
    LFM_EFULL = -5,   /* scheduler queue full */
    LFM_ENOMEM = -6,
    LFM_ECANCELED = -7,
};

/* Short text for an LFM_E* code ("context length exceeded", ...). */
const char *lfm_strerror(int code);

#define LFM_MAX_LAYERS 64

/* ---------------------------------------------------------------- model -- */

typedef struct lfm_model lfm_model;
typedef struct lfm_seq lfm_seq;
typedef struct lfm_tokenizer lfm_tokenizer;

/* AUTO: fastest (quantized weights meet 8-bit activations in integer SIMD,
 * as the reference implementation does; fixture bounds hold). SCALAR: exact
 * float reference. FLOAT: exact float activations with SIMD. */
typedef enum { LFM_KERNELS_AUTO = 0, LFM_KERNELS_SCALAR = 1, LFM_KERNELS_FLOAT = 2 } lfm_kernels;
typedef enum { LFM_KV_F32 = 0, LFM_KV_F16 = 1 } lfm_kv_type;

typedef struct {
    lfm_kernels kernels;
    lfm_kv_type kv_type;
    int n_threads; /* compute threads for matmuls; 0 = physical cores */
} lfm_model_opts;

typedef struct {
    char arch[32];
    char name[128]; /* general.name, or file stem */
    int n_vocab;
    int n_embd; /* E */
    int n_ff;   /* F */
    int n_layer;
    int n_head;                    /* H */
    int head_dim;                  /* E / H */
    int n_head_kv[LFM_MAX_LAYERS]; /* 0 = short-conv block */
    int conv_l_cache;              /* K */
    int n_ctx_train;
    float rope_theta;
    float rms_eps;
    bool tied_output;
    /* lfm2moe (all 0 for a dense lfm2 file): blocks [n_dense_lead, n_layer)
     * replace the dense FFN with n_expert SwiGLU experts of width n_ff_exp,
     * n_expert_used of them chosen per token by a sigmoid router. */
    int n_expert;
    int n_expert_used;
    int n_ff_exp;
    int n_dense_lead;
} lfm_hparams;

void lfm_model_opts_default(lfm_model_opts *o);
int lfm_model_load(const char *path, const lfm_model_opts *opts, lfm_model **out, char *err,
                   size_t errlen);
void lfm_model_free(lfm_model *m);
const lfm_hparams *lfm_model_hparams(const lfm_model *m);
const lfm_tokenizer *lfm_model_tokenizer(const lfm_model *m);
/* tokenizer.chat_template text, or NULL when the file has none. */
const char *lfm_model_chat_template(const lfm_model *m);
/* Bytes of weights mapped, and bytes of one sequence's state at n_ctx. */
uint64_t lfm_model_weight_bytes(const lfm_model *m);
/* Bytes of weights one decode step reads: every matrix, one embedding row,
 * and for a mixture of experts the routers and only the experts used per
 * token (n_expert_used / n_expert of the expert tensors). Norms and conv
 * taps (owned f32 copies, a few KB per block) are not counted. */
uint64_t lfm_model_active_bytes(const lfm_model *m);
/* Weight bytes the kernels have been handed since load (each matmul's
 * matrix once per call, embedding rows, routers): the difference across one
 * decode step is the bytes that step read. */
uint64_t lfm_model_weight_reads(const lfm_model *m);
/* True for an LFM2.5 model: its chat template is the LFM2.5 one, or its
 * general.name says LFM2.5. */
bool lfm_model_is_lfm25(const lfm_model *m);
/* Compute threads the model runs with (opts.n_threads, or the default). */
int lfm_model_threads(const lfm_model *m);
uint64_t lfm_seq_state_bytes(const lfm_model *m, int n_ctx);

/* A sequence: KV cache for attention blocks, rolling conv state for conv
 * blocks. n_ctx is its maximum length (<= the model's context). */
lfm_seq *lfm_seq_new(lfm_model *m, int n_ctx);
void lfm_seq_free(lfm_seq *s);
void lfm_seq_reset(lfm_seq *s);
int lfm_seq_pos(const lfm_seq *s); /* tokens consumed so far */
int lfm_seq_n_ctx(const lfm_seq *s);

/* Evaluates n token rows. Row i is token tokens[i] at the next position of
 * seqs[i]; several rows may share a sequence (a prefill batch) and must then
 * be in order. For each row with want_logits[i] != 0 (want_logits NULL = only
 * the last row), the next-token logits (n_vocab floats) are written to
 * logits + k * n_vocab, k counting the wanting rows in order. A row's
 * results do not depend on which other rows share the batch. Returns
 * LFM_ECTX (and evaluates nothing) if any sequence would pass its n_ctx. */
int lfm_eval(lfm_model *m, int n, const int32_t *tokens, lfm_seq *const *seqs,
             const uint8_t *want_logits, float *logits, char *err, size_t errlen);

/* ------------------------------------------------------------ tokenizer -- */

typedef struct {
    const char *ptr;
    size_t len;
} lfm_str;

/* Builds a byte-level BPE tokenizer from vocabulary arrays (copied). types:
 * 1 normal, 3 control (special, split out by exact text), others as GGUF. */
int lfm_tokenizer_new(const lfm_str *tokens, const int32_t *types, size_t n_vocab,
                      const lfm_str *merges, size_t n_merges, int32_t bos_id, int32_t eos_id,
                      bool add_bos, lfm_tokenizer **out, char *err, size_t errlen);
void lfm_tokenizer_free(lfm_tokenizer *t);

/* Tokenizes any bytes (invalid UTF-8 falls back to byte tokens). add_bos
 * adds BOS when the vocabulary says so, but never a second one when the
 * text already starts with it. *out is malloc'd. */
int lfm_tokenize(const lfm_tokenizer *t, const char *text, size_t len, bool add_bos,
                 bool parse_special, int32_t **out, size_t *n_out);
int lfm_vocab_size(const lfm_tokenizer *t);
int32_t lfm_token_bos(const lfm_tokenizer *t);
int32_t lfm_token_eos(const lfm_tokenizer *t);
/* Id of the token whose vocabulary text is exactly (text, len), or -1. */
int32_t lfm_token_lookup(const lfm_tokenizer *t, const char *text, size_t len);
bool lfm_token_is_eog(const lfm_tokenizer *t, int32_t id); /* <|im_end|>, <|endoftext|>, EOS */
bool lfm_token_is_control(const lfm_tokenizer *t, int32_t id);
/* The raw bytes a token stands for (byte-level decoded; control tokens give
 * their text). Returns the byte count (may exceed cap: then truncated). */
size_t lfm_token_bytes(const lfm_tokenizer *t, int32_t id, char *buf, size_t cap);

/* Streaming detokenizer: never splits a multi-byte UTF-8 character across
 * two output chunks. Invalid sequences come out as U+FFFD. */
typedef struct {
    unsigned char pending[8];
    int n_pending;
} lfm_detok;
void lfm_detok_init(lfm_detok *d);
/* Appends the complete UTF-8 text of token id (plus what was pending). */
void lfm_detok_push(lfm_detok *d, const lfm_tokenizer *t, int32_t id, tg_buf *out);
/* Flushes what is left (incomplete bytes become U+FFFD). */
void lfm_detok_flush(lfm_detok *d, tg_buf *out);

/* ------------------------------------------------------------------ chat -- */

typedef enum { LFM_ROLE_SYSTEM, LFM_ROLE_USER, LFM_ROLE_ASSISTANT, LFM_ROLE_TOOL } lfm_role;

typedef struct {
    lfm_role role;
    const char *content;         /* may be NULL (assistant turn with only tool calls) */
    const char *tool_calls_json; /* assistant: OpenAI tool_calls array as JSON, or NULL */
} lfm_chat_msg;

typedef enum { LFM_TEMPLATE_LFM2 = 0, LFM_TEMPLATE_LFM25 = 1 } lfm_template_kind;

/* Tells LFM2 from LFM2.5 templates by the Jinja text (NULL -> LFM2). */
lfm_template_kind lfm_chat_template_kind(const char *jinja);
/* True when the template's generation prompt already opens the reasoning
 * (`<|im_start|>assistant\n<think>`): the prompt then ends with <think> and
 * the output starts inside the reasoning (lfm_think_init start_inside). */
bool lfm_chat_template_opens_think(const char *jinja);
/* Renders messages with the LFM2 ChatML template. tools_json is the OpenAI
 * `tools` array as JSON text (or NULL); it is rendered as LFM2's tool list.
 * Output starts with <|startoftext|>; tokenize it with add_bos=false or rely
 * on lfm_tokenize's single-BOS rule. */
int lfm_chat_render(lfm_template_kind kind, const lfm_chat_msg *msgs, size_t n,
                    const char *tools_json, bool add_generation_prompt, tg_buf *out, char *err,
                    size_t errlen);
/* Token ids of the same rendering, safe against role/turn injection: only
 * the template's own markers (<|startoftext|> as BOS, <|im_start|>,
 * <|im_end|>, tool list / call / response markers) become control tokens;
 * all other text -- role names and caller-provided content, tool JSON and
 * tool-call arguments alike -- is tokenized with parse_special=false. Equals
 * lfm_tokenize(render, add_bos=true, parse_special=true) whenever no control
 * token's text appears in caller text. BOS exactly once. *out is malloc'd.
 * Returns LFM_EINVAL when the messages cannot be rendered (err says why) or
 * on bad arguments, LFM_ENOMEM when tokenization runs out of memory. */
int lfm_chat_tokenize(const lfm_tokenizer *t, lfm_template_kind kind, const lfm_chat_msg *msgs,
                      size_t n, const char *tools_json, bool add_generation_prompt, int32_t **out,
                      size_t *n_out, char *err, size_t errlen);

typedef struct {
    char *name;
    char *arguments_json; /* JSON object text */
} lfm_tool_call;

/* Splits generated text into plain content and the calls found between
 * <|tool_call_start|> and <|tool_call_end|> (Pythonic `[f(a="x", n=1)]`
 * syntax, or a JSON list). Returns the number of calls (>= 0) or LFM_EINVAL
 * when a call block is malformed (content then holds the whole text). */
int lfm_parse_tool_calls(const char *text, size_t len, tg_buf *content, lfm_tool_call **calls,
                         size_t *n_calls);
void lfm_tool_calls_free(lfm_tool_call *calls, size_t n);

/* LFM2.5 reasoning: splits generated text into the `<think>...</think>`
 * reasoning and the answer after it, as the text streams in (a marker may be
 * split across pieces; what may still be one is held back). Reasoning is only
 * recognised at the start of the output, or from the start when the
 * generation prompt already opened it (start_inside). Whitespace around the
 * reasoning and before the answer is dropped. reasoning / content may be
 * NULL to discard that part. */
typedef struct {
    int state;
    bool reasoning_started;
    tg_buf pend; /* undecided text */
} lfm_think;
void lfm_think_init(lfm_think *t, bool start_inside);
void lfm_think_push(lfm_think *t, const char *s, size_t n, tg_buf *reasoning, tg_buf *content);
/* End of output: whatever is held back is decided (an unclosed reasoning
 * stays reasoning). */
void lfm_think_flush(lfm_think *t, tg_buf *reasoning, tg_buf *content);
bool lfm_think_in_reasoning(const lfm_think *t);
void lfm_think_free(lfm_think *t);

/* --------------------------------------------------------------- sampler -- */

typedef struct {
    float temperature;    /* 0 = greedy */
    int top_k;            /* 0 = off */
    float top_p;          /* 1 = off */
    float min_p;          /* 0 = off */
    float repeat_penalty; /* 1 = off */
    int repeat_last_n;    /* window for the penalty */
    uint64_t seed;
    /* OpenAI penalties, over the GENERATED tokens only (see
     * lfm_sampler_set_prompt_len): logit[t] -= frequency_penalty * count(t)
     * + presence_penalty * (count(t) > 0). 0 = off; OpenAI range -2..2. */
    float frequency_penalty;
    float presence_penalty;
    /* Logit bias: bias_values[i] is added to logit[bias_tokens[i]] before
     * sampling (after the penalties). -100 effectively bans a token, +100
     * effectively forces it. lfm_sampler_new copies both arrays; a token
     * outside [0, n_vocab) or a non-finite value makes it fail. */
    const int32_t *bias_tokens;
    const float *bias_values;
    size_t n_bias;
} lfm_sampler_params;

/* LFM2's recommended defaults: temperature 0.3, min_p 0.15, repetition
 * penalty 1.05; seed from the clock. */
void lfm_sampler_defaults(lfm_sampler_params *p);
/* The model's own defaults: LFM2.5's model card values (temperature 0.1,
 * top_k 50, top_p 0.1, repetition penalty 1.05, no min_p) when
 * lfm_model_is_lfm25(m), else lfm_sampler_defaults. */
void lfm_sampler_defaults_for(const lfm_model *m, lfm_sampler_params *p);
typedef struct lfm_sampler lfm_sampler;
/* True when lfm_sampler_new would accept p for a vocabulary of n_vocab:
 * bias ids inside the vocabulary, finite bias values and penalties. */
bool lfm_sampler_params_valid(const lfm_sampler_params *p, int n_vocab);
/* NULL when !lfm_sampler_params_valid(p, n_vocab) or out of memory. */
lfm_sampler *lfm_sampler_new(const lfm_sampler_params *p, int n_vocab);
void lfm_sampler_free(lfm_sampler *s);
/* logits is scratch (may be modified). history: tokens so far (prompt and
 * generated), for the repetition penalty. The frequency/presence penalties
 * count only history[n_prompt..n_history), n_prompt as set below (0 until
 * set: then the whole history counts). */
int32_t lfm_sampler_sample(lfm_sampler *s, float *logits, const int32_t *history, size_t n_history);
/* Tells the sampler how many leading history entries are prompt. */
void lfm_sampler_set_prompt_len(lfm_sampler *s, size_t n_prompt);

/* -------------------------------------------------------------- logprobs -- */

#define LFM_MAX_TOP_LOGPROBS 20

/* Log-probabilities under softmax(logits) at temperature 1, where logits
 * are one step's RAW model logits (before penalties, bias, constraint mask
 * and truncation; see engine/logprobs.c for why). Writes token's logprob to
 * *token_lp and the k (0..LFM_MAX_TOP_LOGPROBS) most likely tokens, best
 * first (ties: lower id first), to top_ids/top_lps. Returns how many top
 * entries were written (min(k, n_vocab)) or LFM_EINVAL. */
int lfm_logprobs(const float *logits, int n_vocab, int32_t token, int k, float *token_lp,
                 int32_t *top_ids, float *top_lps);

#endif
