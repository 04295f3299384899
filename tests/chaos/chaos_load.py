"""Load generator and client ledger for the chaos drill.

Open loop: request i is due at start + i/rate whatever the gateway does, so a
slow gateway shows up as queueing (lateness is recorded) instead of hiding
it. Every request carries an Idempotency-Key; every id the gateway hands out
is written to the ledger, and a request whose connection breaks (gateway
killed, reset) is retried with the same key until its deadline, as a careful
client would. The ledger is what the drill checks the journal against.
"""

import hashlib
import http.client
import json
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

SIMPLE_PROMPTS = [
    "Hi! How are you today?",
    "What is the capital of Portugal?",
    "Translate 'good morning' into Spanish.",
    "Rewrite this more politely: send me the file now.",
    "Is this review positive or negative? 'The soup was cold and bland.'",
    "Extract the date from: 'The meeting moved to March 3rd at 10am.'",
    "Summarize in one sentence: The library opens at nine and closes at six, "
    "except on Sundays when it stays closed all day.",
    "Give me a synonym for 'happy'.",
]

COMPLEX_PROMPTS = [
    "Prove that there are infinitely many primes p such that p = 4k + 3, then "
    "explain step by step where the argument fails for primes of the form 4k + 1, "
    "and finally give three numerical examples checking each step.",
    "Write a complete, production-quality Python module implementing a thread-safe "
    "LRU cache with TTL expiry, size-based eviction, metrics hooks, and full unit "
    "tests using pytest, including edge cases for concurrency and clock skew.",
    "Plan a 14-day multi-city itinerary across Japan for a family of five with a "
    "wheelchair user, a strict budget of 6000 USD, vegetarian meals, at most two "
    "hotel changes per week, rail passes compared against single tickets, and a "
    "fallback plan for typhoon days. Justify every trade-off.",
    "Analyze the following contract clauses for conflicts, list every obligation "
    "of each party, identify ambiguous terms, and propose rewritten clauses that "
    "satisfy all five constraints: governing law, termination, liability caps, "
    "data protection under GDPR, and audit rights. Think step by step.",
]


class Ledger:
    """Every request the load sent, every attempt, every id it was given."""

    def __init__(self):
        self.lock = threading.Lock()
        self.entries = []

    def add(self, entry):
        with self.lock:
            self.entries.append(entry)

    def snapshot(self):
        with self.lock:
            return list(self.entries)


def _parse_sse(resp):
    """Reads an SSE body; returns (events, done_seen). An event is a dict:
    {"id":..., "event":..., "data":...}; comments are counted."""
    events, cur, done, comments = [], {}, False, 0
    while True:
        line = resp.readline()
        if not line:
            break
        line = line.decode("utf-8", "replace").rstrip("\r\n")
        if line == "":
            if cur:
                events.append(cur)
                if cur.get("data") == "[DONE]":
                    done = True
                cur = {}
            continue
        if line.startswith(":"):
            comments += 1
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            cur["data"] = cur["data"] + "\n" + value if "data" in cur else value
        elif field in ("id", "event"):
            cur[field] = value
    return events, done, comments


class LoadGen:
    def __init__(self, gw, rate, duration, seed, stream_share=0.5, complex_share=0.3,
                 concurrency=96, request_deadline=120.0, api_key=None, cloud_model_share=0.0):
        self.gw = gw  # object with .host, .port (may change across restarts)
        self.rate = rate
        self.duration = duration
        self.rng = random.Random(seed)
        self.seed = seed
        self.stream_share = stream_share
        self.complex_share = complex_share
        self.cloud_model_share = cloud_model_share
        self.pool = ThreadPoolExecutor(max_workers=concurrency)
        self.deadline = request_deadline
        self.api_key = api_key
        self.ledger = Ledger()
        self.stop_flag = threading.Event()
        self.extra = []  # (time, n) floods added by the schedule
        self.flood_pools = []
        self.t0 = None

    # ---- one request, with retries under the same key ----
    def _attempt(self, entry):
        body = {
            "model": entry["model"],
            "messages": [{"role": "user", "content": entry["prompt"]}],
            "max_tokens": entry["max_tokens"],
            "stream": entry["stream"],
            "temperature": 0,
        }
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": entry["key"]}
        if self.api_key:
            headers["Authorization"] = "Bearer " + self.api_key
        att = {"t": time.time() - self.t0}
        host, port = self.gw.host, self.gw.port
        if not port:
            att["error"] = "gateway down"
            return att, True
        conn = http.client.HTTPConnection(host, port, timeout=60)
        try:
            conn.request("POST", "/v1/chat/completions", body=data, headers=headers)
            resp = conn.getresponse()
            att["status"] = resp.status
            h = {k.lower(): v for k, v in resp.getheaders()}
            att["request_id"] = h.get("x-request-id")
            att["route"] = h.get("x-tidegate-route")
            att["failover"] = h.get("x-tidegate-failover")
            att["reason"] = h.get("x-tidegate-reason")
            att["retry_after"] = h.get("retry-after")
            if entry["stream"] and resp.status == 200:
                events, done, comments = _parse_sse(resp)
                text, err, tg = [], None, None
                for ev in events:
                    d = ev.get("data", "")
                    if d == "[DONE]":
                        continue
                    try:
                        obj = json.loads(d)
                    except ValueError:
                        err = {"message": "unparsable event"}
                        continue
                    if "error" in obj:
                        err = obj["error"]
                        continue
                    att.setdefault("id", obj.get("id"))
                    if obj.get("tidegate"):
                        tg = obj["tidegate"]
                    for ch in obj.get("choices") or []:
                        c = (ch.get("delta") or {}).get("content")
                        if c:
                            text.append(c)
                        if ch.get("finish_reason"):
                            att["finish_reason"] = ch["finish_reason"]
                att["done"] = done
                att["events"] = len(events)
                att["keepalives"] = comments
                att["midstream"] = tg
                att["content"] = "".join(text)
                if err:
                    att["stream_error"] = err
                # a stream that ends with neither [DONE] nor an error event is
                # a silent cut: the drill counts these as failures
                retry = not done and not err
                return att, retry
            raw = resp.read()
            try:
                obj = json.loads(raw)
            except ValueError:
                obj = {}
            if resp.status == 200:
                att["id"] = obj.get("id")
                ch = (obj.get("choices") or [{}])[0]
                att["content"] = (ch.get("message") or {}).get("content") or ""
                att["finish_reason"] = ch.get("finish_reason")
                return att, False
            if resp.status == 202:
                att["id"] = obj.get("id")
                att["deferred"] = True
                return att, False
            att["error"] = (obj.get("error") or {}).get("message", raw[:200].decode("utf-8", "replace"))
            att["error_code"] = (obj.get("error") or {}).get("code")
            # 429/503 say "come back"; 5xx from a dying gateway too
            return att, resp.status in (429, 500, 502, 503, 504)
        except (ConnectionError, socket.timeout, http.client.HTTPException, OSError) as e:
            att["error"] = type(e).__name__ + ": " + str(e)[:120]
            return att, True
        finally:
            conn.close()

    def _run_one(self, entry):
        entry["started"] = time.time() - self.t0
        end = time.time() + self.deadline
        backoff = 0.2
        while True:
            att, retry = self._attempt(entry)
            entry["attempts"].append(att)
            if not retry or time.time() > end:
                break
            wait = backoff
            ra = att.get("retry_after")
            if ra:
                try:
                    wait = max(wait, min(float(ra), 5.0))
                except ValueError:
                    pass
            time.sleep(wait)
            backoff = min(backoff * 2, 2.0)
        entry["finished"] = time.time() - self.t0
        last = entry["attempts"][-1]
        if last.get("status") == 200 and (not entry["stream"] or last.get("done")):
            entry["outcome"] = "completed"
        elif last.get("deferred"):
            entry["outcome"] = "deferred"
        else:
            entry["outcome"] = "failed"
        entry["content_sha"] = hashlib.sha256((last.get("content") or "").encode()).hexdigest()[:16]

    def _make_entry(self, i, kind=None):
        cx = kind == "complex" or (kind is None and self.rng.random() < self.complex_share)
        prompts = COMPLEX_PROMPTS if cx else SIMPLE_PROMPTS
        return {
            "n": i,
            "key": "drill-%d-%d" % (self.seed, i),
            "kind": "complex" if cx else "simple",
            "stream": self.rng.random() < self.stream_share,
            "prompt": self.rng.choice(prompts),
            "max_tokens": 24 if cx else 12,
            # tidegate/auto lets the policy choose; tidegate/cloud asks for the
            # cloud first (edge fallback), so cloud faults always meet traffic
            "model": "tidegate/cloud" if self.rng.random() < self.cloud_model_share else "tidegate/auto",
            "attempts": [],
        }

    def flood(self, n):
        """n extra simple edge-bound requests at once (engine past its queue)."""
        base = 1_000_000 + len(self.extra) * 10_000
        self.extra.append((time.time() - self.t0, n))
        # Their own threads, all at once: through the load's pool they would
        # trickle in (and delay the open-loop schedule). tidegate/edge, so
        # the policy cannot send the flood to the cloud instead.
        pool = ThreadPoolExecutor(max_workers=max(1, min(n, 400)))
        self.flood_pools.append(pool)
        for j in range(n):
            e = self._make_entry(base + j, "simple")
            e["flood"] = True
            e["model"] = "tidegate/edge"
            self.ledger.add(e)
            pool.submit(self._run_one, e)

    def run(self):
        """Blocks for the duration, submitting on the open-loop schedule."""
        self.t0 = self.t0 or time.time()
        i = 0
        while not self.stop_flag.is_set():
            due = self.t0 + i / self.rate
            if due - self.t0 > self.duration:
                break
            now = time.time()
            if due > now:
                time.sleep(due - now)
            e = self._make_entry(i)
            e["due"] = due - self.t0
            self.ledger.add(e)
            self.pool.submit(self._run_one, e)
            i += 1

    def drain(self):
        self.pool.shutdown(wait=True)
        for p in self.flood_pools:
            p.shutdown(wait=True)
