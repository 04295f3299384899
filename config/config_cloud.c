/* config_cloud: the `cloud:` list of upstreams. Each item is a mapping whose
 * scalar keys go through the same conversions as the rest of the config
 * (tg_config_schema_apply on a key made for that item), so errors read the
 * same: `file:line:col: cloud[1].model: message`. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "config/config_schema.h"

#define MS_MAX  86400000LL
#define UOFF(f) offsetof(tg_config_upstream, f)

static const char *const k_fallback_names[] = {"edge", "none", NULL};
static const char *const k_mid_names[] = {"default", "continue", "error", NULL};

/* Keys of one item; off is within tg_config_upstream (rebased per item). */
static const tg_config_schema_key k_up_keys[] = {
    {"name", NULL, TG_CK_STR, UOFF(name), 0, 0, 0, NULL, "string", "[a-z0-9_-], unique"},
    {"base_url", NULL, TG_CK_STR, UOFF(base_url), 0, 0, 0, NULL, "https URL",
     "e.g. https://api.example.com/v1"},
    {"model", NULL, TG_CK_STR, UOFF(model), 0, 0, 0, NULL, "string", "the upstream's model"},
    {"api_key_env", NULL, TG_CK_STR, UOFF(api_key_env), 0, 0, 0, NULL, "string",
     "variable holding the key"},
    {"ca_file", NULL, TG_CK_PATH, UOFF(ca_file), 0, 0, 0, NULL, "path", "PEM CA bundle"},
    {"connect_timeout_ms", NULL, TG_CK_MS, UOFF(connect_timeout_ms), 0, 0, MS_MAX, NULL,
     "milliseconds 0..86400000", "0 = routing default"},
    {"first_byte_timeout_ms", NULL, TG_CK_MS, UOFF(first_byte_timeout_ms), 0, 0, MS_MAX, NULL,
     "milliseconds 0..86400000", "0 = routing default"},
    {"idle_timeout_ms", NULL, TG_CK_MS, UOFF(idle_timeout_ms), 0, 0, MS_MAX, NULL,
     "milliseconds 0..86400000", "0 = routing default"},
    {"total_timeout_ms", NULL, TG_CK_MS, UOFF(total_timeout_ms), 0, 0, MS_MAX, NULL,
     "milliseconds 0..86400000", "0 = routing default"},
    {"fallback", NULL, TG_CK_ENUM, UOFF(fallback), 0, 0, 0, k_fallback_names, "edge|none",
     "what runs when this upstream fails"},
    {"midstream", NULL, TG_CK_ENUM, UOFF(midstream), 0, 0, 0, k_mid_names, "default|continue|error",
     "failure after the first token"},
};
#define N_UP_KEYS (sizeof k_up_keys / sizeof k_up_keys[0])

typedef struct {
    yaml_document_t *doc;
    const char *name;
    tg_config *cfg;
    tg_config_errs *errs;
} cwalk;

static void err_at(cwalk *w, const yaml_node_t *n, const char *path, const char *msg) {
    char loc[512];
    snprintf(loc, sizeof loc, "%s:%lu:%lu", w->name, (unsigned long)n->start_mark.line + 1,
             (unsigned long)n->start_mark.column + 1);
    tg_config_errs_add(w->errs, loc, path, "%s", msg);
}

static int scalar_null(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE) return 0;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *v = (const char *)n->data.scalar.value;
    return n->data.scalar.length == 0 || !strcmp(v, "~") || !strcmp(v, "null");
}

static int scalar_ok(cwalk *w, const yaml_node_t *n, const char *path) {
    if (n->type != YAML_SCALAR_NODE) {
        err_at(w, n, path, "expected a single value");
        return 0;
    }
    if (memchr(n->data.scalar.value, 0, n->data.scalar.length)) {
        err_at(w, n, path, "NUL byte in value");
        return 0;
    }
    return 1;
}

static char *xstrdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (!p) abort();
    memcpy(p, s, n);
    return p;
}

/* A header name is an HTTP token; a value is one line of visible text. */
static int header_ok(const char *k, const char *v) {
    if (!*k || strlen(k) > 128 || strlen(v) > 4096) return 0;
    for (const char *p = k; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p)) return 0;
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t') return 0;
    /* The key header is ours to set, from the environment only. */
    return strcasecmp(k, "authorization") != 0;
}

static void walk_headers(cwalk *w, tg_config_upstream *u, const char *prefix, yaml_node_t *m) {
    char path[160];
    snprintf(path, sizeof path, "%s.headers", prefix);
    if (scalar_null(m)) return;
    if (m->type != YAML_MAPPING_NODE) {
        err_at(w, m, path, "expected a mapping of header names to values");
        return;
    }
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(w->doc, p->value);
        if (!kn || !vn || !scalar_ok(w, kn, path) || !scalar_ok(w, vn, path)) continue;
        const char *k = (const char *)kn->data.scalar.value,
                   *v = (const char *)vn->data.scalar.value;
        if (!header_ok(k, v)) {
            err_at(w, kn, path,
                   "header must be a token name (not authorization) with a one-line value");
            continue;
        }
        if (u->n_headers >= TG_CONFIG_MAX_UP_HEADERS) {
            err_at(w, kn, path, "too many headers (max 16)");
            return;
        }
        size_t n = strlen(k) + strlen(v) + 3;
        char *h = malloc(n);
        if (!h) abort();
        snprintf(h, n, "%s: %s", k, v);
        u->headers[u->n_headers++] = h;
    }
}

static void walk_item(cwalk *w, int idx, yaml_node_t *item) {
    char prefix[32];
    snprintf(prefix, sizeof prefix, "cloud[%d]", idx);
    if (item->type != YAML_MAPPING_NODE) {
        err_at(w, item, prefix, "expected a mapping (name, base_url, model, ...)");
        return;
    }
    int slot = w->cfg->n_cloud++;
    tg_config_upstream *u = &w->cfg->cloud[slot];
    memset(u, 0, sizeof *u);
    size_t base = offsetof(tg_config, cloud) + (size_t)slot * sizeof(tg_config_upstream);
    for (yaml_node_pair_t *p = item->data.mapping.pairs.start; p < item->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(w->doc, p->value);
        if (!kn || !vn || !scalar_ok(w, kn, prefix)) continue;
        const char *key = (const char *)kn->data.scalar.value;
        char path[160], shown[72];
        tg_config_sanitize(key, shown, sizeof shown);
        snprintf(path, sizeof path, "%s.%s", prefix, shown);
        if (!strcmp(key, "headers")) {
            walk_headers(w, u, prefix, vn);
            continue;
        }
        const tg_config_schema_key *k = NULL;
        for (size_t i = 0; i < N_UP_KEYS; i++)
            if (!strcmp(k_up_keys[i].path, key)) k = &k_up_keys[i];
        if (!k) {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "unknown key '%s' (name, base_url, model, api_key_env, ca_file, headers, "
                     "*_timeout_ms, fallback, midstream)",
                     shown);
            err_at(w, kn, path, msg);
            continue;
        }
        if (!scalar_ok(w, vn, path)) continue;
        tg_config_schema_key at = *k;
        at.off += base;
        char msg[256];
        if (tg_config_schema_apply(
                w->cfg, &at, (const char *)vn->data.scalar.value, scalar_null(vn),
                vn->data.scalar.style != YAML_PLAIN_SCALAR_STYLE, msg, sizeof msg) != 0)
            err_at(w, vn, path, msg);
    }
}

void tg_config_cloud_walk(void *doc, const char *name, tg_config *cfg, tg_config_errs *errs,
                          void *node) {
    cwalk w = {doc, name, cfg, errs};
    yaml_node_t *v = node;
    tg_config_cloud_free_list(cfg);
    if (scalar_null(v)) return;
    if (v->type != YAML_SEQUENCE_NODE) {
        err_at(&w, v, "cloud", "expected a list of upstreams");
        return;
    }
    int i = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++, i++) {
        yaml_node_t *item = yaml_document_get_node(doc, *it);
        if (!item) continue;
        if (cfg->n_cloud >= TG_CONFIG_MAX_UPSTREAMS) {
            err_at(&w, item, "cloud", "too many upstreams (max 8)");
            return;
        }
        walk_item(&w, i, item);
    }
}

/* ---- flags ------------------------------------------------------------------ */

static tg_config_upstream *find_named(tg_config *cfg, const char *name) {
    for (int i = 0; i < cfg->n_cloud; i++)
        if (cfg->cloud[i].name && !strcmp(cfg->cloud[i].name, name)) return &cfg->cloud[i];
    return NULL;
}

int tg_config_set_cloud(tg_config *cfg, const char *source, const char *field, const char *value,
                        char *err, size_t errlen) {
    tg_config_upstream *u = find_named(cfg, "cloud");
    if (!u) {
        if (cfg->n_cloud >= TG_CONFIG_MAX_UPSTREAMS) {
            snprintf(err, errlen, "%s: cloud: too many upstreams (max 8)", source);
            return -1;
        }
        u = &cfg->cloud[cfg->n_cloud++];
        memset(u, 0, sizeof *u);
        u->name = xstrdup("cloud");
    }
    char **slot = !strcmp(field, "base_url")      ? &u->base_url
                  : !strcmp(field, "model")       ? &u->model
                  : !strcmp(field, "api_key_env") ? &u->api_key_env
                                                  : NULL;
    if (!slot || !value || !*value || strlen(value) > 4096) {
        snprintf(err, errlen, "%s: cloud.%s: expected a non-empty value", source, field);
        return -1;
    }
    free(*slot);
    *slot = xstrdup(value);
    return 0;
}

const tg_config_upstream *tg_config_find_upstream(const tg_config *cfg, const char *id) {
    if (!id) return NULL;
    for (int i = 0; i < cfg->n_cloud; i++)
        if ((cfg->cloud[i].model && !strcmp(cfg->cloud[i].model, id)) ||
            (cfg->cloud[i].name && !strcmp(cfg->cloud[i].name, id)))
            return &cfg->cloud[i];
    return NULL;
}

/* ---- checks ------------------------------------------------------------------ */

static int name_ok(const char *s) {
    if (!*s || strlen(s) > 48) return 0;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '-' && *s != '_')
            return 0;
    return 1;
}

void tg_config_cloud_finalize(tg_config *cfg, const char *src, tg_config_errs *errs) {
    for (int i = 0; i < cfg->n_cloud; i++) {
        tg_config_upstream *u = &cfg->cloud[i];
        char p[48];
        snprintf(p, sizeof p, "cloud[%d]", i);
        if (!u->name || !name_ok(u->name))
            tg_config_errs_add(errs, src, p, "name: required, [a-z0-9_-], at most 48 characters");
        else if (find_named(cfg, u->name) != u)
            tg_config_errs_add(errs, src, p, "name '%s' is used twice", u->name);
        /* TLS verification is always on, so the URL must be https. */
        if (!u->base_url || strncasecmp(u->base_url, "https://", 8) || strlen(u->base_url) < 9)
            tg_config_errs_add(errs, src, p, "base_url: required, an https:// URL");
        if (!u->model || !*u->model || strlen(u->model) > 120)
            tg_config_errs_add(errs, src, p, "model: required (at most 120 characters)");
        else if (!strncmp(u->model, "tidegate/", 9) ||
                 (cfg->engine.model_id && !strcmp(u->model, cfg->engine.model_id)))
            tg_config_errs_add(errs, src, p, "model '%s' collides with an edge model id", u->model);
        if (u->api_key_env && (!*u->api_key_env || strchr(u->api_key_env, '=')))
            tg_config_errs_add(errs, src, p, "api_key_env: a variable name");
    }
}

/* ---- output, lifetime ------------------------------------------------------- */

static void put_q(tg_buf *b, const char *s) {
    if (!s) {
        tg_buf_puts(b, "null");
        return;
    }
    tg_buf_json_str(b, s, strlen(s)); /* JSON strings are YAML double-quoted scalars */
}

void tg_config_cloud_yaml(tg_buf *b, const tg_config *cfg) {
    if (cfg->n_cloud == 0) {
        tg_buf_puts(b, " []\n");
        return;
    }
    tg_buf_putc(b, '\n');
    for (int i = 0; i < cfg->n_cloud; i++) {
        const tg_config_upstream *u = &cfg->cloud[i];
        tg_buf_puts(b, "  - name: ");
        put_q(b, u->name);
        tg_buf_puts(b, "\n    base_url: ");
        put_q(b, u->base_url);
        tg_buf_puts(b, "\n    model: ");
        put_q(b, u->model);
        tg_buf_puts(b, "\n    api_key_env: ");
        put_q(b, u->api_key_env);
        tg_buf_puts(b, "\n    ca_file: ");
        put_q(b, u->ca_file);
        tg_buf_printf(b,
                      "\n    connect_timeout_ms: %u\n    first_byte_timeout_ms: %u\n"
                      "    idle_timeout_ms: %u\n    total_timeout_ms: %u\n",
                      u->connect_timeout_ms, u->first_byte_timeout_ms, u->idle_timeout_ms,
                      u->total_timeout_ms);
        tg_buf_printf(b, "    fallback: %s\n    midstream: %s\n", k_fallback_names[u->fallback],
                      k_mid_names[u->midstream]);
        /* Header values may be secrets of their own: names only. */
        tg_buf_puts(b, "    headers:");
        if (!u->n_headers) tg_buf_puts(b, " {}");
        tg_buf_putc(b, '\n');
        for (int h = 0; h < u->n_headers; h++) {
            const char *c = strchr(u->headers[h], ':');
            tg_buf_printf(b, "      %.*s: \"(set)\"\n", (int)(c - u->headers[h]), u->headers[h]);
        }
    }
}

void tg_config_cloud_free_list(tg_config *cfg) {
    for (int i = 0; i < cfg->n_cloud; i++) {
        tg_config_upstream *u = &cfg->cloud[i];
        free(u->name);
        free(u->base_url);
        free(u->model);
        free(u->api_key_env);
        free(u->ca_file);
        for (int h = 0; h < u->n_headers; h++)
            free(u->headers[h]);
        memset(u, 0, sizeof *u);
    }
    cfg->n_cloud = 0;
}

void tg_config_cloud_free(tg_config *cfg) {
    tg_config_cloud_free_list(cfg);
    free(cfg->routing.ca_file);
    cfg->routing.ca_file = NULL;
    free(cfg->routing.policy);
    cfg->routing.policy = NULL;
    free(cfg->routing.health_root);
    cfg->routing.health_root = NULL;
}

void tg_config_cloud_copy(tg_config *dst, const tg_config *src) {
    dst->routing.ca_file = xstrdup(src->routing.ca_file);
    dst->routing.policy = xstrdup(src->routing.policy);
    dst->routing.health_root = xstrdup(src->routing.health_root);
    for (int i = 0; i < src->n_cloud; i++) {
        const tg_config_upstream *s = &src->cloud[i];
        tg_config_upstream *d = &dst->cloud[i];
        d->name = xstrdup(s->name);
        d->base_url = xstrdup(s->base_url);
        d->model = xstrdup(s->model);
        d->api_key_env = xstrdup(s->api_key_env);
        d->ca_file = xstrdup(s->ca_file);
        for (int h = 0; h < s->n_headers; h++)
            d->headers[h] = xstrdup(s->headers[h]);
    }
}
