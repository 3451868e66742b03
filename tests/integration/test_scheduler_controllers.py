"""Issue 4 acceptance: the scheduler and the controllers of podwarp-control, driven with the
installed kubectl and the Python client. No noded: a FakeKubelet registers Node objects,
renews their Leases and reports pod status the way a kubelet does."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from fake_kubelet import FakeKubelet  # noqa: E402

from kubernetes import client, config, watch  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

FAST = ["--node-monitor-grace-period", "6s", "--node-monitor-period", "1s",
        "--leader-elect-lease-duration", "4s", "--leader-elect-renew-deadline", "3s",
        "--leader-elect-retry-period", "500ms"]


def deployment(name, replicas, cpu="250m", memory="256Mi", image="busybox:1.36", extra_spec=None,
               labels=None, strategy=None):
    labels = labels or {"app": name}
    spec = {"containers": [{"name": "c", "image": image, "command": ["sleep", "3600"],
                            "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}
    spec.update(extra_spec or {})
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
         "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels}, "spec": spec}}}
    if strategy:
        d["spec"]["strategy"] = strategy
    return d


class SchedulerControllersTest(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = harness.Cluster(extra_args=FAST, components="apiserver,scheduler,controllers")
        try:
            cls.set_up_nodes()
        except BaseException:
            cls.cluster.close()
            raise

    @classmethod
    def set_up_nodes(cls):
        cls.api_client = config.new_client_from_config(config_file=cls.cluster.kubeconfig)
        cls.core = client.CoreV1Api(cls.api_client)
        cls.apps = client.AppsV1Api(cls.api_client)
        cls.batch = client.BatchV1Api(cls.api_client)
        cls.kubelet = FakeKubelet(cls.api_client)
        k = cls.kubelet
        k.add_node("n1", cpu="4", memory="8Gi", labels={"topology.kubernetes.io/zone": "a"})
        k.add_node("n2", cpu="4", memory="8Gi", labels={"topology.kubernetes.io/zone": "a"})
        k.add_node("n3", cpu="8", memory="16Gi", labels={"topology.kubernetes.io/zone": "b"})
        k.add_node("n4", cpu="2", memory="4Gi", labels={"topology.kubernetes.io/zone": "b"})
        k.add_node("n5", cpu="8", memory="16Gi", labels={"gpu": "true"},
                   taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}])

    @classmethod
    def tearDownClass(cls):
        cls.kubelet.close()
        cls.api_client.close()
        super().tearDownClass()

    def make_ns(self, name):
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        return name

    def apply(self, ns, obj):
        self.cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(obj))

    def pods(self, ns, selector=None):
        return self.core.list_namespaced_pod(ns, label_selector=selector).items

    # 1. Scheduling: fit, spread, taints; an unschedulable pod's message; scheduling on a new node.
    def test_1_scheduling(self):
        ns = self.make_ns("sched")
        self.apply(ns, deployment("web", 30))
        self.wait_until(lambda: len([p for p in self.pods(ns, "app=web") if p.spec.node_name]) == 30,
                        timeout=60, message="30 pods bound")
        per_node = {}
        for p in self.pods(ns, "app=web"):
            per_node[p.spec.node_name] = per_node.get(p.spec.node_name, 0) + 1
        self.assertNotIn("n5", per_node, "pods must not land on the tainted node")
        # 250m each: n4 (2 cpu) holds at most 8, the 4-cpu nodes 16.
        self.assertLessEqual(per_node.get("n4", 0), 8)
        self.assertLessEqual(per_node.get("n1", 0), 16)
        self.assertEqual(set(per_node), {"n1", "n2", "n3", "n4"}, f"spread over nodes: {per_node}")
        # The biggest node gets the most pods (least allocated).
        self.assertEqual(max(per_node, key=per_node.get), "n3", per_node)

        big = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "big"},
               "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
                                        "resources": {"requests": {"cpu": "16"}}}]}}
        self.apply(ns, big)

        def unschedulable():
            p = self.core.read_namespaced_pod("big", ns)
            for c in p.status.conditions or []:
                if c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable":
                    return c.message
            return None
        self.wait_until(lambda: unschedulable() is not None, timeout=30, message="Unschedulable")
        msg = unschedulable()
        self.assertTrue(msg.startswith("0/5 nodes are available: "), msg)
        self.assertIn("1 node(s) had untolerated taint {dedicated: gpu}", msg)
        self.assertIn("4 Insufficient cpu", msg)
        events = self.core.list_namespaced_event(ns, field_selector="involvedObject.name=big").items
        self.assertIn("FailedScheduling", [e.reason for e in events])
        self.kubelet.add_node("n6", cpu="32", memory="64Gi")
        self.wait_until(lambda: self.core.read_namespaced_pod("big", ns).spec.node_name == "n6",
                        timeout=30, message="big pod scheduled on the new node")

    # 2. Rollouts with the installed kubectl.
    def test_2_rollout(self):
        ns = self.make_ns("rollout")
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}
        self.apply(ns, deployment("web", 4, cpu="10m", memory="16Mi", strategy=strategy))
        self.cluster.kubectl("rollout", "status", "-n", ns, "deployment/web", "--timeout=90s",
                             timeout=100)
        samples = []
        stop = threading.Event()

        def watch_rs():
            w = watch.Watch()
            for ev in w.stream(self.apps.list_namespaced_replica_set, ns, timeout_seconds=120):
                if stop.is_set():
                    w.stop()
                    break
                rss = self.apps.list_namespaced_replica_set(ns).items
                samples.append((sum(r.spec.replicas or 0 for r in rss),
                                sum(r.status.available_replicas or 0 for r in rss)))
        t = threading.Thread(target=watch_rs, daemon=True)
        t.start()
        time.sleep(0.5)
        self.cluster.kubectl("set", "image", "-n", ns, "deployment/web", "c=busybox:1.37")
        out = self.cluster.kubectl("rollout", "status", "-n", ns, "deployment/web",
                                   "--timeout=90s", timeout=100).stdout
        self.assertIn('deployment "web" successfully rolled out', out)
        stop.set()
        t.join(5)
        self.assertTrue(samples)
        self.assertLessEqual(max(s[0] for s in samples), 5, "maxSurge 1 over 4 replicas")
        self.assertGreaterEqual(min(s[1] for s in samples), 3, "maxUnavailable 1 of 4")
        rss = self.apps.list_namespaced_replica_set(ns).items
        self.assertEqual(len(rss), 2)
        new = [r for r in rss if r.spec.template.spec.containers[0].image == "busybox:1.37"][0]
        self.assertEqual(new.spec.replicas, 4)
        self.assertEqual(new.metadata.annotations["deployment.kubernetes.io/revision"], "2")

        self.cluster.kubectl("rollout", "undo", "-n", ns, "deployment/web")
        self.cluster.kubectl("rollout", "status", "-n", ns, "deployment/web", "--timeout=90s",
                             timeout=100)
        d = self.apps.read_namespaced_deployment("web", ns)
        self.assertEqual(d.spec.template.spec.containers[0].image, "busybox:1.36")
        self.assertEqual(d.metadata.annotations["deployment.kubernetes.io/revision"], "3")
        self.assertEqual(len(self.apps.list_namespaced_replica_set(ns).items), 2)

        self.cluster.kubectl("scale", "-n", ns, "deployment/web", "--replicas=6")
        self.cluster.kubectl("rollout", "status", "-n", ns, "deployment/web", "--timeout=90s",
                             timeout=100)
        self.wait_until(lambda: self.apps.read_namespaced_deployment("web", ns).status.ready_replicas == 6,
                        timeout=30, message="6 ready replicas")
        history = self.cluster.kubectl("rollout", "history", "-n", ns, "deployment/web").stdout
        self.assertIn("2", history)
        self.assertIn("3", history)

    # 3. A node that stops renewing its Lease goes Unknown, is tainted, and its pods are evicted
    # after their tolerationSeconds and replaced elsewhere.
    def test_3_node_lifecycle(self):
        ns = self.make_ns("lifecycle")
        self.kubelet.add_node("flaky", cpu="4", memory="8Gi", labels={"role": "flaky"})
        self.kubelet.add_node("spare", cpu="4", memory="8Gi")
        tol = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                "effect": "NoExecute", "tolerationSeconds": 3}]
        self.apply(ns, deployment("ev", 2, cpu="10m", memory="16Mi",
                                  extra_spec={"nodeSelector": {"role": "flaky"}, "tolerations": tol}))
        self.wait_until(lambda: sum(1 for p in self.pods(ns) if p.status.phase == "Running") == 2,
                        timeout=60, message="2 pods running on flaky")
        first = {p.metadata.name for p in self.pods(ns)}
        # The admission plugin added the default not-ready toleration (300 s).
        p0 = self.pods(ns)[0]
        self.assertIn(("node.kubernetes.io/not-ready", 300),
                      [(t.key, t.toleration_seconds) for t in p0.spec.tolerations])
        self.core.patch_node("spare", {"metadata": {"labels": {"role": "flaky"}}})
        killed = time.time()
        self.kubelet.kill_node("flaky")

        def ready_status():
            n = self.core.read_node("flaky")
            return [c.status for c in n.status.conditions if c.type == "Ready"][0]
        self.wait_until(lambda: ready_status() == "Unknown", timeout=30, message="Ready Unknown")
        self.assertGreaterEqual(time.time() - killed, 5)
        # The condition and the taint are two writes of the node lifecycle controller (as
        # upstream's): the taint follows the Unknown condition within a monitor period.
        def taints():
            return [(t.key, t.effect) for t in self.core.read_node("flaky").spec.taints or []]
        self.wait_until(lambda: ("node.kubernetes.io/unreachable", "NoExecute") in taints(),
                        timeout=10, message="unreachable NoExecute taint")
        self.assertIn(("node.kubernetes.io/unreachable", "NoExecute"), taints())
        self.wait_until(lambda: all(p.metadata.deletion_timestamp for p in self.pods(ns)
                                    if p.metadata.name in first), timeout=30, message="eviction")

        def replaced():
            live = [p for p in self.pods(ns) if not p.metadata.deletion_timestamp]
            return len(live) == 2 and all(p.spec.node_name == "spare" and p.status.phase == "Running"
                                          for p in live)
        self.wait_until(replaced, timeout=60, message="replacement pods running on spare")

    # 4. Jobs, CronJobs, garbage collection, namespace deletion.
    def test_4_job(self):
        ns = self.make_ns("jobs")
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "five"},
               "spec": {"completions": 5, "parallelism": 2, "template": {
                   "metadata": {"labels": {"test/succeed": "true"}},
                   "spec": {"restartPolicy": "Never", "containers": [
                       {"name": "c", "image": "busybox:1.36", "command": ["true"],
                        "resources": {"requests": {"cpu": "10m"}}}]}}}}
        self.apply(ns, job)
        max_active = 0
        deadline = time.time() + 90
        done = False
        while time.time() < deadline and not done:
            active = [p for p in self.pods(ns) if p.status.phase in ("Pending", "Running")
                      and not p.metadata.deletion_timestamp]
            max_active = max(max_active, len(active))
            j = self.batch.read_namespaced_job("five", ns)
            conditions = (j.status.conditions if j.status else None) or []
            done = any(c.type == "Complete" and c.status == "True" for c in conditions)
            time.sleep(0.1)
        self.assertTrue(done, "job completes")
        self.assertLessEqual(max_active, 2)
        self.assertEqual(j.status.succeeded, 5)
        self.cluster.kubectl("wait", "-n", ns, "--for=condition=complete", "job/five", "--timeout=10s")

    def test_5_cronjob(self):
        ns = self.make_ns("cron")
        cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "tick"},
              "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": {
                  "metadata": {"labels": {"test/succeed": "true"}},
                  "spec": {"restartPolicy": "OnFailure", "containers": [
                      {"name": "c", "image": "busybox:1.36", "command": ["date"]}]}}}}}}
        self.apply(ns, cj)
        self.wait_until(lambda: len(self.batch.list_namespaced_job(ns).items) >= 1, timeout=80,
                        message="a Job created on schedule")
        j = self.batch.list_namespaced_job(ns).items[0]
        self.assertEqual(j.metadata.owner_references[0].kind, "CronJob")
        self.assertTrue(j.metadata.name.startswith("tick-"))
        self.wait_until(lambda: self.batch.read_namespaced_cron_job("tick", ns).status.last_schedule_time,
                        timeout=20, message="lastScheduleTime")

    def test_6_garbage_collection(self):
        ns = self.make_ns("gc")
        for name in ("bg", "fg", "orphan"):
            self.apply(ns, deployment(name, 2, cpu="10m", memory="16Mi"))
        self.wait_until(lambda: len([p for p in self.pods(ns) if p.status.phase == "Running"]) == 6,
                        timeout=60, message="6 pods running")
        self.cluster.kubectl("delete", "-n", ns, "deployment/bg", "--cascade=background")
        self.cluster.kubectl("delete", "-n", ns, "deployment/fg", "--cascade=foreground")
        self.cluster.kubectl("delete", "-n", ns, "deployment/orphan", "--cascade=orphan")

        def gone(app):
            return (not self.pods(ns, f"app={app}") and
                    not self.apps.list_namespaced_replica_set(ns, label_selector=f"app={app}").items)
        self.wait_until(lambda: gone("bg"), timeout=60, message="background deletion")
        self.wait_until(lambda: gone("fg"), timeout=60, message="foreground deletion")
        rss = self.apps.list_namespaced_replica_set(ns, label_selector="app=orphan").items
        self.assertEqual(len(rss), 1)
        self.assertFalse(rss[0].metadata.owner_references)
        time.sleep(2)
        self.assertEqual(len([p for p in self.pods(ns, "app=orphan")
                              if not p.metadata.deletion_timestamp]), 2)

    def test_7_namespace_deletion(self):
        ns = self.make_ns("doomed")
        self.apply(ns, deployment("web", 2, cpu="10m", memory="16Mi"))
        self.cluster.kubectl("create", "configmap", "cm", "-n", ns, "--from-literal=a=b")
        self.cluster.kubectl("create", "service", "clusterip", "svc", "-n", ns, "--tcp=80:80")
        self.wait_until(lambda: len(self.pods(ns)) == 2, timeout=60, message="pods")
        self.wait_until(lambda: any(s.metadata.name == "default"
                                    for s in self.core.list_namespaced_service_account(ns).items),
                        timeout=20, message="default service account")
        self.cluster.kubectl("delete", "namespace", ns, "--timeout=90s", timeout=100)
        with self.assertRaises(ApiException) as cm:
            self.core.read_namespace(ns)
        self.assertEqual(cm.exception.status, 404)
        self.assertEqual(self.core.list_namespaced_pod(ns).items, [])
        self.assertEqual(self.core.list_namespaced_config_map(ns).items, [])


class LeaderElectionTest(harness.ClusterTestCase):
    """5. Two podwarp-control processes on one etcd: one scheduler acts; after a kill the other
    takes over within the lease duration and no pod is bound twice."""

    @classmethod
    def setUpClass(cls):
        cls.cluster = harness.Cluster(extra_args=FAST, components="apiserver,scheduler,controllers")
        try:
            cls.start_b()
        except BaseException:
            if getattr(cls, "b", None) is not None:
                harness.stop_pid(cls.b)
            cls.cluster.close()
            raise

    @classmethod
    def start_b(cls):
        c = cls.cluster
        cls.b_dir = os.path.join(c.root, "control-b")
        cls.b_log = open(os.path.join(c.root, "control-b.log"), "ab")
        cls.b = subprocess.Popen(
            [os.path.join(harness.BIN, "podwarp-control"), "--etcd-servers", c.etcd.endpoint,
             "--data-dir", cls.b_dir, "--secure-port", "0",
             "--components", "apiserver,scheduler,controllers"] + FAST,
            stdout=subprocess.PIPE, stderr=cls.b_log, start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            if b"serving on" in cls.b.stdout.readline():
                break
        cls.api_client = config.new_client_from_config(config_file=c.kubeconfig)
        cls.core = client.CoreV1Api(cls.api_client)
        cls.coord = client.CoordinationV1Api(cls.api_client)
        cls.kubelet = FakeKubelet(cls.api_client)
        cls.kubelet.add_node("n1", cpu="64", memory="64Gi")

    @classmethod
    def tearDownClass(cls):
        cls.kubelet.close()
        cls.api_client.close()
        harness.stop_pid(cls.b)
        cls.b_log.close()
        cls.b.stdout.close()
        super().tearDownClass()

    def leader_log(self):
        with open(os.path.join(self.cluster.root, "control.log")) as f:
            a = f.read()
        with open(os.path.join(self.cluster.root, "control-b.log")) as f:
            b = f.read()
        a_leads = "scheduler: leading" in a
        b_leads = "scheduler: leading" in b
        return a_leads, b_leads

    def create_pods(self, prefix, n):
        for i in range(n):
            self.core.create_namespaced_pod("default", {
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{prefix}{i}"},
                "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}})

    def bound(self, prefix):
        return [p for p in self.core.list_namespaced_pod("default").items
                if p.metadata.name.startswith(prefix) and p.spec.node_name]

    def test_failover(self):
        self.wait_until(lambda: any(self.leader_log()), timeout=30, message="a scheduler leads")
        a_leads, b_leads = self.leader_log()
        self.assertNotEqual(a_leads, b_leads, "exactly one scheduler leads")
        self.create_pods("first-", 10)
        self.wait_until(lambda: len(self.bound("first-")) == 10, timeout=30, message="bound")
        lease = self.coord.read_namespaced_lease("kube-scheduler", "kube-system")
        first_holder = lease.spec.holder_identity
        if b_leads:
            os.kill(self.b.pid, signal.SIGKILL)
            self.b.wait()
        else:
            # Kill A; B has its own apiserver, but the test's client talks to A: switch to B's.
            self.fail_over_client_to_b()
            os.kill(self.cluster.control.pid, signal.SIGKILL)
            self.cluster.control.wait()
        killed = time.time()

        def new_holder():
            try:
                h = self.coord.read_namespaced_lease("kube-scheduler", "kube-system").spec.holder_identity
                return h if h != first_holder else None
            except Exception:
                return None
        self.wait_until(lambda: new_holder() is not None, timeout=30, message="takeover")
        took = time.time() - killed
        # Lease duration (4 s) + retry period, plus slack for a loaded 2-core machine.
        self.assertLessEqual(took, 4 + 5, f"takeover took {took:.1f}s with a 4 s lease")
        self.create_pods("second-", 10)
        self.wait_until(lambda: len(self.bound("second-")) == 10, timeout=30, message="bound after failover")
        events = self.core.list_namespaced_event("default").items
        scheduled = {}
        for e in events:
            if e.reason == "Scheduled":
                scheduled[e.involved_object.name] = scheduled.get(e.involved_object.name, 0) + (e.count or 1)
        for i in range(10):
            self.assertEqual(scheduled.get(f"first-{i}"), 1, scheduled)
            self.assertEqual(scheduled.get(f"second-{i}"), 1, scheduled)

    def fail_over_client_to_b(self):
        kc = os.path.join(self.b_dir, "admin.kubeconfig")
        self.kubelet.close()
        self.api_client.close()
        cls = type(self)
        cls.api_client = config.new_client_from_config(config_file=kc)
        cls.core = client.CoreV1Api(cls.api_client)
        cls.coord = client.CoordinationV1Api(cls.api_client)
        cls.kubelet = FakeKubelet(cls.api_client)
        with cls.kubelet.lock:
            cls.kubelet.nodes["n1"] = True


if __name__ == "__main__":
    harness.main()
