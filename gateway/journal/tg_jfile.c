/* tg_jfile: the journal on local segment files. See tg_jfile.h for the
 * design; this file has four parts: segments on disk, recovery at open,
 * the writer thread (group commit, rotation, compaction), and the
 * tg_journal_ops entry points. */
#include "gateway/journal/tg_jfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/tg_log.h"
#include "gateway/journal/tg_jindex.h"
#include "gateway/journal/tg_jio.h"
#include "gateway/journal/tg_jreap.h"
#include "gateway/journal/tg_jzero.h"

#define DEFAULT_SEGMENT_BYTES (64ull << 20)
#define DEFAULT_RETENTION_S   86400ull
/* A record nobody waits for (DISPATCHED) goes with the next one somebody
 * waits for, or after this long: COMPLETED no longer queues behind it. */
#define LAZY_NS 5000000ull

/* One queued append, from enqueue until its batch is durable (or failed). */
typedef struct sync_wait {
    int done, status;
} sync_wait;

typedef struct pend {
    struct pend *next;
    tg_journal_done_cb cb;
    void *user;
    sync_wait *sw; /* blocking waiter, or NULL */
    int status;
    uint8_t type, id_len;
    char id[TG_JREC_ID_MAX + 1];
    uint64_t ts_us;
    uint64_t boff; /* offset within the batch */
    uint32_t size;
} pend;

typedef struct {
    uint64_t no;
    uint64_t end; /* trusted bytes (durable, checked) */
    bool sealed;  /* ends with its SEAL record */
} seginfo;

typedef struct {
    tg_journal base;
    char *dir;
    int dirfd, lockfd;
    uint64_t seg_max, retention_us;
    const tg_jcrypt *key;
    bool ro;
    bool no_sync; /* journal.fsync false: page cache only */
    uv_loop_t *loop;
    uv_async_t *async;
    uint64_t loop_pending; /* loop appends not yet called back (loop thread only) */

    /* Queue, guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    tg_buf q;
    pend *qhead, *qtail;
    pend *dhead, *dtail; /* durable (or failed), waiting for the loop */
    bool stop;
    size_t q_waited;     /* queued records someone waits for */
    uint64_t lazy_since; /* CLOCK_MONOTONIC ns of the oldest queued lazy record, or 0 */
    int failed;          /* sticky -errno once an fdatasync (or a repair) failed */
    pthread_t writer;
    bool writer_started;

    /* The segment being written, guarded by wmu (the writer's I/O). */
    pthread_mutex_t wmu;
    tg_jzero *zero; /* zeros ahead of the writer (NULL: plain appends) */
    tg_jreap *reap; /* deletes compacted segments (NULL: inline) */
    int fd;
    uint64_t seg_no, seg_size;

    /* Index and segment list, guarded by imu (readers vs the writer). */
    pthread_mutex_t imu;
    tg_jindex idx;
    seginfo *segs;
    size_t n_segs, cap_segs;
} jfile;

static uint64_t clock_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_us(void) {
    return clock_ns(CLOCK_REALTIME) / 1000u;
}

/* ---- segments on disk ---------------------------------------------------- */

static void segs_push(jfile *f, uint64_t no, uint64_t end) {
    if (f->n_segs == f->cap_segs) {
        f->cap_segs = f->cap_segs ? f->cap_segs * 2 : 16;
        f->segs = realloc(f->segs, f->cap_segs * sizeof *f->segs);
        if (!f->segs) abort();
    }
    f->segs[f->n_segs++] = (seginfo){no, end, false};
}

/* Appends the SEAL record to a segment at off and makes it durable. Only
 * then may a later segment exist: recovery treats a non-last segment
 * without its SEAL as cut short. Zeros written ahead (tg_jzero) are cut
 * off after it (durably or not: recovery reads zeros as the end anyway).
 * Returns the new size or -errno. */
static int64_t seg_seal(int fd, uint64_t off) {
    tg_buf b = TG_BUF_INIT;
    tg_jrec_encode(&b, NULL, TG_JREC_SEAL, "-", 1, 0, NULL, 0);
    int rc = tg_jio_write_all(fd, b.data, b.len, off);
    if (!rc && fdatasync(fd) != 0) rc = -errno;
    if (!rc && ftruncate(fd, (off_t)(off + b.len)) != 0) rc = -errno;
    int64_t end = rc ? rc : (int64_t)(off + b.len);
    tg_buf_free(&b);
    return end;
}

/* Creates segment no with its header, durable (file and directory entry). */
static int seg_create(jfile *f, uint64_t no) {
    char name[64];
    tg_jseg_name(name, sizeof name, no);
    int fd = openat(f->dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    uint8_t hdr[TG_JSEG_HDR];
    tg_jseg_header_write(hdr, no, f->key ? TG_JSEG_SEALED : 0,
                         f->key ? tg_jcrypt_fingerprint(f->key) : 0);
    int rc = fchmod(fd, 0600) == 0 ? 0 : -errno;
    if (!rc) rc = tg_jio_write_all(fd, hdr, sizeof hdr, 0);
    if (!rc && fdatasync(fd) != 0) rc = -errno;
    if (!rc && fsync(f->dirfd) != 0) rc = -errno;
    if (rc) {
        close(fd);
        return rc;
    }
    f->fd = fd;
    f->seg_no = no;
    f->seg_size = TG_JSEG_HDR;
    pthread_mutex_lock(&f->imu);
    segs_push(f, no, TG_JSEG_HDR);
    pthread_mutex_unlock(&f->imu);
    return 0;
}

/* ---- recovery ------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Renames segment no aside as <no>.tgj.bad. */
static void quarantine(jfile *f, uint64_t no) {
    char a[64], b[80];
    tg_jseg_name(a, sizeof a, no);
    snprintf(b, sizeof b, "%s.bad", a);
    if (renameat(f->dirfd, a, f->dirfd, b) != 0)
        tg_log_write(TG_LOG_ERROR, "journal_quarantine_failed", "segment=%s error=\"%s\"", a,
                     strerror(errno));
}

/* Reads every segment, rebuilds the index, repairs the tail (unless
 * read-only). Returns 0, or -1 with err set for what must not be repaired
 * automatically (a missing or wrong key, unreadable files). */
static int recover(jfile *f, tg_jfile_report *r, uint64_t *max_no, char *err, size_t errsz) {
    DIR *d = fdopendir(dup(f->dirfd));
    if (!d) {
        snprintf(err, errsz, "journal %s: %s", f->dir, strerror(errno));
        return -1;
    }
    uint64_t *nos = NULL;
    size_t n = 0, cap = 0;
    *max_no = 0;
    for (struct dirent *de; (de = readdir(d));) {
        bool bad;
        uint64_t no = tg_jseg_parse(de->d_name, &bad);
        if (!no) continue;
        if (no > *max_no) *max_no = no;
        if (bad) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            nos = realloc(nos, cap * sizeof *nos);
            if (!nos) abort();
        }
        nos[n++] = no;
    }
    closedir(d);
    if (n) qsort(nos, n, sizeof *nos, cmp_u64);

    int rc = 0;
    tg_buf buf = TG_BUF_INIT, scratch = TG_BUF_INIT;
    for (size_t i = 0; i < n && !rc; i++) {
        char name[64];
        tg_jseg_name(name, sizeof name, nos[i]);
        int fd = openat(f->dirfd, name, O_RDONLY | O_CLOEXEC);
        tg_buf_clear(&buf);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            snprintf(err, errsz, "journal %s/%s: %s", f->dir, name, strerror(errno));
            if (fd >= 0) close(fd);
            rc = -1;
            break;
        }
        tg_buf_reserve(&buf, (size_t)st.st_size + 1);
        buf.len = tg_jio_read_at(fd, buf.data, (size_t)st.st_size, 0);
        close(fd);
        const uint8_t *p = (const uint8_t *)buf.data;
        uint64_t hno = 0;
        uint32_t hflags = 0, hfp = 0;
        uint64_t bad_off = 0;
        bool bad = false, is_short = false;
        if (buf.len < TG_JSEG_HDR || tg_jseg_header_read(p, &hno, &hflags, &hfp) != 0 ||
            hno != nos[i]) {
            bad = true;
            is_short = buf.len < TG_JSEG_HDR;
        } else if (hflags & TG_JSEG_SEALED) {
            if (!f->key) {
                snprintf(err, errsz,
                         "journal %s/%s is encrypted: give its key (%s or journal.key_file)",
                         f->dir, name, TG_JCRYPT_ENV);
                rc = -1;
                break;
            }
            if (hfp != tg_jcrypt_fingerprint(f->key)) {
                snprintf(err, errsz, "journal %s/%s was encrypted with another key", f->dir, name);
                rc = -1;
                break;
            }
        }
        uint64_t pos = TG_JSEG_HDR;
        bool sealed = false;
        while (!bad && pos < buf.len) {
            tg_jrec rec;
            tg_jrec_status s = tg_jrec_decode(p + pos, buf.len - pos, f->key, &scratch, &rec);
            if (s != TG_JREC_OK || sealed) {
                if (tg_jzero_is_tail(p + pos, buf.len - pos)) {
                    /* Zeros written ahead that no record reached: a clean end
                     * (cut off here, or by the SEAL below). */
                    if (!f->ro && sealed) tg_jio_truncate(f->dirfd, name, pos);
                    break;
                }
                bad = true; /* also: anything after a SEAL */
                is_short = s == TG_JREC_SHORT;
                bad_off = pos;
                break;
            }
            if (rec.type == TG_JREC_SEAL) {
                sealed = true;
                pos += rec.size;
                continue;
            }
            if (tg_jindex_add(&f->idx, rec.type, rec.id, rec.id_len, rec.ts_us, nos[i], pos,
                              (uint32_t)rec.size) != 0)
                r->orphans++;
            r->records++;
            pos += rec.size;
        }
        if (!r->segments) r->first_seg = nos[i];
        r->segments++;
        if (!bad && !sealed && i + 1 < n) {
            /* A segment with successors ends with its SEAL: this one was cut. */
            bad = is_short = true;
            bad_off = pos;
        }
        if (!bad) {
            segs_push(f, nos[i], pos);
            f->segs[f->n_segs - 1].sealed = sealed;
            continue;
        }
        /* The first bad record: nothing after it is trusted. */
        r->bad_seg = nos[i];
        r->bad_off = bad_off;
        r->torn_bytes = buf.len - bad_off;
        r->bad_is_short = is_short;
        r->after_bad_segs = n - i - 1;
        if (bad_off == 0) {
            /* A header that never became durable (a crash while rotating) or was damaged. */
            if (!f->ro) {
                if (i + 1 == n && is_short)
                    unlinkat(f->dirfd, name, 0);
                else
                    quarantine(f, nos[i]);
            }
        } else {
            segs_push(f, nos[i], bad_off);
            if (!f->ro) {
                int wfd = openat(f->dirfd, name, O_WRONLY | O_CLOEXEC);
                if (wfd < 0 || ftruncate(wfd, (off_t)bad_off) != 0 || fdatasync(wfd) != 0) {
                    snprintf(err, errsz, "journal %s/%s: cannot cut the torn tail: %s", f->dir,
                             name, strerror(errno));
                    rc = -1;
                }
                if (wfd >= 0) close(wfd);
                tg_log_write(TG_LOG_WARN, "journal_tail_cut",
                             "segment=%s offset=%" PRIu64 " bytes=%" PRIu64 " torn=%s", name,
                             bad_off, r->torn_bytes, is_short ? "true" : "false");
            }
        }
        if (!f->ro && !rc) {
            for (size_t k = i + 1; k < n; k++)
                quarantine(f, nos[k]);
            if (fsync(f->dirfd) != 0) rc = -1;
        }
        break;
    }
    /* Seal the last kept segment before a new one is created after it. */
    if (!f->ro && !rc && f->n_segs && !f->segs[f->n_segs - 1].sealed) {
        seginfo *s = &f->segs[f->n_segs - 1];
        char name[64];
        tg_jseg_name(name, sizeof name, s->no);
        int wfd = openat(f->dirfd, name, O_WRONLY | O_CLOEXEC);
        int64_t end = wfd >= 0 ? seg_seal(wfd, s->end) : -errno;
        if (wfd >= 0) close(wfd);
        if (end < 0) {
            snprintf(err, errsz, "journal %s/%s: cannot seal: %s", f->dir, name,
                     strerror((int)-end));
            rc = -1;
        } else {
            s->end = (uint64_t)end;
            s->sealed = true;
        }
    }
    tg_buf_free(&buf);
    tg_buf_free(&scratch);
    free(nos);
    r->requests = f->idx.count;
    return rc;
}

/* ---- writer thread ------------------------------------------------------- */

static int compact_locked(jfile *f, uint64_t now, tg_jreap *reap) {
    uint64_t older = now > f->retention_us ? now - f->retention_us : 0;
    pthread_mutex_lock(&f->imu);
    uint64_t first = f->n_segs ? f->segs[0].no : 0;
    uint64_t cut = first ? tg_jindex_compact_cut(&f->idx, older, first, f->seg_no) : 0;
    size_t k = 0;
    while (k < f->n_segs && f->segs[k].no <= cut)
        k++;
    uint64_t *gone = k ? malloc(k * sizeof *gone) : NULL;
    if (k) {
        for (size_t i = 0; i < k; i++)
            gone[i] = f->segs[i].no;
        tg_jindex_drop_through(&f->idx, cut);
        memmove(f->segs, f->segs + k, (f->n_segs - k) * sizeof *f->segs);
        f->n_segs -= k;
    }
    pthread_mutex_unlock(&f->imu);
    for (size_t i = 0; i < k; i++) {
        char name[64];
        tg_jseg_name(name, sizeof name, gone[i]);
        if (reap)
            tg_jreap_add(reap, name);
        else
            unlinkat(f->dirfd, name, 0);
    }
    if (k && !reap) fsync(f->dirfd);
    free(gone);
    return (int)k;
}

static int rotate_locked(jfile *f) {
    if (f->fd < 0) return -EIO;
    tg_jzero_detach(f->zero);
    int64_t end = seg_seal(f->fd, f->seg_size);
    close(f->fd);
    f->fd = -1;
    if (end < 0) return (int)end;
    pthread_mutex_lock(&f->imu);
    f->segs[f->n_segs - 1].end = (uint64_t)end;
    f->segs[f->n_segs - 1].sealed = true;
    pthread_mutex_unlock(&f->imu);
    int rc = seg_create(f, f->seg_no + 1);
    if (!rc) tg_jzero_attach(f->zero, f->fd, f->seg_size);
    return rc;
}

/* Writes one batch and makes it durable. *sticky says the journal cannot
 * go on (the state of the file is no longer known). */
static int write_batch(jfile *f, const tg_buf *b, pend *list, bool *sticky) {
    *sticky = false;
    pthread_mutex_lock(&f->wmu);
    int rc = 0;
    if (f->fd < 0) {
        rc = -EIO;
        *sticky = true;
    } else if (f->seg_size > TG_JSEG_HDR && f->seg_size + b->len > f->seg_max) {
        rc = rotate_locked(f);
        if (rc)
            *sticky = true;
        else
            compact_locked(f, now_us(), f->reap); /* unlinks off this path */
    }
    uint64_t off0 = f->seg_size;
    if (!rc) {
        tg_jzero_claim(f->zero, off0, b->len);
        rc = tg_jio_write_all(f->fd, b->data, b->len, off0);
        if (rc) {
            /* Cut a partial write off so the next batch starts on a record boundary. */
            tg_jzero_detach(f->zero);
            if (ftruncate(f->fd, (off_t)off0) != 0 ||
                !(rc == -ENOSPC || rc == -EDQUOT || rc == -EFBIG))
                *sticky = true;
            else
                tg_jzero_attach(f->zero, f->fd, off0);
        } else if (!f->no_sync && fdatasync(f->fd) != 0) {
            rc = errno ? -errno : -EIO;
            *sticky = true; /* the kernel may have dropped the pages: never retry */
        }
    }
    if (!rc) {
        f->seg_size += b->len;
        pthread_mutex_lock(&f->imu);
        for (pend *p = list; p; p = p->next)
            tg_jindex_add(&f->idx, p->type, p->id, p->id_len, p->ts_us, f->seg_no, off0 + p->boff,
                          p->size);
        f->segs[f->n_segs - 1].end = f->seg_size;
        pthread_mutex_unlock(&f->imu);
    }
    pthread_mutex_unlock(&f->wmu);
    return rc;
}

static void *writer_main(void *arg) {
    jfile *f = arg;
    tg_buf batch = TG_BUF_INIT;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (!f->stop && (!f->qhead || !f->q_waited)) {
            if (!f->qhead) {
                pthread_cond_wait(&f->cv_work, &f->mu);
                continue;
            }
            /* Only lazy records: wait for company, at most LAZY_NS. */
            uint64_t due = f->lazy_since + LAZY_NS;
            if (clock_ns(CLOCK_MONOTONIC) >= due) break;
            struct timespec ts = {(time_t)(due / 1000000000u), (long)(due % 1000000000u)};
            pthread_cond_timedwait(&f->cv_work, &f->mu, &ts);
        }
        if (!f->qhead) break;
        f->q_waited = 0;
        f->lazy_since = 0;
        tg_buf t = batch;
        batch = f->q;
        f->q = t;
        pend *list = f->qhead;
        f->qhead = f->qtail = NULL;
        int st = f->failed;
        pthread_mutex_unlock(&f->mu);

        bool sticky = false;
        if (!st) st = write_batch(f, &batch, list, &sticky);
        tg_buf_clear(&batch);
        if (st)
            tg_log_write(TG_LOG_ERROR, "journal_write_failed", "error=\"%s\" sticky=%s",
                         strerror(-st), sticky ? "true" : "false");

        pthread_mutex_lock(&f->mu);
        if (sticky && !f->failed) f->failed = st;
        bool to_loop = false;
        for (pend *p = list, *nx; p; p = nx) {
            nx = p->next;
            p->next = NULL;
            p->status = st;
            if (p->sw) {
                p->sw->status = st;
                p->sw->done = 1;
                free(p);
            } else if (!p->cb) {
                free(p); /* fire and forget */
            } else {
                if (f->dtail)
                    f->dtail->next = p;
                else
                    f->dhead = p;
                f->dtail = p;
                to_loop = true;
            }
        }
        pthread_cond_broadcast(&f->cv_done);
        if (to_loop && f->async) uv_async_send(f->async);
    }
    pthread_mutex_unlock(&f->mu);
    tg_buf_free(&batch);
    return NULL;
}

static void run_done(jfile *f) {
    pthread_mutex_lock(&f->mu);
    pend *p = f->dhead;
    f->dhead = f->dtail = NULL;
    pthread_mutex_unlock(&f->mu);
    for (pend *nx; p; p = nx) {
        nx = p->next;
        /* The async handle keeps the loop alive only while appends wait. */
        if (--f->loop_pending == 0 && f->async) uv_unref((uv_handle_t *)f->async);
        if (p->cb) p->cb(p->user, p->status);
        free(p);
    }
}

static void on_async(uv_async_t *h) {
    run_done(h->data);
}

/* ---- tg_journal_ops ------------------------------------------------------ */

static int enqueue(jfile *f, int type, const char *id, const void *payload, size_t len,
                   tg_journal_done_cb cb, void *user, sync_wait *sw) {
    size_t id_len = id ? strlen(id) : 0;
    if (f->ro) return -EROFS;
    if (id_len == 0 || id_len > TG_JREC_ID_MAX || type < 1 || type >= TG_JREC_SEAL) return -EINVAL;
    if (cb && !f->async) return -EINVAL;
    uint64_t ts = now_us();
    tg_buf rec = TG_BUF_INIT;
    if (tg_jrec_encode(&rec, f->key, type, id, id_len, ts, payload, len) != 0) {
        tg_buf_free(&rec);
        return -EMSGSIZE;
    }
    pend *p = calloc(1, sizeof *p);
    if (!p) abort();
    p->cb = cb;
    p->user = user;
    p->sw = sw;
    p->type = (uint8_t)type;
    p->id_len = (uint8_t)id_len;
    memcpy(p->id, id, id_len);
    p->ts_us = ts;
    p->size = (uint32_t)rec.len;
    pthread_mutex_lock(&f->mu);
    int rc = f->failed ? f->failed : f->stop ? -ESHUTDOWN : 0;
    if (!rc) {
        p->boff = f->q.len;
        tg_buf_append(&f->q, rec.data, rec.len);
        if (f->qtail)
            f->qtail->next = p;
        else
            f->qhead = p;
        f->qtail = p;
        if (cb || sw) {
            if (f->q_waited++ == 0) pthread_cond_signal(&f->cv_work);
        } else if (!f->lazy_since) {
            f->lazy_since = clock_ns(CLOCK_MONOTONIC); /* the writer starts its timed wait */
            pthread_cond_signal(&f->cv_work);
        }
        if (sw)
            while (!sw->done)
                pthread_cond_wait(&f->cv_done, &f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    if (rc)
        free(p);
    else if (cb && f->loop_pending++ == 0)
        uv_ref((uv_handle_t *)f->async);
    tg_buf_free(&rec);
    return rc ? rc : sw ? sw->status : 0;
}

static int jf_append(tg_journal *j, int type, const char *id, const void *payload, size_t len,
                     tg_journal_done_cb cb, void *user) {
    return enqueue((jfile *)j, type, id, payload, len, cb, user, NULL);
}

static int jf_append_sync(tg_journal *j, int type, const char *id, const void *payload,
                          size_t len) {
    sync_wait sw = {0, 0};
    return enqueue((jfile *)j, type, id, payload, len, NULL, NULL, &sw);
}

static int jf_info(tg_journal *j, const char *id, tg_journal_info *out) {
    jfile *f = (jfile *)j;
    pthread_mutex_lock(&f->imu);
    tg_jentry *e = tg_jindex_find(&f->idx, id, strlen(id));
    if (e) {
        out->state = e->state;
        out->terminal = e->n_terminal > 0;
        out->created_us = e->created_us;
        out->updated_us = e->updated_us;
        out->n_records = e->n_locs;
    }
    pthread_mutex_unlock(&f->imu);
    return e ? 0 : -ENOENT;
}

/* Reads and checks the record at (seg, off); fd caches the open segment. */
static int read_at(jfile *f, uint64_t seg, uint64_t off, uint32_t size, int *fd, uint64_t *fd_seg,
                   tg_buf *raw, tg_buf *scratch, tg_jrec *rec) {
    if (*fd < 0 || *fd_seg != seg) {
        if (*fd >= 0) close(*fd);
        char name[64];
        tg_jseg_name(name, sizeof name, seg);
        *fd = openat(f->dirfd, name, O_RDONLY | O_CLOEXEC);
        *fd_seg = seg;
        if (*fd < 0) return -errno;
    }
    tg_buf_clear(raw);
    tg_buf_reserve(raw, size + 1);
    if (tg_jio_read_at(*fd, raw->data, size, off) != size) return -EIO;
    raw->len = size;
    if (tg_jrec_decode((const uint8_t *)raw->data, size, f->key, scratch, rec) != TG_JREC_OK ||
        rec->size != size)
        return -EIO;
    return 0;
}

static int jf_read(tg_journal *j, const char *id, tg_journal_rec_cb cb, void *user) {
    jfile *f = (jfile *)j;
    pthread_mutex_lock(&f->imu);
    tg_jentry *e = tg_jindex_find(&f->idx, id, strlen(id));
    tg_jloc *locs = NULL;
    uint32_t n = 0;
    if (e) {
        n = e->n_locs;
        locs = malloc(n * sizeof *locs);
        if (!locs) abort();
        memcpy(locs, e->locs, n * sizeof *locs);
    }
    pthread_mutex_unlock(&f->imu);
    if (!e) return -ENOENT;
    int fd = -1, rc = 0;
    uint64_t fd_seg = 0;
    tg_buf raw = TG_BUF_INIT, scratch = TG_BUF_INIT;
    for (uint32_t i = 0; i < n && !rc; i++) {
        tg_jrec rec;
        rc = read_at(f, locs[i].seg, locs[i].off, locs[i].size, &fd, &fd_seg, &raw, &scratch, &rec);
        if (!rc) rc = cb(user, &rec);
    }
    if (fd >= 0) close(fd);
    tg_buf_free(&raw);
    tg_buf_free(&scratch);
    free(locs);
    return rc;
}

static int jf_scan(tg_journal *j, tg_journal_rec_cb cb, void *user) {
    jfile *f = (jfile *)j;
    pthread_mutex_lock(&f->imu);
    size_t n = f->n_segs;
    seginfo *segs = malloc((n ? n : 1) * sizeof *segs);
    if (!segs) abort();
    if (n) memcpy(segs, f->segs, n * sizeof *segs);
    pthread_mutex_unlock(&f->imu);
    int rc = 0;
    tg_buf buf = TG_BUF_INIT, scratch = TG_BUF_INIT;
    for (size_t i = 0; i < n && !rc; i++) {
        char name[64];
        tg_jseg_name(name, sizeof name, segs[i].no);
        int fd = openat(f->dirfd, name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue; /* compacted meanwhile */
        tg_buf_clear(&buf);
        tg_buf_reserve(&buf, segs[i].end + 1);
        size_t got = tg_jio_read_at(fd, buf.data, segs[i].end, 0);
        close(fd);
        if (got != segs[i].end) {
            rc = -EIO;
            break;
        }
        for (uint64_t pos = TG_JSEG_HDR; pos < got && !rc;) {
            tg_jrec rec;
            if (tg_jrec_decode((const uint8_t *)buf.data + pos, got - pos, f->key, &scratch,
                               &rec) != TG_JREC_OK) {
                rc = -EIO;
                break;
            }
            if (rec.type != TG_JREC_SEAL) rc = cb(user, &rec);
            pos += rec.size;
        }
    }
    tg_buf_free(&buf);
    tg_buf_free(&scratch);
    free(segs);
    return rc;
}

static void free_async(uv_handle_t *h) {
    free(h);
}

static void jf_close(tg_journal *j) {
    jfile *f = (jfile *)j;
    if (f->writer_started) {
        pthread_mutex_lock(&f->mu);
        f->stop = true;
        pthread_cond_signal(&f->cv_work);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->writer, NULL);
    }
    if (f->async) {
        run_done(f);
        uv_close((uv_handle_t *)f->async, free_async);
    }
    tg_jzero_stop(f->zero);
    tg_jreap_stop(f->reap);
    /* A clean stop seals the segment (a crash leaves it for recovery to seal). */
    if (f->fd >= 0 && !f->failed) seg_seal(f->fd, f->seg_size);
    if (f->fd >= 0) close(f->fd);
    if (f->lockfd >= 0) close(f->lockfd);
    if (f->dirfd >= 0) close(f->dirfd);
    tg_jindex_free(&f->idx);
    tg_buf_free(&f->q);
    pthread_mutex_destroy(&f->mu);
    pthread_mutex_destroy(&f->wmu);
    pthread_mutex_destroy(&f->imu);
    pthread_cond_destroy(&f->cv_work);
    pthread_cond_destroy(&f->cv_done);
    free(f->segs);
    free(f->dir);
    free(f);
}

static const tg_journal_ops k_ops = {jf_append, jf_append_sync, jf_info,
                                     jf_read,   jf_scan,        jf_close};

/* ---- open ---------------------------------------------------------------- */

tg_journal *tg_jfile_open(const tg_jfile_opts *o, tg_jfile_report *report, char *err,
                          size_t errsz) {
    tg_jfile_report r0;
    tg_jfile_report *r = report ? report : &r0;
    memset(r, 0, sizeof *r);
    if (!o->dir || !*o->dir) {
        snprintf(err, errsz, "journal: no directory given");
        return NULL;
    }
    jfile *f = calloc(1, sizeof *f);
    if (!f) abort();
    f->base.ops = &k_ops;
    f->dir = strdup(o->dir);
    if (!f->dir) abort();
    f->dirfd = f->lockfd = f->fd = -1;
    f->seg_max = o->segment_bytes ? o->segment_bytes : DEFAULT_SEGMENT_BYTES;
    f->retention_us = (o->retention_s ? o->retention_s : DEFAULT_RETENTION_S) * 1000000ull;
    f->key = o->key;
    f->ro = o->read_only;
    f->no_sync = o->no_sync;
    f->loop = o->loop;
    pthread_mutex_init(&f->mu, NULL);
    pthread_mutex_init(&f->wmu, NULL);
    pthread_mutex_init(&f->imu, NULL);
    pthread_condattr_t ca; /* LAZY_NS is waited for on the monotonic clock */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv_work, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&f->cv_done, NULL);
    tg_jindex_init(&f->idx);

    if (!f->ro && tg_jio_mkdirs(o->dir) != 0) {
        snprintf(err, errsz, "journal %s: cannot create: %s", o->dir, strerror(errno));
        goto fail;
    }
    f->dirfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (f->dirfd < 0) {
        snprintf(err, errsz, "journal %s: %s", o->dir, strerror(errno));
        goto fail;
    }
    if (!f->ro) {
        f->lockfd = openat(f->dirfd, "LOCK", O_CREAT | O_RDWR | O_CLOEXEC, 0600);
        if (f->lockfd < 0) {
            snprintf(err, errsz, "journal %s/LOCK: %s", o->dir, strerror(errno));
            goto fail;
        }
        if (flock(f->lockfd, LOCK_EX | LOCK_NB) != 0) {
            snprintf(err, errsz, "journal %s is in use by another process", o->dir);
            goto fail;
        }
    }
    uint64_t max_no = 0;
    if (recover(f, r, &max_no, err, errsz) != 0) goto fail;
    if (f->ro) return &f->base;

    /* Appends go to a fresh segment: what recovery kept stays as it is. */
    int rc = seg_create(f, max_no + 1);
    if (rc) {
        snprintf(err, errsz, "journal %s: cannot create a segment: %s", o->dir, strerror(-rc));
        goto fail;
    }
    f->reap = tg_jreap_start(f->dirfd);
    /* Zeros ahead only pay where the writer fdatasyncs. */
    if (!f->no_sync && (f->zero = tg_jzero_start(f->seg_max)))
        tg_jzero_attach(f->zero, f->fd, f->seg_size);
    if (f->loop) {
        f->async = calloc(1, sizeof *f->async);
        if (!f->async) abort();
        uv_async_init(f->loop, f->async, on_async);
        f->async->data = f;
        uv_unref((uv_handle_t *)f->async);
    }
    if (pthread_create(&f->writer, NULL, writer_main, f) != 0) {
        snprintf(err, errsz, "journal: cannot start the writer thread");
        goto fail;
    }
    f->writer_started = true;
    return &f->base;
fail:
    jf_close(&f->base);
    return NULL;
}

int tg_jfile_compact(tg_journal *j, uint64_t now) {
    jfile *f = (jfile *)j;
    pthread_mutex_lock(&f->wmu);
    int n = compact_locked(f, now, NULL);
    pthread_mutex_unlock(&f->wmu);
    return n;
}

int tg_jfile_rotate(tg_journal *j) {
    jfile *f = (jfile *)j;
    pthread_mutex_lock(&f->wmu);
    int rc = rotate_locked(f);
    pthread_mutex_unlock(&f->wmu);
    return rc;
}
