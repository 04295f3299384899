/* tidegate serve: run the OpenAI-compatible gateway.
 *
 * Configuration precedence, lowest to highest: built-in defaults, the YAML
 * file (-c, else ./config/tidegate.yaml when present), TIDEGATE_*
 * environment variables, then the flags below. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tg_log.h"
#include "config/config.h"
#include "cli/cli.h"
#include "gateway/gateway.h"

static const char k_usage[] =
    "tidegate serve [-c CONFIG] [--listen HOST:PORT] [-m MODEL] [--threads N] [--journal-dir DIR]\n"
    "               [--cloud-url URL --cloud-model NAME [--cloud-key-env VAR]] [--ca-file PEM]\n"
    "               [--policy FILE]";

static void print_help(void) {
    printf(
        "usage: %s\n\n"
        "Runs the OpenAI-compatible gateway with the embedded LFM2 engine.\n\n"
        "  -c, --config FILE     YAML config (else $TIDEGATE_CONFIG, else\n"
        "                        ./config/tidegate.yaml if present)\n"
        "  --listen HOST:PORT    listen address (default 127.0.0.1:8080; port 0 = ephemeral)\n"
        "  -m, --model PATH      GGUF model file (engine.model)\n"
        "  --threads N           engine compute threads (0 = number of CPUs)\n"
        "  --journal-dir DIR     request journal directory (journal.dir; default\n"
        "                        $XDG_STATE_HOME/tidegate, else ~/.local/state/tidegate);\n"
        "                        key: $TIDEGATE_JOURNAL_KEY or $TIDEGATE_JOURNAL_KEY_FILE\n"
        "  --cloud-url URL       define/override the cloud upstream named \"cloud\"\n"
        "                        (https://host/v1, OpenAI-compatible)\n"
        "  --cloud-model NAME    its model (also the id clients may request)\n"
        "  --cloud-key-env VAR   environment variable holding its API key\n"
        "  --ca-file PEM         CA bundle for upstreams without their own (routing.ca_file)\n"
        "  --policy FILE         routing policy (routing.policy; policies/README.md); the\n"
        "                        default is the built-in hybrid.yaml when a cloud upstream\n"
        "                        is configured. Reloaded on change, SIGHUP, POST /admin/reload\n\n"
        "Precedence: flag > TIDEGATE_* environment > config file > built-in default.\n"
        "Once bound it logs `listening addr=HOST port=PORT` to stderr. SIGTERM/SIGINT\n"
        "drain in-flight requests for server.shutdown_grace_ms, then exit 0.\n",
        k_usage);
}

/* Takes "--flag VALUE" or "--flag=VALUE"; returns the value or NULL. */
static const char *flag_value(int argc, char **argv, int *i, const char *shortf, const char *longf,
                              bool *matched) {
    const char *a = argv[*i];
    size_t ll = strlen(longf);
    *matched = false;
    if (!strncmp(a, longf, ll) && a[ll] == '=') {
        *matched = true;
        return a + ll + 1;
    }
    if (!strcmp(a, longf) || (shortf && !strcmp(a, shortf))) {
        *matched = true;
        if (*i + 1 >= argc) return NULL;
        return argv[++*i];
    }
    return NULL;
}

int cmd_serve(int argc, char **argv) {
    const char *config_path = NULL, *listen = NULL, *model = NULL, *threads = NULL,
               *journal_dir = NULL;
    const char *cloud_url = NULL, *cloud_model = NULL, *cloud_key_env = NULL, *ca_file = NULL;
    const char *policy = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_help();
            return 0;
        }
        static const struct {
            const char *s, *l;
        } flags[] = {{"-c", "--config"},        {NULL, "--listen"},    {"-m", "--model"},
                     {NULL, "--threads"},       {NULL, "--cloud-url"}, {NULL, "--cloud-model"},
                     {NULL, "--cloud-key-env"}, {NULL, "--ca-file"},   {NULL, "--policy"},
                     {NULL, "--journal-dir"}};
        const char **dst[] = {&config_path, &listen,        &model,   &threads, &cloud_url,
                              &cloud_model, &cloud_key_env, &ca_file, &policy,  &journal_dir};
        bool matched = false;
        for (size_t f = 0; f < sizeof dst / sizeof dst[0] && !matched; f++) {
            const char *v = flag_value(argc, argv, &i, flags[f].s, flags[f].l, &matched);
            if (matched && !v) return cli_usage_error("serve", k_usage, "%s needs a value", a);
            if (matched) *dst[f] = v;
        }
        if (!matched) return cli_usage_error("serve", k_usage, "unknown argument '%s'", a);
    }

    /* The file itself can come from the environment (containers, units);
     * the flag still wins. An explicitly named file must exist. */
    const char *env_config = getenv("TIDEGATE_CONFIG");
    if (!config_path && env_config && *env_config) config_path = env_config;

    tg_config cfg;
    char err[2048] = "";
    tg_config_defaults(&cfg);
    int rc = tg_config_load_file(config_path, &cfg, err, sizeof err);
    if (rc == 0) rc = tg_config_apply_env(&cfg, err, sizeof err);
    if (rc == 0 && listen)
        rc = tg_config_set(&cfg, "--listen", "server.listen", listen, err, sizeof err);
    if (rc == 0 && model)
        rc = tg_config_set(&cfg, "--model", "engine.model", model, err, sizeof err);
    if (rc == 0 && threads)
        rc = tg_config_set(&cfg, "--threads", "engine.threads", threads, err, sizeof err);
    if (rc == 0 && journal_dir)
        rc = tg_config_set(&cfg, "--journal-dir", "journal.dir", journal_dir, err, sizeof err);
    if (rc == 0 && cloud_url)
        rc = tg_config_set_cloud(&cfg, "--cloud-url", "base_url", cloud_url, err, sizeof err);
    if (rc == 0 && cloud_model)
        rc = tg_config_set_cloud(&cfg, "--cloud-model", "model", cloud_model, err, sizeof err);
    if (rc == 0 && cloud_key_env)
        rc = tg_config_set_cloud(&cfg, "--cloud-key-env", "api_key_env", cloud_key_env, err,
                                 sizeof err);
    if (rc == 0 && ca_file)
        rc = tg_config_set(&cfg, "--ca-file", "routing.ca_file", ca_file, err, sizeof err);
    if (rc == 0 && policy)
        rc = tg_config_set(&cfg, "--policy", "routing.policy", policy, err, sizeof err);
    if (rc == 0) rc = tg_config_finalize(&cfg, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "tidegate serve: invalid configuration:\n%s\n", err);
        tg_config_free(&cfg);
        return 1;
    }
    /* TIDEGATE_LOG was already read by main(); the config's level applies
     * unless the environment set one (the env is part of cfg by now). */
    tg_log_set_level((tg_log_level)cfg.log.level);
    int code = tg_gateway_run(&cfg);
    tg_config_free(&cfg);
    return code;
}
