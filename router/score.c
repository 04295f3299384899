/* score: features and the logistic complexity score. See score.h. */
#include "router/score.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------ names -- */

static const char *const k_names[RT_F_COUNT] = {
    "prompt_tokens", "turns",       "max_tokens", "tools",        "json_schema",
    "code",          "math",        "reasoning",  "constraints",  "build",
    "planning",      "simple_task", "greeting",   "hint_complex", "hint_simple",
    "explicit_hint", "non_latin",   "long_doc",   "questions",    "list_items",
};

const char *rt_feature_name(int id) {
    return id >= 0 && id < RT_F_COUNT ? k_names[id] : "unknown";
}

int rt_feature_by_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < RT_F_COUNT; i++)
        if (!strcmp(k_names[i], name)) return i;
    return -1;
}

/* ------------------------------------------------------ keyword table -- */

/* Categories a word counts toward (bit i = feature i). */
#define K(f) (1u << (f))

typedef struct {
    const char *words; /* space-separated */
    uint32_t mask;
    uint8_t hits; /* how many markers one occurrence counts for (0 = 1) */
} kw_group;

/* Whole words, lower case (ASCII folded; other bytes compared as is). A few
 * languages beyond English so a French or Spanish request is not scored as
 * feature-less. */
static const kw_group k_groups[] = {
    {"code function functions class classes method methods python javascript typescript java "
     "rust golang c++ sql regex api endpoint endpoints compile compiler bug bugs debug refactor "
     "unittest unittests tests struct pointer pointers async await thread threads mutex "
     "recursion recursive algorithm algorithms int void def return import const var let "
     "lambda json yaml http docker kubernetes database schema query queries script cli "
     "library module modules repository backend frontend server concurrency concurrent "
     "lock-free segfault stacktrace traceback código fonction funktion",
     K(RT_F_CODE), 0},
    {"prove proof proofs theorem lemma corollary integral integrals derivative derivatives "
     "equation equations matrix matrices eigenvalue eigenvalues polynomial polynomials "
     "probability expected variance induction contradiction inequality inequalities "
     "converges convergence prime primes modulo divisible irrational infinitely bound "
     "asymptotic complexity combinatorics graph graphs vector vectors calculus "
     "démontrer démontrez démonstration beweise beweisen demuestra demostrar demostración "
     "dimostra dimostrare prova",
     K(RT_F_MATH), 0},
    {"why analyze analyse analysis compare comparison contrast evaluate evaluation assess "
     "tradeoff tradeoffs trade-off trade-offs implications reasoning reason justify "
     "critique argue argument arguments hypothesis consequences derive deduce infer "
     "weigh pros cons risks strategy strategic recommend recommendation scenario scenarios "
     "investigate diagnose root cause causes estimate sensitivity counterargument "
     "analysez analizar analiza vergleiche analysiere",
     K(RT_F_REASONING), 0},
    {"must should shall exactly least most without ensure only never always each every "
     "limit limits constraint constraints requirement requirements within under maximum "
     "minimum budget deadline cannot mustn't avoid include excluding except unless "
     "debe deben doit doivent muss müssen",
     K(RT_F_CONSTRAINTS), 0},
    {"implement implementation build design architect architecture develop write "
     "generate create production-ready complete full-featured end-to-end scaffold "
     "system service pipeline framework migrate migration optimize "
     "implementa implémente implementiere",
     K(RT_F_BUILD), 0},
    {"plan planning schedule itinerary roadmap workflow orchestrate steps milestones "
     "tools tool book booking calendar search lookup fetch agent agents coordinate "
     "sequence then afterwards multi-step timeline allocate",
     K(RT_F_PLANNING), 0},
    {"translate translation translated summarize summarise summary tl;dr tldr classify "
     "classification categorize label sentiment extract extraction rewrite rephrase "
     "paraphrase reword proofread grammar spelling correct fix shorten simplify polish "
     "capitalize convert format tag detect identify list name define definition meaning "
     "synonym antonym spell traduce traduis traduire traducir übersetze übersetzen "
     "résume resume resumir zusammenfassen reformule corrige",
     K(RT_F_SIMPLE_TASK), 0},
    {"hi hello hey thanks thank cheers morning evening bye goodbye howdy yo sup "
     "bonjour salut merci hola gracias hallo danke ciao grazie olá obrigado",
     K(RT_F_GREETING), 0},
    {"detailed thorough thoroughly comprehensive rigorous rigorously carefully "
     "in-depth exhaustive extensive elaborate deep deeply meticulous",
     K(RT_F_HINT_COMPLEX), 0},
    {"briefly brief short shortly quick quickly one-word one-line concise simply "
     "tiny few single sentence word",
     K(RT_F_HINT_SIMPLE), 0},
    /* Strong markers: one of these alone says "hard task". */
    {"prove proof theorem lemma derive derivation démontrer démontrez beweisen beweise "
     "demostrar demuestra dimostrare rigorous rigorously",
     K(RT_F_MATH), 3},
    {"implement implementation architecture production-ready end-to-end", K(RT_F_BUILD), 2},
    {"in-depth step-by-step detallado detallada détaillé détaillée détail ausführlich "
     "ausführliche gründlich exhaustivo riguroso rigoureux rigoureuse dettagliato approfondito "
     "fully full",
     K(RT_F_HINT_COMPLEX), 0},
    {"warum pourquoi perché porque calculations calculation calculate formula formulas "
     "justifiez justifica begründe",
     K(RT_F_REASONING), 0},
    {"gleichung équation ecuación intégrale primzahl primzahlen", K(RT_F_MATH), 0},
    {"diseña diseñar conçois concevoir concevez entwirf entwerfen", K(RT_F_BUILD), 0},
    {"planifie planifier planificar planea planen itinerario", K(RT_F_PLANNING), 0},
};

#define TABLE_SIZE 2048 /* power of two, > 2x the words above */

typedef struct {
    uint32_t hash; /* 0 = empty slot */
    uint8_t len;
    char word[31];
    uint32_t mask;
    uint8_t hits;
} kw_slot;

static kw_slot g_table[TABLE_SIZE];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* Word hash: computed once per word over its lower-cased bytes (words are
 * short; a multiply per 8 bytes, not per byte). */
static inline uint32_t word_hash(const char *w, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = 0;
        memcpy(&v, w + i, n - i < 8 ? n - i : 8);
        h = (h ^ v) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return (uint32_t)h ? (uint32_t)h : 1u;
}

static void table_add(const char *w, size_t n, uint32_t mask, uint8_t hits) {
    if (!hits) hits = 1;
    if (n == 0 || n >= sizeof g_table[0].word) return;
    uint32_t h = word_hash(w, n);
    for (uint32_t i = h & (TABLE_SIZE - 1);; i = (i + 1) & (TABLE_SIZE - 1)) {
        kw_slot *s = &g_table[i];
        if (!s->hash) {
            s->hash = h;
            s->len = (uint8_t)n;
            memcpy(s->word, w, n);
            s->mask = mask;
            s->hits = hits;
            return;
        }
        if (s->hash == h && s->len == n && !memcmp(s->word, w, n)) {
            s->mask |= mask;
            if (hits > s->hits) s->hits = hits;
            return;
        }
    }
}

static void classes_build(void);

static void table_build(void) {
    classes_build();
    for (size_t g = 0; g < sizeof k_groups / sizeof k_groups[0]; g++) {
        const char *p = k_groups[g].words;
        while (*p) {
            while (*p == ' ')
                p++;
            const char *e = p;
            while (*e && *e != ' ')
                e++;
            table_add(p, (size_t)(e - p), k_groups[g].mask, k_groups[g].hits);
            p = e;
        }
    }
}

static const kw_slot *table_find(uint32_t h, const char *w, size_t n) {
    for (uint32_t i = h & (TABLE_SIZE - 1);; i = (i + 1) & (TABLE_SIZE - 1)) {
        const kw_slot *s = &g_table[i];
        if (!s->hash) return NULL;
        if (s->hash == h && s->len == n && !memcmp(s->word, w, n)) return s;
    }
}

/* A few CJK markers (no spaces between words there): substring matches,
 * tried only when the text has multi-byte characters. */
static const struct {
    const char *s;
    int f;
} k_cjk[] = {
    {"证明", RT_F_MATH},           {"証明", RT_F_MATH},           {"定理", RT_F_MATH},
    {"积分", RT_F_MATH},           {"代码", RT_F_CODE},           {"コード", RT_F_CODE},
    {"函数", RT_F_CODE},           {"関数", RT_F_CODE},           {"实现", RT_F_BUILD},
    {"実装", RT_F_BUILD},          {"设计", RT_F_BUILD},          {"分析", RT_F_REASONING},
    {"比较", RT_F_REASONING},      {"为什么", RT_F_REASONING},    {"计划", RT_F_PLANNING},
    {"计划", RT_F_PLANNING},       {"翻译", RT_F_SIMPLE_TASK},    {"翻訳", RT_F_SIMPLE_TASK},
    {"訳して", RT_F_SIMPLE_TASK},  {"总结", RT_F_SIMPLE_TASK},    {"要約", RT_F_SIMPLE_TASK},
    {"你好", RT_F_GREETING},       {"こんにちは", RT_F_GREETING}, {"谢谢", RT_F_GREETING},
    {"ありがとう", RT_F_GREETING}, {"必须", RT_F_CONSTRAINTS},    {"詳しく", RT_F_HINT_COMPLEX},
    {"详细", RT_F_HINT_COMPLEX},   {"严格", RT_F_HINT_COMPLEX},   {"步骤", RT_F_REASONING},
    {"設計", RT_F_BUILD},          {"詳細", RT_F_HINT_COMPLEX},   {"简短", RT_F_HINT_SIMPLE},
    {"簡単", RT_F_HINT_SIMPLE},
};

/* ---------------------------------------------------------- the scan -- */

typedef struct {
    double kw[RT_F_COUNT]; /* keyword hits per feature */
    size_t ascii, nonascii_cp, nonascii_letters;
    size_t code_sym, fences, math_sym, questions, list_items;
    size_t longest_block, cur_block;
    bool any_multibyte;
} scan_state;

/* Byte classes, built with the keyword table. */
enum { B_WORD = 1, B_SPECIAL = 2 };
static uint8_t g_class[256];
static unsigned char g_lower[256];

static void classes_build(void) {
    for (int c = 0; c < 256; c++) {
        bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c >= 0x80 || c == '-' || c == '+' || c == '\'' || c == ';';
        g_class[c] = word ? B_WORD : 0;
        g_lower[c] = (unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    const char *special = "\n{};`^=\\?";
    for (const char *p = special; *p; p++)
        g_class[(unsigned char)*p] |= B_SPECIAL;
    for (int c = 0x80; c < 256; c++)
        g_class[c] |= B_SPECIAL;
}

static void flush_word(scan_state *s, char *low, size_t n) {
    /* Trailing punctuation that the word class lets in mid-word. */
    while (n > 0 && (low[n - 1] == '-' || low[n - 1] == '\'' || low[n - 1] == ';'))
        n--;
    if (n < 2 || n > 30) return;
    const kw_slot *k = table_find(word_hash(low, n), low, n);
    if (!k) return;
    for (uint32_t m = k->mask; m; m &= m - 1)
        s->kw[__builtin_ctz(m)] += k->hits;
}

static void line_start_byte(scan_state *s, const char *t, size_t len, size_t i) {
    unsigned char c = (unsigned char)t[i];
    if ((c == '-' || c == '*' || c == 0xE2 /* bullet */) && i + 1 < len &&
        (t[i + 1] == ' ' || (unsigned char)t[i + 1] == 0x80))
        s->list_items++;
    else if (c >= '0' && c <= '9') {
        size_t j = i;
        while (j < len && j < i + 3 && t[j] >= '0' && t[j] <= '9')
            j++;
        if (j < len && (t[j] == '.' || t[j] == ')')) s->list_items++;
    }
}

static void special_byte(scan_state *s, const char *t, size_t len, size_t *ip, bool *line_start,
                         size_t *nl_run) {
    size_t i = *ip;
    unsigned char c = (unsigned char)t[i];
    if (c >= 0x80) {
        if ((c & 0xC0) == 0x80) return; /* continuation byte */
        s->nonascii_cp++;
        s->any_multibyte = true;
        if (c == 0xE2 && i + 1 < len) {
            /* Math symbols in U+2200..U+22FF (E2 88..8B xx). */
            unsigned char c1 = (unsigned char)t[i + 1];
            if (c1 >= 0x88 && c1 <= 0x8B) s->math_sym++;
        } else if (c < 0xC3 || c > 0xC5) {
            /* Not accented Latin (C3..C5 lead bytes): another script. */
            s->nonascii_letters++;
        }
        return;
    }
    switch (c) {
    case '\n':
        if (++*nl_run >= 2) {
            if (s->cur_block > s->longest_block) s->longest_block = s->cur_block;
            s->cur_block = 0;
        }
        *line_start = true;
        return;
    case '{':
    case '}':
    case ';': s->code_sym++; break;
    case '`':
        if (i + 2 < len && t[i + 1] == '`' && t[i + 2] == '`') s->fences++, *ip += 2;
        break;
    case '^':
    case '=': s->math_sym++; break;
    case '\\':
        if (i + 1 < len && ((t[i + 1] >= 'a' && t[i + 1] <= 'z') || t[i + 1] == '(')) s->math_sym++;
        break;
    case '?': s->questions++; break;
    default: break;
    }
}

static void scan_text(scan_state *s, const char *t, size_t len) {
    char low[32];
    size_t wlen = 0, nl_run = 0, nonascii = 0;
    bool line_start = true;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        uint8_t k = g_class[c];
        if (k & B_WORD) {
            if (wlen < sizeof low) low[wlen] = (char)g_lower[c];
            wlen++;
        } else if (wlen) {
            flush_word(s, low, wlen < sizeof low ? wlen : sizeof low);
            wlen = 0;
        }
        if (k & B_SPECIAL) {
            nonascii += c >= 0x80;
            special_byte(s, t, len, &i, &line_start, &nl_run);
            if (c == '\n') continue;
        }
        nl_run = 0;
        s->cur_block++;
        if (line_start && c != ' ' && c != '\t') {
            line_start = false;
            line_start_byte(s, t, len, i);
        }
    }
    if (wlen) flush_word(s, low, wlen < sizeof low ? wlen : sizeof low);
    s->ascii += len - nonascii;
    if (s->cur_block > s->longest_block) s->longest_block = s->cur_block;
    s->cur_block = 0;
}

static double lg(double v, double scale) {
    return v > 0 ? log2(1.0 + v) / scale : 0.0;
}

void rt_features_extract(const rt_score_input *in, rt_features *out) {
    pthread_once(&g_once, table_build);
    memset(out, 0, sizeof *out);
    scan_state s;
    memset(&s, 0, sizeof s);
    size_t turns = 0, budget = RT_SCORE_SCAN_MAX;
    for (size_t i = 0; i < in->n_msgs; i++) {
        const rt_msg *m = &in->msgs[i];
        const char *role = m->role ? m->role : "user";
        if (!strcmp(role, "user") || !strcmp(role, "assistant")) turns++;
        if (!m->text) continue;
        /* The scan is bounded (the loop thread runs it): text past the
         * budget still counts toward tokens and block length, unread. */
        size_t n = m->len < budget ? m->len : budget;
        scan_text(&s, m->text, n);
        budget -= n;
        if (n < m->len) {
            s.ascii += m->len - n;
            if (m->len - n > s.longest_block) s.longest_block = m->len - n;
        }
    }
    if (s.any_multibyte) {
        for (size_t k = 0; k < sizeof k_cjk / sizeof k_cjk[0]; k++) {
            size_t kl = strlen(k_cjk[k].s);
            for (size_t i = 0; i < in->n_msgs; i++) {
                const rt_msg *m = &in->msgs[i];
                size_t n = m->len < RT_SCORE_SCAN_MAX ? m->len : RT_SCORE_SCAN_MAX;
                if (m->text && memmem(m->text, n, k_cjk[k].s, kl)) s.kw[k_cjk[k].f] += 1;
            }
        }
    }

    double *r = out->raw;
    /* Tokens: ~4 ASCII bytes per token; a non-ASCII character is about half
     * a token in Latin scripts and one or more in CJK. */
    double est = (double)s.ascii / 4.0 + (double)s.nonascii_cp * 0.75;
    r[RT_F_PROMPT_TOKENS] = in->prompt_tokens >= 0 ? in->prompt_tokens : floor(est + 0.5);
    r[RT_F_TURNS] = (double)turns;
    r[RT_F_MAX_TOKENS] = in->max_tokens > 0 ? in->max_tokens : 0;
    r[RT_F_TOOLS] = in->n_tools > 0 ? in->n_tools : 0;
    r[RT_F_JSON_SCHEMA] = in->json_schema ? 1 : 0;
    r[RT_F_CODE] = s.kw[RT_F_CODE] + 2.0 * (double)s.fences + (double)s.code_sym / 4.0;
    r[RT_F_MATH] = s.kw[RT_F_MATH] + (double)s.math_sym / 2.0;
    r[RT_F_REASONING] = s.kw[RT_F_REASONING];
    r[RT_F_CONSTRAINTS] = s.kw[RT_F_CONSTRAINTS];
    r[RT_F_BUILD] = s.kw[RT_F_BUILD];
    r[RT_F_PLANNING] = s.kw[RT_F_PLANNING];
    r[RT_F_SIMPLE_TASK] = s.kw[RT_F_SIMPLE_TASK];
    r[RT_F_GREETING] = s.kw[RT_F_GREETING];
    r[RT_F_HINT_COMPLEX] = s.kw[RT_F_HINT_COMPLEX];
    r[RT_F_HINT_SIMPLE] = s.kw[RT_F_HINT_SIMPLE];
    r[RT_F_EXPLICIT_HINT] = in->hint > 0 ? 1 : in->hint < 0 ? -1 : 0;
    size_t cps = s.ascii + s.nonascii_cp;
    r[RT_F_NON_LATIN] = cps ? (double)s.nonascii_letters / (double)cps : 0;
    r[RT_F_LONG_DOC] = (double)s.longest_block;
    r[RT_F_QUESTIONS] = (double)s.questions;
    r[RT_F_LIST_ITEMS] = (double)s.list_items;

    double *x = out->x;
    x[RT_F_PROMPT_TOKENS] = lg(r[RT_F_PROMPT_TOKENS], 12);
    x[RT_F_TURNS] = lg(r[RT_F_TURNS], 4);
    x[RT_F_MAX_TOKENS] = lg(r[RT_F_MAX_TOKENS], 14);
    x[RT_F_TOOLS] = lg(r[RT_F_TOOLS], 4);
    x[RT_F_JSON_SCHEMA] = r[RT_F_JSON_SCHEMA];
    for (int f = RT_F_CODE; f <= RT_F_HINT_SIMPLE; f++)
        x[f] = lg(r[f], 4);
    x[RT_F_EXPLICIT_HINT] = r[RT_F_EXPLICIT_HINT];
    x[RT_F_NON_LATIN] = r[RT_F_NON_LATIN];
    x[RT_F_LONG_DOC] = lg(r[RT_F_LONG_DOC] / 256.0, 5);
    x[RT_F_QUESTIONS] = lg(r[RT_F_QUESTIONS], 4);
    x[RT_F_LIST_ITEMS] = lg(r[RT_F_LIST_ITEMS], 4);
}

double rt_score_eval(const rt_score_weights *w, const rt_features *f, double *contrib) {
    double z = w->bias;
    for (int i = 0; i < RT_F_COUNT; i++) {
        double c = w->w[i] * f->x[i];
        if (contrib) contrib[i] = c;
        z += c;
    }
    if (z > 40) z = 40;
    if (z < -40) z = -40;
    return 1.0 / (1.0 + exp(-z));
}

void rt_score_weights_default(rt_score_weights *w) {
    /* The fit shipped in policies/hybrid.yaml (`tidegate policy calibrate`
     * on tests/data/routing/train.jsonl); the file is the source of truth,
     * this copy serves the built-in edge-only policy's explanations. */
    memset(w, 0, sizeof *w);
    w->bias = -3.5216;
    w->w[RT_F_PROMPT_TOKENS] = 3.8098;
    w->w[RT_F_TURNS] = 0.0537;
    w->w[RT_F_MAX_TOKENS] = 0.8000;
    w->w[RT_F_TOOLS] = 1.2955;
    w->w[RT_F_JSON_SCHEMA] = -0.4602;
    w->w[RT_F_CODE] = 2.5864;
    w->w[RT_F_MATH] = 3.7899;
    w->w[RT_F_REASONING] = 3.7174;
    w->w[RT_F_CONSTRAINTS] = 2.6986;
    w->w[RT_F_BUILD] = 3.6727;
    w->w[RT_F_PLANNING] = 1.0605;
    w->w[RT_F_SIMPLE_TASK] = -2.3250;
    w->w[RT_F_GREETING] = -0.4795;
    w->w[RT_F_HINT_COMPLEX] = 1.3422;
    w->w[RT_F_HINT_SIMPLE] = -0.5565;
    w->w[RT_F_EXPLICIT_HINT] = 6.0000;
    w->w[RT_F_NON_LATIN] = -0.0948;
    w->w[RT_F_LONG_DOC] = 2.9654;
    w->w[RT_F_QUESTIONS] = -2.0804;
    w->w[RT_F_LIST_ITEMS] = 0.0057;
}
