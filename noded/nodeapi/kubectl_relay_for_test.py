#!/usr/bin/python3
"""A stand-in apiserver for node_https_test's kubectl test (test-only, stdlib only).

Serves just enough for `kubectl exec` / `kubectl port-forward` against one pod: legacy
discovery (/api, /apis, /api/v1), GET of the pod (from --pod-json), and relays
pods/{name}/exec|attach|portforward to the node API as the real apiserver's proxy does
(TLS with the kubelet client certificate, the kubelet path, query kept, upgrade bytes spliced
both ways). Prints its port on stdout, then serves until killed.
"""
import argparse
import json
import re
import socket
import ssl
import threading
import urllib.parse

p = argparse.ArgumentParser()
for a in ("node-port", "ca", "client-cert", "client-key", "server-cert", "server-key", "pod-json"):
    p.add_argument("--" + a, required=True)
args = p.parse_args()
pod = json.load(open(args.pod_json))
pod.setdefault("apiVersion", "v1")
pod.setdefault("kind", "Pod")
ns = pod["metadata"]["namespace"]
name = pod["metadata"]["name"]

RESOURCES = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": [
    {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "shortNames": ["po"],
     "verbs": ["get", "list"]},
    {"name": "pods/exec", "singularName": "", "namespaced": True, "kind": "PodExecOptions", "verbs": ["create", "get"]},
    {"name": "pods/portforward", "singularName": "", "namespaced": True, "kind": "PodPortForwardOptions",
     "verbs": ["create", "get"]},
]}
STATIC = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": RESOURCES,
    "/api/v1/namespaces/%s/pods/%s" % (ns, name): pod,
}

server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
server_ctx.load_cert_chain(args.server_cert, args.server_key)
client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
client_ctx.load_verify_locations(args.ca)
client_ctx.load_cert_chain(args.client_cert, args.client_key)


def read_head(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return None, b""
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def splice(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def handle(raw):
    try:
        c = server_ctx.wrap_socket(raw, server_side=True)
        head, rest = read_head(c)
        if head is None:
            return
        method, target, _ = head.split("\r\n")[0].split(" ", 2)
        u = urllib.parse.urlsplit(target)
        m = re.fullmatch(r"/api/v1/namespaces/([^/]+)/pods/([^/]+)/(exec|attach|portforward)", u.path)
        if m:
            q = urllib.parse.parse_qs(u.query)
            path = "/%s/%s/%s" % (m.group(3), m.group(1), m.group(2))
            if m.group(3) != "portforward":
                path += "/" + q.get("container", ["app"])[0]
            lines = head.split("\r\n")
            lines[0] = "%s %s%s HTTP/1.1" % (method, path, "?" + u.query if u.query else "")
            n = socket.create_connection(("127.0.0.1", int(args.node_port)))
            n = client_ctx.wrap_socket(n, server_hostname="localhost")
            n.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + rest)
            t = threading.Thread(target=splice, args=(n, c), daemon=True)
            t.start()
            splice(c, n)
            t.join()
            return
        body = STATIC.get(u.path)
        code = "200 OK" if body is not None else "404 Not Found"
        if body is None:
            body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}
        data = json.dumps(body).encode()
        c.sendall(("HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                   "Connection: close\r\n\r\n" % (code, len(data))).encode() + data)
        c.close()
    except Exception:  # a test helper: the test sees the failure through kubectl
        pass


ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(64)
print(ls.getsockname()[1], flush=True)
while True:
    conn, _ = ls.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
