/* grammar_impl: the compiled-schema node graph shared by engine/schema.c
 * (compiler) and engine/grammar.c (matcher). Private to the engine. */
#ifndef LFM_GRAMMAR_IMPL_H
#define LFM_GRAMMAR_IMPL_H

#include <stdint.h>

#include "engine/lfm_grammar.h"

typedef enum {
    GN_ANY = 0,  /* any JSON value */
    GN_ANYOBJ,   /* any object (keys free strings, values any) */
    GN_OBJECT,   /* a: first prop, b: n props */
    GN_ARRAY,    /* a: items node, c: min items, d: max items (-1 = none) */
    GN_STRING,   /* any string */
    GN_NUMBER,   /* any number */
    GN_INTEGER,  /* integer: no fraction or exponent */
    GN_LITERALS, /* a: first literal, b: n (exact JSON texts: enum, const, true...) */
    GN_ANYOF,    /* a: first child in kids, b: n */
    GN_UNSET,    /* being compiled ($ref cycle placeholder) */
} gn_kind;

/* Builtin nodes every schema has (the ANY machinery refers to them). */
enum { GN_IDX_ANY = 0, GN_IDX_ANYOBJ = 1, GN_IDX_ANYARR = 2, GN_IDX_TFN = 3, GN_N_BUILTIN = 4 };

#define GN_MAX_NODES 4096
#define GN_MAX_SET   64 /* properties per object, enum values, anyOf branches */

typedef struct {
    uint8_t kind;
    int32_t a, b, c, d;
} gnode;

typedef struct {
    char *name; /* the key as it appears between the quotes (JSON-escaped) */
    uint32_t len;
    int32_t node;
    bool required;
} gprop;

typedef struct {
    char *text; /* compact JSON text */
    uint32_t len;
} glit;

struct lfm_schema {
    gnode *nodes;
    int n_nodes, cap_nodes;
    gprop *props;
    int n_props, cap_props;
    glit *lits;
    int n_lits, cap_lits;
    int32_t *kids;
    int n_kids, cap_kids;
    int32_t root;
};

#endif
