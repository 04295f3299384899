/* tg_jzero: zeros ahead of the journal writer. See tg_jzero.h. */
#include "gateway/journal/tg_jzero.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/tg_log.h"

/* Small chunks, each written back at once: while zero pages are dirty, the
 * writer's fdatasync (which covers the whole file) would write them too. */
#define CHUNK    (256u << 10)
#define LEAD_MIN (256u << 10)
#define LEAD_MAX (8u << 20)

static uint8_t k_zeros[CHUNK]; /* never written: not const, so it costs no file space */

struct tg_jzero {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_idle;
    bool stop;
    uint64_t limit;
    /* The attached segment (fd < 0: none). */
    int fd;
    uint64_t base;  /* where its records start (the header's end) */
    uint64_t z_end; /* zeros durable below this (or records) */
    uint64_t w_end; /* the writer has claimed everything below this */
    /* The chunk in flight, if busy: [b_start, b_end); writing while its
     * zeros are being copied in (the only time a writer must not touch it:
     * after that, its own write simply lands on the cached zeros). */
    bool busy, writing;
    uint64_t b_start, b_end;
};

/* How far past the writer the zeros should reach: as far ahead as the
 * segment has taken so far, within [LEAD_MIN, LEAD_MAX]. */
static uint64_t target(const tg_jzero *z) {
    uint64_t taken = z->w_end - z->base;
    uint64_t lead = taken < LEAD_MIN ? LEAD_MIN : taken > LEAD_MAX ? LEAD_MAX : taken;
    uint64_t t = z->w_end + lead;
    return t < z->limit ? t : z->limit;
}

static void *zero_main(void *arg) {
    tg_jzero *z = arg;
    pthread_mutex_lock(&z->mu);
    for (;;) {
        while (!z->stop && (z->fd < 0 || z->z_end >= target(z)))
            pthread_cond_wait(&z->cv_work, &z->mu);
        if (z->stop) break;
        /* Never below the writer's end: those bytes are (or will be) records. */
        uint64_t start = z->z_end > z->w_end ? z->z_end : z->w_end;
        uint64_t end = target(z);
        if (end <= start) {
            z->z_end = start;
            continue;
        }
        if (end - start > CHUNK) end = start + CHUNK;
        z->busy = z->writing = true;
        z->b_start = start;
        z->b_end = end;
        int fd = z->fd;
        pthread_mutex_unlock(&z->mu);

        int err = 0;
        for (uint64_t off = start; off < end && !err;) {
            ssize_t w = pwrite(fd, k_zeros, (size_t)(end - off), (off_t)off);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0)
                err = w < 0 ? errno : EIO;
            else
                off += (uint64_t)w;
        }
        pthread_mutex_lock(&z->mu);
        z->writing = false;
        pthread_cond_broadcast(&z->cv_idle);
        pthread_mutex_unlock(&z->mu);
        /* Write the pages back now (they stay cached, so the writer's partial
         * page writes never read from disk), then make the size durable. */
        if (!err &&
            sync_file_range(fd, (off_t)start, (off_t)(end - start),
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                SYNC_FILE_RANGE_WAIT_AFTER) != 0 &&
            errno != ENOSYS)
            err = errno;
        if (!err && fdatasync(fd) != 0) err = errno;

        pthread_mutex_lock(&z->mu);
        z->busy = false;
        if (err) {
            /* Disk full or similar: the writer appends as before (and will
             * meet the same error itself if it is real). */
            tg_log_write(TG_LOG_WARN, "journal_zero_fill_failed", "error=\"%s\"", strerror(err));
            close(z->fd);
            z->fd = -1;
        } else {
            z->z_end = end;
        }
        pthread_cond_broadcast(&z->cv_idle);
    }
    pthread_mutex_unlock(&z->mu);
    return NULL;
}

tg_jzero *tg_jzero_start(uint64_t limit) {
    tg_jzero *z = calloc(1, sizeof *z);
    if (!z) abort();
    z->fd = -1;
    z->limit = limit;
    pthread_mutex_init(&z->mu, NULL);
    pthread_cond_init(&z->cv_work, NULL);
    pthread_cond_init(&z->cv_idle, NULL);
    if (pthread_create(&z->thread, NULL, zero_main, z) != 0) {
        pthread_mutex_destroy(&z->mu);
        pthread_cond_destroy(&z->cv_work);
        pthread_cond_destroy(&z->cv_idle);
        free(z);
        return NULL;
    }
    return z;
}

/* With mu held: waits until no zero write is in flight. */
static void wait_idle(tg_jzero *z) {
    while (z->busy)
        pthread_cond_wait(&z->cv_idle, &z->mu);
}

void tg_jzero_attach(tg_jzero *z, int fd, uint64_t end) {
    if (!z) return;
    pthread_mutex_lock(&z->mu);
    wait_idle(z);
    if (z->fd >= 0) close(z->fd);
    z->fd = fd >= 0 ? dup(fd) : -1;
    z->base = z->z_end = z->w_end = end;
    pthread_cond_signal(&z->cv_work);
    pthread_mutex_unlock(&z->mu);
}

void tg_jzero_detach(tg_jzero *z) {
    if (!z) return;
    pthread_mutex_lock(&z->mu);
    wait_idle(z);
    if (z->fd >= 0) close(z->fd);
    z->fd = -1;
    z->z_end = z->w_end = z->base = 0;
    pthread_mutex_unlock(&z->mu);
}

void tg_jzero_claim(tg_jzero *z, uint64_t off, uint64_t len) {
    if (!z) return;
    pthread_mutex_lock(&z->mu);
    /* Reserve first, so the helper's next chunk starts past this write;
     * then wait only while zeros are being copied into the range. */
    if (off + len > z->w_end) z->w_end = off + len;
    while (z->writing && off + len > z->b_start && off < z->b_end)
        pthread_cond_wait(&z->cv_idle, &z->mu);
    if (z->fd >= 0 && z->z_end < target(z)) pthread_cond_signal(&z->cv_work);
    pthread_mutex_unlock(&z->mu);
}

uint64_t tg_jzero_end(tg_jzero *z) {
    if (!z) return 0;
    pthread_mutex_lock(&z->mu);
    uint64_t e = z->fd >= 0 ? z->z_end : 0;
    pthread_mutex_unlock(&z->mu);
    return e;
}

bool tg_jzero_is_tail(const uint8_t *p, size_t n) {
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

void tg_jzero_stop(tg_jzero *z) {
    if (!z) return;
    pthread_mutex_lock(&z->mu);
    z->stop = true;
    pthread_cond_signal(&z->cv_work);
    pthread_mutex_unlock(&z->mu);
    pthread_join(z->thread, NULL);
    if (z->fd >= 0) close(z->fd);
    pthread_mutex_destroy(&z->mu);
    pthread_cond_destroy(&z->cv_work);
    pthread_cond_destroy(&z->cv_idle);
    free(z);
}
