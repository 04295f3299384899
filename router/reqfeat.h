/* reqfeat: an OpenAI chat-completions request (as parsed JSON) -> the
 * complexity score's features. One function used by the live path (the
 * request's parsed body), `policy explain` (REQ.json) and `policy
 * calibrate` (labelled records, which may use "prompt" instead of
 * "messages"), so all three see the same features for the same request.
 *
 * Reads: messages[].role/content (string or text parts), prompt, tools
 * (count), response_format.type (json_object/json_schema -> json_schema),
 * max_tokens / max_completion_tokens. Anything else is ignored; wrong
 * shapes count as absent (the API layer has already rejected them on the
 * live path). */
#ifndef RT_REQFEAT_H
#define RT_REQFEAT_H

#include <json-c/json.h>

#include "router/score.h"

/* hint: -1 edge, +1 cloud, 0 none (the x-tidegate-hint header). */
void rt_reqfeat_extract(json_object *req, int hint, rt_features *out);

/* "edge" -> -1, "cloud" -> 1, anything else 0. */
int rt_reqfeat_hint(const char *header_value);

#endif
