/* connectivity: see connectivity.h. */
#include "router/connectivity.h"

#include <string.h>

static void go(rt_conn *c, rt_link to, uint64_t now_ms) {
    if (c->link == to) return;
    rt_link from = c->link;
    c->link = to;
    c->since_ms = now_ms;
    c->n_changes++;
    if (to == RT_LINK_ONLINE) c->ring_n = c->ring_pos = c->ring_fail = 0;
    if (c->hook) c->hook(c->hook_user, c, from, to);
}

void rt_conn_init(rt_conn *c, rt_conn_mode mode, int offline_after, int online_after) {
    rt_conn_hook hook = c->hook;
    void *user = c->hook_user;
    memset(c, 0, sizeof *c);
    c->hook = hook;
    c->hook_user = user;
    c->mode = mode;
    c->offline_after = offline_after > 0 ? offline_after : 1;
    c->online_after = online_after > 0 ? online_after : 1;
    c->link = RT_LINK_ONLINE;
}

void rt_conn_observe(rt_conn *c, bool ok, bool network, uint64_t now_ms) {
    c->last_traffic_ms = now_ms;
    int fail = !ok && network;
    if (c->ring_n == RT_CONN_WINDOW)
        c->ring_fail -= c->ring[c->ring_pos];
    else
        c->ring_n++;
    c->ring[c->ring_pos] = (uint8_t)fail;
    c->ring_fail += fail;
    c->ring_pos = (c->ring_pos + 1) % RT_CONN_WINDOW;
    if (fail) {
        c->ok_streak = 0;
        c->fail_streak++;
        if (c->fail_streak >= c->offline_after)
            go(c, RT_LINK_OFFLINE, now_ms);
        else if (c->link == RT_LINK_ONLINE)
            go(c, RT_LINK_DEGRADED, now_ms);
        return;
    }
    c->fail_streak = 0;
    c->ok_streak++;
    if (c->link != RT_LINK_ONLINE && c->ok_streak >= c->online_after) {
        go(c, RT_LINK_ONLINE, now_ms);
        return;
    }
    if (c->link == RT_LINK_ONLINE && c->ring_n >= 4 && c->ring_fail * 4 >= c->ring_n)
        go(c, RT_LINK_DEGRADED, now_ms);
}

void rt_conn_set_mode(rt_conn *c, rt_conn_mode m, uint64_t now_ms) {
    if (c->mode == m) return;
    c->mode = m;
    c->since_ms = now_ms;
    c->n_changes++;
}

bool rt_conn_cloud_allowed(const rt_conn *c) {
    switch (c->mode) {
    case RT_CONN_AUTO: return c->link != RT_LINK_OFFLINE;
    case RT_CONN_CLOUD_ONLY: return true;
    case RT_CONN_OFFLINE:
    case RT_CONN_EDGE_ONLY: return false;
    }
    return false;
}

bool rt_conn_edge_allowed(const rt_conn *c) {
    return c->mode != RT_CONN_CLOUD_ONLY;
}

bool rt_conn_wants_probe(const rt_conn *c, uint64_t now_ms, uint64_t idle_ms) {
    if (c->mode != RT_CONN_AUTO) return false;
    if (c->link != RT_LINK_ONLINE) return true;
    return now_ms - c->last_traffic_ms >= idle_ms;
}

const char *rt_conn_mode_name(rt_conn_mode m) {
    switch (m) {
    case RT_CONN_AUTO: return "auto";
    case RT_CONN_OFFLINE: return "offline";
    case RT_CONN_EDGE_ONLY: return "edge-only";
    case RT_CONN_CLOUD_ONLY: return "cloud-only";
    }
    return "unknown";
}

const char *rt_link_name(rt_link l) {
    switch (l) {
    case RT_LINK_ONLINE: return "online";
    case RT_LINK_DEGRADED: return "degraded";
    case RT_LINK_OFFLINE: return "offline";
    }
    return "unknown";
}

const char *rt_conn_state_name(const rt_conn *c) {
    return c->mode == RT_CONN_AUTO ? rt_link_name(c->link) : rt_conn_mode_name(c->mode);
}

int rt_conn_mode_parse(const char *s, rt_conn_mode *out) {
    static const rt_conn_mode all[] = {RT_CONN_AUTO, RT_CONN_OFFLINE, RT_CONN_EDGE_ONLY,
                                       RT_CONN_CLOUD_ONLY};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (s && !strcmp(s, rt_conn_mode_name(all[i]))) {
            *out = all[i];
            return 0;
        }
    return -1;
}
