/* config_schema: the key table and the text conversions every source shares. */
#include "config/config_schema.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/tg_str.h"

#define OFF(f) offsetof(tg_config, f)

static const char *const k_kv_names[] = {"f32", "f16", NULL};
static const char *const k_kernel_names[] = {"auto", "scalar", NULL};
static const char *const k_log_names[] = {"debug", "info", "warn", "error", "off", NULL};

#define MS_MAX 86400000LL /* one day */

/* Documentation order: config/tidegate.yaml and `config show` follow it. */
static const tg_config_schema_key k_keys[] = {
    {"server", NULL, TG_CK_SECTION, 0, 0, 0, 0, NULL, "section", "HTTP listener and limits"},
    {"server.listen", "TIDEGATE_LISTEN", TG_CK_LISTEN, OFF(server.listen_host),
     OFF(server.listen_port), 0, 0, NULL, "host:port", "address to listen on; [::1]:8080 for IPv6"},
    {"server.tls", NULL, TG_CK_SECTION, 0, 0, 0, 0, NULL, "section", "HTTPS; both or neither"},
    {"server.tls.cert", "TIDEGATE_TLS_CERT", TG_CK_PATH, OFF(server.tls_cert), 0, 0, 0, NULL,
     "path", "PEM certificate chain"},
    {"server.tls.key", "TIDEGATE_TLS_KEY", TG_CK_PATH, OFF(server.tls_key), 0, 0, 0, NULL, "path",
     "PEM private key"},
    {"server.max_body_bytes", "TIDEGATE_MAX_BODY_BYTES", TG_CK_SIZE, OFF(server.max_body_bytes), 0,
     1024, 256LL << 20, NULL, "size 1KiB..256MiB", "largest request body (413 beyond)"},
    {"server.max_header_bytes", "TIDEGATE_MAX_HEADER_BYTES", TG_CK_SIZE,
     OFF(server.max_header_bytes), 0, 1024, 1LL << 20, NULL, "size 1KiB..1MiB",
     "largest request line + headers (431 beyond)"},
    {"server.max_headers", "TIDEGATE_MAX_HEADERS", TG_CK_INT, OFF(server.max_headers), 0, 1, 1024,
     NULL, "integer 1..1024", "most header fields per request (431 beyond)"},
    {"server.max_connections", "TIDEGATE_MAX_CONNECTIONS", TG_CK_INT, OFF(server.max_connections),
     0, 1, 1000000, NULL, "integer 1..1000000", "concurrent client connections"},
    {"server.header_timeout_ms", "TIDEGATE_HEADER_TIMEOUT_MS", TG_CK_MS,
     OFF(server.header_timeout_ms), 0, 1, MS_MAX, NULL, "milliseconds 1..86400000",
     "the request head must arrive within this (408)"},
    {"server.body_timeout_ms", "TIDEGATE_BODY_TIMEOUT_MS", TG_CK_MS, OFF(server.body_timeout_ms), 0,
     1, MS_MAX, NULL, "milliseconds 1..86400000", "the body must arrive within this (408)"},
    {"server.idle_timeout_ms", "TIDEGATE_IDLE_TIMEOUT_MS", TG_CK_MS, OFF(server.idle_timeout_ms), 0,
     1, MS_MAX, NULL, "milliseconds 1..86400000", "close keep-alive connections idle this long"},
    {"server.write_timeout_ms", "TIDEGATE_WRITE_TIMEOUT_MS", TG_CK_MS, OFF(server.write_timeout_ms),
     0, 1, MS_MAX, NULL, "milliseconds 1..86400000",
     "close a connection whose writes make no progress this long"},
    {"server.shutdown_grace_ms", "TIDEGATE_SHUTDOWN_GRACE_MS", TG_CK_MS,
     OFF(server.shutdown_grace_ms), 0, 0, MS_MAX, NULL, "milliseconds 0..86400000",
     "on SIGTERM, let in-flight requests finish this long"},
    {"server.conn_buffer_limit_bytes", "TIDEGATE_CONN_BUFFER_LIMIT_BYTES", TG_CK_SIZE,
     OFF(server.conn_buffer_limit_bytes), 0, 4096, 1LL << 30, NULL, "size 4KiB..1GiB",
     "unsent output per connection before its next pipelined request waits"},
    {"server.memory_budget_bytes", "TIDEGATE_MEMORY_BUDGET_BYTES", TG_CK_SIZE,
     OFF(server.memory_budget_bytes), 0, 1LL << 20, 64LL << 30, NULL, "size 1MiB..64GiB",
     "request bodies + unparsed input + queued output of all connections (503 beyond)"},
    {"server.trusted_proxies", "TIDEGATE_TRUSTED_PROXIES", TG_CK_STR, OFF(server.trusted_proxies),
     0, 0, 0, NULL, "comma-separated IP addresses",
     "peers whose X-Forwarded-For may be believed (not read yet); empty = none"},
    {"server.cors_origins", "TIDEGATE_CORS_ORIGINS", TG_CK_STR, OFF(server.cors_origins), 0, 0, 0,
     NULL, "comma list", "browser origins allowed by CORS (\"*\" = any; null = off)"},
    {"admin", NULL, TG_CK_SECTION, 0, 0, 0, 0, NULL, "section",
     "the admin listener: /metrics and /admin/* (never on server.listen)"},
    {"admin.listen", "TIDEGATE_ADMIN_LISTEN", TG_CK_LISTEN, OFF(admin.listen_host),
     OFF(admin.listen_port), -1, 0, NULL, "host:port or null",
     "admin address; null = 127.0.0.1 on the API port + 1"},
    {"auth", NULL, TG_CK_SECTION, 0, 0, 0, 0, NULL, "section", "bearer keys, stored as SHA-256"},
    {"auth.api_key_sha256", "TIDEGATE_API_KEY_SHA256", TG_CK_HASHES, OFF(auth.api_keys),
     OFF(auth.n_api_keys), 0, TG_CONFIG_MAX_KEYS, NULL, "list of 64-hex SHA-256",
     "keys accepted on /v1 (empty = no auth)"},
    {"auth.admin_key_sha256", "TIDEGATE_ADMIN_KEY_SHA256", TG_CK_HASHES, OFF(auth.admin_keys),
     OFF(auth.n_admin_keys), 0, TG_CONFIG_MAX_KEYS, NULL, "list of 64-hex SHA-256",
     "keys accepted on /admin (empty = loopback only)"},
    {"auth.admin_loopback_only", "TIDEGATE_ADMIN_LOOPBACK_ONLY", TG_CK_BOOL,
     OFF(auth.admin_loopback_only), 0, 0, 1, NULL, "boolean",
     "refuse /admin from non-loopback peers"},
    {"engine", NULL, TG_CK_SECTION, 0, 0, 0, 0, NULL, "section", "embedded LFM2 engine"},
    {"engine.model", "TIDEGATE_MODEL", TG_CK_PATH, OFF(engine.model), 0, 0, 0, NULL, "path",
     "GGUF model file"},
    {"engine.model_id", "TIDEGATE_MODEL_ID", TG_CK_STR, OFF(engine.model_id), 0, 0, 0, NULL,
     "string", "id listed by /v1/models (default: file name without .gguf)"},
    {"engine.threads", "TIDEGATE_THREADS", TG_CK_INT, OFF(engine.threads), 0, 0, 1024, NULL,
     "integer 0..1024", "compute threads (0 = number of CPUs)"},
    {"engine.max_active", "TIDEGATE_MAX_ACTIVE", TG_CK_INT, OFF(engine.max_active), 0, 1, 256, NULL,
     "integer 1..256", "sequences decoded together (batch width)"},
    {"engine.queue_capacity", "TIDEGATE_QUEUE_CAPACITY", TG_CK_INT, OFF(engine.queue_capacity), 0,
     0, 100000, NULL, "integer 0..100000", "requests waiting beyond max_active"},
    {"engine.context", "TIDEGATE_CONTEXT", TG_CK_INT, OFF(engine.context), 0, 0, 1048576, NULL,
     "integer 0..1048576", "tokens per sequence (0 = model's; capped at model's)"},
    {"engine.prefix_cache_mib", "TIDEGATE_PREFIX_CACHE_MIB", TG_CK_INT,
     OFF(engine.prefix_cache_mib), 0, 0, 1048576, NULL, "integer 0..1048576",
     "prefix cache budget in MiB (0 = off)"},
    {"engine.kv_type", "TIDEGATE_KV_TYPE", TG_CK_ENUM, OFF(engine.kv_type), 0, 0, 0, k_kv_names,
     "f32|f16", "KV cache element type"},
    {"engine.kernels", "TIDEGATE_KERNELS", TG_CK_ENUM, OFF(engine.kernels), 0, 0, 0, k_kernel_names,
     "auto|scalar", "SIMD kernels, or the portable scalar path"},
    {"log", NULL, TG_CK_SECTION, 0, 0, 0, 0, NULL, "section", "logging"},
    {"log.level", "TIDEGATE_LOG", TG_CK_ENUM, OFF(log.level), 0, 0, 0, k_log_names,
     "debug|info|warn|error|off", "least severe level written to stderr"},
};
#define N_KEYS (sizeof k_keys / sizeof k_keys[0])

size_t tg_config_schema_count(void) {
    return N_KEYS + tg_config_routing_nkeys + tg_config_journal_nkeys;
}
const tg_config_schema_key *tg_config_schema_at(size_t i) {
    if (i < N_KEYS) return &k_keys[i];
    i -= N_KEYS;
    if (i < tg_config_routing_nkeys) return &tg_config_routing_keys[i];
    i -= tg_config_routing_nkeys;
    return i < tg_config_journal_nkeys ? &tg_config_journal_keys[i] : NULL;
}

const tg_config_schema_key *tg_config_schema_find(const char *path) {
    for (size_t i = 0; i < tg_config_schema_count(); i++)
        if (!strcmp(tg_config_schema_at(i)->path, path)) return tg_config_schema_at(i);
    return NULL;
}

/* ---- suggestions ------------------------------------------------------------- */

static size_t edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return SIZE_MAX;
    size_t prev[65], cur[65];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof *prev);
    }
    return prev[lb];
}

const char *tg_config_schema_suggest(const char *prefix, const char *name) {
    size_t pl = strlen(prefix);
    const char *best = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < tg_config_schema_count(); i++) {
        const char *p = tg_config_schema_at(i)->path, *child;
        if (pl) {
            if (strncmp(p, prefix, pl) != 0 || p[pl] != '.') continue;
            child = p + pl + 1;
        } else {
            child = p;
        }
        if (strchr(child, '.')) continue; /* grandchild */
        size_t d = edit_distance(name, child);
        if (d < best_d) {
            best_d = d;
            best = child;
        }
    }
    /* Close enough to be a typo: a third of the name, at least one edit. */
    size_t limit = strlen(name) / 3;
    if (limit < 1) limit = 1;
    return best_d <= limit ? best : NULL;
}

/* ---- text conversions ---------------------------------------------------------- */

void tg_config_sanitize(const char *s, char *out, size_t outlen) {
    if (!outlen) return;
    size_t n = 0, max = outlen > 64 ? 64 : outlen - 1;
    for (; s[n] && n < max; n++) {
        unsigned char c = (unsigned char)s[n];
        out[n] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[n] = 0;
    if (s[n] && n >= 3) memcpy(out + n - 3, "...", 3);
}

/* Strict decimal: optional '-', digits, nothing else. */
static int parse_ll(const char *s, long long *out) {
    const char *p = s;
    if (*p == '-') p++;
    if (*p < '0' || *p > '9') return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE) return -2;
    if (*end) return -1;
    *out = v;
    return 0;
}

static int parse_size(const char *s, long long *out) {
    static const struct {
        const char *suf;
        int shift;
    } sufs[] = {{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"B", 0}};
    char num[32];
    size_t n = 0;
    while ((s[n] >= '0' && s[n] <= '9') || (n == 0 && s[n] == '-'))
        n++;
    if (n == 0 || n >= sizeof num) return n ? -2 : -1;
    memcpy(num, s, n);
    num[n] = 0;
    long long v;
    int r = parse_ll(num, &v);
    if (r) return r;
    const char *rest = s + n;
    if (*rest == ' ') rest++;
    if (!*rest) {
        *out = v;
        return 0;
    }
    for (size_t i = 0; i < sizeof sufs / sizeof sufs[0]; i++)
        if (!strcmp(rest, sufs[i].suf)) {
            if (v > (LLONG_MAX >> sufs[i].shift) || v < -(LLONG_MAX >> sufs[i].shift)) return -2;
            *out = v * (1LL << sufs[i].shift);
            return 0;
        }
    return -1;
}

static int parse_bool(const char *s, int *out) {
    static const char *const t[] = {"true", "yes", "on", "1"}, *const f[] = {"false", "no", "off",
                                                                             "0"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(s, t[i])) return *out = 1, 0;
        if (!strcasecmp(s, f[i])) return *out = 0, 0;
    }
    return -1;
}

static int is_hostname(const char *h) {
    size_t n = strlen(h), label = 0;
    if (n == 0 || n > 253) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (c == '.') {
            if (label == 0) return 0;
            label = 0;
            continue;
        }
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 (c == '-' && label > 0);
        if (!ok || ++label > 63) return 0;
    }
    return h[n - 1] != '-';
}

int tg_config_parse_listen(const char *s, char *host, size_t hostlen, int *port, char *err,
                           size_t errlen) {
    const char *colon;
    char h[TG_CONFIG_HOST_MAX];
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') {
            snprintf(err, errlen, "expected [ipv6]:port");
            return -1;
        }
        hl = (size_t)(close - s - 1);
        colon = close + 1;
        if (hl == 0 || hl >= sizeof h) {
            snprintf(err, errlen, "bad IPv6 address");
            return -1;
        }
        memcpy(h, s + 1, hl);
        h[hl] = 0;
        unsigned char a[16];
        if (inet_pton(AF_INET6, h, a) != 1) {
            snprintf(err, errlen, "bad IPv6 address");
            return -1;
        }
    } else {
        colon = strrchr(s, ':');
        if (!colon) {
            snprintf(err, errlen, "expected host:port");
            return -1;
        }
        hl = (size_t)(colon - s);
        if (hl == 0 || hl >= sizeof h) {
            snprintf(err, errlen, hl ? "host too long" : "expected host:port (host missing)");
            return -1;
        }
        memcpy(h, s, hl);
        h[hl] = 0;
        if (memchr(h, ':', hl)) {
            snprintf(err, errlen, "IPv6 addresses need brackets: [addr]:port");
            return -1;
        }
        unsigned char a[4];
        int dotted_num = h[strspn(h, "0123456789.")] == 0;
        if (dotted_num ? inet_pton(AF_INET, h, a) != 1 : !is_hostname(h)) {
            snprintf(err, errlen, dotted_num ? "bad IPv4 address" : "bad host name");
            return -1;
        }
    }
    long long p;
    if (parse_ll(colon + 1, &p) != 0 || p < 0 || p > 65535 || colon[1] == '-') {
        snprintf(err, errlen, "port must be an integer 0..65535");
        return -1;
    }
    if (hl + 1 > hostlen) {
        snprintf(err, errlen, "host too long");
        return -1;
    }
    memcpy(host, h, hl + 1);
    *port = (int)p;
    return 0;
}

int tg_config_parse_sha256(const char *hex, tg_config_sha256 *out) {
    if (strlen(hex) != 64) return -1;
    for (int i = 0; i < 32; i++) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = hex[2 * i + k];
            int d = (c >= '0' && c <= '9')   ? c - '0'
                    : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                    : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                             : -1;
            if (d < 0) return -1;
            v = v * 16 + d;
        }
        out->b[i] = (unsigned char)v;
    }
    return 0;
}

/* ---- applying values ------------------------------------------------------------ */

static const char *article_type(tg_config_kind k) {
    switch (k) {
    case TG_CK_INT:
    case TG_CK_MS: return "an integer";
    case TG_CK_SIZE: return "a size (bytes, or with KiB/MiB/GiB)";
    case TG_CK_BOOL: return "a boolean (true/false)";
    default: return "a value";
    }
}

int tg_config_schema_apply(tg_config *cfg, const tg_config_schema_key *k, const char *text,
                           int is_null, int is_quoted, char *msg, size_t msglen) {
    char *base = (char *)cfg;
    char shown[72];
    tg_config_sanitize(text, shown, sizeof shown);
    switch (k->kind) {
    case TG_CK_STR:
    case TG_CK_PATH: {
        char **slot = (char **)(base + k->off);
        if (!is_null && !*text) is_null = 1; /* "" = unset, same as null */
        if (!is_null && strlen(text) > 4096) {
            snprintf(msg, msglen, "value too long (max 4096 bytes)");
            return -1;
        }
        if (!is_null && memchr(text, '\n', strlen(text))) {
            snprintf(msg, msglen, "value must be one line");
            return -1;
        }
        free(*slot);
        *slot = is_null ? NULL : tg_xstrdup(text);
        return 0;
    }
    case TG_CK_INT:
    case TG_CK_MS:
    case TG_CK_SIZE: {
        long long v = 0;
        /* A quoted scalar is a YAML string: accepted for sizes ("1 MiB"
         * reads naturally quoted) but not for plain numbers, where quoting
         * usually means a templating mistake. */
        int r = (is_null || (is_quoted && k->kind != TG_CK_SIZE)) ? -1
                : k->kind == TG_CK_SIZE                           ? parse_size(text, &v)
                                                                  : parse_ll(text, &v);
        if (r == -1) {
            if (is_null)
                snprintf(msg, msglen, "expected %s, got null", article_type(k->kind));
            else
                snprintf(msg, msglen, "expected %s, got %s'%s'", article_type(k->kind),
                         is_quoted ? "the string " : "", shown);
            return -1;
        }
        if (r == -2 || v < k->min || v > k->max) {
            snprintf(msg, msglen, "value %s out of range (%s)", shown, k->type);
            return -1;
        }
        if (k->kind == TG_CK_INT)
            *(int *)(base + k->off) = (int)v;
        else if (k->kind == TG_CK_MS)
            *(uint32_t *)(base + k->off) = (uint32_t)v;
        else
            *(size_t *)(base + k->off) = (size_t)v;
        return 0;
    }
    case TG_CK_BOOL: {
        int b;
        if (is_null || is_quoted || parse_bool(text, &b) != 0) {
            snprintf(msg, msglen, "expected a boolean (true/false), got %s'%s'",
                     is_quoted ? "the string " : "", is_null ? "null" : shown);
            return -1;
        }
        *(int *)(base + k->off) = b;
        return 0;
    }
    case TG_CK_ENUM:
        for (int i = 0; !is_null && k->names[i]; i++)
            if (!strcmp(text, k->names[i])) {
                *(int *)(base + k->off) = i;
                return 0;
            }
        snprintf(msg, msglen, "expected one of %s, got '%s'", k->type, is_null ? "null" : shown);
        return -1;
    case TG_CK_LISTEN: {
        char why[96];
        if (is_null && k->min == -1) { /* a key that may be left to its derived default */
            strcpy(base + k->off, "127.0.0.1");
            *(int *)(base + k->off2) = -1;
            return 0;
        }
        if (is_null) {
            snprintf(msg, msglen, "expected host:port, got null");
            return -1;
        }
        if (tg_config_parse_listen(text, base + k->off, TG_CONFIG_HOST_MAX, (int *)(base + k->off2),
                                   why, sizeof why) != 0) {
            snprintf(msg, msglen, "%s, got '%s'", why, shown);
            return -1;
        }
        return 0;
    }
    case TG_CK_HASHES:
    case TG_CK_UPSTREAMS: snprintf(msg, msglen, "expected a list"); return -1;
    case TG_CK_SECTION: snprintf(msg, msglen, "is a section, not a value"); return -1;
    }
    return -1;
}

void tg_config_schema_list_clear(tg_config *cfg, const tg_config_schema_key *k) {
    *(int *)((char *)cfg + k->off2) = 0;
}

int tg_config_schema_list_add(tg_config *cfg, const tg_config_schema_key *k, const char *text,
                              char *msg, size_t msglen) {
    int *n = (int *)((char *)cfg + k->off2);
    tg_config_sha256 *arr = (tg_config_sha256 *)((char *)cfg + k->off);
    tg_config_sha256 h;
    char shown[72];
    if (tg_config_parse_sha256(text, &h) != 0) {
        tg_config_sanitize(text, shown, sizeof shown);
        snprintf(msg, msglen,
                 "expected a SHA-256 as 64 hex digits (tidegate config hash-key), got '%s'", shown);
        return -1;
    }
    if (*n >= TG_CONFIG_MAX_KEYS) {
        snprintf(msg, msglen, "too many keys (max %d)", TG_CONFIG_MAX_KEYS);
        return -1;
    }
    arr[(*n)++] = h;
    return 0;
}

/* ---- errors -------------------------------------------------------------------- */

int tg_config_errs_full(const tg_config_errs *e) {
    return e->count >= TG_CONFIG_MAX_ERRORS;
}

void tg_config_errs_add(tg_config_errs *e, const char *where, const char *path, const char *fmt,
                        ...) {
    if (tg_config_errs_full(e)) return;
    if (e->count) tg_buf_putc(&e->text, '\n');
    tg_buf_printf(&e->text, "%s: %s: ", where, path && *path ? path : "(root)");
    va_list ap;
    va_start(ap, fmt);
    tg_buf_vprintf(&e->text, fmt, ap);
    va_end(ap);
    e->count++;
}

int tg_config_errs_finish(tg_config_errs *e, char *err, size_t errlen) {
    int rc = e->count ? -1 : 0;
    if (err && errlen) {
        err[0] = 0;
        if (e->text.len) {
            size_t n = e->text.len;
            if (n >= errlen) {
                /* Cut at the last whole line that fits. */
                n = errlen - 1;
                while (n > 0 && e->text.data[n] != '\n')
                    n--;
                if (n == 0) n = errlen - 1;
            }
            memcpy(err, e->text.data, n);
            err[n] = 0;
        }
    }
    tg_buf_free(&e->text);
    e->count = 0;
    return rc;
}
