"""A stand-in for noded in control-plane tests: it registers Node objects, renews their
Leases in kube-node-lease, and moves the pods bound to its nodes through their lifecycle the
way a kubelet reports it (Running + Ready with a podIP; Succeeded for pods labelled
test/succeed=true; terminating pods finished and deleted). A node can be "killed": its Lease
and its pods are no longer touched, as when a machine dies."""
import datetime
import threading
import time

from kubernetes import client
from kubernetes.client.rest import ApiException


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_object(name, cpu="4", memory="8Gi", pods="110", labels=None, taints=None):
    labels = dict(labels or {})
    labels.setdefault("kubernetes.io/hostname", name)
    labels.setdefault("kubernetes.io/os", "linux")
    capacity = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints or []},
        "status": {
            "capacity": capacity, "allocatable": capacity,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kubelet is posting ready status",
                            "lastHeartbeatTime": now_iso(), "lastTransitionTime": now_iso()}],
            "addresses": [{"type": "InternalIP", "address": "192.0.2.1"},
                          {"type": "Hostname", "address": name}],
        },
    }


class FakeKubelet:
    def __init__(self, api_client):
        self.core = client.CoreV1Api(api_client)
        self.coord = client.CoordinationV1Api(api_client)
        self.nodes = {}        # name -> alive?
        self.running_since = {}
        self.ip_counter = 0
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def add_node(self, name, **kw):
        body = node_object(name, **kw)
        status = body.pop("status")
        created = self.core.create_node(body)
        created.status = None
        self.core.patch_node_status(name, {"status": status})
        with self.lock:
            self.nodes[name] = True
        self._renew(name)

    def kill_node(self, name):
        with self.lock:
            self.nodes[name] = False

    def close(self):
        self.stop_event.set()
        self.thread.join(10)

    def _renew(self, name):
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": "kube-node-lease"},
                "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                         "renewTime": now_micro()}}
        try:
            self.coord.patch_namespaced_lease(name, "kube-node-lease",
                                              {"spec": {"renewTime": now_micro()}})
        except ApiException as e:
            if e.status == 404:
                self.coord.create_namespaced_lease("kube-node-lease", body)
            else:
                raise

    def _loop(self):
        last_renew = 0
        while not self.stop_event.is_set():
            try:
                with self.lock:
                    alive = [n for n, a in self.nodes.items() if a]
                if time.time() - last_renew > 1:
                    for n in alive:
                        self._renew(n)
                    last_renew = time.time()
                for pod in self.core.list_pod_for_all_namespaces().items:
                    if pod.spec.node_name in alive:
                        self._drive(pod)
            except Exception as e:  # the API may be restarting; try again
                print("fake kubelet:", e)
            self.stop_event.wait(0.2)

    def _drive(self, pod):
        ns, name = pod.metadata.namespace, pod.metadata.name
        key = (ns, name, pod.metadata.uid)
        if pod.metadata.deletion_timestamp:
            try:
                self.core.delete_namespaced_pod(name, ns, grace_period_seconds=0)
            except ApiException as e:
                if e.status != 404:
                    raise
            return
        phase = pod.status.phase
        if phase in ("Succeeded", "Failed"):
            return
        if phase != "Running":
            self.ip_counter += 1
            ip = f"10.244.{self.ip_counter // 250}.{self.ip_counter % 250 + 1}"
            t = now_iso()
            cs = [{"name": c.name, "image": c.image, "imageID": "", "ready": True,
                   "restartCount": 0, "started": True, "state": {"running": {"startedAt": t}}}
                  for c in pod.spec.containers]
            status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "192.0.2.1",
                      "startTime": t, "containerStatuses": cs,
                      "conditions": [{"type": c, "status": "True", "lastTransitionTime": t}
                                     for c in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]}
            self.core.patch_namespaced_pod_status(name, ns, {"status": status})
            self.running_since[key] = time.time()
            return
        labels = pod.metadata.labels or {}
        if labels.get("test/succeed") == "true" and time.time() - self.running_since.get(key, 0) > 0.3:
            t = now_iso()
            cs = [{"name": c.name, "image": c.image, "imageID": "", "ready": False,
                   "restartCount": 0, "started": False,
                   "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                                            "startedAt": t, "finishedAt": t}}}
                  for c in pod.spec.containers]
            status = {"phase": "Succeeded", "containerStatuses": cs,
                      "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted",
                                      "lastTransitionTime": t}]}
            self.core.patch_namespaced_pod_status(name, ns, {"status": status})
