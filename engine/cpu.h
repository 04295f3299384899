/* cpu: host CPU facts the engine sizes itself by. */
#ifndef LFM_CPU_H
#define LFM_CPU_H

/* Physical cores this process may run on (hyperthread siblings counted
 * once); at least 1. */
int lfm_physical_cores(void);

#endif
