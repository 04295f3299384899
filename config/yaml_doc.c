/* yaml_doc: loads a YAML document with libyaml's document API (every node
 * keeps its start mark, so every error has a line and column) and walks it
 * against the key table in config_schema.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "common/tg_file.h"

#include "config/config_schema.h"

#define MAX_FILE_BYTES (1u << 20) /* a config is a few KiB; more is a mistake */
/* The schema is 3 levels deep; policies may nest more, never this much. */
#define TG_CONFIG_YAML_MAX_DEPTH 64

typedef struct {
    yaml_document_t *doc;
    const char *name;
    tg_config *cfg;
    tg_config_errs *errs;
} walker;

static void where(const walker *w, const yaml_node_t *n, char *out, size_t outlen) {
    snprintf(out, outlen, "%s:%lu:%lu", w->name, (unsigned long)n->start_mark.line + 1,
             (unsigned long)n->start_mark.column + 1);
}

static void node_err(walker *w, const yaml_node_t *n, const char *path, const char *fmt,
                     const char *msg) {
    char loc[512];
    where(w, n, loc, sizeof loc);
    tg_config_errs_add(w->errs, loc, path, fmt, msg);
}

static const char *node_kind(const yaml_node_t *n) {
    switch (n->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    default: return "a scalar";
    }
}

static int is_plain(const yaml_node_t *n) {
    return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ||
           n->data.scalar.style == YAML_ANY_SCALAR_STYLE;
}

/* YAML null: an empty plain scalar, ~, or null in its three spellings. */
static int is_null(const yaml_node_t *n) {
    if (n->type != YAML_SCALAR_NODE || !is_plain(n)) return 0;
    const char *v = (const char *)n->data.scalar.value;
    return n->data.scalar.length == 0 || !strcmp(v, "~") || !strcmp(v, "null") ||
           !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* A scalar may hold NUL bytes (YAML escapes "\0"); C strings cannot. */
static int has_nul(const yaml_node_t *n) {
    return memchr(n->data.scalar.value, 0, n->data.scalar.length) != NULL;
}

static void walk_value(walker *w, const tg_config_schema_key *k, yaml_node_t *v);

static void walk_mapping(walker *w, const char *prefix, yaml_node_t *map) {
    yaml_node_pair_t *start = map->data.mapping.pairs.start, *top = map->data.mapping.pairs.top;
    for (yaml_node_pair_t *p = start; p < top && !tg_config_errs_full(w->errs); p++) {
        yaml_node_t *kn = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(w->doc, p->value);
        if (!kn || !vn) continue;
        if (kn->type != YAML_SCALAR_NODE || has_nul(kn)) {
            node_err(w, kn, prefix, "%s", "keys must be plain names");
            continue;
        }
        const char *key = (const char *)kn->data.scalar.value;
        char shown[72];
        tg_config_sanitize(key, shown, sizeof shown);
        /* Duplicates: YAML says keys are unique; libyaml does not check. */
        int dup = 0;
        for (yaml_node_pair_t *q = start; q < p && !dup; q++) {
            yaml_node_t *qk = yaml_document_get_node(w->doc, q->key);
            dup = qk && qk->type == YAML_SCALAR_NODE &&
                  qk->data.scalar.length == kn->data.scalar.length &&
                  !memcmp(qk->data.scalar.value, key, kn->data.scalar.length);
        }
        char path[256];
        int pl = snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", shown);
        if (dup) {
            node_err(w, kn, path, "%s", "duplicate key");
            continue;
        }
        const tg_config_schema_key *k =
            (pl > 0 && (size_t)pl < sizeof path) ? tg_config_schema_find(path) : NULL;
        if (!k || strchr(key, '.') || strlen(key) != kn->data.scalar.length) {
            const char *sug = tg_config_schema_suggest(prefix, key);
            char loc[512];
            where(w, kn, loc, sizeof loc);
            if (sug)
                tg_config_errs_add(w->errs, loc, path, "unknown key '%s' (did you mean '%s'?)",
                                   shown, sug);
            else
                tg_config_errs_add(w->errs, loc, path, "unknown key '%s'", shown);
            continue;
        }
        walk_value(w, k, vn);
    }
}

static void walk_value(walker *w, const tg_config_schema_key *k, yaml_node_t *v) {
    char msg[256];
    if (k->kind == TG_CK_SECTION) {
        if (v->type == YAML_MAPPING_NODE)
            walk_mapping(w, k->path, v);
        else if (!is_null(v))
            node_err(w, v, k->path, "expected a mapping (section), got %s", node_kind(v));
        return;
    }
    if (k->kind == TG_CK_UPSTREAMS) {
        tg_config_cloud_walk(w->doc, w->name, w->cfg, w->errs, v);
        return;
    }
    if (k->kind == TG_CK_HASHES) {
        if (is_null(v)) {
            tg_config_schema_list_clear(w->cfg, k);
            return;
        }
        if (v->type != YAML_SEQUENCE_NODE) {
            node_err(w, v, k->path, "expected a list of SHA-256 hex strings, got %s", node_kind(v));
            return;
        }
        tg_config_schema_list_clear(w->cfg, k);
        int i = 0;
        for (yaml_node_item_t *it = v->data.sequence.items.start;
             it < v->data.sequence.items.top && !tg_config_errs_full(w->errs); it++, i++) {
            yaml_node_t *item = yaml_document_get_node(w->doc, *it);
            if (!item) continue;
            char path[128];
            snprintf(path, sizeof path, "%s[%d]", k->path, i);
            if (item->type != YAML_SCALAR_NODE) {
                node_err(w, item, path, "expected a SHA-256 hex string, got %s", node_kind(item));
                continue;
            }
            if (has_nul(item) ||
                tg_config_schema_list_add(w->cfg, k, (const char *)item->data.scalar.value, msg,
                                          sizeof msg) != 0) {
                if (has_nul(item)) snprintf(msg, sizeof msg, "NUL byte in value");
                node_err(w, item, path, "%s", msg);
            }
        }
        return;
    }
    if (v->type != YAML_SCALAR_NODE) {
        node_err(w, v, k->path, "expected a single value, got %s", node_kind(v));
        return;
    }
    if (has_nul(v)) {
        node_err(w, v, k->path, "%s", "NUL byte in value");
        return;
    }
    if (tg_config_schema_apply(w->cfg, k, (const char *)v->data.scalar.value, is_null(v),
                               !is_plain(v), msg, sizeof msg) != 0)
        node_err(w, v, k->path, "%s", msg);
}

/* libyaml's own messages, placed at its problem mark. */
static void syntax_err(walker *w, const yaml_parser_t *p) {
    char loc[512];
    const yaml_mark_t *m = &p->problem_mark;
    if (p->error == YAML_READER_ERROR) {
        snprintf(loc, sizeof loc, "%s:%lu:%lu", w->name, 1ul, 1ul);
        tg_config_errs_add(w->errs, loc, "yaml", "%s at byte %lu",
                           p->problem ? p->problem : "cannot read input",
                           (unsigned long)p->problem_offset);
        return;
    }
    if (p->error == YAML_MEMORY_ERROR) {
        snprintf(loc, sizeof loc, "%s:1:1", w->name);
        tg_config_errs_add(w->errs, loc, "yaml", "out of memory");
        return;
    }
    snprintf(loc, sizeof loc, "%s:%lu:%lu", w->name, (unsigned long)m->line + 1,
             (unsigned long)m->column + 1);
    /* libyaml's context ("while parsing a flow sequence") has its own mark:
     * where the construct started, often lines above the problem. */
    if (p->context)
        tg_config_errs_add(w->errs, loc, "yaml", "%s (%s started at %lu:%lu)",
                           p->problem ? p->problem : "syntax error", p->context,
                           (unsigned long)p->context_mark.line + 1,
                           (unsigned long)p->context_mark.column + 1);
    else
        tg_config_errs_add(w->errs, loc, "yaml", "%s", p->problem ? p->problem : "syntax error");
}

/* Nesting is limited before libyaml builds a document: its scanner does
 * work per open flow level for every token, so 40,000 nested '[' took
 * seconds to refuse. The event stream is read only as far as the first
 * collection past the limit. Syntax errors are left for the loader to
 * report (it stops at the same place). Returns 0, or -1 with an error. */
static int depth_check(walker *w, const char *data, size_t len) {
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) abort();
    yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
    int depth = 0, rc = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) break; /* the loader reports it */
        yaml_event_type_t t = ev.type;
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
            if (++depth > TG_CONFIG_YAML_MAX_DEPTH) {
                char loc[512];
                snprintf(loc, sizeof loc, "%s:%lu:%lu", w->name,
                         (unsigned long)ev.start_mark.line + 1,
                         (unsigned long)ev.start_mark.column + 1);
                tg_config_errs_add(w->errs, loc, "yaml", "nested deeper than %d levels",
                                   TG_CONFIG_YAML_MAX_DEPTH);
                rc = -1;
            }
        } else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) {
            depth--;
        }
        yaml_event_delete(&ev);
        if (rc != 0 || t == YAML_STREAM_END_EVENT) break;
    }
    yaml_parser_delete(&p);
    return rc;
}

int tg_config_load_mem(const char *data, size_t len, const char *name, tg_config *cfg, char *err,
                       size_t errlen) {
    tg_config_errs errs = {TG_BUF_INIT, 0};
    walker w = {NULL, name ? name : "<config>", cfg, &errs};
    if (len > MAX_FILE_BYTES) {
        char loc[512];
        snprintf(loc, sizeof loc, "%s:1:1", w.name);
        tg_config_errs_add(&errs, loc, "(root)", "file larger than %u bytes", MAX_FILE_BYTES);
        return tg_config_errs_finish(&errs, err, errlen);
    }
    if (depth_check(&w, data, len) != 0) return tg_config_errs_finish(&errs, err, errlen);
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) abort();
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    if (!yaml_parser_load(&parser, &doc)) {
        syntax_err(&w, &parser);
        yaml_parser_delete(&parser);
        return tg_config_errs_finish(&errs, err, errlen);
    }
    w.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root) {
        if (root->type == YAML_MAPPING_NODE)
            walk_mapping(&w, "", root);
        else if (!is_null(root))
            node_err(&w, root, "(root)", "expected a mapping of sections, got %s", node_kind(root));
        /* A second document would be silently ignored: refuse it instead. */
        yaml_document_t doc2;
        if (!tg_config_errs_full(&errs)) {
            if (!yaml_parser_load(&parser, &doc2)) {
                syntax_err(&w, &parser);
            } else {
                yaml_node_t *r2 = yaml_document_get_root_node(&doc2);
                if (r2) node_err(&w, r2, "(root)", "%s", "more than one YAML document");
                yaml_document_delete(&doc2);
            }
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return tg_config_errs_finish(&errs, err, errlen);
}

int tg_config_load_file(const char *path, tg_config *cfg, char *err, size_t errlen) {
    int explicit_path = path != NULL;
    if (!path) path = TG_CONFIG_DEFAULT_PATH;
    if (err && errlen) err[0] = 0;
    if (!explicit_path && access(path, F_OK) != 0 && errno == ENOENT)
        return 0; /* no default file: defaults */
    /* A FIFO would block the open and the read for ever: refused. */
    int fd = tg_file_open_regular(path, err, errlen);
    if (fd < 0) return -1;
    FILE *f = fdopen(fd, "rb");
    if (!f) abort();
    /* Read at most one byte past the limit so an oversize file is detected
     * without trusting st_size (the file may grow while we read). */
    char *buf = malloc(MAX_FILE_BYTES + 1);
    if (!buf) abort();
    size_t n = fread(buf, 1, MAX_FILE_BYTES + 1, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        snprintf(err, errlen, "%s: read error", path);
        free(buf);
        return -1;
    }
    int rc = tg_config_load_mem(buf, n, path, cfg, err, errlen);
    free(buf);
    if (rc == 0) {
        free(cfg->source_path);
        cfg->source_path = strdup(path);
        if (!cfg->source_path) abort();
    }
    return rc;
}
