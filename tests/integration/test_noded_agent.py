"""podwarp-noded in API mode, end to end (issue 5, node agent): real etcd, podwarp-control
(apiserver, scheduler, controllers), a docker-registry with the busybox test images, and
podwarp-noded joined with --kubeconfig (its own root, log dir, cgroup root and bpffs under one
temporary folder). Everything is asserted through the installed kubectl (and the Python client
for the latency watch). Runs as root (CI); skipped with the reason otherwise. Everything it
starts is stopped by pid and removed at the end, also on failure."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import noded_api_harness as api_h  # noqa: E402
import noded_harness as h  # noqa: E402

SKIP = h.skip_reason()
NODE = "agent-node1"


def conditions(obj):
    return {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}


@unittest.skipIf(SKIP, SKIP or "")
class NodedAgentTest(unittest.TestCase):
    reg = cluster = noded = base = None

    @classmethod
    def setUpClass(cls):
        try:
            cls.reg = h.RegistryFixture()
            cls.image = cls.reg.image
            cls.httpd = f"{cls.reg.repo}:httpd"
            cls.cluster = harness.Cluster(components="apiserver,scheduler,controllers")
            cls.base = tempfile.mkdtemp(prefix="podwarp-it-agent-")
            certs = api_h.node_credentials(cls.cluster.data_dir, NODE, os.path.join(cls.base, "certs"))
            kubeconfig = os.path.join(certs, "node.kubeconfig") if certs else cls.cluster.kubeconfig
            cls.noded = api_h.ApiNoded(os.path.join(cls.base, "noded"), f"podwarp-it-agent-{os.getpid()}",
                                       kubeconfig, node_name=NODE, certs=certs,
                                       extra_args=["--crash-backoff-ms", "300"])
            cls.noded.start()
            cls.ensure_root_ca()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def ensure_root_ca(cls):
        """Pods get the kube-api-access projected volume (ServiceAccount admission), which needs
        ConfigMap kube-root-ca.crt; the controllers publish it. If this build's controllers do
        not (yet), the test publishes it so that pods can start."""
        deadline = time.time() + 5
        while time.time() < deadline:
            if cls.cluster.kubectl("get", "configmap", "kube-root-ca.crt", check=False).returncode == 0:
                return
            time.sleep(0.2)
        ca = os.path.join(cls.cluster.data_dir, "pki", "ca.crt")
        if not os.path.exists(ca):
            ca = os.path.join(cls.base, "ca.crt")
            with open(ca, "w") as f:
                f.write("placeholder\n")
        cls.cluster.kubectl("create", "configmap", "kube-root-ca.crt", f"--from-file=ca.crt={ca}")

    @classmethod
    def tearDownClass(cls):
        api_h.close_fixtures(cls)

    # ------------------------------------------------------------------ helpers

    def kubectl(self, *args, **kw):
        return self.cluster.kubectl(*args, **kw)

    def get(self, *args):
        r = self.kubectl("get", *args, "-o", "json", check=False)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def wait(self, pred, timeout=30, what="condition"):
        def checked():
            if self.noded.proc.poll() is not None:
                raise AssertionError(f"noded exited:\n{self.noded.log_text()[-4000:]}")
            return pred()
        return h.wait_for(checked, timeout, interval=0.1, what=what)

    def pod(self, name):
        return self.get("pod", name)

    def wait_running(self, name, timeout=30):
        try:
            return self.wait(lambda: self.running(name), timeout, f"{name} Running")
        except AssertionError as e:
            raise AssertionError(f"{e}\npod: {json.dumps(self.pod(name), indent=1)}") from None

    def running(self, name):
        p = self.pod(name)
        if p and p["status"].get("phase") == "Running" and conditions(p).get("Ready", {}).get("status") == "True":
            return p
        return None

    def create(self, text):
        self.kubectl("apply", "-f", "-", input=text)

    def events_for(self, name):
        ev = self.get("events", "--field-selector", f"involvedObject.name={name}") or {"items": []}
        return ev["items"]

    def container_log(self, pod, want, what):
        """The container app's log once it contains `want`."""
        uid = self.pod(pod)["metadata"]["uid"]
        path = os.path.join(self.noded.logs, f"default_{pod}_{uid}", "app", "0.log")
        text = {"": ""}
        def logged():
            try:
                with open(path) as f:
                    text[""] = f.read()
            except OSError:
                return False
            return want in text[""]
        self.wait(logged, 10, what)
        return text[""]

    # ------------------------------------------------------------------ tests

    def test_1_node_registered_ready(self):
        node = self.wait(lambda: (lambda n: n if n and conditions(n).get("Ready", {}).get("status") == "True" else None)(
            self.get("node", NODE)), 30, "node Ready")
        st = node["status"]
        self.assertEqual(st["capacity"]["cpu"], str(os.sysconf("SC_NPROCESSORS_ONLN")))
        self.assertEqual(st["capacity"]["pods"], "110")
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
        self.assertEqual(st["capacity"]["memory"], f"{mem_kb}Ki")
        self.assertEqual(st["allocatable"]["memory"], f"{mem_kb - 102400}Ki")
        self.assertTrue(st["capacity"]["ephemeral-storage"].endswith("Ki"))
        self.assertIn({"type": "InternalIP", "address": "127.0.0.1"}, st["addresses"])
        self.assertIn({"type": "Hostname", "address": NODE}, st["addresses"])
        info = st["nodeInfo"]
        self.assertEqual(info["kernelVersion"], os.uname().release)
        self.assertTrue(info["containerRuntimeVersion"].startswith("podwarp://"), info)
        self.assertEqual(info["kubeletVersion"], "v1.32.0-podwarp")
        self.assertEqual(info["operatingSystem"], "linux")
        self.assertEqual(info["architecture"], "amd64")
        with open("/proc/sys/kernel/random/boot_id") as f:
            self.assertEqual(info["bootID"], f.read().strip())
        self.assertTrue(info["osImage"])
        self.assertIsInstance(st["daemonEndpoints"]["kubeletEndpoint"]["Port"], int)
        labels = node["metadata"]["labels"]
        for k, v in {"kubernetes.io/hostname": NODE, "kubernetes.io/os": "linux",
                     "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                     "beta.kubernetes.io/arch": "amd64"}.items():
            self.assertEqual(labels.get(k), v)
        c = conditions(node)
        self.assertEqual(c["Ready"]["reason"], "KubeletReady")
        self.assertTrue(c["Ready"]["message"].startswith("kubelet is posting ready status"))
        for t, reason in (("MemoryPressure", "KubeletHasSufficientMemory"),
                          ("DiskPressure", "KubeletHasNoDiskPressure"),
                          ("PIDPressure", "KubeletHasSufficientPID")):
            self.assertEqual((c[t]["status"], c[t]["reason"]), ("False", reason))
        # This machine's cgroup2 has no memory/cpu/pids controllers: Ready says so.
        with open(os.path.join(h.cgroup2_mount(), "cgroup.controllers")) as f:
            have = f.read().split()
        if "memory" not in have:
            self.assertIn("WARNING: cgroup v2 controllers missing", c["Ready"]["message"])
        lease = self.wait(lambda: self.get("lease", "-n", "kube-node-lease", NODE), 15, "lease")
        self.assertEqual(lease["spec"]["holderIdentity"], NODE)
        self.assertEqual(lease["spec"]["leaseDurationSeconds"], 40)
        self.assertEqual(lease["metadata"]["ownerReferences"][0]["kind"], "Node")
        self.assertEqual(lease["metadata"]["ownerReferences"][0]["uid"], node["metadata"]["uid"])
        out = self.kubectl("get", "nodes").stdout
        self.assertRegex(out, rf"{NODE}\s+Ready")

    def test_2_deployment_and_statuses(self):
        self.kubectl("create", "deployment", "web", f"--image={self.httpd}", "--replicas=2")
        self.kubectl("rollout", "status", "deployment/web", "--timeout=60s", timeout=90)
        dep = self.get("deployment", "web")
        self.assertEqual(dep["status"].get("availableReplicas"), 2)
        pods = self.get("pods", "-l", "app=web")["items"]
        self.assertEqual(len(pods), 2)
        for p in pods:
            st = p["status"]
            self.assertEqual(p["spec"]["nodeName"], NODE)
            self.assertEqual(st["phase"], "Running")
            self.assertEqual(st["hostIP"], "127.0.0.1")
            self.assertEqual(st["hostIPs"], [{"ip": "127.0.0.1"}])
            self.assertNotIn("podIP", st)
            self.assertEqual(st["qosClass"], "BestEffort")
            self.assertTrue(st.get("startTime"))
            c = conditions(p)
            for t in ("PodScheduled", "PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"):
                self.assertEqual(c[t]["status"], "True", (t, c))
            self.assertEqual(c["podwarp.io/PodNetwork"]["reason"], "NoPodNetwork")
            (cs,) = st["containerStatuses"]
            self.assertEqual(cs["name"], "busybox")
            self.assertEqual(cs["image"], self.httpd)
            self.assertTrue(cs["imageID"].startswith("sha256:") or "@sha256:" in cs["imageID"], cs)
            self.assertTrue(cs["containerID"].startswith("podwarp://"), cs)
            self.assertEqual((cs["ready"], cs["started"], cs["restartCount"]), (True, True, 0))
            self.assertIn("running", cs["state"])
            self.assertEqual(cs["lastState"], {})
        out = self.kubectl("get", "pods", "-o", "wide").stdout
        self.assertEqual(out.count("Running"), 2, out)
        reasons = {(e["reason"], e["source"].get("component"), e["source"].get("host"))
                   for e in self.events_for(pods[0]["metadata"]["name"])}
        for r in ("Pulled", "Created", "Started"):
            self.assertIn((r, "kubelet", NODE), reasons)
        self.assertIn(("Scheduled", "default-scheduler", None), {(a, b, None) for a, b, _ in reasons})

    def test_3_graceful_delete(self):
        self.create(f"""
apiVersion: v1
kind: Pod
metadata: {{name: graceful}}
spec:
  terminationGracePeriodSeconds: 30
  containers:
  - name: app
    image: {self.image}
    command: ["sh", "-c", "trap 'echo got-term; exit 0' TERM; while true; do sleep 0.1; done"]
""")
        self.wait_running("graceful")
        before = set(self.noded.container_inits().values())
        t0 = time.time()
        self.kubectl("delete", "pod", "graceful", "--wait=false")
        p = self.pod("graceful")
        if p is not None:
            self.assertTrue(p["metadata"].get("deletionTimestamp"))
        self.wait(lambda: self.pod("graceful") is None, 20, "graceful pod object gone")
        # The container handled SIGTERM: gone well before the 30 s grace.
        self.assertLess(time.time() - t0, 15)
        after = set(self.noded.container_inits().values())
        self.assertEqual(len(before - after), 1)
        self.assertIn(("Killing", "Stopping container app"),
                      {(e["reason"], e["message"]) for e in self.events_for("graceful")})
        # A container ignoring SIGTERM is killed after the grace period given to delete.
        self.create(f"""
apiVersion: v1
kind: Pod
metadata: {{name: stubborn}}
spec:
  containers:
  - name: app
    image: {self.image}
    command: ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"]
""")
        self.wait_running("stubborn")
        t0 = time.time()
        self.kubectl("delete", "pod", "stubborn", "--grace-period=2", "--wait=false")
        self.wait(lambda: self.pod("stubborn") is None, 20, "stubborn pod object gone")
        self.assertGreaterEqual(time.time() - t0, 1.5)

    def test_4_crashloop_backoff_and_terminal(self):
        self.create(f"""
apiVersion: v1
kind: Pod
metadata: {{name: crash}}
spec:
  containers:
  - name: crasher
    image: {self.image}
    command: ["sh", "-c", "echo boom; exit 1"]
""")
        def backoff():
            p = self.pod("crash")
            cs = (p or {}).get("status", {}).get("containerStatuses") or [{}]
            w = cs[0].get("state", {}).get("waiting", {})
            return p if w.get("reason") == "CrashLoopBackOff" and cs[0]["restartCount"] >= 1 else None
        p = self.wait(backoff, 30, "CrashLoopBackOff")
        cs = p["status"]["containerStatuses"][0]
        self.assertEqual(cs["lastState"]["terminated"]["exitCode"], 1)
        self.assertEqual(cs["lastState"]["terminated"]["reason"], "Error")
        self.assertRegex(self.kubectl("get", "pod", "crash").stdout, r"crash\s+0/1\s+(CrashLoopBackOff|Error)")
        self.wait(lambda: any(e["reason"] == "BackOff" for e in self.events_for("crash")), 15, "BackOff event")
        # A pod that ran to completion stays Succeeded.
        self.create(f"""
apiVersion: v1
kind: Pod
metadata: {{name: done}}
spec:
  restartPolicy: Never
  containers:
  - name: once
    image: {self.image}
    command: ["sh", "-c", "echo done"]
""")
        p = self.wait(lambda: (lambda p: p if p and p["status"].get("phase") == "Succeeded" else None)(self.pod("done")),
                      30, "done Succeeded")
        t = p["status"]["containerStatuses"][0]["state"]["terminated"]
        self.assertEqual((t["exitCode"], t["reason"]), (0, "Completed"))
        self.kubectl("delete", "pod", "crash", "--wait=false")

    def test_4b_active_deadline(self):
        """spec.activeDeadlineSeconds: the pod turns Failed with reason DeadlineExceeded, its
        container is stopped (not restarted), and a DeadlineExceeded event is recorded."""
        self.create(f"""
apiVersion: v1
kind: Pod
metadata: {{name: deadline}}
spec:
  activeDeadlineSeconds: 2
  terminationGracePeriodSeconds: 1
  containers:
  - name: sleeper
    image: {self.image}
    command: ["sleep", "1000"]
""")
        self.wait_running("deadline")
        # Failed at once (as the kubelet reports it), the container's stop follows (grace 1 s).
        p = self.wait(lambda: (lambda p: p if p and p["status"].get("phase") == "Failed" and
                               "terminated" in p["status"]["containerStatuses"][0]["state"]
                               else None)(self.pod("deadline")), 30, "deadline Failed, stopped")
        self.assertEqual(p["status"]["reason"], "DeadlineExceeded")
        self.assertEqual(p["status"]["message"],
                         "Pod was active on the node longer than the specified deadline")
        self.assertEqual(self.kubectl("get", "pod", "deadline", "-o",
                                      "jsonpath={.status.reason}").stdout, "DeadlineExceeded")
        self.wait(lambda: any(e["reason"] == "DeadlineExceeded" for e in self.events_for("deadline")),
                  15, "DeadlineExceeded event")
        self.kubectl("delete", "pod", "deadline", "--wait=false")

    def test_5_configmap_lookup(self):
        self.kubectl("create", "configmap", "agent-cm", "--from-literal=greeting=hello-from-cm")
        self.create(f"""
apiVersion: v1
kind: Pod
metadata: {{name: cmpod}}
spec:
  containers:
  - name: app
    image: {self.image}
    command: ["sh", "-c", "cat /cfg/greeting; echo; sleep 3600"]
    volumeMounts: [{{name: cfg, mountPath: /cfg}}]
  volumes:
  - name: cfg
    configMap: {{name: agent-cm}}
""")
        self.wait_running("cmpod")
        self.container_log("cmpod", "hello-from-cm", "configMap content in the container's log")
        self.kubectl("delete", "pod", "cmpod", "--grace-period=0", "--wait=false")

    def test_5b_service_env_vars(self):
        """The kubelet's service environment variables: the master service's always, the pod's
        namespace's with enableServiceLinks (the default)."""
        self.create("""
apiVersion: v1
kind: Service
metadata: {name: agent-svc}
spec:
  selector: {app: nothing}
  ports: [{name: web, port: 80, targetPort: 9376}, {name: dns, port: 53, protocol: UDP}]
""")
        ip = self.get("service", "agent-svc")["spec"]["clusterIP"]
        for name, links in (("envpod", True), ("nolinks", False)):
            self.create(f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  enableServiceLinks: {str(links).lower()}
  containers:
  - name: app
    image: {self.image}
    command: ["sh", "-c", "env | sort; echo END; sleep 3600"]
    env: [{{name: API, value: "https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)"}}]
""")
        for name in ("envpod", "nolinks"):
            self.wait_running(name)
        env = {}
        for name in ("envpod", "nolinks"):
            log = self.container_log(name, "END", f"{name}'s environment in its log")
            env[name] = dict(line.split(" ", 3)[3].split("=", 1) for line in log.splitlines()
                             if "=" in line.split(" ", 3)[-1])
        master = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
                  "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://10.96.0.1:443",
                  "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443",
                  "KUBERNETES_PORT_443_TCP_PROTO": "tcp", "KUBERNETES_PORT_443_TCP_PORT": "443",
                  "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1", "API": "https://10.96.0.1:443"}
        own = {"AGENT_SVC_SERVICE_HOST": ip, "AGENT_SVC_SERVICE_PORT": "80",
               "AGENT_SVC_SERVICE_PORT_WEB": "80", "AGENT_SVC_SERVICE_PORT_DNS": "53",
               "AGENT_SVC_PORT": f"tcp://{ip}:80", "AGENT_SVC_PORT_80_TCP": f"tcp://{ip}:80",
               "AGENT_SVC_PORT_80_TCP_PROTO": "tcp", "AGENT_SVC_PORT_80_TCP_PORT": "80",
               "AGENT_SVC_PORT_80_TCP_ADDR": ip, "AGENT_SVC_PORT_53_UDP": f"udp://{ip}:53",
               "AGENT_SVC_PORT_53_UDP_PROTO": "udp", "AGENT_SVC_PORT_53_UDP_PORT": "53",
               "AGENT_SVC_PORT_53_UDP_ADDR": ip}
        self.assertEqual({k: v for k, v in env["envpod"].items() if k in master or k in own},
                         {**master, **own})
        self.assertEqual({k: v for k, v in env["nolinks"].items() if k in master or k in own},
                         master)
        self.assertFalse([k for k in env["nolinks"] if k.startswith("AGENT_SVC")])
        self.kubectl("delete", "pod", "envpod", "nolinks", "--grace-period=0", "--wait=false")
        self.kubectl("delete", "service", "agent-svc")

    def test_6_kill9_restart_no_container_restarts(self):
        self.kubectl("rollout", "status", "deployment/web", "--timeout=60s", timeout=90)
        pods = {p["metadata"]["name"]: p for p in self.get("pods", "-l", "app=web")["items"]}
        counts = {n: p["status"]["containerStatuses"][0]["restartCount"] for n, p in pods.items()}
        started = {n: p["status"]["containerStatuses"][0]["state"]["running"]["startedAt"] for n, p in pods.items()}
        inits = self.noded.container_inits()
        done_before = self.pod("done")
        self.noded.kill9()
        # While noded is down: one pod is force-deleted (an orphan for the next noded).
        victim = sorted(pods)[0]
        victim_uid = pods[victim]["metadata"]["uid"]
        self.kubectl("delete", "pod", victim, "--grace-period=0", "--force", "--wait=false")
        self.noded.start()
        self.wait(lambda: conditions(self.get("node", NODE))["Ready"]["status"] == "True", 30, "node Ready")
        # The survivor keeps its container (same pid, same restartCount/startedAt).
        survivor = sorted(pods)[1]
        time.sleep(3)
        p = self.wait_running(survivor)
        cs = p["status"]["containerStatuses"][0]
        self.assertEqual(cs["restartCount"], counts[survivor])
        self.assertEqual(cs["state"]["running"]["startedAt"], started[survivor])
        after = self.noded.container_inits()
        surviving_pids = set(after.values()) & set(inits.values())
        self.assertTrue(surviving_pids, (inits, after))
        # The orphan's container and state are gone.
        self.wait(lambda: not os.path.exists(os.path.join(self.noded.root, "pods", victim_uid)), 20,
                  "orphan pod state removed")
        # The Succeeded pod was not run again.
        done = self.pod("done")
        self.assertEqual(done["status"]["phase"], "Succeeded")
        self.assertEqual(done["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"],
                         done_before["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"])
        self.kubectl("rollout", "status", "deployment/web", "--timeout=60s", timeout=90)

    def test_7_control_plane_restart_no_pod_restarts(self):
        self.kubectl("rollout", "status", "deployment/web", "--timeout=60s", timeout=90)
        pods = {p["metadata"]["uid"]: p["status"]["containerStatuses"][0] for p in self.get("pods", "-l", "app=web")["items"]}
        inits = set(self.noded.container_inits().values())
        self.cluster.restart_control()
        time.sleep(3)
        self.wait(lambda: conditions(self.get("node", NODE))["Ready"]["status"] == "True", 30, "node Ready")
        now = {p["metadata"]["uid"]: p["status"]["containerStatuses"][0] for p in self.get("pods", "-l", "app=web")["items"]}
        self.assertEqual(set(now), set(pods))
        for uid, cs in now.items():
            self.assertEqual(cs["restartCount"], pods[uid]["restartCount"])
            self.assertEqual(cs["state"], pods[uid]["state"])
        self.assertTrue(inits <= set(self.noded.container_inits().values()))
        # Writes still work after the restart: a new pod runs.
        self.create(f"""
apiVersion: v1
kind: Pod
metadata: {{name: after-restart}}
spec:
  containers:
  - name: app
    image: {self.image}
    command: ["sleep", "3600"]
""")
        self.wait_running("after-restart")

    def test_8_latency_and_cleanup(self):
        # Rough create -> Running latency seen by a watch (image cached), and noded's idle RSS.
        from kubernetes import client, config, watch
        api = client.CoreV1Api(config.new_client_from_config(self.cluster.kubeconfig))
        w = watch.Watch()
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "latency"},
                "spec": {"containers": [{"name": "app", "image": self.image, "imagePullPolicy": "IfNotPresent",
                                         "command": ["sleep", "3600"]}]}}
        t0 = time.time()
        api.create_namespaced_pod("default", body)
        latency = None
        for ev in w.stream(api.list_namespaced_pod, "default", field_selector="metadata.name=latency",
                           timeout_seconds=30):
            cs = ev["object"].status.container_statuses or []
            if cs and all(c.state.running for c in cs):
                latency = time.time() - t0
                w.stop()
        self.assertIsNotNone(latency)
        with open(f"/proc/{self.noded.proc.pid}/status") as f:
            rss = [l for l in f if l.startswith("VmRSS")][0].split()[1]
        print(f"\nMEASURE pod create->Running (watch): {latency * 1000:.0f} ms; noded VmRSS {int(rss) // 1024} MiB",
              file=sys.stderr)
        # Deleting everything leaves no pod state, containers or cgroups behind.
        self.kubectl("delete", "deployment", "web")
        self.kubectl("delete", "pods", "--all", "--grace-period=1", "--wait=false")
        self.wait(lambda: not self.get("pods")["items"], 60, "all pods gone")
        self.wait(lambda: not os.listdir(os.path.join(self.noded.root, "pods")), 20, "no pod state left")
        self.wait(lambda: not self.noded.container_inits(), 20, "no containers left")
        time.sleep(2)
        with open(f"/proc/{self.noded.proc.pid}/status") as f:
            rss = [l for l in f if l.startswith("VmRSS")][0].split()[1]
        print(f"MEASURE noded VmRSS idle (0 pods): {int(rss) // 1024} MiB", file=sys.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
