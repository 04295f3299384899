/* config: defaults, environment, flags, derived values and YAML output.
 * The YAML loader is in yaml_doc.c, the key table in config_schema.c. */
#include "config/config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/tg_defaults.h"
#include "common/tg_str.h"
#include "config/config_schema.h"

void tg_config_defaults(tg_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    tg_config_server *s = &cfg->server;
    strcpy(s->listen_host, TG_DEFAULT_HOST);
    s->listen_port = TG_DEFAULT_PORT;
    s->max_body_bytes = TG_DEFAULT_MAX_BODY_BYTES;
    s->max_header_bytes = TG_DEFAULT_MAX_HEADER_BYTES;
    s->max_headers = TG_DEFAULT_MAX_HEADERS;
    s->max_connections = TG_DEFAULT_MAX_CONNECTIONS;
    s->header_timeout_ms = TG_DEFAULT_HEADER_TIMEOUT_MS;
    s->body_timeout_ms = TG_DEFAULT_BODY_TIMEOUT_MS;
    s->idle_timeout_ms = TG_DEFAULT_IDLE_TIMEOUT_MS;
    s->write_timeout_ms = TG_DEFAULT_WRITE_TIMEOUT_MS;
    s->shutdown_grace_ms = 10000;
    s->conn_buffer_limit_bytes = 1u << 20;
    s->memory_budget_bytes = 256u << 20;
    strcpy(cfg->admin.listen_host, "127.0.0.1");
    cfg->admin.listen_port = -1;
    cfg->auth.admin_loopback_only = 1;
    tg_config_engine *e = &cfg->engine;
    e->threads = 0;
    e->max_active = 8;
    e->queue_capacity = 64;
    e->context = 0;
    e->prefix_cache_mib = 128;
    e->kv_type = TG_CONFIG_KV_F32;
    e->kernels = TG_CONFIG_KERNELS_AUTO;
    cfg->log.level = TG_CONFIG_LOG_INFO;
    tg_config_routing_defaults(cfg);
    tg_config_journal_defaults(cfg);
}

void tg_config_free(tg_config *cfg) {
    if (!cfg) return;
    free(cfg->server.tls_cert);
    free(cfg->server.tls_key);
    free(cfg->server.trusted_proxies);
    cfg->server.trusted_proxies = NULL;
    free(cfg->server.cors_origins);
    free(cfg->engine.model);
    free(cfg->engine.model_id);
    free(cfg->source_path);
    tg_config_cloud_free(cfg);
    tg_config_journal_free(cfg);
    cfg->server.tls_cert = cfg->server.tls_key = NULL;
    cfg->engine.model = cfg->engine.model_id = NULL;
    cfg->source_path = NULL;
}

void tg_config_copy(tg_config *dst, const tg_config *src) {
    *dst = *src;
    dst->server.tls_cert = tg_xstrdup(src->server.tls_cert);
    dst->server.tls_key = tg_xstrdup(src->server.tls_key);
    dst->server.trusted_proxies = tg_xstrdup(src->server.trusted_proxies);
    dst->server.cors_origins = tg_xstrdup(src->server.cors_origins);
    dst->engine.model = tg_xstrdup(src->engine.model);
    dst->engine.model_id = tg_xstrdup(src->engine.model_id);
    dst->source_path = tg_xstrdup(src->source_path);
    tg_config_cloud_copy(dst, src);
    tg_config_journal_copy(dst, src);
}

/* ---- flags and environment ----------------------------------------------------- */

static void set_one(tg_config *cfg, const char *source, const char *path, const char *value,
                    tg_config_errs *errs) {
    char msg[256], shown[72];
    const tg_config_schema_key *k = tg_config_schema_find(path);
    if (!k) {
        /* Suggest among the children of the path's parent section. */
        char prefix[128] = "";
        const char *dot = strrchr(path, '.');
        if (dot && (size_t)(dot - path) < sizeof prefix) {
            memcpy(prefix, path, (size_t)(dot - path));
            prefix[dot - path] = 0;
        }
        const char *last = dot ? dot + 1 : path;
        const char *sug = tg_config_schema_suggest(prefix, last);
        tg_config_sanitize(path, shown, sizeof shown);
        if (sug)
            tg_config_errs_add(errs, source, shown, "unknown key (did you mean '%s%s%s'?)", prefix,
                               *prefix ? "." : "", sug);
        else
            tg_config_errs_add(errs, source, shown, "unknown key");
        return;
    }
    if (k->kind == TG_CK_SECTION) {
        tg_config_errs_add(errs, source, path, "is a section, not a key");
        return;
    }
    if (k->kind == TG_CK_UPSTREAMS) {
        tg_config_errs_add(errs, source, path,
                           "is a list; use the file or --cloud-url/--cloud-model");
        return;
    }
    if (k->kind == TG_CK_HASHES) {
        /* "a,b,c": the whole list is replaced; spaces around items ignored. */
        tg_config_schema_list_clear(cfg, k);
        const char *p = value;
        while (*p) {
            while (*p == ' ' || *p == '\t')
                p++;
            const char *e = strchr(p, ',');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                n--;
            char item[80];
            if (n >= sizeof item) n = sizeof item - 1; /* too long: rejected by the parser */
            memcpy(item, p, n);
            item[n] = 0;
            if (n && tg_config_schema_list_add(cfg, k, item, msg, sizeof msg) != 0)
                tg_config_errs_add(errs, source, path, "%s", msg);
            if (!e) break;
            p = e + 1;
        }
        return;
    }
    if (tg_config_schema_apply(cfg, k, value, 0, 0, msg, sizeof msg) != 0)
        tg_config_errs_add(errs, source, path, "%s", msg);
}

int tg_config_set(tg_config *cfg, const char *source, const char *path, const char *value,
                  char *err, size_t errlen) {
    tg_config_errs errs = {TG_BUF_INIT, 0};
    set_one(cfg, source ? source : "flag", path, value ? value : "", &errs);
    return tg_config_errs_finish(&errs, err, errlen);
}

int tg_config_apply_env(tg_config *cfg, char *err, size_t errlen) {
    tg_config_errs errs = {TG_BUF_INIT, 0};
    for (size_t i = 0; i < tg_config_schema_count(); i++) {
        const tg_config_schema_key *k = tg_config_schema_at(i);
        if (!k->env) continue;
        const char *v = getenv(k->env);
        if (!v || !*v) continue;
        char src[64];
        snprintf(src, sizeof src, "$%s", k->env);
        set_one(cfg, src, k->path, v, &errs);
    }
    return tg_config_errs_finish(&errs, err, errlen);
}

/* ---- derived values -------------------------------------------------------------- */

/* 127.0.0.0/8, ::1, ::ffff:127.x.y.z or "localhost". */
static int host_is_loopback(const char *h) {
    unsigned char a[16];
    if (!strcasecmp(h, "localhost")) return 1;
    if (inet_pton(AF_INET, h, a) == 1) return a[0] == 127;
    if (inet_pton(AF_INET6, h, a) != 1) return 0;
    static const unsigned char lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char v4m[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return !memcmp(a, lo, 16) || (!memcmp(a, v4m, 12) && a[12] == 127);
}

int tg_config_finalize(tg_config *cfg, char *err, size_t errlen) {
    tg_config_errs errs = {TG_BUF_INIT, 0};
    const char *src = cfg->source_path ? cfg->source_path : "config";
    if (!cfg->engine.model_id && cfg->engine.model) {
        const char *base = strrchr(cfg->engine.model, '/');
        base = base ? base + 1 : cfg->engine.model;
        size_t n = strlen(base);
        if (n > 5 && !strcasecmp(base + n - 5, ".gguf")) n -= 5;
        if (n == 0) {
            tg_config_errs_add(&errs, src, "engine.model_id",
                               "cannot derive from the model path; set it explicitly");
        } else {
            cfg->engine.model_id = malloc(n + 1);
            if (!cfg->engine.model_id) abort();
            memcpy(cfg->engine.model_id, base, n);
            cfg->engine.model_id[n] = 0;
        }
    }
    /* The admin listener defaults next to the API one; an ephemeral API
     * port (tests) gets an ephemeral admin port, so parallel servers never
     * collide on a fixed one. */
    if (cfg->admin.listen_port < 0) {
        strcpy(cfg->admin.listen_host, "127.0.0.1");
        int p = cfg->server.listen_port;
        cfg->admin.listen_port = p == 0 ? 0 : p == 65535 ? 0 : p + 1;
    }
    if (!host_is_loopback(cfg->admin.listen_host) && cfg->auth.n_admin_keys == 0)
        tg_config_errs_add(&errs, src, "admin.listen",
                           "%s is not a loopback address and no admin key is set "
                           "(auth.admin_key_sha256): refusing to serve /metrics and /admin/* "
                           "to the network without a key",
                           cfg->admin.listen_host);
    if (cfg->server.trusted_proxies) {
        char *list = tg_xstrdup(cfg->server.trusted_proxies), *save = NULL;
        for (char *it = strtok_r(list, ", ", &save); it; it = strtok_r(NULL, ", ", &save)) {
            unsigned char a[16];
            if (inet_pton(AF_INET, it, a) != 1 && inet_pton(AF_INET6, it, a) != 1) {
                char shown[72];
                tg_config_sanitize(it, shown, sizeof shown);
                tg_config_errs_add(&errs, src, "server.trusted_proxies",
                                   "'%s' is not an IPv4 or IPv6 address", shown);
            }
        }
        free(list);
    }
    if (!cfg->server.tls_cert != !cfg->server.tls_key)
        tg_config_errs_add(&errs, src, "server.tls",
                           "cert and key must be set together (%s is missing)",
                           cfg->server.tls_cert ? "key" : "cert");
    tg_config_cloud_finalize(cfg, src, &errs);
    return tg_config_errs_finish(&errs, err, errlen);
}

/* ---- key table for docs ---------------------------------------------------------- */

int tg_config_key(size_t i, tg_config_key_info *out) {
    const tg_config_schema_key *k = tg_config_schema_at(i);
    if (!k) return 0;
    out->path = k->path;
    out->env = k->env;
    out->type = k->type;
    out->help = k->help;
    return 1;
}

/* ---- YAML output ------------------------------------------------------------------ */

static void put_str(tg_buf *b, const char *s) {
    if (!s) {
        tg_buf_puts(b, "null");
        return;
    }
    tg_buf_putc(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            tg_buf_printf(b, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            tg_buf_printf(b, "\\x%02x", c);
        else
            tg_buf_putc(b, (char)c);
    }
    tg_buf_putc(b, '"');
}

static void put_hashes(tg_buf *b, const tg_config_sha256 *h, int n, int indent) {
    if (n == 0) {
        tg_buf_puts(b, " []\n");
        return;
    }
    tg_buf_puts(b, "   # truncated to 12 hex digits\n");
    for (int i = 0; i < n; i++) {
        tg_buf_printf(b, "%*s- \"", indent, "");
        for (int k = 0; k < 6; k++)
            tg_buf_printf(b, "%02x", h[i].b[k]);
        tg_buf_puts(b, "...\"\n");
    }
}

char *tg_config_to_yaml(const tg_config *cfg) {
    tg_buf b = TG_BUF_INIT;
    const char *base = (const char *)cfg;
    if (cfg->source_path) {
        tg_buf_puts(&b, "# effective config from ");
        put_str(&b, cfg->source_path); /* quoted: a path may hold anything */
        tg_buf_puts(&b, " + environment\n");
    } else {
        tg_buf_puts(&b, "# effective config: built-in defaults + environment\n");
    }
    for (size_t i = 0; i < tg_config_schema_count(); i++) {
        const tg_config_schema_key *k = tg_config_schema_at(i);
        int depth = 0;
        for (const char *p = k->path; *p; p++)
            depth += *p == '.';
        const char *name = strrchr(k->path, '.');
        name = name ? name + 1 : k->path;
        tg_buf_printf(&b, "%*s%s:", depth * 2, "", name);
        switch (k->kind) {
        case TG_CK_SECTION: tg_buf_putc(&b, '\n'); continue;
        case TG_CK_STR:
        case TG_CK_PATH:
            tg_buf_putc(&b, ' ');
            put_str(&b, *(char *const *)(base + k->off));
            break;
        case TG_CK_INT: tg_buf_printf(&b, " %d", *(const int *)(base + k->off)); break;
        case TG_CK_MS:
            tg_buf_printf(&b, " %u", (unsigned)*(const uint32_t *)(base + k->off));
            break;
        case TG_CK_SIZE: tg_buf_printf(&b, " %zu", *(const size_t *)(base + k->off)); break;
        case TG_CK_BOOL: tg_buf_puts(&b, *(const int *)(base + k->off) ? " true" : " false"); break;
        case TG_CK_ENUM: {
            int v = *(const int *)(base + k->off), n = 0;
            while (k->names[n])
                n++;
            tg_buf_printf(&b, " %s", v >= 0 && v < n ? k->names[v] : "?");
            break;
        }
        case TG_CK_LISTEN: {
            const char *h = base + k->off;
            int port = *(const int *)(base + k->off2);
            if (port < 0)
                tg_buf_puts(&b, " null"); /* derived at finalize */
            else
                tg_buf_printf(&b, strchr(h, ':') ? " \"[%s]:%d\"" : " \"%s:%d\"", h, port);
            break;
        }
        case TG_CK_UPSTREAMS: tg_config_cloud_yaml(&b, cfg); continue;
        case TG_CK_HASHES:
            put_hashes(&b, (const tg_config_sha256 *)(base + k->off),
                       *(const int *)(base + k->off2), depth * 2 + 2);
            continue;
        }
        tg_buf_putc(&b, '\n');
    }
    char *s = tg_buf_steal(&b);
    return s ? s : tg_xstrdup("");
}
