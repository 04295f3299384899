#include "engine/lfm.h"

const char *lfm_strerror(int code) {
    switch (code) {
    case LFM_OK: return "ok";
    case LFM_EINVAL: return "invalid argument";
    case LFM_EIO: return "i/o error";
    case LFM_EFORMAT: return "malformed or unsupported model file";
    case LFM_ECTX: return "context length exceeded";
    case LFM_EFULL: return "queue full";
    case LFM_ENOMEM: return "out of memory";
    case LFM_ECANCELED: return "canceled";
    default: return "unknown error";
    }
}
