"""The dashboard in a real browser: headless Chromium loads / from a netprof that has seen
traffic; the rendered table must show the real routes with their counts. A screenshot is
kept as a test artifact (dashboard.png in the build directory)."""
import html.parser
import os
import shutil
import subprocess
import tempfile
import unittest

from outputs_harness import ARTIFACTS, ProfiledBackend, http_get, require_program, send_mixed_traffic

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--virtual-time-budget=5000"]


class RouteTable(html.parser.HTMLParser):
    """Collects {(method, route): hits} from the rendered #routes table."""

    def __init__(self):
        super().__init__()
        self.rows, self._row, self._in_hits = {}, None, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-route" in a:
            self._row = (a["data-method"], a["data-route"])
        elif tag == "td" and a.get("class") == "hits" and self._row:
            self._in_hits = True

    def handle_data(self, data):
        if self._in_hits and data.strip():
            self.rows[self._row] = int(data.strip())
            self._in_hits = False


class DashboardInChromium(unittest.TestCase):
    def chromium(self, *args):
        browser = shutil.which("chromium") or shutil.which("chromium-browser")
        if browser is None:
            raise unittest.SkipTest("chromium not installed (scripts/install-deps --test installs it)")
        profile = tempfile.mkdtemp(prefix="netprof-chromium-")
        self.addCleanup(shutil.rmtree, profile, True)
        return subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120)

    def test_page_is_self_contained(self):
        backend = ProfiledBackend(self)
        status, headers, page = http_get(backend.admin + "/")
        self.assertEqual(status, 200)
        self.assertIn("text/html", headers["Content-Type"])
        self.assertNotIn("://", page, "the page must not load anything from elsewhere")
        self.assertIn("default-src 'self'", headers["Content-Security-Policy"])

    def test_table_shows_real_routes_and_counts(self):
        backend = ProfiledBackend(self)
        send_mixed_traffic(backend, users=9, searches=4, orders=2)
        dom = self.chromium("--dump-dom", backend.admin + "/")
        self.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
        table = RouteTable()
        table.feed(dom.stdout)
        self.assertEqual(table.rows.get(("GET", "/api/users/{id}")), 9, table.rows)
        self.assertEqual(table.rows.get(("GET", "/api/search")), 4, table.rows)
        self.assertEqual(table.rows.get(("POST", "/api/orders")), 2, table.rows)
        self.assertEqual(len(table.rows), 3, table.rows)
        self.assertIn('<span id="error"></span>', dom.stdout, "the page reported a fetch error")

    def test_the_browser_revalidates_instead_of_downloading_again(self):
        """The page polls /stats and /api/series every second; Chromium revalidates with the
        ETag (the page fetches with cache: "no-cache") and gets 304 while nothing was
        rendered anew, so a dashboard left open costs one download per render."""
        import re
        import time
        backend = ProfiledBackend(self)
        send_mixed_traffic(backend, users=3, searches=1, orders=1)
        time.sleep(1.5)  # the traffic is in a render; the page's polls find nothing new
        dom = self.chromium("--dump-dom", backend.admin + "/")
        self.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
        table = RouteTable()
        table.feed(dom.stdout)
        self.assertEqual(table.rows.get(("GET", "/api/users/{id}")), 3, "304s still show the rows")
        time.sleep(1.5)  # /metrics is rendered at most once per interval
        metrics = http_get(backend.admin + "/metrics")[2]
        m = re.search(r'^netprof_admin_responses_total\{kind="not_modified"\} (\S+)$', metrics, re.M)
        self.assertIsNotNone(m, "the admin API counts its 304s")
        self.assertGreater(float(m.group(1)), 0, "Chromium revalidated and got 304")

    def test_screenshot_artifact(self):
        backend = ProfiledBackend(self)
        send_mixed_traffic(backend, users=20, searches=8, orders=5)
        for _ in range(10):
            backend.get("/static/app.js")
            backend.get("/api/checkout")
        shot = os.path.join(ARTIFACTS, "dashboard.png")
        if os.path.exists(shot):
            os.unlink(shot)
        result = self.chromium("--window-size=1280,900", f"--screenshot={shot}", backend.admin + "/")
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        with open(shot, "rb") as f:
            data = f.read()
        self.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n")
        self.assertGreater(len(data), 20_000, "a blank page would compress to almost nothing")
        # NETPROF_UPDATE_DOCS=1 refreshes the README picture from this run.
        if os.environ.get("NETPROF_UPDATE_DOCS") == "1":
            docs = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "dashboard.png")
            shutil.copyfile(shot, docs)


if __name__ == "__main__":
    unittest.main()
