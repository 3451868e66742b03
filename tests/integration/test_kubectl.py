"""Acceptance 1: the installed kubectl drives podwarp-control unmodified."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: httpd
        image: busybox:1.36
        command: ["httpd", "-f", "-p", "9376"]
        ports:
        - containerPort: 9376
        env:
        - name: A
          value: "1"
        readinessProbe:
          httpGet: {path: /, port: 9376}
        resources:
          requests: {cpu: 100m, memory: 64Mi}
      - name: sidecar
        image: busybox:1.36
        command: ["sleep", "infinity"]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - name: http
    port: 80
    targetPort: 9376
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
data:
  greeting: hello
"""


class KubectlTest(harness.ClusterTestCase):
    def setUp(self):
        self.ns = "kt-" + self.id().rsplit(".", 1)[1].replace("_", "-")[:40].lower()
        self.cluster.kubectl("create", "namespace", self.ns)

    def k(self, *args, **kw):
        return self.cluster.kubectl("-n", self.ns, *args, **kw)

    def apply(self, text):
        return self.k("apply", "-f", "-", input=text)

    def test_apply_twice_merges(self):
        out = self.apply(MANIFEST).stdout
        self.assertIn("deployment.apps/web created", out)
        self.assertIn("service/web created", out)
        self.assertIn("configmap/web-config created", out)
        changed = MANIFEST.replace('value: "1"', 'value: "2"').replace("greeting: hello",
                                                                       "greeting: bye")
        out = self.apply(changed).stdout
        self.assertIn("deployment.apps/web configured", out)
        self.assertIn("service/web unchanged", out)
        self.assertIn("configmap/web-config configured", out)
        dep = json.loads(self.k("get", "deployment", "web", "-o", "json").stdout)
        containers = dep["spec"]["template"]["spec"]["containers"]
        self.assertEqual([c["name"] for c in containers], ["httpd", "sidecar"])
        self.assertEqual(containers[0]["env"], [{"name": "A", "value": "2"}])
        self.assertEqual(dep["metadata"]["generation"], 2)
        # Defaults are applied as upstream.
        self.assertEqual(dep["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%")
        self.assertEqual(containers[0]["imagePullPolicy"], "IfNotPresent")
        self.assertEqual(containers[0]["terminationMessagePath"], "/dev/termination-log")
        cm = json.loads(self.k("get", "configmap", "web-config", "-o", "json").stdout)
        self.assertEqual(cm["data"], {"greeting": "bye"})
        svc = json.loads(self.k("get", "service", "web", "-o", "json").stdout)
        self.assertRegex(svc["spec"]["clusterIP"], r"^10\.(9[6-9]|10[0-9]|11[01])\.")
        # A third apply of the same text changes nothing.
        out = self.apply(changed).stdout
        self.assertIn("deployment.apps/web unchanged", out)

    def test_get_wide_and_show_labels(self):
        self.apply(MANIFEST)
        out = self.k("get", "deployments", "-o", "wide").stdout
        header = out.splitlines()[0].split()
        self.assertEqual(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE",
                                  "CONTAINERS", "IMAGES", "SELECTOR"])
        self.assertIn("httpd,sidecar", out)
        self.assertIn("app=web", out)
        out = self.k("get", "services", "-o", "wide").stdout
        self.assertEqual(out.splitlines()[0].split(),
                         ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"])
        self.assertIn("80/TCP", out)
        out = self.cluster.kubectl("get", "deployments", "--show-labels", "-A").stdout
        lines = out.splitlines()
        self.assertEqual(lines[0].split()[:2], ["NAMESPACE", "NAME"])
        self.assertEqual(lines[0].split()[-1], "LABELS")
        row = [l for l in lines if l.startswith(self.ns)][0]
        self.assertIn("app=web,tier=front", row)

    def test_get_watch_shows_changes(self):
        self.apply(MANIFEST)
        cmd = [harness.KUBECTL, "--kubeconfig", self.cluster.kubeconfig, "--cache-dir",
               self.cluster.cache_dir, "-n", self.ns, "get", "configmaps", "-w"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(1.5)
            self.k("create", "configmap", "later", "--from-literal=a=b")
            time.sleep(1.5)
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=10)
        self.assertIn("web-config", out, err)
        self.assertIn("later", out, err)
        self.assertEqual(out.splitlines()[0].split(), ["NAME", "DATA", "AGE"])

    def test_describe(self):
        self.apply(MANIFEST)
        out = self.k("describe", "deployment", "web").stdout
        self.assertIn("Name:", out)
        self.assertIn("web", out)
        self.assertIn("Selector:", out)
        self.assertIn("app=web", out)
        self.assertIn("RollingUpdate", out)
        out = self.k("describe", "service", "web").stdout
        self.assertIn("IP:", out)
        self.assertIn("9376/TCP", out)

    def test_scale(self):
        self.apply(MANIFEST)
        out = self.k("scale", "deployment", "web", "--replicas=5").stdout
        self.assertIn("deployment.apps/web scaled", out)
        dep = json.loads(self.k("get", "deployment", "web", "-o", "json").stdout)
        self.assertEqual(dep["spec"]["replicas"], 5)

    def test_patch_three_types(self):
        self.apply(MANIFEST)
        self.k("patch", "deployment", "web", "--type=strategic", "-p",
               '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.37"}]}}}}')
        dep = json.loads(self.k("get", "deployment", "web", "-o", "json").stdout)
        cs = {c["name"]: c for c in dep["spec"]["template"]["spec"]["containers"]}
        self.assertEqual(cs["sidecar"]["image"], "busybox:1.37")
        self.assertEqual(cs["httpd"]["image"], "busybox:1.36")
        self.k("patch", "configmap", "web-config", "--type=merge", "-p", '{"data":{"x":"y"}}')
        cm = json.loads(self.k("get", "configmap", "web-config", "-o", "json").stdout)
        self.assertEqual(cm["data"], {"greeting": "hello", "x": "y"})
        self.k("patch", "configmap", "web-config", "--type=json", "-p",
               '[{"op":"remove","path":"/data/greeting"}]')
        cm = json.loads(self.k("get", "configmap", "web-config", "-o", "json").stdout)
        self.assertEqual(cm["data"], {"x": "y"})
        r = self.k("patch", "configmap", "web-config", "--type=json", "-p",
                   '[{"op":"test","path":"/data/x","value":"nope"}]', check=False)
        self.assertNotEqual(r.returncode, 0)

    def test_label_annotate(self):
        self.apply(MANIFEST)
        self.k("label", "configmap", "web-config", "color=blue")
        self.k("annotate", "configmap", "web-config", "note=hi")
        cm = json.loads(self.k("get", "configmap", "web-config", "-o", "json").stdout)
        self.assertEqual(cm["metadata"]["labels"], {"color": "blue"})
        self.assertEqual(cm["metadata"]["annotations"]["note"], "hi")
        out = self.k("get", "configmaps", "-l", "color=blue", "-o", "name").stdout
        self.assertEqual(out.split(), ["configmap/web-config"])
        self.k("label", "configmap", "web-config", "color-")
        cm = json.loads(self.k("get", "configmap", "web-config", "-o", "json").stdout)
        self.assertNotIn("color", cm["metadata"].get("labels", {}))

    def test_delete_returns_when_gone(self):
        self.apply(MANIFEST)
        out = self.k("delete", "deployment", "web", timeout=60).stdout
        self.assertIn('deployment.apps "web" deleted', out)
        r = self.k("get", "deployment", "web", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('deployments.apps "web" not found', r.stderr)
        self.k("delete", "-f", "-", input=MANIFEST.split("---", 1)[1])
        self.assertEqual(self.k("get", "configmaps", "-o", "name").stdout.strip(), "")
        self.assertEqual(self.k("get", "services", "-o", "name").stdout.strip(), "")

    def test_apply_kind_list_validates_items(self):
        # A v1 List is no served kind, so kubectl validates its items itself against the
        # protobuf /openapi/v2 document (issue 2: that request used to fail with 406).
        items = MANIFEST.strip().split("---")
        indented = ["- " + "\n  ".join(i.strip().splitlines()) for i in items]
        list_text = "apiVersion: v1\nkind: List\nitems:\n" + "\n".join(indented) + "\n"
        out = self.apply(list_text).stdout
        self.assertIn("deployment.apps/web created", out)
        self.assertIn("service/web created", out)
        self.assertIn("configmap/web-config created", out)
        self.assertEqual(self.k("get", "configmap", "web-config", "-o",
                                "jsonpath={.data.greeting}").stdout, "hello")
        self.assertEqual(self.k("get", "service", "web", "-o",
                                "jsonpath={.spec.ports[0].targetPort}").stdout, "9376")
        # An unknown field in an item is rejected before anything is created, naming the field
        # and the schema as upstream kubectl does (client-side validation of List items).
        bad = ("apiVersion: v1\nkind: List\nitems:\n"
               "- apiVersion: v1\n  kind: Service\n  metadata: {name: other}\n"
               "  spec:\n    ports: [{port: 81}]\n"
               "- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: other-config}\n"
               "  data: {a: b}\n  bogusField: 1\n")
        for flags in (["--validate=strict"], []):
            r = self.k("apply", *flags, "-f", "-", input=bad, check=False)
            self.assertNotEqual(r.returncode, 0, r.stdout)
            self.assertIn('unknown field "bogusField" in io.k8s.api.core.v1.ConfigMap', r.stderr)
            self.assertNotIn("406", r.stderr)
        self.assertNotEqual(self.k("get", "service", "other", check=False).returncode, 0)
        self.assertNotEqual(self.k("get", "configmap", "other-config", check=False).returncode, 0)
        # The JSON form is still what a JSON client gets.
        doc = json.loads(self.cluster.kubectl("get", "--raw", "/openapi/v2").stdout)
        self.assertEqual(doc["swagger"], "2.0")
        self.assertIn("io.k8s.api.core.v1.ConfigMap", doc["definitions"])

    def test_api_resources_and_explain(self):
        out = self.cluster.kubectl("api-resources").stdout
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"])
        rows = {l.split()[0]: l.split() for l in lines[1:]}
        self.assertEqual(rows["pods"], ["pods", "po", "v1", "true", "Pod"])
        self.assertEqual(rows["deployments"], ["deployments", "deploy", "apps/v1", "true", "Deployment"])
        self.assertEqual(rows["namespaces"], ["namespaces", "ns", "v1", "false", "Namespace"])
        for res in ["services", "endpoints", "configmaps", "secrets", "serviceaccounts", "events",
                    "replicasets", "daemonsets", "statefulsets", "jobs", "cronjobs", "leases",
                    "endpointslices", "networkpolicies", "ingresses", "poddisruptionbudgets", "nodes"]:
            self.assertIn(res, rows)
        out = self.cluster.kubectl("explain", "pod.spec.containers").stdout
        self.assertIn("KIND:", out)
        self.assertIn("Pod", out)
        self.assertIn("FIELD: containers", out)
        self.assertIn("image", out)
        self.assertIn("livenessProbe", out)
        out = self.cluster.kubectl("api-resources", "--api-group=authorization.k8s.io").stdout
        rows = {l.split()[0]: l.split() for l in out.splitlines()[1:]}
        self.assertEqual(rows["selfsubjectaccessreviews"],
                         ["selfsubjectaccessreviews", "authorization.k8s.io/v1", "false",
                          "SelfSubjectAccessReview"])
        self.assertEqual(rows["localsubjectaccessreviews"][2], "true")
        out = self.cluster.kubectl("api-resources", "--api-group=", "--verbs=create").stdout
        self.assertIn("bindings", [l.split()[0] for l in out.splitlines()[1:]])

    def test_kubernetes_service_has_its_endpoints(self):
        # As upstream's endpoint reconciler: an EndpointSlice for the service load balancer,
        # and Endpoints that the slice mirroring leaves alone.
        sl = json.loads(self.k("-n", "default", "get", "endpointslice", "kubernetes", "-o",
                               "json").stdout)
        self.assertEqual(sl["metadata"]["labels"]["kubernetes.io/service-name"], "kubernetes")
        self.assertEqual(sl["addressType"], "IPv4")
        self.assertEqual(sl["endpoints"], [{"addresses": ["127.0.0.1"],
                                            "conditions": {"ready": True}}])
        self.assertEqual(sl["ports"], [{"name": "https", "port": self.cluster.port,
                                        "protocol": "TCP"}])
        ep = json.loads(self.k("-n", "default", "get", "endpoints", "kubernetes", "-o",
                               "json").stdout)
        self.assertEqual(ep["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"],
                         "true")
        self.assertEqual(ep["subsets"][0]["ports"][0]["port"], self.cluster.port)

    def test_auth_can_i_and_whoami(self):
        # No authorizer yet: every authenticated user may do everything (AlwaysAllow).
        self.assertEqual(self.k("auth", "can-i", "create", "pods").stdout.strip(), "yes")
        self.assertEqual(self.k("auth", "can-i", "get", "/healthz").stdout.strip(), "yes")
        out = self.k("auth", "can-i", "--list", "-n", "default").stdout.splitlines()
        self.assertEqual(out[0].split(), ["Resources", "Non-Resource", "URLs", "Resource", "Names",
                                          "Verbs"])
        self.assertEqual(out[1].split(), ["*.*", "[]", "[]", "[*]"])
        self.assertEqual(out[2].split(), ["[*]", "[]", "[*]"])
        out = self.k("auth", "whoami").stdout
        self.assertIn("kubernetes-admin", out)
        # Reviews are answered, not stored: nothing to list.
        r = self.k("get", "selfsubjectaccessreviews", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("MethodNotAllowed", r.stderr)

    def test_rbac_objects(self):
        # Stored and served as upstream's with --authorization-mode=AlwaysAllow: what kubectl's
        # create role/rolebinding send, the printers, the bootstrap cluster-admin, validation
        # and the immutable roleRef (aggregation: core_api_test.cpp, with the controller).
        out = self.k("create", "role", "pod-reader", "--verb=get,list,watch",
                     "--resource=pods,pods/log").stdout
        self.assertIn("role.rbac.authorization.k8s.io/pod-reader created", out)
        self.k("create", "rolebinding", "read-pods", "--role=pod-reader", "--user=jane",
               "--group=qa", f"--serviceaccount={self.ns}:ci")
        rows = self.k("get", "rolebinding", "read-pods", "-o", "wide").stdout.splitlines()
        self.assertEqual(rows[0].split(), ["NAME", "ROLE", "AGE", "USERS", "GROUPS",
                                           "SERVICEACCOUNTS"])
        cells = rows[1].split()
        self.assertEqual(cells[:2], ["read-pods", "Role/pod-reader"])
        self.assertEqual(cells[3:], ["jane", "qa", f"{self.ns}/ci"])
        role = json.loads(self.k("get", "role", "pod-reader", "-o", "json").stdout)
        self.assertEqual(role["rules"], [{"apiGroups": [""], "resources": ["pods", "pods/log"],
                                          "verbs": ["get", "list", "watch"]}])
        out = self.k("describe", "rolebinding", "read-pods").stdout
        self.assertIn("Role:", out)
        self.assertIn("pod-reader", out)
        self.assertIn("jane", out)
        out = self.cluster.kubectl("get", "clusterrolebinding", "cluster-admin", "-o",
                                   "wide").stdout.splitlines()[1].split()
        self.assertEqual(out[:2], ["cluster-admin", "ClusterRole/cluster-admin"])
        self.assertEqual(out[3:], ["system:masters"])
        crole = json.loads(self.cluster.kubectl("get", "clusterrole", "cluster-admin", "-o",
                                                "json").stdout)
        self.assertEqual(crole["rules"][0], {"apiGroups": ["*"], "resources": ["*"],
                                             "verbs": ["*"]})
        # Validation and the immutable roleRef, with upstream's messages.
        r = self.k("create", "role", "bad", "--verb=get", "--resource=pods",
                   "--dry-run=client", "-o", "json")
        bad = json.loads(r.stdout)
        bad["rules"][0]["verbs"] = []
        r = self.k("apply", "-f", "-", input=json.dumps(bad), check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("rules[0].verbs: Required value: verbs must contain at least one value",
                      r.stderr)
        r = self.k("patch", "rolebinding", "read-pods", "--type=merge", "-p",
                   '{"roleRef":{"name":"other"}}', check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("cannot change roleRef", r.stderr)

    def test_priority_classes(self):
        # The built-in classes exist, kubectl create priorityclass and get pc print as
        # upstream, and the Priority admission resolves a pod's class (403 for an unknown one).
        rows = self.cluster.kubectl("get", "pc").stdout.splitlines()
        self.assertEqual(rows[0].split(), ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE",
                                           "PREEMPTIONPOLICY"])
        by_name = {r.split()[0]: r.split() for r in rows[1:]}
        self.assertEqual(by_name["system-node-critical"][1:3], ["2000001000", "false"])
        self.assertEqual(by_name["system-cluster-critical"][1:3], ["2000000000", "false"])
        name = f"{self.ns}-high"
        self.cluster.kubectl("create", "priorityclass", name, "--value=1000",
                             "--preemption-policy=Never", "--description=for the test")
        try:
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "prio"},
                   "spec": {"priorityClassName": name,
                            "containers": [{"name": "c", "image": "busybox"}]}}
            self.apply(json.dumps(pod))
            got = json.loads(self.k("get", "pod", "prio", "-o", "json").stdout)
            self.assertEqual(got["spec"]["priority"], 1000)
            self.assertEqual(got["spec"]["preemptionPolicy"], "Never")
            # An update that leaves them out keeps them, as upstream's admission does.
            del got["spec"]["priority"], got["spec"]["preemptionPolicy"]
            got["metadata"]["labels"] = {"updated": "yes"}
            self.k("replace", "-f", "-", input=json.dumps(got))
            again = json.loads(self.k("get", "pod", "prio", "-o", "json").stdout)
            self.assertEqual((again["spec"]["priority"], again["spec"]["preemptionPolicy"]),
                             (1000, "Never"))
            self.assertEqual(again["metadata"]["labels"], {"updated": "yes"})
            pod["metadata"]["name"] = "noclass"
            pod["spec"]["priorityClassName"] = "no-such-class"
            r = self.k("apply", "-f", "-", input=json.dumps(pod), check=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn('pods "noclass" is forbidden: no PriorityClass with name no-such-class '
                          'was found', r.stderr)
            r = self.cluster.kubectl("patch", "pc", name, "--type=merge", "-p", '{"value":5}',
                                     check=False)
            self.assertIn("value: Forbidden: may not be changed in an update.", r.stderr)
        finally:
            self.cluster.kubectl("delete", "pc", name, check=False)

    def test_pvc_pv_sc(self):
        # Served as upstream's (binding and provisioning are not): a default StorageClass, a
        # hostPath PV and a claim without a class, which the DefaultStorageClass admission names.
        sc, pv = f"{self.ns}-local", f"{self.ns}-pv"
        manifest = f"""
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: {sc}
  annotations: {{storageclass.kubernetes.io/is-default-class: "true"}}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: v1
kind: PersistentVolume
metadata: {{name: {pv}}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  storageClassName: {sc}
  hostPath: {{path: /tmp/{pv}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 512Mi}}}}
"""
        try:
            out = self.apply(manifest).stdout
            self.assertIn(f"storageclass.storage.k8s.io/{sc} created", out)
            self.assertIn(f"persistentvolume/{pv} created", out)
            self.assertIn("persistentvolumeclaim/data created", out)
            rows = self.cluster.kubectl("get", "sc", sc).stdout.splitlines()
            self.assertEqual(rows[0].split(), ["NAME", "PROVISIONER", "RECLAIMPOLICY",
                                               "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE"])
            self.assertEqual(rows[1].split()[:6], [sc, "(default)", "kubernetes.io/no-provisioner",
                                                   "Delete", "WaitForFirstConsumer", "false"])
            rows = self.cluster.kubectl("get", "pv", pv).stdout.splitlines()
            self.assertEqual(rows[0].split(), ["NAME", "CAPACITY", "ACCESS", "MODES", "RECLAIM",
                                               "POLICY", "STATUS", "CLAIM", "STORAGECLASS",
                                               "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"])
            self.assertEqual(rows[1].split()[:7], [pv, "1Gi", "RWO", "Retain", "Pending", sc,
                                                   "<unset>"])
            rows = self.k("get", "pvc", "-o", "wide").stdout.splitlines()
            self.assertEqual(rows[0].split(), ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS",
                                               "MODES", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS",
                                               "AGE", "VOLUMEMODE"])
            cells = rows[1].split()
            self.assertEqual(cells[:4] + cells[5:], ["data", "Pending", sc, "<unset>",
                                                     "Filesystem"])
            got = json.loads(self.k("get", "pvc", "data", "-o", "json").stdout)
            self.assertEqual(got["spec"]["storageClassName"], sc)
            self.assertEqual(got["spec"]["volumeMode"], "Filesystem")
            # Validation (422 Invalid) and the immutable spec, with upstream's messages.
            bad = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                   "metadata": {"name": "bad"},
                   "spec": {"resources": {"requests": {"storage": "1Gi"}}}}
            r = self.k("apply", "-f", "-", input=json.dumps(bad), check=False)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn('PersistentVolumeClaim "bad" is invalid: spec.accessModes: Required '
                          'value: at least 1 access mode is required', r.stderr)
            r = self.k("patch", "pvc", "data", "--type=merge", "-p",
                       '{"spec":{"accessModes":["ReadWriteMany"]}}', check=False)
            self.assertIn("spec is immutable after creation except resources.requests and "
                          "volumeAttributesClassName for bound claims", r.stderr)
            out = self.cluster.kubectl("explain", "pvc.spec.accessModes").stdout
            self.assertIn("PersistentVolumeClaim", out)
            self.assertIn("FIELD: accessModes", out)
            out = self.cluster.kubectl("api-resources", "--api-group=storage.k8s.io").stdout
            rows = {l.split()[0]: l.split() for l in out.splitlines()[1:]}
            self.assertEqual(rows["storageclasses"], ["storageclasses", "sc", "storage.k8s.io/v1",
                                                      "false", "StorageClass"])
            self.k("delete", "pvc", "data")
        finally:
            self.cluster.kubectl("delete", "pv", pv, "--ignore-not-found")
            self.cluster.kubectl("delete", "sc", sc, "--ignore-not-found")

    def test_component_statuses(self):
        # Deprecated upstream but still served: computed on each read, with the warning.
        r = self.cluster.kubectl("get", "cs")
        self.assertIn("Warning: v1 ComponentStatus is deprecated in v1.19+", r.stderr)
        rows = [l.split(None, 3) for l in r.stdout.splitlines()]
        self.assertEqual(rows[0], ["NAME", "STATUS", "MESSAGE", "ERROR"])
        by_name = {row[0]: row for row in rows[1:]}
        self.assertEqual(by_name["etcd-0"][1:3], ["Healthy", "ok"])
        # This test cluster runs the apiserver alone.
        self.assertEqual(by_name["scheduler"][1], "Unhealthy")
        self.assertIn("--components", by_name["controller-manager"][-1])
        one = json.loads(self.cluster.kubectl("get", "componentstatus", "etcd-0", "-o",
                                              "json").stdout)
        self.assertEqual(one["conditions"], [{"type": "Healthy", "status": "True",
                                              "message": "ok"}])
        r = self.cluster.kubectl("get", "cs", "nope", check=False)
        self.assertIn('componentstatuses "nope" not found', r.stderr)

    def test_debug_adds_ephemeral(self):
        # kubectl debug patches pods/ephemeralcontainers (strategic merge); the pod needs no node
        # for that. kubectl also tells a 404 of that subresource from a missing pod by its status
        # details, which upstream always sends for NotFound (without them kubectl panicked).
        k = self.cluster.kubectl
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "debug-target"},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        k("apply", "-f", "-", input=json.dumps(pod))
        try:
            r = k("debug", "debug-target", "--image=busybox", "--profile=general", "--target=c")
            self.assertIn("Defaulting debug container name to debugger-", r.stdout + r.stderr)
            got = json.loads(k("get", "pod", "debug-target", "-o", "json").stdout)
            [ec] = got["spec"]["ephemeralContainers"]
            self.assertTrue(ec["name"].startswith("debugger-"), ec)
            self.assertEqual(ec["targetContainerName"], "c")
            self.assertEqual(ec["terminationMessagePolicy"], "File")
            self.assertEqual(ec["imagePullPolicy"], "Always")
            raw = k("get", "--raw", "/api/v1/namespaces/default/pods/debug-target/nope", "-v=8",
                    check=False)
            self.assertIn('"reason": "NotFound",\n  "details": {},\n  "code": 404', raw.stderr)
            r = k("patch", "pod", "debug-target", "--subresource=ephemeralcontainers",
                  "--type=json", "-p", '[{"op":"replace","path":"/spec/ephemeralContainers/0/image","value":"x"}]',
                  check=False)
            self.assertIn(f'spec.ephemeralContainers[{ec["name"]}]: Forbidden: existing ephemeral '
                          f'containers "{ec["name"]}" may not be changed', r.stderr)
            # Not on create, and not through the pod itself.
            bad = dict(pod, metadata={"name": "debug-create"})
            bad["spec"] = dict(pod["spec"], ephemeralContainers=[{"name": "d", "image": "busybox"}])
            r = k("create", "-f", "-", input=json.dumps(bad), check=False)
            self.assertIn("spec.ephemeralContainers: Forbidden: cannot be set on create", r.stderr)
        finally:
            k("delete", "pod", "debug-target", "--wait=false", check=False)

if __name__ == "__main__":
    harness.main()
