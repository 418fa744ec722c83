"""Shared pieces for the outputs tests: a demo backend, `netprof proxy` in front of it with
the admin API on an ephemeral port, traffic from curl, and helpers to find counterpart
programs. Every process started here is stopped by the test's cleanup, also on failure.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

NETPROF = os.environ.get("NETPROF_BIN", "netprof")
ARTIFACTS = os.environ.get("NETPROF_ARTIFACTS", tempfile.gettempdir())


def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_program(test, name):
    path = shutil.which(name)
    if path is None:
        raise unittest.SkipTest(f"{name} not installed (scripts/install-deps --test installs it)")
    return path


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers, r.read().decode()


class Process:
    """A child process with stderr in a file; killed at cleanup."""

    def __init__(self, test, args, **kwargs):
        self.dir = tempfile.mkdtemp(prefix="netprof-outputs-")
        test.addCleanup(shutil.rmtree, self.dir, True)
        self.stderr_path = os.path.join(self.dir, "stderr")
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(args, stdout=kwargs.pop("stdout", subprocess.DEVNULL),
                                     stderr=self._stderr, **kwargs)
        test.addCleanup(self.kill)

    def stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    def wait_stderr(self, pattern, what):
        def found():
            if self.proc.poll() is not None:
                raise AssertionError(f"{what}: exited {self.proc.returncode}: {self.stderr()}")
            return re.search(pattern, self.stderr())
        return wait_for(found, what=what)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


class ProfiledBackend:
    """`netprof demo --serve-only` behind `netprof proxy --admin 127.0.0.1:0`."""

    def __init__(self, test, extra_args=()):
        # Port 0 and the port it reports: a port picked free beforehand can be taken by
        # another process before the backend binds it.
        self.backend = Process(test, [NETPROF, "demo", "--serve-only", "--backend", "127.0.0.1:0"])
        backend_port = int(self.backend.wait_stderr(r"backend serving on [^ ]*:(\d+)",
                                                    "demo backend").group(1))
        self.proxy = Process(test, [NETPROF, "proxy", "--listen", "127.0.0.1:0", "--target",
                                    f"127.0.0.1:{backend_port}", "--admin", "127.0.0.1:0",
                                    "--report-interval", "0", *extra_args])
        self.port = int(self.proxy.wait_stderr(r"relaying [^ ]*:(\d+) ->", "netprof proxy").group(1))
        admin = self.proxy.wait_stderr(r"admin API on http://([^/]+)/", "admin API").group(1)
        self.admin = f"http://{admin}"
        self.admin_hostport = admin

    def get(self, path, method="GET", data=None):
        """One request through the relay; returns the status code."""
        args = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method]
        if data is not None:
            args += ["--data-binary", data]
        out = subprocess.run(args + [f"http://127.0.0.1:{self.port}{path}"], check=True,
                             capture_output=True, text=True, timeout=30).stdout
        return int(out)

    def stats(self):
        return json.loads(http_get(self.admin + "/stats")[2])

    def route_count(self, method, route):
        for r in self.stats()["routes"]:
            if r["method"] == method and r["route"] == route:
                return r["count"]
        return 0

    def wait_count(self, method, route, n):
        wait_for(lambda: self.route_count(method, route) >= n, what=f"{n} x {method} {route}")


def send_mixed_traffic(backend, users=12, searches=5, orders=3):
    """Requests whose routes and counts the tests assert on."""
    for i in range(users):
        assert backend.get(f"/api/users/{1000 + i}?session=secret{i}") == 200
    for _ in range(searches):
        assert backend.get("/api/search?q=x") == 200
    for i in range(orders):
        assert backend.get("/api/orders", method="POST", data='{"item":%d}' % i) == 201
    backend.wait_count("GET", "/api/users/{id}", users)
    backend.wait_count("GET", "/api/search", searches)
    backend.wait_count("POST", "/api/orders", orders)
