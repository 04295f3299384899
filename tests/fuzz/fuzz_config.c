/* fuzz_config: the YAML config loader on arbitrary bytes. Besides "never
 * crash", it checks one property: whatever loads successfully prints (via
 * `config show`'s writer) as YAML that loads back to the same values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

static int same_str(const char *a, const char *b) {
    return (!a && !b) || (a && b && !strcmp(a, b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[4096];
    tg_config c;
    tg_config_defaults(&c);
    int rc = tg_config_load_mem((const char *)data, size, "fuzz", &c, err, sizeof err);
    if (rc != 0 && err[0] == 0) abort(); /* a failure always says why */
    if (rc == 0 && c.auth.n_api_keys == 0 && c.auth.n_admin_keys == 0) {
        /* Hashes print truncated by design; everything else must round-trip. */
        char *y = tg_config_to_yaml(&c);
        tg_config r;
        tg_config_defaults(&r);
        if (tg_config_load_mem(y, strlen(y), "show", &r, err, sizeof err) != 0) abort();
        if (strcmp(c.server.listen_host, r.server.listen_host) ||
            c.server.listen_port != r.server.listen_port ||
            !same_str(c.server.tls_cert, r.server.tls_cert) ||
            !same_str(c.server.tls_key, r.server.tls_key) ||
            !same_str(c.engine.model, r.engine.model) ||
            !same_str(c.engine.model_id, r.engine.model_id) ||
            c.server.max_body_bytes != r.server.max_body_bytes ||
            c.engine.threads != r.engine.threads || c.engine.kv_type != r.engine.kv_type ||
            c.log.level != r.log.level)
            abort();
        free(y);
        tg_config_free(&r);
        tg_config_finalize(&c, err, sizeof err);
    }
    tg_config_free(&c);
    /* The same bytes as a flag value for a few key kinds. */
    if (size < 512) {
        char v[512];
        memcpy(v, data, size);
        v[size] = 0;
        tg_config_defaults(&c);
        tg_config_set(&c, "f", "server.listen", v, err, sizeof err);
        tg_config_set(&c, "f", "server.max_body_bytes", v, err, sizeof err);
        tg_config_set(&c, "f", "auth.api_key_sha256", v, err, sizeof err);
        tg_config_set(&c, "f", "engine.model", v, err, sizeof err);
        tg_config_set(&c, "f", v, "1", err, sizeof err);
        tg_config_free(&c);
    }
    return 0;
}
