"""podwarp-noded in API mode for integration tests: the standalone harness' Noded (its own
root, log dir, cgroup root and bpffs under one temporary folder; cleanup() kills what is left
in the test cgroup, unmounts, removes cgroups) started with --kubeconfig instead of
--standalone. Node credentials come from `podwarp-control node-credentials` when that
sub-command exists, else the admin kubeconfig is used."""
import os
import shutil
import subprocess

import noded_harness as h


def node_credentials(data_dir, node_name, out_dir):
    """Runs podwarp-control node-credentials; returns out_dir, or None when unavailable."""
    exe = os.path.join(h.BIN, "podwarp-control")
    r = subprocess.run([exe, "node-credentials", "--data-dir", data_dir, "--node-name", node_name,
                        "--node-ip", "127.0.0.1", "--out", out_dir], capture_output=True, text=True)
    if r.returncode != 0 or not os.path.exists(os.path.join(out_dir, "node.kubeconfig")):
        return None
    return out_dir


class ApiNoded(h.Noded):
    def __init__(self, base, cgroup_name, kubeconfig, node_name="node1", certs=None, extra_args=()):
        super().__init__(base, cgroup_name, node_name=node_name, extra_args=extra_args)
        self.kubeconfig = kubeconfig
        self.certs = certs

    def start(self, wait=True):
        self.runs += 1
        self.logf = open(self.log_path(), "wb")
        args = [os.path.join(h.BIN, "podwarp-noded"), "--kubeconfig", self.kubeconfig,
                "--node-name", self.node_name, "--node-ip", "127.0.0.1",
                "--root-dir", self.root, "--api-socket", self.sock,
                "--cgroup-root", self.cgroup_name, "--pod-log-dir", self.logs,
                "--bpf-dir", os.path.join(self.base, "bpf"), "--node-api-address", "127.0.0.1",
                "--node-api-port", "0", *h.TEST_EVICTION]
        if self.certs:
            args += ["--tls-cert-file", os.path.join(self.certs, "kubelet.crt"),
                     "--tls-private-key-file", os.path.join(self.certs, "kubelet.key"),
                     "--client-ca-file", os.path.join(self.certs, "ca.crt")]
        self.proc = subprocess.Popen(args + self.extra_args, stdout=self.logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        if wait:
            h.wait_for(lambda: self.get("/healthz")[0] == 200, 20, what="noded /healthz")
        return self


def close_fixtures(owner):
    """Tears down what a test class set up, in reverse order: owner.noded (cleanup),
    owner.cluster, owner.reg, owner.base (a temporary folder). Missing ones are skipped."""
    if getattr(owner, "noded", None) is not None:
        if os.environ.get("PODWARP_KEEP_LOGS"):
            print(owner.noded.log_text()[-20000:])
        owner.noded.cleanup()
    if getattr(owner, "cluster", None) is not None:
        owner.cluster.close()
    if getattr(owner, "reg", None) is not None:
        owner.reg.close()
    if getattr(owner, "base", None):
        shutil.rmtree(owner.base, ignore_errors=True)
