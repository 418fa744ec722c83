"""`netprof proxy` in front of real servers, driven by real clients (curl, wrk, raw sockets)."""
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import unittest

from harness import E2ETest, Netprof, NETPROF, NO_EBPF, ebpf_build, free_port, route, wait_for


def recv_until_closed(sock, limit=1 << 26):
    chunks = []
    total = 0
    while total < limit:
        data = sock.recv(65536)
        if not data:
            break
        chunks.append(data)
        total += len(data)
    return b"".join(chunks)


class ProxyWithCurl(E2ETest):
    def test_keepalive_over_several_urls_counts_every_request(self):
        backend = self.start_backend()
        np = self.start_proxy(backend.port)
        base = f"http://127.0.0.1:{np.port}"
        urls = [f"{base}/home", f"{base}/home?user=secret", f"{base}/logo.png",
                f"{base}/missing", f"{base}/fail", f"{base}/home"]
        # One curl process, one connection reused for every URL (keep-alive).
        args = [a for u in urls for a in ("-o", "/dev/null", u)]
        out = subprocess.run(["curl", "-s", "-w", "%{http_code} %{num_connects}\n", *args],
                             capture_output=True, text=True, check=True).stdout.split("\n")
        codes = [line.split()[0] for line in out if line]
        self.assertEqual(codes, ["200", "200", "200", "404", "500", "200"])
        self.assertEqual(sum(int(line.split()[1]) for line in out if line), 1, "curl reused one connection")

        report = np.stop()
        self.assertEqual(report["netprof"], 1)
        home = route(report, "/home")
        self.assertEqual(home["count"], 3, "query string is dropped, so /home?user=secret is /home")
        self.assertEqual(home["status"], {"200": 3})
        self.assertEqual(home["errors"], 0)
        self.assertFalse(home["file"])
        self.assertGreater(home["latency_ms"]["max"], 0)
        self.assertLessEqual(home["latency_ms"]["min"], home["latency_ms"]["p50"])
        self.assertLessEqual(home["latency_ms"]["p50"], home["latency_ms"]["max"])
        self.assertEqual(home["last"]["status"], 200)
        self.assertEqual(home["last"]["state"], "OK")
        self.assertNotIn("secret", str(report), "query values are never stored by default")

        self.assertTrue(route(report, "/logo.png")["file"])
        self.assertEqual(route(report, "/missing")["status"], {"404": 1})
        fail = route(report, "/fail")
        self.assertEqual(fail["status"], {"500": 1})
        self.assertEqual(fail["errors"], 1, "a 5xx counts as an error")
        self.assertEqual(report["connections"]["accepted"], 1)
        self.assertEqual(report["connections"]["active"], 0)
        self.assertEqual(report["connections"]["unparsed"], 0)

    def test_post_body_arrives_unchanged_and_bytes_are_counted(self):
        backend = self.start_backend()
        np = self.start_proxy(backend.port)
        body = os.urandom(300_000)
        path = os.path.join(np.dir, "body")
        with open(path, "wb") as f:
            f.write(body)
        out = subprocess.run(["curl", "-s", "--data-binary", f"@{path}", "-H", "Content-Type: application/octet-stream",
                              f"http://127.0.0.1:{np.port}/upload"], capture_output=True, check=True).stdout
        self.assertEqual(out.decode(), hashlib.sha256(body).hexdigest(), "the backend got every byte")
        report = np.stop()
        upload = route(report, "/upload", "POST")
        self.assertEqual(upload["status"], {"201": 1})
        self.assertEqual(upload["request_body_bytes"], len(body))
        self.assertGreater(upload["request_bytes"], len(body))

    def test_head_204_304_and_chunked_responses_keep_the_connection_in_step(self):
        backend = self.start_backend()
        np = self.start_proxy(backend.port)
        base = f"http://127.0.0.1:{np.port}"
        subprocess.run(["curl", "-s", "-o", "/dev/null", "-I", f"{base}/bytes/5000"], check=True)
        out = subprocess.run(["curl", "-s", f"{base}/chunked", f"{base}/nocontent", f"{base}/notmodified",
                              f"{base}/chunked"], capture_output=True, check=True).stdout
        self.assertEqual(out, b"hello chunked world" * 2)
        report = np.stop()
        self.assertEqual(route(report, "/bytes/{id}", "HEAD")["status"], {"200": 1})
        chunked = route(report, "/chunked")
        self.assertEqual(chunked["status"], {"200": 2})
        self.assertEqual(chunked["response_body_bytes"], 2 * len(b"hello chunked world"))
        self.assertEqual(route(report, "/nocontent")["status"], {"204": 1})
        self.assertEqual(route(report, "/notmodified")["status"], {"304": 1})


class ProxyWithRawSockets(E2ETest):
    def test_pipelined_requests_are_paired_in_order(self):
        backend = self.start_backend()
        np = self.start_proxy(backend.port)
        requests = b"".join(
            f"GET /p/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(5))
        requests += b"GET /p/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        with socket.create_connection(("127.0.0.1", np.port)) as s:
            s.sendall(requests)  # all six in one write: pipelining
            response = recv_until_closed(s)
        self.assertEqual(response.count(b"HTTP/1.1 200"), 6)
        for i in range(5):
            self.assertIn(f"you asked for /p/{i}".encode(), response)
        report = np.stop()
        # Numeric segments collapse into {id} by default (bounded cardinality).
        self.assertEqual(route(report, "/p/{id}")["count"], 5)
        self.assertEqual(route(report, "/p/{id}")["status"], {"200": 5})
        self.assertEqual(route(report, "/p/last")["count"], 1)

    def test_a_thousand_pipelined_requests_in_one_write_are_all_counted(self):
        backend = self.start_backend()
        np = self.start_proxy(backend.port)
        n = 1000
        requests = b"".join(f"GET /deep/{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                            for i in range(n - 1))
        requests += b"GET /deep/last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        with socket.create_connection(("127.0.0.1", np.port)) as s:
            sender = threading.Thread(target=s.sendall, args=(requests,))
            sender.start()  # one write; read meanwhile so neither side's buffers stall it
            response = recv_until_closed(s)
            sender.join()
        self.assertEqual(response.count(b"HTTP/1.1 200"), n)
        report = np.stop()
        deep = route(report, "/deep/{id}")
        self.assertEqual(deep["count"], n - 1)
        self.assertEqual(deep["status"], {"200": n - 1})
        self.assertEqual(deep["errors"], 0)
        self.assertEqual(route(report, "/deep/last")["status"], {"200": 1})
        self.assertEqual(report["connections"]["unparsed"], 0)

    def test_websocket_with_much_early_client_data_is_not_a_failed_request(self):
        # The client sends its first frames right behind the Upgrade request, more than the
        # tracker holds (64 KiB before), and the server answers 101 only after reading them.
        early = os.urandom(200_000)
        upgrade = (b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                   b"Connection: Upgrade\r\n\r\n")
        switching = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        self.addCleanup(server.close)
        got = bytearray()

        def serve():
            conn, _ = server.accept()
            with conn:
                while len(got) < len(upgrade) + len(early):
                    data = conn.recv(65536)
                    if not data:
                        return
                    got.extend(data)
                conn.sendall(switching + b"server frames")
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(65536):
                    pass
        t = threading.Thread(target=serve, daemon=True)
        t.start()
        np = self.start_proxy(server.getsockname()[1])
        with socket.create_connection(("127.0.0.1", np.port)) as s:
            s.sendall(upgrade + early)
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_until_closed(s), switching + b"server frames")
        t.join(timeout=30)
        self.assertEqual(bytes(got), upgrade + early, "every early byte reached the server")
        report = np.stop()
        ws = route(report, "/ws")
        self.assertEqual(ws["status"], {"101": 1})
        self.assertEqual(ws["errors"], 0)
        self.assertEqual(report["connections"]["unparsed"], 0)

    def test_non_http_bytes_are_relayed_exactly_and_counted_unparsed(self):
        echo = EchoServer(self)
        np = self.start_proxy(echo.port)
        payload = bytes(random.Random(7).getrandbits(8) for _ in range(200_000))
        with socket.create_connection(("127.0.0.1", np.port)) as s:
            sender = threading.Thread(target=lambda: (s.sendall(payload), s.shutdown(socket.SHUT_WR)))
            sender.start()
            echoed = recv_until_closed(s)
            sender.join()
        self.assertEqual(hashlib.sha256(echoed).hexdigest(), hashlib.sha256(payload).hexdigest())
        self.assertEqual(hashlib.sha256(echo.received()).hexdigest(), hashlib.sha256(payload).hexdigest())
        report = np.stop()
        self.assertEqual(report["connections"]["unparsed"], 1)
        self.assertEqual(report["routes"], [])

    def test_half_close_is_propagated(self):
        # An HTTP/1.0-style exchange: the client half-closes after its request; the server
        # answers only once it saw EOF, then closes. Needs FIN forwarding both ways.
        echo = EchoServer(self, reply_on_eof=b"HTTP/1.0 200 OK\r\n\r\ndone after eof")
        np = self.start_proxy(echo.port)
        with socket.create_connection(("127.0.0.1", np.port)) as s:
            s.sendall(b"GET /eof HTTP/1.0\r\n\r\n")
            s.shutdown(socket.SHUT_WR)
            response = recv_until_closed(s)
        self.assertEqual(response, b"HTTP/1.0 200 OK\r\n\r\ndone after eof")
        report = np.stop()
        eof = route(report, "/eof")
        self.assertEqual(eof["status"], {"200": 1})
        self.assertEqual(eof["response_body_bytes"], len(b"done after eof"), "body delimited by close")

    def test_connection_closed_before_response_is_an_error_on_that_route(self):
        echo = EchoServer(self, close_without_reply=True)
        np = self.start_proxy(echo.port)
        with socket.create_connection(("127.0.0.1", np.port)) as s:
            s.sendall(b"GET /hangs-up HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(recv_until_closed(s), b"")
        report = np.stop()
        r = route(report, "/hangs-up")
        self.assertEqual(r["count"], 1)
        self.assertEqual(r["errors"], 1)
        self.assertEqual(r["last"]["status"], 0)

    def test_answer_before_the_request_head_ends_has_a_real_latency(self):
        # A server refusing an oversized header before reading all of it (nginx's 400, a
        # canned 431): the latency runs from the request's first byte, not from an unset 0
        # (which reported the host's uptime, millions of ms).
        refusal = (b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n"
                   b"Connection: close\r\n\r\n")
        echo = EchoServer(self, reply_on_data=refusal)
        np = self.start_proxy(echo.port)
        with socket.create_connection(("127.0.0.1", np.port)) as s:
            s.sendall(b"GET /huge HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000)
            self.assertEqual(recv_until_closed(s), refusal)
        report = np.stop()
        r = route(report, "/huge")
        self.assertEqual(r["status"], {"431": 1})
        self.assertLess(r["latency_ms"]["max"], 60_000)
        self.assertLess(r["total_ms"]["max"], 60_000)
        self.assertLess(r["last"]["time_ms"], 60_000)

    def test_upstream_refused_is_counted_and_client_sees_close(self):
        np = self.start_proxy(free_port())  # nothing listens there
        with socket.create_connection(("127.0.0.1", np.port)) as s:
            s.settimeout(10)
            # The relay resets the client once the upstream connect fails, which can happen
            # before sendall() runs: a reset on either call is the expected outcome.
            try:
                s.sendall(b"GET /nobody HTTP/1.1\r\nHost: x\r\n\r\n")
                data = s.recv(100)
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            self.assertEqual(data, b"")
        report = np.stop()
        self.assertEqual(report["connections"]["upstream_failed"], 1)
        # If the relay read the request before the connect failed, it is an error on its
        # route; it may not have (the client's bytes can still be in the kernel).
        for r in report["routes"]:
            self.assertEqual((r["route"], r["errors"], r["status"]), ("/nobody", 1, {"0": 1}))
            self.assertIn("upstream", r["last"]["state"])


class ProxyWithWrk(E2ETest):
    @unittest.skipUnless(shutil.which("wrk"), "wrk is not installed (apt-get install wrk)")
    def test_counts_match_what_wrk_completed(self):
        backend = self.start_backend()
        np = self.start_proxy(backend.port)
        out = subprocess.run(["wrk", "-t1", "-c4", "-d2s", f"http://127.0.0.1:{np.port}/wrk"],
                             capture_output=True, text=True, check=True).stdout
        completed = int(out.split(" requests in ")[0].split()[-1])
        self.assertGreater(completed, 0)
        report = np.stop()
        r = route(report, "/wrk")
        ok = r["status"].get("200", 0)
        # wrk counts responses it read fully before its deadline; a response in flight on
        # each of its 4 connections at that moment was still seen by netprof.
        self.assertGreaterEqual(ok, completed)
        self.assertLessEqual(ok, completed + 4)
        self.assertEqual(r["count"], ok + r["status"].get("0", 0))


def run_on_terminal(args, timeout=60):
    """Runs netprof with stdout on a pseudo-terminal (stderr piped); returns (rc, screen
    bytes, stderr text)."""
    import pty
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([NETPROF, *args], stdout=follower, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)
        os.close(follower)
        follower = None
        screen = b""
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            screen += data
        rc = proc.wait(timeout=timeout)
        return rc, screen, proc.stderr.read().decode()
    finally:
        if follower is not None:
            os.close(follower)
        os.close(leader)


class ReportsForPeople(E2ETest):
    """A person watching `netprof demo` in a terminal gets the per-route table redrawn in
    place; pipes, files and --format json get JSON documents, one per line."""

    def test_a_terminal_gets_the_table_redrawn_in_place(self):
        rc, screen, err = run_on_terminal(["demo", "--duration", "3", "--report-interval", "1"])
        self.assertEqual(rc, 0, err)
        text = screen.decode(errors="replace")
        self.assertNotIn('{"connections"', text, "no JSON on the terminal")
        self.assertGreaterEqual(text.count("\x1b[H"), 3, "each report redraws from the top")
        last = text[text.rfind("\x1b[H"):]
        self.assertIn("COUNT", last)
        self.assertIn("GET /api/users/{id}", last)
        self.assertIn("POST /api/checkout", last)
        # The final table's counts are the final report's: /api/users/{id} was hit.
        row = re.search(r"\s(\d+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+GET /api/users/\{id\}", last)
        self.assertIsNotNone(row, last)
        self.assertGreater(int(row.group(1)), 0)

    def test_format_json_on_a_terminal_and_a_pipe_by_default(self):
        rc, screen, err = run_on_terminal(["demo", "--duration", "2", "--format", "json"])
        self.assertEqual(rc, 0, err)
        docs = [json.loads(line) for line in screen.decode().splitlines() if line.strip()]
        self.assertTrue(docs)
        self.assertEqual(docs[-1]["netprof"], 1)
        self.assertGreater(sum(r["count"] for r in docs[-1]["routes"]), 0)
        piped = subprocess.run([NETPROF, "demo", "--duration", "2"], capture_output=True,
                               text=True, timeout=60)
        self.assertEqual(piped.returncode, 0, piped.stderr)
        lines = [json.loads(line) for line in piped.stdout.splitlines() if line.strip()]
        self.assertTrue(lines, "stdout not a terminal: JSON")
        self.assertNotIn("\x1b[", piped.stdout)

    def test_table_with_a_report_file_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            p = subprocess.run([NETPROF, "demo", "--duration", "1", "--format", "table",
                                "--report-file", os.path.join(d, "r.json")],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(p.returncode, 2)
            self.assertIn("--format table", p.stderr)
            self.assertIn("--report-file", p.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "r.json")))
        bad = subprocess.run([NETPROF, "demo", "--format", "yaml"], capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("--format", bad.stderr)


class ProxyCommandLine(E2ETest):
    def test_environment_ports_of_the_origin(self):
        backend = self.start_backend()
        port = free_port()
        np = Netprof(self, ["proxy"], env={"PORT": str(port), "TARGET_PORT": str(backend.port)})
        self.assertEqual(np.wait_listening(), port)
        out = subprocess.run(["curl", "-s", f"http://127.0.0.1:{port}/env"], capture_output=True, check=True).stdout
        self.assertEqual(out, b"you asked for /env")
        self.assertEqual(route(np.stop(), "/env")["count"], 1)

    def test_bad_flags_stop_with_a_message_saying_what_to_change(self):
        for args, expect in [
            (["proxy", "--target", "127.0.0.1:99999"], "port must be a number from 0 to 65535"),
            (["proxy", "--target", "::1:80"], "brackets"),
            (["proxy", "--report-interval", "-1"], "--report-interval"),
            (["proxy", "--no-such-flag"], "--no-such-flag"),
        ]:
            p = subprocess.run([NETPROF, *args], capture_output=True, text=True, timeout=10)
            self.assertNotEqual(p.returncode, 0, args)
            self.assertIn(expect, p.stderr, args)

    # Every numeric setting of every mode, each with values that are not numbers, out of range
    # or out of order: (args, environment, text the error must contain). netprof must stop at
    # once with a non-zero code naming the setting; never start with the bad value.
    BAD_NUMBERS = [
        (["proxy", "--connect-timeout", "nan"], {}, "--connect-timeout"),
        (["proxy", "--connect-timeout", "inf"], {}, "--connect-timeout"),
        (["proxy", "--connect-timeout", "0"], {}, "--connect-timeout"),
        (["proxy", "--drain-timeout", "nan"], {}, "--drain-timeout"),
        (["proxy", "--drain-timeout", "-1"], {}, "--drain-timeout"),
        (["proxy", "--report-interval", "nan"], {}, "--report-interval"),
        (["proxy", "--report-interval", "1e-9"], {}, "--report-interval"),
        (["proxy", "--route-segment-cap", "-5"], {}, "--route-segment-cap"),
        (["proxy", "--route-segment-cap", "1.5"], {}, "--route-segment-cap"),
        (["proxy", "--max-routes", "0x10"], {}, "--max-routes"),
        (["proxy", "--max-routes", "0"], {}, "--max-routes"),
        (["proxy", "--buffer-kib", "1e3"], {}, "--buffer-kib"),
        (["proxy", "--max-connections", "-1"], {}, "--max-connections"),
        (["proxy", "--max-series", "nan"], {}, "--max-series"),
        (["proxy", "--workers", "17"], {}, "--workers"),
        (["proxy", "--workers", "1.5"], {}, "--workers"),
        (["attach", "--inbound-ports", "1", "--workers", "99"], {}, "--workers"),
        (["node", "--inbound-ports", "80", "--workers", "-1"], {}, "workers"),
        (["node", "--inbound-ports", "80"], {"NETPROF_WORKERS": "17"}, "NETPROF_WORKERS"),
        (["proxy", "--push-interval", "nan"], {}, "--push-interval"),
        (["proxy", "--metrics-duration-buckets", "1,0.5,nan"], {}, "--metrics-duration-buckets"),
        (["proxy", "--metrics-duration-buckets", "1,0.5"], {}, "--metrics-duration-buckets"),
        (["proxy", "--metrics-duration-buckets", "0,1"], {}, "--metrics-duration-buckets"),
        (["proxy", "--metrics-duration-buckets", "-1,1"], {}, "--metrics-duration-buckets"),
        (["proxy", "--metrics-size-buckets", "100,10"], {}, "--metrics-size-buckets"),
        (["proxy", "--metrics-size-buckets", "-5,10"], {}, "--metrics-size-buckets"),
        (["proxy", "--metrics-size-buckets", "inf"], {}, "--metrics-size-buckets"),
        (["attach", "--inbound-ports", "1", "--connect-timeout", "nan"], {}, "--connect-timeout"),
        (["attach", "--inbound-ports", "1", "--report-interval", "1e-9"], {}, "--report-interval"),
        (["demo", "--duration", "nan"], {}, "--duration"),
        (["demo", "--clients", "0"], {}, "--clients"),
        (["demo", "--rps", "-1"], {}, "--rps"),
        (["demo", "--drain-timeout", "nan"], {}, "--drain-timeout"),
        (["top", "--interval", "nan"], {}, "--interval"),
        (["top", "--rows", "-1"], {}, "--rows"),
        (["tap", "--rate", "nan"], {}, "--rate"),
        (["tap", "--limit", "-1"], {}, "--limit"),
        (["node", "--inbound-ports", "80", "--connect-timeout", "nan"], {}, "--connect-timeout"),
        (["node", "--inbound-ports", "80", "--connect-timeout-s", "nan"], {}, "--connect-timeout-s"),
        (["node", "--inbound-ports", "80", "--max-pods", "1e400"], {}, "--max-pods"),
        (["node", "--inbound-ports", "80", "--rescan-interval", "inf"], {}, "--rescan-interval"),
        (["node", "--inbound-ports", "80", "--max-series", "0"], {}, "--max-series"),
        (["node", "--inbound-ports", "80", "--push-interval", "nan"], {}, "--push-interval"),
        (["node", "--inbound-ports", "80"], {"NETPROF_DRAIN_TIMEOUT": "nan"},
         "NETPROF_DRAIN_TIMEOUT"),
        (["node", "--inbound-ports", "80"], {"NETPROF_DRAIN_TIMEOUT_S": "nan"},
         "NETPROF_DRAIN_TIMEOUT_S"),
        (["node", "--inbound-ports", "80"], {"NETPROF_REPORT_INTERVAL": "1e-9"},
         "NETPROF_REPORT_INTERVAL"),
        (["node", "--inbound-ports", "80", "--config", "{config}"], {}, "route_segment_cap"),
    ]

    def test_every_numeric_setting_is_checked(self):
        tmp = tempfile.mkdtemp(prefix="netprof-e2e-")
        self.addCleanup(shutil.rmtree, tmp, True)
        config = os.path.join(tmp, "bad.json")
        with open(config, "w") as f:
            f.write('{"route_segment_cap": -5}')
        common = ["--listen", "127.0.0.1:0", "--admin", "off"]
        with_ebpf = ebpf_build()
        for args, env, expect in self.BAD_NUMBERS:
            args = [a.replace("{config}", config) for a in args]
            if args[0] in ("proxy", "demo"):
                args = args + common
            if args[0] in ("attach", "node") and not with_ebpf:
                expect = NO_EBPF  # the mode is not in this build: that is the message
            with self.subTest(args=args, env=env):
                try:
                    p = subprocess.run([NETPROF, *args], capture_output=True, text=True,
                                       timeout=10, env={**os.environ, **env})
                except subprocess.TimeoutExpired:
                    self.fail(f"{args} {env}: still running after 10 s (the value was accepted)")
                self.assertNotEqual(p.returncode, 0)
                self.assertNotIn(p.returncode, (-6, 134), "aborted instead of an error")
                self.assertIn(expect, p.stderr)

    def test_ebpf_modes_are_there_or_the_build_says_it_has_none(self):
        top = subprocess.run([NETPROF, "--help"], capture_output=True, text=True, timeout=10)
        with_ebpf = ebpf_build()
        for mode in ("attach", "check", "node"):
            with self.subTest(mode=mode):
                # --help: with eBPF, anything else would really attach or run a node.
                p = subprocess.run([NETPROF, mode, "--help"], capture_output=True, text=True,
                                   timeout=10)
                if with_ebpf:
                    self.assertEqual(p.returncode, 0, p.stderr)
                    self.assertNotIn(NO_EBPF, p.stderr)
                    self.assertRegex(top.stdout, rf"\n  {mode} ")
                else:
                    self.assertEqual(p.returncode, 1, p.stderr)
                    self.assertIn(f"netprof {mode}: {NO_EBPF}", p.stderr)
                    self.assertIn("-DNETPROF_BUILD_BPF=ON", p.stderr)
        if not with_ebpf:
            self.assertIn("This build has no eBPF support", top.stdout)

    def test_node_config_pointing_at_a_folder_is_a_clear_error(self):
        # It used to abort (uncaught std::ios_failure, exit 134).
        tmp = tempfile.mkdtemp(prefix="netprof-e2e-")
        self.addCleanup(shutil.rmtree, tmp, True)
        for name in ("a.json", "b.json"):
            with open(os.path.join(tmp, name), "w") as f:
                f.write("{}")
        p = subprocess.run([NETPROF, "node", "--config", tmp, "--inbound-ports", "80"],
                           capture_output=True, text=True, timeout=10)
        if not ebpf_build():
            self.assertIn(NO_EBPF, p.stderr)
            self.skipTest("this build has no node mode (-DNETPROF_BUILD_BPF=OFF)")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("is a directory with 2 files", p.stderr)

    def test_sigterm_drains_open_exchanges_then_reports(self):
        backend = self.start_backend()
        np = self.start_proxy(backend.port, extra=["--drain-timeout", "10"])
        with socket.create_connection(("127.0.0.1", np.port)) as s:
            s.sendall(b"GET /before-stop HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_for(lambda: b"before-stop" in s.recv(4096), what="first response")
            # A request in flight when the signal comes (an idle connection would be closed).
            s.sendall(b"GET /during-drain HTTP/1.1\r\nHost: x\r\n")
            np.proc.send_signal(signal.SIGTERM)
            # The open exchange is still relayed while draining.
            s.sendall(b"Connection: close\r\n\r\n")
            self.assertIn(b"you asked for /during-drain", recv_until_closed(s))
        report = np.stop(sig=0)
        self.assertEqual(route(report, "/before-stop")["count"], 1)
        self.assertEqual(route(report, "/during-drain")["count"], 1)
        with socket.socket() as s2:
            self.assertNotEqual(s2.connect_ex(("127.0.0.1", np.port)), 0, "listener closed after stop")


class ProxyWorkers(E2ETest):
    """--workers N: N event loops behind one SO_REUSEPORT port, stats merged exactly."""

    def worker_threads(self, np):
        names = []
        for tid in os.listdir(f"/proc/{np.proc.pid}/task"):
            try:
                with open(f"/proc/{np.proc.pid}/task/{tid}/comm") as f:
                    names.append(f.read().strip())
            except OSError:
                pass
        return sorted(n for n in names if n.startswith("netprof-w"))

    def test_two_workers_count_every_request_of_many_connections_exactly(self):
        backend = self.start_backend()
        np = self.start_proxy(backend.port, ["--workers", "2"])
        self.assertIn("(2 workers)", np.stderr())
        # Worker 0 runs on the session's thread; worker 1 starts once the session serves.
        wait_for(lambda: self.worker_threads(np) == ["netprof-w1"], what="thread netprof-w1")
        connections, per_connection = 64, 5
        errors = []

        def client(i):
            try:
                with socket.create_connection(("127.0.0.1", np.port), timeout=20) as s:
                    for _ in range(per_connection):
                        s.sendall(f"GET /home?c={i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                        data = b""
                        while not data.endswith(b"you asked for /home?c=" + str(i).encode()):
                            chunk = s.recv(65536)
                            if not chunk:
                                raise AssertionError("closed early")
                            data += chunk
            except Exception as e:  # reported below
                errors.append(repr(e))
        threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        report = np.stop()
        self.assertEqual(route(report, "/home")["count"], connections * per_connection)
        self.assertEqual(report["connections"]["accepted"], connections)
        self.assertEqual(report["connections"]["active"], 0)

    def test_one_worker_keeps_a_single_loop_thread(self):
        backend = self.start_backend()
        np = self.start_proxy(backend.port, ["--workers", "1"])
        self.assertIn("(1 worker)", np.stderr())
        self.assertEqual(self.worker_threads(np), [])


class Signals(E2ETest):
    """Signals an operator or a runtime may send: none of them cuts traffic."""

    def test_sighup_and_sigusr1_write_a_report_now_and_keep_relaying(self):
        backend = self.start_backend()
        np = self.start_proxy(backend.port)  # --report-interval 0: only reports on demand
        with socket.create_connection(("127.0.0.1", np.port)) as s:
            s.sendall(b"GET /before HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_for(lambda: b"/before" in s.recv(4096), what="first response")
            self.assertFalse(os.path.exists(np.report_path))
            np.proc.send_signal(signal.SIGHUP)

            def report_with(path):
                try:
                    with open(np.report_path) as f:
                        return any(r["route"] == path for r in json.load(f)["routes"])
                except (FileNotFoundError, ValueError):
                    return False
            wait_for(lambda: report_with("/before"), what="the report SIGHUP asked for")
            # Log rotation: the file is moved away; the next report creates it again.
            os.rename(np.report_path, np.report_path + ".1")
            s.sendall(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_for(lambda: b"/after" in s.recv(4096), what="response on the same connection")
            np.proc.send_signal(signal.SIGUSR1)
            wait_for(lambda: report_with("/after"), what="the report SIGUSR1 asked for")
            for sig in (signal.SIGUSR2, signal.SIGPIPE, signal.SIGXFSZ):
                np.proc.send_signal(sig)
            s.sendall(b"GET /still HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            self.assertIn(b"you asked for /still", recv_until_closed(s))
        self.assertIsNone(np.proc.poll(), "still running after HUP, USR1, USR2, PIPE, XFSZ")
        report = np.stop()
        self.assertEqual(route(report, "/still")["count"], 1)

    def test_sigquit_stops_gracefully_like_sigterm(self):
        backend = self.start_backend()
        np = self.start_proxy(backend.port, extra=["--drain-timeout", "10"])
        with socket.create_connection(("127.0.0.1", np.port)) as s:
            s.sendall(b"GET /q HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_for(lambda: b"/q" in s.recv(4096), what="response")
        report = np.stop(sig=signal.SIGQUIT)  # exit 0 with a final report
        self.assertEqual(route(report, "/q")["count"], 1)

    def test_idle_keepalive_connection_is_closed_at_once_on_stop(self):
        backend = self.start_backend()
        # A drain timeout far longer than the test may wait: only an idle close passes.
        np = self.start_proxy(backend.port, extra=["--drain-timeout", "300"])
        with socket.create_connection(("127.0.0.1", np.port)) as idle, \
                socket.create_connection(("127.0.0.1", np.port)) as busy:
            idle.sendall(b"GET /idle HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_for(lambda: b"/idle" in idle.recv(4096), what="response")
            busy.sendall(b"GET /busy HTTP/1.1\r\nHost: x\r\n")  # a request in flight
            np.proc.send_signal(signal.SIGTERM)
            idle.settimeout(30)
            self.assertEqual(idle.recv(4096), b"", "the idle connection is closed (FIN)")
            # The exchange in flight still finishes during the drain.
            busy.sendall(b"Connection: close\r\n\r\n")
            busy.settimeout(30)
            self.assertIn(b"you asked for /busy", recv_until_closed(busy))
        report = np.stop(sig=0, timeout=30)
        self.assertEqual(route(report, "/idle")["count"], 1)
        self.assertEqual(route(report, "/busy")["errors"], 0)


class LenientButSafeParsing(E2ETest):
    """Valid HTTP that llhttp's strict defaults rejected; ambiguity that must stay rejected."""

    def test_chunk_extensions_repeated_content_length_and_invalid_status(self):
        responses = [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;a=b;c=d\r\nhello\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 000 Zero\r\nContent-Length: 4\r\n\r\nzero",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nafter",
        ]
        server = CannedServer(self, responses)
        np = self.start_proxy(server.port)
        with socket.create_connection(("127.0.0.1", np.port)) as s:
            for path, response in zip(["/ext", "/dup", "/zero", "/after"], responses):
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                got = b""
                while len(got) < len(response):
                    got += s.recv(65536)
                self.assertEqual(got, response)
        report = np.stop()
        self.assertEqual(report["connections"]["unparsed"], 0)
        for path in ("/ext", "/dup", "/after"):
            self.assertEqual((route(report, path)["status"], route(report, path)["errors"]),
                             ({"200": 1}, 0), path)
        self.assertEqual(route(report, "/zero")["errors"], 1, "status 000 is an error")

    def test_conflicting_lengths_are_relayed_and_counted_as_ambiguous(self):
        echo = EchoServer(self)
        np = self.start_proxy(echo.port)
        smuggle = (b"POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                   b"Content-Length: 40\r\n\r\nabcdGET /hidden HTTP/1.1\r\n\r\n")
        with socket.create_connection(("127.0.0.1", np.port)) as s:
            s.sendall(smuggle)
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_until_closed(s), smuggle, "relayed unchanged")
        report = np.stop()
        self.assertEqual(report["connections"]["unparsed"], 1)
        self.assertEqual(report["connections"]["ambiguous_framing"], 1)
        self.assertEqual(report["routes"], [])


class ReportDestinations(E2ETest):
    """--report-file pointing at things that are not regular files: they are written through,
    never replaced; a report that cannot be written makes the exit code non-zero."""

    def run_proxy(self, report_file, stdout=subprocess.DEVNULL):
        backend = self.start_backend()
        work = tempfile.mkdtemp(prefix="netprof-e2e-dest-")
        self.addCleanup(shutil.rmtree, work, True)
        err = open(os.path.join(work, "stderr"), "w+")
        self.addCleanup(err.close)
        proc = subprocess.Popen([NETPROF, "proxy", "--listen", "127.0.0.1:0", "--target",
                                 f"127.0.0.1:{backend.port}", "--report-interval", "0",
                                 "--report-file", report_file], stdout=stdout, stderr=err)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))

        def port():
            err.seek(0)
            m = re.search(r"relaying [^ ]*:(\d+) ->", err.read())
            if proc.poll() is not None:
                err.seek(0)
                raise AssertionError(f"netprof exited {proc.returncode}: {err.read()}")
            return int(m.group(1)) if m else None
        p = wait_for(port, what="netprof to listen")
        out = subprocess.run(["curl", "-s", f"http://127.0.0.1:{p}/dest"], capture_output=True,
                             check=True).stdout
        self.assertEqual(out, b"you asked for /dest")
        return proc, err

    def stop(self, proc, err):
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
        err.seek(0)
        return rc, err.read()

    def test_fifo_is_written_through_not_replaced(self):
        d = tempfile.mkdtemp(prefix="netprof-e2e-fifo-")
        self.addCleanup(shutil.rmtree, d, True)
        fifo = os.path.join(d, "report.fifo")
        os.mkfifo(fifo)
        got = []
        # O_RDWR keeps a writer on the FIFO so the reader does not see EOF between reports.
        fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        self.addCleanup(os.close, fd)
        proc, err = self.run_proxy(fifo)
        rc, stderr = self.stop(proc, err)
        self.assertEqual(rc, 0, stderr)
        self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO is still a FIFO")
        data = os.read(fd, 1 << 20)
        report = json.loads(data.decode().splitlines()[-1])
        self.assertEqual(route(report, "/dest")["count"], 1)

    def test_character_device_is_written_through_not_replaced(self):
        d = tempfile.mkdtemp(prefix="netprof-e2e-dev-")
        self.addCleanup(shutil.rmtree, d, True)
        null = os.path.join(d, "null")
        try:
            os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a private /dev/null
        except PermissionError:
            self.skipTest("mknod needs root (CAP_MKNOD)")
        proc, err = self.run_proxy(null)
        rc, stderr = self.stop(proc, err)
        self.assertEqual(rc, 0, stderr)
        st = os.lstat(null)
        self.assertTrue(stat.S_ISCHR(st.st_mode), "the device node is still a device node")
        self.assertEqual(st.st_rdev, os.makedev(1, 3))
        self.assertEqual(os.listdir(d), ["null"], "no temporary files left beside it")

    def test_dev_stdout_style_symlink_reaches_the_pipe(self):
        d = tempfile.mkdtemp(prefix="netprof-e2e-stdout-")
        self.addCleanup(shutil.rmtree, d, True)
        link = os.path.join(d, "stdout")
        os.symlink("/proc/self/fd/1", link)  # what /dev/stdout is, without touching /dev
        # Never the host's real /dev/stdout here: a regression would replace it for everyone.
        proc, err = self.run_proxy(link, stdout=subprocess.PIPE)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        err.seek(0)
        self.assertEqual(proc.returncode, 0, err.read())
        report = json.loads(out.decode().splitlines()[-1])
        self.assertEqual(route(report, "/dest")["count"], 1)
        self.assertTrue(os.path.islink(link))
        self.assertEqual(os.readlink(link), "/proc/self/fd/1")

    def test_symlink_to_a_regular_file_is_kept_and_its_target_replaced(self):
        d = tempfile.mkdtemp(prefix="netprof-e2e-link-")
        self.addCleanup(shutil.rmtree, d, True)
        os.mkdir(os.path.join(d, "real"))
        target = os.path.join(d, "real", "report.json")
        with open(target, "w") as f:
            f.write("old")
        link = os.path.join(d, "report.json")
        os.symlink("real/report.json", link)
        proc, err = self.run_proxy(link)
        rc, stderr = self.stop(proc, err)
        self.assertEqual(rc, 0, stderr)
        self.assertEqual(os.readlink(link), "real/report.json", "the symlink is kept")
        with open(target) as f:
            self.assertEqual(route(json.load(f), "/dest")["count"], 1)
        self.assertEqual(sorted(os.listdir(os.path.join(d, "real"))), ["report.json"])

    def test_final_report_that_cannot_be_written_makes_the_exit_code_non_zero(self):
        d = tempfile.mkdtemp(prefix="netprof-e2e-gone-")
        self.addCleanup(shutil.rmtree, d, True)
        sub = os.path.join(d, "sub")
        os.mkdir(sub)
        proc, err = self.run_proxy(os.path.join(sub, "report.json"))
        shutil.rmtree(sub)  # the directory disappears while netprof runs
        rc, stderr = self.stop(proc, err)
        self.assertNotEqual(rc, 0, "the final report was lost: say so in the exit code")
        self.assertIn("final report", stderr)
        self.assertIn(os.path.join(sub, "report.json"), stderr)

    def test_report_file_in_a_missing_directory_is_refused_at_start(self):
        d = tempfile.mkdtemp(prefix="netprof-e2e-nodir-")
        self.addCleanup(shutil.rmtree, d, True)
        for path, expect in [(os.path.join(d, "nope", "r.json"), "No such file or directory"),
                             (d, "is a directory")]:
            p = subprocess.run([NETPROF, "proxy", "--listen", "127.0.0.1:0", "--target",
                                f"127.0.0.1:{free_port()}", "--report-file", path],
                               capture_output=True, text=True, timeout=20)
            self.assertNotEqual(p.returncode, 0, path)
            self.assertIn("--report-file", p.stderr)
            self.assertIn(expect, p.stderr)


class _ThreadedServer:
    """A loopback TCP server handling each connection on its own thread with _handle(conn);
    subclasses set their attributes before calling __init__, which starts accepting."""

    def __init__(self, test):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()
        test.addCleanup(self.sock.close)

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()


class CannedServer(_ThreadedServer):
    """A raw HTTP server answering the requests of each connection (heads only, no bodies) with
    the given responses in turn, byte for byte, then closing."""

    def __init__(self, test, responses):
        self.responses = responses
        super().__init__(test)

    def _handle(self, conn):
        with conn:
            buf = b""
            for response in self.responses:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                buf = buf.split(b"\r\n\r\n", 1)[1]
                conn.sendall(response)


class EchoServer(_ThreadedServer):
    """A raw TCP server: echoes bytes back (or answers once on EOF), recording what it got."""

    def __init__(self, test, reply_on_eof=None, close_without_reply=False, reply_on_data=None):
        self.reply_on_eof = reply_on_eof
        self.close_without_reply = close_without_reply
        self.reply_on_data = reply_on_data  # sent once at the first bytes, then close
        self._received = bytearray()
        self._lock = threading.Lock()
        super().__init__(test)

    def received(self):
        with self._lock:
            return bytes(self._received)

    def _handle(self, conn):
        with conn:
            while True:
                data = conn.recv(65536)
                if self.close_without_reply and data:
                    return
                if self.reply_on_data is not None and data:
                    conn.sendall(self.reply_on_data)
                    conn.shutdown(socket.SHUT_WR)
                    while conn.recv(65536):  # read the rest, so close sends FIN, not RST
                        pass
                    return
                if not data:
                    if self.reply_on_eof:
                        conn.sendall(self.reply_on_eof)
                    return
                with self._lock:
                    self._received += data
                if not self.reply_on_eof:
                    conn.sendall(data)


if __name__ == "__main__":
    unittest.main()
