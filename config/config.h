/* config: the gateway's typed configuration and its YAML loader.
 *
 * Precedence, lowest to highest: built-in default < YAML file < environment
 * < command-line flag. The serve command does, in order:
 *
 *   tg_config cfg;
 *   tg_config_defaults(&cfg);
 *   tg_config_load_file(path_or_NULL, &cfg, err, sizeof err);  // NULL = default path,
 *                                                              // missing file is fine
 *   tg_config_apply_env(&cfg, err, sizeof err);
 *   tg_config_set(&cfg, "--threads", "engine.threads", optarg, err, sizeof err); // per flag
 *   tg_config_finalize(&cfg, err, sizeof err);                 // derived values, cross-checks
 *   ...
 *   tg_config_free(&cfg);
 *
 * Every error is one line `file:line:col: path.to.key: message` (1-based),
 * or `$TIDEGATE_X: path.to.key: message` for the environment, or
 * `<source>: path.to.key: message` for tg_config_set. Several errors are
 * joined with '\n' in `err` (no trailing newline); on error `cfg` may hold a
 * mix of old and new values and should be freed, not used.
 *
 * Unknown keys are errors: a typo must not silently fall back to a default.
 * Strings in the struct are heap-owned by the config. */
#ifndef TG_CONFIG_H
#define TG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define TG_CONFIG_DEFAULT_PATH "config/tidegate.yaml"
#define TG_CONFIG_MAX_KEYS     64  /* api / admin key hashes, each list */
#define TG_CONFIG_HOST_MAX     256 /* listen host, NUL included */

/* Same numeric values as lfm_kv_type / lfm_kernels in engine/lfm.h; config
 * sits below the engine and does not include it. */
typedef enum { TG_CONFIG_KV_F32 = 0, TG_CONFIG_KV_F16 = 1 } tg_config_kv_type;
typedef enum { TG_CONFIG_KERNELS_AUTO = 0, TG_CONFIG_KERNELS_SCALAR = 1 } tg_config_kernels;
/* Same numeric values as tg_log_level in common/tg_log.h. */
typedef enum {
    TG_CONFIG_LOG_DEBUG = 0,
    TG_CONFIG_LOG_INFO,
    TG_CONFIG_LOG_WARN,
    TG_CONFIG_LOG_ERROR,
    TG_CONFIG_LOG_OFF
} tg_config_log_level;

typedef struct {
    unsigned char b[32];
} tg_config_sha256;

typedef struct {
    char listen_host[TG_CONFIG_HOST_MAX]; /* "127.0.0.1", "::1" (no brackets), "localhost" */
    int listen_port;                      /* 0..65535; 0 = ephemeral (tests) */
    char *tls_cert;                       /* PEM path or NULL (plain HTTP) */
    char *tls_key;                        /* PEM path or NULL; both or neither */
    size_t max_body_bytes;                /* default 1 MiB: larger bodies get 413 */
    size_t max_header_bytes;              /* default 16 KiB: request line + headers, 431 */
    int max_headers;                      /* default 64 header fields, 431 */
    int max_connections;                  /* default 1024 concurrent sockets */
    uint32_t header_timeout_ms;           /* default 10000: whole head must arrive (408) */
    uint32_t body_timeout_ms;             /* default 30000: whole body must arrive (408) */
    uint32_t idle_timeout_ms;             /* default 60000: keep-alive idle close */
    uint32_t write_timeout_ms;            /* default 30000: a write must make progress */
    uint32_t shutdown_grace_ms;           /* default 10000: drain on SIGTERM; 0 = immediate */
    size_t conn_buffer_limit_bytes;       /* default 1 MiB: unsent output per connection before
                                             its next pipelined request waits */
    size_t memory_budget_bytes;           /* default 256 MiB: buffered bodies + input + queued
                                             output, all connections; past it new work gets 503 */
    char *trusted_proxies;                /* comma-separated IPs whose X-Forwarded-For may
                                             be believed (validated, not read yet); NULL */
    char *cors_origins; /* comma list of browser origins allowed ("*" = any); NULL = CORS off */
} tg_config_server;

/* The admin listener: /metrics and the /admin routes are served there, never on
 * server.listen. */
typedef struct {
    char listen_host[TG_CONFIG_HOST_MAX];
    int listen_port; /* -1 until finalize: unset = 127.0.0.1, API port + 1 (0 when that is 0) */
} tg_config_admin;

typedef struct {
    tg_config_sha256 api_keys[TG_CONFIG_MAX_KEYS]; /* SHA-256 of accepted bearer tokens */
    int n_api_keys;                                /* 0 = no auth on /v1 */
    tg_config_sha256 admin_keys[TG_CONFIG_MAX_KEYS];
    int n_admin_keys;
    int admin_loopback_only; /* default 1: /admin only from 127.0.0.0/8 and ::1 */
} tg_config_auth;

typedef struct {
    char *model;          /* GGUF path or NULL (serve then fails with a clear error) */
    char *model_id;       /* /v1/models id; NULL until finalize derives it from model's name */
    int threads;          /* 0 = number of CPUs */
    int max_active;       /* batch width: sequences decoded together, default 8 */
    int queue_capacity;   /* waiting requests beyond max_active, default 64 (then 429/503) */
    int context;          /* per-sequence context; 0 = model's own, engine caps at model's */
    int prefix_cache_mib; /* prefix cache budget, default 128; 0 = off */
    tg_config_kv_type kv_type;
    tg_config_kernels kernels;
} tg_config_engine;

typedef struct {
    tg_config_log_level level; /* default info */
} tg_config_log;

/* ---- cloud upstreams and routing (config_cloud.c, config_schema_routing.c) ---- */

#define TG_CONFIG_MAX_UPSTREAMS  8
#define TG_CONFIG_MAX_UP_HEADERS 16

typedef enum { TG_CONFIG_FALLBACK_EDGE = 0, TG_CONFIG_FALLBACK_NONE } tg_config_fallback;
/* What a cloud failure after the first token does (routing.midstream and
 * per upstream; DEFAULT = the routing value). */
typedef enum {
    TG_CONFIG_MIDSTREAM_DEFAULT = 0,
    TG_CONFIG_MIDSTREAM_CONTINUE, /* continue on the engine from the text sent */
    TG_CONFIG_MIDSTREAM_ERROR,    /* end with an OpenAI-style error event */
} tg_config_midstream;
/* Same order as rt_conn_mode in router/connectivity.h. */
typedef enum {
    TG_CONFIG_MODE_AUTO = 0,
    TG_CONFIG_MODE_OFFLINE,
    TG_CONFIG_MODE_EDGE_ONLY,
    TG_CONFIG_MODE_CLOUD_ONLY
} tg_config_mode;

/* One cloud upstream (a `cloud:` list item). The API key itself is never
 * here: only the name of the environment variable holding it. */
typedef struct {
    char *name;        /* [a-z0-9_-]+, unique; the route is "cloud:<name>" */
    char *base_url;    /* https://host[:port]/v1 (https only) */
    char *model;       /* the upstream's model; also the id clients may request */
    char *api_key_env; /* environment variable with the bearer key, or NULL */
    char *ca_file;     /* PEM CA bundle, NULL = routing.ca_file, then the system's */
    char *headers[TG_CONFIG_MAX_UP_HEADERS]; /* "Name: value" sent with every request */
    int n_headers;
    uint32_t connect_timeout_ms; /* 0 = the routing default, for all four */
    uint32_t first_byte_timeout_ms;
    uint32_t idle_timeout_ms;
    uint32_t total_timeout_ms;
    tg_config_fallback fallback; /* edge after this upstream, or nothing */
    tg_config_midstream midstream;
} tg_config_upstream;

typedef struct {
    tg_config_mode mode;            /* default auto */
    char *ca_file;                  /* default CA for upstreams without one (--ca-file) */
    uint32_t connect_timeout_ms;    /* default 2000 */
    uint32_t first_byte_timeout_ms; /* default 10000 */
    uint32_t idle_timeout_ms;       /* default 10000: most time between two chunks */
    uint32_t total_timeout_ms;      /* default 300000 */
    tg_config_midstream midstream;  /* default continue */
    int breaker_failures;           /* default 5: consecutive failures open a breaker */
    int breaker_failure_rate_pct;   /* default 50: ... or this rate over the window */
    int breaker_window;             /* default 20 outcomes */
    int breaker_min_requests;       /* default 10: rate judged from this many outcomes */
    uint32_t breaker_cooldown_ms;   /* default 5000: open -> one trial */
    uint32_t probe_interval_ms;     /* default 2000: light probes while not online */
    int offline_after;              /* default 3 consecutive network failures */
    int online_after;               /* default 2 consecutive probe successes */
    char *policy;                   /* routing policy file (--policy), NULL = built in */
    char *health_root;              /* procfs/sysfs root for health, NULL = "/" */
    uint32_t health_interval_ms;    /* default 1000 */
} tg_config_routing;

/* The request journal (config_schema_journal.c, gateway/api/api_journal.c).
 * On by default; dir NULL = $XDG_STATE_HOME/tidegate, else
 * ~/.local/state/tidegate. The key itself is never here: only where to find
 * it (a variable's name or a 0600 file). */
typedef struct {
    int enabled;          /* default 1 */
    char *dir;            /* NULL = the default directory */
    int fsync;            /* default 1: fdatasync per batch; 0 only for throwaway journals */
    size_t segment_bytes; /* default 64 MiB: a new segment past this */
    int retention_s;      /* default 86400: finished requests (and idempotency keys) kept */
    char *key_env;        /* variable with a 64-hex AES-256 key; NULL = TIDEGATE_JOURNAL_KEY */
    char *key_file;       /* 0600 file with the key (wins over key_env) */
} tg_config_journal;

typedef struct {
    tg_config_server server;
    tg_config_admin admin;
    tg_config_auth auth;
    tg_config_engine engine;
    tg_config_log log;
    tg_config_routing routing;
    tg_config_upstream cloud[TG_CONFIG_MAX_UPSTREAMS];
    int n_cloud;
    tg_config_journal journal;
    char *source_path; /* file the config came from, or NULL (defaults only) */
} tg_config;

/* Fills built-in defaults; owns nothing yet (tg_config_free is still fine). */
void tg_config_defaults(tg_config *cfg);
void tg_config_free(tg_config *cfg);
/* Deep copy (for hot reload / handing a snapshot to another thread). */
void tg_config_copy(tg_config *dst, const tg_config *src);

/* Loads YAML on top of cfg's current values. path NULL = TG_CONFIG_DEFAULT_PATH,
 * where a missing file is fine (returns 0, cfg unchanged); an explicit path
 * that does not exist is an error. Returns 0 or -1 with err filled. */
int tg_config_load_file(const char *path, tg_config *cfg, char *err, size_t errlen);
/* Same from memory; `name` is used as the file name in errors. */
int tg_config_load_mem(const char *data, size_t len, const char *name, tg_config *cfg, char *err,
                       size_t errlen);

/* Applies TIDEGATE_* variables (list: tg_config_keys / config/README.md).
 * Empty variables are ignored. Returns 0 or -1. */
int tg_config_apply_env(tg_config *cfg, char *err, size_t errlen);

/* Sets one key by dotted path ("engine.threads", "server.listen") from text,
 * with the same validation as the file. Lists (auth.*_sha256) take a
 * comma-separated value and replace the list. `source` labels errors
 * ("--threads"). Returns 0 or -1. */
int tg_config_set(tg_config *cfg, const char *source, const char *path, const char *value,
                  char *err, size_t errlen);

/* Derives model_id from the model file name (basename minus ".gguf") when not
 * set, and checks cross-key rules (tls cert and key together). 0 or -1. */
int tg_config_finalize(tg_config *cfg, char *err, size_t errlen);

/* Defines or overrides the upstream named "cloud" (the serve flags):
 * field is "base_url", "model" or "api_key_env". 0 or -1 with err. */
int tg_config_set_cloud(tg_config *cfg, const char *source, const char *field, const char *value,
                        char *err, size_t errlen);
/* The upstream whose model or name is `id`, or NULL. */
const tg_config_upstream *tg_config_find_upstream(const tg_config *cfg, const char *id);

/* Parses "host:port", "[v6]:port"; host must be an IPv4/IPv6 literal or a
 * DNS name. Returns 0, or -1 with a message (no location) in err. */
int tg_config_parse_listen(const char *s, char *host, size_t hostlen, int *port, char *err,
                           size_t errlen);
/* Parses 64 hex digits (either case). Returns 0 or -1. */
int tg_config_parse_sha256(const char *hex, tg_config_sha256 *out);

/* Writes the effective config as YAML (for `config show`). Hashes are
 * truncated to their first 12 hex digits; nothing secret is ever in cfg. */
/* Returns a malloc'd NUL-terminated string; the caller frees it. */
char *tg_config_to_yaml(const tg_config *cfg);

/* Table of every key, for docs and `config show --keys`: iterate i from 0
 * until it returns 0. */
typedef struct {
    const char *path; /* "engine.threads" */
    const char *env;  /* "TIDEGATE_THREADS" */
    const char *type; /* "integer 0..1024", "path", ... */
    const char *help; /* one line */
} tg_config_key_info;
int tg_config_key(size_t i, tg_config_key_info *out);

#endif
