"""HTTP/2 on the secure port: ALPN picks "h2" when the client offers it (HTTP/1.1 otherwise),
and over HTTP/2 the apiserver answers exactly as over HTTP/1.1 -- authentication, create/get,
upstream-shaped errors, the body limit, watches, many concurrent streams on one connection,
and kubectl (client-go) really speaks HTTP/2 to it. The HTTP/2 client is the real curl
(built with nghttp2)."""
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

CURL = os.environ.get("CURL", "curl")


class Http2Test(harness.ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.cluster
        pki = os.path.join(c.data_dir, "pki")
        cls.ca = os.path.join(pki, "ca.crt")
        cls.cert = os.path.join(pki, "admin.crt")
        cls.key = os.path.join(pki, "admin.key")
        for f in (cls.ca, cls.cert, cls.key):
            if not os.path.exists(f):
                raise RuntimeError(f"missing {f}")
        cls.base = f"https://127.0.0.1:{c.port}"
        cls.tmp = tempfile.mkdtemp(dir=c.root, prefix="h2-")
        cls.cluster.kubectl("create", "namespace", "h2")

    # --- helpers -----------------------------------------------------------------------------

    def curl_args(self, authenticated=True, proto="--http2"):
        args = [CURL, "-sS", proto, "--cacert", self.ca, "--max-time", "60"]
        if authenticated:
            args += ["--cert", self.cert, "--key", self.key]
        return args

    def curl(self, method, path, data=None, data_file=None, authenticated=True, proto="--http2",
             content_type="application/json", timeout=90):
        """One request; returns (http_version, status, body) where body is parsed JSON when
        it looks like JSON, else the raw bytes."""
        fd, out = tempfile.mkstemp(dir=self.tmp)
        os.close(fd)
        try:
            args = self.curl_args(authenticated, proto) + [
                "-X", method, "-o", out, "-w", "%{http_version} %{http_code}"]
            if data is not None:
                args += ["-H", f"Content-Type: {content_type}", "--data-binary", data]
            elif data_file is not None:
                args += ["-H", f"Content-Type: {content_type}", "--data-binary", "@" + data_file]
            args.append(self.base + path)
            r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
            self.assertEqual(r.returncode, 0, f"curl {method} {path} failed ({r.returncode}): "
                                              f"{r.stderr}\n{self.control_log_tail()}")
            version, code = r.stdout.split()
            with open(out, "rb") as f:
                raw = f.read()
        finally:
            os.unlink(out)
        body = json.loads(raw) if raw[:1] == b"{" else raw
        return version, int(code), body

    def control_log_tail(self, n=4000):
        try:
            with open(os.path.join(self.cluster.root, "control.log"), errors="replace") as f:
                return "control.log tail:\n" + f.read()[-n:]
        except OSError:
            return ""

    def assertStatus(self, body, code, reason=None):
        self.assertIsInstance(body, dict, f"expected a Status body, got {body!r}")
        self.assertEqual(body.get("kind"), "Status", body)
        self.assertEqual(body.get("apiVersion"), "v1", body)
        self.assertEqual(body.get("status"), "Failure", body)
        self.assertEqual(body.get("code"), code, body)
        if reason is not None:
            self.assertEqual(body.get("reason"), reason, body)

    # --- 1. ALPN -------------------------------------------------------------------------------

    def test_alpn_h2_and_http11(self):
        version, code, body = self.curl("GET", "/api/v1/namespaces")
        self.assertEqual((version, code), ("2", 200))
        self.assertEqual(body["kind"], "NamespaceList")
        self.assertEqual(body["apiVersion"], "v1")
        self.assertIn("default", [ns["metadata"]["name"] for ns in body["items"]])

        version, code, body = self.curl("GET", "/api/v1/namespaces", proto="--http1.1")
        self.assertEqual((version, code), ("1.1", 200))
        self.assertEqual(body["kind"], "NamespaceList")
        self.assertIn("default", [ns["metadata"]["name"] for ns in body["items"]])

    # --- 2. anonymous --------------------------------------------------------------------------

    def test_anonymous_is_401(self):
        version, code, body = self.curl("GET", "/api/v1/namespaces", authenticated=False)
        self.assertEqual((version, code), ("2", 401))
        self.assertStatus(body, 401, "Unauthorized")

    # --- 3. create / get / errors ----------------------------------------------------------------

    def test_create_get_and_errors(self):
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "via-h2"},
              "data": {"k": "v"}}
        version, code, body = self.curl("POST", "/api/v1/namespaces/h2/configmaps",
                                        data=json.dumps(cm))
        self.assertEqual((version, code), ("2", 201), body)
        self.assertEqual(body["kind"], "ConfigMap")
        self.assertEqual(body["metadata"]["name"], "via-h2")
        self.assertEqual(body["metadata"]["namespace"], "h2")
        self.assertTrue(body["metadata"].get("uid"))
        self.assertTrue(body["metadata"].get("resourceVersion"))

        version, code, got = self.curl("GET", "/api/v1/namespaces/h2/configmaps/via-h2")
        self.assertEqual((version, code), ("2", 200), got)
        self.assertEqual(got["data"], {"k": "v"})
        self.assertEqual(got["metadata"]["uid"], body["metadata"]["uid"])
        # And the same object is what kubectl (HTTP/2 as well) sees.
        self.assertEqual(self.cluster.kubectl_json("-n", "h2", "get", "configmap", "via-h2")
                         ["metadata"]["uid"], body["metadata"]["uid"])

        version, code, body = self.curl("GET", "/api/v1/namespaces/h2/configmaps/absent")
        self.assertEqual((version, code), ("2", 404))
        self.assertStatus(body, 404, "NotFound")

        version, code, body = self.curl("POST", "/api/v1/namespaces/h2/configmaps",
                                        data='{"kind": ')
        self.assertEqual((version, code), ("2", 400), body)
        self.assertStatus(body, 400, "BadRequest")

        cm["metadata"]["name"] = "Bad_Name"
        version, code, body = self.curl("POST", "/api/v1/namespaces/h2/configmaps",
                                        data=json.dumps(cm))
        self.assertEqual((version, code), ("2", 422), body)
        self.assertStatus(body, 422, "Invalid")
        self.assertIn("metadata.name", body["message"])

        version, code, body = self.curl("DELETE", "/api/v1/namespaces/h2/configmaps/via-h2")
        self.assertEqual((version, code), ("2", 200), body)
        version, code, _ = self.curl("GET", "/api/v1/namespaces/h2/configmaps/via-h2")
        self.assertEqual((version, code), ("2", 404))

    # --- 4. body limit ---------------------------------------------------------------------------

    def test_oversized_body_is_413_and_server_keeps_serving(self):
        path = os.path.join(self.tmp, "big.json")
        size = 4 * 1024 * 1024
        with open(path, "wb") as f:
            prefix = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"k":"'
            suffix = b'"}}'
            f.write(prefix + b"x" * (size - len(prefix) - len(suffix)) + suffix)
        try:
            version, code, body = self.curl("POST", "/api/v1/namespaces/h2/configmaps",
                                            data_file=path)
        finally:
            os.unlink(path)
        self.assertEqual((version, code), ("2", 413), body)
        self.assertStatus(body, 413, "RequestEntityTooLarge")
        self.assertIn(str(3 * 1024 * 1024), body["message"])
        self.assertIn("limit", body["message"])

        version, code, body = self.curl("GET", "/healthz")
        self.assertEqual((version, code), ("2", 200))
        self.assertEqual(body, b"ok")
        version, code, _ = self.curl("GET", "/api/v1/namespaces/h2/configmaps/big")
        self.assertEqual((version, code), ("2", 404))

    # --- 5. watch --------------------------------------------------------------------------------

    def test_watch(self):
        self.cluster.kubectl("create", "namespace", "h2-watch")
        url = (self.base + "/api/v1/namespaces/h2-watch/configmaps"
               "?watch=true&resourceVersion=0")
        proc = subprocess.Popen(self.curl_args() + ["-N", "-v", url], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        lines = queue.Queue()

        def reader():
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        try:
            self.cluster.kubectl("-n", "h2-watch", "create", "configmap", "w1",
                                 "--from-literal=a=1")
            self.cluster.kubectl("-n", "h2-watch", "create", "configmap", "w2",
                                 "--from-literal=a=2")
            seen = []
            deadline = time.time() + 30
            while {"w1", "w2"} - {n for ty, n in seen if ty == "ADDED"}:
                left = deadline - time.time()
                if left <= 0:
                    self.fail(f"watch over HTTP/2 saw only {seen}\n{self.control_log_tail()}")
                try:
                    line = lines.get(timeout=left)
                except queue.Empty:
                    continue
                if line is None:
                    self.fail(f"curl watch ended early (rc={proc.wait(10)}): "
                              f"{proc.stderr.read().decode(errors='replace')}; saw {seen}\n"
                              f"{self.control_log_tail()}")
                if not line.strip():
                    continue
                ev = json.loads(line)
                self.assertEqual(ev["object"]["kind"], "ConfigMap", ev)
                seen.append((ev["type"], ev["object"]["metadata"]["name"]))
            self.assertEqual([s for s in seen if s[0] == "ADDED"], [("ADDED", "w1"), ("ADDED", "w2")])
            self.assertIsNone(proc.poll(), "the watch must stay open")
        finally:
            harness.stop_pid(proc)
            t.join(10)
            proc.stdout.close()
            verbose = proc.stderr.read().decode(errors="replace")
            proc.stderr.close()
        # The watch really was an HTTP/2 stream.
        self.assertIn("ALPN: server accepted h2", verbose)
        self.assertRegex(verbose, r"< HTTP/2 200")
        # client-go picks the watch stream's decoder from the content type.
        self.assertRegex(verbose, r"< content-type: application/json")

    def test_watch_timeout_seconds_ends_stream(self):
        start = time.time()
        r = subprocess.run(self.curl_args() + [
            "-N", "-o", os.devnull, "-w", "%{http_version} %{http_code}",
            self.base + "/api/v1/namespaces/h2/configmaps?watch=true&timeoutSeconds=1"],
            capture_output=True, text=True, timeout=60)
        elapsed = time.time() - start
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["2", "200"])
        self.assertLess(elapsed, 15, "a watch with timeoutSeconds=1 must end by itself")

    def etcd_request_count(self, operation, type_):
        """etcd_request_duration_seconds_count{operation,type} on /metrics (0 when absent)."""
        _, code, body = self.curl("GET", "/metrics", proto="--http1.1")
        self.assertEqual(code, 200)
        head = f'etcd_request_duration_seconds_count{{operation="{operation}",type="{type_}"}} '
        for line in body.decode().splitlines():
            if line.startswith(head):
                return float(line[len(head):])
        return 0.0

    def test_etcd_requests_are_timed_on_metrics(self):
        """Upstream's etcd_request_duration_seconds{operation,type}: every create, update and
        delete reaches etcd once and is counted under its resource; a create that finds its
        name taken is counted too (etcd answered), and nothing counts as an etcd error."""
        before = {op: self.etcd_request_count(op, "configmaps")
                  for op in ("create", "update", "delete")}
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "timed"},
              "data": {"k": "v"}}
        _, code, body = self.curl("POST", "/api/v1/namespaces/h2/configmaps", data=json.dumps(cm))
        self.assertEqual(code, 201, body)
        _, code, body = self.curl("POST", "/api/v1/namespaces/h2/configmaps", data=json.dumps(cm))
        self.assertEqual(code, 409, body)
        cm["data"]["k"] = "w"
        _, code, body = self.curl("PUT", "/api/v1/namespaces/h2/configmaps/timed",
                                  data=json.dumps(cm))
        self.assertEqual(code, 200, body)
        _, code, body = self.curl("DELETE", "/api/v1/namespaces/h2/configmaps/timed")
        self.assertEqual(code, 200, body)
        self.assertEqual(self.etcd_request_count("create", "configmaps"), before["create"] + 2)
        self.assertEqual(self.etcd_request_count("update", "configmaps"), before["update"] + 1)
        self.assertEqual(self.etcd_request_count("delete", "configmaps"), before["delete"] + 1)
        _, _, body = self.curl("GET", "/metrics", proto="--http1.1")
        text = body.decode()
        self.assertIn("# TYPE etcd_request_duration_seconds histogram", text)
        self.assertIn('etcd_request_duration_seconds_bucket{operation="create",type="configmaps",'
                      'le="0.005"}', text)
        self.assertNotIn("etcd_request_errors_total{", text)

    def registered_watchers(self, kind="ConfigMap"):
        _, code, body = self.curl("GET", "/metrics", proto="--http1.1")
        self.assertEqual(code, 200)
        for line in body.decode().splitlines():
            if (line.startswith("apiserver_registered_watchers{") and
                    f'kind="{kind}"' in line and 'group=""' in line):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def test_ended_watches_are_released(self):
        """apiserver_registered_watchers counts the watchers alive: one more while a watch is
        open (over either protocol), back to where it was once the watches have ended -- an
        ended watch leaves nothing behind."""
        base = self.registered_watchers()
        url = self.base + "/api/v1/namespaces/h2/configmaps?watch=true"
        held = subprocess.Popen(self.curl_args() + ["-N", "-o", os.devnull, url],
                                start_new_session=True)
        try:
            deadline = time.time() + 20
            while self.registered_watchers() < base + 1 and time.time() < deadline:
                time.sleep(0.2)
            self.assertEqual(self.registered_watchers(), base + 1)
        finally:
            harness.stop_pid(held)
        # 20 short watches on one HTTP/2 connection and 5 over HTTP/1.1, all ending by timeout.
        short = url + "&timeoutSeconds=1"
        for proto, n in (("--http2", 20), ("--http1.1", 5)):
            args = self.curl_args(proto=proto) + ["-N", "--parallel", "--parallel-max", str(n)]
            for _ in range(n):
                args += [short, "-o", os.devnull]
            r = subprocess.run(args, capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, f"{proto}: {r.stderr}")
        deadline = time.time() + 20
        while self.registered_watchers() > base and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.registered_watchers(), base, self.control_log_tail())

    # --- 6. many streams on one connection ----------------------------------------------------

    def test_many_streams_one_connection(self):
        n = 50
        args = self.curl_args() + [
            "--parallel", "--parallel-max", str(n),
            "-w", "%{http_version} %{http_code} %{num_connects}\n"]
        for _ in range(n):
            args += [self.base + "/api/v1/namespaces/default", "-o", os.devnull]
        r = subprocess.run(args, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, f"{r.stderr}\n{self.control_log_tail()}")
        results = [line.split() for line in r.stdout.splitlines() if line.strip()]
        self.assertEqual(len(results), n, r.stdout)
        self.assertEqual([(v, c) for v, c, _ in results], [("2", "200")] * n, r.stdout)
        # curl waits to multiplex on the first HTTP/2 connection: one connect in all.
        self.assertEqual(sum(int(k) for _, _, k in results), 1, r.stdout)

    # --- 7. kubectl ----------------------------------------------------------------------------

    def test_kubectl_uses_http2(self):
        c = self.cluster
        cmd = [harness.KUBECTL, "--kubeconfig", c.kubeconfig, "--cache-dir", c.cache_dir,
               "get", "ns", "-o", "name"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, GODEBUG="http2debug=1"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("namespace/default", r.stdout.split())
        self.assertTrue("http2: Transport" in r.stderr or "http2: Framer" in r.stderr,
                        f"kubectl did not use HTTP/2; stderr:\n{r.stderr[-3000:]}")
        # The request kubectl itself makes (the namespace list) went out as HTTP/2 HEADERS and
        # its answer came back as HTTP/2 HEADERS and DATA on a stream.
        self.assertRegex(r.stderr, r'http2: Transport encoding header ":path" = "/api/v1/namespaces')
        self.assertRegex(r.stderr, r"http2: Transport received HEADERS [^\n]*stream=\d+")
        self.assertRegex(r.stderr, r"http2: Transport received DATA [^\n]*stream=\d+")

    def test_garbage_after_h2_handshake_closes_only_that_connection(self):
        """A client that chose h2 and then sends no valid connection preface (or a frame too
        large) gets its connection closed; the server keeps serving everyone else."""
        import socket
        import ssl
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.load_cert_chain(self.cert, self.key)
        ctx.set_alpn_protocols(["h2"])
        payloads = [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 20,
                    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 4096]
        for payload in payloads:
            with socket.create_connection(("127.0.0.1", self.cluster.port), timeout=30) as raw:
                with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    self.assertEqual(tls.selected_alpn_protocol(), "h2")
                    tls.sendall(payload)
                    deadline = time.time() + 20
                    closed = False
                    while time.time() < deadline:
                        try:
                            if not tls.recv(65536):
                                closed = True
                                break
                        except (ConnectionError, ssl.SSLError):
                            closed = True
                            break
                    self.assertTrue(closed, f"connection stayed open after {payload[:20]!r}")
        version, code, body = self.curl("GET", "/healthz")
        self.assertEqual((version, code), ("2", 200))

    def test_watch_that_is_not_read_is_reset_and_the_connection_lives_on(self):
        """A client that opens a watch but grants it no flow-control window: the server queues
        at most 1 MiB for the stream; when the watch then ends (here its timeoutSeconds), what is
        queued can never drain, so the stream is reset (CANCEL) instead of hanging, and the
        connection keeps working. The client is python3-h2 over a TLS socket."""
        import socket
        import ssl
        import h2.config
        import h2.connection
        import h2.events
        import h2.settings
        ns = "h2-slow"
        self.cluster.kubectl("create", "namespace", ns)
        big = "x" * (100 * 1024)
        for i in range(12):  # 1.2 MB of ADDED events for a watch from resourceVersion=0
            self.cluster.kubectl("create", "configmap", f"big-{i}", "-n", ns, f"--from-literal=v={big}")
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.load_cert_chain(self.cert, self.key)
        ctx.set_alpn_protocols(["h2"])
        with socket.create_connection(("127.0.0.1", self.cluster.port), timeout=30) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                self.assertEqual(tls.selected_alpn_protocol(), "h2")
                conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
                conn.initiate_connection()
                conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
                conn.send_headers(1, [(":method", "GET"), (":scheme", "https"),
                                      (":authority", "127.0.0.1"),
                                      (":path", f"/api/v1/namespaces/{ns}/configmaps"
                                                "?watch=true&resourceVersion=0&timeoutSeconds=2")],
                                  end_stream=True)
                tls.sendall(conn.data_to_send())
                reset = None
                headers = None
                ping_acked = False
                deadline = time.time() + 30
                while time.time() < deadline and not (reset and ping_acked):
                    data = tls.recv(65536)
                    self.assertTrue(data, "the server closed the connection")
                    for ev in conn.receive_data(data):
                        if isinstance(ev, h2.events.ResponseReceived):
                            headers = dict(ev.headers)
                        elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == 1:
                            reset = ev.error_code
                            conn.ping(b"12345678")  # the connection itself is still served
                        elif isinstance(ev, h2.events.PingAckReceived):
                            ping_acked = True
                    tls.sendall(conn.data_to_send())
                self.assertIsNotNone(headers, "no response header for the watch")
                self.assertEqual(headers.get(b":status"), b"200")
                self.assertEqual(reset, h2.errors.ErrorCodes.CANCEL,
                                 "the unread watch was not reset\n" + self.control_log_tail())
                self.assertTrue(ping_acked)

    def test_flow_control_of_watch_and_list_on_one_connection(self):
        """A client with small windows that grants more only as it reads: a watch's events
        (framed by podwarp itself) and a list (framed by nghttp2) share the connection window,
        and neither ever exceeds a window (python3-h2 raises FlowControlError if so); a lowered
        SETTINGS_INITIAL_WINDOW_SIZE mid-stream applies to the open streams; WINDOW_UPDATEs
        split across TLS records are read right; every byte arrives and both streams end. A
        live event (cm-8, created once the 8 replayed ones are in) takes the same path."""
        import socket
        import ssl
        import h2.config
        import h2.connection
        import h2.events
        import h2.settings
        ns = "h2-flow"
        self.cluster.kubectl("create", "namespace", ns)
        names = [f"cm-{i}" for i in range(8)]
        for i, name in enumerate(names):  # 8 x 20 KB
            self.cluster.kubectl("create", "configmap", name, "-n", ns,
                                 f"--from-literal=v={chr(ord('a') + i) * 20000}")
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.load_cert_chain(self.cert, self.key)
        ctx.set_alpn_protocols(["h2"])
        initial = h2.settings.SettingCodes.INITIAL_WINDOW_SIZE
        with socket.create_connection(("127.0.0.1", self.cluster.port), timeout=30) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
                conn.initiate_connection()
                # Stream windows larger than the connection's (65,535, granted back as read):
                # first the connection window binds, then (lowered) the streams'.
                conn.update_settings({initial: 200000})

                def get(sid, path):
                    conn.send_headers(sid, [(":method", "GET"), (":scheme", "https"),
                                            (":authority", "127.0.0.1"), (":path", path)],
                                      end_stream=True)
                get(1, f"/api/v1/namespaces/{ns}/configmaps?watch=true&resourceVersion=0"
                       "&timeoutSeconds=6")
                get(3, f"/api/v1/namespaces/{ns}/configmaps")
                tls.sendall(conn.data_to_send())
                bodies = {1: b"", 3: b""}
                unacked = {0: 0, 1: 0, 3: 0}  # bytes read and not yet granted back
                status = {}
                ended = set()
                lowered = False
                live = False
                split = 0
                deadline = time.time() + 30
                while time.time() < deadline and ended != {1, 3}:
                    data = tls.recv(65536)
                    self.assertTrue(data, "the server closed the connection\n" +
                                    self.control_log_tail())
                    acks = []
                    for ev in conn.receive_data(data):
                        if isinstance(ev, h2.events.ResponseReceived):
                            status[ev.stream_id] = dict(ev.headers).get(b":status")
                        elif isinstance(ev, h2.events.DataReceived):
                            bodies[ev.stream_id] += ev.data
                            if ev.flow_controlled_length:
                                acks.append((ev.flow_controlled_length, ev.stream_id))
                        elif isinstance(ev, h2.events.StreamEnded):
                            ended.add(ev.stream_id)
                        elif isinstance(ev, h2.events.StreamReset):
                            self.fail(f"stream {ev.stream_id} reset: {ev.error_code}")
                    if not live and bodies[1].count(b"\n") >= len(names):
                        self.cluster.kubectl("create", "configmap", "cm-8", "-n", ns,
                                             f"--from-literal=v={'i' * 20000}")
                        live = True
                    if not lowered and len(bodies[1]) > 0:
                        conn.update_settings({initial: 4096})  # the open streams shrink
                        lowered = True
                    # Grant back what was read, but only once the connection window is used
                    # up (most of a stream's): a server that sends past a window makes
                    # python3-h2 raise, as it must.
                    for n, sid in acks:
                        unacked[0] += n
                        unacked[sid] += n
                    if unacked[0] >= 65535:
                        conn.increment_flow_control_window(unacked[0])
                        unacked[0] = 0
                    stream_window = 4096 if lowered else 200000
                    for sid in (1, 3):
                        if sid not in ended and unacked[sid] >= stream_window * 3 // 4:
                            conn.increment_flow_control_window(unacked[sid], stream_id=sid)
                            unacked[sid] = 0
                    out = conn.data_to_send()
                    if out and split < 3:  # WINDOW_UPDATEs a byte per TLS record
                        split += 1
                        for b in range(len(out)):
                            tls.sendall(out[b:b + 1])
                    else:
                        tls.sendall(out)
                self.assertEqual(ended, {1, 3}, f"streams ended: {ended}\n" + self.control_log_tail())
                self.assertEqual(status, {1: b"200", 3: b"200"})
                self.assertTrue(lowered)
                events = [json.loads(line) for line in bodies[1].decode().splitlines()]
                added = [e for e in events if e["type"] == "ADDED"]
                self.assertTrue(live)
                self.assertEqual([e["object"]["metadata"]["name"] for e in added],
                                 names + ["cm-8"])
                for i, e in enumerate(added):
                    self.assertEqual(e["object"]["data"]["v"], chr(ord("a") + i) * 20000)
                listed = json.loads(bodies[3])
                self.assertEqual([o["metadata"]["name"] for o in listed["items"]], names)
                # The connection still serves requests after both ended.
                get(5, "/version")
                tls.sendall(conn.data_to_send())
                got = None
                while got is None and time.time() < deadline:
                    for ev in conn.receive_data(tls.recv(65536)):
                        if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == 5:
                            got = dict(ev.headers).get(b":status")
                    tls.sendall(conn.data_to_send())
                self.assertEqual(got, b"200")


if __name__ == "__main__":
    harness.main()
