"""Issue 5 acceptance: `podwarp up` brings up a single-node cluster (etcd, podwarp-control,
a local registry with the test images, podwarp-noded with a node certificate), and stock
kubectl 1.32 and the Python client use it as a Kubernetes cluster: Deployments become
Available with Running pods, logs (-f, --previous), exec (-i, -t, exit codes), port-forward,
rollout restart, deletion that leaves nothing behind on the node, kill -9 of noded and a
restart of podwarp-control without container restarts. `podwarp down` removes every process,
mount, cgroup and BPF pin the cluster made.

Needs root (cgroups, namespaces, mounts). All ports are kernel-chosen; the traffic stays on
loopback (kubectl's port-forward listener) and inside the pods' own network namespaces (and a
pod's connection to the kubernetes Service ends at this machine's own address)."""
import json
import os
import pty
import select
import signal
import socket
import stat
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import KUBECTL, free_port  # noqa: E402
from up_harness import UpClusterTestCase, cgroup2_mount, podwarp  # noqa: E402
import pwget  # noqa: E402

NODE = "podwarp-it-node"


class ClusterUpTest(UpClusterTestCase):
    NODE = NODE
    PREFIX = "podwarp-up-"

    # ------------------------------------------------------------------ helpers
    def wait_until(self, pred, timeout=60, message="condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = pred()
            if v:
                return v
            time.sleep(0.2)
        self.dump_logs()
        self.fail(f"timed out waiting for {message}")

    def pods(self, selector):
        return self.kjson("get", "pods", "-l", selector)["items"]

    def restart_counts(self, selector):
        return {p["metadata"]["name"]: [c.get("restartCount", 0)
                                        for c in p["status"].get("containerStatuses", [])]
                for p in self.pods(selector)}

    def running_pod(self, name, args):
        self.kubectl("run", name, f"--image={self.image}:latest", "--restart=Never",
                     "--command", "--", *args)
        self.kubectl("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=90s")

    # ------------------------------------------------------------------ tests, in order
    def test_01_node_ready_and_deployment_available(self):
        node = self.kjson("get", "node", NODE)
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        self.assertEqual(ready[0]["status"], "True")
        self.assertTrue(node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith(
            "podwarp://"))
        # The CRI socket (`podwarp up --cri`, the default) is there and accepts a connection.
        sock_path = os.path.join(self.data, "run", "cri.sock")
        self.assertTrue(stat.S_ISSOCK(os.stat(sock_path).st_mode), sock_path)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(sock_path)
        self.kubectl("create", "deployment", "web", f"--image={self.image}:httpd",
                     "--replicas=3")
        self.kubectl("rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
        wide = self.kubectl("get", "pods", "-l", "app=web", "-o", "wide").stdout
        lines = [line for line in wide.splitlines()[1:] if line.strip()]
        self.assertEqual(len(lines), 3, wide)
        for line in lines:
            self.assertIn("Running", line)
            self.assertIn(NODE, line)
        import ipaddress
        cidr = ipaddress.ip_network(self.kjson("get", "node", NODE)["spec"]["podCIDR"])
        ips = set()
        for p in self.pods("app=web"):
            ip = p["status"].get("podIP", "")
            self.assertTrue(ip, p["status"])  # the routed pod network (podwarp up's default)
            self.assertIn(ipaddress.ip_address(ip), cidr)
            ips.add(ip)
        self.assertEqual(len(ips), 3)
        for p in self.pods("app=web"):
            cs = p["status"]["containerStatuses"][0]
            self.assertTrue(cs["ready"])
            self.assertIn("running", cs["state"])
            self.assertTrue(cs["imageID"])
            self.assertTrue(cs["containerID"].startswith("podwarp://"))

    def test_02_logs_follow_and_previous(self):
        self.running_pod("logger", ["sh", "-c",
                                    "for i in 1 2 3; do echo line $i; done; "
                                    "while true; do echo tick; sleep 0.3; done"])
        self.wait_until(lambda: "line 3" in self.kubectl("logs", "logger").stdout,
                        message="logs of logger")
        # -f streams: new ticks arrive after the command started.
        proc = subprocess.Popen([KUBECTL, "logs", "-f", "--tail=1", "logger"],
                                stdout=subprocess.PIPE, env=self.env, text=True)
        try:
            got = []
            deadline = time.time() + 20
            while time.time() < deadline and len(got) < 3:
                ready, _, _ = select.select([proc.stdout], [], [], 1)
                if ready:
                    got.append(proc.stdout.readline())
            self.assertGreaterEqual(len(got), 3, got)
            self.assertTrue(all("tick" in g for g in got), got)
        finally:
            proc.kill()
            proc.wait()
        # --previous: the log of the run before the last restart.
        self.kubectl("run", "crasher", f"--image={self.image}:latest", "--restart=Always",
                     "--command", "--", "sh", "-c", "echo run at $(date +%s%N); exit 1")
        self.wait_until(lambda: any(c.get("restartCount", 0) >= 1 for c in
                                    self.kjson("get", "pod", "crasher")["status"].get(
                                        "containerStatuses", [])), timeout=60,
                        message="crasher restarted")
        prev = self.kubectl("logs", "--previous", "crasher").stdout
        self.assertIn("run at", prev)
        st = self.kjson("get", "pod", "crasher")["status"]["containerStatuses"][0]
        self.assertEqual(st["lastState"]["terminated"]["exitCode"], 1)
        self.kubectl("delete", "pod", "crasher", "--grace-period=1")

    def test_03_exec(self):
        r = self.kubectl("exec", "logger", "--", "sh", "-c", "echo hi; echo err >&2; exit 3",
                         check=False)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("hi", r.stdout)
        self.assertIn("err", r.stderr)
        self.assertEqual(self.kubectl("exec", "logger", "--", "false", check=False).returncode, 1)
        self.assertEqual(self.kubectl("exec", "logger", "--", "true", check=False).returncode, 0)
        r = self.kubectl("exec", "-i", "logger", "--", "sh", input="echo abc\nexit 5\n",
                         check=False)
        self.assertEqual(r.returncode, 5, r.stderr)
        self.assertIn("abc", r.stdout)
        # -it through a real terminal: type commands, see the output, the exit code propagates.
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(KUBECTL, [KUBECTL, "exec", "-it", "logger", "--", "sh"], self.env)
        out = b""
        try:
            def read_until(token, timeout=20):
                nonlocal out
                deadline = time.time() + timeout
                while token not in out and time.time() < deadline:
                    r, _, _ = select.select([fd], [], [], 0.5)
                    if r:
                        try:
                            out += os.read(fd, 4096)
                        except OSError:
                            break
                return token in out
            time.sleep(1)
            os.write(fd, b"echo $((6*7))\r")
            self.assertTrue(read_until(b"42"), out)
            self.assertTrue(read_until(b"# "), out)  # the prompt: sh runs on a terminal
            os.write(fd, b"exit 7\r")
            read_until(b"\x00", timeout=5)
        finally:
            _, status = os.waitpid(pid, 0)
            os.close(fd)
        self.assertEqual(os.waitstatus_to_exitcode(status), 7, out)

    def test_04_python_client_stream_exec(self):
        from kubernetes import client, config
        from kubernetes.stream import stream
        config.load_kube_config(config_file=self.env["KUBECONFIG"])
        v1 = client.CoreV1Api()
        out = stream(v1.connect_get_namespaced_pod_exec, "logger", "default",
                     command=["sh", "-c", "echo from-python"], stderr=True, stdin=False,
                     stdout=True, tty=False)
        self.assertIn("from-python", out)

    def test_05_port_forward(self):
        pod = self.pods("app=web")[0]["metadata"]["name"]
        local = free_port()
        proc = subprocess.Popen([KUBECTL, "port-forward", f"pod/{pod}", f"{local}:80"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env,
                                text=True)
        try:
            line = proc.stdout.readline()
            self.assertIn("Forwarding from", line)
            for _ in range(3):  # several connections over one port-forward session
                with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10) as r:
                    self.assertEqual(r.read().decode().strip(), "hello from podwarp")
        finally:
            proc.kill()
            proc.wait()

    def test_05b_pod_to_pod(self):
        # From inside one pod's network namespace to another pod's IP (never from the host's).
        ip = self.pods("app=web")[0]["status"]["podIP"]
        r = self.kubectl("exec", "logger", "--", "sh", "-c",
                         f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {ip} 80", check=False)
        self.assertIn("hello from podwarp", r.stdout, r.stderr)

    def test_05c_service_by_dns_name(self):
        # Cluster DNS from noded (169.254.20.10, node-local) and the eBPF ClusterIP balancer
        # (podwarp up's defaults): a pod reaches the web Service by its names, from inside its own
        # network namespace.
        self.kubectl("expose", "deployment", "web", "--port=80")
        svc = self.kjson("get", "service", "web")
        cluster_ip = svc["spec"]["clusterIP"]
        conf = self.kubectl("exec", "logger", "--", "cat", "/etc/resolv.conf").stdout
        self.assertIn("nameserver 169.254.20.10", conf)
        self.assertIn("search default.svc.cluster.local svc.cluster.local cluster.local", conf)
        self.assertIn("options ndots:5", conf)

        def lookup():
            r = self.kubectl("exec", "logger", "--", "busybox", "nslookup",
                             "web.default.svc.cluster.local", check=False)
            return r.stdout if cluster_ip in r.stdout else None
        self.wait_until(lookup, timeout=30, message="web.default.svc.cluster.local resolves")
        r = self.kubectl("exec", "logger", "--", "busybox", "nslookup",
                         "nosuch.default.svc.cluster.local", check=False)
        self.assertNotIn(cluster_ip, r.stdout)
        self.assertIn("NXDOMAIN", r.stdout + r.stderr)

        # (busybox-static's wget crashes in getaddrinfo: nc it is; nc resolves `web` through the
        # search path)
        def fetch():
            r = self.kubectl("exec", "logger", "--", "sh", "-c",
                             "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 web 80", check=False)
            return "hello from podwarp" in r.stdout
        self.wait_until(fetch, timeout=30, message="web:80 through DNS and the ClusterIP")
        self.kubectl("delete", "service", "web")

    def test_05d_pod_reaches_the_api(self):
        # podwarp-control listens on all addresses and advertises the default route's, so that a
        # pod reaches it as in-cluster clients do: KUBERNETES_SERVICE_HOST:PORT (10.96.0.1:443),
        # the socket load balancer to the advertise address, TLS verified with the mounted
        # ca.crt, the mounted service account token.
        share = os.path.join(self.data, "pwget")
        os.makedirs(share, exist_ok=True)
        pwget.build(share, os.path.join(share, "pwget"))
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "incluster"},
               "spec": {"terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "c", "image": f"{self.image}:latest",
                                        "command": ["sleep", "3600"],
                                        "volumeMounts": [{"name": "bin", "mountPath": "/pw"}]}],
                        "volumes": [{"name": "bin", "hostPath": {"path": share,
                                                                 "type": "Directory"}}]}}
        self.kubectl("apply", "-f", "-", input=json.dumps(pod))
        self.kubectl("wait", "--for=condition=Ready", "pod/incluster", "--timeout=90s")
        try:
            env = self.kubectl("exec", "incluster", "--", "sh", "-c",
                               "echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT").stdout
            self.assertEqual(env.strip(), "10.96.0.1:443")
            r = self.kubectl("exec", "incluster", "--", "/pw/pwget",
                             "/api/v1/namespaces/default/pods/incluster", check=False)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            status, _, rest = r.stdout.partition("\n")
            self.assertEqual(status.strip(), "HTTP/1.1 200 OK", r.stdout)
            got = json.loads(rest.partition("\r\n\r\n")[2] or rest.partition("\n\n")[2])
            self.assertEqual((got["kind"], got["metadata"]["name"]), ("Pod", "incluster"))
            self.assertEqual(got["spec"]["serviceAccountName"], "default")
        finally:
            self.kubectl("delete", "pod", "incluster", "--grace-period=1", check=False)

    def test_05e_statefulset_volume(self):
        """A StatefulSet with a volumeClaimTemplate on `podwarp up`'s default StorageClass
        (local-path, WaitForFirstConsumer): the claim is created, provisioned on the pod's node
        and bound; what the pod writes survives the pod being deleted and re-created."""
        sc = self.kjson("get", "storageclass", "local-path")
        self.assertEqual(sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"], "true")
        self.assertIn("(default)", self.kubectl("get", "sc").stdout)
        sts = {"apiVersion": "apps/v1", "kind": "StatefulSet",
               "metadata": {"name": "db"},
               "spec": {"serviceName": "db", "replicas": 1,
                        "selector": {"matchLabels": {"app": "db"}},
                        "template": {"metadata": {"labels": {"app": "db"}},
                                     "spec": {"terminationGracePeriodSeconds": 1,
                                              "containers": [{
                                                  "name": "db", "image": f"{self.image}:latest",
                                                  "command": ["sh", "-c",
                                                              "echo boot >> /data/boots; exec sleep 100000"],
                                                  "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
                        "volumeClaimTemplates": [{
                            "metadata": {"name": "data"},
                            "spec": {"accessModes": ["ReadWriteOnce"],
                                     "resources": {"requests": {"storage": "10Mi"}}}}]}}
        self.kubectl("apply", "-f", "-", input=json.dumps(sts))
        try:
            def running_uid():
                p = self.kjson("get", "pods", "-l", "app=db")["items"]
                return p[0]["metadata"]["uid"] if p and p[0]["status"].get("phase") == "Running" else None
            first = self.wait_until(running_uid, 90, "db-0 Running")
            pvc = self.kjson("get", "pvc", "data-db-0")
            self.assertEqual(pvc["status"]["phase"], "Bound")
            self.assertEqual(pvc["spec"]["storageClassName"], "local-path")
            pv = self.kjson("get", "pv", pvc["spec"]["volumeName"])
            self.assertEqual(pv["spec"]["claimRef"]["name"], "data-db-0")
            path = pv["spec"]["hostPath"]["path"]
            self.assertTrue(path.startswith(os.path.join(self.data, "storage")), path)
            self.assertEqual(self.kubectl("exec", "db-0", "--", "cat", "/data/boots").stdout, "boot\n")
            self.kubectl("delete", "pod", "db-0", "--wait=false")
            self.wait_until(lambda: (lambda u: u if u and u != first else None)(running_uid()), 90,
                            "db-0 re-created and Running")
            self.wait_until(lambda: self.kubectl("exec", "db-0", "--", "cat", "/data/boots",
                                                 check=False).stdout == "boot\nboot\n",
                            30, "the file written before survives")
            with open(os.path.join(path, "boots")) as f:
                self.assertEqual(f.read(), "boot\nboot\n")
            # The claim deleted with its pod still stopping: the volume (reclaim policy Delete)
            # is deleted and, once the pod is gone, noded removes its directory, then the volume.
            self.kubectl("delete", "statefulset", "db", "--wait=false")
            self.kubectl("delete", "pvc", "data-db-0", "--wait=false")
            self.wait_until(lambda: self.kubectl("get", "pv", pv["metadata"]["name"],
                                                 check=False).returncode != 0,
                            90, "the volume deleted")
            self.assertFalse(os.path.exists(path), path)
        finally:
            self.kubectl("delete", "statefulset", "db", "--wait=false", check=False)
            self.kubectl("delete", "pvc", "data-db-0", "--wait=false", check=False)

    def test_06_rollout_restart_replaces_pods(self):
        before = {p["metadata"]["name"] for p in self.pods("app=web")}
        self.kubectl("rollout", "restart", "deployment/web")
        self.kubectl("rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
        self.wait_until(lambda: len(self.pods("app=web")) == 3, message="3 web pods")
        after = {p["metadata"]["name"] for p in self.pods("app=web")}
        self.assertFalse(before & after, (before, after))

    def test_07_kill_noded_no_container_restarts(self):
        before = self.restart_counts("app=web")
        with open(os.path.join(self.data, "up", "noded.pid")) as f:
            pid = int(f.read().strip())
        os.kill(pid, signal.SIGKILL)
        time.sleep(1)
        r = podwarp(*self.up_args)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        time.sleep(3)
        node = self.kjson("get", "node", NODE)
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"][0]
        self.assertEqual(ready["status"], "True")
        self.assertEqual(self.restart_counts("app=web"), before)
        for p in self.pods("app=web"):
            self.assertEqual(p["status"]["phase"], "Running")
            self.assertTrue(p["status"]["containerStatuses"][0]["ready"])

    def test_08_restart_control_nothing_lost(self):
        before = self.restart_counts("app=web")
        with open(os.path.join(self.data, "up", "control.pid")) as f:
            pid = int(f.read().strip())
        os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                os.kill(pid, 0)
                time.sleep(0.1)
            except ProcessLookupError:
                break
        r = podwarp(*self.up_args)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.kubectl("rollout", "status", "deployment/web", "--timeout=60s", timeout=90)
        self.assertEqual(self.restart_counts("app=web"), before)
        # noded resumed its watch: a new pod still starts.
        self.kubectl("run", "after-restart", f"--image={self.image}:latest", "--restart=Never",
                     "--command", "--", "sleep", "3600")
        self.kubectl("wait", "--for=condition=Ready", "pod/after-restart", "--timeout=90s")

    def test_09_delete_leaves_nothing_on_the_node(self):
        self.kubectl("delete", "deployment", "web")
        self.kubectl("delete", "pod", "logger", "after-restart", "--grace-period=1",
                     "--wait=false")
        self.wait_until(lambda: not self.kjson("get", "pods")["items"], timeout=90,
                        message="all pods gone")
        pods_dir = os.path.join(self.data, "pods")
        self.wait_until(lambda: not os.path.isdir(pods_dir) or not os.listdir(pods_dir),
                        timeout=30, message="pod state removed")
        with open(os.path.join(self.data, "up", "cgroup-root")) as f:
            cgroup = os.path.join(cgroup2_mount(), f.read().strip())
        self.wait_until(lambda: not os.path.isdir(cgroup) or
                        not [d for d in os.listdir(cgroup) if os.path.isdir(os.path.join(cgroup, d))],
                        timeout=30, message="pod cgroups removed")
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split()[4] for line in f
                      if line.split()[4].startswith(os.path.join(self.data, "run") + "/")
                      or line.split()[4].startswith(os.path.join(self.data, "pods") + "/")]
        self.assertEqual(mounts, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
