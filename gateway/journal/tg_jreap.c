/* tg_jreap: deletes compacted segments off the writer's path. See tg_jreap.h. */
#include "gateway/journal/tg_jreap.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct item {
    struct item *next;
    char name[64];
} item;

struct tg_jreap {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int dirfd;
    bool stop;
    item *head, *tail;
};

static void *reap_main(void *arg) {
    tg_jreap *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->head && !r->stop)
            pthread_cond_wait(&r->cv, &r->mu);
        if (!r->head) break;
        item *list = r->head;
        r->head = r->tail = NULL;
        pthread_mutex_unlock(&r->mu);
        for (item *it = list, *nx; it; it = nx) {
            nx = it->next;
            unlinkat(r->dirfd, it->name, 0);
            free(it);
        }
        fsync(r->dirfd);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

tg_jreap *tg_jreap_start(int dirfd) {
    tg_jreap *r = calloc(1, sizeof *r);
    if (!r) abort();
    r->dirfd = dirfd;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_create(&r->thread, NULL, reap_main, r) != 0) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
        return NULL;
    }
    return r;
}

void tg_jreap_add(tg_jreap *r, const char *name) {
    item *it = calloc(1, sizeof *it);
    if (!it) abort();
    snprintf(it->name, sizeof it->name, "%s", name);
    pthread_mutex_lock(&r->mu);
    if (r->tail)
        r->tail->next = it;
    else
        r->head = it;
    r->tail = it;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

void tg_jreap_stop(tg_jreap *r) {
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    r->stop = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}
