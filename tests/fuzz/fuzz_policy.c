/* fuzz_policy: the routing policy loader (untrusted YAML from an operator's
 * file or a hot reload) and, when a policy loads, a decision and the writer
 * round trip (what the writer emits must load again). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[4096];
    rt_policy *p = rt_policy_load_mem((const char *)data, size, "fuzz.yaml", err, sizeof err);
    if (!p) return 0;
    rt_features f;
    memset(&f, 0, sizeof f);
    rt_health h;
    rt_health_init(&h);
    rt_health_set(&h, RT_H_BATTERY_PCT, 10);
    rt_decision d;
    for (int m = 0; m < RT_PMODE_COUNT; m++)
        rt_policy_decide(p, &f, &h, (rt_pmode)m, &d);
    tg_buf y = TG_BUF_INIT;
    rt_policy_write_yaml(p, rt_policy_weights(p), "fuzz", &y);
    rt_policy *q = rt_policy_load_mem(y.data, y.len, "rewritten.yaml", err, sizeof err);
    if (!q) abort(); /* the writer produced something the loader rejects */
    rt_policy_free(q);
    tg_buf_free(&y);
    rt_policy_free(p);
    return 0;
}
