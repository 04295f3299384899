/* tg-test-links: tgconfig */
/* Config loader: every error kind with its exact file:line:col line, the
 * precedence chain (file < env < flag), and that the shipped
 * config/tidegate.yaml documents exactly the built-in defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"

static char g_err[8192];

static int load(const char *yaml, tg_config *cfg) {
    tg_config_defaults(cfg);
    return tg_config_load_mem(yaml, strlen(yaml), "t.yaml", cfg, g_err, sizeof g_err);
}

/* Loads yaml that must fail with exactly `want` as the error text. */
static void expect_err(const char *yaml, const char *want) {
    tg_config cfg;
    int rc = load(yaml, &cfg);
    if (rc == 0 || strcmp(g_err, want) != 0)
        fprintf(stderr, "yaml:\n%s\nwant: %s\ngot (rc=%d): %s\n", yaml, want, rc, g_err);
    assert_int_equal(rc, -1);
    assert_string_equal(g_err, want);
    tg_config_free(&cfg);
}

static void test_defaults(void **st) {
    (void)st;
    tg_config c;
    tg_config_defaults(&c);
    assert_string_equal(c.server.listen_host, "127.0.0.1");
    assert_int_equal(c.server.listen_port, 8080);
    assert_int_equal(c.server.max_body_bytes, 1048576);
    assert_int_equal(c.server.max_header_bytes, 16384);
    assert_int_equal(c.server.max_headers, 64);
    assert_int_equal(c.server.max_connections, 1024);
    assert_null(c.server.tls_cert);
    assert_int_equal(c.auth.n_api_keys, 0);
    assert_int_equal(c.auth.admin_loopback_only, 1);
    assert_null(c.engine.model);
    assert_int_equal(c.engine.threads, 0);
    assert_int_equal(c.engine.max_active, 8);
    assert_int_equal(c.engine.queue_capacity, 64);
    assert_int_equal(c.engine.context, 0);
    assert_int_equal(c.engine.prefix_cache_mib, 128);
    assert_int_equal(c.engine.kv_type, TG_CONFIG_KV_F32);
    assert_int_equal(c.engine.kernels, TG_CONFIG_KERNELS_AUTO);
    assert_int_equal(c.log.level, TG_CONFIG_LOG_INFO);
    tg_config_free(&c);
}

static void test_full_valid(void **st) {
    (void)st;
    tg_config c;
    const char *y = "server:\n"
                    "  listen: \"[::1]:9090\"\n"
                    "  tls: {cert: /etc/c.pem, key: '/etc/k.pem'}\n"
                    "  max_body_bytes: 2MiB\n"
                    "  max_header_bytes: \"32 KiB\"\n"
                    "  max_headers: 10\n"
                    "  max_connections: 5\n"
                    "  header_timeout_ms: 1\n"
                    "  body_timeout_ms: 2\n"
                    "  idle_timeout_ms: 3\n"
                    "  write_timeout_ms: 4\n"
                    "  shutdown_grace_ms: 0\n"
                    "auth:\n"
                    "  api_key_sha256:\n"
                    "    - 5E884898DA28047151D0E56F8DC6292773603D0D6AABBDD62A11EF721D1542D8\n"
                    "    - e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
                    "  admin_key_sha256: []\n"
                    "  admin_loopback_only: false\n"
                    "engine:\n"
                    "  model: models/LFM2-350M-Q4_0.gguf\n"
                    "  threads: 4\n"
                    "  max_active: 16\n"
                    "  queue_capacity: 0\n"
                    "  context: 4096\n"
                    "  kv_type: f16\n"
                    "  kernels: scalar\n"
                    "log: {level: debug}\n";
    assert_int_equal(load(y, &c), 0);
    assert_string_equal(c.server.listen_host, "::1");
    assert_int_equal(c.server.listen_port, 9090);
    assert_string_equal(c.server.tls_cert, "/etc/c.pem");
    assert_string_equal(c.server.tls_key, "/etc/k.pem");
    assert_int_equal(c.server.max_body_bytes, 2 << 20);
    assert_int_equal(c.server.max_header_bytes, 32 << 10);
    assert_int_equal(c.server.max_headers, 10);
    assert_int_equal(c.server.max_connections, 5);
    assert_int_equal(c.server.header_timeout_ms, 1);
    assert_int_equal(c.server.body_timeout_ms, 2);
    assert_int_equal(c.server.idle_timeout_ms, 3);
    assert_int_equal(c.server.write_timeout_ms, 4);
    assert_int_equal(c.server.shutdown_grace_ms, 0);
    assert_int_equal(c.auth.n_api_keys, 2);
    assert_int_equal(c.auth.api_keys[0].b[0], 0x5e);
    assert_int_equal(c.auth.api_keys[0].b[31], 0xd8);
    assert_int_equal(c.auth.api_keys[1].b[0], 0xe3);
    assert_int_equal(c.auth.n_admin_keys, 0);
    assert_int_equal(c.auth.admin_loopback_only, 0);
    assert_string_equal(c.engine.model, "models/LFM2-350M-Q4_0.gguf");
    assert_int_equal(c.engine.threads, 4);
    assert_int_equal(c.engine.max_active, 16);
    assert_int_equal(c.engine.queue_capacity, 0);
    assert_int_equal(c.engine.context, 4096);
    assert_int_equal(c.engine.kv_type, TG_CONFIG_KV_F16);
    assert_int_equal(c.engine.kernels, TG_CONFIG_KERNELS_SCALAR);
    assert_int_equal(c.log.level, TG_CONFIG_LOG_DEBUG);
    assert_null(c.engine.model_id);
    assert_int_equal(tg_config_finalize(&c, g_err, sizeof g_err), 0);
    assert_string_equal(c.engine.model_id, "LFM2-350M-Q4_0");
    tg_config_free(&c);
}

static void test_empty_and_null_sections(void **st) {
    (void)st;
    tg_config c;
    assert_int_equal(load("", &c), 0);
    assert_int_equal(c.server.listen_port, 8080);
    tg_config_free(&c);
    assert_int_equal(load("# only a comment\n", &c), 0);
    tg_config_free(&c);
    assert_int_equal(load("server:\nauth: ~\nengine:\n  model: null\n", &c), 0);
    assert_null(c.engine.model);
    tg_config_free(&c);
}

static void test_errors_each_kind(void **st) {
    (void)st;
    expect_err("server:\n  lisen: 1.2.3.4:80\n",
               "t.yaml:2:3: server.lisen: unknown key 'lisen' (did you mean 'listen'?)");
    expect_err("engin:\n  threads: 1\n",
               "t.yaml:1:1: engin: unknown key 'engin' (did you mean 'engine'?)");
    expect_err("journal: {fsinc: true}\n",
               "t.yaml:1:11: journal.fsinc: unknown key 'fsinc' (did you mean 'fsync'?)");
    expect_err("journal: {retention_s: 0}\n",
               "t.yaml:1:24: journal.retention_s: value 0 out of range (seconds 1..31536000)");
    expect_err("journal: {segment_size: 1KiB}\n",
               "t.yaml:1:25: journal.segment_size: value 1KiB out of range (size 64KiB..4GiB)");
    expect_err("routing: {mode: sideways}\n",
               "t.yaml:1:17: routing.mode: expected one of auto|offline|edge-only|cloud-only, got "
               "'sideways'");
    expect_err("cloud: {a: 1}\n", "t.yaml:1:8: cloud: expected a list of upstreams");
    expect_err("cloud:\n  - {name: a, bogus: 1}\n",
               "t.yaml:2:15: cloud[0].bogus: unknown key 'bogus' (name, base_url, model, "
               "api_key_env, ca_file, headers, *_timeout_ms, fallback, midstream)");
    expect_err("cloud:\n  - {name: a, first_byte_timeout_ms: -1}\n",
               "t.yaml:2:38: cloud[0].first_byte_timeout_ms: value -1 out of range (milliseconds "
               "0..86400000)");
    expect_err("cloud:\n  - {name: a, headers: {Authorization: x}}\n",
               "t.yaml:2:25: cloud[0].headers: header must be a token name (not authorization) "
               "with a one-line value");
    expect_err("server.listen: 1.2.3.4:80\n",
               "t.yaml:1:1: server.listen: unknown key 'server.listen'");
    expect_err("engine:\n  threads: four\n",
               "t.yaml:2:12: engine.threads: expected an integer, got 'four'");
    expect_err("engine:\n  threads: \"4\"\n",
               "t.yaml:2:12: engine.threads: expected an integer, got the string '4'");
    expect_err("engine:\n  threads: 1025\n",
               "t.yaml:2:12: engine.threads: value 1025 out of range (integer 0..1024)");
    expect_err("engine:\n  threads: -1\n",
               "t.yaml:2:12: engine.threads: value -1 out of range (integer 0..1024)");
    expect_err("engine:\n  threads: 99999999999999999999999\n",
               "t.yaml:2:12: engine.threads: value 99999999999999999999999 out of range "
               "(integer 0..1024)");
    expect_err("engine:\n  threads: [1]\n",
               "t.yaml:2:12: engine.threads: expected a single value, got a list");
    expect_err("engine:\n  threads:\n",
               "t.yaml:2:11: engine.threads: expected an integer, got null");
    expect_err("server:\n  max_body_bytes: 1TiB\n",
               "t.yaml:2:19: server.max_body_bytes: expected a size (bytes, or with "
               "KiB/MiB/GiB), got '1TiB'");
    expect_err("server:\n  max_body_bytes: 512\n",
               "t.yaml:2:19: server.max_body_bytes: value 512 out of range (size 1KiB..256MiB)");
    expect_err("engine:\n  prefix_cache_mib: -1\n",
               "t.yaml:2:21: engine.prefix_cache_mib: value -1 out of range (integer 0..1048576)");
    expect_err("engine:\n  prefix_cache_mib: 1048577\n",
               "t.yaml:2:21: engine.prefix_cache_mib: value 1048577 out of range (integer "
               "0..1048576)");
    expect_err("engine:\n  kv_type: q8\n",
               "t.yaml:2:12: engine.kv_type: expected one of f32|f16, got 'q8'");
    expect_err("auth:\n  admin_loopback_only: maybe\n",
               "t.yaml:2:24: auth.admin_loopback_only: expected a boolean (true/false), got "
               "'maybe'");
    expect_err("auth:\n  api_key_sha256: abc\n",
               "t.yaml:2:19: auth.api_key_sha256: expected a list of SHA-256 hex strings, got a "
               "scalar");
    expect_err("auth:\n  api_key_sha256:\n    - abc\n",
               "t.yaml:3:7: auth.api_key_sha256[0]: expected a SHA-256 as 64 hex digits "
               "(tidegate config hash-key), got 'abc'");
    expect_err("server:\n  tls: [a]\n",
               "t.yaml:2:8: server.tls: expected a mapping (section), got a list");
    expect_err("server: 8080\n", "t.yaml:1:9: server: expected a mapping (section), got a scalar");
    expect_err("- a\n- b\n", "t.yaml:1:1: (root): expected a mapping of sections, got a list");
    expect_err("just text\n", "t.yaml:1:1: (root): expected a mapping of sections, got a scalar");
    expect_err("engine:\n  threads: 1\n  threads: 2\n",
               "t.yaml:3:3: engine.threads: duplicate key");
    expect_err("log: {}\nlog: {}\n", "t.yaml:2:1: log: duplicate key");
    expect_err("? [a]\n: b\n", "t.yaml:1:3: (root): keys must be plain names");
    expect_err("x: 1\n---\ny: 2\n",
               "t.yaml:1:1: x: unknown key 'x'\nt.yaml:3:1: (root): more than one YAML document");
}

static void test_listen_errors(void **st) {
    (void)st;
    expect_err("server:\n  listen: 1.2.3.4\n",
               "t.yaml:2:11: server.listen: expected host:port, got '1.2.3.4'");
    expect_err("server:\n  listen: \"[::1]:99999\"\n",
               "t.yaml:2:11: server.listen: port must be an integer 0..65535, got '[::1]:99999'");
    expect_err("server:\n  listen: ::1:80\n",
               "t.yaml:2:11: server.listen: IPv6 addresses need brackets: [addr]:port, got "
               "'::1:80'");
    expect_err("server:\n  listen: 300.1.1.1:80\n",
               "t.yaml:2:11: server.listen: bad IPv4 address, got '300.1.1.1:80'");
    expect_err("server:\n  listen: \"[zz]:80\"\n",
               "t.yaml:2:11: server.listen: bad IPv6 address, got '[zz]:80'");
    expect_err("server:\n  listen: \":80\"\n",
               "t.yaml:2:11: server.listen: expected host:port (host missing), got ':80'");
    char host[TG_CONFIG_HOST_MAX], e[128];
    int port = -1;
    assert_int_equal(tg_config_parse_listen("localhost:0", host, sizeof host, &port, e, sizeof e),
                     0);
    assert_string_equal(host, "localhost");
    assert_int_equal(port, 0);
    assert_int_equal(tg_config_parse_listen("[fe80::1]:443", host, sizeof host, &port, e, sizeof e),
                     0);
    assert_string_equal(host, "fe80::1");
    assert_int_equal(port, 443);
    assert_int_equal(tg_config_parse_listen("a_b:1", host, sizeof host, &port, e, sizeof e), -1);
    assert_string_equal(e, "bad host name");
    assert_int_equal(tg_config_parse_listen("h:+1", host, sizeof host, &port, e, sizeof e), -1);
    assert_int_equal(tg_config_parse_listen("h:-0", host, sizeof host, &port, e, sizeof e), -1);
    assert_int_equal(tg_config_parse_listen("h:80x", host, sizeof host, &port, e, sizeof e), -1);
}

static void test_syntax_errors(void **st) {
    (void)st;
    expect_err("a: [b\n", "t.yaml:2:1: yaml: did not find expected ',' or ']' (while parsing a "
                          "flow sequence started at 1:4)");
    expect_err("server:\n  listen: a\n bad: 1\n",
               "t.yaml:3:2: yaml: did not find expected key (while parsing a block mapping "
               "started at 1:1)");
    expect_err("a: \"\\q\"\n",
               "t.yaml:1:5: yaml: found unknown escape character (while parsing a quoted scalar "
               "started at 1:4)");
    tg_config c;
    const char bin[] = "a: \x01\n";
    tg_config_defaults(&c);
    assert_int_equal(tg_config_load_mem(bin, sizeof bin - 1, "b.yaml", &c, g_err, sizeof g_err),
                     -1);
    assert_string_equal(g_err, "b.yaml:1:1: yaml: control characters are not allowed at byte 3");
    tg_config_free(&c);
}

/* Aliases may point at a node that contains them; the walker must not loop. */
static void test_alias_cycles(void **st) {
    (void)st;
    expect_err("server: &a\n  tls: *a\n", "t.yaml:2:3: server.tls.tls: unknown key 'tls'");
    expect_err("log: &a\n  level: *a\n",
               "t.yaml:1:6: log.level: expected a single value, got a mapping");
}

static void test_error_cap_and_truncation(void **st) {
    (void)st;
    char y[4096] = "";
    for (int i = 0; i < 40; i++)
        snprintf(y + strlen(y), sizeof y - strlen(y), "k%d: 1\n", i);
    tg_config c;
    assert_int_equal(load(y, &c), -1);
    int lines = 1;
    for (char *p = g_err; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 20);
    tg_config_free(&c);
    /* A small buffer keeps whole lines only. */
    char small[60];
    tg_config_defaults(&c);
    assert_int_equal(tg_config_load_mem(y, strlen(y), "t.yaml", &c, small, sizeof small), -1);
    assert_string_equal(small, "t.yaml:1:1: k0: unknown key 'k0'");
    tg_config_free(&c);
}

static void test_set_by_path(void **st) {
    (void)st;
    tg_config c;
    tg_config_defaults(&c);
    assert_int_equal(tg_config_set(&c, "--threads", "engine.threads", "4", g_err, sizeof g_err), 0);
    assert_int_equal(tg_config_set(&c, "TIDEGATE_PREFIX_CACHE_MIB", "engine.prefix_cache_mib", "0",
                                   g_err, sizeof g_err),
                     0);
    assert_int_equal(c.engine.prefix_cache_mib, 0);
    assert_int_equal(c.engine.threads, 4);
    assert_int_equal(tg_config_set(&c, "--listen", "server.listen", "0.0.0.0:1", g_err, 100), 0);
    assert_string_equal(c.server.listen_host, "0.0.0.0");
    assert_int_equal(c.server.listen_port, 1);
    assert_int_equal(tg_config_set(&c, "-m", "engine.model", "/m.gguf", g_err, 100), 0);
    assert_string_equal(c.engine.model, "/m.gguf");
    assert_int_equal(tg_config_set(&c, "-m", "engine.model", "", g_err, 100), 0);
    assert_null(c.engine.model);
    assert_int_equal(tg_config_set(&c, "x", "auth.admin_loopback_only", "false", g_err, 100), 0);
    assert_int_equal(c.auth.admin_loopback_only, 0);
    assert_int_equal(
        tg_config_set(&c, "x", "auth.api_key_sha256",
                      " 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 ,"
                      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                      g_err, sizeof g_err),
        0);
    assert_int_equal(c.auth.n_api_keys, 2);
    assert_int_equal(tg_config_set(&c, "x", "auth.api_key_sha256", "", g_err, 100), 0);
    assert_int_equal(c.auth.n_api_keys, 0);
    /* Same validation as the file, labelled with the source. */
    assert_int_equal(tg_config_set(&c, "--threads", "engine.threads", "x", g_err, sizeof g_err),
                     -1);
    assert_string_equal(g_err, "--threads: engine.threads: expected an integer, got 'x'");
    assert_int_equal(tg_config_set(&c, "f", "engine.thread", "1", g_err, sizeof g_err), -1);
    assert_string_equal(g_err, "f: engine.thread: unknown key (did you mean 'engine.threads'?)");
    assert_int_equal(tg_config_set(&c, "f", "engine", "1", g_err, sizeof g_err), -1);
    assert_string_equal(g_err, "f: engine: is a section, not a key");
    assert_int_equal(tg_config_set(&c, "f", "engine.kernels", "AUTO", g_err, sizeof g_err), -1);
    assert_string_equal(g_err, "f: engine.kernels: expected one of auto|scalar, got 'AUTO'");
    assert_int_equal(c.engine.threads, 4); /* failed sets left the value alone */
    tg_config_free(&c);
}

/* default < file < environment < flag */
static void test_precedence(void **st) {
    (void)st;
    tg_config c;
    assert_int_equal(load("engine:\n  threads: 2\n  max_active: 3\n  context: 7\n", &c), 0);
    setenv("TIDEGATE_THREADS", "5", 1);
    setenv("TIDEGATE_MAX_ACTIVE", "6", 1);
    setenv("TIDEGATE_LOG", "warn", 1);
    setenv("TIDEGATE_MODEL", "", 1); /* empty = ignored */
    assert_int_equal(tg_config_apply_env(&c, g_err, sizeof g_err), 0);
    assert_int_equal(tg_config_set(&c, "--threads", "engine.threads", "9", g_err, 100), 0);
    assert_int_equal(c.engine.threads, 9);         /* flag */
    assert_int_equal(c.engine.max_active, 6);      /* env */
    assert_int_equal(c.engine.context, 7);         /* file */
    assert_int_equal(c.engine.queue_capacity, 64); /* default */
    assert_int_equal(c.log.level, TG_CONFIG_LOG_WARN);
    assert_null(c.engine.model);
    setenv("TIDEGATE_MAX_ACTIVE", "0", 1);
    setenv("TIDEGATE_LISTEN", "nope", 1);
    assert_int_equal(tg_config_apply_env(&c, g_err, sizeof g_err), -1);
    assert_string_equal(g_err, "$TIDEGATE_LISTEN: server.listen: expected host:port, got 'nope'\n"
                               "$TIDEGATE_MAX_ACTIVE: engine.max_active: value 0 out of range "
                               "(integer 1..256)");
    unsetenv("TIDEGATE_THREADS");
    unsetenv("TIDEGATE_MAX_ACTIVE");
    unsetenv("TIDEGATE_LOG");
    unsetenv("TIDEGATE_MODEL");
    unsetenv("TIDEGATE_LISTEN");
    tg_config_free(&c);
}

static void test_files(void **st) {
    (void)st;
    char dir[] = "/tmp/tg_cfg_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char old[4096];
    assert_non_null(getcwd(old, sizeof old));
    assert_int_equal(chdir(dir), 0);
    tg_config c;
    tg_config_defaults(&c);
    /* No ./config/tidegate.yaml: defaults, no error. */
    assert_int_equal(tg_config_load_file(NULL, &c, g_err, sizeof g_err), 0);
    assert_null(c.source_path);
    /* An explicit missing file is an error. */
    assert_int_equal(tg_config_load_file("missing.yaml", &c, g_err, sizeof g_err), -1);
    assert_string_equal(g_err, "missing.yaml: cannot open: No such file or directory");
    assert_int_equal(tg_config_load_file(".", &c, g_err, sizeof g_err), -1);
    assert_string_equal(g_err, ".: is a directory, not a regular file");
    /* A FIFO is refused at once instead of blocking the open for ever. */
    assert_int_equal(mkfifo("fifo.yaml", 0600), 0);
    assert_int_equal(tg_config_load_file("fifo.yaml", &c, g_err, sizeof g_err), -1);
    assert_string_equal(g_err, "fifo.yaml: is a FIFO (named pipe), not a regular file");
    unlink("fifo.yaml");
    /* So is nesting past the limit, before libyaml builds the document. */
    {
        static char deep[40000 + 8];
        memcpy(deep, "a: ", 3);
        memset(deep + 3, '[', 40000);
        deep[40003] = 0;
        tg_config c2;
        tg_config_defaults(&c2);
        assert_int_equal(tg_config_load_mem(deep, strlen(deep), "d.yaml", &c2, g_err, sizeof g_err),
                         -1);
        assert_string_equal(g_err, "d.yaml:1:67: yaml: nested deeper than 64 levels");
        tg_config_free(&c2);
    }
    /* The default path is used when present. */
    assert_int_equal(mkdir("config", 0700), 0);
    FILE *f = fopen("config/tidegate.yaml", "w");
    assert_non_null(f);
    fputs("engine:\n  max_active: 12\n", f);
    fclose(f);
    assert_int_equal(tg_config_load_file(NULL, &c, g_err, sizeof g_err), 0);
    assert_int_equal(c.engine.max_active, 12);
    assert_string_equal(c.source_path, "config/tidegate.yaml");
    f = fopen("config/tidegate.yaml", "w");
    fputs("engine:\n  max_active: x\n", f);
    fclose(f);
    assert_int_equal(tg_config_load_file(NULL, &c, g_err, sizeof g_err), -1);
    assert_string_equal(
        g_err, "config/tidegate.yaml:2:15: engine.max_active: expected an integer, got 'x'");
    unlink("config/tidegate.yaml");
    rmdir("config");
    assert_int_equal(chdir(old), 0);
    rmdir(dir);
    tg_config_free(&c);
}

static void test_finalize(void **st) {
    (void)st;
    tg_config c;
    assert_int_equal(load("server:\n  tls:\n    cert: c.pem\n", &c), 0);
    assert_int_equal(tg_config_finalize(&c, g_err, sizeof g_err), -1);
    assert_string_equal(g_err,
                        "config: server.tls: cert and key must be set together (key is missing)");
    tg_config_free(&c);
    assert_int_equal(load("engine:\n  model: /x/y/Model.GGUF\n", &c), 0);
    assert_int_equal(tg_config_finalize(&c, g_err, sizeof g_err), 0);
    assert_string_equal(c.engine.model_id, "Model");
    tg_config_free(&c);
    assert_int_equal(load("engine:\n  model: m.gguf\n  model_id: lfm2-local\n", &c), 0);
    assert_int_equal(tg_config_finalize(&c, g_err, sizeof g_err), 0);
    assert_string_equal(c.engine.model_id, "lfm2-local");
    /* The admin listener sits next to the API one unless set; an ephemeral
     * API port gets an ephemeral admin port. */
    assert_int_equal(c.admin.listen_port, 8081);
    assert_string_equal(c.admin.listen_host, "127.0.0.1");
    tg_config_free(&c);
    assert_int_equal(load("server:\n  listen: 127.0.0.1:0\n", &c), 0);
    assert_int_equal(tg_config_finalize(&c, g_err, sizeof g_err), 0);
    assert_int_equal(c.admin.listen_port, 0);
    tg_config_free(&c);
    /* Off loopback without an admin key: refused. With a key: fine. */
    assert_int_equal(load("admin:\n  listen: 0.0.0.0:9000\n", &c), 0);
    assert_int_equal(tg_config_finalize(&c, g_err, sizeof g_err), -1);
    assert_non_null(
        strstr(g_err, "admin.listen: 0.0.0.0 is not a loopback address and no admin key"));
    tg_config_free(&c);
    assert_int_equal(load("admin:\n  listen: '[::1]:9000'\n", &c), 0);
    assert_int_equal(tg_config_finalize(&c, g_err, sizeof g_err), 0);
    tg_config_free(&c);
    assert_int_equal(load("admin:\n  listen: 0.0.0.0:9000\nauth:\n  admin_key_sha256: ['"
                          "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8']\n",
                          &c),
                     0);
    assert_int_equal(tg_config_finalize(&c, g_err, sizeof g_err), 0);
    tg_config_free(&c);
    assert_int_equal(load("server:\n  trusted_proxies: 10.0.0.1, ::1\n", &c), 0);
    assert_int_equal(tg_config_finalize(&c, g_err, sizeof g_err), 0);
    tg_config_free(&c);
    assert_int_equal(load("server:\n  trusted_proxies: 10.0.0.1, proxy.local\n", &c), 0);
    assert_int_equal(tg_config_finalize(&c, g_err, sizeof g_err), -1);
    assert_non_null(strstr(g_err, "'proxy.local' is not an IPv4 or IPv6 address"));
    tg_config_free(&c);
    assert_int_equal(load("engine:\n  model: m.gguf\n  model_id: lfm2-local\n", &c), 0);
    assert_int_equal(tg_config_finalize(&c, g_err, sizeof g_err), 0);
    tg_config copy;
    tg_config_copy(&copy, &c);
    tg_config_free(&c);
    assert_string_equal(copy.engine.model_id, "lfm2-local");
    assert_string_equal(copy.engine.model, "m.gguf");
    tg_config_free(&copy);
}

/* The documented default file must load and equal the built-in defaults,
 * so the two cannot drift apart. */
static void test_shipped_file_matches_defaults(void **st) {
    (void)st;
    char path[4096];
    snprintf(path, sizeof path, "%s/../../config/tidegate.yaml", TG_FIXTURES);
    tg_config d, c;
    tg_config_defaults(&d);
    tg_config_defaults(&c);
    /* Start c from something different so every key must be set by the file. */
    c.engine.max_active = 99;
    c.server.max_body_bytes = 5;
    c.auth.admin_loopback_only = 0;
    c.log.level = TG_CONFIG_LOG_OFF;
    int rc = tg_config_load_file(path, &c, g_err, sizeof g_err);
    if (rc) fprintf(stderr, "%s\n", g_err);
    assert_int_equal(rc, 0);
    free(c.source_path);
    c.source_path = NULL;
    assert_memory_equal(&c, &d, sizeof c);
    tg_config_free(&c);
}

/* `config show` output is YAML this loader reads back to the same values. */
static void test_to_yaml_roundtrip(void **st) {
    (void)st;
    tg_config c, r;
    assert_int_equal(load("server: {listen: \"[::1]:1\", tls: {cert: \"a\\\"b\", key: k}}\n"
                          "engine: {model: m.gguf, threads: 3, kv_type: f16}\nlog: {level: off}\n",
                          &c),
                     0);
    char *y = tg_config_to_yaml(&c);
    assert_non_null(strstr(y, "  listen: \"[::1]:1\"\n"));
    assert_non_null(strstr(y, "    cert: \"a\\\"b\"\n"));
    assert_non_null(strstr(y, "  kv_type: f16\n"));
    tg_config_defaults(&r);
    assert_int_equal(tg_config_load_mem(y, strlen(y), "show", &r, g_err, sizeof g_err), 0);
    assert_string_equal(r.server.tls_cert, "a\"b");
    assert_string_equal(r.server.listen_host, "::1");
    assert_int_equal(r.engine.threads, 3);
    assert_int_equal(r.log.level, TG_CONFIG_LOG_OFF);
    free(y);
    tg_config_free(&r);
    /* Hashes are shown truncated, never whole. */
    assert_int_equal(
        tg_config_set(&c, "x", "auth.admin_key_sha256",
                      "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8", g_err,
                      sizeof g_err),
        0);
    y = tg_config_to_yaml(&c);
    assert_non_null(strstr(y, "    - \"5e884898da28...\"\n"));
    assert_null(strstr(y, "5e884898da280"));
    free(y);
    tg_config_free(&c);
}

static void test_key_table(void **st) {
    (void)st;
    tg_config_key_info ki;
    size_t n = 0, with_env = 0;
    for (; tg_config_key(n, &ki); n++) {
        assert_non_null(ki.path);
        if (ki.env) {
            with_env++;
            assert_int_equal(strncmp(ki.env, "TIDEGATE_", 9), 0);
        }
    }
    assert_int_equal(n, 65);
    assert_int_equal(with_env, 45);
}

/* The journal section: on by default, every key read, copied and freed. */
static void test_journal_section(void **st) {
    (void)st;
    tg_config c;
    tg_config_defaults(&c);
    assert_int_equal(c.journal.enabled, 1);
    assert_null(c.journal.dir);
    assert_int_equal(c.journal.fsync, 1);
    assert_int_equal(c.journal.retention_s, 86400);
    assert_int_equal(c.journal.segment_bytes, 64u << 20);
    tg_config_free(&c);
    assert_int_equal(load("journal:\n  enabled: false\n  dir: /var/lib/tg\n  fsync: false\n"
                          "  segment_size: 1MiB\n  retention_s: 60\n  key_env: MY_KEY\n"
                          "  key_file: /etc/tg.key\n",
                          &c),
                     0);
    assert_int_equal(c.journal.enabled, 0);
    assert_string_equal(c.journal.dir, "/var/lib/tg");
    assert_int_equal(c.journal.fsync, 0);
    assert_int_equal(c.journal.segment_bytes, 1u << 20);
    assert_int_equal(c.journal.retention_s, 60);
    assert_string_equal(c.journal.key_env, "MY_KEY");
    tg_config d;
    tg_config_copy(&d, &c);
    tg_config_free(&c);
    assert_string_equal(d.journal.key_file, "/etc/tg.key");
    char err[256];
    assert_int_equal(tg_config_set(&d, "--journal-dir", "journal.dir", "/tmp/j", err, sizeof err),
                     0);
    assert_string_equal(d.journal.dir, "/tmp/j");
    tg_config_free(&d);
}

static void test_cloud_upstreams(void **st) {
    (void)st;
    tg_config c;
    assert_int_equal(load("routing: {mode: edge-only, breaker: {failures: 2}}\n"
                          "cloud:\n"
                          "  - name: main\n"
                          "    base_url: https://api.example.com/v1\n"
                          "    model: big-model\n"
                          "    api_key_env: MAIN_KEY\n"
                          "    headers: {x-org: tide}\n"
                          "    idle_timeout_ms: 250\n"
                          "    fallback: none\n"
                          "    midstream: error\n",
                          &c),
                     0);
    assert_int_equal(c.routing.mode, TG_CONFIG_MODE_EDGE_ONLY);
    assert_int_equal(c.routing.breaker_failures, 2);
    assert_int_equal(c.n_cloud, 1);
    assert_string_equal(c.cloud[0].name, "main");
    assert_string_equal(c.cloud[0].model, "big-model");
    assert_string_equal(c.cloud[0].api_key_env, "MAIN_KEY");
    assert_int_equal(c.cloud[0].n_headers, 1);
    assert_string_equal(c.cloud[0].headers[0], "x-org: tide");
    assert_int_equal(c.cloud[0].idle_timeout_ms, 250);
    assert_int_equal(c.cloud[0].fallback, TG_CONFIG_FALLBACK_NONE);
    assert_int_equal(c.cloud[0].midstream, TG_CONFIG_MIDSTREAM_ERROR);
    assert_int_equal(tg_config_finalize(&c, g_err, sizeof g_err), 0);
    assert_ptr_equal(tg_config_find_upstream(&c, "big-model"), &c.cloud[0]);
    /* The flags override the upstream named cloud, or add it. */
    assert_int_equal(
        tg_config_set_cloud(&c, "--cloud-url", "base_url", "https://h/v1", g_err, sizeof g_err), 0);
    assert_int_equal(tg_config_set_cloud(&c, "--cloud-model", "model", "m2", g_err, sizeof g_err),
                     0);
    assert_int_equal(c.n_cloud, 2);
    assert_string_equal(c.cloud[1].name, "cloud");
    tg_config copy;
    tg_config_copy(&copy, &c);
    assert_string_equal(copy.cloud[1].base_url, "https://h/v1");
    char *y = tg_config_to_yaml(&c);
    assert_non_null(strstr(y, "  - name: \"main\"\n"));
    assert_null(strstr(y, "tide")); /* header values may be secrets */
    free(y);
    tg_config_free(&copy);
    tg_config_free(&c);

    /* Cross-key rules at finalize: https only, names unique and well formed. */
    assert_int_equal(load("cloud:\n  - {name: A, base_url: \"http://x/v1\"}\n"
                          "  - {name: b, base_url: \"https://x/v1\", model: tidegate/auto}\n",
                          &c),
                     0);
    assert_int_equal(tg_config_finalize(&c, g_err, sizeof g_err), -1);
    assert_non_null(strstr(g_err, "cloud[0]: name: required"));
    assert_non_null(strstr(g_err, "cloud[0]: base_url: required, an https:// URL"));
    assert_non_null(strstr(g_err, "cloud[0]: model: required"));
    assert_non_null(strstr(g_err, "cloud[1]: model 'tidegate/auto' collides"));
    tg_config_free(&c);
}

/* Runs `sh -c cmd`, captures stdout+stderr into out; returns the exit code. */
static int run(const char *cmd, char *out, size_t outlen) {
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The real binary (ctest sets TIDEGATE_BIN): check, show, hash-key. */
static void test_cli(void **st) {
    (void)st;
    const char *bin = getenv("TIDEGATE_BIN");
    if (!bin || access(bin, X_OK) != 0) skip();
    char dir[] = "/tmp/tg_cli_XXXXXX", path[256], cmd[1024], out[8192];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/bad.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("server:\n  lisen: x\nengine:\n  threads: -3\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "cd %s && '%s' config check bad.yaml 2>&1", dir, bin);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    assert_string_equal(out, "bad.yaml:2:3: server.lisen: unknown key 'lisen' (did you mean "
                             "'listen'?)\nbad.yaml:4:12: engine.threads: value -3 out of range "
                             "(integer 0..1024)\n");
    f = fopen(path, "w");
    fputs("engine:\n  threads: 3\nauth:\n  api_key_sha256:\n"
          "    - 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8\n",
          f);
    fclose(f);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_string_equal(out, "bad.yaml: ok\n");
    /* show: file, then environment on top; the hash is cut. */
    snprintf(cmd, sizeof cmd, "cd %s && TIDEGATE_MAX_ACTIVE=5 '%s' config show bad.yaml 2>&1", dir,
             bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_non_null(strstr(out, "\n  threads: 3\n"));
    assert_non_null(strstr(out, "\n  max_active: 5\n"));
    assert_non_null(strstr(out, "\"5e884898da28...\""));
    assert_null(strstr(out, "5e884898da280"));
    snprintf(cmd, sizeof cmd, "printf password | '%s' config hash-key", bin);
    assert_int_equal(run(cmd, out, sizeof out), 0);
    assert_string_equal(out, "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8\n");
    snprintf(cmd, sizeof cmd, "'%s' config check %s/missing.yaml 2>&1", bin, dir);
    assert_int_equal(run(cmd, out, sizeof out), 1);
    unlink(path);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_full_valid),
        cmocka_unit_test(test_empty_and_null_sections),
        cmocka_unit_test(test_errors_each_kind),
        cmocka_unit_test(test_listen_errors),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_alias_cycles),
        cmocka_unit_test(test_error_cap_and_truncation),
        cmocka_unit_test(test_set_by_path),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_finalize),
        cmocka_unit_test(test_shipped_file_matches_defaults),
        cmocka_unit_test(test_to_yaml_roundtrip),
        cmocka_unit_test(test_key_table),
        cmocka_unit_test(test_journal_section),
        cmocka_unit_test(test_cloud_upstreams),
        cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
