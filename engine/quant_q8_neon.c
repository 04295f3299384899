/* quant_q8_neon: stub until the NEON kernels land. */
#include "engine/quant_q8.h"

const lq_q8set *lq_q8_neon(void) {
    return NULL;
}
