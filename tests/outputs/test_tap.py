"""`netprof tap` against a running netprof: individual exchanges as JSON lines, filtered by
status and route, raw paths only on request (and never their query strings), rate-limited
with the loss reported in-band."""
import json
import socket
import subprocess
import unittest

from outputs_harness import NETPROF, ProfiledBackend, http_get, wait_for


def subscribers(backend):
    for line in http_get(backend.admin + "/metrics")[2].splitlines():
        if line.startswith("netprof_tap_subscribers "):
            return int(float(line.split()[1]))
    return 0


class TapCommand(unittest.TestCase):
    def start_tap(self, backend, *args):
        proc = subprocess.Popen([NETPROF, "tap", "--admin", backend.admin_hostport, *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        wait_for(lambda: subscribers(backend) >= 1, what="tap to subscribe")
        return proc

    def test_status_filter_raw_path_and_limit(self):
        backend = ProfiledBackend(self)
        tap = self.start_tap(backend, "--status", "404", "--raw-path", "-n", "3")
        self.assertEqual(backend.get("/api/users/5"), 200)
        for i in range(3):
            self.assertEqual(backend.get(f"/missing/{i}?token=secret"), 404)
        out, err = tap.communicate(timeout=30)
        self.assertEqual(tap.returncode, 0, err)
        lines = [json.loads(l) for l in out.splitlines()]
        self.assertEqual(len(lines), 3, out)
        for i, line in enumerate(lines):
            self.assertEqual(line["status"], 404)
            self.assertEqual(line["method"], "GET")
            self.assertEqual(line["route"], "/missing/{id}")
            self.assertEqual(line["path"], f"/missing/{i}")  # query dropped without --keep-query
            self.assertGreater(line["response_bytes"], 0)
            self.assertGreaterEqual(line["latency_ms"], 0)
        self.assertNotIn("secret", out)

    def test_secrets_never_reach_routes_labels_or_the_tap(self):
        backend = ProfiledBackend(self)
        tap = self.start_tap(backend, "--raw-path", "-n", "5")
        jwt = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
               "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
        targets = [f"/api/verify/{jwt}", "/users/alice@example.com/profile",
                   "/cart;jsessionid=0123456789ABCDEF/items", "/keys/AKIAIOSFODNN7EXAMPLE",
                   f"http://bob:hunter2@127.0.0.1:{backend.port}/proxied"]
        for target in targets:
            with socket.create_connection(("127.0.0.1", backend.port), timeout=10) as s:
                s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                data = b""
                while b"\r\n\r\n" not in data:  # the response head is enough
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        out, err = tap.communicate(timeout=30)
        self.assertEqual(tap.returncode, 0, err)
        routes = sorted(json.loads(l)["route"] for l in out.splitlines())
        self.assertEqual(routes, ["/api/verify/{redacted}", "/cart/items", "/keys/{redacted}",
                                  "/proxied", "/users/{redacted}/profile"])
        stats = http_get(backend.admin + "/stats")[2]
        metrics = http_get(backend.admin + "/metrics")[2]
        for secret in (jwt[:20], "alice@", "jsessionid", "0123456789ABCDEF", "AKIA", "hunter2"):
            self.assertNotIn(secret, stats)
            self.assertNotIn(secret, metrics)
        self.assertNotIn("hunter2", out)  # raw paths are raw, but never carry userinfo
        self.assertIn(f'"path":"http://127.0.0.1:{backend.port}/proxied"', out)

    def test_route_filter_without_raw_path(self):
        backend = ProfiledBackend(self)
        tap = self.start_tap(backend, "--route", "/api/users/{id}", "-n", "2")
        self.assertEqual(backend.get("/api/search"), 200)
        self.assertEqual(backend.get("/api/users/1"), 200)
        self.assertEqual(backend.get("/api/users/2"), 200)
        out, err = tap.communicate(timeout=30)
        self.assertEqual(tap.returncode, 0, err)
        lines = [json.loads(l) for l in out.splitlines()]
        self.assertEqual([l["route"] for l in lines], ["/api/users/{id}"] * 2)
        self.assertTrue(all("path" not in l for l in lines))

    def test_rate_limit_reports_what_it_dropped(self):
        backend = ProfiledBackend(self)
        tap = self.start_tap(backend, "--rate", "0.001")  # one line, then one per 1000 s
        for _ in range(10):
            self.assertEqual(backend.get("/api/users/9"), 200)
        backend.wait_count("GET", "/api/users/{id}", 10)
        dropped = wait_for(lambda: "netprof_tap_dropped_total 9" in http_get(backend.admin + "/metrics")[2],
                           what="9 dropped tap lines")
        self.assertTrue(dropped)
        tap.kill()
        out, _ = tap.communicate(timeout=30)
        lines = [json.loads(l) for l in out.splitlines()]
        exchanges = [l for l in lines if "route" in l]
        self.assertEqual(len(exchanges), 1)
        self.assertEqual(sum(l.get("dropped", 0) for l in lines), 9)

    def test_bad_filter_is_explained(self):
        backend = ProfiledBackend(self)
        result = subprocess.run([NETPROF, "tap", "--admin", backend.admin_hostport, "--status", "7xx"],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 2)
        self.assertIn("status filter '7xx'", result.stderr)

    def test_no_netprof_there(self):
        result = subprocess.run([NETPROF, "tap", "--admin", "127.0.0.1:1"], capture_output=True,
                                text=True, timeout=30)
        self.assertEqual(result.returncode, 1)
        self.assertIn("is netprof running", result.stderr)


if __name__ == "__main__":
    unittest.main()
