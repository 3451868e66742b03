"""The pod network end to end (issue 6, "Pod network"): a standalone podwarp-noded with
--pod-network=routed, run inside a network namespace this test creates (the whole test process
unshares its network namespace first, so noded's "host" namespace, the registry on its loopback
and all traffic are inside it; nothing reaches the machine's own namespace). Checks: pods get
podIPs from --pod-cidr, a pod fetches a page from another pod's IP, the "host" reaches a pod,
a kill -9 of noded does not interrupt pod traffic and keeps the IPs, removing a pod removes its
veth and its IP record. Root only (CI); skipped with the reason otherwise."""
import ctypes
import fcntl
import json
import os
import shutil
import socket
import struct
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import noded_api_harness as api_h  # noqa: E402
import noded_harness as h  # noqa: E402

SKIP = h.skip_reason()
CLONE_NEWNET = 0x40000000
POD_CIDR = "10.244.5.0/24"


HOST_IP = "10.99.0.1"
_in_own_netns = False


def enter_new_netns():
    """This process (single-threaded here) and its future children move to a new network
    namespace with only `lo`, which is brought up and given HOST_IP/32 (label lo:1) as the
    "node's" address (the source of host -> pod traffic, as a real node's address would be)."""
    global _in_own_netns
    if _in_own_netns:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ifr = struct.pack("16sH", b"lo", 0)
    flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, ifr))[1]  # SIOCGIFFLAGS
    fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"lo", flags | 0x1))  # SIOCSIFFLAGS, IFF_UP
    def sin(ip):
        return struct.pack("16sH2s4s8s", b"lo:1", socket.AF_INET, b"\0\0", socket.inet_aton(ip),
                           b"\0" * 8)
    fcntl.ioctl(s, 0x8916, sin(HOST_IP))  # SIOCSIFADDR
    fcntl.ioctl(s, 0x891C, sin("255.255.255.0"))  # SIOCSIFNETMASK: 10.99.0.0/24 is "on-link"
    s.close()
    _in_own_netns = True


def routes():
    """{destination CIDR: gateway} of this namespace's IPv4 main table (/proc/self/net/route)."""
    out = {}
    with open("/proc/self/net/route") as f:
        for line in f.readlines()[1:]:
            c = line.split()
            dst = socket.inet_ntoa(struct.pack("<I", int(c[1], 16)))
            gw = socket.inet_ntoa(struct.pack("<I", int(c[2], 16)))
            mask = bin(int(c[7], 16)).count("1")
            out[f"{dst}/{mask}"] = gw
    return out


def links():
    """Interface names of this process's network namespace (/proc/self/net/dev is per netns)."""
    with open("/proc/self/net/dev") as f:
        return [l.split(":")[0].strip() for l in f.readlines()[2:]]


WEB_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /w && echo hello-from-{name} > /w/index.html && exec httpd -f -p 8081 -h /w"]
"""

CLIENT_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: wget
    image: {image}
    imagePullPolicy: IfNotPresent
    # (busybox-static's wget crashes in its resolver; nc takes the IP literally)
    command: ["sh", "-c", "while true; do printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {target} 8081 | grep hello || echo FAIL; sleep 0.2; done"]
"""


@unittest.skipIf(SKIP, SKIP)
class PodNetworkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        enter_new_netns()
        cls.reg = h.RegistryFixture()

    @classmethod
    def tearDownClass(cls):
        cls.reg.close()

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="podwarp-podnet-it-")
        self.addCleanup(shutil.rmtree, self.base, True)
        name = f"podwarp-it-{os.getpid()}-podnet"
        self.noded = h.Noded(self.base, name, extra_args=[
            "--crash-backoff-ms", "1000", "--pod-network", "routed", "--pod-cidr", POD_CIDR])
        self.addCleanup(self.noded.cleanup)
        self.image = self.reg.image

    def dump(self):
        return json.dumps(self.noded.pods(), indent=1)[-3000:] + "\n--- noded log ---\n" + \
            self.noded.log_text()[-4000:]

    def running_ip(self, name):
        def ready():
            p = self.noded.pod(name)
            if not p or p.get("status", {}).get("phase") != "Running" or not p["status"].get("podIP"):
                return None
            return p
        try:
            p = h.wait_for(ready, 60, interval=0.1, what=f"{name} Running with a podIP")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.dump()}") from None
        return p["status"]["podIP"], p["metadata"]["uid"]

    def fetch(self, ip):
        with urllib.request.urlopen(f"http://{ip}:8081/index.html", timeout=3) as r:
            return r.read().decode().strip()

    def client_log(self):
        out = ""
        for d, _, files in os.walk(self.noded.logs):
            for f in files:
                if "client" in d and f.endswith(".log"):
                    with open(os.path.join(d, f), errors="replace") as fh:
                        out += fh.read()
        return out

    def test_pods_get_ips_talk_and_survive_noded_restart(self):
        n = self.noded
        n.start()
        n.write_manifest("web.yaml", WEB_POD.format(name="web", image=self.image))
        n.write_manifest("web2.yaml", WEB_POD.format(name="web2", image=self.image))
        ip, uid = self.running_ip("web")
        ip2, uid2 = self.running_ip("web2")
        prefix = POD_CIDR.rsplit(".", 1)[0] + "."
        self.assertTrue(ip.startswith(prefix), ip)
        self.assertNotEqual(ip, ip2)
        self.assertEqual(n.pod("web")["status"]["podIPs"], [{"ip": ip}])
        self.assertTrue(os.path.exists(os.path.join(n.root, "net", "ipam", ip)))
        # The host (this test's namespace) reaches the pods.
        h.wait_for(lambda: self.fetch(ip) == "hello-from-web", 10, what="host -> web")
        self.assertEqual(self.fetch(ip2), "hello-from-web2")
        # Pod -> pod: the client pod fetches web's page by its IP.
        n.write_manifest("client.yaml", CLIENT_POD.format(image=self.image, target=ip))
        self.running_ip("client")
        try:
            h.wait_for(lambda: "hello-from-web" in self.client_log(), 20,
                       what="client pod -> web pod")
        except AssertionError as e:
            raise AssertionError(f"{e}\nclient log: {self.client_log()[-1000:]}\n{self.dump()}")

        # noded killed and restarted: the pods keep their IPs and traffic never stops.
        n.kill9()
        for _ in range(5):
            self.assertEqual(self.fetch(ip), "hello-from-web")
            time.sleep(0.1)
        # A record of a pod whose sandbox is gone (noded died between the two removals).
        ghost = os.path.join(n.root, "net", "ipam", prefix + "200")
        with open(ghost, "w") as f:
            f.write("no-such-pod-uid\n")
        n.start()
        self.assertFalse(os.path.exists(ghost), "orphaned address not released")
        before = self.client_log().count("hello-from-web")
        h.wait_for(lambda: n.pod("web") and n.pod("web")["status"].get("podIP") == ip, 20,
                   what="web's podIP after the restart")
        for _ in range(10):
            self.assertEqual(self.fetch(ip), "hello-from-web")
            time.sleep(0.1)
        h.wait_for(lambda: self.client_log().count("hello-from-web") > before + 3, 20,
                   what="client pod still fetching after the restart")
        self.assertNotIn("FAIL", self.client_log(), "a pod->pod request failed")
        self.assertIn("found again", n.log_text())

        # Removing a pod removes its veth and frees its IP.
        veths = [l for l in links() if l.startswith("pw")]
        self.assertEqual(len(veths), 3, links())
        n.remove_manifest("web2.yaml")
        h.wait_for(lambda: n.pod("web2") is None, 20, what="web2 removed")
        h.wait_for(lambda: len([l for l in links() if l.startswith("pw")]) == 2, 10,
                   what="web2's veth removed")
        self.assertFalse(os.path.exists(os.path.join(n.root, "net", "ipam", ip2)))
        for f in ("client.yaml", "web.yaml"):
            n.remove_manifest(f)
        h.wait_for(lambda: not n.pods(), 20, what="all pods removed")
        h.wait_for(lambda: not [l for l in links() if l.startswith("pw")], 10, what="no veth left")
        self.assertEqual(os.listdir(os.path.join(n.root, "net", "ipam")), [])


API_WEB_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  terminationGracePeriodSeconds: 1
  automountServiceAccountToken: false
  containers:
  - name: httpd
    image: {image}
    command: ["sh", "-c", "mkdir -p /w && echo hello-api > /w/index.html && exec httpd -f -p 8081 -h /w"]
"""


@unittest.skipIf(SKIP, SKIP)
class PodNetworkApiTest(unittest.TestCase):
    """API mode: noded learns its podCIDR from its Node (controllers' node IPAM) and routes to
    other Nodes' podCIDRs via their InternalIPs. Control plane, registry and noded all run in
    the test's own network namespace."""
    reg = cluster = noded = base = None

    @classmethod
    def setUpClass(cls):
        enter_new_netns()
        try:
            cls.reg = h.RegistryFixture()
            cls.cluster = harness.Cluster(components="apiserver,scheduler,controllers")
            cls.base = tempfile.mkdtemp(prefix="podwarp-podnet-it-")
            cls.noded = api_h.ApiNoded(os.path.join(cls.base, "noded"),
                                       f"podwarp-it-podnet-api-{os.getpid()}",
                                       cls.cluster.kubeconfig, node_name="pn-node1",
                                       extra_args=["--pod-network", "routed"])
            cls.noded.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        api_h.close_fixtures(cls)

    def get(self, *args):
        r = self.cluster.kubectl("get", *args, "-o", "json", check=False)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def test_pod_ip_from_node_podcidr_and_routes_to_other_nodes(self):
        c = self.cluster
        try:
            node = h.wait_for(lambda: (lambda n: n if n and n["spec"].get("podCIDR") else None)(
                self.get("node", "pn-node1")), 30, interval=0.2, what="node podCIDR")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.noded.log_text()[-3000:]}") from None
        cidr = node["spec"]["podCIDR"]
        c.kubectl("apply", "-f", "-", input=API_WEB_POD.format(image=self.reg.image))

        def running():
            p = self.get("pod", "web")
            return p if p and p["status"].get("phase") == "Running" and p["status"].get("podIP") else None
        try:
            pod = h.wait_for(running, 60, interval=0.2, what="web Running with a podIP")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{json.dumps(self.get('pod', 'web'), indent=1)}\n"
                                 f"{self.noded.log_text()[-3000:]}") from None
        ip = pod["status"]["podIP"]
        net, bits = cidr.split("/")
        self.assertEqual(bits, "24")
        self.assertTrue(ip.startswith(net.rsplit(".", 1)[0] + "."), (ip, cidr))
        self.assertEqual(pod["status"]["podIPs"], [{"ip": ip}])
        types = [x["type"] for x in pod["status"].get("conditions", [])]
        self.assertNotIn("podwarp.io/PodNetwork", types)  # the NoPodNetwork marker is gone
        with urllib.request.urlopen(f"http://{ip}:8081/index.html", timeout=3) as r:
            self.assertEqual(r.read().decode().strip(), "hello-api")

        # Another node appears: once it has a podCIDR and an InternalIP, its pods are routed
        # via that IP; when it is deleted, the route goes.
        c.kubectl("apply", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "pn-ghost"}}))
        c.kubectl("patch", "node", "pn-ghost", "--subresource=status", "--type=merge", "-p",
                  json.dumps({"status": {"addresses": [{"type": "InternalIP", "address": "10.99.0.7"}]}}))
        ghost = h.wait_for(lambda: (lambda n: n if n and n["spec"].get("podCIDR") else None)(
            self.get("node", "pn-ghost")), 30, interval=0.2, what="ghost podCIDR")
        gcidr = ghost["spec"]["podCIDR"]
        try:
            h.wait_for(lambda: routes().get(gcidr) == "10.99.0.7", 10, interval=0.1,
                       what=f"route {gcidr} via 10.99.0.7")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{routes()}\n{self.noded.log_text()[-3000:]}") from None
        self.assertNotIn(cidr, routes())  # never a route to its own podCIDR
        c.kubectl("delete", "node", "pn-ghost")
        h.wait_for(lambda: gcidr not in routes(), 10, interval=0.1, what="ghost route removed")

        c.kubectl("delete", "pod", "web", "--wait=false")
        h.wait_for(lambda: self.get("pod", "web") is None, 30, interval=0.2, what="web deleted")
        h.wait_for(lambda: not [l for l in links() if l.startswith("pw")], 10, what="veth removed")
        self.assertEqual(os.listdir(os.path.join(self.noded.root, "net", "ipam")), [])


if __name__ == "__main__":
    unittest.main()
