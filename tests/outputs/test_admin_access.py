"""Who can reach what on the admin API: a non-loopback --admin needs a token, --metrics-address
serves only /metrics and /healthz, the token is checked and never printed, foreign Host names
are refused (DNS rebinding), and slow clients cannot starve /healthz."""
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

from outputs_harness import NETPROF, Process, free_port


def get(url, headers=None, timeout=10):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def raw(hostport, request, timeout=10):
    host, port = hostport.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(request)
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return out
            out += chunk


class AdminAccess(unittest.TestCase):
    def start(self, *args, env=None):
        p = Process(self, [NETPROF, "proxy", "--listen", "127.0.0.1:0", "--target",
                           f"127.0.0.1:{free_port()}", "--report-interval", "0", *args],
                    env={**os.environ, **(env or {})})
        return p

    def test_non_loopback_admin_without_token_is_refused(self):
        p = subprocess.run([NETPROF, "proxy", "--listen", "127.0.0.1:0", "--target", "127.0.0.1:1",
                            "--admin", "0.0.0.0:0"], capture_output=True, text=True, timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--metrics-address", p.stderr)
        self.assertIn("--admin-token-file", p.stderr)

    def test_metrics_address_serves_only_metrics_and_healthz(self):
        p = self.start("--admin", "off", "--metrics-address", "127.0.0.1:0")
        m = p.wait_stderr(r"metrics on http://([^/]+)/", "metrics listener").group(1)
        self.assertEqual(get(f"http://{m}/healthz")[0], 200)
        status, body = get(f"http://{m}/metrics")
        self.assertEqual(status, 200)
        self.assertIn("netprof_uptime_seconds", body)
        for path in ("/", "/stats", "/tap", "/api/series"):
            self.assertEqual(get(f"http://{m}{path}")[0], 404, path)

    def test_token_is_required_checked_and_never_printed(self):
        token = "s3cr3t-" + os.urandom(8).hex()
        tmp = tempfile.mkdtemp(prefix="netprof-outputs-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, "token")
        with open(path, "w") as f:
            f.write(token + "\n")
        p = self.start("--admin", "0.0.0.0:0", "--admin-token-file", path)
        admin = p.wait_stderr(r"admin API on http://([^/]+)/", "admin API").group(1)
        port = admin.rsplit(":", 1)[1]
        base = f"http://127.0.0.1:{port}"
        self.assertEqual(get(base + "/stats")[0], 401)
        self.assertEqual(get(base + "/stats", {"Authorization": "Bearer wrong"})[0], 401)
        self.assertEqual(get(base + "/stats", {"Authorization": f"Bearer {token}"})[0], 200)
        self.assertEqual(get(base + "/healthz")[0], 200)
        self.assertEqual(get(base + "/metrics")[0], 200)
        top = subprocess.run([NETPROF, "top", "--once", "--admin", f"127.0.0.1:{port}"],
                             capture_output=True, text=True, timeout=20,
                             env={**os.environ, "NETPROF_ADMIN_TOKEN": token})
        self.assertEqual(top.returncode, 0, top.stderr)
        p.kill()
        self.assertNotIn(token, p.stderr())

    def test_foreign_host_names_are_refused(self):
        p = self.start("--admin", "127.0.0.1:0", "--admin-allow-host", "netprof.example")
        admin = p.wait_stderr(r"admin API on http://([^/]+)/", "admin API").group(1)
        def status(host):
            out = raw(admin, f"GET /stats HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            return int(out.split(b" ", 2)[1])
        self.assertEqual(status("rebind.attacker.example"), 403)
        self.assertEqual(status("localhost:9464"), 200)
        self.assertEqual(status(admin), 200)
        self.assertEqual(status("netprof.example"), 200)

    def test_healthz_answers_while_128_slow_clients_hold_the_port(self):
        p = self.start("--admin", "127.0.0.1:0")
        admin = p.wait_stderr(r"admin API on http://([^/]+)/", "admin API").group(1)
        host, port = admin.rsplit(":", 1)
        slow = []
        self.addCleanup(lambda: [s.close() for s in slow])
        for _ in range(128):
            s = socket.create_connection((host, int(port)), timeout=10)
            s.sendall(b"GET /stats HTTP/1.1\r\n")
            slow.append(s)
        stop = threading.Event()

        def trickle():  # a byte every second on each: the old per-byte timeout never fired
            while not stop.is_set():
                for s in slow:
                    try:
                        s.send(b"X", socket.MSG_DONTWAIT)
                    except OSError:
                        pass
                stop.wait(1)
        t = threading.Thread(target=trickle)
        t.start()
        try:
            for _ in range(3):
                self.assertEqual(get(f"http://{admin}/healthz", timeout=10), (200, "ok\n"))
                time.sleep(0.5)
        finally:
            stop.set()
            t.join()

    def test_request_with_a_body_is_answered_once_and_closed(self):
        p = self.start("--admin", "127.0.0.1:0")
        admin = p.wait_stderr(r"admin API on http://([^/]+)/", "admin API").group(1)
        out = raw(admin, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"0\r\n\r\nGET /stats HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        self.assertEqual(out.count(b"HTTP/1.1 "), 1, out)
        self.assertTrue(out.startswith(b"HTTP/1.1 413"), out)
