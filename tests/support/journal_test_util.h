/* Helpers shared by the journal unit tests: scratch directories under
 * TMPDIR (removed at the end), and records collected from a scan. */
#ifndef TG_JOURNAL_TEST_UTIL_H
#define TG_JOURNAL_TEST_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/journal/tg_journal.h"

static inline char *jt_tmpdir(void) {
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/tg-journal-test-XXXXXX", base && *base ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

/* rm -r of a flat directory (journals have no subdirectories). */
static inline void jt_rmdir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        for (struct dirent *de; (de = readdir(d));) {
            if (de->d_name[0] == '.') continue;
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static inline void jt_copydir(const char *from, const char *to) {
    mkdir(to, 0700);
    DIR *d = opendir(from);
    if (!d) return;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        char a[1024], b[1024];
        snprintf(a, sizeof a, "%s/%s", from, de->d_name);
        snprintf(b, sizeof b, "%s/%s", to, de->d_name);
        FILE *in = fopen(a, "rb"), *out = fopen(b, "wb");
        if (in && out) {
            char buf[65536];
            size_t n;
            while ((n = fread(buf, 1, sizeof buf, in)) > 0)
                fwrite(buf, 1, n, out);
        }
        if (in) fclose(in);
        if (out) fclose(out);
    }
    closedir(d);
}

/* One record as a flat string: "TYPE|id|ts|payload". */
typedef struct {
    char **v;
    size_t n, cap;
} jt_list;

static inline int jt_collect(void *user, const tg_jrec *r) {
    jt_list *l = user;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
    }
    size_t n = r->id_len + r->payload_len + 64;
    char *s = malloc(n);
    int k = snprintf(s, n, "%d|%.*s|%llu|", r->type, (int)r->id_len, r->id,
                     (unsigned long long)r->ts_us);
    memcpy(s + k, r->payload, r->payload_len);
    s[k + r->payload_len] = 0;
    l->v[l->n++] = s;
    return 0;
}

static inline void jt_list_free(jt_list *l) {
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static inline int jt_count_files(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *de; (de = readdir(d));) {
        size_t a = strlen(de->d_name), b = strlen(suffix);
        if (a >= b && !strcmp(de->d_name + a - b, suffix)) n++;
    }
    closedir(d);
    return n;
}

#endif
