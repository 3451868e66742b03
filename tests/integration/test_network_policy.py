"""NetworkPolicy enforcement end to end: podwarp-control + podwarp-noded --pod-network routed
--network-policy (bpf/netpol.bpf.c on every pod's host veth, tables from netpolicy/), driven by
kubectl. Needs root.

The whole test process first moves into a network namespace of its own (test_pod_network's
enter_new_netns): etcd, the control plane, the registry, noded, the pod veths and every packet
stay there. Traffic is sent from inside pods (kubectl exec ... nc) and, for the "node traffic
is always allowed" rule, from this (the node's) namespace.

Checked: no policy -> open; an Ingress default deny isolates the selected pod only (the node
still reaches it); podSelector, namespaceSelector and port rules allow exactly what they name;
an Egress policy isolates the client, and DNS-less egress to a named port works; deleting the
policies opens traffic again; enforcement holds while noded is killed (-9) and after it
restarts; the pins are where the README says; `podwarp trace` reports a denied and an allowed
new flow with the pods' names."""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import noded_api_harness as api_h  # noqa: E402
import noded_harness as h  # noqa: E402
from test_pod_network import enter_new_netns  # noqa: E402

SKIP = h.skip_reason()
NODE = "np-node1"


def pod(name, image, labels, command, ns="default", ports=()):
    c = {"name": "c", "image": image, "command": ["sh", "-c", command]}
    if ports:
        c["ports"] = [{"name": n, "containerPort": p} for n, p in ports]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"terminationGracePeriodSeconds": 1, "automountServiceAccountToken": False,
                     "containers": [c]}}


def policy(name, spec, ns="default"):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


WEB = "mkdir -p /w && echo hello-np > /w/index.html && exec httpd -f -p 8081 -h /w"
SLEEPER = "exec sleep 100000"


@unittest.skipIf(SKIP, SKIP)
class NetworkPolicyTest(unittest.TestCase):
    reg = cluster = noded = base = None

    @classmethod
    def setUpClass(cls):
        enter_new_netns()
        try:
            cls.reg = h.RegistryFixture()
            cls.cluster = harness.Cluster(components="apiserver,scheduler,controllers")
            cls.base = tempfile.mkdtemp(prefix="podwarp-netpol-it-")
            certs = api_h.node_credentials(cls.cluster.data_dir, NODE,
                                           os.path.join(cls.base, "certs"))
            assert certs, "node-credentials failed"
            cls.noded = api_h.ApiNoded(os.path.join(cls.base, "noded"),
                                       f"podwarp-it-netpol-{os.getpid()}",
                                       os.path.join(certs, "node.kubeconfig"), node_name=NODE,
                                       certs=certs,
                                       extra_args=["--pod-network", "routed", "--network-policy"])
            cls.noded.start()
            cls.setup_pods()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        api_h.close_fixtures(cls)

    # ------------------------------------------------------------------ helpers
    @classmethod
    def apply(cls, obj):
        cls.cluster.kubectl("apply", "-f", "-", input=json.dumps(obj))

    @classmethod
    def setup_pods(cls):
        img = cls.reg.image
        cls.apply({"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "np-other", "labels": {"team": "a"}}})
        cls.apply(pod("web", img, {"app": "web"}, WEB, ports=[("http", 8081)]))
        cls.apply(pod("client", img, {"role": "client"}, SLEEPER))
        cls.apply(pod("other", img, {"role": "other"}, SLEEPER))
        cls.apply(pod("remote", img, {"role": "remote"}, SLEEPER, ns="np-other"))
        cls.ips = {}
        for ns, name in (("default", "web"), ("default", "client"), ("default", "other"),
                         ("np-other", "remote")):
            cls.ips[name] = h.wait_for(lambda: cls.running_ip(ns, name), 90, interval=0.2,
                                       what=f"{ns}/{name} Running with an IP")

    @classmethod
    def running_ip(cls, ns, name):
        r = cls.cluster.kubectl("get", "pod", "-n", ns, name, "-o", "json", check=False)
        if r.returncode != 0:
            return None
        st = json.loads(r.stdout)["status"]
        return st.get("podIP") if st.get("phase") == "Running" else None

    def fetch_from(self, client, ip, port=8081, ns="default"):
        """True when `client` gets the page of ip:port within 2 s (nc from inside the pod)."""
        r = self.cluster.kubectl(
            "exec", "-n", ns, client, "--", "sh", "-c",
            f"printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {ip} {port} 2>&1",
            check=False, timeout=30)
        return "hello-np" in r.stdout

    def fetch_from_node(self, ip, port=8081):
        try:
            with urllib.request.urlopen(f"http://{ip}:{port}/index.html", timeout=2) as r:
                return "hello-np" in r.read().decode()
        except OSError:
            return False

    def expect(self, client, allowed, ns="default", port=8081, timeout=15):
        """Waits until the verdict of client -> web:port is `allowed` (policies apply within a
        moment of the API write), then checks it holds twice more."""
        ip = self.ips["web"]
        deadline = time.time() + timeout
        while True:
            got = self.fetch_from(client, ip, port, ns)
            if got == allowed:
                break
            if time.time() > deadline:
                self.fail(f"{ns}/{client} -> web:{port}: allowed={got}, want {allowed}\n"
                          + self.noded.log_text()[-3000:])
            time.sleep(0.3)
        for _ in range(2):
            self.assertEqual(self.fetch_from(client, ip, port, ns), allowed,
                             f"{ns}/{client} -> web:{port} flapped")

    @contextlib.contextmanager
    def trace(self, *args):
        """`podwarp trace` on noded's pins (JSON, one event), killed at the end if still running."""
        pins = os.path.join(self.noded.base, "bpf", "podwarp-noded", "netpol")
        proc = subprocess.Popen(
            [os.path.join(harness.BIN, "podwarp"), "trace", "--pin-dir", pins,
             "--kubeconfig", self.cluster.kubeconfig, "-o", "json", "--count", "1",
             "--timeout", "30", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()

    def trace_event(self, proc):
        """The first event `proc` printed (it ends after one, or after its 30 s)."""
        out, err = proc.communicate(timeout=40)
        self.assertEqual(proc.returncode, 0, err)
        self.assertTrue(out.strip(), f"no flow event; stderr: {err}")
        return json.loads(out.splitlines()[0])

    def assert_client_to_web(self, ev):
        self.assertEqual(ev["protocol"], "TCP", ev)
        self.assertEqual((ev["source"].get("namespace"), ev["source"].get("pod")),
                         ("default", "client"), ev)
        self.assertEqual((ev["destination"].get("namespace"), ev["destination"].get("pod")),
                         ("default", "web"), ev)
        self.assertEqual(ev["destination"]["port"], 8081, ev)
        self.assertEqual(ev["source"]["ip"], self.ips["client"], ev)

    def metric(self, series):
        """The value of one series of noded's /metrics (0 when absent)."""
        status, body = self.noded.get("/metrics")
        for line in body.decode(errors="replace").splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
        return 0

    def delete_policies(self):
        for ns in ("default", "np-other"):
            self.cluster.kubectl("delete", "networkpolicy", "--all", "-n", ns, "--wait=false")

    def tearDown(self):
        self.delete_policies()

    # ------------------------------------------------------------------ tests
    def test_01_open_without_policies_and_pins(self):
        pins = os.path.join(self.noded.base, "bpf", "podwarp-noded", "netpol")
        for m in ("pw_np_ports", "pw_np_peers", "pw_np_ct", "pw_np_host", "pw_np_config"):
            self.assertTrue(os.path.exists(os.path.join(pins, m)), m)
        self.expect("client", True)
        self.expect("remote", True, ns="np-other")
        self.assertTrue(self.fetch_from_node(self.ips["web"]))

    def test_02_ingress_default_deny_keeps_node_traffic(self):
        self.apply(policy("deny-web", {"podSelector": {"matchLabels": {"app": "web"}},
                                       "policyTypes": ["Ingress"]}))
        self.expect("client", False)
        self.expect("remote", False, ns="np-other")
        # The node where the pod runs is always allowed; pods that no policy selects are not
        # isolated (web -> client is not tested here; client's ingress stays open).
        self.assertTrue(self.fetch_from_node(self.ips["web"]))
        # The drops and the isolation show in noded's metrics (exported every 2 s).
        h.wait_for(lambda: self.metric('podwarp_netpol_packets_total{verdict="DeniedIngress"}') > 0
                   and self.metric("podwarp_netpol_isolated_pods") == 1, 10, interval=0.5,
                   what="netpol metrics")
        self.delete_policies()
        self.expect("client", True)

    def test_03_pod_namespace_and_port_rules(self):
        self.apply(policy("allow-some", {
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": {"role": "client"}}}],
                 "ports": [{"port": "http"}]},
                {"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}],
                 "ports": [{"protocol": "TCP", "port": 8081}]},
            ]}))
        self.expect("client", True)
        self.expect("other", False)
        self.expect("remote", True, ns="np-other")
        # A port no rule names: nothing listens there either, so the check is the drop (nc
        # waits out its 2 s) against the refusal (nc ends at once) without the policy.
        t0 = time.time()
        self.assertFalse(self.fetch_from("client", self.ips["web"], 8082))
        self.assertGreater(time.time() - t0, 1.5, "8082 was refused, not dropped")

    def test_04_egress_isolation(self):
        self.apply(policy("client-egress", {
            "podSelector": {"matchLabels": {"role": "client"}},
            "policyTypes": ["Egress"]}))
        self.expect("client", False)
        self.expect("other", True)
        self.apply(policy("client-egress", {
            "podSelector": {"matchLabels": {"role": "client"}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "web"}}}],
                        "ports": [{"port": "http"}]}]}))
        self.expect("client", True)

    def test_05_enforced_across_a_noded_restart(self):
        self.apply(policy("deny-web", {"podSelector": {"matchLabels": {"app": "web"}},
                                       "policyTypes": ["Ingress"]}))
        self.expect("client", False)
        self.noded.kill9()
        # noded is down: the programs and the pinned tables keep enforcing (no kubectl exec
        # without noded: check from the node, which is allowed, and count on the restart).
        self.assertTrue(self.fetch_from_node(self.ips["web"]))
        self.noded.start()
        self.expect("client", False, timeout=5)
        self.delete_policies()
        self.expect("client", True)
        self.assertIn("netpol: synced", self.noded.log_text())

    def test_06_trace(self):
        with self.trace("--verdict", "denied") as proc:
            self.apply(policy("deny-web", {"podSelector": {"matchLabels": {"app": "web"}},
                                           "policyTypes": ["Ingress"]}))
            self.expect("client", False)
            ev = self.trace_event(proc)
        self.assertEqual((ev["verdict"], ev["reason"], ev["direction"]),
                         ("DENIED", "DeniedIngress", "ingress"), ev)
        self.assert_client_to_web(ev)
        self.assertRegex(ev["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

        # Opened again: the client's new flows are allowed (no policy isolates web or client).
        with self.trace("--verdict", "allowed", "--pod", "default/web") as proc:
            self.delete_policies()
            self.expect("client", True)
            ev = self.trace_event(proc)
        self.assertEqual(ev["verdict"], "ALLOWED", ev)
        self.assertIn(ev["reason"], ("Unisolated", "AllowedNew"), ev)
        self.assert_client_to_web(ev)


if __name__ == "__main__":
    unittest.main(verbosity=2)
