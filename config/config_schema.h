/* config_schema: internal to the config module. The table of every key, and
 * the text -> value conversions shared by the YAML walker, the environment
 * and command-line flags, so each key is validated in exactly one place. */
#ifndef TG_CONFIG_SCHEMA_H
#define TG_CONFIG_SCHEMA_H

#include <stddef.h>

#include "common/tg_buf.h"
#include "config/config.h"

typedef enum {
    TG_CK_SECTION, /* a mapping of further keys */
    TG_CK_STR,     /* free text, null = unset */
    TG_CK_PATH,    /* file path, null = unset */
    TG_CK_INT,     /* decimal integer in [min, max], stored as int */
    TG_CK_MS,      /* milliseconds: decimal integer in [min, max], stored as uint32_t */
    TG_CK_SIZE,    /* byte count: integer, or with a KiB/MiB/GiB suffix, stored as size_t */
    TG_CK_BOOL,
    TG_CK_ENUM,      /* one of names[] (index stored as int) */
    TG_CK_LISTEN,    /* host:port */
    TG_CK_HASHES,    /* list of 64-hex SHA-256 digests */
    TG_CK_UPSTREAMS, /* the `cloud:` list of upstream mappings (config_cloud.c) */
} tg_config_kind;

typedef struct {
    const char *path; /* dotted: "server.tls.cert" */
    const char *env;  /* variable name or NULL (sections) */
    tg_config_kind kind;
    size_t off;               /* offset of the value in tg_config (LISTEN: host; HASHES: array) */
    size_t off2;              /* LISTEN: port; HASHES: count */
    long long min, max;       /* INT/SIZE range */
    const char *const *names; /* ENUM values, NULL-terminated */
    const char *type;         /* human description for docs and errors */
    const char *help;
} tg_config_schema_key;

/* Key by exact dotted path, or NULL. */
const tg_config_schema_key *tg_config_schema_find(const char *path);
/* Number of keys and the i-th one (table order = documentation order). */
size_t tg_config_schema_count(void);
const tg_config_schema_key *tg_config_schema_at(size_t i);

/* The closest existing child name of section `prefix` ("" = root) to the
 * misspelt `name`, or NULL if nothing is close. */
const char *tg_config_schema_suggest(const char *prefix, const char *name);

/* Sets a scalar key from text. is_null: YAML null (plain "", ~, null).
 * is_quoted: the YAML scalar was quoted, so it is a string and never a
 * number or boolean. Returns 0, or -1 with a message in msg. */
int tg_config_schema_apply(tg_config *cfg, const tg_config_schema_key *k, const char *text,
                           int is_null, int is_quoted, char *msg, size_t msglen);
/* HASHES keys: empty the list / append one item. 0 or -1 with msg. */
void tg_config_schema_list_clear(tg_config *cfg, const tg_config_schema_key *k);
int tg_config_schema_list_add(tg_config *cfg, const tg_config_schema_key *k, const char *text,
                              char *msg, size_t msglen);

/* Error collector: lines `where: path: msg`, at most TG_CONFIG_MAX_ERRORS. */
#define TG_CONFIG_MAX_ERRORS 20
typedef struct {
    tg_buf text;
    int count;
} tg_config_errs;
void tg_config_errs_add(tg_config_errs *e, const char *where, const char *path, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));
int tg_config_errs_full(const tg_config_errs *e);
/* Copies into err (truncating on a line boundary when possible), frees e.
 * Returns 0 if there were no errors, else -1. */
int tg_config_errs_finish(tg_config_errs *e, char *err, size_t errlen);

/* The routing keys live in their own table (config_schema_routing.c);
 * tg_config_schema_at/find walk both. */
extern const tg_config_schema_key tg_config_routing_keys[];
extern const size_t tg_config_routing_nkeys;
void tg_config_routing_defaults(tg_config *cfg);

/* The journal keys (config_schema_journal.c), walked after the routing ones. */
extern const tg_config_schema_key tg_config_journal_keys[];
extern const size_t tg_config_journal_nkeys;
void tg_config_journal_defaults(tg_config *cfg);
void tg_config_journal_free(tg_config *cfg);
void tg_config_journal_copy(tg_config *dst, const tg_config *src);

/* config_cloud.c: the `cloud:` list. walk reads a YAML node (any kind) with
 * file:line:col errors; yaml writes it for `config show`; finalize checks
 * cross-key rules; free/copy own the strings. doc is a yaml_document_t. */
void tg_config_cloud_walk(void *doc, const char *name, tg_config *cfg, tg_config_errs *errs,
                          void *node);
void tg_config_cloud_yaml(tg_buf *b, const tg_config *cfg);
void tg_config_cloud_finalize(tg_config *cfg, const char *src, tg_config_errs *errs);
void tg_config_cloud_free(tg_config *cfg);
void tg_config_cloud_free_list(tg_config *cfg); /* the list only */
void tg_config_cloud_copy(tg_config *dst, const tg_config *src);

/* Copies text for an error message: control characters become '?', and
 * long text is cut with "...". */
void tg_config_sanitize(const char *s, char *out, size_t outlen);

#endif
