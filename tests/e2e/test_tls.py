"""TLS made visible, never decrypted: real nginx (TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1 by ALPN,
a self-signed certificate made in a temporary directory) behind netprof, real curl and
openssl s_client in front; through `netprof proxy` and, where BPF is available, `netprof attach`.

The report's "tls" rows (server name, port, ALPN, version, exact connection counts, failures)
and /metrics (promtool-valid) are checked; TLS connections are not counted as unparsed.
"""
import html.parser
import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
import urllib.request

from harness import NETPROF, Netprof, free_port, pod_netns, skip_or_fail, start_process, wait_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def need(tool):
    if not (shutil.which(tool) or os.path.exists(tool)):
        raise unittest.SkipTest(f"{tool} not installed (scripts/install-deps)")


def tls_dir(test):
    d = tempfile.mkdtemp(prefix="netprof-tls-")
    test.addCleanup(shutil.rmtree, d, True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", f"{d}/key.pem", "-out", f"{d}/cert.pem", "-days", "2",
                    "-subj", "/CN=api.test", "-addext", "subjectAltName=DNS:api.test,DNS:other.test"],
                   check=True, capture_output=True)
    return d


def start_nginx(test, d, listen, netns=None):
    """nginx with TLS 1.2 and 1.3, ALPN h2 and http/1.1, on `listen` (ADDR:PORT)."""
    conf = f"""
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen {listen} ssl http2;
    ssl_certificate {d}/cert.pem;
    ssl_certificate_key {d}/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {{ return 200 "hello tls\\n"; }}
  }}
}}
"""
    with open(f"{d}/nginx.conf", "w") as f:
        f.write(conf)
    cmd = [NGINX, "-c", f"{d}/nginx.conf", "-p", d, "-e", f"{d}/error.log"]
    if netns:
        cmd = ["ip", "netns", "exec", netns] + cmd
    err = open(f"{d}/nginx.stderr", "w")
    test.addCleanup(err.close)
    proc = start_process(test, cmd, stdout=subprocess.DEVNULL, stderr=err)
    wait_for(lambda: os.path.exists(f"{d}/nginx.pid") or proc.poll() is not None, what="nginx to start")
    if proc.poll() is not None:
        with open(f"{d}/nginx.stderr") as f:
            raise AssertionError(f"nginx exited: {f.read()}")
    return proc


def curl(host, addr, port, *args):
    """One HTTPS request with SNI `host` to addr:port; returns (exit code, body)."""
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "--resolve", f"{host}:{port}:{addr}",
                        *args, f"https://{host}:{port}/"], capture_output=True)
    return r.returncode, r.stdout


def s_client(addr, port, *args):
    r = subprocess.run(["openssl", "s_client", "-connect", f"{addr}:{port}", *args],
                       input=b"", capture_output=True, timeout=20)
    return r.returncode, r.stdout


class TlsTable(html.parser.HTMLParser):
    """Collects {server name: connections} from the dashboard's rendered #tls table."""

    def __init__(self):
        super().__init__()
        self.rows, self._row, self._in_hits = {}, None, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-server-name" in a:
            self._row = a["data-server-name"]
        elif tag == "td" and a.get("class") == "hits" and self._row is not None:
            self._in_hits = True

    def handle_data(self, data):
        if self._in_hits and data.strip():
            self.rows[self._row] = self.rows.get(self._row, 0) + int(data.strip())
            self._in_hits = False


def rows(report):
    return {(r["server_name"], r["alpn"], r["version"]): r for r in report["tls"]}


class TlsScenario:
    """The same traffic and the same expectations for both modes."""

    def drive(self, addr, port):
        # TLS 1.3, SNI api.test, curl offers h2 and http/1.1: 3 connections. TLS 1.3 encrypts the
        # server's ALPN choice: the report shows the offers, not a choice.
        for _ in range(3):
            rc, body = curl("api.test", addr, port, "-k", "--http2", "--tlsv1.3")
            self.assertEqual((rc, body), (0, b"hello tls\n"))
        # TLS 1.2 shows the choice in clear: h2.
        rc, body = curl("h2.test", addr, port, "-k", "--http2", "--tlsv1.2", "--tls-max", "1.2")
        self.assertEqual((rc, body), (0, b"hello tls\n"))
        # TLS 1.2, SNI other.test, HTTP/1.1 only: 2 connections.
        for _ in range(2):
            rc, body = curl("other.test", addr, port, "-k", "--http1.1", "--tlsv1.2", "--tls-max", "1.2")
            self.assertEqual((rc, body), (0, b"hello tls\n"))
        # openssl s_client: TLS 1.3 with SNI and a single ALPN offer (h2: then the choice is
        # known once the handshake completes); TLS 1.2 without SNI or ALPN.
        rc, out = s_client(addr, port, "-tls1_3", "-servername", "Openssl.Test", "-alpn", "h2")
        self.assertEqual(rc, 0, out)
        self.assertIn(b"ALPN protocol: h2", out)
        rc, out = s_client(addr, port, "-tls1_2", "-noservername")
        self.assertEqual(rc, 0, out)
        # A client that rejects the self-signed certificate: a failed handshake (its alert).
        rc, _ = curl("bad.test", addr, port, "--http1.1", "--tlsv1.3")
        self.assertNotEqual(rc, 0)
        rc, _ = curl("bad12.test", addr, port, "--http1.1", "--tlsv1.2", "--tls-max", "1.2")
        self.assertNotEqual(rc, 0)
        return 10  # connections

    def check(self, report, port, connections):
        r = rows(report)
        api = r[("api.test", "", "TLS1.3")]
        self.assertEqual(api["alpn_offered"], "h2,http/1.1")
        self.assertEqual(api["connections"], 3)
        self.assertEqual(api["handshakes"], 3)
        self.assertEqual(api["failures"], 0)
        self.assertEqual(api["port"], port)
        self.assertGreater(api["handshake_ms"]["p50"], 0)
        self.assertLessEqual(api["handshake_ms"]["max"], api["duration_ms"]["max"])
        self.assertGreater(api["bytes_client_to_server"], 3 * 200)
        self.assertGreater(api["bytes_server_to_client"], 3 * 500)  # certificates
        h2 = r[("h2.test", "h2", "TLS1.2")]
        self.assertEqual((h2["connections"], h2["handshakes"], h2["failures"]), (1, 1, 0))
        other = r[("other.test", "http/1.1", "TLS1.2")]
        self.assertEqual((other["connections"], other["handshakes"], other["failures"]), (2, 2, 0))
        ossl = r[("openssl.test", "h2", "TLS1.3")]
        self.assertEqual((ossl["connections"], ossl["failures"]), (1, 0))
        nosni = r[("", "", "TLS1.2")]
        self.assertEqual((nosni["connections"], nosni["failures"]), (1, 0))
        bad = r[("bad.test", "", "TLS1.3")]  # one offer, but no completed handshake: not known
        self.assertEqual((bad["connections"], bad["failures"], bad["handshakes"]), (1, 1, 0))
        self.assertEqual(bad["failure_kinds"], {"alert": 1})
        bad12 = r[("bad12.test", "http/1.1", "TLS1.2")]
        self.assertEqual((bad12["connections"], bad12["failures"]), (1, 1))
        self.assertEqual(bad12["failure_kinds"], {"alert": 1})
        self.assertEqual(sum(x["connections"] for x in report["tls"]), connections)
        self.assertEqual(report["connections"]["unparsed"], 0)
        self.assertEqual(report["connections"]["accepted"], connections)
        self.assertEqual(report["routes"], [])  # never decrypted


class TlsThroughProxy(unittest.TestCase, TlsScenario):
    def test_tls_connections_per_server_name(self):
        for tool in ("curl", "openssl", NGINX):
            need(tool)
        d = tls_dir(self)
        backend = free_port()
        start_nginx(self, d, f"127.0.0.1:{backend}")
        np = Netprof(self, ["proxy", "--listen", "127.0.0.1:0", "--target", f"127.0.0.1:{backend}",
                            "--admin", "127.0.0.1:0", "--stats-interval", "0.05"])
        port = np.wait_listening()
        # The relay listens before the admin API starts: wait for it too (a slow build, e.g.
        # under ThreadSanitizer, got "connection refused" here).
        admin = np.wait_admin()

        def get(path):
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}{path}", timeout=5) as resp:
                return resp.read().decode()
        # `netprof tap`: one line per TLS connection, at its close.
        tap = subprocess.Popen([NETPROF, "tap", "--admin", f"127.0.0.1:{admin}", "-n", "10"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: tap.poll() is None and (tap.kill(), tap.wait()))
        wait_for(lambda: re.search(r"^netprof_tap_subscribers 1$", get("/metrics"), re.M),
                 what="tap to subscribe")
        connections = self.drive("127.0.0.1", port)
        out, err = tap.communicate(timeout=30)
        self.assertEqual(tap.returncode, 0, err)
        lines = [json.loads(line) for line in out.splitlines()]
        self.assertEqual(len(lines), connections, out)
        self.assertTrue(all(line["tls"] for line in lines), out)
        names = sorted(line["server_name"] for line in lines)
        self.assertEqual(names, sorted(["api.test"] * 3 + ["h2.test", "other.test", "other.test",
                                        "openssl.test", "", "bad.test", "bad12.test"]))
        h2 = next(line for line in lines if line["server_name"] == "h2.test")
        self.assertEqual((h2["version"], h2["alpn"], h2["port"]), ("TLS1.2", "h2", backend))
        self.assertGreater(h2["handshake_ms"], 0)
        self.assertEqual(next(line for line in lines if line["server_name"] == "bad.test")["error"],
                         "alert")

        def metrics():
            with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5) as resp:
                text = resp.read().decode()
            return text if 'server_name="bad12.test"' in text else None
        text = wait_for(metrics, what="TLS series in /metrics")
        line = ('netprof_tls_connections_total{server_name="api.test",server_port="%d",'
                'tls_protocol_version="TLS1.3",tls_alpn=""} 3' % backend)
        self.assertIn(line, text)
        self.assertIn('netprof_tls_handshake_duration_seconds_count{server_name="other.test",'
                      'server_port="%d",tls_protocol_version="TLS1.2",tls_alpn="http/1.1"} 2' % backend, text)
        self.assertIn('error_type="alert"} 1', text)
        if shutil.which("promtool"):
            r = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True)
            # promtool's lint warnings (exit 3) are about names; 1 is a parse error.
            self.assertNotEqual(r.returncode, 1, r.stdout + r.stderr)
        # `netprof top --once`: a TLS section.
        top = subprocess.run([NETPROF, "top", "--admin", f"127.0.0.1:{admin}", "--once"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(top.returncode, 0, top.stderr)
        self.assertIn("TLS SERVER:PORT", top.stdout)
        api_line = next(l for l in top.stdout.splitlines() if f"api.test:{backend}" in l)
        self.assertEqual(api_line.split()[:2], ["3", "0"])  # connections, failures
        self.assertIn("TLS1.3", api_line)
        # The dashboard in headless Chromium: the TLS table.
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        if browser:
            profile = tempfile.mkdtemp(prefix="netprof-chromium-")
            self.addCleanup(shutil.rmtree, profile, True)
            dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                                  "--no-first-run", "--disable-background-networking",
                                  "--virtual-time-budget=5000", f"--user-data-dir={profile}",
                                  "--dump-dom", f"http://127.0.0.1:{admin}/"],
                                 capture_output=True, text=True, timeout=120)
            self.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
            table = TlsTable()
            table.feed(dom.stdout)
            self.assertEqual(table.rows.get("api.test"), 3, table.rows)
            self.assertEqual(table.rows.get("other.test"), 2, table.rows)
            self.assertEqual(sum(table.rows.values()), connections, table.rows)
        report = np.stop()
        self.check(report, backend, connections)


class TlsThroughAttach(unittest.TestCase, TlsScenario):
    """A pod-like network namespace with nginx inside; netprof attach steers its inbound port."""

    def test_tls_connections_per_server_name(self):
        for tool in ("curl", "openssl", NGINX):
            need(tool)
        ns, pod_ip = pod_netns(self, "tls", 251)
        d = tls_dir(self)
        port = free_port()
        start_nginx(self, d, f"{pod_ip}:{port}", netns=ns)
        np = Netprof(self, ["attach", "--netns", f"/run/netns/{ns}", "--inbound-ports", str(port),
                            "--admin", "off"])

        def intercepting():
            if np.proc.poll() is not None:
                return "exited"
            return "ok" if "intercepting" in np.stderr() else None
        if wait_for(intercepting, timeout=30, what="netprof attach") == "exited":
            skip_or_fail(self, "netprof attach could not run here: "
                         f"{np.stderr().strip().splitlines()[-1:]}")
        connections = self.drive(pod_ip, port)
        report = np.stop()
        self.check(report, port, connections)


if __name__ == "__main__":
    unittest.main()
