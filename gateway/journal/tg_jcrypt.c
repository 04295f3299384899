#include "gateway/journal/tg_jcrypt.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

struct tg_jcrypt {
    uint8_t key[32];
    uint32_t fp;
};

tg_jcrypt *tg_jcrypt_from_bytes(const uint8_t key[32]) {
    tg_jcrypt *c = calloc(1, sizeof *c);
    if (!c) abort();
    memcpy(c->key, key, 32);
    /* Domain-separated hash so the fingerprint says nothing useful about the key. */
    uint8_t md[EVP_MAX_MD_SIZE], in[23 + 32];
    memcpy(in, "tidegate-journal-key-v1", 23);
    memcpy(in + 23, key, 32);
    if (EVP_Digest(in, sizeof in, md, NULL, EVP_sha256(), NULL) != 1) abort();
    OPENSSL_cleanse(in, sizeof in);
    c->fp = (uint32_t)md[0] | (uint32_t)md[1] << 8 | (uint32_t)md[2] << 16 | (uint32_t)md[3] << 24;
    OPENSSL_cleanse(md, sizeof md);
    return c;
}

void tg_jcrypt_free(tg_jcrypt *c) {
    if (!c) return;
    OPENSSL_cleanse(c->key, sizeof c->key);
    free(c);
}

uint32_t tg_jcrypt_fingerprint(const tg_jcrypt *c) {
    return c->fp;
}

static int hexval(int ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    ch = tolower(ch);
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    return -1;
}

/* Parses exactly 64 hex digits (whitespace around them ignored). */
static int parse_hex_key(const char *s, size_t n, uint8_t key[32]) {
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (n != 64) return -1;
    for (size_t i = 0; i < 32; i++) {
        int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        key[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int tg_jcrypt_load(const char *key_file, const char *env_value, tg_jcrypt **out, char *err,
                   size_t errsz) {
    *out = NULL;
    uint8_t key[32];
    if (key_file && *key_file) {
        struct stat st;
        if (stat(key_file, &st) != 0) {
            snprintf(err, errsz, "journal key file %s: %s", key_file, strerror(errno));
            return -1;
        }
        if (st.st_mode & 077) {
            snprintf(err, errsz, "journal key file %s: readable by group or others (chmod 600)",
                     key_file);
            return -1;
        }
        tg_buf b = TG_BUF_INIT;
        if (tg_buf_read_file(&b, key_file) != 0) {
            snprintf(err, errsz, "journal key file %s: %s", key_file, strerror(errno));
            tg_buf_free(&b);
            return -1;
        }
        int rc = 0;
        if (b.len == 32)
            memcpy(key, b.data, 32);
        else if (parse_hex_key(b.data ? b.data : "", b.len, key) != 0)
            rc = -1;
        if (b.data) OPENSSL_cleanse(b.data, b.len);
        tg_buf_free(&b);
        if (rc) {
            snprintf(err, errsz, "journal key file %s: want 32 raw bytes or 64 hex digits",
                     key_file);
            return -1;
        }
    } else if (env_value && *env_value) {
        if (parse_hex_key(env_value, strlen(env_value), key) != 0) {
            snprintf(err, errsz, "%s: want 64 hex digits (a 256-bit key)", TG_JCRYPT_ENV);
            return -1;
        }
    } else {
        return 0;
    }
    *out = tg_jcrypt_from_bytes(key);
    OPENSSL_cleanse(key, sizeof key);
    return 0;
}

int tg_jcrypt_seal(const tg_jcrypt *c, const void *aad, size_t aad_len, const void *pt, size_t n,
                   tg_buf *out) {
    uint8_t nonce[12];
    if (RAND_bytes(nonce, sizeof nonce) != 1) return -1;
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    if (!x) return -1;
    tg_buf_reserve(out, n + TG_JCRYPT_OVERHEAD);
    uint8_t *dst = (uint8_t *)out->data + out->len;
    memcpy(dst, nonce, 12);
    int len = 0, fin = 0, ok = EVP_EncryptInit_ex(x, EVP_aes_256_gcm(), NULL, c->key, nonce) == 1;
    if (ok && aad_len) ok = EVP_EncryptUpdate(x, NULL, &len, aad, (int)aad_len) == 1;
    if (ok && n) ok = EVP_EncryptUpdate(x, dst + 12, &len, pt, (int)n) == 1;
    if (ok) ok = EVP_EncryptFinal_ex(x, dst + 12 + (n ? (size_t)len : 0), &fin) == 1;
    if (ok) ok = EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, 16, dst + 12 + n) == 1;
    EVP_CIPHER_CTX_free(x);
    if (!ok) return -1;
    out->len += n + TG_JCRYPT_OVERHEAD;
    out->data[out->len] = 0;
    return 0;
}

int tg_jcrypt_open(const tg_jcrypt *c, const void *aad, size_t aad_len, const uint8_t *in, size_t n,
                   tg_buf *out) {
    if (n < TG_JCRYPT_OVERHEAD) return -1;
    size_t m = n - TG_JCRYPT_OVERHEAD;
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    if (!x) return -1;
    tg_buf_reserve(out, m + 1);
    uint8_t *dst = (uint8_t *)out->data + out->len;
    int len = 0, fin = 0, ok = EVP_DecryptInit_ex(x, EVP_aes_256_gcm(), NULL, c->key, in) == 1;
    if (ok && aad_len) ok = EVP_DecryptUpdate(x, NULL, &len, aad, (int)aad_len) == 1;
    if (ok && m) ok = EVP_DecryptUpdate(x, dst, &len, in + 12, (int)m) == 1;
    if (ok) ok = EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, 16, (void *)(in + 12 + m)) == 1;
    if (ok) ok = EVP_DecryptFinal_ex(x, dst + (m ? (size_t)len : 0), &fin) == 1;
    EVP_CIPHER_CTX_free(x);
    if (!ok) {
        OPENSSL_cleanse(dst, m);
        return -1;
    }
    out->len += m;
    out->data[out->len] = 0;
    return 0;
}
