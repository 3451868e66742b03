"""A real podwarp control plane for integration tests: etcd on free loopback ports and
podwarp-control on a kernel-chosen port, each in a temporary folder, stopped by pid and
removed at the end (also on failure). Tests talk to it with the installed kubectl and the
official Python client, exactly as users do."""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BIN = os.environ.get("PODWARP_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "bin")
KUBECTL = os.environ.get("KUBECTL", "/usr/bin/kubectl")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Etcd:
    """With unix_socket, etcd also listens on <root>/client.sock:0 (etcd takes a unix URL's
    host:port as a path relative to its working directory), which `unix_endpoint` names for
    podwarp-control: a control plane in another network namespace reaches it there."""

    def __init__(self, root, unix_socket=False):
        self.dir = os.path.join(root, "etcd")
        self.client_port = free_port()
        peer = free_port()
        while peer == self.client_port:
            peer = free_port()
        self.endpoint = f"http://127.0.0.1:{self.client_port}"
        listen = self.endpoint
        if unix_socket:
            listen += ",unix://client.sock:0"
            self.unix_endpoint = f"unix:{root}/client.sock:0"
        self.root = root
        self.argv = ["etcd", "--name", "t", "--data-dir", self.dir,
                     "--listen-client-urls", listen, "--advertise-client-urls", self.endpoint,
                     "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                     "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                     "--initial-cluster", f"t=http://127.0.0.1:{peer}"]
        self.start()

    def start(self):
        """(Re)starts etcd on the same ports and data, and waits until it answers."""
        self.log = open(os.path.join(self.root, "etcd.log"), "ab")
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, cwd=self.root)
        deadline = time.time() + 30
        while time.time() < deadline:
            r = subprocess.run(["etcdctl", "--endpoints", self.endpoint, "endpoint", "health"],
                               capture_output=True, env=dict(os.environ, ETCDCTL_API="3"))
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError("etcd did not start")

    def stop(self):
        stop_pid(self.proc)
        self.log.close()


def stop_pid(proc, timeout=10):
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Cluster:
    """etcd + podwarp-control. Use as a context manager or call close(). With `netns` (the name
    of a network namespace under /run/netns that the test made), podwarp-control and kubectl
    run inside it (nsenter) and reach etcd over its unix socket."""

    def __init__(self, extra_args=(), components="apiserver", netns=None):
        self.root = tempfile.mkdtemp(prefix="podwarp-it-")
        self.extra_args = list(extra_args)
        self.components = components
        self.prefix = ["nsenter", f"--net=/run/netns/{netns}"] if netns else []
        self.control = None
        try:
            self.etcd = Etcd(self.root, unix_socket=bool(netns))
            self.etcd_endpoint = self.etcd.unix_endpoint if netns else self.etcd.endpoint
            self.data_dir = os.path.join(self.root, "control")
            self.cache_dir = os.path.join(self.root, "kubectl-cache")
            self.start_control()
        except BaseException:
            self.close()
            raise

    def start_control(self, port=0):
        log_path = os.path.join(self.root, "control.log")
        self.control_log = open(log_path, "ab")
        self.control = subprocess.Popen(
            self.prefix + [os.path.join(BIN, "podwarp-control"), "--etcd-servers", self.etcd_endpoint,
             "--data-dir", self.data_dir, "--secure-port", str(port), "--components", self.components]
            + self.extra_args,
            stdout=subprocess.PIPE, stderr=self.control_log, start_new_session=True)
        line = b""
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.control.stdout.readline()
            if not line:
                break
            if b"serving on" in line:
                break
        if b"serving on" not in line:
            stop_pid(self.control)
            raise RuntimeError("podwarp-control did not start:\n" + open(log_path).read()[-4000:])
        url = line.decode().split("serving on ")[1].split()[0]
        self.server = url
        self.port = int(url.rsplit(":", 1)[1])
        self.kubeconfig = os.path.join(self.data_dir, "admin.kubeconfig")

    def restart_control(self):
        stop_pid(self.control)
        self.control_log.close()
        self.control.stdout.close()
        self.start_control(self.port)

    def kubectl(self, *args, input=None, check=True, timeout=60):
        cmd = self.prefix + [KUBECTL, "--kubeconfig", self.kubeconfig, "--cache-dir", self.cache_dir] + list(args)
        r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({r.returncode}):\n"
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def kubectl_json(self, *args):
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def close(self):
        if self.control is not None:
            stop_pid(self.control)
            self.control_log.close()
            if self.control.stdout:
                self.control.stdout.close()
        if getattr(self, "etcd", None) is not None:
            self.etcd.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class ClusterTestCase(unittest.TestCase):
    """One cluster per test class."""
    cluster = None

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster()

    @classmethod
    def tearDownClass(cls):
        if cls.cluster is not None:
            cls.cluster.close()

    def wait_until(self, predicate, timeout=20, message="condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        self.fail(f"timed out waiting for {message}")


def main():
    unittest.main(verbosity=2)
