"""HTTP/2 and gRPC with real peers, through `netprof proxy` and through `netprof attach`:
nginx's http2 listener (prior knowledge), a python3-h2 server (h2c Upgrade), curl, nghttp,
h2load and a Python gRPC server and client (unary, server streaming, a failing status sent
trailers-only, deadline exceeded, a stream cancelled mid-call, many concurrent calls).
Each test skips with the reason when its peer is not installed (scripts/install-deps --test);
the attach classes skip when this kernel or user cannot intercept (a failure with
NETPROF_REQUIRE_BPF=1)."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import urllib.request

from harness import NETPROF, E2ETest, Netprof, free_port, route, start_process, wait_for

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python3-grpcio and python3-h2 are installed for it
HERE = os.path.dirname(os.path.abspath(__file__))


def need(tool):
    path = shutil.which(tool) or (tool if os.path.exists(tool) else None)
    if not path:
        raise unittest.SkipTest(f"{tool} not installed (scripts/install-deps --test)")
    return path


def attach_unavailable():
    """Why `netprof attach` cannot run here, or None."""
    if os.geteuid() != 0:
        return "not root"
    if subprocess.run([NETPROF, "check"], capture_output=True).returncode != 0:
        return "`netprof check` says this kernel cannot intercept"
    return None


class H2Test(E2ETest):
    MODE = "proxy"

    def setUp(self):
        if self.MODE == "attach":
            why = attach_unavailable()
            if why:
                if os.environ.get("NETPROF_REQUIRE_BPF") == "1":
                    self.fail(f"attach unavailable with NETPROF_REQUIRE_BPF=1: {why}")
                raise unittest.SkipTest(why)

    def start_netprof(self, port, extra=()):
        """netprof in this class's mode in front of `port`; returns it and where clients go."""
        extra = ["--admin", "127.0.0.1:0", *extra]
        if self.MODE == "proxy":
            np = self.start_proxy(port, extra)
            return np, np.port
        np = Netprof(self, ["attach", "--inbound-ports", str(port), "--no-ipv6",
                            "--drain-timeout", "1", *extra])

        def intercepting():
            if np.proc.poll() is not None:
                raise AssertionError(f"netprof exited {np.proc.returncode}: {np.stderr()}")
            return "netprof: intercepting" in np.stderr()
        wait_for(intercepting, timeout=30, what="netprof attach to intercept")
        return np, port

    def admin(self, np):
        return re.search(r"admin API on http://([^/]+)/", np.stderr()).group(1)

    def start_process(self, args, **kw):
        return start_process(self, args, **kw)

    def curl(self, option, *urls):
        """Fetches the URLs on one connection; returns "status version" per URL."""
        args = [need("curl"), "-s", option, "-w", "%{http_code} %{http_version}\n"]
        for url in urls:
            args += ["-o", "/dev/null", url]
        out = subprocess.run(args, capture_output=True, text=True, timeout=30)
        return out.stdout.split("\n")[:-1]

    def start_nginx(self):
        nginx = need("/usr/sbin/nginx")
        d = tempfile.mkdtemp(prefix="netprof-h2-nginx-")
        self.addCleanup(shutil.rmtree, d, True)
        port = free_port()
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(f"""
daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off; client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
  uwsgi_temp_path {d}; scgi_temp_path {d};
  server {{
    listen 127.0.0.1:{port} http2;
    http2_max_concurrent_streams 128;
    location = /missing {{ return 404 "nope"; }}
    location /fail {{ return 500 "boom"; }}
    location / {{ return 200 "hello from nginx h2"; }}
  }}
}}
""")
        self.start_process([nginx, "-p", d, "-c", os.path.join(d, "nginx.conf")],
                           stderr=subprocess.DEVNULL)
        wait_for(lambda: os.path.exists(os.path.join(d, "nginx.pid")), what="nginx")
        return port

    def assert_no_unparsed(self, report):
        self.assertEqual(report["connections"]["unparsed"], 0, report["connections"])
        self.assertEqual(report["connections"]["untracked_streams"], 0, report["connections"])


class H2PriorKnowledge(H2Test):
    def test_curl_and_nghttp_against_nginx(self):
        port = self.start_nginx()
        np, client_port = self.start_netprof(port)
        base = f"http://127.0.0.1:{client_port}"
        self.assertEqual(self.curl("--http2-prior-knowledge", f"{base}/users/1"), ["200 2"])
        # nghttp: several URLs as concurrent streams of one connection, with its PRIORITY tree
        out = subprocess.run([need("nghttp"), "-n", "--stat", f"{base}/users/2", f"{base}/users/3",
                              f"{base}/missing", f"{base}/fail"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        codes = sorted(line.split()[4] for line in out.stdout.splitlines() if line.strip().endswith(
            ("/users/2", "/users/3", "/missing", "/fail")))
        self.assertEqual(codes, ["200", "200", "404", "500"], out.stdout)
        report = np.stop()
        self.assert_no_unparsed(report)
        users = route(report, "/users/{id}")
        self.assertEqual(users["count"], 3)
        self.assertEqual(users["status"], {"200": 3})
        self.assertEqual(users["protocol"], "h2")
        self.assertNotIn("grpc_status", users)
        self.assertEqual(users["response_body_bytes"], 3 * len("hello from nginx h2"))
        self.assertGreater(users["latency_ms"]["max"], 0)
        self.assertEqual(route(report, "/missing")["status"], {"404": 1})
        fail = route(report, "/fail")
        self.assertEqual((fail["status"], fail["errors"]), ({"500": 1}, 1))

    def test_h2load_many_streams(self):
        h2load = need("h2load")
        port = self.start_nginx()
        np, client_port = self.start_netprof(port)
        out = subprocess.run([h2load, "-n", "2000", "-c", "4", "-m", "32",
                              f"http://127.0.0.1:{client_port}/load"],
                             capture_output=True, text=True, timeout=120)
        self.assertIn("2000 succeeded", out.stdout, out.stdout)
        report = np.stop()
        self.assert_no_unparsed(report)
        load = route(report, "/load")
        self.assertEqual(load["count"], 2000)
        self.assertEqual(load["status"], {"200": 2000})
        self.assertEqual(load["errors"], 0)
        self.assertEqual(load["response_body_bytes"], 2000 * len("hello from nginx h2"))


class H2cUpgrade(H2Test):
    def test_curl_http2_upgrade(self):
        if subprocess.run([SYSTEM_PYTHON, "-c", "import h2"], capture_output=True).returncode:
            raise unittest.SkipTest("python3-h2 not installed for /usr/bin/python3")
        server = self.start_process([SYSTEM_PYTHON, os.path.join(HERE, "h2c_server.py")],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        port = int(server.stdout.readline())
        np, client_port = self.start_netprof(port)
        base = f"http://127.0.0.1:{client_port}"
        # The first request is the Upgrade (stream 1); the second goes as HTTP/2 on the same
        # connection.
        out = self.curl("--http2", f"{base}/index.html", f"{base}/missing")
        self.assertEqual(out, ["200 2", "404 2"])
        report = np.stop()
        self.assert_no_unparsed(report)
        index = route(report, "/index.html")
        self.assertEqual((index["count"], index["status"], index["protocol"]), (1, {"200": 1}, "h2"))
        self.assertEqual(index["response_body_bytes"], len("upgraded"))
        self.assertEqual(route(report, "/missing")["status"], {"404": 1})
        self.assertFalse([r for r in report["routes"] if "101" in r["status"]])


class Grpc(H2Test):
    def test_python_grpc_calls(self):
        if subprocess.run([SYSTEM_PYTHON, "-c", "import grpc"], capture_output=True).returncode:
            raise unittest.SkipTest("python3-grpcio not installed for /usr/bin/python3")
        server = self.start_process([SYSTEM_PYTHON, os.path.join(HERE, "grpc_peer.py"), "serve"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        port = int(server.stdout.readline())
        np, client_port = self.start_netprof(port)
        out = subprocess.run([SYSTEM_PYTHON, os.path.join(HERE, "grpc_peer.py"), "call",
                              str(client_port)], capture_output=True, text=True, timeout=120)
        self.assertEqual(out.stdout.splitlines(), [
            "SayHello hello you", "SayHello hello you", "SayHello hello you",
            "Count ['0', '1', '2']", "Fail NOT_FOUND", "Fail NOT_FOUND", "Slow DEADLINE_EXCEEDED",
            "Ticks ['0', '1'] CANCELLED", "Burst 200",
        ], out.stderr)

        # The same counts in every output, once the workers' counts reached the aggregator.
        admin = self.admin(np)

        def stats():
            s = json.load(urllib.request.urlopen(f"http://{admin}/stats", timeout=10))
            b = [r for r in s["routes"] if r["route"] == "/demo.v1.Greeter/Burst"]
            return s if b and b[0]["count"] == 200 else None
        live = wait_for(stats, timeout=15, what="/stats to count the burst")
        metrics = urllib.request.urlopen(f"http://{admin}/metrics", timeout=10).read().decode()
        series = ('rpc_server_call_duration_seconds_count{rpc_system="grpc",'
                  'rpc_service="demo.v1.Greeter",')
        self.assertIn(series + 'rpc_method="SayHello",rpc_grpc_status_code="0"} 3', metrics)
        self.assertIn(series + 'rpc_method="Fail",rpc_grpc_status_code="5"} 2', metrics)
        self.assertIn(series + 'rpc_method="Burst",rpc_grpc_status_code="0"} 200', metrics)
        self.assertIn(series + 'rpc_method="Count",rpc_grpc_status_code="0"} 1', metrics)
        # gRPC calls stay HTTP requests too; methods are never templated
        self.assertIn('netprof_http_requests_total{http_request_method="POST",'
                      'http_route="/demo.v1.Greeter/SayHello",http_response_status_code="200"} 3',
                      metrics)
        self.assertEqual(re.findall(r'http_route="[^"]*\{[^"]*"', metrics), [])
        promtool = shutil.which("promtool")
        if promtool:
            lint = subprocess.run([promtool, "check", "metrics"], input=metrics,
                                  capture_output=True, text=True)
            self.assertNotIn("error", (lint.stdout + lint.stderr).lower(), lint.stdout + lint.stderr)

        report = np.stop()
        # Periodic/final report and /stats agree
        for doc in (live, report):
            self.assert_no_unparsed(doc)
            hello = route(doc, "/demo.v1.Greeter/SayHello", "POST")
            self.assertEqual((hello["count"], hello["errors"]), (3, 0))
            self.assertEqual((hello["grpc_status"], hello["status"]), ({"0": 3}, {"200": 3}))
            self.assertEqual(hello["protocol"], "h2")
            count = route(doc, "/demo.v1.Greeter/Count", "POST")
            self.assertEqual((count["count"], count["errors"], count["grpc_status"]),
                             (1, 0, {"0": 1}))
            # trailers-only: HEADERS with :status 200 and grpc-status 5, END_STREAM
            fail = route(doc, "/demo.v1.Greeter/Fail", "POST")
            self.assertEqual((fail["count"], fail["errors"], fail["grpc_status"], fail["status"]),
                             (2, 2, {"5": 2}, {"200": 2}))
            # deadline: the server's DEADLINE_EXCEEDED (4) or the client's RST_STREAM, whichever
            # the relay saw first; an error either way
            slow = route(doc, "/demo.v1.Greeter/Slow", "POST")
            self.assertEqual((slow["count"], slow["errors"]), (1, 1))
            self.assertIn(slow["grpc_status"], ({}, {"4": 1}))
            # cancelled mid-stream: the client's RST_STREAM ends it without a status
            ticks = route(doc, "/demo.v1.Greeter/Ticks", "POST")
            self.assertEqual((ticks["count"], ticks["errors"], ticks["grpc_status"]),
                             (1, 1, {}))
            burst = route(doc, "/demo.v1.Greeter/Burst", "POST")
            self.assertEqual((burst["count"], burst["errors"], burst["grpc_status"]),
                             (200, 0, {"0": 200}))
            self.assertEqual(burst["request_body_bytes"], sum(5 + len(b"%d" % i)
                                                              for i in range(200)))
            self.assertEqual(burst["response_body_bytes"], burst["request_body_bytes"])
            self.assertEqual(len([r for r in doc["routes"] if "grpc_status" in r]), 6)


class AttachH2PriorKnowledge(H2PriorKnowledge):
    MODE = "attach"


class AttachH2cUpgrade(H2cUpgrade):
    MODE = "attach"


class AttachGrpc(Grpc):
    MODE = "attach"


if __name__ == "__main__":
    unittest.main()
