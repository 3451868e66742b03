"""podwarp-noded standalone, end to end (issue 3, acceptance 1, 3 and 6): a docker-registry on a
free loopback port with the busybox test image, a real podwarp-noded with temporary root,
manifest and log dirs and a per-test cgroup root, pods from manifests, status from the local
API on its unix socket. Runs as root (CI); skipped with the reason otherwise."""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import noded_harness as h  # noqa: E402

SKIP = h.skip_reason()

WEB_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: default
spec:
  terminationGracePeriodSeconds: 2
  initContainers:
  - name: init
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo hello-from-init > /work/index.html; echo init-done"]
    volumeMounts: [{{name: www, mountPath: /work}}]
  containers:
  - name: httpd
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["httpd", "-f", "-v", "-p", "8081", "-h", "/www"]
    volumeMounts: [{{name: www, mountPath: /www}}]
    readinessProbe:
      httpGet: {{path: /index.html, port: 8081}}
      periodSeconds: 1
    livenessProbe:
      httpGet: {{path: /index.html, port: 8081}}
      periodSeconds: 1
      failureThreshold: 3
  - name: logger
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done"]
    readinessProbe:  # an exec probe: runs inside the container (its namespaces and cgroup)
      exec: {{command: ["sh", "-c", "test -d /proc/1 && test -s /etc/hostname && test -f /www/index.html || test ! -d /www"]}}
      periodSeconds: 1
  volumes:
  - name: www
    emptyDir: {{}}
"""

CRASH_POD = """
apiVersion: v1
kind: Pod
metadata: {{name: crash}}
spec:
  containers:
  - name: crasher
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo boom; exit 1"]
"""

LIVENESS_POD = """
apiVersion: v1
kind: Pod
metadata: {{name: live}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /w; echo ok > /w/healthz; httpd -p 8082 -h /w; sleep 3; rm /w/healthz; sleep 1000"]
    livenessProbe:
      httpGet: {{path: /healthz, port: 8082}}
      periodSeconds: 1
      failureThreshold: 2
"""

EXITER_POD = """
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: {image}
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "sleep {sleep}; exit {code}"]
"""

CRI_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) (stdout|stderr) [FP] (.*)$")


def statuses(pod, key="containerStatuses"):
    return {c["name"]: c for c in pod.get("status", {}).get(key, [])}


def condition(pod, type_):
    for c in pod.get("status", {}).get("conditions", []):
        if c["type"] == type_:
            return c["status"]
    return None


def running_ready(pod):
    if pod is None or pod["status"].get("phase") != "Running":
        return False
    if condition(pod, "Ready") != "True":
        return False
    cs = statuses(pod)
    return len(cs) == 2 and all(c.get("ready") and "running" in c["state"] for c in cs.values())


@unittest.skipIf(SKIP, SKIP)
class NodedStandaloneTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.reg = h.RegistryFixture()

    @classmethod
    def tearDownClass(cls):
        cls.reg.close()

    def setUp(self):
        self.base = tempfile.mkdtemp(prefix="podwarp-noded-it-")
        self.addCleanup(shutil.rmtree, self.base, True)
        name = f"podwarp-it-{os.getpid()}-{self._testMethodName}"[:60]
        self.noded = h.Noded(self.base, name, extra_args=["--crash-backoff-ms", "1000"])
        self.addCleanup(self.noded.cleanup)
        self.image = self.reg.image

    def dump(self):
        return json.dumps(self.noded.pods(), indent=1)[-4000:] + "\n--- noded log ---\n" + \
            self.noded.log_text()[-4000:]

    def wait_pod(self, name, pred, timeout, what):
        try:
            return h.wait_for(lambda: (lambda p: p if p is not None and pred(p) else None)(
                self.noded.pod(name)), timeout, interval=0.1, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.dump()}") from None

    def assert_no_leftovers(self, uid):
        """No mount, cgroup, namespace pin or process of the pod is left."""
        with open("/proc/self/mountinfo") as f:
            mi = f.read()
        self.assertNotIn(uid, mi)
        self.assertFalse(glob.glob(os.path.join(self.noded.cgroup, f"pod{uid}*")))
        self.assertFalse(os.path.exists(os.path.join(self.noded.root, "run", "ns", uid)))
        self.assertEqual(self.noded.cgroup_procs(), [])
        self.assertFalse(h.mounts_under(os.path.join(self.noded.root, "images", "containers")))

    # ------------------------------------------------------------------ acceptance 1 + removal
    def test_pod_lifecycle_probes_logs_and_removal(self):
        n = self.noded.start()
        n.write_manifest("web.yaml", WEB_POD.format(image=self.image))
        pod = self.wait_pod("web", running_ready, 60, "web Running and Ready")
        self.assertEqual(pod["metadata"]["name"], "web-node1")
        uid = pod["metadata"]["uid"]
        init = statuses(pod, "initContainerStatuses")["init"]
        self.assertEqual(init["state"]["terminated"]["exitCode"], 0)
        self.assertEqual(init["state"]["terminated"]["reason"], "Completed")
        for name, c in statuses(pod).items():
            self.assertEqual(c["restartCount"], 0, name)
            self.assertTrue(c["containerID"].startswith("podwarp://"), c)
            # as containerd reports it: <repository>@<digest the registry served>
            self.assertRegex(c["imageID"], "^" + re.escape(self.reg.repo) + "@sha256:[0-9a-f]{64}$")
            self.assertEqual(c["image"], self.image)
            self.assertTrue(c["started"], c)
        self.assertEqual(condition(pod, "Initialized"), "True")
        self.assertEqual(condition(pod, "ContainersReady"), "True")
        # Logs in CRI format under <pod-log-dir>/<ns>_<name>_<uid>/<container>/0.log
        logdir = os.path.join(n.logs, f"default_web-node1_{uid}")
        def logger_lines():
            try:
                with open(os.path.join(logdir, "logger", "0.log")) as f:
                    return [l for l in f.read().splitlines() if l]
            except OSError:
                return []
        lines = h.wait_for(lambda: len(logger_lines()) >= 5 and logger_lines(), 15,
                           what="logger lines")
        for l in lines:
            m = CRI_LINE.match(l)
            self.assertIsNotNone(m, l)
            self.assertEqual(m.group(2), "stdout")
        self.assertEqual(CRI_LINE.match(lines[0]).group(3), "line 0")
        with open(os.path.join(logdir, "init", "0.log")) as f:
            self.assertIn("stdout F init-done", f.read())
        # httpd served the file the init container wrote into the shared emptyDir: the
        # readiness probe (httpGet on localhost in the pod netns) saw it, and its access log says so.
        h.wait_for(lambda: os.path.exists(os.path.join(logdir, "httpd", "0.log")), 5, what="httpd log")
        # The local API serves container logs too.
        st, body = n.get("/containerLogs/default/web-node1/logger?tailLines=2")
        self.assertEqual(st, 200, body)
        self.assertTrue(body.decode().startswith("line "), body)

        # Removing the manifest stops the pod and leaves nothing behind.
        n.remove_manifest("web.yaml")
        h.wait_for(lambda: n.pod("web") is None, 30, what="web gone")
        h.wait_for(lambda: not os.path.exists(os.path.join(n.root, "run", "ns", uid)), 10,
                   what="pins released")
        self.assert_no_leftovers(uid)

    def test_crashloop_backoff_grows(self):
        n = self.noded.start()
        n.write_manifest("crash.yaml", CRASH_POD.format(image=self.image))
        seen = {}  # restartCount -> first time seen
        messages = set()
        deadline = time.time() + 40
        while time.time() < deadline and 4 not in seen:
            p = n.pod("crash")
            if p:
                c = statuses(p).get("crasher")
                if c:
                    seen.setdefault(c["restartCount"], time.time())
                    w = c["state"].get("waiting")
                    if w and w.get("reason") == "CrashLoopBackOff":
                        messages.add(re.sub(r" restarting.*", "", w["message"]))
                        last = c.get("lastState", {}).get("terminated", {})
                        self.assertEqual(last.get("exitCode"), 1, c)
                        self.assertEqual(last.get("reason"), "Error", c)
            time.sleep(0.05)
        info = f"seen {seen} messages {messages}\n{self.dump()}"
        self.assertTrue({1, 2, 3, 4} <= set(seen), info)
        # Restart k+1 comes no earlier than the back-off after crash k: 1 s, 2 s, 4 s (base 1 s
        # for the test; 10 s upstream). Lower bounds only: a loaded machine only adds time.
        for k, backoff in ((1, 1.0), (2, 2.0), (3, 4.0)):
            self.assertGreaterEqual(seen[k + 1] - seen[k], backoff - 0.15, info)
        self.assertTrue({"back-off 1s", "back-off 2s", "back-off 4s"} <= messages, info)
        self.assertEqual(p["status"]["phase"], "Running")
        self.assertIn(condition(p, "Ready"), ("False",))

    def test_failing_liveness_restarts_container(self):
        n = self.noded.start()
        n.write_manifest("live.yaml", LIVENESS_POD.format(image=self.image))
        pod = self.wait_pod("live", lambda p: statuses(p).get("app", {}).get("restartCount", 0) >= 1,
                            40, "liveness restart")
        c = statuses(pod)["app"]
        last = c["lastState"]["terminated"]
        self.assertEqual(last["exitCode"], 137, c)  # killed by SIGKILL (sh ignores SIGTERM as pid 1)
        self.assertIn("liveness", (last.get("message", "") + n.log_text()).lower())

    # ------------------------------------------------------------------ acceptance 3
    def test_kill9_restart_readopts(self):
        n = self.noded.start()
        n.write_manifest("web.yaml", WEB_POD.format(image=self.image))
        # exiter ends while noded is down; late ends after the restart (adopted, not our child).
        n.write_manifest("exiter.yaml", EXITER_POD.format(image=self.image, name="exiter", sleep=8, code=3))
        n.write_manifest("late.yaml", EXITER_POD.format(image=self.image, name="late", sleep=16, code=4))
        pod = self.wait_pod("web", running_ready, 60, "web Running and Ready")
        for name in ("exiter", "late"):
            self.wait_pod(name, lambda p: "running" in statuses(p).get("app", {}).get("state", {}),
                          30, f"{name} running")
        before = {k: (c["containerID"], c["restartCount"], c["state"]["running"]["startedAt"])
                  for k, c in statuses(pod).items()}
        inits_before = n.container_inits()
        self.assertEqual(len(inits_before), 4, inits_before)  # httpd, logger, exiter, late
        n.kill9()
        # The containers keep running without noded; the exiter exits meanwhile.
        time.sleep(1)
        self.assertEqual(n.container_inits(), inits_before)
        h.wait_for(lambda: len(n.container_inits()) == 3, 20, what="exiter exit")
        # A start that noded's death interrupted: a prepared rootfs without a container cgroup.
        orphan = os.path.join(n.root, "images", "containers", "0" * 32)
        os.makedirs(os.path.join(orphan, "rootfs"))
        n.start()
        pod = self.wait_pod("web", running_ready, 30, "web Running and Ready after restart")
        after = {k: (c["containerID"], c["restartCount"], c["state"]["running"]["startedAt"])
                 for k, c in statuses(pod).items()}
        self.assertEqual(before, after)
        time.sleep(2)  # nothing restarts later either
        inits_after = n.container_inits()
        self.assertEqual(inits_after, {k: v for k, v in inits_before.items() if k in inits_after})
        self.assertEqual(len(inits_after), 3)
        pod = n.pod("web")
        self.assertEqual(before, {k: (c["containerID"], c["restartCount"],
                                      c["state"]["running"]["startedAt"])
                                  for k, c in statuses(pod).items()})
        self.assertIn("re-adopted", n.log_text())
        self.assertFalse(os.path.exists(orphan))
        live = h.mounts_under(os.path.join(n.root, "images", "containers"))
        self.assertEqual(len(live), 3, live)  # httpd, logger, late: still mounted
        ex = self.wait_pod("exiter", lambda p: "terminated" in statuses(p)["app"]["state"], 20,
                           "exiter terminated")
        term = statuses(ex)["app"]["state"]["terminated"]
        self.assertEqual(term["exitCode"], 3, f"{term}\n{self.dump()}")
        self.assertEqual(term["reason"], "Error")
        self.assertEqual(ex["status"]["phase"], "Failed")
        self.assertIn("exit code 3 (from the BPF exit recorder)", n.log_text())
        late = self.wait_pod("late", lambda p: "terminated" in statuses(p)["app"]["state"], 20,
                             "late terminated")
        term = statuses(late)["app"]["state"]["terminated"]
        self.assertEqual((term["exitCode"], term["reason"]), (4, "Error"), term)
        self.assertEqual(statuses(late)["app"]["restartCount"], 0)
        self.assertIn("exit code 4 (from the BPF exit recorder)", n.log_text())

    # ------------------------------------------------------------------ acceptance 2, end to end
    def test_tampered_blob_is_rejected(self):
        """A registry blob whose bytes no longer match its digest: the pull through noded
        fails with the digest named (ErrImagePull/ImagePullBackOff), nothing is stored."""
        regdir = os.path.join(self.base, "tamper-registry")
        reg = h.Registry(regdir)
        self.addCleanup(reg.stop)
        imgdir = os.path.join(regdir, "images")
        os.makedirs(imgdir)
        repo = reg.push_test_images(imgdir, repo="podwarp/tampered")
        env = dict(l.strip().split("=", 1) for l in open(os.path.join(imgdir, "digests.env")))
        layer_hex = env["LAYER1"].split(":")[1]
        data = os.path.join(regdir, "storage", "docker", "registry", "v2", "blobs", "sha256",
                            layer_hex[:2], layer_hex, "data")
        with open(data, "r+b") as f:  # same size, different bytes
            f.seek(100)
            b = f.read(1)
            f.seek(100)
            f.write(bytes([b[0] ^ 0xFF]))
        n = self.noded.start()
        n.write_manifest("t.yaml", CRASH_POD.format(image=f"{repo}:latest").replace(
            "name: crash}", "name: tampered}"))
        pod = self.wait_pod("tampered", lambda p: statuses(p).get("crasher", {}).get("state", {})
                            .get("waiting", {}).get("reason") in ("ErrImagePull", "ImagePullBackOff")
                            and "digest" in n.log_text(), 30, "pull failure")
        self.assertIn(layer_hex, n.log_text())
        self.assertIn("digest mismatch", n.log_text())
        self.assertEqual(pod["status"]["phase"], "Pending")
        self.assertFalse(os.path.exists(os.path.join(n.root, "images", "blobs", "sha256", layer_hex)))
        diff_hex = env["DIFF_ID1"].split(":")[1]
        self.assertFalse(os.path.exists(os.path.join(n.root, "images", "layers", diff_hex)))

    def test_image_gc_keeps_images_in_use(self):
        """Above the disk threshold (0% here, checked every second) noded removes images no pod
        names, and keeps those that pods use."""
        n = self.noded
        n.extra_args += ["--image-gc-high-threshold", "0", "--image-gc-period", "1"]
        n.start()
        n.write_manifest("crash.yaml", CRASH_POD.format(image=self.image).replace(
            "exit 1", "sleep 1000").replace("spec:\n", "spec:\n  terminationGracePeriodSeconds: 1\n"))
        self.wait_pod("crash", lambda p: "running" in statuses(p)["crasher"]["state"], 30, "running")
        index = os.path.join(n.root, "images", "index.json")
        time.sleep(2.5)  # a few GC rounds while the image is in use
        with open(index) as f:
            self.assertIn(self.image, f.read())
        n.remove_manifest("crash.yaml")
        h.wait_for(lambda: n.pod("crash") is None, 30, what="pod gone")
        h.wait_for(lambda: self.image not in open(index).read(), 10, what="image collected")
        h.wait_for(lambda: "image gc" in n.log_text(), 5, what="image gc log line")
        self.assertEqual(os.listdir(os.path.join(n.root, "images", "layers")), [])

    # ------------------------------------------------------------------ event loop
    @unittest.skipUnless(os.path.exists("/usr/bin/strace"), "needs strace")
    def test_steady_state_uses_io_uring_only(self):
        """strace -f -c on noded with a running pod (probes, log pumps, API requests): the loop
        waits in io_uring_enter, never in epoll_wait/poll/select."""
        n = self.noded.start()
        n.write_manifest("web.yaml", WEB_POD.format(image=self.image))
        self.wait_pod("web", running_ready, 60, "web Running and Ready")
        out = os.path.join(self.base, "strace.txt")
        tracer = subprocess.Popen(["/usr/bin/strace", "-f", "-c", "-q", "-o", out, "-p",
                                   str(n.proc.pid)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        self.addCleanup(h.stop_proc, tracer, signal.SIGINT)
        time.sleep(1)
        for _ in range(5):  # API traffic during the window too
            self.assertEqual(n.get("/pods")[0], 200)
            time.sleep(0.5)
        time.sleep(1)
        h.stop_proc(tracer, signal.SIGINT)
        with open(out) as f:
            table = f.read()
        calls = {l.split()[-1] for l in table.splitlines()
                 if l.strip() and l.split()[0][0].isdigit()}
        self.assertIn("io_uring_enter", calls, table)
        for bad in ("epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select",
                    "pselect6"):
            self.assertNotIn(bad, calls, table)

    def test_manifest_removed_while_down_is_cleaned_up(self):
        n = self.noded.start()
        n.write_manifest("web.yaml", WEB_POD.format(image=self.image))
        uid = self.wait_pod("web", running_ready, 60, "web Running and Ready")["metadata"]["uid"]
        n.kill9()
        n.remove_manifest("web.yaml")
        n.start()
        h.wait_for(lambda: not n.cgroup_procs() and
                   not os.path.exists(os.path.join(n.root, "run", "ns", uid)), 30,
                   what="orphan pod cleaned up")
        self.assertIsNone(n.pod("web"))
        self.assert_no_leftovers(uid)

    def test_sigterm_exits_and_leaves_pods_running(self):
        """SIGTERM ends noded (exit 0) without stopping pods, as the kubelet: the next noded
        re-adopts them with no restart."""
        n = self.noded.start()
        n.write_manifest("web.yaml", WEB_POD.format(image=self.image))
        pod = self.wait_pod("web", running_ready, 60, "web Running and Ready")
        ids = {k: c["containerID"] for k, c in statuses(pod).items()}
        inits = n.container_inits()
        n.proc.send_signal(signal.SIGTERM)
        self.assertEqual(n.proc.wait(10), 0)
        self.assertFalse(os.path.exists(n.sock))
        self.assertEqual(n.container_inits(), inits)
        n.start()
        pod = self.wait_pod("web", running_ready, 30, "web Ready after restart")
        self.assertEqual({k: c["containerID"] for k, c in statuses(pod).items()}, ids)
        self.assertTrue(all(c["restartCount"] == 0 for c in statuses(pod).values()))
        self.assertEqual(n.container_inits(), inits)

    # ------------------------------------------------------------------ acceptance 6
    def test_bad_manifests_never_crash(self):
        n = self.noded.start()
        n.write_manifest("broken.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n")
        n.write_manifest("invalid.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\n"
                         "spec:\n  containers:\n  - name: Bad_Name\n    image: ''\n")
        n.write_manifest("garbage.json", "\x00\xff{{{")
        n.write_manifest("web.yaml", WEB_POD.format(image=self.image))
        bad = self.wait_pod("bad", lambda p: p["status"].get("phase") == "Failed", 20, "bad Failed")
        self.assertEqual(bad["status"].get("reason"), "InvalidManifest", bad)
        self.assertIn("spec.containers[0]", bad["status"].get("message", ""), bad)
        self.wait_pod("web", running_ready, 60, "web Running next to bad manifests")
        log = n.log_text()
        self.assertIn("broken.yaml", log)
        self.assertRegex(log, r"invalid\.yaml: spec\.containers\[0\]\.(name|image)")
        self.assertIsNone(n.proc.poll())
        self.assertEqual(n.get("/healthz")[0], 200)
        # A second noded on the same root refuses to start (it would fight over the pods).
        second = subprocess.run([os.path.join(h.BIN, "podwarp-noded"), "--standalone",
                                 "--manifest-dir", n.manifests, "--root-dir", n.root,
                                 "--api-socket", n.sock + "2", "--cgroup-root", n.cgroup_name,
                                 "--pod-log-dir", n.logs],
                                capture_output=True, text=True, timeout=20)
        self.assertEqual(second.returncode, 1)
        self.assertIn("another podwarp-noded uses", second.stdout + second.stderr)
        self.assertEqual(n.get("/healthz")[0], 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
