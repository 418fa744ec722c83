"""A stalled relay worker (the NETPROF_TEST_HOOKS=1 stall hook) through `netprof proxy`: every
byte of every connection still arrives unchanged, the loop lag shows in /metrics and /stats,
and proxy mode says it has nothing to detach. Without the variable the hook does not exist.
(The detachment itself needs BPF: tests/node/overload_test.cc.)"""
import hashlib
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

from harness import (E2ETest, Netprof, free_port, pod_netns, skip_or_fail, start_process,
                     wait_for)


# No HTTP proxy from the environment: every address here is local or a test netns.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def admin_get(port, path):
    with OPENER.open(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.read().decode()


def admin_post(port, path):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST", data=b"")
    try:
        with OPENER.open(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def post_and_check(port, body, errors):
    """One POST on its own connection; the backend answers the SHA-256 of what it got."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      b"Content-Length: %d\r\n\r\n" % len(body) + body)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        if not data.endswith(hashlib.sha256(body).hexdigest().encode()):
            errors.append(f"{len(body)} bytes: got {data[-80:]!r}")
    except Exception as e:  # reported by the test
        errors.append(repr(e))


class StalledWorker(E2ETest):
    def test_bytes_arrive_unchanged_while_the_loop_is_stalled(self):
        backend = self.start_backend()
        np = self.start_proxy(backend.port, ["--admin", "127.0.0.1:0", "--workers", "1",
                                             "--stats-interval", "0.2"],
                              env={"NETPROF_TEST_HOOKS": "1"})
        admin = np.wait_admin()
        self.assertIn("NETPROF_TEST_HOOKS=1", np.stderr())
        # Every turn of the loop sleeps 40 ms for the next 30 s (idle turns too).
        self.assertEqual(admin_post(admin, "/debug/stall?ms=40&seconds=30"), 200)
        rng = random.Random(7)
        bodies = [rng.randbytes(n)
                  for n in (0, 1, 1000, 65535, 65536, 300_000, 1_000_000) for _ in range(2)]
        errors = []
        threads = [threading.Thread(target=post_and_check, args=(np.port, b, errors))
                   for b in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])

        # The stall shows as long turns in the lag histogram, and in /stats.
        def long_turns():
            text = admin_get(admin, "/metrics")
            for line in text.splitlines():
                if line.startswith('netprof_relay_loop_lag_seconds_bucket{worker="0",le="0.025"}'):
                    below = float(line.split()[-1])
                if line.startswith('netprof_relay_loop_lag_seconds_count{worker="0"}'):
                    total = float(line.split()[-1])
            return total - below > 0
        wait_for(long_turns, what="turns longer than 25 ms in netprof_relay_loop_lag_seconds")
        stats = json.loads(admin_get(admin, "/stats"))
        relay = stats["relay"]
        self.assertGreaterEqual(relay["workers"][0]["lag_max_recent_s"], 0.04)
        self.assertGreaterEqual(relay["added_s"]["count"], len(bodies))
        self.assertFalse(relay["overload"]["enabled"])
        self.assertIn("nothing to detach", relay["overload"]["note"])
        self.assertEqual(relay["overload"]["pods"], [])
        metrics = admin_get(admin, "/metrics")
        self.assertIn('netprof_interception_active{mode="proxy"} 1', metrics)
        self.assertIn("netprof_overload_detaches_total 0", metrics)
        self.assertEqual(admin_post(admin, "/debug/stall?ms=0&seconds=0"), 200)
        report = np.stop()
        self.assertEqual(report["connections"]["accepted"], len(bodies))

    def test_the_hook_does_not_exist_without_the_variable(self):
        backend = self.start_backend()
        np = self.start_proxy(backend.port, ["--admin", "127.0.0.1:0"])
        admin = np.wait_admin()
        self.assertNotIn("NETPROF_TEST_HOOKS", np.stderr())
        self.assertEqual(admin_post(admin, "/debug/stall?ms=100&seconds=5"), 405)
        try:
            admin_get(admin, "/debug/stall?ms=100&seconds=5")
            self.fail("GET /debug/stall answered")
        except urllib.error.HTTPError as e:
            self.assertEqual(e.code, 404)


class AttachStalled(unittest.TestCase):
    """`netprof attach` on a pod-like netns: a stalled worker gets the pod detached (new
    connections straight to the app, not counted), and re-attached after the cool-down."""

    def test_detached_while_stalled_and_reattached_after(self):
        ns, pod_ip = pod_netns(self, "ovl", 252)
        port = free_port()
        www = tempfile.mkdtemp(prefix="netprof-ovl-")
        self.addCleanup(shutil.rmtree, www, True)
        start_process(self, ["ip", "netns", "exec", ns, sys.executable, "-m", "http.server",
                             "--bind", pod_ip, "--directory", www, str(port)],
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def get(path):
            """The status the app answered (its http.server says 404 to every path)."""
            try:
                with OPENER.open(f"http://{pod_ip}:{port}{path}", timeout=20) as r:
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code
            except OSError:
                return None
        wait_for(lambda: get("/ready") == 404, timeout=20, what="the app in the netns")

        netns = f"/run/netns/{ns}"
        np = Netprof(self, ["attach", "--netns", netns, "--inbound-ports", str(port),
                            "--admin", "127.0.0.1:0", "--workers", "1",
                            "--stats-interval", "0.2", "--overload-lag", "0.05",
                            "--overload-for", "0.6", "--overload-cooldown", "10"],
                     env={"NETPROF_TEST_HOOKS": "1"})

        def intercepting():
            if np.proc.poll() is not None:
                return "exited"
            return "ok" if "intercepting" in np.stderr() else None
        if wait_for(intercepting, timeout=30, what="netprof attach") == "exited":
            skip_or_fail(self, "netprof attach could not run here: "
                         f"{np.stderr().strip().splitlines()[-1:]}")
        admin = np.wait_admin()

        def stats():
            return json.loads(admin_get(admin, "/stats"))

        def count(s, path):
            return sum(r["count"] for r in s["routes"] if r["route"] == path)

        def state(s):
            pods = s["relay"]["overload"]["pods"]
            return pods[0]["state"] if pods else None
        self.assertEqual(get("/before"), 404)
        wait_for(lambda: count(stats(), "/before") == 1 and state(stats()) == "attached",
                 what="/before counted, the pod attached")

        # Inbound traffic is scope 0: every turn serving it sleeps 120 ms; clients keep coming.
        self.assertEqual(admin_post(admin, "/debug/stall?ms=120&seconds=30&scope=0"), 200)
        answers = []
        driving = threading.Event()
        driving.set()

        def drive():
            while driving.is_set():
                answers.append(get("/stalled"))
        driver = threading.Thread(target=drive)
        driver.start()
        try:
            wait_for(lambda: state(stats()) == "detached", timeout=20, what="the pod detached")
        finally:
            driving.clear()
            driver.join()
        self.assertTrue(answers)
        self.assertEqual(set(answers), {404}, "a request was lost while stalled or detached")
        admin_post(admin, "/debug/stall?ms=0&seconds=0")
        self.assertIn(f"overload: detached pod {netns}", np.stderr())
        metrics = admin_get(admin, "/metrics")
        self.assertIn(f'netprof_interception_active{{mode="attach",pod="{netns}"}} 0', metrics)
        self.assertIn('netprof_interception_active{mode="attach"} 0', metrics)
        self.assertIn("netprof_overload_detaches_total 1", metrics)

        # Detached: answered by the app, never seen by the relay. The cool-down (10 s) leaves
        # room for a slow machine (ASan, CI); the last relayed connection of the driver is in
        # the counters once a few stats intervals have passed.
        time.sleep(0.6)
        before = stats()["connections"]["accepted"]
        for _ in range(5):
            self.assertEqual(get("/direct"), 404)
        time.sleep(1)  # several stats intervals: a relayed one would show by now
        s = stats()
        self.assertEqual(count(s, "/direct"), 0)
        self.assertEqual(s["connections"]["accepted"], before)

        # Re-attached after the cool-down: counted again.
        wait_for(lambda: state(stats()) == "attached", timeout=20, what="the pod re-attached")
        self.assertIn(f"overload: re-attached pod {netns}", np.stderr())
        self.assertEqual(get("/after"), 404)
        wait_for(lambda: count(stats(), "/after") == 1, what="/after counted")
        report = np.stop()
        self.assertEqual(sum(r["count"] for r in report["routes"] if r["route"] == "/direct"), 0)
