/* `tidegate journal check|dump DIR`: verify a request journal's invariants
 * (read-only: nothing is repaired) or print its records as JSON lines. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/tg_buf.h"
#include "cli/cli.h"
#include "gateway/journal/tg_jcheck.h"
#include "gateway/journal/tg_jfile.h"

static const char k_usage[] = "tidegate journal check DIR [--strict] [--key-file F] | "
                              "dump DIR [--id ID] [--key-file F]";

static void help(void) {
    printf("usage: %s\n\n"
           "  check DIR   verify the journal's invariants and print counts per state;\n"
           "              exit 0 when they hold, 1 when one is violated (each printed)\n"
           "    --strict  also require every request to be in a terminal state\n"
           "  dump DIR    print every record as one JSON line (type, id, ts_us, payload)\n"
           "    --id ID   only that request's records\n"
           "  --key-file F  key of an encrypted journal (else $%s, 64 hex digits)\n\n"
           "Both only read: a torn tail is reported, and cut at the gateway's next start.\n",
           k_usage, TG_JCRYPT_ENV);
}

typedef struct {
    const char *dir, *id, *key_file;
    bool strict;
} args;

static int parse(const char *cmd, int argc, char **argv, bool want_id, args *a) {
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            help();
            return 1;
        } else if (!strcmp(s, "--key-file") && i + 1 < argc) {
            a->key_file = argv[++i];
        } else if (want_id && !strcmp(s, "--id") && i + 1 < argc) {
            a->id = argv[++i];
        } else if (!want_id && !strcmp(s, "--strict")) {
            a->strict = true;
        } else if (s[0] == '-') {
            return cli_usage_error(cmd, k_usage, "unknown option '%s'", s);
        } else if (a->dir) {
            return cli_usage_error(cmd, k_usage, "more than one DIR");
        } else {
            a->dir = s;
        }
    }
    if (!a->dir) return cli_usage_error(cmd, k_usage, "missing DIR");
    return 0;
}

/* Opens DIR read-only with the key the flags or environment give. */
static tg_journal *open_ro(const args *a, tg_jcrypt **key, tg_jfile_report *rep) {
    char err[512];
    if (tg_jcrypt_load(a->key_file, getenv(TG_JCRYPT_ENV), key, err, sizeof err) != 0) {
        fprintf(stderr, "tidegate journal: %s\n", err);
        return NULL;
    }
    tg_jfile_opts o = {.dir = a->dir, .key = *key, .read_only = true};
    tg_journal *j = tg_jfile_open(&o, rep, err, sizeof err);
    if (!j) {
        fprintf(stderr, "tidegate journal: %s\n", err);
        tg_jcrypt_free(*key);
        *key = NULL;
    }
    return j;
}

static int check(int argc, char **argv) {
    args a;
    int rc = parse("journal check", argc, argv, false, &a);
    if (rc) return rc == 1 ? 0 : rc;
    tg_jcrypt *key = NULL;
    tg_jfile_report rep;
    tg_journal *j = open_ro(&a, &key, &rep);
    if (!j) return 1;
    tg_jcheck_result res;
    rc = tg_jcheck_run_compacted(j, a.strict, rep.first_seg > 1, stdout, 50, &res);
    tg_journal_close(j);
    tg_jcrypt_free(key);
    if (rc) {
        fprintf(stderr, "tidegate journal: scan failed: %s\n", strerror(rc < 0 ? -rc : EIO));
        return 1;
    }
    if (rep.bad_seg) {
        printf("%s: segment %llu offset %llu: %s (%llu bytes not trusted)\n",
               rep.after_bad_segs ? "violation" : "note", (unsigned long long)rep.bad_seg,
               (unsigned long long)rep.bad_off, rep.bad_is_short ? "torn tail" : "bad record",
               (unsigned long long)rep.torn_bytes);
        if (rep.after_bad_segs) {
            printf("violation: %llu whole segments follow a bad record\n",
                   (unsigned long long)rep.after_bad_segs);
            res.violations++;
        }
    }
    printf("journal %s: %llu segments, %llu records, %llu requests\n"
           "  accepted %llu  running %llu  deferred %llu  completed %llu  failed %llu  "
           "cancelled %llu  (stream chunks %llu)\n",
           a.dir, (unsigned long long)rep.segments, (unsigned long long)res.records,
           (unsigned long long)res.requests, (unsigned long long)res.accepted,
           (unsigned long long)res.running, (unsigned long long)res.deferred,
           (unsigned long long)res.completed, (unsigned long long)res.failed,
           (unsigned long long)res.cancelled, (unsigned long long)res.chunks);
    if (res.remnants)
        printf("  %llu records of requests compaction split (ended past retention)\n",
               (unsigned long long)res.remnants);
    if (res.violations) {
        printf("FAIL: %llu violations\n", (unsigned long long)res.violations);
        return 1;
    }
    printf("OK: every invariant holds%s\n", a.strict ? " (strict: all requests terminal)" : "");
    return 0;
}

/* Appends the payload as JSON when it is a complete JSON text, else as a string. */
static void put_payload(tg_buf *b, const tg_jrec *r) {
    json_tokener *t = json_tokener_new();
    json_object *o = json_tokener_parse_ex(t, (const char *)r->payload, (int)r->payload_len);
    bool ok = json_tokener_get_error(t) == json_tokener_success &&
              json_tokener_get_parse_end(t) == r->payload_len && r->payload_len > 0;
    json_tokener_free(t);
    json_object_put(o);
    if (ok)
        tg_buf_append(b, r->payload, r->payload_len);
    else
        tg_buf_json_str(b, (const char *)r->payload, r->payload_len);
}

static int dump_rec(void *user, const tg_jrec *r) {
    (void)user;
    tg_buf b = TG_BUF_INIT;
    tg_buf_printf(&b, "{\"type\":\"%s\",\"id\":", tg_jrec_type_name(r->type));
    tg_buf_json_str(&b, r->id, r->id_len);
    tg_buf_printf(&b, ",\"ts_us\":%llu,\"payload\":", (unsigned long long)r->ts_us);
    put_payload(&b, r);
    tg_buf_puts(&b, "}\n");
    fwrite(b.data, 1, b.len, stdout);
    tg_buf_free(&b);
    return 0;
}

static int dump(int argc, char **argv) {
    args a;
    int rc = parse("journal dump", argc, argv, true, &a);
    if (rc) return rc == 1 ? 0 : rc;
    tg_jcrypt *key = NULL;
    tg_jfile_report rep;
    tg_journal *j = open_ro(&a, &key, &rep);
    if (!j) return 1;
    rc = a.id ? tg_journal_read(j, a.id, dump_rec, NULL) : tg_journal_scan(j, dump_rec, NULL);
    tg_journal_close(j);
    tg_jcrypt_free(key);
    if (rc == -ENOENT) {
        fprintf(stderr, "tidegate journal: no request %s in %s\n", a.id, a.dir);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "tidegate journal: read failed: %s\n", strerror(rc < 0 ? -rc : EIO));
        return 1;
    }
    return 0;
}

int cmd_journal(int argc, char **argv) {
    if (argc < 2) return cli_usage_error("journal", k_usage, "missing check or dump");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        help();
        return 0;
    }
    if (!strcmp(argv[1], "check")) return check(argc - 1, argv + 1);
    if (!strcmp(argv[1], "dump")) return dump(argc - 1, argv + 1);
    return cli_usage_error("journal", k_usage, "unknown subcommand '%s'", argv[1]);
}
