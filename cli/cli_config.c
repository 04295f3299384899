/* `tidegate config check|show|hash-key`: validate a config file, print the
 * effective config, or hash an API key for the auth section. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "gateway/api/auth.h"
#include "cli/cli.h"

static const char k_usage[] =
    "tidegate config check FILE... | show [FILE] [--keys] | hash-key < keyfile";

static void help(void) {
    printf("usage: %s\n\n"
           "  check FILE...   validate config files; prints 'FILE: ok' or one\n"
           "                  'file:line:col: key: message' line per error (exit 1)\n"
           "  show [FILE]     print the effective config (FILE or %s, then\n"
           "                  TIDEGATE_* environment) as YAML; key hashes are truncated\n"
           "  show --keys     list every key with its environment variable and type\n"
           "  hash-key        read an API key on stdin, print its SHA-256 for\n"
           "                  auth.api_key_sha256 / auth.admin_key_sha256\n",
           k_usage, TG_CONFIG_DEFAULT_PATH);
}

static int is_help(const char *a) {
    return !strcmp(a, "--help") || !strcmp(a, "-h");
}

static int check(int argc, char **argv) {
    if (argc < 2) return cli_usage_error("config check", k_usage, "missing FILE");
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            help();
            return 0;
        }
    }
    for (int i = 1; i < argc; i++) {
        tg_config cfg;
        char err[8192];
        tg_config_defaults(&cfg);
        int rc = tg_config_load_file(argv[i], &cfg, err, sizeof err);
        if (rc == 0) rc = tg_config_finalize(&cfg, err, sizeof err);
        if (rc == 0) {
            printf("%s: ok\n", argv[i]);
        } else {
            fprintf(stderr, "%s\n", err);
            bad = 1;
        }
        tg_config_free(&cfg);
    }
    return bad;
}

static int show_keys(void) {
    tg_config_key_info ki;
    for (size_t i = 0; tg_config_key(i, &ki); i++) {
        if (!ki.env) continue; /* sections */
        printf("%-28s %-30s %-28s %s\n", ki.path, ki.env, ki.type, ki.help);
    }
    return 0;
}

static int show(int argc, char **argv) {
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            help();
            return 0;
        }
        if (!strcmp(argv[i], "--keys")) return show_keys();
        if (argv[i][0] == '-')
            return cli_usage_error("config show", k_usage, "unknown option '%s'", argv[i]);
        if (file) return cli_usage_error("config show", k_usage, "more than one FILE");
        file = argv[i];
    }
    tg_config cfg;
    char err[8192];
    tg_config_defaults(&cfg);
    int rc = tg_config_load_file(file, &cfg, err, sizeof err);
    if (rc == 0) rc = tg_config_apply_env(&cfg, err, sizeof err);
    if (rc == 0) rc = tg_config_finalize(&cfg, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "%s\n", err);
        tg_config_free(&cfg);
        return 1;
    }
    char *y = tg_config_to_yaml(&cfg);
    fputs(y, stdout);
    free(y);
    tg_config_free(&cfg);
    return 0;
}

/* The key arrives on stdin, never argv: argv is visible in ps and shell
 * history. One trailing newline (or CRLF) is dropped, as `echo` adds it. */
static int hash_key(int argc, char **argv) {
    if (argc > 1) {
        if (is_help(argv[1])) {
            help();
            return 0;
        }
        return cli_usage_error("config hash-key", k_usage,
                               "the key is read from stdin, not arguments");
    }
    char buf[4097];
    size_t n = fread(buf, 1, sizeof buf, stdin);
    if (n == sizeof buf) {
        fprintf(stderr, "tidegate config hash-key: key longer than 4096 bytes\n");
        return 1;
    }
    if (n && buf[n - 1] == '\n') n--;
    if (n && buf[n - 1] == '\r') n--;
    if (n == 0) {
        fprintf(stderr, "tidegate config hash-key: empty key on stdin\n");
        return 1;
    }
    char hex[65];
    int rc = tg_auth_sha256_hex(buf, n, hex);
    memset(buf, 0, sizeof buf);
    if (rc != 0) {
        fprintf(stderr, "tidegate config hash-key: SHA-256 failed\n");
        return 1;
    }
    printf("%s\n", hex);
    return 0;
}

int cmd_config(int argc, char **argv) {
    if (argc < 2) return cli_usage_error("config", k_usage, "missing verb");
    if (is_help(argv[1])) {
        help();
        return 0;
    }
    if (!strcmp(argv[1], "check")) return check(argc - 1, argv + 1);
    if (!strcmp(argv[1], "show")) return show(argc - 1, argv + 1);
    if (!strcmp(argv[1], "hash-key")) return hash_key(argc - 1, argv + 1);
    return cli_usage_error("config", k_usage, "unknown verb '%s'", argv[1]);
}
