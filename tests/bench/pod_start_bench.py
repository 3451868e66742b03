#!/usr/bin/python3
"""pod_start_bench: pod start latency through a whole single-node podwarp cluster, measured as
the upstream pod-startup SLO defines it, and the cluster's memory footprint (issue 5,
acceptance 4 and 5).

  sudo PODWARP_BIN=build/bin /usr/bin/python3 tests/bench/pod_start_bench.py \
      [--seq-pods 200] [--batch 50] [--burst 100] [--burst-conns 20] [--json FILE] [--no-containerd]
      [--tmpfs] [--nice -10]
  (other arguments are ignored: scripts/bench.sh passes the same ones to every benchmark)
  --tmpfs puts the data dir (pod dirs, image store, overlay upper dirs) on a tmpfs mounted for
  the run; --nice runs the cluster (and this script) at that nice value, autogroups included.

`podwarp up` brings up etcd, podwarp-control, the local registry (test images) and
podwarp-noded on kernel-chosen loopback ports under /tmp/podwarp-pod-start-bench-XXXX;
`podwarp down --purge` removes all of it at the end, also on failure.

Pod start latency = from the moment the create request is sent to the watch event in which
every container status has state.running (upstream SLO: pod created -> all containers running,
observed through a watch; image already on the node: a first pod pre-pulls it, then every pod
uses imagePullPolicy IfNotPresent). The watch (a raw streaming GET, opened before any create)
runs in its own process and stamps each event with time.monotonic() as soon as its line is
read, so the creating threads do not delay the stamps. Pods: busybox `sleep 3600`, requests
cpu 1m / memory 4Mi, the default ServiceAccount token volume (as every upstream pod).
  (a) one at a time: --seq-pods pods, each created after the previous one runs; pods are
      deleted every --batch pods (node capacity is 110 pods), and the next pod waits until the
      node has cleaned them up.
  (b) a burst: --burst pods created concurrently over --burst-conns keep-alive connections;
      time from the first create to the last pod running, and per-pod latencies.
Phases of a start: API write (create round trip), scheduling (create -> spec.nodeName seen on
the watch), noded pickup (bound on the watch -> noded's "api: new pod" log line, wall clock,
ms resolution), noded's own start phases from its local API /metrics
(podwarp_pod_start_phase_seconds: worker created -> sandbox_ready -> image_ready (volumes +
image) -> container_started; exact per pod in (a), by diffing the histogram's _sum after each
pod; means in (b)), and status write (the rest: container started -> Running seen on the
watch). Also printed: CPU time (utime+stime) and time spent runnable but waiting for a CPU
(schedstat run delay) of noded, podwarp-control and etcd, per pod and over the burst; the
apiserver's server-side mean per request kind during the burst; warning lines of the logs.
Footprint: VmRSS of podwarp-noded, podwarp-control, etcd (and docker-registry) idle
(node Ready, no pods) and with --burst pods running; optionally containerd idle, started here
with its own root/state/socket. Nothing is asserted; goals and references are printed."""
import argparse
import base64
import datetime
import http.client
import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

import yaml

BIN = os.environ.get("PODWARP_BIN") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "bin")
NS = "default"
LABEL = "podwarp-bench=pod-start"
NODE = "pod-start-bench"
MIB = 1024.0

GOALS = {"seq_p50": 30.0, "seq_p99": 80.0, "burst_all": 2000.0}
UPSTREAM_SLO_P99_MS = 5000.0
UPSTREAM_P50_MS = 1100.0
KUBELET_IDLE_CEILING_MIB = 200.0
CONTAINERD_IDLE_MIB = 47.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(v, p):
    """Nearest-rank percentile (p in 0..100) of a list; NaN when empty."""
    v = sorted(x for x in v if x is not None)
    if not v:
        return float("nan")
    return v[max(0, min(len(v) - 1, math.ceil(p / 100.0 * len(v)) - 1))]


def fmt_ms(x):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f} ms"


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


# ---------------------------------------------------------------------------------- API access
class Api:
    """HTTPS to the apiserver with the admin kubeconfig's client certificate (keep-alive)."""

    def __init__(self, kubeconfig, tmp):
        with open(kubeconfig) as f:
            kc = yaml.safe_load(f)
        cluster = kc["clusters"][0]["cluster"]
        user = kc["users"][0]["user"]
        m = re.match(r"https://([^:/]+):(\d+)", cluster["server"])
        self.host, self.port = m.group(1), int(m.group(2))
        files = {}
        for key, src in (("ca", cluster["certificate-authority-data"]),
                         ("crt", user["client-certificate-data"]),
                         ("key", user["client-key-data"])):
            files[key] = os.path.join(tmp, "admin." + key)
            fd = os.open(files[key], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(base64.b64decode(src))
        self.ctx = ssl.create_default_context(cafile=files["ca"])
        self.ctx.load_cert_chain(files["crt"], files["key"])
        self.ctx.check_hostname = False  # the server cert names 127.0.0.1 as an IP SAN

    def conn(self, timeout=60):
        c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout)
        c.connect()
        return c

    @staticmethod
    def call(c, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        c.request(method, path, body=data, headers=headers)
        r = c.getresponse()
        return r.status, r.read()


def noded_get(sock_path, path, timeout=10):
    """GET over noded's local API unix socket; (status, body bytes)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: noded\r\n\r\n".encode())
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split()[1]) if head else 0
    if b"transfer-encoding: chunked" in head.lower():
        out, rest = [], body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            n = int(size_line.split(b";")[0] or b"0", 16)
            if n == 0:
                break
            out.append(rest[:n])
            rest = rest[n + 2:]
        body = b"".join(out)
    return status, body


def phase_totals(sock_path):
    """{phase: (sum seconds, count)} of noded's podwarp_pod_start_phase_seconds."""
    _, body = noded_get(sock_path, "/metrics")
    sums, counts = {}, {}
    for line in body.decode(errors="replace").splitlines():
        m = re.match(r'podwarp_pod_start_phase_seconds_(sum|count)\{phase="([a-z_]+)"\} (\S+)', line)
        if m:
            (sums if m.group(1) == "sum" else counts)[m.group(2)] = float(m.group(3))
    return {k: (sums[k], counts.get(k, 0.0)) for k in sums}


def apiserver_totals(api):
    """{(verb, resource): (sum seconds, count)} of the apiserver's request duration histogram."""
    c = api.conn()
    try:
        st, body = Api.call(c, "GET", "/metrics")
    finally:
        c.close()
    sums, counts = {}, {}
    if st != 200:
        return {}
    for line in body.decode(errors="replace").splitlines():
        m = re.match(r'apiserver_request_duration_seconds_(sum|count)\{(.*)\} (\S+)', line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            key = (labels.get("verb", ""), labels.get("resource", ""))
            (sums if m.group(1) == "sum" else counts)[key] = float(m.group(3))
    return {k: (sums[k], counts.get(k, 0.0)) for k in sums}


def apiserver_delta(a, b):
    out = {}
    for k, (s1, c1) in b.items():
        s0, c0 = a.get(k, (0.0, 0.0))
        if c1 > c0 and k[0] not in ("WATCH", "watch"):
            out[f"{k[0]} {k[1]}"] = {"count": int(c1 - c0), "mean_ms": (s1 - s0) / (c1 - c0) * 1000}
    return out


# ---------------------------------------------------------------------------------- the watcher
def all_running(pod):
    spec = pod.get("spec", {}).get("containers", [])
    cs = pod.get("status", {}).get("containerStatuses") or []
    if not spec or len(cs) < len(spec):
        return False
    return all((c.get("state") or {}).get("running") is not None for c in cs)


def watch_main(api, rv, out):
    """Runs in its own process: streams pod events, sends (kind, name, mono, wall) for the
    first bound/running event of each pod and for deletions."""
    bound, running, first_status = set(), set(), set()
    try:
        while True:
            c = api.conn(timeout=None)
            path = (f"/api/v1/namespaces/{NS}/pods?watch=true&resourceVersion={rv}"
                    f"&labelSelector={LABEL.replace('=', '%3D')}&timeoutSeconds=3600")
            c.request("GET", path, headers={"Accept": "application/json"})
            r = c.getresponse()
            if r.status != 200:
                out.put(("error", f"watch: HTTP {r.status} {r.read()[:300]!r}", 0, 0))
                return
            out.put(("ready", "", time.monotonic(), time.time()))
            while True:
                line = r.readline()
                mono, wall = time.monotonic(), time.time()
                if not line:
                    break
                line = line.strip()
                if not line:
                    continue
                ev = json.loads(line)
                obj = ev.get("object", {})
                if ev.get("type") == "ERROR":
                    out.put(("error", f"watch ERROR event: {obj}", mono, wall))
                    return
                md = obj.get("metadata", {})
                rv = md.get("resourceVersion", rv)
                name = md.get("name", "")
                if ev.get("type") == "DELETED":
                    bound.discard(name)
                    running.discard(name)
                    first_status.discard(name)
                    out.put(("deleted", name, mono, wall))
                    continue
                if name not in bound and obj.get("spec", {}).get("nodeName"):
                    bound.add(name)
                    out.put(("bound", name, mono, wall))
                st = obj.get("status", {})
                if name not in first_status and (st.get("hostIP") or st.get("containerStatuses")):
                    first_status.add(name)
                    out.put(("status", name, mono, wall))
                if name not in running and all_running(obj):
                    running.add(name)
                    out.put(("running", name, mono, wall))
            c.close()
    except Exception as e:  # noqa: BLE001 - reported to the parent
        out.put(("error", f"watch: {type(e).__name__}: {e}", 0, 0))


class Watch:
    """The watcher process plus a thread that files its reports."""

    def __init__(self, api, rv):
        ctx = multiprocessing.get_context("fork")
        self.q = ctx.Queue()
        self.proc = ctx.Process(target=watch_main, args=(api, rv, self.q), daemon=True)
        self.proc.start()
        self.cv = threading.Condition()
        self.bound, self.running, self.deleted = {}, {}, set()
        self.first_status = {}
        self.error = None
        self.ready = False
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()
        self.wait(lambda: self.ready, 30, "the watch to open")

    def _pump(self):
        while True:
            try:
                kind, name, mono, wall = self.q.get()
            except (EOFError, OSError):
                return
            with self.cv:
                if kind == "ready":
                    self.ready = True
                elif kind == "error":
                    self.error = name
                elif kind == "bound":
                    self.bound[name] = (mono, wall)
                    self.deleted.discard(name)
                elif kind == "running":
                    self.running[name] = (mono, wall)
                elif kind == "status":
                    self.first_status[name] = (mono, wall)
                elif kind == "deleted":
                    self.deleted.add(name)
                    self.bound.pop(name, None)
                    self.running.pop(name, None)
                    self.first_status.pop(name, None)
                self.cv.notify_all()

    def wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        with self.cv:
            while not pred():
                if self.error:
                    raise RuntimeError(self.error)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
                self.cv.wait(left)

    def stop(self):
        if self.proc.is_alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.join(5)


# ---------------------------------------------------------------------------------- the cluster
class Cluster:
    def __init__(self, base, tmpfs=False, up_args=()):
        self.data = os.path.join(base, "data")
        os.makedirs(self.data)
        self.tmpfs = False
        if tmpfs:
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4g,mode=0755", "podwarp-bench",
                            self.data], check=True)
            self.tmpfs = True
        self.registry_port = free_port()
        self.up_args = ["up", "--data-dir", self.data, "--port", str(free_port()),
                        "--node-api-port", str(free_port()), "--registry-port",
                        str(self.registry_port), "--node-name", NODE, *up_args]
        self.started = False

    def podwarp(self, *args, timeout=600):
        return subprocess.run([os.path.join(BIN, "podwarp"), *args], capture_output=True,
                              text=True, timeout=timeout)

    def up(self):
        self.started = True
        t0 = time.monotonic()
        r = self.podwarp(*self.up_args)
        if r.returncode != 0:
            self.dump_logs()
            raise RuntimeError(f"podwarp up failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        self.up_seconds = time.monotonic() - t0
        self.kubeconfig = os.path.join(self.data, "control", "admin.kubeconfig")
        self.sock = os.path.join(self.data, "noded.sock")
        self.image = f"127.0.0.1:{self.registry_port}/podwarp/busybox:latest"

    def pid(self, name):
        try:
            with open(os.path.join(self.data, "up", name + ".pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def dump_logs(self):
        for name in ("noded.log", "control.log"):
            p = os.path.join(self.data, "log", name)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    print(f"--- {name} (tail)\n" + "".join(f.readlines()[-40:]), file=sys.stderr)

    def cgroup_dirs(self):
        """Where noded made its cgroup tree: the path its log names (on a hybrid cgroup v1/v2
        host that is under /sys/fs/cgroup/unified), and the v2 default."""
        out = []
        try:
            with open(os.path.join(self.data, "up", "cgroup-root")) as f:
                name = f.read().strip()
            if name:
                out += [os.path.join("/sys/fs/cgroup", name),
                        os.path.join("/sys/fs/cgroup/unified", name)]
        except OSError:
            pass
        try:
            with open(os.path.join(self.data, "log", "noded.log"), errors="replace") as f:
                for line in f:
                    m = re.search(r"noded: cgroup root (/sys/fs/cgroup/\S+)", line)
                    if m and m.group(1) not in out:
                        out.append(m.group(1))
        except OSError:
            pass
        return out

    def down(self):
        if not self.started:
            return
        cgroups = self.cgroup_dirs()
        r = self.podwarp("down", "--data-dir", self.data, "--purge", timeout=300)
        if r.returncode != 0:
            print(f"podwarp down failed ({r.returncode}): {r.stdout}{r.stderr}", file=sys.stderr)
        # Safety net: whatever of this cluster's pod cgroups `down` left (e.g. pods still
        # running after a failure, on a host where noded's tree is not where down looks) is
        # killed and removed here. These cgroups were made for this run only.
        for cg in cgroups:
            if not os.path.isdir(cg):
                continue
            print(f"pod_start_bench: podwarp down left {cg}; killing and removing it", file=sys.stderr)
            remove_cgroup_tree(cg)

    def unmount(self):
        if self.tmpfs:
            with open("/proc/self/mountinfo") as f:
                mounted = any(line.split()[4] == self.data for line in f)
            self.tmpfs = mounted  # podwarp down unmounts whatever lies under its data dir
        if self.tmpfs:
            r = subprocess.run(["umount", self.data], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"pod_start_bench: umount {self.data}: {r.stderr.strip()}; detaching it",
                      file=sys.stderr)
                subprocess.run(["umount", "-l", self.data])
            self.tmpfs = False

    def warnings(self, limit=8):
        """Warning and error lines of noded's and podwarp-control's logs: (count, first few)."""
        out = {}
        for name in ("noded", "control"):
            lines = []
            try:
                with open(os.path.join(self.data, "log", name + ".log"), errors="replace") as f:
                    lines = [ln.rstrip() for ln in f if re.match(r"^\S+ [WE] ", ln)]
            except OSError:
                pass
            out[name] = (len(lines), lines[:limit])
        return out

    def pickup_times(self):
        """{pod name: wall time} of noded's "api: new pod" log lines."""
        out = {}
        p = os.path.join(self.data, "log", "noded.log")
        rx = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) I pods: api: new pod "
                        + re.escape(NS) + r"/(\S+) ")
        with open(p, errors="replace") as f:
            for line in f:
                m = rx.match(line)
                if m:
                    t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f").timestamp()
                    out[m.group(2)] = t
        return out


def remove_cgroup_tree(root):
    """Kills every process in a cgroup v2 tree (cgroup.kill, else SIGKILL by pid) and removes
    the tree deepest first."""
    dirs = [d for d, _, _ in os.walk(root)]
    for d in dirs:
        try:
            with open(os.path.join(d, "cgroup.kill"), "w") as f:
                f.write("1")
        except OSError:
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    for pid in f.read().split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except (ProcessLookupError, ValueError):
                            pass
            except OSError:
                pass
    for d in sorted(dirs, key=len, reverse=True):
        deadline = time.monotonic() + 5
        while True:
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if time.monotonic() > deadline:
                    print(f"pod_start_bench: rmdir {d}: {e}", file=sys.stderr)
                    break
                time.sleep(0.05)


def pod_body(name, image):
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": dict([LABEL.split("=")])},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "c", "image": image, "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"],
                "resources": {"requests": {"cpu": "1m", "memory": "4Mi"}},
            }],
        },
    }


class Bench:
    def __init__(self, cluster, api, watch, args):
        self.c, self.api, self.w, self.args = cluster, api, watch, args
        self.conn = api.conn()
        self.created = set()

    def create(self, conn, name):
        t0 = time.monotonic()
        st, body = Api.call(conn, "POST", f"/api/v1/namespaces/{NS}/pods",
                            pod_body(name, self.c.image))
        t1 = time.monotonic()
        if st != 201:
            raise RuntimeError(f"create {name}: HTTP {st} {body[:300]!r}")
        self.created.add(name)
        return t0, t1

    def delete_all(self, timeout=180):
        """Deletes every bench pod (grace 0), then waits until the watch saw them go and noded
        no longer has them."""
        names = set(self.created)
        if not names:
            return
        opts = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0}
        st, body = Api.call(self.conn, "DELETE",
                            f"/api/v1/namespaces/{NS}/pods?labelSelector={LABEL.replace('=', '%3D')}",
                            opts)
        if st not in (200, 202):
            for n in sorted(names):
                st, body = Api.call(self.conn, "DELETE", f"/api/v1/namespaces/{NS}/pods/{n}", opts)
                if st not in (200, 202, 404):
                    raise RuntimeError(f"delete {n}: HTTP {st} {body[:300]!r}")
        self.w.wait(lambda: names <= self.w.deleted, timeout, "the bench pods to be deleted")

        def noded_empty():
            st, body = noded_get(self.c.sock, "/pods")
            items = json.loads(body).get("items") or [] if st == 200 else [None]
            return not any(i is None or i.get("metadata", {}).get("name") in names for i in items)

        wait_for(noded_empty, timeout, "noded to clean up the bench pods")
        self.created -= names

    def prepull(self):
        t0, _ = self.create(self.conn, "prepull")
        self.w.wait(lambda: "prepull" in self.w.running, 120, "the pre-pull pod to run")
        ms = (self.w.running["prepull"][0] - t0) * 1000
        self.delete_all()
        return ms

    def sequential(self):
        n, batch = self.args.seq_pods, self.args.batch
        rows = []
        before = phase_totals(self.c.sock)
        for i in range(n):
            name = f"seq-{i:04d}"
            cpu0 = {k: cpu_ms(self.c.pid(k)) for k in ("noded", "control", "etcd")}
            rd0 = {k: run_delay_ms(self.c.pid(k)) for k in ("noded", "control", "etcd")}
            t0, t1 = self.create(self.conn, name)
            self.w.wait(lambda: name in self.w.running, 60, f"{name} to run")
            cpu1 = {k: cpu_ms(self.c.pid(k)) for k in ("noded", "control", "etcd")}
            rd1 = {k: run_delay_ms(self.c.pid(k)) for k in ("noded", "control", "etcd")}
            after = phase_totals(self.c.sock)
            node = {}
            for ph in ("sandbox_ready", "image_ready", "container_started", "ready"):
                s1, c1 = after.get(ph, (0.0, 0.0))
                s0, c0 = before.get(ph, (0.0, 0.0))
                node[ph] = (s1 - s0) * 1000 if c1 - c0 == 1 else None
            before = after
            bound_m, bound_w = self.w.bound.get(name, (None, None))
            fs_m = self.w.first_status.get(name, (None,))[0]
            run_m, _ = self.w.running[name]
            rows.append({"name": name, "send": t0, "api": (t1 - t0) * 1000,
                         "sched": None if bound_m is None else (bound_m - t0) * 1000,
                         "e2e": (run_m - t0) * 1000, "bound_wall": bound_w,
                         "first_status": None if fs_m is None else (fs_m - t0) * 1000,
                         "after_bound": None if bound_m is None else (run_m - bound_m) * 1000,
                         **{"node_" + k: v for k, v in node.items()},
                         **{"cpu_" + k: None if cpu0[k] is None or cpu1[k] is None else cpu1[k] - cpu0[k]
                            for k in cpu0},
                         **{"rd_" + k: None if rd0[k] is None or rd1[k] is None else rd1[k] - rd0[k]
                            for k in rd0}})
            if (i + 1) % batch == 0 or i + 1 == n:
                self.delete_all()
        self.add_pickup(rows)
        return rows

    def add_pickup(self, rows):
        picks = self.c.pickup_times()
        for r in rows:
            pw = picks.get(r["name"])
            r["pickup"] = None if pw is None or r["bound_wall"] is None else \
                (pw - r["bound_wall"]) * 1000
            started = r.get("node_container_started")
            if r["after_bound"] is not None and started is not None:
                r["status_write"] = r["after_bound"] - max(r["pickup"] or 0.0, 0.0) - started
            else:
                r["status_write"] = None

    def burst(self):
        n, nconn = self.args.burst, max(1, min(self.args.burst_conns, self.args.burst))
        conns = [self.api.conn() for _ in range(nconn)]
        names = [f"burst-{i:04d}" for i in range(n)]
        sends, errors = {}, []
        lock = threading.Lock()
        next_i = [0]
        gate = threading.Barrier(nconn + 1)
        before = phase_totals(self.c.sock)

        def worker(conn):
            gate.wait()
            while True:
                with lock:
                    i = next_i[0]
                    next_i[0] += 1
                if i >= n:
                    return
                try:
                    t0, t1 = self.create(conn, names[i])
                    sends[names[i]] = (t0, t1)
                except Exception as e:  # noqa: BLE001
                    errors.append(str(e))
                    return

        threads = [threading.Thread(target=worker, args=(c,)) for c in conns]
        for t in threads:
            t.start()
        gate.wait()
        for t in threads:
            t.join()
        for c in conns:
            c.close()
        if errors:
            raise RuntimeError("burst creates failed: " + "; ".join(errors[:3]))
        self.w.wait(lambda: all(x in self.w.running for x in names), 300, "the burst to run")
        after = phase_totals(self.c.sock)
        first = min(t0 for t0, _ in sends.values())
        first_wall = time.time() - (time.monotonic() - first)
        rows = []
        for x in names:
            t0, t1 = sends[x]
            bound_m, bound_w = self.w.bound.get(x, (None, None))
            fs = self.w.first_status.get(x, (None,))[0]
            rows.append({"name": x, "api": (t1 - t0) * 1000,
                         "first_status": None if fs is None else (fs - t0) * 1000,
                         "sched": None if bound_m is None else (bound_m - t0) * 1000,
                         "e2e": (self.w.running[x][0] - t0) * 1000, "bound_wall": bound_w,
                         "pickup_at": None})
        picks = self.c.pickup_times()
        for r in rows:
            pw = picks.get(r["name"])
            if pw is not None:
                r["pickup_at"] = (pw - first_wall) * 1000  # noded's log line, from the first create
        res = {
            "rows": rows,
            "all_running": (max(self.w.running[x][0] for x in names) - first) * 1000,
            "all_created": (max(t1 for _, t1 in sends.values()) - first) * 1000,
            "all_bound": (max(self.w.bound[x][0] for x in names if x in self.w.bound) - first) * 1000,
            "node_means": {},
        }
        for ph in ("sandbox_ready", "image_ready", "container_started", "ready"):
            s1, c1 = after.get(ph, (0.0, 0.0))
            s0, c0 = before.get(ph, (0.0, 0.0))
            if c1 > c0:
                res["node_means"][ph] = (s1 - s0) / (c1 - c0) * 1000
        return res


def containerd_idle_kib(base):
    """Starts containerd with its own root/state/socket (CRI plugin on, as a node runs it),
    reads its VmRSS after 3 s idle, stops it by pid. None when containerd is not installed."""
    exe = shutil.which("containerd")
    if not exe or not shutil.which("ctr"):
        return None
    d = os.path.join(base, "containerd")
    os.makedirs(d)
    sock = os.path.join(d, "containerd.sock")
    cfg = os.path.join(d, "config.toml")
    with open(cfg, "w") as f:
        f.write(f'version = 2\nroot = "{d}/root"\nstate = "{d}/state"\n'
                f'[grpc]\n  address = "{sock}"\n[ttrpc]\n  address = "{sock}.ttrpc"\n'
                f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{d}/opt"\n'
                f'[plugins."io.containerd.grpc.v1.cri".cni]\n  bin_dir = "{d}/cni-bin"\n'
                f'  conf_dir = "{d}/cni-conf"\n')
    log = open(os.path.join(d, "containerd.log"), "wb")
    p = subprocess.Popen([exe, "--config", cfg], stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        wait_for(lambda: subprocess.run(["ctr", "-a", sock, "version"],
                                        capture_output=True).returncode == 0, 30, "containerd")
        time.sleep(3)
        return rss_kib(p.pid)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.close()
        # containerd may leave its state dir's tmpfs-less mounts behind only if it ran
        # containers; this one ran none. The base dir is removed by the caller.


def cpu_ms(pid):
    """utime + stime of a process (its threads, not its children), in ms."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def run_delay_ms(pid):
    """Time the process's threads spent runnable but waiting for a CPU (schedstat), in ms."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[1])
            except (OSError, IndexError, ValueError):
                pass
    except OSError:
        return None
    return total / 1e6


def cpu_snapshot(cluster, extra=None):
    out = {name: cpu_ms(cluster.pid(name)) for name in ("noded", "control", "etcd", "registry")}
    for name in ("noded", "control", "etcd"):
        out[name + " waiting for a CPU"] = run_delay_ms(cluster.pid(name))
    out["bench (this script + its watcher)"] = (
        (cpu_ms(os.getpid()) or 0.0) + (cpu_ms(extra) or 0.0 if extra else 0.0))
    return out


def cpu_delta(a, b):
    return {k: (b[k] - a[k]) if a.get(k) is not None and b.get(k) is not None else None for k in a}


def renice(pids, value):
    """Sets the nice value of every thread of these processes (ours: started by this run)."""
    for pid in pids:
        if not pid:
            continue
        # With sched_autogroup_enabled, each session (podwarp up starts every process in its
        # own) is one scheduling group whose weight is set here; nice of threads only orders
        # threads within the group.
        try:
            with open(f"/proc/{pid}/autogroup", "w") as f:
                f.write(str(value))
        except OSError:
            pass
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                os.setpriority(os.PRIO_PROCESS, int(tid), value)
            except OSError as e:
                print(f"pod_start_bench: setpriority {pid}/{tid}: {e}", file=sys.stderr)


def footprint(cluster):
    return {name: rss_kib(cluster.pid(name)) for name in ("noded", "control", "etcd", "registry")}


# ---------------------------------------------------------------------------------- reporting
def summarize(seq, burst, fp_idle, fp_pods, containerd_kib, prepull_ms, args, up_s):
    out = {"seq": {}, "burst": {}, "footprint": {}, "prepull_ms": prepull_ms, "up_s": up_s}
    e2e = [r["e2e"] for r in seq]
    s = out["seq"]
    s["n"] = len(seq)
    for p in (50, 90, 99):
        s[f"p{p}"] = pct(e2e, p)
    s["max"] = max(e2e) if e2e else float("nan")
    med = {}
    for k in ("api", "sched", "pickup", "node_sandbox_ready", "node_image_ready",
              "node_container_started", "node_ready", "status_write", "after_bound"):
        med[k] = pct([r.get(k) for r in seq], 50)
    # Per-pod phase lengths (node phases are cumulative from noded's worker creation).
    med["sandbox"] = med["node_sandbox_ready"]
    med["volumes_image"] = pct([None if r["node_image_ready"] is None or r["node_sandbox_ready"] is None
                                else r["node_image_ready"] - r["node_sandbox_ready"] for r in seq], 50)
    med["container"] = pct([None if r["node_container_started"] is None or r["node_image_ready"] is None
                            else r["node_container_started"] - r["node_image_ready"] for r in seq], 50)
    s["phases_p50"] = med
    s["phases_p99"] = {k: pct([r.get(k) for r in seq], 99)
                       for k in ("api", "sched", "pickup", "node_container_started", "status_write")}
    b = out["burst"]
    be2e = [r["e2e"] for r in burst["rows"]]
    b.update({"n": len(be2e), "all_running": burst["all_running"],
              "all_created": burst["all_created"], "all_bound": burst["all_bound"],
              "p50": pct(be2e, 50), "p99": pct(be2e, 99), "max": max(be2e),
              "sched_p50": pct([r["sched"] for r in burst["rows"]], 50),
              "api_p50": pct([r["api"] for r in burst["rows"]], 50),
              "node_means": burst["node_means"]})
    out["footprint"] = {"idle_kib": fp_idle, "pods_kib": fp_pods, "containerd_idle_kib": containerd_kib}
    return out


def ok(v, goal):
    return "PASS" if v <= goal else "FAIL"


def print_report(res, args):
    s, b, f = res["seq"], res["burst"], res["footprint"]
    ph = s["phases_p50"]
    print("\n## Pod start latency (podwarp up, single node; image cached, IfNotPresent)\n")
    print(f"cluster up in {res['up_s']:.1f} s; first pod incl. image pull: {fmt_ms(res['prepull_ms'])}; "
          f"nice {args.nice}; data dir on {'tmpfs' if args.tmpfs else 'the /tmp filesystem'}; load average before the run {res.get('load', '?')}\n")
    print("| measure | podwarp | goal | | upstream reference | ratio |")
    print("|---|---|---|---|---|---|")
    print(f"| one at a time p50 ({s['n']} pods) | {fmt_ms(s['p50'])} | ≤ 30 ms | {ok(s['p50'], GOALS['seq_p50'])} "
          f"| p50 ≈ 1.1 s measured | {UPSTREAM_P50_MS / s['p50']:.0f}x faster |")
    print(f"| one at a time p90 | {fmt_ms(s['p90'])} | | | | |")
    print(f"| one at a time p99 | {fmt_ms(s['p99'])} | ≤ 80 ms | {ok(s['p99'], GOALS['seq_p99'])} "
          f"| SLO p99 ≤ 5 s | {UPSTREAM_SLO_P99_MS / s['p99']:.0f}x below |")
    print(f"| one at a time max | {fmt_ms(s['max'])} | | | | |")
    print(f"| burst of {b['n']}: all Running | {fmt_ms(b['all_running'])} | ≤ 2 s "
          f"| {ok(b['all_running'], GOALS['burst_all'])} | SLO p99 ≤ 5 s per pod | |")
    print(f"| burst per-pod p50 | {fmt_ms(b['p50'])} | | | p50 ≈ 1.1 s | {UPSTREAM_P50_MS / b['p50']:.1f}x faster |")
    print(f"| burst per-pod p99 | {fmt_ms(b['p99'])} | | | SLO p99 ≤ 5 s | {UPSTREAM_SLO_P99_MS / b['p99']:.1f}x below |")
    print(f"\nburst: all created after {fmt_ms(b['all_created'])}, all bound after {fmt_ms(b['all_bound'])}; "
          f"per-pod create round trip p50 {fmt_ms(b['api_p50'])}, create→bound p50 {fmt_ms(b['sched_p50'])}; "
          "noded means (worker created →): "
          + ", ".join(f"{k} {fmt_ms(v)}" for k, v in b["node_means"].items()))
    print("\n### Phases, one at a time (medians per pod; node phases from noded's /metrics)\n")
    print("| phase | p50 | p99 |")
    print("|---|---|---|")
    p99 = s["phases_p99"]
    rows = [("API write (create round trip)", ph["api"], p99["api"]),
            ("scheduling (create → nodeName on the watch)", ph["sched"], p99["sched"]),
            ("noded pickup (bound on watch → noded log 'new pod', ms clock)", ph["pickup"], p99["pickup"]),
            ("noded sandbox (worker → sandbox_ready)", ph["sandbox"], None),
            ("noded volumes + image (→ image_ready)", ph["volumes_image"], None),
            ("noded container start (→ container_started)", ph["container"], None),
            ("noded total (worker → container_started)", ph["node_container_started"], p99["node_container_started"]),
            ("status write (container started → Running on the watch)", ph["status_write"], p99["status_write"]),
            ("bound → Running on the watch", ph["after_bound"], None),
            ("end to end", s["p50"], s["p99"])]
    for label, a, c in rows:
        print(f"| {label} | {fmt_ms(a)} | {fmt_ms(c) if c is not None else ''} |")
    cpu = res.get("cpu")
    if cpu:
        print("\n### CPU time by process (utime+stime; 'waiting for a CPU' = runnable, not running)\n")
        print(f"| process | one at a time, per pod ({s['n']} pods, incl. deletes) | burst of {b['n']} (whole burst) |")
        print("|---|---|---|")
        for k in cpu["seq"]:
            a, c = cpu["seq"][k], cpu["burst"][k]
            per = "n/a" if a is None or not s["n"] else f"{a / s['n']:.1f} ms"
            print(f"| {k} | {per} | {'n/a' if c is None else f'{c:.0f} ms'} |")
        starts = {k: sum(r.get("cpu_" + k) or 0.0 for r in res.get("seq_rows", [])) / max(1, s["n"])
                  for k in ("noded", "control", "etcd")}
        waits = {k: pct([r.get("rd_" + k) for r in res.get("seq_rows", [])], 50)
                 for k in ("noded", "control", "etcd")}
        print("| of that, create → Running only (mean per pod) | "
              + ", ".join(f"{k} {v:.1f} ms" for k, v in starts.items()) + " | |")
        print("| create → Running, waiting for a CPU (median per pod) | "
              + ", ".join(f"{k} {v:.1f} ms" for k, v in waits.items()) + " | |")
        print(f"\nwall time: one at a time {cpu['seq_wall_ms'] / 1000:.1f} s; burst "
              f"{cpu['burst_wall_ms']:.0f} ms until all Running (2 cores)")
    if res.get("burst_apiserver"):
        print("\napiserver requests during the burst (server-side mean): " + ", ".join(
            f"{k} ×{v['count']} {v['mean_ms']:.1f} ms" for k, v in sorted(res["burst_apiserver"].items())))
    for k, (n, first) in (res.get("log_warnings") or {}).items():
        if n:
            print(f"\n{k}.log: {n} warning/error lines, first ones:\n  " + "\n  ".join(x[:300] for x in first))
    print("\n## Footprint (VmRSS)\n")
    print("| process | idle (node Ready, 0 pods) | with %d pods | reference |" % b["n"])
    print("|---|---|---|---|")
    refs = {"noded": f"kubelet ceiling {KUBELET_IDLE_CEILING_MIB:.0f} MiB at 0 pods (+ containerd "
                     f"{CONTAINERD_IDLE_MIB:.0f} MiB idle here)",
            "control": "", "etcd": "(context)", "registry": "(test-only local registry)"}
    fi, fp = f["idle_kib"], f["pods_kib"]

    def mib(v):
        return "n/a" if v is None else f"{v / MIB:.1f} MiB"

    for k in ("noded", "control", "etcd", "registry"):
        print(f"| podwarp-{k} | {mib(fi.get(k))} | {mib(fp.get(k))} | {refs[k]} |" if k in ("noded", "control")
              else f"| {k} | {mib(fi.get(k))} | {mib(fp.get(k))} | {refs[k]} |")
    if f["containerd_idle_kib"] is not None:
        print(f"| containerd (measured now, CRI on, idle) | {mib(f['containerd_idle_kib'])} | | "
              f"{CONTAINERD_IDLE_MIB:.0f} MiB in the issue |")
    if fi.get("noded"):
        ref = KUBELET_IDLE_CEILING_MIB + CONTAINERD_IDLE_MIB
        print(f"\nnoded idle = {fi['noded'] / MIB / KUBELET_IDLE_CEILING_MIB:.2f} of kubelet's ceiling, "
              f"{fi['noded'] / MIB / ref:.2f} of kubelet ceiling + containerd; "
              f"noded with {b['n']} pods = {fp['noded'] / MIB / KUBELET_IDLE_CEILING_MIB:.2f} of kubelet's idle ceiling")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seq-pods", type=int, default=200)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--burst", type=int, default=100)
    ap.add_argument("--burst-conns", type=int, default=20)
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--no-containerd", action="store_true")
    ap.add_argument("--tmpfs", action="store_true",
                    help="put the cluster's data dir (pod dirs, image store, overlay upper dirs) "
                         "on a tmpfs mounted for this run, to take the host's disk out of the picture")
    ap.add_argument("--up-arg", action="append", default=[],
                    help="one more argument for `podwarp up` (repeatable), e.g. "
                         "--up-arg=--no-network-policy to compare")
    ap.add_argument("--nice", type=int, default=0,
                    help="run the cluster's processes and this script at this nice value (e.g. -10) "
                         "to approximate an otherwise idle machine on a shared one")
    args, _ = ap.parse_known_args()
    args.batch = max(1, min(args.batch, 100))  # the node takes 110 pods; keep room for the rest
    if os.geteuid() != 0:
        print("pod_start_bench: needs root (podwarp up runs noded); skipped")
        return 0
    load0 = " ".join(f"{x:.1f}" for x in os.getloadavg())
    base = tempfile.mkdtemp(prefix="podwarp-pod-start-bench-")
    cluster = None
    watch = None
    try:
        cluster = Cluster(base, tmpfs=args.tmpfs, up_args=args.up_arg)
        containerd_kib = None if args.no_containerd else containerd_idle_kib(base)
        cluster.up()
        api = Api(cluster.kubeconfig, base)
        if args.nice:
            renice([cluster.pid(k) for k in ("etcd", "control", "noded", "registry")] + [os.getpid()],
                   args.nice)
        time.sleep(2)  # let the node settle after Ready
        fp_idle = footprint(cluster)
        c = api.conn()
        st, body = Api.call(c, "GET", f"/api/v1/namespaces/{NS}/pods?labelSelector={LABEL.replace('=', '%3D')}")
        if st != 200:
            raise RuntimeError(f"list pods: HTTP {st} {body[:200]!r}")
        rv = json.loads(body)["metadata"]["resourceVersion"]
        c.close()
        watch = Watch(api, rv)
        bench = Bench(cluster, api, watch, args)
        try:
            prepull_ms = bench.prepull()
            print(f"pre-pull pod ran after {prepull_ms:.0f} ms; one at a time: {args.seq_pods} pods",
                  flush=True)
            c0 = cpu_snapshot(cluster, watch.proc.pid)
            w0 = time.monotonic()
            seq = bench.sequential()
            c1 = cpu_snapshot(cluster, watch.proc.pid)
            w1 = time.monotonic()
            print(f"burst: {args.burst} pods", flush=True)
            a1 = apiserver_totals(api)
            burst = bench.burst()
            c2 = cpu_snapshot(cluster, watch.proc.pid)
            a2 = apiserver_totals(api)
            cpu = {"seq": cpu_delta(c0, c1), "seq_wall_ms": (w1 - w0) * 1000,
                   "burst": cpu_delta(c1, c2), "burst_wall_ms": burst["all_running"]}
            time.sleep(2)
            fp_pods = footprint(cluster)
            bench.delete_all()
        except Exception:
            cluster.dump_logs()
            raise
        res = summarize(seq, burst, fp_idle, fp_pods, containerd_kib, prepull_ms, args,
                        cluster.up_seconds)
        res["cpu"] = cpu
        res["log_warnings"] = cluster.warnings()
        res["load"] = load0
        res["seq_rows"] = seq
        res["burst_apiserver"] = apiserver_delta(a1, a2)
        print_report(res, args)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump({"summary": res, "burst_rows": burst["rows"]}, fh, indent=1)
    finally:
        try:
            if watch is not None:
                watch.stop()
            if cluster is not None:
                cluster.down()
                cluster.unmount()
        finally:  # also when the teardown itself fails (e.g. a missing binary)
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
