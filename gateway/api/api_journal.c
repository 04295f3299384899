#include "gateway/api/api_journal.h"

#include <stdlib.h>
#include <string.h>

#include "common/tg_buf.h"
#include "common/tg_log.h"
#include "gateway/journal/tg_jfile.h"

int tg_apij_accept(tg_api *api, const char *id, const char *scope, const char *body, size_t len,
                   tg_journal_done_cb cb, void *user) {
    tg_buf p = TG_BUF_INIT;
    tg_buf_puts(&p, "{\"scope\":");
    tg_buf_json_str(&p, scope ? scope : "", scope ? strlen(scope) : 0);
    tg_buf_puts(&p, ",\"idem\":null,\"body\":");
    /* The body already parsed as a JSON object (tg_oai_parse_request). */
    tg_buf_append(&p, body, len);
    tg_buf_putc(&p, '}');
    int rc = tg_journal_append(api->journal, TG_JREC_ACCEPTED, id, p.data, p.len, cb, user);
    tg_buf_free(&p);
    return rc;
}

void tg_apij_note(tg_api *api, const char *id, int type, const char *payload, size_t len) {
    if (!api->journal) return;
    int rc = tg_journal_append(api->journal, type, id, payload, len, NULL, NULL);
    if (rc)
        tg_log_error("journal_append_failed", "request_id=%s type=%s error=%d", id,
                     tg_jrec_type_name(type), rc);
}

void tg_apij_end(tg_api *api, const char *id, int type, const char *code, const char *msg) {
    if (!api->journal) return;
    tg_buf p = TG_BUF_INIT;
    tg_buf_puts(&p, "{\"error\":{\"code\":");
    tg_buf_json_str(&p, code, strlen(code));
    tg_buf_puts(&p, ",\"message\":");
    tg_buf_json_str(&p, msg ? msg : "", msg ? strlen(msg) : 0);
    tg_buf_puts(&p, "}}");
    tg_apij_note(api, id, type, p.data, p.len);
    tg_buf_free(&p);
}

/* Collects the ids an earlier run left without a terminal state. */
typedef struct {
    tg_journal *j;
    char **ids;
    size_t n, cap;
} leftovers;

static int on_rec(void *user, const tg_jrec *r) {
    leftovers *l = user;
    if (r->type != TG_JREC_ACCEPTED) return 0;
    char id[TG_JREC_ID_MAX + 1];
    memcpy(id, r->id, r->id_len);
    id[r->id_len] = 0;
    tg_journal_info info;
    if (tg_journal_info_get(l->j, id, &info) != 0 || info.terminal) return 0;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->ids = realloc(l->ids, l->cap * sizeof *l->ids);
        if (!l->ids) abort();
    }
    l->ids[l->n] = strdup(id);
    if (!l->ids[l->n]) abort();
    l->n++;
    return 0;
}

static tg_jcrypt *g_key;

int tg_apij_open(tg_api *api) {
    const char *dir = getenv("TIDEGATE_JOURNAL_DIR");
    if (!dir || !*dir) return 0;
    char err[512];
    if (tg_jcrypt_load(getenv("TIDEGATE_JOURNAL_KEY_FILE"), getenv(TG_JCRYPT_ENV), &g_key, err,
                       sizeof err) != 0) {
        tg_log_error("startup_failed", "reason=\"%s\"", err);
        return -1;
    }
    tg_jfile_opts o = {.dir = dir, .key = g_key, .loop = api->loop};
    tg_jfile_report rep;
    api->journal = tg_jfile_open(&o, &rep, err, sizeof err);
    if (!api->journal) {
        tg_log_error("startup_failed", "reason=\"%s\"", err);
        tg_jcrypt_free(g_key);
        g_key = NULL;
        return -1;
    }
    /* Re-running a request needs the router's re-dispatch (not built yet):
     * until then an unfinished request ends FAILED, so it has exactly one
     * terminal state and a client polling for it gets an answer. */
    leftovers l = {api->journal, NULL, 0, 0};
    tg_journal_scan(api->journal, on_rec, &l);
    static const char k_fail[] =
        "{\"error\":{\"code\":\"gateway_restarted\",\"message\":\"the gateway stopped before "
        "this request finished; it was not re-run\"}}";
    for (size_t i = 0; i < l.n; i++) {
        if (tg_journal_append_sync(api->journal, TG_JREC_FAILED, l.ids[i], k_fail,
                                   sizeof k_fail - 1) != 0) {
            tg_log_error("startup_failed", "reason=\"journal: cannot close %s\"", l.ids[i]);
        }
        free(l.ids[i]);
    }
    free(l.ids);
    tg_log_info("journal_open",
                "dir=%s records=%llu requests=%llu unfinished=%zu torn_bytes=%llu encrypted=%s",
                dir, (unsigned long long)rep.records, (unsigned long long)rep.requests, l.n,
                (unsigned long long)rep.torn_bytes, g_key ? "yes" : "no");
    return 0;
}

void tg_apij_close(tg_api *api) {
    tg_journal_close(api->journal);
    api->journal = NULL;
    tg_jcrypt_free(g_key);
    g_key = NULL;
}
