"""The apiserver's advertise address (the endpoint of the `kubernetes` Service, which pods reach
as 10.96.0.1:443 through KUBERNETES_SERVICE_HOST/PORT): with --bind-address 0.0.0.0 and no
--advertise-address it is, as upstream, the address of the default route's interface, and the
serving certificate covers it so that in-cluster clients verify the server.

To bind 0.0.0.0 and own a default route without touching the machine's network, podwarp-control
runs in a network namespace this test makes (a veth link with 192.0.2.10/24 from TEST-NET-1
and a default route over it); it reaches etcd over etcd's unix socket, and kubectl runs in the
same namespace. Needs root; everything is removed at the end, also on failure."""
import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SKIP = None if os.geteuid() == 0 else "needs root (a network namespace); CI runs it as root"
ADDRESS = "192.0.2.10"


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@unittest.skipIf(SKIP, SKIP or "")
class AdvertiseAddressTest(unittest.TestCase):
    def setUp(self):
        self.netns = f"pwadv-{os.getpid()}"
        ip("netns", "add", self.netns)
        self.addCleanup(ip, "netns", "del", self.netns)
        ip("-n", self.netns, "link", "set", "lo", "up")
        # A veth pair with both ends in the namespace (this kernel has no dummy driver).
        ip("-n", self.netns, "link", "add", "pwadv0", "type", "veth", "peer", "name", "pwadv1")
        ip("-n", self.netns, "addr", "add", f"{ADDRESS}/24", "dev", "pwadv0")
        for link in ("pwadv0", "pwadv1"):
            ip("-n", self.netns, "link", "set", link, "up")
        ip("-n", self.netns, "route", "add", "default", "via", "192.0.2.1", "dev", "pwadv0")
        self.cluster = harness.Cluster(extra_args=["--bind-address", "0.0.0.0"], netns=self.netns)
        self.addCleanup(self.cluster.close)

    def test_default_advertise_address_is_the_default_route_interface(self):
        c = self.cluster
        eps = c.kubectl_json("get", "endpoints", "kubernetes", "-n", "default")
        self.assertEqual(eps["subsets"][0]["addresses"], [{"ip": ADDRESS}])
        self.assertEqual(eps["subsets"][0]["ports"][0]["port"], c.port)
        es = c.kubectl_json("get", "endpointslice", "kubernetes", "-n", "default")
        self.assertEqual([e["addresses"] for e in es["endpoints"]], [[ADDRESS]])
        self.assertEqual(es["ports"][0]["port"], c.port)
        # The serving certificate covers the address: kubectl verifies it there (inside the
        # namespace, the only place the address exists).
        r = c.kubectl("--server", f"https://{ADDRESS}:{c.port}", "get", "namespace", "default",
                      "-o", "json")
        self.assertEqual(json.loads(r.stdout)["metadata"]["name"], "default")


if __name__ == "__main__":
    unittest.main(verbosity=2)
