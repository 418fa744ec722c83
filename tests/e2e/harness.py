"""Shared pieces for netprof's end-to-end tests: real processes on loopback.

Every process started here is stopped by the test's cleanup, also when the test fails.
"""
import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

NETPROF = os.environ.get("NETPROF_BIN", "netprof")


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


NO_EBPF = "this build has no eBPF support"


def ebpf_build():
    """Whether this netprof was built with eBPF (attach, check, node); a build with
    -DNETPROF_BUILD_BPF=OFF says it has none when asked for one of them."""
    p = subprocess.run([NETPROF, "check", "--help"], capture_output=True, text=True, timeout=10)
    return NO_EBPF not in p.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def skip_or_fail(test, why):
    """Skips `test` saying why; with NETPROF_REQUIRE_BPF=1 a skip is a failure instead."""
    if os.environ.get("NETPROF_REQUIRE_BPF") == "1":
        test.fail(f"NETPROF_REQUIRE_BPF=1 but: {why}")
    test.skipTest(why)


def pod_netns(test, name, subnet):
    """A pod-like network namespace np-<name>-<pid>, joined to this one by a veth pair on
    10.<subnet>.N.0/24 (N from the pid, so that concurrent runs differ). The namespace and the
    veth go with the test's cleanup, also when it fails. Returns (namespace, pod address).
    Skips (see skip_or_fail) where one cannot be made: not root, no ip(8), no netns."""
    if os.geteuid() != 0:
        skip_or_fail(test, "needs root (netns, veth, BPF)")
    if shutil.which("ip") is None:
        skip_or_fail(test, "needs ip (iproute2)")
    pid = os.getpid()
    ns, host_if, pod_if = f"np-{name}-{pid}", f"np{name}{pid}h", f"np{name}{pid}p"
    net = (pid % 200) + 20
    host_ip, pod_ip = f"10.{subnet}.{net}.1", f"10.{subnet}.{net}.2"

    def sh(*cmd, check=True):
        return subprocess.run(list(cmd), capture_output=True, check=check)
    test.addCleanup(sh, "ip", "netns", "del", ns, check=False)
    test.addCleanup(sh, "ip", "link", "del", host_if, check=False)
    try:
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", pod_if)
        sh("ip", "link", "set", pod_if, "netns", ns)
        sh("ip", "addr", "add", f"{host_ip}/24", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "-n", ns, "addr", "add", f"{pod_ip}/24", "dev", pod_if)
        sh("ip", "-n", ns, "link", "set", pod_if, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    except subprocess.CalledProcessError as e:
        skip_or_fail(test, f"cannot make a network namespace: {e.stderr.decode().strip()}")
    return ns, pod_ip


def start_process(test, args, **kw):
    """Popen whose cleanup (registered on `test`) stops it: SIGTERM, SIGKILL after 10 s."""
    proc = subprocess.Popen(args, **kw)

    def stop():
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe:
                pipe.close()
    test.addCleanup(stop)
    return proc


class Netprof:
    """`netprof proxy` (or another mode) with its report written to a file."""

    def __init__(self, test, args, env=None):
        self.dir = tempfile.mkdtemp(prefix="netprof-e2e-")
        self.report_path = os.path.join(self.dir, "report.json")
        self.stderr_path = os.path.join(self.dir, "stderr")
        self.args = [NETPROF] + args
        if "--report-file" not in args:
            self.args += ["--report-file", self.report_path, "--report-interval", "0"]
        self._stderr_file = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self._stderr_file,
                                     env={**os.environ, **(env or {})})
        test.addCleanup(self.kill)
        self.port = None

    def stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    def wait_listening(self):
        def relaying():
            m = re.search(r"relaying [^ ]*:(\d+) ->", self.stderr())
            if self.proc.poll() is not None:
                raise AssertionError(f"netprof exited {self.proc.returncode}: {self.stderr()}")
            return int(m.group(1)) if m else None
        self.port = wait_for(relaying, what="netprof to listen")
        return self.port

    def wait_admin(self):
        """The admin API's port, once it answers. Start netprof with --admin 127.0.0.1:0 and
        without -q: a port picked free beforehand can be taken by another process before
        netprof binds it."""
        def admin():
            m = re.search(r"admin API on http://[^/]*:(\d+)/", self.stderr())
            if self.proc.poll() is not None:
                raise AssertionError(f"netprof exited {self.proc.returncode}: {self.stderr()}")
            return int(m.group(1)) if m else None
        return wait_for(admin, what="the admin API")

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stops netprof as a user would and returns its final report."""
        self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=timeout)
        if rc != 0:
            raise AssertionError(f"netprof exited {rc}: {self.stderr()}")
        with open(self.report_path) as f:
            return json.load(f)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr_file.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def route(report, path, method="GET"):
    for r in report["routes"]:
        if r["route"] == path and r["method"] == method:
            return r
    raise AssertionError(f"no route {method} {path} in {[(r['method'], r['route']) for r in report['routes']]}")


class Backend(http.server.ThreadingHTTPServer):
    """A real HTTP/1.1 server with keep-alive and routes that exercise the tracker."""
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog is 5: a burst of connections from the relay overflowed it
    # and the kernel answered with SYN cookies and resets (a real server listens with more).
    request_queue_size = 256

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.shutdown()
        self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send(self, status, body=b"", headers=(), head=False):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def _route(self, head=False):
        path = self.path.split("?")[0]
        if path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/nocontent":
            self._send(204)
        elif path == "/notmodified":
            self._send(304)
        elif path == "/fail":
            self._send(500, b"boom", head=head)
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"status", head=head)
        elif path.startswith("/bytes/"):
            self._send(200, b"x" * int(path.rsplit("/", 1)[1]), head=head)
        elif path == "/missing" or path == "/favicon.ico":
            self._send(404, b"not found", head=head)
        else:
            self._send(200, f"you asked for {self.path}".encode(), head=head)

    def do_GET(self):
        self._route()

    def do_HEAD(self):
        self._route(head=True)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._send(201, hashlib.sha256(body).hexdigest().encode())


class E2ETest(unittest.TestCase):
    def start_backend(self):
        backend = Backend()
        self.addCleanup(backend.close)
        return backend

    def start_proxy(self, target_port, extra=(), env=None):
        np = Netprof(self, ["proxy", "--listen", "127.0.0.1:0",
                            "--target", f"127.0.0.1:{target_port}", *extra], env=env)
        np.wait_listening()
        return np
