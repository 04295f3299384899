"""The drill's evidence and verdict: metric samples from the gateway, the
journal check, the client ledger, and the report with its timeline chart."""

import json
import os
import re
import statistics
import subprocess
import threading
import time

SERIES_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SERIES_RE.match(line)
        if not m:
            continue
        try:
            v = float(m.group(3))
        except ValueError:
            continue
        labels = tuple(sorted(LABEL_RE.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = v
    return out


class Sampler:
    """Scrapes /metrics and /admin/state every half second (admin listener)."""

    def __init__(self, env, log, period=0.5):
        self.env, self.log, self.period = env, log, period
        self.samples = []  # (t, metrics dict, mode, gateway incarnation)
        self.stop_ev = threading.Event()
        self.t0 = time.time()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.sample_once()
        self.stop_ev.set()
        self.thread.join()

    def sample_once(self):
        gw = self.env.gateway
        st, raw = gw.admin_get("/metrics")
        if st != 200:
            return
        mets = parse_metrics(raw.decode("utf-8", "replace"))
        mode = None
        st2, raw2 = gw.admin_get("/admin/state")
        if st2 == 200:
            try:
                # "state" is the effective connectivity: the link (online,
                # degraded, offline) in auto mode, else the forced mode.
                st_json = json.loads(raw2)
                mode = st_json.get("state") or st_json.get("mode")
            except ValueError:
                pass
        self.samples.append((time.time() - self.t0, mets, mode, gw.starts))

    def _run(self):
        while not self.stop_ev.wait(self.period):
            try:
                self.sample_once()
            except Exception as e:  # the gateway may be down right now
                self.log("sampler: %s" % e)


def _match(key, name, labels):
    """Exact metric name; a label value ending in '*' matches by prefix
    (route="cloud*" covers every cloud upstream, cloud:NAME)."""
    kname, lab = key
    if kname != name:
        return False
    d = dict(lab)
    for k, v in labels.items():
        got = d.get(k)
        if got is None:
            return False
        if v.endswith("*") and got.startswith(v[:-1]):
            continue
        if got != v:
            return False
    return True


def peak(samples, t0, t1, name, **labels):
    """The largest value a matching gauge showed within [t0, t1]."""
    best = 0.0
    for t, mets, _mode, _inc in samples:
        if t0 <= t <= t1:
            for k, v in mets.items():
                if _match(k, name, labels):
                    best = max(best, v)
    return best


def increase(samples, t0, t1, name, **labels):
    """How much matching counters grew within [t0, t1], counting across
    gateway restarts (a restart starts counters at zero again)."""
    # A labelled series first shows up when it is first counted, so a series
    # missing from the previous sample of the same gateway was 0 there.
    total, prev, prev_inc = 0.0, {}, None
    for t, mets, _mode, inc in samples:
        if t > t1:
            break
        cur = {}
        for k, v in mets.items():
            if _match(k, name, labels):
                cur[k] = v
        if t >= t0 and prev_inc is not None:
            for k, v in cur.items():
                if inc != prev_inc:
                    total += v  # a restarted gateway counts from zero
                elif v > prev.get(k, 0.0):
                    total += v - prev.get(k, 0.0)
        prev, prev_inc = cur, inc
    return total


def modes_seen(samples, t0, t1):
    return sorted({m for t, _x, m, _i in samples if t0 <= t <= t1 and m})


# Each fault type: how the gateway's own metrics show it was felt. A check is
# (description, function(samples, start, end) -> number > 0 when seen).
def _evidence_checks(fault):
    win = 6.0  # breakers and probes act within a few seconds after a fault

    def inc(name, **lab):
        return lambda s, a, b: increase(s, a, b + win, name, **lab)

    def mode(m):
        return lambda s, a, b: 1.0 if any(m in (x or "") for x in modes_seen(s, a, b + win)) else 0.0

    FO = "tidegate_failovers_total"

    def gpeak(name, **lab):
        return lambda s, a, b: peak(s, a, b + win, name, **lab)

    return {
        "cloud_kill": [("failovers (any cause)", inc(FO)),
                       ("breaker transitions", inc("tidegate_breaker_transitions_total"))],
        "cloud_5xx": [("failovers cause=5xx", inc(FO, cause="5xx"))],
        "cloud_429": [("failovers cause=429", inc(FO, cause="429"))],
        "tls_wrong_cert": [("failovers cause=tls", inc(FO, cause="tls"))],
        "latency": [("answers first from the cloud during latency",
                     inc("tidegate_route_decisions_total", route="cloud*"))],
        "loss": [("HTTP answers during loss", inc("tidegate_http_requests_total"))],
        "partition": [("connectivity offline", mode("offline"))],
        "stall_first_byte": [("failovers cause=first_byte_timeout", inc(FO, cause="first_byte_timeout"))],
        "reset_midstream": [("failovers cause=reset", inc(FO, cause="reset"))],
        "engine_flood": [("engine queue depth peak", gpeak("tidegate_engine_queue_depth")),
                         ("429 answers", inc("tidegate_http_requests_total", status="429"))],
        "policy_reload": [("policy reloads", inc("tidegate_routing_policy_reloads_total"))],
        "mode_switch": [("forced mode in /admin/state",
                         lambda s, a, b: 1.0 if any(m in ("offline", "edge-only", "cloud-only")
                                                    for m in modes_seen(s, a, b)) else 0.0)],
        "gateway_kill": [("gateway restarted and answering", lambda s, a, b: 1.0 if any(
            a <= t <= b + win for t, _m, _x, _i in s) else 0.0)],
    }.get(fault, [])


def _journal_check(env):
    r = subprocess.run([env.gateway.bin, "journal", "check", env.gateway.journal],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return r.returncode, r.stdout


def _pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def verify(env, load, runner, sched, out, log):
    entries = load.ledger.snapshot()
    budgets = sched.get("budgets", {})
    gw = env.gateway
    # 1. every id a client was given must be journaled and terminal. A 429 or
    # 503 refusal ("come back later") promised nothing: its id names the HTTP
    # exchange, not an accepted request, and the retry gets a fresh one.
    # Those are still looked up: one the journal knows must be terminal too.
    ids, refused = {}, set()
    for e in entries:
        for a in e["attempts"]:
            rid = a.get("request_id")
            if rid:
                ids.setdefault(rid, e["key"])
                if a.get("status") in (429, 503):
                    refused.add(rid)
    status_by_id, lost = {}, []
    deadline = time.time() + float(budgets.get("settle_s", 90))
    pending = set(ids)
    while pending and time.time() < deadline:
        for rid in sorted(pending):
            st, raw = gw.get("/v1/requests/" + rid)
            if st == 200:
                s = json.loads(raw).get("status")
                status_by_id[rid] = s
                if s in ("completed", "failed", "cancelled"):
                    pending.discard(rid)
            elif st == 404:
                status_by_id[rid] = "missing"
                pending.discard(rid)
        if pending:
            time.sleep(1)
    for rid in ids:
        if rid in refused and status_by_id.get(rid) == "missing":
            continue
        if status_by_id.get(rid) not in ("completed", "failed", "cancelled"):
            lost.append({"id": rid, "key": ids[rid], "status": status_by_id.get(rid)})
    # 2. at most one run and one result per idempotency key
    double = []
    for e in entries:
        done = [a for a in e["attempts"] if a.get("status") == 200 and a.get("content") is not None
                and (not e["stream"] or a.get("done"))]
        rids = {a.get("request_id") for a in e["attempts"]
                if a.get("request_id") and a.get("status") not in (429, 503)}
        contents = {a.get("content") for a in done}
        if len(rids) > 1 or len(contents) > 1:
            double.append({"key": e["key"], "request_ids": sorted(rids), "results": len(contents)})
    jrc, jout = _journal_check(env)
    # 3. failover times
    fo = {}
    for e in entries:
        for a in e["attempts"]:
            h = a.get("failover")
            if h:
                m = re.search(r"cause=([a-z_0-9]+); ms=(\d+)", h)
                if m:
                    fo.setdefault(m.group(1), []).append(int(m.group(2)))
    # A timeout cause cannot fail over before its timeout ran out: its budget
    # is that timeout plus a margin (the schedule's *_failover_ms keys).
    fo_budget = {"first_byte_timeout": budgets.get("first_byte_failover_ms", 12000),
                 "connect_timeout": budgets.get("connect_failover_ms", 3500),
                 "idle_timeout": budgets.get("idle_failover_ms", 12000)}
    fo_rows, fo_ok = [], True
    for cause, xs in sorted(fo.items()):
        b = fo_budget.get(cause, budgets.get("failover_ms", 1000))
        mx = max(xs)
        ok = mx <= b
        fo_ok &= ok
        fo_rows.append({"cause": cause, "n": len(xs), "p50_ms": _pct(xs, 50), "p99_ms": _pct(xs, 99),
                        "max_ms": mx, "budget_ms": b, "ok": ok})
    # 4. every fault felt by the gateway
    samples = getattr(load, "sampler_samples", None) or []
    evid_rows, evid_ok = [], True
    for ap in runner.applied:
        checks = _evidence_checks(ap["fault"])
        seen = []
        for desc, fn in checks:
            v = fn(samples, ap["at"], ap["end"])
            seen.append({"what": desc, "value": v})
        ok = not ap.get("error") and any(s["value"] > 0 for s in seen)
        evid_ok &= ok
        evid_rows.append(dict(ap, evidence=seen, ok=ok))
    # 5. outcomes
    outcome = {}
    route = {}
    for e in entries:
        outcome[e.get("outcome", "unfinished")] = outcome.get(e.get("outcome", "unfinished"), 0) + 1
        last = e["attempts"][-1] if e["attempts"] else {}
        r = (last.get("route") or "none").split(":")[0]
        if e.get("outcome") == "completed":
            route[r] = route.get(r, 0) + 1
    silent_cuts = sum(1 for e in entries for a in e["attempts"]
                      if e["stream"] and a.get("status") == 200 and not a.get("done") and not a.get("stream_error")
                      and "error" not in a)
    verdict = {
        "requests": len(entries), "ids_given": len(ids), "outcomes": outcome, "routes": route,
        "lost": lost, "double_run": double, "journal_check_rc": jrc, "journal_check": jout.strip()[-3000:],
        "failover": fo_rows, "faults": evid_rows, "silent_stream_cuts": silent_cuts,
        "gateway_restarts": gw.starts - 1,
        "lateness_p99_s": _pct([e["started"] - e.get("due", e["started"]) for e in entries if "started" in e], 99),
    }
    verdict["pass"] = (not lost and not double and jrc == 0 and fo_ok and evid_ok and silent_cuts == 0
                       and len(ids) > 0)
    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(dict(verdict, ledger=entries), f, indent=1, default=str)
    _timeline(entries, runner.applied, samples, out)
    _markdown(verdict, sched, out)
    log("requests %d, ids %d, outcomes %s, routes %s" % (len(entries), len(ids), outcome, route))
    log("lost %d, double-run %d, silent stream cuts %d, journal check rc=%d"
        % (len(lost), len(double), silent_cuts, jrc))
    for r in fo_rows:
        log("failover %-20s n=%-4d p50=%s p99=%s max=%s budget=%s %s"
            % (r["cause"], r["n"], r["p50_ms"], r["p99_ms"], r["max_ms"], r["budget_ms"], "ok" if r["ok"] else "OVER"))
    for r in evid_rows:
        log("fault %-16s %s %s" % (r["fault"], "seen" if r["ok"] else "NOT SEEN",
                                   ", ".join("%s=%g" % (s["what"], s["value"]) for s in r["evidence"])))
    return verdict


MODE_LEVEL = {"online": 0, "degraded": 1, "offline": 2, "edge-only": 3, "cloud-only": 4}


def _timeline(entries, applied, samples, out):
    """timeline.csv: per second, answers by route (edge, cloud, failed),
    latency of the answers finished that second (p50 and max, from the
    request's scheduled start, so time spent waiting on a dead gateway
    counts), and the gateway's connectivity state; timeline.png: three
    panels over the same seconds, with the fault intervals shaded."""
    end = int(max([e.get("finished", 0) for e in entries] + [1])) + 1
    rows = [{"t": t, "edge": 0, "cloud": 0, "failed": 0, "midstream": 0, "lat": []}
            for t in range(end + 1)]
    for e in entries:
        t = int(e.get("finished", 0))
        last = e["attempts"][-1] if e["attempts"] else {}
        if e.get("outcome") == "completed":
            r = (last.get("route") or "edge").split(":")[0]
            rows[t]["cloud" if r == "cloud" else "edge"] += 1
            if last.get("midstream"):
                rows[t]["midstream"] += 1
            t0 = e.get("due", e.get("started"))
            if t0 is not None and e.get("finished") is not None:
                rows[t]["lat"].append(max(0.001, (e["finished"] - t0) * 1000.0))
        else:
            rows[t]["failed"] += 1
    modes = {}
    for t, _m, mode, _i in samples:
        modes[int(t)] = mode or ""
    last_mode = ""
    with open(os.path.join(out, "timeline.csv"), "w") as f:
        f.write("t,edge,cloud,failed,midstream_failover,mode,lat_p50_ms,lat_max_ms,mode_level\n")
        for r in rows:
            last_mode = modes.get(r["t"], last_mode)
            lat = r["lat"]
            p50 = "%.1f" % _pct(lat, 50) if lat else ""
            mx = "%.1f" % max(lat) if lat else ""
            lvl = MODE_LEVEL.get(last_mode, "")
            f.write("%d,%d,%d,%d,%d,%s,%s,%s,%s\n" % (r["t"], r["edge"], r["cloud"], r["failed"],
                                                     r["midstream"], last_mode, p50, mx, lvl))
    gp = os.path.join(out, "timeline.gp")
    csv = os.path.join(out, "timeline.csv")
    ymax = max([r["edge"] + r["cloud"] + r["failed"] for r in rows] + [1]) + 2
    colors = ["f4a261", "e76f51", "2a9d8f", "8ab17d", "b5838d", "6d6875"]
    with open(gp, "w") as f:
        f.write('set terminal pngcairo noenhanced size 1400,820 font "sans,10"\n' if _has_cairo() else
                "set terminal png noenhanced size 1400,820\n")
        f.write('set output "%s"\n' % os.path.join(out, "timeline.png"))
        f.write('set datafile separator ","\nset datafile missing ""\n')
        f.write("set xrange [0:%d]\nset lmargin 12\nset rmargin 4\n" % end)
        f.write("set multiplot\n")

        def bands(top, labels):
            for i, ap in enumerate(applied):
                f.write('set object %d rect from %g,graph 0 to %g,graph 1 fc rgb "#%s" fs solid 0.25 noborder\n'
                        % (i + 1, ap["at"], max(ap["end"], ap["at"] + 0.5), colors[i % 6]))
                if labels:
                    f.write('set label %d "%s" at %g,%g rotate by 90 right font ",8"\n'
                            % (i + 1, ap["fault"], ap["at"] + 0.3, top - 0.5))

        # 1. where answers came from
        f.write("set origin 0,0.42\nset size 1,0.58\nset key outside top center horizontal\n")
        f.write('set title "tidegate chaos drill: where requests went, how long they took, and the '
                'gateway\'s mode while faults were injected"\n')
        f.write('set ylabel "answers per second"\nset yrange [0:%d]\nunset xlabel\n' % (ymax + 8))
        bands(ymax + 8, True)
        f.write('plot "%s" using 1:2 skip 1 with steps lw 2 lc rgb "#1d3557" title "edge", '
                '"" using 1:3 skip 1 with steps lw 2 lc rgb "#e63946" title "cloud", '
                '"" using 1:4 skip 1 with impulses lw 3 lc rgb "black" title "failed", '
                '"" using 1:($5>0?$5:1/0) skip 1 with points pt 7 ps 1.5 lc rgb "#ffb703" '
                'title "mid-stream failovers"\n' % csv)
        f.write("unset label\nunset title\n")
        # 2. latency of the answers (log scale)
        f.write("set origin 0,0.16\nset size 1,0.27\nset logscale y\nset yrange [1:*]\n")
        f.write('set ylabel "latency ms"\nset key inside top left horizontal\n')
        f.write('plot "%s" using 1:7 skip 1 with steps lw 2 lc rgb "#457b9d" title "p50", '
                '"" using 1:8 skip 1 with steps lw 1 lc rgb "#9d0208" title "max"\n' % csv)
        f.write("unset logscale y\n")
        # 3. connectivity state
        f.write("set origin 0,0\nset size 1,0.17\nset yrange [-0.5:4.5]\n")
        f.write('set ytics ("online" 0, "degraded" 1, "offline" 2, "edge-only" 3, "cloud-only" 4) '
                'font ",8"\nset ylabel "mode"\nset xlabel "seconds"\nunset key\n')
        f.write('plot "%s" using 1:9 skip 1 with steps lw 3 lc rgb "#2b2d42"\n' % csv)
        f.write("unset multiplot\n")
    subprocess.run(["gnuplot", gp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _has_cairo():
    try:
        r = subprocess.run(["gnuplot", "-e", "set terminal"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        return "pngcairo" in r.stdout
    except OSError:
        return False


def _markdown(v, sched, out):
    L = ["# Chaos drill report", "",
         "Schedule `%s`. Verdict: **%s**." % (os.path.basename(sched["path"]), "PASS" if v["pass"] else "FAIL"), "",
         "| measure | value |", "|---|---|",
         "| requests sent | %d |" % v["requests"], "| request ids given to clients | %d |" % v["ids_given"],
         "| outcomes | %s |" % json.dumps(v["outcomes"]), "| answered by route | %s |" % json.dumps(v["routes"]),
         "| lost (id given, not terminal in the journal) | %d |" % len(v["lost"]),
         "| ran twice (one key, two results) | %d |" % len(v["double_run"]),
         "| streams cut silently | %d |" % v["silent_stream_cuts"],
         "| gateway SIGKILL restarts | %d |" % v["gateway_restarts"],
         "| `journal check` exit code | %d |" % v["journal_check_rc"], "",
         "## Failover time (x-tidegate-failover, fault to first fallback token)", "",
         "| cause | n | p50 ms | p99 ms | max ms | budget ms | |", "|---|---|---|---|---|---|---|"]
    for r in v["failover"]:
        L.append("| %s | %d | %s | %s | %s | %s | %s |" % (r["cause"], r["n"], r["p50_ms"], r["p99_ms"],
                                                          r["max_ms"], r["budget_ms"], "ok" if r["ok"] else "OVER"))
    L += ["", "## Faults injected and what the gateway's metrics show", "",
          "| fault | from s | to s | detail | evidence | |", "|---|---|---|---|---|---|"]
    for r in v["faults"]:
        ev = ", ".join("%s: %g" % (s["what"], s["value"]) for s in r["evidence"])
        L.append("| %s | %.1f | %.1f | %s | %s | %s |" % (r["fault"], r["at"], r["end"], r["detail"], ev,
                                                         "seen" if r["ok"] else "NOT SEEN"))
    L += ["", "![timeline](timeline.png)", "", "## journal check", "", "```", v["journal_check"], "```", ""]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(L))
