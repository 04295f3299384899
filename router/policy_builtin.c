/* policy_builtin: policies/hybrid.yaml, compiled in (CMake writes its bytes
 * to hybrid_policy.inc), so the default policy does not depend on where the
 * binary runs from. */
#include <stdlib.h>

#include "router/policy.h"

static const unsigned char k_hybrid[] = {
#include "router/hybrid_policy.inc"
};

rt_policy *rt_policy_builtin_hybrid(void) {
    char err[2048];
    rt_policy *p = rt_policy_load_mem((const char *)k_hybrid, sizeof k_hybrid,
                                      "(built-in policies/hybrid.yaml)", err, sizeof err);
    /* The file is checked by the unit tests and `policy check` in CI. */
    if (!p) abort();
    return p;
}
