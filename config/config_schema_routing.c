/* config_schema_routing: the `routing:` and `cloud:` keys, in a table of
 * their own so routing work does not edit the core table. Defaults here
 * too: tg_config_defaults calls tg_config_routing_defaults. */
#include <stddef.h>
#include <stdlib.h>

#include "config/config_schema.h"

#define OFF(f) offsetof(tg_config, f)
#define MS_MAX 86400000LL

static const char *const k_mode_names[] = {"auto", "offline", "edge-only", "cloud-only", NULL};
/* "default" is only meaningful per upstream; here it reads as continue. */
static const char *const k_mid_names[] = {"default", "continue", "error", NULL};

const tg_config_schema_key tg_config_routing_keys[] = {
    {"routing", NULL, TG_CK_SECTION, 0, 0, 0, 0, NULL, "section",
     "connectivity mode, cloud timeouts, circuit breakers"},
    {"routing.mode", "TIDEGATE_MODE", TG_CK_ENUM, OFF(routing.mode), 0, 0, 0, k_mode_names,
     "auto|offline|edge-only|cloud-only",
     "auto derives online/degraded/offline from traffic and probes; the others force"},
    {"routing.ca_file", "TIDEGATE_CA_FILE", TG_CK_PATH, OFF(routing.ca_file), 0, 0, 0, NULL, "path",
     "PEM CA bundle for upstreams without their own ca_file (null = system CAs)"},
    {"routing.connect_timeout_ms", "TIDEGATE_CONNECT_TIMEOUT_MS", TG_CK_MS,
     OFF(routing.connect_timeout_ms), 0, 1, MS_MAX, NULL, "milliseconds 1..86400000",
     "TCP + TLS connect to an upstream"},
    {"routing.first_byte_timeout_ms", "TIDEGATE_FIRST_BYTE_TIMEOUT_MS", TG_CK_MS,
     OFF(routing.first_byte_timeout_ms), 0, 1, MS_MAX, NULL, "milliseconds 1..86400000",
     "request sent to first streamed byte (non-streamed: to the response head)"},
    {"routing.idle_timeout_ms", "TIDEGATE_IDLE_GAP_MS", TG_CK_MS, OFF(routing.idle_timeout_ms), 0,
     1, MS_MAX, NULL, "milliseconds 1..86400000", "most time between two received chunks"},
    {"routing.total_timeout_ms", "TIDEGATE_TOTAL_TIMEOUT_MS", TG_CK_MS,
     OFF(routing.total_timeout_ms), 0, 1, MS_MAX, NULL, "milliseconds 1..86400000",
     "a whole upstream request"},
    {"routing.midstream", "TIDEGATE_MIDSTREAM", TG_CK_ENUM, OFF(routing.midstream), 0, 0, 0,
     k_mid_names, "continue|error",
     "cloud failure after the first token: continue on the engine, or an error event"},
    {"routing.breaker", NULL, TG_CK_SECTION, 0, 0, 0, 0, NULL, "section",
     "circuit breakers (each upstream and the engine)"},
    {"routing.breaker.failures", NULL, TG_CK_INT, OFF(routing.breaker_failures), 0, 1, 1000, NULL,
     "integer 1..1000", "consecutive failures that open a breaker"},
    {"routing.breaker.failure_rate_pct", NULL, TG_CK_INT, OFF(routing.breaker_failure_rate_pct), 0,
     1, 100, NULL, "integer 1..100", "failure rate over the window that opens a breaker"},
    {"routing.breaker.window", NULL, TG_CK_INT, OFF(routing.breaker_window), 0, 2, 64, NULL,
     "integer 2..64", "outcomes the failure rate is taken over"},
    {"routing.breaker.min_requests", NULL, TG_CK_INT, OFF(routing.breaker_min_requests), 0, 1, 64,
     NULL, "integer 1..64", "outcomes needed before the rate counts"},
    {"routing.breaker.cooldown_ms", NULL, TG_CK_MS, OFF(routing.breaker_cooldown_ms), 0, 1, MS_MAX,
     NULL, "milliseconds 1..86400000", "open breaker waits this long, then lets one trial through"},
    {"routing.probe_interval_ms", NULL, TG_CK_MS, OFF(routing.probe_interval_ms), 0, 50, MS_MAX,
     NULL, "milliseconds 50..86400000", "light connect probes while degraded or offline"},
    {"routing.offline_after", NULL, TG_CK_INT, OFF(routing.offline_after), 0, 1, 1000, NULL,
     "integer 1..1000", "consecutive network failures (no success between) that mean offline"},
    {"routing.online_after", NULL, TG_CK_INT, OFF(routing.online_after), 0, 1, 1000, NULL,
     "integer 1..1000", "consecutive successful probes or requests that mean online again"},
    {"routing.policy", "TIDEGATE_POLICY", TG_CK_PATH, OFF(routing.policy), 0, 0, 0, NULL, "path",
     "routing policy YAML (policies/); null = built-in hybrid.yaml with a cloud upstream, "
     "else edge only"},
    {"routing.health_root", "TIDEGATE_HEALTH_ROOT", TG_CK_PATH, OFF(routing.health_root), 0, 0, 0,
     NULL, "path", "where /proc and /sys are read for device health (tests: a fake tree)"},
    {"routing.health_interval_ms", NULL, TG_CK_MS, OFF(routing.health_interval_ms), 0, 10, MS_MAX,
     NULL, "milliseconds 10..86400000", "device health sampling period"},
    {"cloud", NULL, TG_CK_UPSTREAMS, 0, 0, 0, 0, NULL, "list of upstreams",
     "cloud LLM upstreams (OpenAI-compatible, https)"},
};
const size_t tg_config_routing_nkeys =
    sizeof tg_config_routing_keys / sizeof tg_config_routing_keys[0];

void tg_config_routing_defaults(tg_config *cfg) {
    tg_config_routing *r = &cfg->routing;
    r->mode = TG_CONFIG_MODE_AUTO;
    r->ca_file = NULL;
    r->connect_timeout_ms = 2000;
    r->first_byte_timeout_ms = 10000;
    r->idle_timeout_ms = 10000;
    r->total_timeout_ms = 300000;
    r->midstream = TG_CONFIG_MIDSTREAM_CONTINUE;
    r->breaker_failures = 5;
    r->breaker_failure_rate_pct = 50;
    r->breaker_window = 20;
    r->breaker_min_requests = 10;
    r->breaker_cooldown_ms = 5000;
    r->probe_interval_ms = 2000;
    r->offline_after = 3;
    r->online_after = 2;
    r->policy = NULL;
    r->health_root = NULL;
    r->health_interval_ms = 1000;
}
