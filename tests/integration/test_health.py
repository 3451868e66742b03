"""/healthz, /livez and /readyz as upstream's: named checks, ?verbose, ?exclude, single checks
(/livez/etcd), anonymous access, and a real etcd check: with etcd stopped the endpoints answer
500 naming the failed check, and "ok" again once etcd is back."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from test_restart_and_errors import Raw  # noqa: E402

READY_VERBOSE = ("[+]ping ok\n[+]log ok\n[+]etcd ok\n[+]etcd-readiness ok\n"
                 "[+]informer-sync ok\nreadyz check passed\n")


class HealthTest(harness.ClusterTestCase):
    def setUp(self):
        self.anon = Raw(self.cluster, authenticated=False)
        self.admin = Raw(self.cluster)

    def get(self, path, anonymous=True):
        """The endpoints themselves are public (system:public-info-viewer); single checks are
        not."""
        status, body = (self.anon if anonymous else self.admin).request("GET", path)
        return status, body.decode() if isinstance(body, bytes) else body

    def test_1_plain_and_verbose(self):
        for endpoint in ("/healthz", "/livez", "/readyz"):
            self.assertEqual(self.get(endpoint), (200, "ok"), endpoint)
        self.assertEqual(self.get("/readyz?verbose"), (200, READY_VERBOSE))
        self.assertEqual(self.get("/livez?verbose=1"),
                         (200, "[+]ping ok\n[+]log ok\n[+]etcd ok\nlivez check passed\n"))
        # Stock kubectl, as the Kubernetes docs show it.
        out = self.cluster.kubectl("get", "--raw", "/readyz?verbose").stdout
        self.assertEqual(out, READY_VERBOSE)

    def test_2_single_checks_and_exclude(self):
        self.assertEqual(self.get("/livez/etcd", anonymous=False), (200, "ok"))
        self.assertEqual(self.get("/readyz/informer-sync", anonymous=False), (200, "ok"))
        self.assertEqual(self.get("/livez/etcd")[0], 401)
        status, body = self.get("/livez/informer-sync", anonymous=False)  # a readyz check only
        self.assertEqual(status, 404)
        self.assertEqual(body["reason"], "NotFound")
        status, body = self.get("/healthz?verbose&exclude=etcd&exclude=nope")
        self.assertEqual(status, 200)
        self.assertEqual(body, "[+]ping ok\n[+]log ok\n[+]etcd excluded: ok\n"
                               "warn: some health checks cannot be excluded: no matches for "
                               "\"nope\"\nhealthz check passed\n")

    def test_3_etcd_down_then_back(self):
        c = self.cluster
        c.etcd.stop()
        try:
            status, body = self.get("/livez")
            self.assertEqual(status, 500)
            self.assertEqual(body, "[+]ping ok\n[+]log ok\n[-]etcd failed: reason withheld\n"
                                   "livez check failed\n")
            status, body = self.get("/readyz")
            self.assertEqual(status, 500)
            self.assertIn("[-]etcd-readiness failed: reason withheld\n", body)
            self.assertTrue(body.endswith("readyz check failed\n"), body)
            status, body = self.get("/livez/etcd", anonymous=False)
            self.assertEqual(status, 500)
            self.assertTrue(body.startswith("internal server error: "), body)
            # An excluded check is not run: a load balancer can ignore etcd.
            self.assertEqual(self.get("/livez?exclude=etcd"), (200, "ok"))
        finally:
            c.etcd.start()
        self.wait_until(lambda: self.get("/livez") == (200, "ok"), timeout=30,
                        message="/livez ok after etcd came back")
        self.assertEqual(self.get("/readyz"), (200, "ok"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
