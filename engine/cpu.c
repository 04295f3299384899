/* cpu: physical core count for the default thread count. Matmul threads on
 * two hyperthreads of one core share its SIMD units and slow each other down,
 * so the default is one thread per physical core (what llama.cpp does too). */
#include "engine/cpu.h"

#include <sched.h>
#include <stdio.h>
#include <unistd.h>

/* A CPU counts when it is the first entry of its thread_siblings_list. */
static int first_sibling(int cpu) {
    char path[96];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list", cpu);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int first = -1;
    if (fscanf(f, "%d", &first) != 1) first = -1;
    fclose(f);
    return first == cpu;
}

int lfm_physical_cores(void) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    if (online < 1) online = 1;
    cpu_set_t set;
    int have_set = sched_getaffinity(0, sizeof set, &set) == 0;
    int cores = 0, allowed = 0;
    for (int c = 0; c < CPU_SETSIZE && c < 4096; c++) {
        if (have_set && !CPU_ISSET(c, &set)) continue;
        allowed++;
        int r = first_sibling(c);
        if (r < 0) {
            if (!have_set && c >= online) break;
            cores++; /* no topology: count it */
            continue;
        }
        cores += r;
        if (have_set && allowed >= CPU_COUNT(&set)) break;
    }
    if (cores < 1) cores = (int)online;
    return cores;
}
