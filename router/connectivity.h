/* connectivity: the connectivity mode, forced or derived.
 *
 * Modes: auto (derived), or forced by the operator (POST /admin/mode):
 * offline and edge-only keep every request off the network (cloud-bound
 * work goes to the edge); cloud-only keeps requests off the engine.
 *
 * In auto the link state is derived from real traffic and light probes:
 *   online   -> degraded  on a network-level failure (refused, timeout,
 *                         TLS, reset) or when a quarter of the recent cloud
 *                         outcomes failed
 *   degraded -> offline   after offline_after network failures in a row
 *                         with no success between
 *   offline  -> online    after online_after successes in a row (probes:
 *                         while offline no request touches the network)
 *   degraded -> online    after online_after successes in a row
 * The thresholds are the hysteresis: one lost packet never flips the mode.
 * An HTTP error (5xx, 429) is the upstream's fault, not the network's: it
 * counts as the network working.
 *
 * Pure state; time and outcomes come in as arguments. Loop thread only. */
#ifndef RT_CONNECTIVITY_H
#define RT_CONNECTIVITY_H

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    RT_CONN_AUTO = 0,
    RT_CONN_OFFLINE,
    RT_CONN_EDGE_ONLY,
    RT_CONN_CLOUD_ONLY
} rt_conn_mode;
/* The derived link state; same values as rt_pmode in router/policy.h (the
 * policy's input), so (rt_pmode)conn->link is the mode a policy decides with. */
typedef enum { RT_LINK_ONLINE = 0, RT_LINK_DEGRADED, RT_LINK_OFFLINE } rt_link;

#define RT_CONN_WINDOW 16

typedef struct rt_conn rt_conn;
typedef void (*rt_conn_hook)(void *user, const rt_conn *c, rt_link from, rt_link to);

struct rt_conn {
    rt_conn_mode mode;
    rt_link link;
    int offline_after, online_after;
    int fail_streak, ok_streak;
    uint8_t ring[RT_CONN_WINDOW]; /* 1 = network failure */
    int ring_n, ring_pos, ring_fail;
    uint64_t since_ms; /* when link last changed */
    uint64_t last_traffic_ms;
    uint64_t n_changes;
    rt_conn_hook hook;
    void *hook_user;
};

void rt_conn_init(rt_conn *c, rt_conn_mode mode, int offline_after, int online_after);
/* One cloud attempt's outcome (ok or a failure; network says whether the
 * failure is the network's) or one probe's. */
void rt_conn_observe(rt_conn *c, bool ok, bool network, uint64_t now_ms);
void rt_conn_set_mode(rt_conn *c, rt_conn_mode m, uint64_t now_ms);
/* What the mode allows right now. */
bool rt_conn_cloud_allowed(const rt_conn *c);
bool rt_conn_edge_allowed(const rt_conn *c);
/* Whether probes should run: auto and not online, or no cloud traffic for
 * idle_ms (so an unused link is still known). */
bool rt_conn_wants_probe(const rt_conn *c, uint64_t now_ms, uint64_t idle_ms);
/* The effective state's name: "online", "degraded", "offline" in auto;
 * the forced mode's name otherwise. */
const char *rt_conn_state_name(const rt_conn *c);
const char *rt_conn_mode_name(rt_conn_mode m);
const char *rt_link_name(rt_link l);
/* "auto" | "offline" | "edge-only" | "cloud-only" -> 0, else -1. */
int rt_conn_mode_parse(const char *s, rt_conn_mode *out);

#endif
