"""Acceptance 3 (restart loses nothing; watchers resume without missing events) and
acceptance 4 (bad input gets upstream-shaped errors, nothing crashes or is lost)."""
import http.client
import json
import os
import ssl
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

import yaml  # noqa: E402


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


class Raw:
    """Direct HTTPS requests with the admin client certificate (or none)."""

    def __init__(self, cluster, authenticated=True):
        import base64
        with open(cluster.kubeconfig) as f:
            kc = yaml.safe_load(f)
        self.dir = tempfile.mkdtemp(dir=cluster.root)
        ca = os.path.join(self.dir, "ca.crt")
        write(ca, base64.b64decode(kc["clusters"][0]["cluster"]["certificate-authority-data"]))
        self.ctx = ssl.create_default_context(cafile=ca)
        if authenticated:
            cert = os.path.join(self.dir, "c.crt")
            key = os.path.join(self.dir, "c.key")
            user = kc["users"][0]["user"]
            write(cert, base64.b64decode(user["client-certificate-data"]))
            write(key, base64.b64decode(user["client-key-data"]))
            self.ctx.load_cert_chain(cert, key)
        self.port = cluster.port

    def conn(self):
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=30)

    def request(self, method, path, body=None, content_type="application/json", headers=None):
        c = self.conn()
        h = {"Content-Type": content_type}
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, (json.loads(data) if data[:1] == b"{" else data)


class RestartTest(harness.ClusterTestCase):
    def test_restart_loses_nothing_and_watch_resumes(self):
        c = self.cluster
        c.kubectl("create", "namespace", "rs")
        for i in range(20):
            c.kubectl("-n", "rs", "create", "configmap", f"cm{i}", f"--from-literal=k={i}")
        raw = Raw(c)
        status, lst = raw.request("GET", "/api/v1/namespaces/rs/configmaps")
        self.assertEqual(status, 200)
        rv = lst["metadata"]["resourceVersion"]
        # Changes while the watcher is away: across a restart of podwarp-control.
        c.kubectl("-n", "rs", "create", "configmap", "before-restart", "--from-literal=a=b")
        c.restart_control()
        c.kubectl("-n", "rs", "create", "configmap", "after-restart", "--from-literal=a=b")
        c.kubectl("-n", "rs", "delete", "configmap", "cm3")
        raw = Raw(c)
        status, lst2 = raw.request("GET", "/api/v1/namespaces/rs/configmaps")
        names = sorted(i["metadata"]["name"] for i in lst2["items"])
        self.assertEqual(len(names), 21)
        self.assertIn("before-restart", names)
        self.assertNotIn("cm3", names)
        # A watcher reconnecting with its last resourceVersion gets every event since.
        conn = raw.conn()
        conn.request("GET", f"/api/v1/namespaces/rs/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=3")
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        events = []
        dec = json.JSONDecoder()
        buf = resp.read().decode()
        pos = 0
        while pos < len(buf):
            while pos < len(buf) and buf[pos].isspace():
                pos += 1
            if pos >= len(buf):
                break
            obj, pos = dec.raw_decode(buf, pos)
            events.append((obj["type"], obj["object"]["metadata"]["name"]))
        conn.close()
        self.assertEqual(events, [("ADDED", "before-restart"), ("ADDED", "after-restart"),
                                  ("DELETED", "cm3")])

    def test_grouped_creates_resume(self):
        """Concurrent creates may share one etcd Txn and so one resourceVersion. A watcher
        resuming from any event's resourceVersion gets exactly the events after that
        revision, and objects of one revision arrive together."""
        c = self.cluster
        c.kubectl("create", "namespace", "grp")
        raw = Raw(c)
        status, lst = raw.request("GET", "/api/v1/namespaces/grp/configmaps")
        self.assertEqual(status, 200)
        start = lst["metadata"]["resourceVersion"]
        created = {}

        def create(i):
            body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": f"g{i}"}, "data": {"i": str(i)}})
            st, obj = raw.request("POST", "/api/v1/namespaces/grp/configmaps", body)
            created[f"g{i}"] = (st, obj["metadata"]["resourceVersion"] if st == 201 else obj)

        threads = [threading.Thread(target=create, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted(st for st, _ in created.values()), [201] * 40, created)

        def watch_from(rv):
            conn = raw.conn()
            conn.request("GET", f"/api/v1/namespaces/grp/configmaps?watch=true"
                                f"&resourceVersion={rv}&timeoutSeconds=2")
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            out = [json.loads(line) for line in resp.read().decode().splitlines() if line.strip()]
            conn.close()
            return [(e["type"], e["object"]["metadata"]["name"],
                     int(e["object"]["metadata"]["resourceVersion"])) for e in out]

        events = watch_from(start)
        self.assertEqual(sorted(n for _, n, _ in events), sorted(created))
        self.assertTrue(all(t == "ADDED" for t, _, _ in events), events)
        for _, name, rv in events:
            self.assertEqual(str(rv), created[name][1], name)
        revisions = [rv for _, _, rv in events]
        self.assertEqual(revisions, sorted(revisions))
        shared = len(revisions) - len(set(revisions))
        print(f"[ info ] 40 concurrent creates: {len(set(revisions))} revisions ({shared} shared)")
        # Resuming from each event's resourceVersion: exactly the events of later revisions.
        for _, name, rv in events[::5]:
            self.assertEqual(watch_from(rv), [e for e in events if e[2] > rv], name)
        # Each object reads back with the resourceVersion its event had.
        for _, name, rv in events[::8]:
            st, obj = raw.request("GET", f"/api/v1/namespaces/grp/configmaps/{name}")
            self.assertEqual((st, obj["metadata"]["resourceVersion"]), (200, str(rv)))


class BadInputTest(harness.ClusterTestCase):
    def setUp(self):
        self.raw = Raw(self.cluster)

    def test_malformed_json_is_400(self):
        status, body = self.raw.request("POST", "/api/v1/namespaces/default/configmaps", b'{"kind": ')
        self.assertEqual(status, 400)
        self.assertEqual(body["kind"], "Status")
        self.assertEqual(body["reason"], "BadRequest")

    def test_invalid_pod_is_422_naming_the_field(self):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"},
               "spec": {"containers": [{"name": "c"}]}}
        status, body = self.raw.request("POST", "/api/v1/namespaces/default/pods", json.dumps(pod))
        self.assertEqual(status, 422)
        self.assertEqual(body["reason"], "Invalid")
        self.assertIn("spec.containers[0].image", body["message"])
        self.assertEqual(body["details"]["causes"][0]["field"], "spec.containers[0].image")
        pod["metadata"]["name"] = "Bad_Name"
        status, body = self.raw.request("POST", "/api/v1/namespaces/default/pods", json.dumps(pod))
        self.assertEqual(status, 422)
        self.assertIn("metadata.name", body["message"])

    def test_stale_update_is_409(self):
        self.cluster.kubectl("create", "configmap", "stale", "--from-literal=a=1")
        status, cm = self.raw.request("GET", "/api/v1/namespaces/default/configmaps/stale")
        first = dict(cm)
        cm["data"] = {"a": "2"}
        status, _ = self.raw.request("PUT", "/api/v1/namespaces/default/configmaps/stale", json.dumps(cm))
        self.assertEqual(status, 200)
        first["data"] = {"a": "3"}
        status, body = self.raw.request("PUT", "/api/v1/namespaces/default/configmaps/stale", json.dumps(first))
        self.assertEqual(status, 409)
        self.assertEqual(body["reason"], "Conflict")
        self.assertIn("the object has been modified", body["message"])
        status, cm = self.raw.request("GET", "/api/v1/namespaces/default/configmaps/stale")
        self.assertEqual(cm["data"], {"a": "2"})

    def test_unknown_field_strict(self):
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "strict"},
              "data": {"a": "b"}, "bogus": 1}
        status, body = self.raw.request(
            "POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Strict", json.dumps(cm))
        self.assertEqual(status, 400)
        self.assertIn('unknown field "bogus"', body["message"])
        r = self.cluster.kubectl("apply", "-f", "-", check=False, input=json.dumps(
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
             "spec": {"selector": {"matchLabels": {"a": "b"}}, "replicass": 3,
                      "template": {"metadata": {"labels": {"a": "b"}},
                                   "spec": {"containers": [{"name": "c", "image": "i"}]}}}}))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('unknown field "spec.replicass"', r.stderr)

    def test_json_patch_operation_limit_is_413(self):
        self.cluster.kubectl("create", "configmap", "ops", "--from-literal=a=1")
        path = "/api/v1/namespaces/default/configmaps/ops"
        op = {"op": "test", "path": "/data/a", "value": "1"}
        status, body = self.raw.request("PATCH", path, json.dumps([op] * 10001),
                                        content_type="application/json-patch+json")
        self.assertEqual(status, 413)
        self.assertEqual(body["reason"], "RequestEntityTooLarge")
        self.assertEqual(body["message"], "Request entity too large: The allowed maximum "
                                          "operations in a JSON patch is 10000, got 10001")
        # 10,000 is still allowed.
        ops = [op] * 9999 + [{"op": "replace", "path": "/data/a", "value": "2"}]
        status, body = self.raw.request("PATCH", path, json.dumps(ops),
                                        content_type="application/json-patch+json")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["data"], {"a": "2"})

    def test_huge_grace_period_is_accepted(self):
        # gracePeriodSeconds is an int64; its largest value must neither overflow the deletion
        # deadline nor crash the server. A bound pod waits for its node, so it stays marked.
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "slow"},
               "spec": {"nodeName": "nowhere", "containers": [{"name": "c", "image": "busybox"}]}}
        status, _ = self.raw.request("POST", "/api/v1/namespaces/default/pods", json.dumps(pod))
        self.assertEqual(status, 201)
        big = 2**63 - 1
        status, body = self.raw.request(
            "DELETE", f"/api/v1/namespaces/default/pods/slow?gracePeriodSeconds={big}")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["metadata"]["deletionGracePeriodSeconds"], big)
        year = int(body["metadata"]["deletionTimestamp"][:4])
        self.assertGreater(year, 2040)
        # A shorter grace period still shortens it, and 0 removes the pod.
        status, body = self.raw.request(
            "DELETE", "/api/v1/namespaces/default/pods/slow?gracePeriodSeconds=0")
        self.assertEqual(status, 200, body)
        status, _ = self.raw.request("GET", "/api/v1/namespaces/default/pods/slow")
        self.assertEqual(status, 404)

    def test_namespace_lifecycle(self):
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}
        # A namespace that does not exist: 404 naming it.
        status, body = self.raw.request("POST", "/api/v1/namespaces/no-such-ns/configmaps", json.dumps(cm))
        self.assertEqual(status, 404)
        self.assertEqual(body["reason"], "NotFound")
        self.assertEqual(body["message"], 'namespaces "no-such-ns" not found')
        # One created just before: the create in it is taken (the cache may not have its
        # event yet; the apiserver then looks it up in etcd).
        for i in range(5):
            ns = f"fresh-{i}"
            status, _ = self.raw.request("POST", "/api/v1/namespaces", json.dumps(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            self.assertEqual(status, 201)
            status, body = self.raw.request("POST", f"/api/v1/namespaces/{ns}/configmaps", json.dumps(cm))
            self.assertEqual(status, 201, body)
        # A terminating one (no namespace controller runs here, so it stays so): 403.
        status, _ = self.raw.request("DELETE", "/api/v1/namespaces/fresh-0")
        self.assertEqual(status, 200)
        status, ns = self.raw.request("GET", "/api/v1/namespaces/fresh-0")
        self.assertEqual(ns["status"]["phase"], "Terminating")
        cm["metadata"]["name"] = "late"
        status, body = self.raw.request("POST", "/api/v1/namespaces/fresh-0/configmaps", json.dumps(cm))
        self.assertEqual(status, 403)
        self.assertEqual(body["reason"], "Forbidden")
        self.assertIn("because it is being terminated", body["message"])
        self.assertEqual(body["details"]["causes"][0]["reason"], "NamespaceTerminating")

    def test_anonymous_is_401(self):
        anon = Raw(self.cluster, authenticated=False)
        status, body = anon.request("GET", "/api/v1/namespaces")
        self.assertEqual(status, 401)
        self.assertEqual(body["reason"], "Unauthorized")
        status, _ = anon.request("GET", "/api/v1/namespaces", headers={"Authorization": "Bearer nope"})
        self.assertEqual(status, 401)

    def test_huge_body_refused(self):
        # Streams 100 MiB; the server must answer 413 without buffering it all.
        c = self.raw.conn()
        c.putrequest("POST", "/api/v1/namespaces/default/configmaps")
        c.putheader("Content-Type", "application/json")
        size = 100 * 1024 * 1024
        c.putheader("Content-Length", str(size))
        c.endheaders()
        chunk = b" " * (1024 * 1024)
        sent = 0
        try:
            while sent < size:
                c.send(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        try:
            r = c.getresponse()
            self.assertEqual(r.status, 413)
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
            pass  # refused: the server closed the connection
        self.assertLess(sent, size + 1)
        # Still alive and nothing lost.
        self.assertEqual(self.cluster.kubectl("get", "ns", "default", "-o", "name").stdout.strip(),
                         "namespace/default")
        with open(f"/proc/{self.cluster.control.pid}/status") as f:
            rss_kb = int(f.read().split("VmRSS:")[1].split()[0])
        self.assertLess(rss_kb, 200 * 1024)


if __name__ == "__main__":
    harness.main()
