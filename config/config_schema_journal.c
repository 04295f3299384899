/* config_schema_journal: the `journal:` keys, in a table of their own (like
 * routing's) so the journal does not edit the core table. */
#include <stddef.h>
#include <stdlib.h>

#include "common/tg_str.h"
#include "config/config_schema.h"

#define OFF(f) offsetof(tg_config, f)

const tg_config_schema_key tg_config_journal_keys[] = {
    {"journal", NULL, TG_CK_SECTION, 0, 0, 0, 0, NULL, "section",
     "request journal: every accepted request durable before it runs"},
    {"journal.enabled", "TIDEGATE_JOURNAL", TG_CK_BOOL, OFF(journal.enabled), 0, 0, 0, NULL,
     "boolean", "on by default; off = no ids to poll, no idempotency, nothing survives a crash"},
    {"journal.dir", "TIDEGATE_JOURNAL_DIR", TG_CK_PATH, OFF(journal.dir), 0, 0, 0, NULL, "path",
     "segment directory (serve --journal-dir); null = $XDG_STATE_HOME/tidegate, else "
     "~/.local/state/tidegate"},
    {"journal.fsync", "TIDEGATE_JOURNAL_FSYNC", TG_CK_BOOL, OFF(journal.fsync), 0, 0, 0, NULL,
     "boolean", "fdatasync each batch (group commit); false survives a process crash only"},
    {"journal.segment_size", "TIDEGATE_JOURNAL_SEGMENT_SIZE", TG_CK_SIZE,
     OFF(journal.segment_bytes), 0, 64 << 10, 1LL << 32, NULL, "size 64KiB..4GiB",
     "a new segment file starts past this size"},
    {"journal.retention_s", "TIDEGATE_JOURNAL_RETENTION_S", TG_CK_INT, OFF(journal.retention_s), 0,
     1, 31536000, NULL, "seconds 1..31536000",
     "finished requests, their results and idempotency keys are kept this long (default 24 h)"},
    {"journal.key_env", NULL, TG_CK_STR, OFF(journal.key_env), 0, 0, 0, NULL, "string",
     "variable holding a 64-hex AES-256-GCM key (null = TIDEGATE_JOURNAL_KEY); unset = plaintext"},
    {"journal.key_file", "TIDEGATE_JOURNAL_KEY_FILE", TG_CK_PATH, OFF(journal.key_file), 0, 0, 0,
     NULL, "path", "0600 file with the key (32 raw bytes or 64 hex); wins over key_env"},
};
const size_t tg_config_journal_nkeys =
    sizeof tg_config_journal_keys / sizeof tg_config_journal_keys[0];

void tg_config_journal_defaults(tg_config *cfg) {
    tg_config_journal *j = &cfg->journal;
    j->enabled = 1;
    j->dir = NULL;
    j->fsync = 1;
    j->segment_bytes = 64u << 20;
    j->retention_s = 86400;
    j->key_env = NULL;
    j->key_file = NULL;
}

void tg_config_journal_free(tg_config *cfg) {
    tg_config_journal *j = &cfg->journal;
    free(j->dir);
    free(j->key_env);
    free(j->key_file);
    j->dir = j->key_env = j->key_file = NULL;
}

void tg_config_journal_copy(tg_config *dst, const tg_config *src) {
    dst->journal.dir = tg_xstrdup(src->journal.dir);
    dst->journal.key_env = tg_xstrdup(src->journal.key_env);
    dst->journal.key_file = tg_xstrdup(src->journal.key_file);
}
