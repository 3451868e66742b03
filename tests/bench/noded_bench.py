#!/usr/bin/env python3
"""noded_bench: container start through podwarp-noded against runc and containerd, same
rootfs (the busybox test image), same machine, same run (issue 3, acceptance 5).

  sudo PODWARP_BIN=build/bin tests/bench/noded_bench.py [--noded-runs 30] [--noded-pods 100]
  (other arguments are ignored: scripts/bench.sh passes the same ones to every benchmark)

Container start = from the trigger to the moment the container's process runs: it writes one
line into a FIFO (bind-mounted at /m) that this script polls, so every runtime is timed by the
same clock and the same marker (`sh -c 'echo x > /m/fifo'`):
  noded     trigger = the pod manifest renamed into --manifest-dir (cached image,
            IfNotPresent): inotify, static-pod parse, sandbox (net/ipc/uts pins, lo up, pod
            cgroup), volumes, log FIFOs, overlay rootfs, clone3 -> exec.  Also noded's own
            per-phase trace (podwarp_pod_start_phase_seconds, mean per phase).
  runc      trigger = `runc run` spawned (bundle from the same layer, rootfs read-only as
            runc's spec, bind mount of the FIFO dir).
  ctr       trigger = `ctr run --rm` spawned, against our own containerd (temp root/state/
            socket, CRI plugin disabled), image imported from the test image's OCI archive.
Then: N pods (sleep) written at once, time until all are Running in /pods; noded's RSS idle and
with N pods. Medians, p90 and ratios are printed; nothing is asserted (goals: p50 <= 10 ms and
>= 5x faster than runc; RSS <= 15 MiB idle and <= 40 MiB with 100 pods).
Everything lives under /tmp/podwarp-noded-bench-<pid> and cgroups named
podwarp-noded-bench-<pid>; all of it is removed at the end, also on failure."""
import argparse
import json
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import noded_harness as h  # noqa: E402

MARK = "echo x > /m/fifo"

POD = """apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {image}
    imagePullPolicy: IfNotPresent
    command: {command}
    volumeMounts: [{{name: m, mountPath: /m}}]
  volumes:
  - name: m
    hostPath: {{path: {mdir}}}
"""


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * (len(v) - 1) + 0.5))] if v else float("nan")


class Marker:
    """A FIFO the containers write one line into; poll() returns when it is readable."""

    def __init__(self, dir):
        self.dir = dir
        os.makedirs(dir, exist_ok=True)
        self.path = os.path.join(dir, "fifo")
        os.mkfifo(self.path)
        self.fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)

    def drain(self):
        try:
            while os.read(self.fd, 4096):
                pass
        except BlockingIOError:
            pass

    def wait(self, timeout=30):
        p = select.poll()
        p.register(self.fd, select.POLLIN)
        if not p.poll(timeout * 1000):
            raise RuntimeError("no marker within %ss" % timeout)
        return time.monotonic()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def metrics_totals(noded):
    """{phase: (sum seconds, count)} of podwarp_pod_start_phase_seconds."""
    st, body = noded.get("/metrics")
    sums, counts = {}, {}
    for line in body.decode().splitlines():
        m = re.match(r'podwarp_pod_start_phase_seconds_(sum|count)\{phase="([a-z_]+)"\} (\S+)', line)
        if m:
            (sums if m.group(1) == "sum" else counts)[m.group(2)] = float(m.group(3))
    return {k: (sums[k], counts.get(k, 0.0)) for k in sums}


def bench_noded(noded, image, marker, runs):
    """Latencies (ms) and noded's mean phase times over the timed runs (warm-up excluded)."""
    lat = []
    before = None
    cmd = json.dumps(["sh", "-c", MARK])
    for i in range(runs + 3):
        if i == 3:
            before = metrics_totals(noded)
        marker.drain()
        name = f"start-{i}"
        text = POD.format(name=name, image=image, command=cmd, mdir=marker.dir)
        tmp = os.path.join(noded.manifests, f".{name}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        t0 = time.monotonic()
        os.rename(tmp, os.path.join(noded.manifests, f"{name}.yaml"))
        t1 = marker.wait()
        if i >= 3:  # warm-up runs are not counted
            lat.append((t1 - t0) * 1000)
        h.wait_for(lambda: (noded.pod(name) or {}).get("status", {}).get("phase") == "Succeeded",
                   30, what=f"{name} Succeeded")
        noded.remove_manifest(f"{name}.yaml")
        h.wait_for(lambda: noded.pod(name) is None, 30, what=f"{name} removed")
    after = metrics_totals(noded)
    phases = {}
    for k, (s, c) in after.items():
        s0, c0 = before.get(k, (0.0, 0.0))
        if c > c0:
            phases[k] = (s - s0) / (c - c0) * 1000
    return lat, phases


def make_bundle(base, layer_tgz, mdir, cgroup_path):
    bundle = os.path.join(base, "bundle")
    rootfs = os.path.join(bundle, "rootfs")
    os.makedirs(rootfs)
    with tarfile.open(layer_tgz) as t:
        t.extractall(rootfs)
    subprocess.run(["runc", "spec", "--bundle", bundle], check=True)
    with open(os.path.join(bundle, "config.json")) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", MARK]
    cfg["linux"]["cgroupsPath"] = cgroup_path
    cfg["mounts"].append({"destination": "/m", "type": "bind", "source": mdir,
                          "options": ["rbind", "rw"]})
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f)
    return bundle


def bench_runc(base, bundle, marker, runs):
    lat, total = [], []
    state = os.path.join(base, "runc-state")
    for i in range(runs + 3):
        marker.drain()
        t0 = time.monotonic()
        p = subprocess.Popen(["runc", "--root", state, "run", "--bundle", bundle, f"b{i}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t1 = marker.wait()
        p.wait()
        t2 = time.monotonic()
        if p.returncode != 0:
            raise RuntimeError(f"runc run exited {p.returncode}")
        if i >= 3:
            lat.append((t1 - t0) * 1000)
            total.append((t2 - t0) * 1000)
    return lat, total


class Containerd:
    def __init__(self, base):
        self.dir = os.path.join(base, "containerd")
        os.makedirs(self.dir)
        self.sock = os.path.join(self.dir, "containerd.sock")
        cfg = os.path.join(self.dir, "config.toml")
        with open(cfg, "w") as f:
            f.write(f'version = 2\nroot = "{self.dir}/root"\nstate = "{self.dir}/state"\n'
                    'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                    f'[grpc]\n  address = "{self.sock}"\n'
                    f'[ttrpc]\n  address = "{self.sock}.ttrpc"\n'
                    f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{self.dir}/opt"\n')
        self.log = open(os.path.join(self.dir, "containerd.log"), "wb")
        self.proc = subprocess.Popen(["containerd", "--config", cfg], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        h.wait_for(lambda: subprocess.run(self.ctr("version"), capture_output=True).returncode == 0,
                   20, what="containerd")

    def ctr(self, *args):
        return ["ctr", "-a", self.sock, "-n", NS] + list(args)

    def stop(self):
        h.stop_proc(self.proc)
        self.log.close()


def bench_ctr(cd, archive, mdir, marker, runs):
    subprocess.run(cd.ctr("images", "import", "--base-name", "docker.io/podwarp/busybox", archive),
                   check=True, capture_output=True)
    lat, total = [], []
    for i in range(runs + 3):
        marker.drain()
        t0 = time.monotonic()
        p = subprocess.Popen(cd.ctr("run", "--rm", "--mount",
                                    f"type=bind,src={mdir},dst=/m,options=rbind:rw",
                                    "docker.io/podwarp/busybox:latest", f"c{i}", "sh", "-c", MARK),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t1 = marker.wait()
        p.wait()
        t2 = time.monotonic()
        if p.returncode != 0:
            raise RuntimeError(f"ctr run exited {p.returncode}")
        if i >= 3:
            lat.append((t1 - t0) * 1000)
            total.append((t2 - t0) * 1000)
    return lat, total


def bench_many(noded, image, pods):
    cmd = json.dumps(["sleep", "3600"])
    text = """apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {image}
    imagePullPolicy: IfNotPresent
    command: {cmd}
"""
    for i in range(pods):
        with open(os.path.join(noded.manifests, f".many-{i}.tmp"), "w") as f:
            f.write(text.format(name=f"many-{i}", image=image, cmd=cmd))
    t0 = time.monotonic()
    for i in range(pods):
        os.rename(os.path.join(noded.manifests, f".many-{i}.tmp"),
                  os.path.join(noded.manifests, f"many-{i}.yaml"))
    def all_running():
        ps = [p for p in noded.pods() if p["metadata"]["name"].startswith("many-")]
        return len(ps) == pods and all(p["status"].get("phase") == "Running" and all(
            "running" in c["state"] for c in p["status"].get("containerStatuses", []))
            for p in ps)
    h.wait_for(all_running, 300, interval=0.02, what=f"{pods} pods Running")
    return (time.monotonic() - t0) * 1000


NS = f"podwarp-noded-bench-{os.getpid()}"


def main():
    ap = argparse.ArgumentParser(allow_abbrev=False)
    ap.add_argument("--noded-runs", dest="runs", type=int, default=30)
    ap.add_argument("--noded-pods", dest="pods", type=int, default=100)
    args, _ = ap.parse_known_args()
    why = h.skip_reason()
    if why:
        print(f"noded_bench: skipped: {why}")
        return 0
    base = f"/tmp/{NS}"
    os.makedirs(base)
    cg_name = NS
    reg = noded = cd = None
    runc_cg = f"/{NS}-runc/b"
    try:
        reg = h.RegistryFixture()
        noded = h.Noded(os.path.join(base, "noded"), cg_name)
        noded.start()
        time.sleep(1)
        rss_idle = rss_kib(noded.proc.pid)
        marker = Marker(os.path.join(base, "m"))
        # Pull once (not timed): the benchmark measures starts with a cached image.
        nd, phases = bench_noded(noded, reg.image, marker, args.runs)
        rss_after_starts = rss_kib(noded.proc.pid)
        many_ms = bench_many(noded, reg.image, args.pods)
        time.sleep(2)
        rss_many = rss_kib(noded.proc.pid)

        env = dict(l.strip().split("=", 1) for l in open(os.path.join(reg.image_dir, "digests.env")))
        layer = os.path.join(reg.image_dir, "oci", "blobs", "sha256", env["LAYER1"].split(":")[1])
        bundle = make_bundle(base, layer, marker.dir, runc_cg)
        rc_lat, rc_total = bench_runc(base, bundle, marker, args.runs)
        cd = Containerd(base)
        ct_lat, ct_total = bench_ctr(cd, os.path.join(reg.image_dir, "busybox-oci.tar"),
                                     marker.dir, marker, args.runs)

        print(f"\nnoded container start (busybox, cached image), {args.runs} runs, ms:")
        print(f"  podwarp-noded manifest->exec  p50 {pct(nd, .5):7.2f}  p90 {pct(nd, .9):7.2f}")
        print(f"  runc run          spawn->exec  p50 {pct(rc_lat, .5):7.2f}  p90 {pct(rc_lat, .9):7.2f}"
              f"   (run to exit p50 {pct(rc_total, .5):.2f})")
        print(f"  ctr run --rm      spawn->exec  p50 {pct(ct_lat, .5):7.2f}  p90 {pct(ct_lat, .9):7.2f}"
              f"   (run to exit p50 {pct(ct_total, .5):.2f})")
        print(f"  ratio p50: runc/noded {pct(rc_lat, .5) / pct(nd, .5):.1f}x, "
              f"ctr/noded {pct(ct_lat, .5) / pct(nd, .5):.1f}x")
        print("  noded's own trace (mean ms from manifest seen): " +
              ", ".join(f"{k} {v:.2f}" for k, v in sorted(phases.items(), key=lambda kv: kv[1])))
        print(f"  {args.pods} pods written at once -> all Running: {many_ms:.0f} ms")
        print(f"  noded RSS: idle {rss_idle / 1024:.1f} MiB, after {args.runs + 3} starts "
              f"{rss_after_starts / 1024:.1f} MiB, with {args.pods} pods {rss_many / 1024:.1f} MiB")
        return 0
    finally:
        if cd:
            cd.stop()
        if noded:
            noded.cleanup()
        if reg:
            reg.close()
        for mp in h.mounts_under(base):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        # runc's and containerd's cgroups (cgroup v1 hierarchies too on hybrid hosts).
        for top in (f"{NS}-runc", NS):
            for hier in os.listdir("/sys/fs/cgroup"):
                d = os.path.join("/sys/fs/cgroup", hier, top)
                if os.path.isdir(d):
                    for sub, _, _ in sorted(os.walk(d), key=lambda t: len(t[0]), reverse=True):
                        try:
                            os.rmdir(sub)
                        except OSError:
                            pass
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
