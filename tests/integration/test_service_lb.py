"""Issue 6 (service load balancing, first wiring): `podwarp up --service-lb` runs noded with its
eBPF socket load balancer fed from the API (noded/lb/service_sync.h): the socket programs sit
on noded's pod cgroup root, the maps are pinned under <bpf-dir>/podwarp-noded/lb, and
Services + EndpointSlices become map entries.

Checked from INSIDE a client pod (kubectl exec; all traffic stays in the pod's own network
namespace, nothing is sent from the machine's namespace):
  - a Service without endpoints refuses at once (ECONNREFUSED from the connect4 program; with
    no program the pod, which has no route, would get ENETUNREACH);
  - a selectorless Service with a hand-written EndpointSlice whose endpoint address lives on
    the client pod's own loopback (an httpd sidecar serves it) is reached through its
    ClusterIP, stops being reached when the slice goes, and keeps working while noded is
    killed and after it restarts (pins reused);
  - a Service over real httpd pods, when pods have IPs (pod network); skipped otherwise;
  - iptables-save shows nothing of podwarp's.

Needs root. All ports are kernel-chosen."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from up_harness import UpClusterTestCase, podwarp  # noqa: E402

NODE = "podwarp-lb-node"
# An address only the client pod has (on its loopback): the hand-written endpoint.
LOCAL_EP = "10.99.0.1"


class ServiceLbTest(UpClusterTestCase):
    NODE = NODE
    PREFIX = "podwarp-lbwire-"
    EXTRA_UP_ARGS = ("--service-lb",)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pin_dir = os.path.join(cls.bpf, "podwarp-noded", "lb")

    # ------------------------------------------------------------------ helpers
    def apply(self, obj):
        self.kubectl("apply", "-f", "-", input=json.dumps(obj))

    def wait_until(self, pred, timeout=30, message="condition"):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            ok, last = pred()
            if ok:
                return last
            time.sleep(0.2)
        self.dump_logs()
        self.fail(f"timed out waiting for {message}; last: {last}")

    def in_client(self, script, timeout=30):
        """Runs a shell script in the client pod's client container (its network namespace)."""
        r = self.kubectl("exec", "lb-client", "-c", "client", "--", "sh", "-c", script,
                         check=False, timeout=timeout)
        return r.stdout + r.stderr

    def cluster_ip(self, name):
        return self.kjson("get", "service", name)["spec"]["clusterIP"]

    def connect(self, ip, port=80):
        """One TCP connect from the client pod: (output, seconds measured inside the pod by
        busybox time, or None)."""
        out = self.in_client(f"time nc -w 3 {ip} {port} </dev/null 2>&1")
        m = re.search(r"real\s+(\d+)m\s*([\d.]+)s", out)
        return out, int(m.group(1)) * 60 + float(m.group(2)) if m else None

    def fetch(self, ip):
        # (busybox wget of the test image crashes resolving the "http" service name: nc.)
        return self.in_client(
            f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} 80 2>&1", timeout=20)

    def ensure_client(self):
        if self.kubectl("get", "pod", "lb-client", check=False).returncode == 0:
            return
        self.apply({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "lb-client"},
            "spec": {"containers": [
                # Serves "hello from podwarp" on :80 of the pod's namespace.
                {"name": "web", "image": f"{self.image}:httpd"},
                # Owns LOCAL_EP on the pod's loopback (the hand-written endpoint's address).
                {"name": "client", "image": f"{self.image}:latest",
                 "command": ["sh", "-c",
                             f"ip addr add {LOCAL_EP}/32 dev lo && exec sleep 100000"],
                 "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}},
                # Requests http://$(cat /tmp/target)/ every 0.2 s once the file exists.
                {"name": "prober", "image": f"{self.image}:latest",
                 "command": ["sh", "-c",
                             "while true; do if [ -s /tmp/target ]; then "
                             "if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | "
                             "nc -w 1 $(cat /tmp/target) 80 2>&1 | grep -q hello; "
                             "then echo \"$(date +%s) ok\"; else echo \"$(date +%s) fail\"; fi; "
                             "fi; sleep 0.2; done"]}]}})
        self.kubectl("wait", "--for=condition=Ready", "pod/lb-client", "--timeout=120s",
                     timeout=150)

    def selectorless(self, name, endpoints):
        self.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                    "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
        if endpoints is not None:
            self.apply({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": name + "-1",
                             "labels": {"kubernetes.io/service-name": name,
                                        "endpointslice.kubernetes.io/managed-by": "lbwire-test"}},
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
                "endpoints": [{"addresses": [a], "conditions": {"ready": True}}
                              for a in endpoints]})

    # ------------------------------------------------------------------ tests, in order
    def test_01_datapath_pinned_and_attached_to_pod_cgroup_root(self):
        for name in ("pw_lb_services", "pw_lb_backends", "pw_lb_members"):
            self.assertTrue(os.path.exists(os.path.join(self.pin_dir, name)), name)
        links = os.listdir(os.path.join(self.pin_dir, "links"))
        self.assertGreaterEqual(len(links), 8, links)
        with open(os.path.join(self.data, "log", "noded.log"), errors="replace") as f:
            log = f.read()
        with open(os.path.join(self.data, "up", "cgroup-root")) as f:
            cg_root = f.read().strip()
        m = re.search(r"service lb: socket programs on (\S+)", log)
        self.assertIsNotNone(m, "noded did not start the service LB")
        self.assertTrue(m.group(1).rstrip(",").endswith("/" + cg_root), m.group(1))
        def synced():
            with open(os.path.join(self.data, "log", "noded.log"), errors="replace") as f:
                return "service lb: synced" in f.read(), None
        self.wait_until(synced, message="the first service sync")

    def test_02_no_endpoints_refuses_promptly(self):
        self.ensure_client()
        self.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "empty"},
                    "spec": {"selector": {"app": "nothing-has-this"},
                             "ports": [{"port": 80, "protocol": "TCP"}]}})
        ip = self.cluster_ip("empty")
        self.assertRegex(ip, r"^\d+\.\d+\.\d+\.\d+$")

        def refused():
            out, secs = self.connect(ip)
            return "refused" in out, (out, secs)

        out, secs = self.wait_until(refused, message=f"ECONNREFUSED from {ip}:80")
        self.assertIsNotNone(secs, out)
        self.assertLess(secs, 1.0, out)

    def test_03_clusterip_to_endpoint_and_endpoint_removal(self):
        self.ensure_client()
        # The pod reaches its own endpoint address directly (sanity of the set-up).
        self.assertIn("hello from podwarp", self.fetch(LOCAL_EP))
        self.selectorless("loop", [LOCAL_EP])
        ip = self.cluster_ip("loop")
        self.wait_until(lambda: ("hello from podwarp" in (o := self.fetch(ip)), o),
                        message=f"http://{ip}/ through the service LB")
        # A different service port (no frontend): not translated, no route in the pod.
        out, _ = self.connect(ip, 81)
        self.assertNotIn("hello", out)
        # The slice goes: the service has no endpoint, connections are refused.
        self.kubectl("delete", "endpointslice", "loop-1")
        self.wait_until(lambda: ("refused" in (o := self.connect(ip)[0]), o), timeout=10,
                        message="refusal after the EndpointSlice was deleted")
        self.selectorless("loop", [LOCAL_EP])
        self.wait_until(lambda: ("hello from podwarp" in (o := self.fetch(ip)), o), timeout=10,
                        message="the endpoint back")

    def test_04_noded_restart_keeps_services(self):
        """A prober container requests the service every 0.2 s while noded is killed and
        restarted (kubectl exec needs noded, the prober does not): no request fails."""
        self.ensure_client()
        self.selectorless("loop", [LOCAL_EP])
        ip = self.cluster_ip("loop")
        self.wait_until(lambda: ("hello from podwarp" in (o := self.fetch(ip)), o),
                        message="service before the restart")
        r = self.kubectl("exec", "lb-client", "-c", "prober", "--", "sh", "-c",
                         f"echo {ip} > /tmp/target")

        def probes():
            out = self.kubectl("logs", "lb-client", "-c", "prober").stdout
            return [ln.split() for ln in out.splitlines() if len(ln.split()) == 2]

        self.wait_until(lambda: (len(probes()) >= 3, None), message="prober running")
        services_pin = os.path.join(self.pin_dir, "pw_lb_services")
        inode = os.stat(services_pin).st_ino
        with open(os.path.join(self.data, "up", "noded.pid")) as f:
            pid = int(f.read().strip())
        killed_at = time.time()
        os.kill(pid, signal.SIGKILL)
        time.sleep(2)  # noded is down: the pinned programs and maps keep serving
        r = podwarp(*self.up_args)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        restarted_at = time.time()
        self.assertEqual(os.stat(services_pin).st_ino, inode, "the maps were not reused")
        time.sleep(2)
        self.kubectl("exec", "lb-client", "-c", "prober", "--", "sh", "-c", "rm /tmp/target")
        got = probes()
        during = [p for p in got if killed_at - 1 <= int(p[0]) <= restarted_at + 1]
        self.assertGreaterEqual(len(during), 5, got)
        self.assertEqual([p for p in got if p[1] != "ok"], [], got)
        # Changes after the restart are applied.
        self.kubectl("delete", "endpointslice", "loop-1")
        self.wait_until(lambda: ("refused" in (o := self.connect(ip)[0]), o), timeout=10,
                        message="refusal after the restart")

    def test_05_service_over_pods(self):
        self.ensure_client()
        self.kubectl("create", "deployment", "web", f"--image={self.image}:httpd",
                     "--replicas=2")
        self.kubectl("rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
        pods = self.kjson("get", "pods", "-l", "app=web")["items"]
        # podwarp up runs noded with --pod-network=routed: every pod has an address.
        self.assertTrue(all(p["status"].get("podIP") for p in pods), [p["status"] for p in pods])
        self.kubectl("expose", "deployment", "web", "--port=80")
        ip = self.cluster_ip("web")
        self.wait_until(lambda: ("hello from podwarp" in (o := self.fetch(ip)), o),
                        message=f"http://{ip}/ to the web pods")

    def test_06_no_iptables_rules(self):
        if shutil.which("iptables-save") is None:
            self.skipTest("no iptables-save")
        r = subprocess.run(["iptables-save"], capture_output=True, text=True, timeout=30)
        for word in ("podwarp", "KUBE-"):
            self.assertNotIn(word, r.stdout)


if __name__ == "__main__":
    unittest.main()
