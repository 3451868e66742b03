"""Helpers for podwarp-noded integration tests and the noded benchmark: a docker-registry on a
free loopback port with the busybox test images pushed (scripts/make-test-images.sh), and a
standalone podwarp-noded with its own root, manifest, log dirs and cgroup root, all under one
temporary folder. Everything is stopped by pid and removed in close(), also after failures:
processes left in the test cgroup are killed through cgroup.kill, mounts under the folder are
unmounted, cgroups removed deepest first."""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("PODWARP_SOURCE") or os.path.join(HERE, "..", "..")
BIN = os.environ.get("PODWARP_BIN") or os.path.join(SOURCE, "build", "bin")
# Test nodes ignore how full the host's disk is, as kind's nodes do: on a shared machine with
# less than 10% free, the kubelet's default nodefs threshold would taint every test node
# with disk-pressure and no pod would be scheduled. (Memory keeps the default.)
TEST_EVICTION = ["--eviction-hard", "memory.available<100Mi,nodefs.available<0%"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cgroup2_mount():
    """The mount point of the cgroup2 filesystem, from /proc/self/mountinfo."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] == "cgroup2":
                return left.split()[4].replace("\\040", " ")
    return None


def mounts_under(path):
    """Mount points at or below path (deepest first)."""
    out = []
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path + "/"):
                out.append(mp)
    return sorted(out, key=len, reverse=True)


def skip_reason():
    """Why these tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (namespaces, cgroups, overlayfs mounts); CI runs it as root"
    for tool in ("/usr/bin/docker-registry", "/usr/bin/skopeo", "/bin/busybox"):
        if not os.path.exists(tool):
            return f"needs {tool}"
    if not os.path.exists(os.path.join(BIN, "podwarp-noded")):
        return f"podwarp-noded not built in {BIN}"
    if cgroup2_mount() is None:
        return "no cgroup2 mount"
    return None


def wait_for(pred, timeout, interval=0.05, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def stop_proc(proc, sig=signal.SIGTERM, timeout=10):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Registry:
    """docker-registry on 127.0.0.1:<free port>, storage in dir."""

    def __init__(self, dir):
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        os.makedirs(os.path.join(dir, "storage"), exist_ok=True)
        cfg = os.path.join(dir, "config.yml")
        with open(cfg, "w") as f:
            f.write("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                    f"    rootdirectory: {dir}/storage\n  delete:\n    enabled: true\n"
                    f"http:\n  addr: {self.addr}\n")
        self.log = open(os.path.join(dir, "registry.log"), "wb")
        self.proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", cfg], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        def up():
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            try:
                c.request("GET", "/v2/")
                return c.getresponse().status == 200
            except OSError:
                return False
            finally:
                c.close()
        wait_for(up, 20, what="docker-registry")

    def push_test_images(self, outdir, repo="podwarp/busybox"):
        subprocess.run([os.path.join(SOURCE, "scripts", "make-test-images.sh"), outdir,
                        "--push", self.addr, "--repo", repo], check=True)
        return f"{self.addr}/{repo}"

    def stop(self):
        stop_proc(self.proc)
        self.log.close()


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout=5):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.path)
        except OSError:
            s.close()
            raise
        self.sock = s


class Noded:
    """A standalone podwarp-noded in <base>/{root,manifests,logs}, cgroup root
    <cgroup2>/<cgroup_name>, exit recorder pinned in a bpffs noded mounts on <base>/bpf
    (unmounting it in cleanup() detaches the program). start()/kill9()/stop() by pid;
    cleanup() removes everything."""

    def __init__(self, base, cgroup_name, node_name="node1", extra_args=()):
        self.base = base
        self.root = os.path.join(base, "root")
        self.manifests = os.path.join(base, "manifests")
        self.logs = os.path.join(base, "podlogs")
        self.sock = os.path.join(base, "noded.sock")
        self.node_name = node_name
        self.cgroup_name = cgroup_name
        self.cgroup = os.path.join(cgroup2_mount(), cgroup_name)
        self.extra_args = list(extra_args)
        self.proc = None
        self.runs = 0
        for d in (self.root, self.manifests, self.logs):
            os.makedirs(d, exist_ok=True)

    def log_path(self, n=None):
        return os.path.join(self.base, f"noded-{self.runs if n is None else n}.log")

    def start(self, wait=True):
        self.runs += 1
        self.logf = open(self.log_path(), "wb")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "podwarp-noded"), "--standalone", "--manifest-dir", self.manifests,
             "--root-dir", self.root, "--api-socket", self.sock, "--cgroup-root", self.cgroup_name,
             "--pod-log-dir", self.logs, "--node-name", self.node_name,
             "--bpf-dir", os.path.join(self.base, "bpf")] + self.extra_args,
            stdout=self.logf, stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            wait_for(lambda: self.get("/healthz")[0] == 200, 20, what="noded /healthz")
        return self

    def log_text(self):
        out = ""
        for n in range(1, self.runs + 1):
            try:
                with open(self.log_path(n), errors="replace") as f:
                    out += f.read()
            except OSError:
                pass
        return out

    def get(self, path):
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"noded exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
        c = UnixHTTP(self.sock)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read()
        except OSError as e:
            return 0, str(e).encode()
        finally:
            c.close()

    def pods(self):
        st, body = self.get("/pods")
        if st != 200:
            return []
        return json.loads(body)["items"]

    def pod(self, name):
        for p in self.pods():
            if p["metadata"]["name"] in (name, f"{name}-{self.node_name}"):
                return p
        return None

    def write_manifest(self, fname, text):
        tmp = os.path.join(self.manifests, "." + fname + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, os.path.join(self.manifests, fname))

    def remove_manifest(self, fname):
        os.unlink(os.path.join(self.manifests, fname))

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.logf.close()

    def stop(self):
        stop_proc(self.proc)
        if self.proc:
            self.logf.close()

    def cgroup_procs(self):
        """pids of every process under the test cgroup root."""
        pids = []
        for d, _, files in os.walk(self.cgroup):
            if "cgroup.procs" in files:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    pids += [int(x) for x in f.read().split()]
        return pids

    def container_inits(self):
        """{container cgroup dir name: pid of its init} (the process whose parent is outside)."""
        out = {}
        for d, _, files in os.walk(self.cgroup):
            if "cgroup.procs" not in files or d == self.cgroup:
                continue
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids = {int(x) for x in f.read().split()}
            for pid in pids:
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                except OSError:
                    continue
                if ppid not in pids:
                    out[os.path.basename(d)] = pid
        return out

    def cleanup(self):
        """Stops noded, kills what is left in the test cgroup, unmounts, removes cgroups."""
        try:
            self.kill9()
        except Exception:
            pass
        if os.path.isdir(self.cgroup):
            try:
                with open(os.path.join(self.cgroup, "cgroup.kill"), "w") as f:
                    f.write("1")
            except OSError:
                pass
            deadline = time.time() + 10
            while self.cgroup_procs() and time.time() < deadline:
                time.sleep(0.05)
        for mp in mounts_under(self.base):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        if os.path.isdir(self.cgroup):
            for d, _, _ in sorted(os.walk(self.cgroup), key=lambda t: len(t[0]), reverse=True):
                try:
                    os.rmdir(d)
                except OSError:
                    pass


class RegistryFixture:
    """One registry with the test images for a whole test class."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="podwarp-noded-reg-")
        self.registry = None
        try:
            self.registry = Registry(self.dir)
            self.image_dir = os.path.join(self.dir, "images")
            os.makedirs(self.image_dir)
            self.repo = self.registry.push_test_images(self.image_dir)
            self.image = f"{self.repo}:latest"
        except BaseException:
            self.close()
            raise

    def close(self):
        if self.registry:
            self.registry.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
