"""Pushes against a real receiver: an HTTP server in the test records what netprof POSTs.
OTLP/HTTP JSON must be a well-formed ExportMetricsServiceRequest whose counts match the
traffic; the JSON push must be the report; a receiver that fails at first gets the data
after netprof retries; a request with a traceparent is an exemplar of its duration point.
`netprof node` pushes OTLP too (a pod of a simulated node: root, eBPF)."""
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import unittest

from outputs_harness import (NETPROF, Process, ProfiledBackend, free_port, http_get,
                             send_mixed_traffic, wait_for)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class Receiver:
    """Records (path, content type, body) of every POST; answers 503 to the first `fail_first`."""

    def __init__(self, test, fail_first=0):
        self.posts, self.lock, self.fail_first, self.attempts = [], threading.Lock(), fail_first, 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.attempts += 1
                    fail = receiver.attempts <= receiver.fail_first
                    if not fail:
                        receiver.posts.append((self.path, self.headers.get("Content-Type"), body))
                self.send_response(503 if fail else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        test.addCleanup(self.server.server_close)
        test.addCleanup(self.server.shutdown)

    def bodies(self):
        with self.lock:
            return list(self.posts)


def attribute(attrs, key):
    for a in attrs:
        if a["key"] == key:
            v = a["value"]
            return v.get("stringValue", v.get("intValue"))
    return None


def otlp_points(request, metric_name):
    points = []
    for rm in request["resourceMetrics"]:
        for sm in rm["scopeMetrics"]:
            for m in sm["metrics"]:
                if m["name"] == metric_name:
                    points += m["histogram"]["dataPoints"]
    return points


class OtlpPush(unittest.TestCase):
    def test_otlp_json_payload_matches_traffic(self):
        receiver = Receiver(self)
        backend = ProfiledBackend(self, ["--otlp-endpoint", receiver.url, "--push-interval", "0.3"])
        send_mixed_traffic(backend, users=6, searches=3, orders=2)
        # One search carries a W3C trace context: its trace id becomes an exemplar.
        subprocess.run(["curl", "-s", "-o", "/dev/null", "-H", f"traceparent: {TRACEPARENT}",
                        f"http://127.0.0.1:{backend.port}/api/search?q=traced"], check=True,
                       timeout=30)
        backend.wait_count("GET", "/api/search", 4)

        def latest_with_users():
            for path, ctype, body in reversed(receiver.bodies()):
                request = json.loads(body)
                counts = {attribute(p["attributes"], "http.route"): p["count"]
                          for p in otlp_points(request, "http.server.request.duration")}
                if (counts.get("/api/users/{id}") == "6" and counts.get("/api/orders") == "2" and
                        counts.get("/api/search") == "4"):
                    return path, ctype, request
            return None
        path, ctype, request = wait_for(latest_with_users, what="an OTLP push with the traffic")
        self.assertEqual(path, "/v1/metrics")
        self.assertEqual(ctype, "application/json")
        resource = request["resourceMetrics"][0]["resource"]["attributes"]
        self.assertEqual(attribute(resource, "service.name"), "netprof")
        metric = request["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]
        self.assertEqual(metric["unit"], "s")
        self.assertEqual(metric["histogram"]["aggregationTemporality"], 2)
        points = {(attribute(p["attributes"], "http.request.method"), attribute(p["attributes"], "http.route")): p
                  for p in otlp_points(request, "http.server.request.duration")}
        orders = points[("POST", "/api/orders")]
        self.assertEqual(orders["count"], "2")
        self.assertEqual(attribute(orders["attributes"], "http.response.status_code"), "201")
        for p in points.values():
            self.assertEqual(len(p["bucketCounts"]), len(p["explicitBounds"]) + 1)
            self.assertEqual(sum(int(c) for c in p["bucketCounts"]), int(p["count"]))
            self.assertLessEqual(int(p["startTimeUnixNano"]), int(p["timeUnixNano"]))
        sizes = otlp_points(request, "http.server.request.body.size")
        order_sizes = [p for p in sizes if attribute(p["attributes"], "http.route") == "/api/orders"]
        self.assertEqual(order_sizes[0]["sum"], sum(len('{"item":%d}' % i) for i in range(2)))
        self.assertFalse([p for p in sizes if "exemplars" in p], "no exemplars on body sizes")
        # The traced search is its bucket's exemplar, by trace id; the other requests are
        # exemplars by netprof's request id.
        search = points[("GET", "/api/search")]
        traced = [e for e in search.get("exemplars", []) if "traceId" in e]
        self.assertEqual([e["traceId"] for e in traced], [TRACE_ID], search)
        self.assertLessEqual(int(traced[0]["timeUnixNano"]), int(search["timeUnixNano"]))
        self.assertGreater(traced[0]["asDouble"], 0)
        ids = [a["value"]["stringValue"] for e in points[("POST", "/api/orders")]["exemplars"]
               for a in e["filteredAttributes"] if a["key"] == "netprof.request_id"]
        self.assertTrue(ids and all(re.fullmatch(r"\d+-\d+", i) for i in ids), ids)


class JsonPush(unittest.TestCase):
    def test_report_is_posted_and_retried_after_failures(self):
        receiver = Receiver(self, fail_first=2)
        backend = ProfiledBackend(self, ["--push-url", receiver.url + "/ingest", "--push-interval", "0.3"])
        send_mixed_traffic(backend, users=4, searches=2, orders=1)

        def report_with_traffic():
            for path, ctype, body in reversed(receiver.bodies()):
                report = json.loads(body)
                routes = {(r["method"], r["route"]): r["count"] for r in report["routes"]}
                if routes.get(("GET", "/api/users/{id}")) == 4:
                    return path, ctype, report, routes
            return None
        path, ctype, report, routes = wait_for(report_with_traffic, what="a JSON push with the traffic")
        self.assertEqual(path, "/ingest")
        self.assertEqual(ctype, "application/json")
        self.assertEqual(report["netprof"], 1)
        self.assertEqual(routes[("POST", "/api/orders")], 1)
        self.assertEqual(routes[("GET", "/api/search")], 2)
        self.assertGreaterEqual(receiver.attempts, 3)
        # The failures were retried, and netprof says so in its self metrics.
        metrics = http_get(backend.admin + "/metrics")[2]
        self.assertIn('netprof_push_failed_attempts_total{target="json"} 2', metrics)
        self.assertRegex(metrics, r'netprof_push_sent_total\{target="json"\} [1-9]')

    def test_unreachable_collector_never_blocks_the_relay(self):
        # Nothing listens on this port: every push fails, the relay keeps answering.
        receiver = Receiver(self)
        dead = receiver.url
        receiver.server.server_close()
        backend = ProfiledBackend(self, ["--push-url", dead, "--push-interval", "0.1"])
        send_mixed_traffic(backend, users=30, searches=0, orders=0)
        metrics = wait_for(lambda: (m := http_get(backend.admin + "/metrics")[2]) and
                           'netprof_push_failed_attempts_total{target="json"} 0' not in m and m,
                           what="failed push attempts to be counted")
        self.assertIn('netprof_push_sent_total{target="json"} 0', metrics)


def cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[fields.index("-") + 1] == "cgroup2":
                return fields[4]
    return None


class OtlpPushFromNode(unittest.TestCase):
    """`netprof node --otlp-endpoint` pushes a pod's traffic (node used to drop the setting).
    The node: a kubepods cgroup tree (cgroupfs layout) below a test directory, one pod in it (a
    netns and a UTS namespace of its own, python's http.server as its app); clients inside the
    pod connect to 127.0.0.1, which sk_lookup steers to netprof like any inbound connection."""

    UID = "0a1b2c3d-0000-4000-8000-0000000000f1"

    def setUp(self):
        why = None
        if os.geteuid() != 0:
            why = "not root (netns, cgroups, BPF)"
        elif subprocess.run([NETPROF, "check"], capture_output=True).returncode != 0:
            why = "`netprof check` says this kernel cannot intercept"
        elif cgroup2_mount() is None:
            why = "no cgroup2 mount"
        elif shutil.which("unshare") is None or shutil.which("ip") is None:
            why = "needs ip and unshare"
        if why:
            if os.environ.get("NETPROF_REQUIRE_BPF") == "1":
                self.fail(f"node mode unavailable with NETPROF_REQUIRE_BPF=1: {why}")
            raise unittest.SkipTest(why)

    def make_pod(self, port):
        """The pod's netns, its cgroup directories and its app; all removed at cleanup."""
        name = f"netprof-otlp-{os.getpid()}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.addCleanup(subprocess.run, ["ip", "netns", "del", name])
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        root = os.path.join(cgroup2_mount(), name + "-node")
        container = os.path.join(root, "kubepods", "besteffort", "pod" + self.UID,
                                 self.UID.replace("-", "") * 2)
        os.makedirs(container)

        def remove_tree():  # cgroup directories go with rmdir, deepest first, once empty
            for d, _, _ in sorted(os.walk(root), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        self.addCleanup(remove_tree)
        # ip netns exec and unshare exec in place: the app keeps this pid.
        app = Process(self, ["ip", "netns", "exec", name, "unshare", "--uts", "sh", "-c",
                             f"hostname web-otlp && exec python3 -m http.server {port} "
                             "--bind 127.0.0.1"], cwd="/")
        self.in_pod = ["ip", "netns", "exec", name]
        wait_for(lambda: subprocess.run([*self.in_pod, "curl", "-s", "-o", "/dev/null",
                                         f"http://127.0.0.1:{port}/"]).returncode == 0,
                 what="the pod's app to serve")
        # Only a serving app joins the pod's cgroup, so netprof never steers a connection early.
        with open(os.path.join(container, "cgroup.procs"), "w") as f:
            f.write(str(app.proc.pid))
        return root

    def test_node_pushes_the_pods_traffic(self):
        receiver = Receiver(self)
        port = free_port()
        root = self.make_pod(port)
        node = Process(self, [NETPROF, "node", "--cgroup-root", root, "--inbound-ports", str(port),
                              "--host-netns", "/proc/self/ns/net", "--rescan-interval", "1",
                              "--admin", "off", "--report-interval", "0",
                              "--otlp-endpoint", receiver.url, "--push-interval", "0.3",
                              "--service-name", "shop-node"])
        node.wait_stderr(r"uid " + self.UID + r" .*: attached", "netprof node to attach the pod")
        for i in range(3):
            subprocess.run([*self.in_pod, "curl", "-s", "-o", "/dev/null",
                            f"http://127.0.0.1:{port}/otlp/{1000 + i}"], check=True)

        def push_with_the_traffic():
            for path, ctype, body in reversed(receiver.bodies()):
                request = json.loads(body)
                for p in otlp_points(request, "http.server.request.duration"):
                    if (attribute(p["attributes"], "http.route") == "/otlp/{id}" and
                            p["count"] == "3"):
                        return path, ctype, request, p
            return None
        path, ctype, request, point = wait_for(push_with_the_traffic,
                                               what="an OTLP push from node with the pod's traffic")
        self.assertEqual(path, "/v1/metrics")
        self.assertEqual(ctype, "application/json")
        resource = request["resourceMetrics"][0]["resource"]["attributes"]
        self.assertEqual(attribute(resource, "service.name"), "shop-node")
        self.assertEqual(attribute(point["attributes"], "http.request.method"), "GET")
        self.assertEqual(attribute(point["attributes"], "http.response.status_code"), "404")
        node.proc.terminate()
        self.assertEqual(node.proc.wait(timeout=20), 0, node.stderr())


if __name__ == "__main__":
    unittest.main()
