"""A local two-node podwarp cluster on one machine for integration tests (issue 6).

Layout (all addresses live only inside network namespaces this harness creates):

    machine's namespace: etcd + podwarp-control on 127.0.0.1 (harness.Cluster)
    netns pwtn-<tag>-u:  bridge br0, veths to the three namespaces below
    netns pwtn-<tag>-a:  node A's "host": eth0 192.168.<r>.1/24, podwarp-noded
    netns pwtn-<tag>-b:  node B's "host": eth0 192.168.<r>.2/24, podwarp-noded
    netns pwtn-<tag>-x:  an "external" client: eth0 192.168.<r>.100/24

Each noded runs with `nsenter --net=/run/netns/<node>` (not `ip netns exec`, which remounts
/sys and hides /sys/fs/bpf), its own --root-dir, --cgroup-root, --bpf-dir (under /sys/fs/bpf),
node credentials from `podwarp-control node-credentials`, and reaches the apiserver through a
Forwarder: a listener on 127.0.0.1:<apiserver port> inside the node's namespace whose
connections are relayed to the apiserver's 127.0.0.1 port in the machine's namespace. The
busybox test images (scripts/make-test-images.sh) are imported into each node's store before
noded starts (image podwarp.test/busybox:<tag>, imagePullPolicy Never), so no registry.

The apiserver cannot reach the node APIs (they listen on the underlay addresses, and nothing
is sent to those from the machine's namespace), so there is no kubectl exec/logs. Instead
client pods run an "agent" loop over a hostPath folder (<base>/share): the test drops a shell
script into share/cmd/<pod>/ and reads its output back (TwoNodeCluster.pod_sh); the script runs
inside the pod (its network namespace and its cgroup, where noded's socket load balancer sits).
share/bin/pwnet is a small static client/server (C source below, built with gcc -static) for
what busybox cannot do: a UDP DNS responder, unconnected UDP queries that print the reply's
source, a resolver following /etc/resolv.conf, timed TCP connects and a timestamped HTTP loop;
share/bin/pwget (static, with OpenSSL) is an in-cluster API client as client-go's
InClusterConfig. The apiserver advertises node a's underlay address, where node a's forwarder
listens too, so that pods reach the API through the kubernetes Service.

Everything is removed in close() (also after failures, and at exit): noded processes by pid,
what is left in the test cgroups (cgroup.kill), mounts under the temporary folder, cgroups,
BPF pins, forwarders, namespaces, the control plane and the temporary folders. Needs root."""
import atexit
import ctypes
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402
import noded_harness as h  # noqa: E402
import pwget  # noqa: E402

IMAGE = "podwarp.test/busybox"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

PWNET_C = r"""/* pwnet: the two-node test's in-pod network client/server (static; run inside pods and the
   test's own namespaces only). Commands:
     serve-dns PORT A.B.C.D        UDP DNS responder: A queries -> A.B.C.D, others -> no answer
     ask IP PORT NAME [MS]         one DNS A query from an unconnected UDP socket:
                                   "from IP:PORT answer A.B.C.D ms X" | "timeout" | "error E"
     resolve NAME                  A lookup through /etc/resolv.conf (nameserver, search, ndots
                                   as glibc applies them): "A.B.C.D via FQDN" | "error ..."
     connect IP PORT               TCP connect: "ok ms X" | "error ENAME ms X"
     http IP PORT                  GET /: the body's first line | "FAIL reason"
     http-loop IP PORT STOP MS     GET / every MS ms until the file STOP exists, one line per
                                   request: "<boottime start> <boottime end> <body|FAIL reason>" */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static double boottime(void) {
  struct timespec t;
  clock_gettime(CLOCK_BOOTTIME, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static const char* ename(int e) {
  const char* n = strerrorname_np(e);
  return n ? n : "E?";
}

static int addr(const char* ip, int port, struct sockaddr_in* sa) {
  memset(sa, 0, sizeof *sa);
  sa->sin_family = AF_INET;
  sa->sin_port = htons(port);
  return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -1;
}

static int build_query(unsigned char* q, const char* name, unsigned id) {
  int n = 12;
  memset(q, 0, 12);
  q[0] = id >> 8; q[1] = id & 0xff; q[2] = 0x01; /* RD */ q[5] = 1;
  const char* p = name;
  while (*p) {
    const char* dot = strchr(p, '.');
    int len = dot ? (int)(dot - p) : (int)strlen(p);
    if (len <= 0 || len > 63 || n + len + 6 > 500) return -1;
    q[n++] = len;
    memcpy(q + n, p, len);
    n += len;
    p += len;
    if (*p == '.') p++;
  }
  q[n++] = 0;
  q[n++] = 0; q[n++] = 1; /* A */
  q[n++] = 0; q[n++] = 1; /* IN */
  return n;
}

static int skip_name(const unsigned char* m, int n, int p) {
  while (p < n) {
    if ((m[p] & 0xc0) == 0xc0) return p + 2;
    if (m[p] == 0) return p + 1;
    p += m[p] + 1;
  }
  return -1;
}

/* The first A answer of a reply to query id: 0 ok, 1 no answer (rcode in *rcode), -1 bad. */
static int parse_answer(const unsigned char* m, int n, unsigned id, char* out, int* rcode) {
  if (n < 12 || ((m[0] << 8) | m[1]) != (int)id || !(m[2] & 0x80)) return -1;
  *rcode = m[3] & 0x0f;
  int qd = (m[4] << 8) | m[5], an = (m[6] << 8) | m[7], p = 12;
  for (int i = 0; i < qd; i++) {
    p = skip_name(m, n, p);
    if (p < 0) return -1;
    p += 4;
  }
  for (int i = 0; i < an && p < n; i++) {
    p = skip_name(m, n, p);
    if (p < 0 || p + 10 > n) return -1;
    int type = (m[p] << 8) | m[p + 1], len = (m[p + 8] << 8) | m[p + 9];
    p += 10;
    if (p + len > n) return -1;
    if (type == 1 && len == 4) {
      inet_ntop(AF_INET, m + p, out, 32);
      return 0;
    }
    p += len;
  }
  return 1;
}

static int serve_dns(int port, const char* answer) {
  struct in_addr a;
  if (inet_pton(AF_INET, answer, &a) != 1) return 2;
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in sa;
  addr("0.0.0.0", port, &sa);
  if (s < 0 || bind(s, (struct sockaddr*)&sa, sizeof sa) != 0) {
    printf("error bind %s\n", ename(errno));
    return 1;
  }
  printf("serving dns on %d answering %s\n", port, answer);
  fflush(stdout);
  for (;;) {
    unsigned char q[512], r[600];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    int n = recvfrom(s, q, sizeof q, 0, (struct sockaddr*)&from, &fl);
    if (n < 12) continue;
    int p = skip_name(q, n, 12);
    if (p < 0 || p + 4 > n) continue;
    int qtype = (q[p] << 8) | q[p + 1];
    p += 4;
    memcpy(r, q, p);
    r[2] = 0x84 | (q[2] & 0x79); /* QR, AA, opcode and RD copied */
    r[3] = 0x80;                 /* RA, NOERROR */
    r[4] = 0; r[5] = 1; r[6] = 0; r[7] = qtype == 1; r[8] = r[9] = r[10] = r[11] = 0;
    if (qtype == 1) {
      static const unsigned char rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4};
      memcpy(r + p, rr, sizeof rr);
      memcpy(r + p + sizeof rr, &a, 4);
      p += sizeof rr + 4;
    }
    sendto(s, r, p, 0, (struct sockaddr*)&from, fl);
  }
}

/* One query to server; 0 answer in out, 1 no answer, -1 timeout/error (printed into out). */
static int query(const char* server, int port, const char* name, int ms, char* out,
                 struct sockaddr_in* from_out, double* took) {
  unsigned char q[512], m[1500];
  unsigned id = (unsigned)(boottime() * 1e6) & 0xffff;
  int n = build_query(q, name, id);
  struct sockaddr_in sa;
  if (n < 0 || addr(server, port, &sa) != 0) { strcpy(out, "bad-args"); return -1; }
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  double t0 = boottime();
  if (sendto(s, q, n, 0, (struct sockaddr*)&sa, sizeof sa) != n) {
    snprintf(out, 64, "error %s", ename(errno));
    close(s);
    return -1;
  }
  for (;;) {
    int left = ms - (int)((boottime() - t0) * 1000);
    struct pollfd pf = {s, POLLIN, 0};
    if (left <= 0 || poll(&pf, 1, left) <= 0) { strcpy(out, "timeout"); close(s); return -1; }
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    int k = recvfrom(s, m, sizeof m, 0, (struct sockaddr*)&from, &fl);
    if (k < 0) {
      snprintf(out, 64, "error %s", ename(errno));
      close(s);
      return -1;
    }
    int rcode = 0;
    int r = parse_answer(m, k, id, out, &rcode);
    if (r < 0) continue;
    if (from_out) *from_out = from;
    if (took) *took = (boottime() - t0) * 1000;
    close(s);
    if (r == 1) snprintf(out, 32, "rcode %d", rcode);
    return r;
  }
}

static int ask(const char* ip, int port, const char* name, int ms) {
  char out[64];
  struct sockaddr_in from;
  double took = 0;
  int r = query(ip, port, name, ms, out, &from, &took);
  if (r < 0) { printf("%s\n", out); return 1; }
  char src[32];
  inet_ntop(AF_INET, &from.sin_addr, src, sizeof src);
  printf("from %s:%d answer %s ms %.2f\n", src, ntohs(from.sin_port), r == 0 ? out : "none", took);
  return 0;
}

static int resolve(const char* name) {
  char servers[3][64], search[8][256], line[512];
  int ns = 0, nsearch = 0, ndots = 1;
  FILE* f = fopen("/etc/resolv.conf", "r");
  if (!f) { printf("error no /etc/resolv.conf\n"); return 1; }
  while (fgets(line, sizeof line, f)) {
    char* tok = strtok(line, " \t\r\n");
    if (!tok) continue;
    if (!strcmp(tok, "nameserver") && ns < 3) {
      char* v = strtok(NULL, " \t\r\n");
      if (v) snprintf(servers[ns++], 64, "%s", v);
    } else if (!strcmp(tok, "search") || !strcmp(tok, "domain")) {
      nsearch = 0;
      for (char* v; (v = strtok(NULL, " \t\r\n")) && nsearch < 8;)
        snprintf(search[nsearch++], 256, "%s", v);
    } else if (!strcmp(tok, "options")) {
      for (char* v; (v = strtok(NULL, " \t\r\n"));)
        if (!strncmp(v, "ndots:", 6)) ndots = atoi(v + 6);
    }
  }
  fclose(f);
  if (!ns) { printf("error no nameserver\n"); return 1; }
  char cands[10][300];
  int nc = 0, dots = 0;
  for (const char* p = name; *p; p++) dots += *p == '.';
  size_t len = strlen(name);
  if (len && name[len - 1] == '.') {
    snprintf(cands[nc++], 300, "%.*s", (int)len - 1, name);
  } else {
    if (dots >= ndots) snprintf(cands[nc++], 300, "%s", name);
    for (int i = 0; i < nsearch; i++) snprintf(cands[nc++], 300, "%.60s.%.230s", name, search[i]);
    if (dots < ndots) snprintf(cands[nc++], 300, "%s", name);
  }
  for (int i = 0; i < nc; i++) {
    char out[64];
    if (query(servers[0], 53, cands[i], 2000, out, NULL, NULL) == 0) {
      printf("%s via %s\n", out, cands[i]);
      return 0;
    }
  }
  printf("error not found (%d names tried, nameserver %s)\n", nc, servers[0]);
  return 1;
}

static int tcp_connect(const char* ip, int port, int* err) {
  struct sockaddr_in sa;
  if (addr(ip, port, &sa) != 0) { *err = EINVAL; return -1; }
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct timeval tv = {2, 0};
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(s, (struct sockaddr*)&sa, sizeof sa) != 0) {
    *err = errno;
    close(s);
    return -1;
  }
  return s;
}

/* One GET /; the body's first line into out. */
static int http_get(const char* ip, int port, char* out, int outlen) {
  int err = 0;
  int s = tcp_connect(ip, port, &err);
  if (s < 0) {
    snprintf(out, outlen, "FAIL connect %s%s", ename(err),
             err == EINPROGRESS ? " (no answer within 2 s)" : "");
    return -1;
  }
  static const char req[] = "GET / HTTP/1.0\r\n\r\n";
  if (send(s, req, sizeof req - 1, MSG_NOSIGNAL) != (int)sizeof req - 1) {
    snprintf(out, outlen, "FAIL send %s", ename(errno));
    close(s);
    return -1;
  }
  char buf[4096];
  int n = 0;
  for (;;) {
    int k = recv(s, buf + n, sizeof buf - 1 - n, 0);
    if (k < 0) { snprintf(out, outlen, "FAIL recv %s", ename(errno)); close(s); return -1; }
    if (k == 0) break;
    n += k;
    if (n >= (int)sizeof buf - 1) break;
  }
  close(s);
  buf[n] = 0;
  char* body = strstr(buf, "\r\n\r\n");
  if (!body || strncmp(buf, "HTTP/1.", 7) != 0) { snprintf(out, outlen, "FAIL bad-response %d", n); return -1; }
  body += 4;
  body[strcspn(body, "\r\n")] = 0;
  if (!*body) { snprintf(out, outlen, "FAIL empty-body"); return -1; }
  snprintf(out, outlen, "%s", body);
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 4 && !strcmp(argv[1], "serve-dns")) return serve_dns(atoi(argv[2]), argv[3]);
  if (argc >= 5 && !strcmp(argv[1], "ask"))
    return ask(argv[2], atoi(argv[3]), argv[4], argc > 5 ? atoi(argv[5]) : 1000);
  if (argc >= 3 && !strcmp(argv[1], "resolve")) return resolve(argv[2]);
  if (argc >= 4 && !strcmp(argv[1], "connect")) {
    int err = 0;
    double t0 = boottime();
    int s = tcp_connect(argv[2], atoi(argv[3]), &err);
    double ms = (boottime() - t0) * 1000;
    if (s < 0) { printf("error %s ms %.2f\n", ename(err), ms); return 1; }
    close(s);
    printf("ok ms %.2f\n", ms);
    return 0;
  }
  if (argc >= 4 && !strcmp(argv[1], "http")) {
    char out[256];
    int r = http_get(argv[2], atoi(argv[3]), out, sizeof out);
    printf("%s\n", out);
    return r == 0 ? 0 : 1;
  }
  if (argc >= 6 && !strcmp(argv[1], "http-loop")) {
    int ms = atoi(argv[5]);
    while (access(argv[4], F_OK) != 0) {
      char out[256];
      double t0 = boottime();
      http_get(argv[2], atoi(argv[3]), out, sizeof out);
      printf("%.4f %.4f %s\n", t0, boottime(), out);
      if (ms > 0) usleep(ms * 1000);
    }
    return 0;
  }
  fprintf(stderr, "usage: see the comment at the top of pwnet.c\n");
  return 2;
}
"""



def skip_reason():
    """Why the two-node test cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, cgroups, BPF)"
    for tool in ("/bin/busybox", "nsenter", "ip", "gcc", "etcd"):
        if not (os.path.exists(tool) or shutil.which(tool)):
            return f"needs {tool}"
    for b in ("podwarp-noded", "podwarp-control", "podwarp"):
        if not os.path.exists(os.path.join(h.BIN, b)):
            return f"{b} not built in {h.BIN}"
    if h.cgroup2_mount() is None:
        return "no cgroup2 mount"
    if not os.path.isdir("/sys/fs/bpf"):
        return "no /sys/fs/bpf"
    return None


def noded_help():
    r = subprocess.run([os.path.join(h.BIN, "podwarp-noded"), "--help"], capture_output=True,
                       text=True, timeout=30)
    return r.stdout + r.stderr


def run(*cmd, check=True, timeout=60, input=None):
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, input=input)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
    return r


def in_netns(netns_path, fn):
    """fn() on a short-lived thread that joined the network namespace at netns_path (setns
    changes only that thread). Returns fn's result; sockets it creates stay in that namespace."""
    out = {}

    def body():
        try:
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    e = ctypes.get_errno()
                    raise OSError(e, f"setns({netns_path}): {os.strerror(e)}")
            finally:
                os.close(fd)
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 (handed to the caller)
            out["error"] = e

    t = threading.Thread(target=body, name="in-netns", daemon=True)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


class Forwarder:
    """TCP relay: listens on listen_port of every address inside netns_path (127.0.0.1 for
    noded; the node's underlay address for pods that reach the API through the kubernetes
    Service), connects each accepted connection to 127.0.0.1:target_port in the machine's
    namespace (threads created here stay in the machine's namespace; only the listening socket
    was made inside the node's)."""

    def __init__(self, netns_path, listen_port, target_port):
        self.target_port = target_port
        self.closed = False
        self.lock = threading.Lock()
        self.conns = set()

        def listener():
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", listen_port))
            s.listen(64)
            return s

        self.sock = in_netns(netns_path, listener)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, name="forwarder", daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            with self.lock:
                if self.closed:
                    c.close()
                    u.close()
                    return
                self.conns.update((c, u))
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass

    def close(self):
        with self.lock:
            self.closed = True
            conns, self.conns = list(self.conns), set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.thread.join(5)


class Underlay:
    """netns <prefix>-u with bridge br0; add_host() makes netns <prefix>-<name> with eth0
    (a veth to the bridge) holding <subnet>.<host>/24, lo up."""

    def __init__(self, prefix, subnet):
        self.prefix = prefix
        self.subnet = subnet
        self.netns = []
        self.u = self._netns("u")
        run("ip", "-n", self.u, "link", "set", "lo", "up")
        run("ip", "-n", self.u, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", self.u, "link", "set", "br0", "up")

    def _netns(self, name):
        ns = f"{self.prefix}-{name}"
        run("ip", "netns", "add", ns)
        self.netns.append(ns)
        return ns

    def add_host(self, name, host):
        ns = self._netns(name)
        port = f"p-{name}"
        run("ip", "-n", self.u, "link", "add", port, "type", "veth", "peer", "name", "eth0",
            "netns", ns)
        run("ip", "-n", self.u, "link", "set", port, "master", "br0", "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", ns, "addr", "add", f"{self.subnet}.{host}/24", "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "eth0", "up")
        return ns

    def close(self):
        for ns in reversed(self.netns):
            run("ip", "netns", "delete", ns, check=False)
        self.netns = []


class Node(h.Noded):
    """podwarp-noded in API mode inside its node namespace (nsenter --net), pod network
    routed, service LB on; cleanup() as the standalone harness' plus the BPF pin dir."""

    def __init__(self, base, cgroup_name, node_name, netns, node_ip, kubeconfig, certs,
                 bpf_dir, extra_args=()):
        super().__init__(base, cgroup_name, node_name=node_name, extra_args=extra_args)
        self.netns = netns
        self.node_ip = node_ip
        self.kubeconfig = kubeconfig
        self.certs = certs
        self.bpf_dir = bpf_dir
        self.api_port = harness.free_port()

    def args(self):
        a = ["nsenter", f"--net=/run/netns/{self.netns}",
             os.path.join(h.BIN, "podwarp-noded"), "--kubeconfig", self.kubeconfig,
             "--node-name", self.node_name, "--node-ip", self.node_ip,
             "--root-dir", self.root, "--api-socket", self.sock,
             "--cgroup-root", self.cgroup_name, "--pod-log-dir", self.logs,
             "--bpf-dir", self.bpf_dir, "--node-api-port", str(self.api_port),
             "--pod-network", "routed", "--allow-ip-forward", "--service-lb",
             "--crash-backoff-ms", "1000", *h.TEST_EVICTION]
        if self.certs:
            a += ["--tls-cert-file", os.path.join(self.certs, "kubelet.crt"),
                  "--tls-private-key-file", os.path.join(self.certs, "kubelet.key"),
                  "--client-ca-file", os.path.join(self.certs, "ca.crt")]
        return a + self.extra_args

    def start(self, wait=True):
        self.runs += 1
        self.logf = open(self.log_path(), "wb")
        # nsenter execs noded: the pid is noded's.
        self.proc = subprocess.Popen(self.args(), stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        if wait:
            h.wait_for(lambda: self.get("/healthz")[0] == 200, 30, what=f"{self.node_name} /healthz")
        return self

    def cleanup(self):
        super().cleanup()
        shutil.rmtree(self.bpf_dir, ignore_errors=True)


class TwoNodeCluster:
    """etcd + podwarp-control (machine's namespace) and two noded nodes on a test underlay.
    node_args(name) -> extra noded args per node. close() is idempotent and registered atexit."""

    NODES = ("a", "b")

    def __init__(self, node_args=lambda node: []):
        self.cluster = None
        self.underlay = None
        self.forwarders = []
        self.nodes = {}
        self.closed = False
        self.seq = 0
        atexit.register(self.close)
        self.tag = "%06x" % random.randrange(1 << 24)
        self.base = tempfile.mkdtemp(prefix=f"podwarp-2n-{self.tag}-")
        try:
            self._build(node_args)
        except BaseException:
            self.dump()
            self.close()
            raise

    def _build(self, node_args):
        self.share = os.path.join(self.base, "share")
        os.makedirs(os.path.join(self.share, "bin"))
        os.makedirs(os.path.join(self.share, "cmd"))
        src = os.path.join(self.base, "pwnet.c")
        with open(src, "w") as f:
            f.write(PWNET_C)
        run("gcc", "-O2", "-static", "-o", os.path.join(self.share, "bin", "pwnet"), src,
            timeout=120)
        pwget.build(self.base, os.path.join(self.share, "bin", "pwget"))
        images = os.path.join(self.base, "images")
        run(os.path.join(h.SOURCE, "scripts", "make-test-images.sh"), images, timeout=120)
        self.subnet = f"192.168.{random.randrange(16, 250)}"
        # The kubernetes Service's endpoint is node a's underlay address, where node a's
        # Forwarder listens too: pods on both nodes reach the API as 10.96.0.1:443.
        self.cluster = harness.Cluster(components="apiserver,scheduler,controllers",
                                       extra_args=["--advertise-address", f"{self.subnet}.1"])
        self.kubeconfig = self.cluster.kubeconfig
        self.underlay = Underlay(f"pwtn-{self.tag}", self.subnet)
        self.ext_netns = self.underlay.add_host("x", 100)
        self.ext_ip = f"{self.subnet}.100"
        for i, n in enumerate(self.NODES):
            ns = self.underlay.add_host(n, i + 1)
            node_ip = f"{self.subnet}.{i + 1}"
            name = f"node-{n}"
            self.forwarders.append(Forwarder(f"/run/netns/{ns}", self.cluster.port,
                                             self.cluster.port))
            # (noded_api_harness.node_credentials fixes --node-ip 127.0.0.1; the node API's
            # serving certificate must name the node's underlay address.)
            certs = os.path.join(self.base, f"pki-{n}")
            run(os.path.join(h.BIN, "podwarp-control"), "node-credentials", "--data-dir",
                self.cluster.data_dir, "--node-name", name, "--node-ip", node_ip, "--out", certs)
            kc = os.path.join(certs, "node.kubeconfig")
            with open(kc) as f:
                server = [ln.split()[-1].strip("\"'") for ln in f if "server:" in ln][0]
            if server != self.cluster.server:
                raise RuntimeError(f"node kubeconfig server {server} != {self.cluster.server}")
            node = Node(os.path.join(self.base, f"node-{n}"), f"podwarp-2n-{self.tag}-{n}", name,
                        ns, node_ip, kc, certs, f"/sys/fs/bpf/podwarp-2n-{self.tag}-{n}",
                        extra_args=node_args(n))
            self.nodes[n] = node
            run(os.path.join(h.BIN, "podwarp"), "--root-dir", node.root, "image", "import",
                os.path.join(images, "busybox-oci.tar"), "--name", IMAGE, timeout=120)
        for node in self.nodes.values():
            node.start()
        for n, node in self.nodes.items():
            h.wait_for(lambda: self.node_ready(node.node_name), 90, interval=0.3,
                       what=f"{node.node_name} Ready with a podCIDR")

    # ------------------------------------------------------------------ API helpers
    def kubectl(self, *args, check=True, timeout=90, input=None):
        return self.cluster.kubectl(*args, check=check, timeout=timeout, input=input)

    def get(self, *args):
        r = self.kubectl("get", *args, "-o", "json", check=False)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def apply(self, *objs):
        # (a YAML stream of JSON documents: kubectl's validation of a kind: List fails
        # against podwarp-control, "unable to respond with a content type that the client
        # supports")
        self.kubectl("apply", "-f", "-", input="".join(f"---\n{json.dumps(o)}\n" for o in objs))

    def node_ready(self, name):
        n = self.get("node", name)
        if not n or not n["spec"].get("podCIDR"):
            return None
        ok = any(c["type"] == "Ready" and c["status"] == "True"
                 for c in n.get("status", {}).get("conditions", []))
        return n if ok else None

    def wait_ready(self, *pods, timeout=150):
        self.kubectl("wait", "--for=condition=Ready", *[f"pod/{p}" for p in pods],
                     f"--timeout={timeout}s", timeout=timeout + 30)

    # ------------------------------------------------------------------ pods
    def agent_pod(self, name, node, labels=None, token=False):
        """A client pod pinned to node whose container runs scripts dropped in
        share/cmd/<name>/ (see pod_sh); with token, it mounts its service account's token."""
        d = f"/share/cmd/{name}"
        script = (f"mkdir -p {d}; while true; do for f in {d}/*.sh; do [ -e \"$f\" ] || continue; "
                  "o=${f%.sh}; sh \"$f\" > $o.tmp 2>&1; echo \"rc=$?\" >> $o.tmp; "
                  "mv $o.tmp $o.out; rm -f \"$f\"; done; sleep 0.05; done")
        pod = self.pod(name, node, "latest", ["sh", "-c", script], labels or {"role": "client"})
        if token:
            pod["spec"]["automountServiceAccountToken"] = True
        return pod

    def pod(self, name, node, tag, command, labels, grace=1, probe_port=None, extra=None):
        c = {"name": "main", "image": f"{IMAGE}:{tag}", "imagePullPolicy": "Never",
             "command": command,
             "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                     {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
             "volumeMounts": [{"name": "share", "mountPath": "/share"}]}
        if probe_port:
            c["readinessProbe"] = {"tcpSocket": {"port": probe_port}, "periodSeconds": 1}
        c.update(extra or {})
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "default", "labels": labels},
                "spec": {"nodeName": self.nodes[node].node_name,
                         "terminationGracePeriodSeconds": grace,
                         "automountServiceAccountToken": False,
                         "containers": [c],
                         "volumes": [{"name": "share",
                                      "hostPath": {"path": self.share, "type": "Directory"}}]}}

    def web_pod(self, name, node, labels=None, grace=5):
        """busybox httpd on :80 serving "<pod> <node>"; ignores SIGTERM (keeps serving while
        terminating, until the grace period ends)."""
        cmd = ("trap '' TERM; mkdir -p /w; echo \"$POD_NAME $NODE_NAME\" > /w/index.html; "
               "httpd -f -p 80 -h /w & wait")
        return self.pod(name, node, "httpd", ["sh", "-c", cmd], labels or {"app": "web"},
                        grace=grace, probe_port=80)

    def dns_pod(self, name, node, answer, labels=None):
        """pwnet's UDP DNS responder on :5353 answering every A query with `answer`."""
        return self.pod(name, node, "latest",
                        ["/share/bin/pwnet", "serve-dns", "5353", answer],
                        labels or {"app": "udpdns"})

    def pod_sh(self, pod, script, timeout=60):
        """Runs script with sh inside pod (an agent_pod); returns (output, exit code)."""
        self.seq += 1
        d = os.path.join(self.share, "cmd", pod)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, f"{self.seq:05d}")
        with open(path + ".part", "w") as f:
            f.write(script + "\n")
        os.rename(path + ".part", path + ".sh")
        deadline = time.time() + timeout
        while time.time() < deadline:
            if os.path.exists(path + ".out"):
                with open(path + ".out", errors="replace") as f:
                    out = f.read()
                os.unlink(path + ".out")
                body, _, rc = out.rstrip("\n").rpartition("rc=")
                return body, int(rc) if rc.isdigit() else -1
            time.sleep(0.02)
        raise AssertionError(f"script in pod {pod} did not finish in {timeout}s:\n{script}")

    def pwnet(self, pod, *args, timeout=60):
        out, rc = self.pod_sh(pod, " ".join(["/share/bin/pwnet", *map(str, args)]), timeout)
        return out.strip(), rc

    def ext(self, *cmd, timeout=30):
        """A short client command in the external namespace."""
        return run("ip", "netns", "exec", self.ext_netns, *cmd, check=False, timeout=timeout)

    def share_path(self, *parts):
        return os.path.join(self.share, *parts)

    # ------------------------------------------------------------------ diagnostics / cleanup
    def dump(self, lines=60):
        for n, node in self.nodes.items():
            try:
                log = node.log_text().splitlines()[-lines:]
                print(f"--- noded {n} (tail)\n" + "\n".join(log), file=sys.stderr)
            except Exception:  # noqa: BLE001
                pass
        for n, counters in self.lb_counters().items():
            print(f"--- service LB counters of node {n}: {counters}", file=sys.stderr)
        if self.cluster is not None:
            try:
                with open(os.path.join(self.cluster.root, "control.log"), errors="replace") as f:
                    print("--- control (tail)\n" + "".join(f.readlines()[-lines:]),
                          file=sys.stderr)
            except OSError:
                pass

    def lb_counters(self):
        """{node: {counter name: packets}} of the nonzero pw_lb_drops/pw_lb_events entries
        (names from bpf/lib/lb.h), read with bpftool from the pinned maps."""
        names = {}
        try:
            with open(os.path.join(h.SOURCE, "bpf", "lib", "lb.h")) as f:
                text = f.read()
            for kind, block in (("drop", "PODWARP_LB_DROP_REASONS"), ("event", "PODWARP_LB_EVENTS")):
                body = text.split(f"#define {block}(X)", 1)[1].split("\n\n", 1)[0]
                for num, name in re.findall(r'X\(\w+,\s*(\d+),\s*"(\w+)"\)', body):
                    names[(kind, int(num))] = name
        except (OSError, IndexError):
            pass
        out = {}
        for n, node in self.nodes.items():
            got = {}
            for kind, m in (("drop", "pw_lb_drops"), ("event", "pw_lb_events")):
                pin = os.path.join(node.bpf_dir, "podwarp-noded", "lb", m)
                r = subprocess.run(["bpftool", "-j", "map", "dump", "pinned", pin],
                                   capture_output=True, text=True)
                try:
                    for e in json.loads(r.stdout):
                        f = e.get("formatted", e)
                        pk = sum(v["value"].get("packets", 0) for v in f.get("values", [])
                                 if isinstance(v.get("value"), dict))
                        if pk and isinstance(f.get("key"), int):
                            got[names.get((kind, f["key"]), f"{kind}{f['key']}")] = pk
                except (ValueError, TypeError, AttributeError):
                    pass
            out[n] = got
        return out

    def close(self):
        if self.closed:
            return
        self.closed = True
        for node in self.nodes.values():
            try:
                node.cleanup()
            except Exception as e:  # noqa: BLE001
                print(f"cleanup {node.node_name}: {e}", file=sys.stderr)
        for fw in self.forwarders:
            fw.close()
        if self.underlay is not None:
            self.underlay.close()
        if self.cluster is not None:
            self.cluster.close()
        for mp in h.mounts_under(self.base):
            subprocess.run(["umount", "-l", mp], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def exit_on_sigterm():
    """SIGTERM stops the run like ^C (unittest re-raises KeyboardInterrupt but records
    SystemExit as one more error and goes on), so that close() runs at exit."""
    def interrupt(*_):
        raise KeyboardInterrupt("SIGTERM")
    signal.signal(signal.SIGTERM, interrupt)
