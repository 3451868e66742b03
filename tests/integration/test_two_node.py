"""Issue 6 acceptance 1-3 on a local two-node cluster (two_node_harness.py): each node's "host"
is its own network namespace on a test underlay with a third, "external" namespace; each runs
podwarp-noded (--pod-network routed --service-lb); etcd and podwarp-control run on loopback.

All traffic starts inside pods (the agent pods run the test's scripts in their own network
namespace and cgroup) or in the external namespace; nothing is sent from the machine's
namespace to a pod, service or underlay address. Checked:
  1. pods get podIPs from their node's podCIDR; pod -> pod across nodes by IP (both ways);
  2. a ClusterIP service with backends on both nodes: connections from node A spread over all
     of them; by DNS name (FQDN and short name; needs noded --cluster-dns, skipped otherwise);
  3. a deleted backend gets no new connection later than 100 ms after the EndpointSlice
     change (watched with the Python client; the in-pod HTTP loop stamps CLOCK_BOOTTIME);
  4. NodePort from the external namespace via either node's address, TCP and UDP, the UDP
     reply's source being the address asked (needs noded --nodeport-interfaces, else skipped);
  5. a UDP (DNS request/response) service, replies coming from the service address;
     sessionAffinity ClientIP sticks (TCP and UDP); no ready endpoints: ECONNREFUSED at once;
  6. noded on node A killed -9 and restarted during a steady stream of requests from a pod
     on A: no request fails; the pins are reused and later changes are applied.

Run as root: PODWARP_BIN=<build>/bin /usr/bin/python3 tests/integration/test_two_node.py"""
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import two_node_harness as tn  # noqa: E402

SKIP = tn.skip_reason()
DNS_IP = "169.254.20.10"
CLUSTER_CIDR = "10.244.0.0/16"  # podwarp-control's default --cluster-cidr
WEB = ["web-a1", "web-a2", "web-b1", "web-b2"]
DNS_ANSWERS = {"dns-a": "10.77.0.1", "dns-b": "10.77.0.2"}


def boottime():
    return time.clock_gettime(time.CLOCK_BOOTTIME)


@unittest.skipIf(SKIP, SKIP)
class TwoNodeTest(unittest.TestCase):
    c = None

    @classmethod
    def setUpClass(cls):
        help_text = tn.noded_help()
        for flag in ("--cluster-dns", "--nodeport-interfaces", "--cluster-cidr"):
            assert flag in help_text, f"podwarp-noded has no {flag}"
        cls.has_dns = cls.has_nodeport = True

        def node_args(_node):
            return ["--cluster-dns", DNS_IP, "--nodeport-interfaces", "eth0",
                    "--cluster-cidr", CLUSTER_CIDR, "--network-policy"]

        t0 = time.time()
        cls.c = tn.TwoNodeCluster(node_args)
        try:
            c = cls.c
            c.apply(*[c.web_pod(p, p[4]) for p in WEB],
                    c.agent_pod("client-a", "a", token=True),
                    c.agent_pod("client-b", "b", token=True),
                    *[c.dns_pod(p, p[4], ip) for p, ip in DNS_ANSWERS.items()],
                    service("web", {"app": "web"}),
                    service("web-sticky", {"app": "web"}, affinity=True),
                    service("dns", {"app": "udpdns"}, port=53, target=5353, proto="UDP"),
                    service("dns-sticky", {"app": "udpdns"}, port=53, target=5353,
                            proto="UDP", affinity=True),
                    service("empty", {"app": "nothing-has-this"}))
            c.wait_ready(*WEB, "client-a", "client-b", *DNS_ANSWERS)
            print(f"\ntwo-node cluster and pods ready in {time.time() - t0:.1f}s", file=sys.stderr)
        except BaseException:
            c.dump()
            c.close()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.c is not None:
            cls.c.close()

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result else 0
        out = super().run(result)
        if result and len(result.failures) + len(result.errors) > before and self.c:
            self.c.dump()
        return out

    # ------------------------------------------------------------------ helpers
    def wait_until(self, pred, timeout=30, message="condition", interval=0.1):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            ok, last = pred()
            if ok:
                return last
            time.sleep(interval)
        self.fail(f"timed out after {timeout}s waiting for {message}; last: {last}")

    def cluster_ip(self, name):
        return self.c.get("service", name)["spec"]["clusterIP"]

    def pod_ip(self, name):
        return self.c.get("pod", name)["status"]["podIP"]

    def ready_endpoints(self, svc):
        slices = self.c.get("endpointslices", "-l", f"kubernetes.io/service-name={svc}")
        return {a for s in (slices or {}).get("items", []) for e in s.get("endpoints") or []
                if (e.get("conditions") or {}).get("ready") for a in e["addresses"]}

    def wait_service(self, svc, pods, client="client-a", port=80):
        """Until svc's slices list exactly pods' IPs as ready and client reaches the service."""
        want = {self.pod_ip(p) for p in pods}
        self.wait_until(lambda: (self.ready_endpoints(svc) == want, self.ready_endpoints(svc)),
                        timeout=60, message=f"{svc}'s ready endpoints {sorted(want)}")
        ip = self.cluster_ip(svc)
        self.wait_until(lambda: (lambda o: (o[1] == 0, o))(self.c.pwnet(client, "http", ip, port)),
                        message=f"{client} -> {svc} {ip}:{port}")
        return ip

    def live_web(self):
        """The web pods that exist and are not terminating (test 3 deletes one)."""
        pods = self.c.get("pods", "-l", "app=web")["items"]
        return sorted(p["metadata"]["name"] for p in pods
                      if not p["metadata"].get("deletionTimestamp"))

    def http_many(self, client, ip, n, port=80):
        """n sequential GET / from client (inside the pod); list of body lines."""
        out, _ = self.c.pod_sh(client, f"i=0; while [ $i -lt {n} ]; do "
                                       f"/share/bin/pwnet http {ip} {port}; i=$((i+1)); done",
                               timeout=120)
        lines = out.strip().splitlines()
        self.assertEqual(len(lines), n, out)
        self.assertEqual([ln for ln in lines if ln.startswith("FAIL")], [], out)
        return lines

    def ask_many(self, client, ip, n, port=53):
        out, _ = self.c.pod_sh(client, f"i=0; while [ $i -lt {n} ]; do "
                                       f"/share/bin/pwnet ask {ip} {port} who.test; i=$((i+1)); done",
                               timeout=120)
        lines = out.strip().splitlines()
        self.assertEqual(len(lines), n, out)
        return lines

    def loop_lines(self, path):
        """(start, end, result) of an http-loop log."""
        rows = []
        with open(path, errors="replace") as f:
            for ln in f:
                parts = ln.rstrip("\n").split(" ", 2)
                if len(parts) == 3:
                    rows.append((float(parts[0]), float(parts[1]), parts[2]))
        return rows

    def start_loop(self, client, ip, name, interval_ms):
        stop = self.c.share_path(f"stop-{name}")
        log = self.c.share_path(f"{name}.log")
        self.c.pod_sh(client, f"/share/bin/pwnet http-loop {ip} 80 /share/stop-{name} "
                              f"{interval_ms} > /share/{name}.log 2>&1 &")
        self.addCleanup(lambda: open(stop, "w").close())
        return log, stop

    def stop_loop(self, log, stop):
        open(stop, "w").close()
        size = -1
        deadline = time.time() + 10
        while time.time() < deadline:  # the loop ends within one request after the stop file
            time.sleep(0.3)
            s = os.path.getsize(log)
            if s == size:
                break
            size = s
        return self.loop_lines(log)

    # ------------------------------------------------------------------ 1. pod network
    def test_1_pod_ips_from_node_cidrs_and_cross_node_pod_to_pod(self):
        c = self.c
        cidrs = {n: ipaddress.ip_network(c.get("node", f"node-{n}")["spec"]["podCIDR"])
                 for n in c.NODES}
        self.assertNotEqual(cidrs["a"], cidrs["b"])
        for p in WEB + ["client-a", "client-b"] + list(DNS_ANSWERS):
            pod = c.get("pod", p)
            ip = ipaddress.ip_address(pod["status"]["podIP"])
            self.assertIn(ip, cidrs[p.split("-")[1][0]], p)
            self.assertEqual(pod["status"]["podIPs"], [{"ip": str(ip)}])
        # Each node routes the other's podCIDR via the other's underlay address.
        for n, other, oip in (("a", "b", f"{c.subnet}.2"), ("b", "a", f"{c.subnet}.1")):
            r = tn.run("ip", "-n", c.nodes[n].netns, "route", "show", str(cidrs[other]))
            self.assertIn(f"via {oip}", r.stdout, (n, r.stdout))
        out, rc = c.pwnet("client-a", "http", self.pod_ip("web-b1"), 80)
        self.assertEqual((out, rc), ("web-b1 node-b", 0))
        out, rc = c.pwnet("client-b", "http", self.pod_ip("web-a1"), 80)
        self.assertEqual((out, rc), ("web-a1 node-a", 0))

    # ------------------------------------------------------------------ 2. ClusterIP
    def test_2_clusterip_spreads_over_backends_on_both_nodes(self):
        ip = self.wait_service("web", WEB)
        self.assertIn(ipaddress.ip_address(ip), ipaddress.ip_network("10.96.0.0/12"))
        time.sleep(0.5)
        lines = self.http_many("client-a", ip, 60)
        seen = {ln.split()[0] for ln in lines}
        self.assertEqual(seen, set(WEB), lines)
        self.assertEqual({ln.split()[1] for ln in lines}, {"node-a", "node-b"})
        counts = {p: sum(ln.startswith(p + " ") for ln in lines) for p in WEB}
        print(f"\n  spread of 60 connections from client-a: {counts}", file=sys.stderr)

    def test_2b_clusterip_by_dns_name(self):
        if not self.has_dns:
            self.skipTest("podwarp-noded has no --cluster-dns yet (cluster DNS not built in)")
        c = self.c
        ip = self.wait_service("web", WEB)
        conf, _ = c.pod_sh("client-a", "cat /etc/resolv.conf")
        self.assertIn(f"nameserver {DNS_IP}", conf)
        self.assertRegex(conf, r"search default\.svc\.cluster\.local svc\.cluster\.local "
                               r"cluster\.local")
        self.assertIn("ndots:5", conf)
        for name in ("web.default.svc.cluster.local", "web.default", "web"):
            out = self.wait_until(
                lambda: (lambda o: (o[1] == 0, o[0]))(c.pwnet("client-a", "resolve", name)),
                timeout=20, message=f"{name} resolving")
            self.assertEqual(out.split()[0], ip, (name, out))
        out, _ = c.pod_sh("client-a", "busybox nslookup web.default.svc.cluster.local")
        self.assertIn(ip, out)
        # Connections by name (resolved in the pod each time) spread over both nodes.
        out, _ = c.pod_sh("client-a", "i=0; while [ $i -lt 30 ]; do "
                                      "a=$(/share/bin/pwnet resolve web) || echo FAIL $a; "
                                      "/share/bin/pwnet http ${a%% *} 80; i=$((i+1)); done",
                          timeout=120)
        lines = out.strip().splitlines()
        self.assertEqual([ln for ln in lines if "FAIL" in ln], [], out)
        self.assertEqual({ln.split()[1] for ln in lines}, {"node-a", "node-b"}, out)

    # ------------------------------------------------------------------ 3. endpoint removal
    def test_3_deleted_backend_gets_no_new_connections_100ms_after_slice_change(self):
        from kubernetes import client as kclient, config as kconfig, watch as kwatch
        c = self.c
        victim = "web-b2"
        ip = self.wait_service("web", WEB)
        victim_ip = self.pod_ip(victim)
        api = kclient.DiscoveryV1Api(kconfig.new_client_from_config(config_file=c.kubeconfig))
        rv = api.list_namespaced_endpoint_slice(
            "default", label_selector="kubernetes.io/service-name=web").metadata.resource_version
        events = []
        w = kwatch.Watch()

        def watch():
            for ev in w.stream(api.list_namespaced_endpoint_slice, "default",
                               label_selector="kubernetes.io/service-name=web",
                               resource_version=rv, timeout_seconds=60):
                events.append((boottime(), ev["type"], ev["object"]))

        th = threading.Thread(target=watch, daemon=True)
        th.start()
        self.addCleanup(w.stop)

        log, stop = self.start_loop("client-a", ip, "loop3", 5)
        self.wait_until(lambda: (lambda rows: (
            len(rows) > 50 and any(r[2].startswith(victim + " ") for r in rows), len(rows)))(
                self.loop_lines(log)), timeout=30, message="the loop reaching every backend")
        t_delete = boottime()
        c.kubectl("delete", "pod", victim, "--wait=false")

        def victim_gone():
            for t, typ, obj in list(events):
                if t < t_delete:
                    continue
                ready = {a for e in obj.endpoints or [] if e.conditions and e.conditions.ready
                         for a in e.addresses}
                if typ != "DELETED" and victim_ip not in ready:
                    return True, t
            return False, len(events)

        t_change = self.wait_until(victim_gone, timeout=20,
                                   message=f"the EndpointSlice change for {victim}")
        time.sleep(1.0)
        rows = self.stop_loop(log, stop)
        w.stop()
        fails = [r for r in rows if r[2].startswith("FAIL")]
        self.assertEqual(fails, [], "requests failed during the backend removal")
        before = [r for r in rows if r[0] < t_delete]
        after = [r for r in rows if r[0] > t_change + 0.1]
        self.assertTrue(any(r[2].startswith(victim + " ") for r in before))
        self.assertGreaterEqual(len(after), 20, rows[-5:])
        late = [r for r in after if r[2].startswith(victim + " ")]
        last_hit = max((r[0] for r in rows if r[2].startswith(victim + " ")), default=0)
        print(f"\n  slice change {1000 * (t_change - t_delete):.0f} ms after the delete; last "
              f"connection to {victim} started {1000 * (last_hit - t_change):+.1f} ms from the "
              f"change; {len(after)} requests after +100 ms", file=sys.stderr)
        self.assertEqual(late, [], f"new connections reached {victim} more than 100 ms after "
                                   f"the EndpointSlice change at {t_change:.4f}")
        self.assertEqual({r[2].split()[0] for r in after}, {"web-a1", "web-a2", "web-b1"})

    # ------------------------------------------------------------------ 4. NodePort
    def test_4_nodeport_from_external_namespace_via_either_node(self):
        if not self.has_nodeport:
            self.skipTest("podwarp-noded has no --nodeport-interfaces yet (tc NodePort not wired)")
        c = self.c
        c.apply(service("web-np", {"app": "web"}, type_="NodePort"),
                service("dns-np", {"app": "udpdns"}, port=53, target=5353, proto="UDP",
                        type_="NodePort"))
        np_tcp = c.get("service", "web-np")["spec"]["ports"][0]["nodePort"]
        np_udp = c.get("service", "dns-np")["spec"]["ports"][0]["nodePort"]
        pwnet = c.share_path("bin", "pwnet")
        backends = set(self.live_web())
        for node_ip in (f"{c.subnet}.1", f"{c.subnet}.2"):
            self.wait_until(lambda: (lambda r: (r.returncode == 0, r.stdout + r.stderr))(
                c.ext(pwnet, "http", node_ip, str(np_tcp))), timeout=20,
                message=f"TCP NodePort {node_ip}:{np_tcp} from the external namespace")
            r = c.ext("sh", "-c", f"i=0; while [ $i -lt 30 ]; do {pwnet} http {node_ip} {np_tcp}; "
                                  "i=$((i+1)); done", timeout=60)
            lines = r.stdout.strip().splitlines()
            self.assertEqual([ln for ln in lines if ln.startswith("FAIL")], [], r.stdout)
            self.assertEqual(len(lines), 30, r.stdout + r.stderr)
            self.assertLessEqual({ln.split()[0] for ln in lines}, backends)
            self.assertEqual({ln.split()[1] for ln in lines}, {"node-a", "node-b"},
                             f"via {node_ip}: {lines}")
            # UDP from an unconnected socket: the reply must come from the address asked.
            self.wait_until(lambda: (lambda r: (r.stdout.startswith("from"), r.stdout))(
                c.ext(pwnet, "ask", node_ip, str(np_udp), "who.test")), timeout=20,
                message=f"UDP NodePort {node_ip}:{np_udp}")
            r = c.ext("sh", "-c", f"i=0; while [ $i -lt 20 ]; do {pwnet} ask {node_ip} {np_udp} "
                                  "who.test; i=$((i+1)); done", timeout=60)
            lines = r.stdout.strip().splitlines()
            self.assertEqual(len(lines), 20, r.stdout)
            for ln in lines:
                self.assertRegex(ln, rf"^from {re.escape(node_ip)}:{np_udp} answer 10\.77\.0\.[12] ")
            self.assertEqual({ln.split()[3] for ln in lines}, set(DNS_ANSWERS.values()), lines)

    # ------------------------------------------------------------------ 5. UDP, affinity, refusal
    def test_5a_udp_service_request_response(self):
        c = self.c
        ip = self.cluster_ip("dns")
        self.wait_until(lambda: (lambda o: (o[0].startswith("from"), o))(
            c.pwnet("client-a", "ask", ip, 53, "who.test")), message=f"UDP {ip}:53")
        lines = self.ask_many("client-a", ip, 30)
        for ln in lines:  # unconnected socket: recvmsg shows the service as the source
            self.assertRegex(ln, rf"^from {re.escape(ip)}:53 answer 10\.77\.0\.[12] ms ")
        self.assertEqual({ln.split()[3] for ln in lines}, set(DNS_ANSWERS.values()), lines)
        # busybox nslookup: a stock client on a connected UDP socket.
        out, rc = c.pod_sh("client-a", f"busybox nslookup who.test {ip}")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"Name:\s+who\.test\s+Address: 10\.77\.0\.[12]")

    def test_5b_session_affinity_client_ip_sticks(self):
        c = self.c
        ip = self.wait_service("web-sticky", self.live_web())
        lines = self.http_many("client-a", ip, 20)
        self.assertEqual(len({ln.split()[0] for ln in lines}), 1, lines)
        uip = self.cluster_ip("dns-sticky")
        self.wait_until(lambda: (lambda o: (o[0].startswith("from"), o))(
            c.pwnet("client-a", "ask", uip, 53, "who.test")), message=f"UDP {uip}:53")
        lines = self.ask_many("client-a", uip, 20)
        self.assertEqual(len({ln.split()[3] for ln in lines}), 1, lines)
        self.assertTrue(all(ln.startswith(f"from {uip}:53 ") for ln in lines), lines)

    def test_5c_no_ready_endpoints_refuses_promptly(self):
        c = self.c
        ip = self.cluster_ip("empty")
        self.wait_until(lambda: (lambda o: ("ECONNREFUSED" in o[0], o))(
            c.pwnet("client-a", "connect", ip, 80)), message=f"ECONNREFUSED from {ip}:80")
        out, _ = c.pod_sh("client-a", "i=0; while [ $i -lt 10 ]; do "
                                      f"/share/bin/pwnet connect {ip} 80; i=$((i+1)); done")
        lines = out.strip().splitlines()
        self.assertEqual(len(lines), 10, out)
        for ln in lines:
            m = re.match(r"^error ECONNREFUSED ms ([\d.]+)$", ln)
            self.assertIsNotNone(m, out)
            self.assertLess(float(m.group(1)), 100.0, out)

    # ------------------------------------------------------------------ 6. noded restart
    def test_6_noded_kill9_and_restart_during_steady_requests(self):
        c = self.c
        node = c.nodes["a"]
        ip = self.cluster_ip("web")
        self.wait_until(lambda: (lambda o: (o[1] == 0, o))(c.pwnet("client-a", "http", ip, 80)),
                        message="web before the restart")
        pin = os.path.join(node.bpf_dir, "podwarp-noded", "lb", "pw_lb_services")
        inode = os.stat(pin).st_ino
        log, stop = self.start_loop("client-a", ip, "loop6", 20)
        self.wait_until(lambda: (len(self.loop_lines(log)) > 20, None), message="loop running")
        t_kill = boottime()
        node.kill9()
        time.sleep(2)
        node.start()
        t_up = boottime()
        self.wait_until(lambda: ("service lb: synced" in read(node.log_path()), None),
                        timeout=30, message="noded's service sync after the restart")
        time.sleep(1.5)
        rows = self.stop_loop(log, stop)
        self.assertEqual(os.stat(pin).st_ino, inode, "the LB maps were not reused")
        during = [r for r in rows if t_kill <= r[0] <= t_up]
        print(f"\n  {len(rows)} requests, {len(during)} while noded on node-a was down or "
              f"starting ({t_up - t_kill:.1f}s)", file=sys.stderr)
        self.assertGreaterEqual(len(during), 20)
        self.assertEqual([r for r in rows if r[2].startswith("FAIL")], [])
        self.assertEqual({r[2].split()[1] for r in rows}, {"node-a", "node-b"})
        # The restarted noded applies changes.
        c.apply(service("after-restart", {"app": "web"}))
        ip2 = self.cluster_ip("after-restart")
        self.wait_until(lambda: (lambda o: (o[1] == 0, o))(c.pwnet("client-a", "http", ip2, 80)),
                        message="a service created after the restart")

    # ------------------------------------------------------------------ 7. no iptables/nft
    def test_7_no_iptables_or_nftables_rules_in_the_node_namespaces(self):
        """The nodes' namespaces are fresh: any rule there would be podwarp's."""
        tools = [t for t in (["iptables-save"], ["nft", "list", "ruleset"]) if shutil.which(t[0])]
        if not tools:
            self.skipTest("neither iptables-save nor nft installed")
        for node in self.c.nodes.values():
            for t in tools:
                r = tn.run("ip", "netns", "exec", node.netns, *t, check=False)
                self.assertEqual(r.returncode, 0, r.stderr)
                rules = [ln for ln in r.stdout.splitlines()
                         if ln.startswith("-A") or re.match(r"\s*(chain|rule|table)\b", ln)]
                self.assertEqual(rules, [], f"{node.netns}: {' '.join(t)}:\n{r.stdout}")

    # ------------------------------------------------------------------ 8. egress masquerade
    def test_8_pod_egress_leaving_the_cluster_is_masqueraded(self):
        """A server in the external namespace (outside every cluster CIDR) sees the client pod's
        node address, not the pod's: BPF masquerade on the node's eth0; inside the cluster
        (pod to pod across nodes) the pod's own address stays."""
        c = self.c
        port = 18080
        src = ("import socket\n"
               "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
               f"s.bind(('0.0.0.0', {port})); s.listen(64)\n"
               "while True:\n"
               "    k, a = s.accept(); k.recv(4096)\n"
               "    k.sendall(('HTTP/1.0 200 OK\\r\\n\\r\\n' + a[0] + ' seen\\n').encode()); k.close()\n")
        server = subprocess.Popen(["ip", "netns", "exec", c.ext_netns, sys.executable, "-c", src],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            for client, node_ip in (("client-a", f"{c.subnet}.1"), ("client-b", f"{c.subnet}.2")):
                def seen():
                    out, rc = c.pwnet(client, "http", f"{c.subnet}.100", port)
                    return (rc == 0 and out.endswith("seen"), out)
                out = self.wait_until(seen, timeout=20,
                                      message=f"{client} -> external server")
                self.assertEqual(out.split()[0], node_ip, f"{client}: {out}")
            counters = c.lb_counters()
            for n in ("a", "b"):
                self.assertGreaterEqual(counters[n].get("MasqueradeNewFlow", 0), 1, counters)
        finally:
            server.kill()
            server.wait()

    # ------------------------------------------------------------------ 9. in-cluster API
    def test_9_pods_reach_the_api_through_the_kubernetes_service(self):
        """What in-cluster clients (client-go's InClusterConfig, the Python client's
        load_incluster_config) do, from a pod on either node: the service environment
        variables name 10.96.0.1:443; the socket load balancer takes the connection to the
        apiserver's advertise address; the server certificate verifies against the mounted
        ca.crt for 10.96.0.1; the mounted service account token authenticates."""
        c = self.c
        for client in ("client-a", "client-b"):
            out, rc = c.pod_sh(client, 'echo "$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"; '
                                       "/share/bin/pwget /api/v1/namespaces/default/pods/$POD_NAME")
            self.assertEqual(rc, 0, f"{client}: {out}")
            first, _, response = out.partition("\n")
            self.assertEqual(first, "10.96.0.1:443", out)
            # (pod_sh reads text: CRLF comes back as LF)
            status, _, rest = response.partition("\n")
            self.assertEqual(status, "HTTP/1.1 200 OK", out)
            pod = json.loads(rest.partition("\n\n")[2])
            self.assertEqual((pod["kind"], pod["metadata"]["name"]), ("Pod", client))
            self.assertEqual(pod["spec"]["serviceAccountName"], "default")

    def test_9b_network_policy_peers_on_both_nodes(self):
        """A NetworkPolicy whose peers live on the other node: each node's noded learns the
        remote client's IP from the Pods informer, and the pods' source addresses survive the
        underlay (no masquerade between nodes). web pods accept TCP 80 only from pods labelled
        np=allowed: client-a gets the label, client-b does not."""
        c = self.c
        c.kubectl("label", "pod", "client-a", "np=allowed", "--overwrite")
        c.apply({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                 "metadata": {"name": "web-from-allowed", "namespace": "default"},
                 "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                          "ingress": [{"from": [{"podSelector": {"matchLabels": {"np": "allowed"}}}],
                                       "ports": [{"protocol": "TCP", "port": 80}]}]}})
        try:
            def verdicts():
                got = {}
                for client in ("client-a", "client-b"):
                    for web in ("web-a1", "web-b1"):
                        out, _ = c.pwnet(client, "connect", self.pod_ip(web), 80)
                        got[(client, web)] = out.startswith("ok")
                return got
            want = {("client-a", "web-a1"): True, ("client-a", "web-b1"): True,
                    ("client-b", "web-a1"): False, ("client-b", "web-b1"): False}
            self.wait_until(lambda: (lambda g: (g == want, g))(verdicts()), timeout=30,
                            message="client-a allowed on both nodes, client-b denied on both")
        finally:
            c.kubectl("delete", "networkpolicy", "web-from-allowed", check=False)
            c.kubectl("label", "pod", "client-a", "np-", check=False)
        self.wait_until(lambda: (lambda o: (o[0].startswith("ok"), o))(
            c.pwnet("client-b", "connect", self.pod_ip("web-a1"), 80)),
            message="client-b allowed again once the policy is gone")


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def service(name, selector, port=80, target=None, proto="TCP", affinity=False, type_=None):
    spec = {"selector": selector,
            "ports": [{"name": "p", "port": port, "targetPort": target or port,
                       "protocol": proto}]}
    if affinity:
        spec["sessionAffinity"] = "ClientIP"
    if type_:
        spec["type"] = type_
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


if __name__ == "__main__":
    tn.exit_on_sigterm()
    unittest.main(verbosity=2)
