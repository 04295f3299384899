"""The drill's world: a network namespace for the cloud, the mock cloud in it,
the fault proxy, and the gateway, each startable, killable and restartable.

Addresses: the veth pair carries link-local addresses (169.254.77.1 on our
side, .2 in the namespace) on those two interfaces only, so no traffic can
leave the machine; the gateway reaches the cloud through the fault proxy on
127.0.0.1.
"""

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import time

NS_ADDR_HOST = "169.254.77.1"
NS_ADDR_CLOUD = "169.254.77.2"


class DrillError(Exception):
    pass


def _run(cmd, check=True):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and r.returncode != 0:
        raise DrillError("%s: %s" % (" ".join(cmd), r.stdout.strip()))
    return r


def _wait_file(path, proc, what, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return open(path).read().split()
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise DrillError("%s did not start (see its log)" % what)


def _taskset(cpu):
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and os.cpu_count() > 1 else []


class Net:
    def __init__(self, tag):
        self.ns = "tgdrill%s" % tag
        self.va = "tgd%sa" % tag
        self.vb = "tgd%sb" % tag

    def up(self):
        _run(["ip", "netns", "add", self.ns])
        _run(["ip", "link", "add", self.va, "type", "veth", "peer", "name", self.vb])
        _run(["ip", "link", "set", self.vb, "netns", self.ns])
        _run(["ip", "addr", "add", NS_ADDR_HOST + "/30", "dev", self.va])
        _run(["ip", "-n", self.ns, "addr", "add", NS_ADDR_CLOUD + "/30", "dev", self.vb])
        _run(["ip", "-n", self.ns, "link", "set", "lo", "up"])
        _run(["ip", "-n", self.ns, "link", "set", self.vb, "up"])
        _run(["ip", "link", "set", self.va, "up"])

    def link(self, up):
        _run(["ip", "link", "set", self.va, "up" if up else "down"])
        if up:  # wait until the cloud side answers again (DAD off on v4, quick)
            end = time.time() + 5
            while time.time() < end:
                if _run(["ip", "-o", "link", "show", self.va], check=False).stdout.find("LOWER_UP") >= 0:
                    break
                time.sleep(0.05)

    def down(self):
        _run(["ip", "link", "del", self.va], check=False)
        _run(["ip", "netns", "del", self.ns], check=False)


class Mock:
    def __init__(self, root, out, net, log):
        self.root, self.out, self.net, self.log = root, out, net, log
        self.dir = os.path.join(out, "cloud")
        self.proc = None
        self.port = 0
        self.admin = 0
        self.starts = 0

    def certs(self):
        os.makedirs(self.dir, exist_ok=True)
        _run([os.path.join(self.root, "tests/support/mock_cloud/make_certs.sh"), self.dir,
              "IP:127.0.0.1", "DNS:localhost", "IP:" + NS_ADDR_CLOUD])

    def start(self):
        pf = os.path.join(self.dir, "ports")
        if os.path.exists(pf):
            os.unlink(pf)
        self.starts += 1
        logf = open(os.path.join(self.dir, "mock-%d.log" % self.starts), "w")
        cmd = ["ip", "netns", "exec", self.net.ns] + _taskset(0) + [
            "node", os.path.join(self.root, "tests/support/mock_cloud/mock_cloud.mjs"),
            "--cert", os.path.join(self.dir, "server.pem"), "--key", os.path.join(self.dir, "server.key"),
            "--wrong-cert", os.path.join(self.dir, "wrong.pem"), "--wrong-key", os.path.join(self.dir, "wrong.key"),
            "--host", NS_ADDR_CLOUD, "--port", str(self.port), "--admin-port", str(self.admin),
            "--port-file", pf]
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
        self.port, self.admin = (int(x) for x in _wait_file(pf, self.proc, "mock cloud"))

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def fault(self, spec, count=-1):
        body = json.dumps({"fault": spec, "count": count})
        c = http.client.HTTPConnection(NS_ADDR_CLOUD, self.admin, timeout=5)
        try:
            c.request("POST", "/fault", body=body, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                raise DrillError("mock /fault %s: %d" % (spec, r.status))
        finally:
            c.close()


class Proxy:
    def __init__(self, build, out):
        self.bin = os.path.join(build, "tests", "faultproxy")
        self.out = out
        self.proc = None
        self.port = self.ctl_port = 0

    def start(self, upstream_port):
        pf = os.path.join(self.out, "proxy.ports")
        logf = open(os.path.join(self.out, "faultproxy.log"), "w")
        self.proc = subprocess.Popen(_taskset(0) + [self.bin, "--listen", "127.0.0.1:0", "--upstream",
                                     "%s:%d" % (NS_ADDR_CLOUD, upstream_port), "--port-file", pf],
                                     stdout=logf, stderr=subprocess.STDOUT)
        self.port, self.ctl_port = (int(x) for x in _wait_file(pf, self.proc, "faultproxy"))

    def ctl(self, line):
        import socket
        with socket.create_connection(("127.0.0.1", self.ctl_port), timeout=5) as s:
            s.sendall((line + "\n").encode())
            reply = s.makefile().readline().strip()
        if reply.startswith("error"):
            raise DrillError("faultproxy %r: %s" % (line, reply))
        return reply

    def stats(self):
        return json.loads(self.ctl("stats"))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


class Gateway:
    """The real `tidegate serve`, restartable on the same ports."""

    def __init__(self, bin_, model, out, mock_ca, proxy, policy_src, log):
        self.bin, self.model, self.out, self.log = bin_, model, out, log
        self.mock_ca, self.proxy = mock_ca, proxy
        self.host = "127.0.0.1"
        self.port = None  # None while down: the load then waits and retries
        self.fixed_port = 0
        self.admin_port = 0
        self.proc = None
        self.starts = 0
        self.kills = 0
        self.journal = os.path.join(out, "journal")
        self.policy = os.path.join(out, "policy.yaml")
        self.policy_src = policy_src
        self.routing = {}
        self.reloads = 0
        shutil.copyfile(policy_src, self.policy)

    def start(self):
        self.starts += 1
        logp = os.path.join(self.out, "gateway-%d.log" % self.starts)
        logf = open(logp, "w")
        cmd = _taskset(1) + [
            self.bin, "serve", "-c", self._config(), "--listen", "127.0.0.1:%d" % self.fixed_port, "-m", self.model,
            "--threads", "1", "--cloud-url", "https://127.0.0.1:%d/v1" % self.proxy.port,
            "--cloud-model", "mock-model", "--cloud-key-env", "DRILL_CLOUD_KEY",
            "--ca-file", self.mock_ca]
        helptext = self._help()
        for flag, val in (("--journal-dir", self.journal), ("--policy", self.policy)):
            if flag in helptext:
                cmd += [flag, val]
            elif self.starts == 1:
                self.log("note: this tidegate has no %s" % flag)
        env = dict(os.environ, DRILL_CLOUD_KEY="sk-drill-secret", TIDEGATE_LOG="info")
        if self.admin_port and self.admin_port != self.fixed_port:
            env["TIDEGATE_ADMIN_LISTEN"] = "127.0.0.1:%d" % self.admin_port
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
        end = time.time() + 60
        port = admin = None
        while time.time() < end:
            text = open(logp).read()
            for m in re.finditer(r"(\S*)\s*listening addr=\S+ port=(\d+)(.*)", text):
                if "admin" in m.group(0):
                    admin = int(m.group(2))
                elif port is None:
                    port = int(m.group(2))
            if port and (admin or "admin" not in text or time.time() > end - 55):
                break
            if self.proc.poll() is not None:
                raise DrillError("gateway exited with %s:\n%s" % (self.proc.returncode, text[-2000:]))
            time.sleep(0.05)
        if not port:
            raise DrillError("gateway did not start listening")
        self.fixed_port = port
        self.admin_port = admin or self.admin_port or port
        self.port = port
        self.log("gateway #%d up: api port %d, admin port %d" % (self.starts, port, self.admin_port))

    def _config(self):
        """The gateway's config file: the schedule's routing timeouts (short
        ones, so a stall or a dead link is felt within a drill)."""
        path = os.path.join(self.out, "tidegate.yaml")
        r = self.routing
        with open(path, "w") as f:
            f.write("# written by tests/chaos/drill\nrouting:\n")
            for k in ("connect_timeout_ms", "first_byte_timeout_ms", "idle_timeout_ms",
                      "probe_interval_ms"):
                if k in r:
                    f.write("  %s: %d\n" % (k, int(r[k])))
        return path

    def _help(self):
        r = subprocess.run([self.bin, "serve", "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        return r.stdout

    def kill9(self):
        self.port = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.kills += 1

    def stop(self):
        self.port = None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _admin(self, method, path, body=None, timeout=10):
        if not self.port:
            return None, None
        c = http.client.HTTPConnection(self.host, self.admin_port, timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            c.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
            r = c.getresponse()
            return r.status, r.read()
        except OSError:
            return None, None
        finally:
            c.close()

    def admin_get(self, path):
        return self._admin("GET", path)

    def admin_post(self, path, body):
        st, raw = self._admin("POST", path, body)
        if st != 200:
            raise DrillError("POST %s %s: %s %s" % (path, json.dumps(body), st, (raw or b"")[:200]))
        return raw

    def reload_policy(self, bad):
        self.reloads += 1
        text = open(self.policy_src).read()
        if bad:
            text += "\nthis_key_does_not_exist: true\n"
        else:
            text += "\n# drill reload %d\n" % self.reloads
        tmp = self.policy + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.policy)
        st, raw = self._admin("POST", "/admin/reload", {})
        if bad and st == 200:
            try:
                if json.loads(raw).get("ok", True):
                    raise DrillError("gateway accepted an invalid policy")
            except ValueError:
                pass

    def get(self, path, timeout=10):
        if not self.port:
            return None, None
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        except OSError:
            return None, None
        finally:
            c.close()


class Env:
    def __init__(self, root, build, out, model, sched, seed, log):
        self.root, self.build, self.out, self.log = root, build, out, log
        self.sched = sched
        tag = str(os.getpid() % 100000)
        self.net = Net(tag)
        self.mock = Mock(root, out, self.net, log)
        self.proxy = Proxy(build, out)
        bin_ = os.environ.get("TIDEGATE_BIN") or os.path.join(build, "tidegate")
        if not os.access(bin_, os.X_OK):
            raise DrillError("no tidegate binary at %s (scripts/build release)" % bin_)
        if not os.access(self.proxy.bin, os.X_OK):
            raise DrillError("no faultproxy at %s (scripts/build release)" % self.proxy.bin)
        model = model or os.path.join(root, sched.get("model", "tests/fixtures/models/lfm2-tiny-f32.gguf"))
        policy = os.path.join(root, sched.get("policy", "policies/hybrid.yaml"))
        self.gateway = Gateway(bin_, model, out, os.path.join(self.mock.dir, "ca.pem"), self.proxy,
                               policy, log)
        self.gateway.routing = dict(sched.get("routing") or {})

    def up(self):
        if os.geteuid() != 0:
            raise DrillError("the drill needs root (network namespace, veth pair)")
        self.net.up()
        self.mock.certs()
        self.mock.start()
        self.proxy.start(self.mock.port)
        self.gateway.start()
        self.log("up: cloud %s:%d (admin %d) in netns %s, proxy 127.0.0.1:%d (ctl %d)"
                 % (NS_ADDR_CLOUD, self.mock.port, self.mock.admin, self.net.ns, self.proxy.port,
                    self.proxy.ctl_port))

    def heal(self):
        """After the schedule: every fault off, every process up."""
        self.net.link(True)
        with contextlib.suppress(DrillError, OSError):
            self.proxy.ctl("clear")
        if not self.mock.proc or self.mock.proc.poll() is not None:
            self.mock.start()
        with contextlib.suppress(DrillError, OSError):
            self.mock.fault("none")
        if not self.gateway.proc or self.gateway.proc.poll() is not None:
            self.gateway.start()
        with contextlib.suppress(DrillError):
            self.gateway.admin_post("/admin/mode", {"mode": "auto"})

    def down(self):
        self.gateway.stop()
        self.proxy.stop()
        self.mock.kill()
        self.net.down()
