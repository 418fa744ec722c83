"""/metrics against real counterparts: promtool's linter and a real Prometheus server that
scrapes netprof and answers queries with the numbers of the traffic we sent."""
import json
import os
import re
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.parse

from outputs_harness import (ProfiledBackend, Process, free_port, http_get, require_program,
                             send_mixed_traffic, wait_for)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"

# A route whose label value needs every escape of the text format: " and \.
ODD_PATH = '/odd"quote\\back'


def send_raw(port, path):
    """curl would percent-encode the quote; send the request line exactly as written."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:  # the response head; the caller waits for the count
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk


def samples(text, name):
    """{labels-text: value} of the samples of one metric name."""
    out = {}
    for line in text.splitlines():
        m = re.match(re.escape(name) + r"(\{.*\})? (\S+)$", line)
        if m:
            out[m.group(1) or ""] = float(m.group(2))
    return out


class MetricsWithPromtool(unittest.TestCase):
    def test_promtool_accepts_metrics_and_counts_match_traffic(self):
        promtool = require_program(self, "promtool")
        backend = ProfiledBackend(self)
        send_mixed_traffic(backend, users=12, searches=5, orders=3)
        send_raw(backend.port, ODD_PATH)
        backend.wait_count("GET", ODD_PATH, 1)
        status, headers, text = http_get(backend.admin + "/metrics")
        self.assertEqual(status, 200)
        self.assertIn("version=0.0.4", headers["Content-Type"])
        lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                              text=True, timeout=30)
        self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)
        self.assertEqual(lint.stdout.strip() + lint.stderr.strip(), "", "promtool lint findings")

        counts = samples(text, "http_server_request_duration_seconds_count")
        users = '{http_request_method="GET",http_route="/api/users/{id}",http_response_status_code="200"}'
        orders = '{http_request_method="POST",http_route="/api/orders",http_response_status_code="201"}'
        self.assertEqual(counts[users], 12)
        self.assertEqual(counts[orders], 3)
        # The +Inf bucket equals the count; buckets never decrease.
        buckets = [v for k, v in samples(text, "http_server_request_duration_seconds_bucket").items()
                   if k.startswith(users[:-1])]
        self.assertEqual(buckets[-1], 12)
        self.assertEqual(buckets, sorted(buckets))
        # The raw ids and the query strings never become label values.
        self.assertNotIn("secret", text)
        self.assertNotIn("/api/users/1000", text)
        # Label escaping: " -> \" and \ -> \\.
        self.assertIn('http_route="/odd\\"quote\\\\back"', text)
        # Self metrics see the id collapse.
        collapsed = samples(text, "netprof_route_segments_collapsed_total")
        self.assertGreaterEqual(collapsed['{reason="id"}'], 12)
        self.assertGreaterEqual(samples(text, "netprof_connections_accepted_total")[""], 21)
        self.assertEqual(samples(text, "netprof_interception_active"), {'{mode="proxy"}': 1})

    def test_configured_buckets_are_used(self):
        backend = ProfiledBackend(self, ["--metrics-duration-buckets", "0.001,0.5,2"])
        self.assertEqual(backend.get("/api/search"), 200)
        backend.wait_count("GET", "/api/search", 1)
        text = http_get(backend.admin + "/metrics")[2]
        les = re.findall(r'http_server_request_duration_seconds_bucket\{[^}]*http_route="/api/search"[^}]*le="([^"]+)"', text)
        self.assertEqual(les, ["0.001", "0.5", "2", "+Inf"])


    def test_invalid_utf8_in_a_path_never_reaches_a_label(self):
        # One request with bytes that are not UTF-8 used to make promtool (and a real
        # Prometheus: "invalid UTF-8 label value") reject the whole page.
        promtool = require_program(self, "promtool")
        backend = ProfiledBackend(self)
        with socket.create_connection(("127.0.0.1", backend.port), timeout=10) as s:
            s.sendall(b"GET /bad/\xff\xfe/caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n"
                      b"Connection: close\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        backend.wait_count("GET", "/bad/%FF%FE/caf\u00e9", 1)
        text = http_get(backend.admin + "/metrics")[2]
        lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                              text=True, timeout=30)
        self.assertEqual(lint.returncode, 0, lint.stdout + lint.stderr)
        self.assertIn('http_route="/bad/%FF%FE/caf\u00e9"', text)


class MetricsWithPrometheus(unittest.TestCase):
    def query(self, base, expr):
        url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        body = json.loads(http_get(url)[2])
        self.assertEqual(body["status"], "success", body)
        return body["data"]["result"]

    def value_of(self, base, expr):
        result = self.query(base, expr)
        return float(result[0]["value"][1]) if result else None

    def test_prometheus_scrapes_netprof_and_query_matches_traffic(self):
        prometheus = require_program(self, "prometheus")
        backend = ProfiledBackend(self)
        send_mixed_traffic(backend, users=7, searches=4, orders=2)
        send_raw(backend.port, ODD_PATH)
        backend.wait_count("GET", ODD_PATH, 1)
        # One search carries a W3C trace context: its trace id becomes an exemplar.
        subprocess.run(["curl", "-s", "-o", "/dev/null", "-H", f"traceparent: {TRACEPARENT}",
                        f"http://127.0.0.1:{backend.port}/api/search?q=traced"], check=True,
                       timeout=30)
        backend.wait_count("GET", "/api/search", 5)

        work = tempfile.mkdtemp(prefix="netprof-prometheus-")
        self.addCleanup(subprocess.run, ["rm", "-rf", work])
        config = os.path.join(work, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: netprof\n    static_configs:\n"
                    f"      - targets: ['{backend.admin_hostport}']\n")
        port = free_port()
        server = Process(self, [prometheus, f"--config.file={config}",
                                "--enable-feature=exemplar-storage",
                                f"--storage.tsdb.path={os.path.join(work, 'data')}",
                                f"--web.listen-address=127.0.0.1:{port}"])
        base = f"http://127.0.0.1:{port}"

        def ready():
            if server.proc.poll() is not None:
                raise AssertionError(f"prometheus exited: {server.stderr()}")
            try:
                return http_get(base + "/-/ready", timeout=2)[0] == 200
            except OSError:
                return False
        wait_for(ready, timeout=60, what="prometheus to be ready")

        users = 'sum(http_server_request_duration_seconds_count{http_route="/api/users/{id}"})'
        wait_for(lambda: self.value_of(base, users) is not None, timeout=60,
                 what="prometheus to scrape netprof")
        self.assertEqual(self.value_of(base, users), 7)
        self.assertEqual(self.value_of(
            base, 'sum(netprof_http_requests_total{http_request_method="POST",http_route="/api/orders"})'), 2)
        self.assertEqual(self.value_of(
            base, 'sum by (http_route) (http_server_request_duration_seconds_count{http_route="/api/search"})'), 5)
        # The escaped label survives the round trip as the exact route text.
        odd = self.query(base, 'http_server_request_duration_seconds_count{http_route=~"/odd.*"}')
        self.assertEqual([r["metric"]["http_route"] for r in odd], [ODD_PATH])
        # A histogram_quantile over netprof's buckets gives a finite latency.
        p99 = self.value_of(base, 'histogram_quantile(0.99, sum by (le) '
                                  '(http_server_request_duration_seconds_bucket{http_route="/api/search"}))')
        self.assertGreater(p99, 0)
        self.assertEqual(self.value_of(base, 'up{job="netprof"}'), 1)
        # Prometheus scraped OpenMetrics and stored the traced request as an exemplar.
        def traced_exemplar():
            now = time.time()
            url = base + "/api/v1/query_exemplars?" + urllib.parse.urlencode({
                "query": 'http_server_request_duration_seconds_bucket{http_route="/api/search"}',
                "start": now - 600, "end": now + 60})
            body = json.loads(http_get(url)[2])
            self.assertEqual(body["status"], "success", body)
            return [e for series in body["data"] for e in series["exemplars"]
                    if e["labels"].get("trace_id") == TRACE_ID]
        found = wait_for(traced_exemplar, timeout=60, what="prometheus to store the exemplar")
        self.assertGreater(float(found[0]["value"]), 0)


if __name__ == "__main__":
    unittest.main()
