/* tg_defaults: the server's built-in defaults, in one table.
 *
 * The config (tg_config_defaults) and the HTTP server (tg_http_opts_defaults)
 * both start from these, so a server built without a config file behaves
 * exactly as one started with an empty one. */
#ifndef TG_DEFAULTS_H
#define TG_DEFAULTS_H

#define TG_DEFAULT_HOST              "127.0.0.1"
#define TG_DEFAULT_PORT              8080
#define TG_DEFAULT_MAX_BODY_BYTES    (1u << 20)  /* 413 beyond */
#define TG_DEFAULT_MAX_HEADER_BYTES  (16u << 10) /* request line + headers; 431 beyond */
#define TG_DEFAULT_MAX_HEADERS       64
#define TG_DEFAULT_MAX_CONNECTIONS   1024 /* 503 beyond */
#define TG_DEFAULT_HEADER_TIMEOUT_MS 10000
#define TG_DEFAULT_BODY_TIMEOUT_MS   30000
#define TG_DEFAULT_IDLE_TIMEOUT_MS   60000
#define TG_DEFAULT_WRITE_TIMEOUT_MS  30000
#define TG_DEFAULT_BACKLOG           511

#endif
