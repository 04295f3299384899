/* request: tg_oai_request lifetime and the one OpenAI error fill. */
#include "router/request.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tg_oai_error_vset(tg_oai_error *e, int status, const char *type, const char *code,
                       const char *param, const char *fmt, va_list ap) {
    if (!e) return;
    e->status = status;
    snprintf(e->type, sizeof e->type, "%s", type ? type : "invalid_request_error");
    snprintf(e->code, sizeof e->code, "%s", code ? code : "");
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    vsnprintf(e->message, sizeof e->message, fmt, ap);
}

void tg_oai_error_set(tg_oai_error *e, int status, const char *type, const char *code,
                      const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    tg_oai_error_vset(e, status, type, code, param, fmt, ap);
    va_end(ap);
}

void tg_oai_request_free(tg_oai_request *r) {
    if (!r) return;
    free(r->model);
    for (size_t i = 0; i < r->n_msgs; i++) {
        free(r->msgs[i].content);
        free(r->msgs[i].tool_calls_json);
        free(r->msgs[i].tool_call_id);
    }
    free(r->msgs);
    for (size_t i = 0; i < r->n_stop; i++)
        free(r->stop[i]);
    free(r->stop);
    free(r->tools_json);
    free(r->tool_choice_name);
    free(r->user);
    free(r->rf_schema);
    free(r->raw_prompt);
    lfm_constraint_free(r->constraint);
    free(r->bias_tokens);
    free(r->bias_values);
    json_object_put(r->raw);
    free(r->assistant_prefix);
    memset(r, 0, sizeof *r);
}
