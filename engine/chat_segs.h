/* chat_segs.h: the chat template rendered as tagged segments (engine
 * internal; chat.c renders, chat_tokens.c tokenizes).
 *
 * Rendering produces one string plus a list of segments covering it, each
 * telling who owns those bytes:
 *   - CHAT_SEG_BOS / CHAT_SEG_MARK: a control marker the template itself
 *     writes (<|startoftext|>, <|im_start|>, <|im_end|>, tool list / call /
 *     response markers); the only bytes that may become control tokens;
 *   - CHAT_SEG_TEXT: other template text (role names, "\n", "List of tools: ",
 *     the brackets and separators of tool lists and calls);
 *   - CHAT_SEG_CONTENT: caller-provided text (message content, tool JSON,
 *     tool-call names, argument keys and values), never to be read as
 *     control tokens.
 * lfm_chat_render concatenates the text; lfm_chat_tokenize uses the tags. */
#ifndef LFM_CHAT_SEGS_H
#define LFM_CHAT_SEGS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/tg_buf.h"
#include "engine/lfm.h"

typedef enum { CHAT_SEG_BOS, CHAT_SEG_MARK, CHAT_SEG_TEXT, CHAT_SEG_CONTENT } chat_seg_kind;

typedef struct {
    size_t off, len; /* bytes of chat_segs.text */
    chat_seg_kind kind;
} chat_seg;

typedef struct {
    tg_buf text;   /* the whole rendering */
    chat_seg *seg; /* in order, back to back, covering text exactly */
    size_t n_seg, cap_seg;
} chat_segs;

#define CHAT_SEGS_INIT                                                                             \
    { TG_BUF_INIT, NULL, 0, 0 }

/* Renders like lfm_chat_render into *cs (which must be CHAT_SEGS_INIT or
 * cleared). On error *cs is left empty and err says why (LFM_EINVAL). */
int chat_render_segs(lfm_template_kind kind, const lfm_chat_msg *msgs, size_t n,
                     const char *tools_json, bool add_generation_prompt, chat_segs *cs, char *err,
                     size_t errlen);
void chat_segs_free(chat_segs *cs);

#endif
