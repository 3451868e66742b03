"""A whole single-node cluster from `podwarp up` (etcd, podwarp-control, the local registry with
the test images, podwarp-noded) for integration tests, on kernel-chosen ports, in a temporary
data dir; `podwarp down --purge` at the end, which must leave no process, cgroup, mount or BPF
pin behind (checked). Needs root."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN, KUBECTL, free_port  # noqa: E402
from noded_harness import TEST_EVICTION  # noqa: E402


def podwarp(*args, timeout=300):
    return subprocess.run([os.path.join(BIN, "podwarp"), *args], capture_output=True,
                          text=True, timeout=timeout)


def cgroup2_mount():
    """Where cgroup2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts)."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split()[0] == "cgroup2":
                return pre.split()[4]
    return "/sys/fs/cgroup"


class UpClusterTestCase(unittest.TestCase):
    """One `podwarp up` cluster per test class. Subclasses set NODE, PREFIX, EXTRA_UP_ARGS."""
    NODE = "podwarp-it-node"
    PREFIX = "podwarp-up-"
    EXTRA_UP_ARGS = ()
    data = None

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root")
        cls.data = tempfile.mkdtemp(prefix=cls.PREFIX)
        cls.registry_port = free_port()
        cls.up_args = ["up", *cls.EXTRA_UP_ARGS, "--data-dir", cls.data, "--port",
                       str(free_port()), "--node-api-port", str(free_port()), "--registry-port",
                       str(cls.registry_port), "--node-name", cls.NODE, *TEST_EVICTION]
        r = podwarp(*cls.up_args)
        if r.returncode != 0:
            cls.dump_logs()
            podwarp("down", "--data-dir", cls.data, "--purge")
            shutil.rmtree(cls.data, ignore_errors=True)
            raise AssertionError(f"podwarp up failed:\n{r.stdout}\n{r.stderr}")
        cls.env = dict(os.environ, KUBECONFIG=os.path.join(cls.data, "control",
                                                           "admin.kubeconfig"))
        cls.image = f"127.0.0.1:{cls.registry_port}/podwarp/busybox"
        with open(os.path.join(cls.data, "up", "bpf-dir")) as f:
            cls.bpf = f.read().strip()

    @classmethod
    def dump_logs(cls):
        for name in ("noded.log", "control.log"):
            p = os.path.join(cls.data, "log", name)
            if os.path.exists(p):
                with open(p, errors="replace") as f:
                    print(f"--- {name} (tail)\n" + "".join(f.readlines()[-60:]), file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        if cls.data is None:
            return
        with open(os.path.join(cls.data, "up", "cgroup-root")) as f:
            cgroup = os.path.join(cgroup2_mount(), f.read().strip())
        pids = []
        for name in ("etcd", "control", "registry", "noded"):
            try:
                with open(os.path.join(cls.data, "up", name + ".pid")) as f:
                    pids.append(int(f.read().strip()))
            except (OSError, ValueError):
                pass
        r = podwarp("down", "--data-dir", cls.data, "--purge", timeout=120)
        leftovers = []
        with open("/proc/self/mountinfo") as f:
            leftovers += [line.split()[4] for line in f if cls.data in line.split()[4]]
        leftovers += [p for p in (cgroup, cls.bpf) if os.path.exists(p)]
        for pid in pids:
            try:
                os.kill(pid, 0)
                leftovers.append(f"pid {pid}")
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(cls.data, ignore_errors=True)
        assert r.returncode == 0, f"podwarp down failed: {r.stdout}{r.stderr}"
        assert not leftovers, f"podwarp down left behind: {leftovers}"

    def kubectl(self, *args, check=True, timeout=90, input=None):
        r = subprocess.run([KUBECTL, *args], capture_output=True, text=True, timeout=timeout,
                           env=self.env, input=input)
        if check and r.returncode != 0:
            self.fail(f"kubectl {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}")
        return r

    def kjson(self, *args):
        return json.loads(self.kubectl(*args, "-o", "json").stdout)
