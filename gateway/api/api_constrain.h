/* api_constrain: what a request asks of the output's shape, as an engine
 * constraint (lfm_grammar.h) for the embedded engine.
 *
 *  - response_format / text.format json_object: any JSON object;
 *    json_schema: the schema compiled (a keyword outside the supported
 *    subset is a 400 naming it, code unsupported_schema_keyword).
 *  - tool_choice "required" or a named function: the output must be one
 *    LFM2 tool-call block, <|tool_call_start|>[{"name":..., "arguments":
 *    {...}}]<|tool_call_end|>, the arguments valid against that function's
 *    parameters schema; parallel_tool_calls false allows exactly one call.
 *
 * Forced tool calls win over a response_format (the output is a call).
 * The vocabulary index is built on first use and kept in the tg_api. */
#ifndef TG_API_CONSTRAIN_H
#define TG_API_CONSTRAIN_H

#include "engine/lfm_grammar.h"
#include "gateway/api/api_routes.h"
#include "gateway/api/openai_api.h"

/* Returns 0 with *out set (NULL when the request needs no constraint), or
 * -1 with *err filled (400). fmt_param names the format field in errors
 * ("response_format.json_schema.schema" or "text.format.schema"). */
int tg_api_constraint(tg_api *api, const tg_oai_request *r, const char *fmt_param,
                      lfm_constraint **out, tg_oai_error *err);

#endif
