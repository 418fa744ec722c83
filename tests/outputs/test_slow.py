"""The flight recorder end to end, through `netprof proxy` in front of the demo backend: /slow
shows /api/search's slowest requests with their timeline and a failing /api/checkout with its
status; a request sent with a traceparent shows its trace id in /slow, in the tap and as an
exemplar of /metrics in OpenMetrics; `top --route` prints the same records."""
import http.client
import json
import re
import subprocess
import unittest
import urllib.error
import urllib.parse
import urllib.request

from outputs_harness import NETPROF, ProfiledBackend, http_get, wait_for

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def slow(backend, **params):
    query = urllib.parse.urlencode(params)
    return json.loads(http_get(backend.admin + "/slow?" + query)[2])


def traced_get(backend, path, headers):
    args = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"]
    for h in headers:
        args += ["-H", h]
    out = subprocess.run(args + [f"http://127.0.0.1:{backend.port}{path}"], check=True,
                         capture_output=True, text=True, timeout=30).stdout
    return int(out)


class FlightRecorder(unittest.TestCase):
    def test_slowest_search_and_failed_checkout_with_their_timeline(self):
        backend = ProfiledBackend(self)
        for _ in range(8):
            self.assertEqual(backend.get("/api/search?q=x"), 200)
        # The demo fails one checkout in ten, drawn per connection: one keep-alive connection.
        failed = 0
        conn = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=10)
        self.addCleanup(conn.close)
        for _ in range(300):
            conn.request("POST", "/api/checkout", body="{}")
            response = conn.getresponse()
            response.read()
            if response.status == 500:
                failed += 1
                if failed == 2:
                    break
        self.assertEqual(failed, 2, "the demo backend answered no checkout with 500")

        body = wait_for(lambda: (lambda b: b if b["routes"] and len(b["routes"][0]["slow"]) == 5 else None)(
            slow(backend, route="/api/search")), what="/slow to show /api/search")
        self.assertEqual(len(body["routes"]), 1, body)
        route = body["routes"][0]
        self.assertEqual((route["method"], route["route"]), ("GET", "/api/search"))
        records = route["slow"]
        durations = [r["duration_ms"] for r in records]
        self.assertEqual(durations, sorted(durations, reverse=True))  # slowest first
        self.assertGreaterEqual(min(durations), 20)  # the demo takes 20-80 ms here
        for r in records:
            self.assertRegex(r["request_id"], r"^\d+-\d+$")
            self.assertEqual(r["status"], 200)
            self.assertTrue(r["peer"].startswith("127.0.0.1:"), r)
            self.assertGreaterEqual(r["nth_on_connection"], 1)
            t = r["timing_ms"]
            # accept <= head <= sent <= response head <= last byte; the origin takes the time.
            self.assertLessEqual(t.get("accepted", 0), t["request_head"])
            self.assertLessEqual(t["request_head"], t["request_sent"])
            self.assertLessEqual(t["request_sent"], t["response_head"])
            self.assertLessEqual(t["response_head"], t["last_byte"])
            self.assertGreaterEqual(t["response_head"] - t["request_sent"], 15)
            self.assertGreaterEqual(r["relay_held_ms"], 0)
            self.assertNotIn("path", r)  # raw paths only with --raw-path
        # curl opens a connection per request: each record's connection was new.
        self.assertTrue(all("upstream_connected" in r["timing_ms"] for r in records))

        body = wait_for(lambda: (lambda b: b if b["routes"] and len(b["routes"][0]["failures"]) == 2 else None)(
            slow(backend, route="/api/checkout", status="5xx")), what="/slow to show the failed checkouts")
        failures = body["routes"][0]["failures"]
        self.assertEqual([f["status"] for f in failures], [500, 500])
        self.assertGreaterEqual(failures[0]["started_ms"], failures[1]["started_ms"])  # newest first
        self.assertEqual(body["routes"][0]["method"], "POST")

        # The same records under the route in /stats; filters that match nothing give nothing.
        stats = backend.stats()
        search = next(r for r in stats["routes"] if r["route"] == "/api/search")
        self.assertEqual([r["request_id"] for r in search["slow"]["slow"]],
                         [r["request_id"] for r in records])
        self.assertEqual(slow(backend, route="/api/search", min_ms=100000)["routes"], [])
        with self.assertRaises(urllib.error.HTTPError) as bad:
            http_get(backend.admin + "/slow?status=50")
        self.assertEqual(bad.exception.code, 400)

        # top prints them for a route, as Enter on it does.
        top = subprocess.run([NETPROF, "top", "--admin", backend.admin_hostport, "--route",
                              "GET /api/search"], capture_output=True, text=True, timeout=30)
        self.assertEqual(top.returncode, 0, top.stderr)
        self.assertIn("SLOWEST (this report window)", top.stdout)
        for r in records:
            self.assertIn(r["request_id"], top.stdout)

    def test_trace_id_in_slow_tap_and_exemplars(self):
        backend = ProfiledBackend(self, ["--raw-path"])
        tap = subprocess.Popen([NETPROF, "tap", "--admin", backend.admin_hostport, "--route",
                                "/api/orders", "-n", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: tap.poll() is None and (tap.kill(), tap.wait()))

        def subscribed():
            return "netprof_tap_subscribers 1" in http_get(backend.admin + "/metrics")[2]
        wait_for(subscribed, what="tap to subscribe")
        self.assertEqual(traced_get(backend, "/api/orders?secret=1",
                                    [f"traceparent: {TRACEPARENT}", "X-Request-Id: other"]), 200)
        out, err = tap.communicate(timeout=30)
        self.assertEqual(tap.returncode, 0, err)
        line = json.loads(out.splitlines()[0])
        self.assertEqual(line["trace_id"], TRACE_ID)
        self.assertRegex(line["request_id"], r"^\d+-1$")

        body = wait_for(lambda: (lambda b: b if b["routes"] else None)(slow(backend, id=TRACE_ID)),
                        what="/slow to find the traced request")
        record = body["routes"][0]["slow"][0]
        self.assertEqual(record["trace_id"], TRACE_ID)
        self.assertEqual(record["request_id"], line["request_id"])
        self.assertEqual(record["path"], "/api/orders")  # --raw-path, query dropped
        self.assertEqual(slow(backend, id=line["request_id"])["routes"][0]["slow"][0]["trace_id"],
                         TRACE_ID)

        # OpenMetrics when asked for it: the trace id is the exemplar of its duration bucket.
        request = urllib.request.Request(backend.admin + "/metrics",
                                         headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        with urllib.request.urlopen(request, timeout=10) as r:
            self.assertIn("application/openmetrics-text", r.headers["Content-Type"])
            text = r.read().decode()
        self.assertTrue(text.endswith("# EOF\n"))
        exemplar = re.search(r'^http_server_request_duration_seconds_bucket\{[^}]*http_route="/api/orders"'
                             r'[^}]*\} \d+ # \{trace_id="' + TRACE_ID + r'"\} [0-9.e-]+ \d+\.\d{3}$',
                             text, re.M)
        self.assertIsNotNone(exemplar, text)
        self.assertIn("# TYPE netprof_http_requests counter", text)  # OpenMetrics family name
        # The text format stays as it was: no exemplars.
        self.assertNotIn("trace_id", http_get(backend.admin + "/metrics")[2])

    def test_no_trace_ids_and_recorder_off(self):
        backend = ProfiledBackend(self, ["--no-trace-ids", "--slow-per-route", "0"])
        self.assertEqual(traced_get(backend, "/api/orders", [f"traceparent: {TRACEPARENT}"]), 200)
        backend.wait_count("GET", "/api/orders", 1)
        self.assertEqual(slow(backend)["routes"], [])
        request = urllib.request.Request(backend.admin + "/metrics",
                                         headers={"Accept": "application/openmetrics-text"})
        with urllib.request.urlopen(request, timeout=10) as r:
            text = r.read().decode()
        self.assertNotIn(TRACE_ID, text)
        self.assertIn('# {request_id="', text)  # the request id is the exemplar then


if __name__ == "__main__":
    unittest.main()
