"""The dashboard in a real browser: headless Chromium loads / from a netprof that has seen
traffic; the rendered table must show the real routes with their counts. A screenshot is
kept as a test artifact (dashboard.png in the build directory)."""
import decimal
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


class RenderedPage(html.parser.HTMLParser):
    """What the browser rendered: {(method, route): [cell texts]} of the #routes table (in
    column order: method, route, hits, req/s, avg, min, max, p50, p99, errors, statuses, last)
    and the text of each summary card (#c-total, #c-routes, ...)."""

    def __init__(self):
        super().__init__()
        self.rows, self.cards = {}, {}
        self._row, self._cell, self._card, self._depth = None, None, None, 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-route" in a:
            self._row = (a["data-method"], a["data-route"])
            self.rows[self._row] = []
        elif tag == "td" and self._row:
            self._cell = []
            self._depth = 0
        elif self._cell is not None:
            self._depth += 1
            if a.get("class") == "tag":  # "asset"/"overflow" tags are not the route's name
                self._cell.append("\0")
        elif a.get("id", "").startswith("c-"):
            self._card = a["id"]
            self.cards[self._card] = ""

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None and self._depth == 0:
            text = "".join(self._cell).split("\0")[0]
            self.rows[self._row].append(" ".join(text.split()))
            self._cell = None
        elif self._cell is not None and tag != "td":
            self._depth -= 1
        elif tag == "tr":
            self._row = None
        elif self._card and tag == "div":
            self._card = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        elif self._card:
            self.cards[self._card] += data.strip()


def to_fixed(value, digits):
    """JavaScript's Number.toFixed: the exact binary value, a tie rounded up (Python's format
    rounds a tie such as 1.125 to even)."""
    return str(decimal.Decimal(value).quantize(decimal.Decimal(1).scaleb(-digits),
                                               rounding=decimal.ROUND_HALF_UP))


def expected_row(route):
    """The cells the dashboard must show for one route of /stats (the numbers as its fmt())."""
    lat = route["latency_ms"]
    statuses = " ".join(f"{'none' if code == '0' else code}\u00d7{n}"
                        for code, n in route["status"].items())
    return {"method": route["method"], "route": route["route"], "hits": str(route["count"]),
            "avg": to_fixed(lat["mean"], 2), "min": to_fixed(lat["min"], 2),
            "max": to_fixed(lat["max"], 2), "p50": to_fixed(lat["p50"], 2),
            "p99": to_fixed(lat["p99"], 2), "errors": str(route["errors"]),
            "statuses": statuses}


COLUMNS = ["method", "route", "hits", "rate", "avg", "min", "max", "p50", "p99", "errors",
           "statuses", "last"]


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
        for _ in range(6):  # the demo's checkout fails now and then: errors and 500s to show
            backend.get("/api/checkout")
            backend.get("/static/app.js")
        backend.wait_count("GET", "/api/checkout", 6)
        backend.wait_count("GET", "/static/app.js", 6)
        dom = self.chromium("--dump-dom", backend.admin + "/")
        self.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
        self.assertIn('<span id="error"></span>', dom.stdout, "the page reported a fetch error")
        page = RenderedPage()
        page.feed(dom.stdout)
        rendered = {key: dict(zip(COLUMNS, cells)) for key, cells in page.rows.items()}
        # The traffic, as sent.
        hits = {key: int(row["hits"]) for key, row in rendered.items()}
        self.assertEqual(hits, {("GET", "/api/users/{id}"): 9, ("GET", "/api/search"): 4,
                                ("POST", "/api/orders"): 2, ("GET", "/api/checkout"): 6,
                                ("GET", "/static/app.js"): 6}, rendered)
        # Every number of every row is the one /stats has (no traffic since the page loaded).
        stats = backend.stats()
        self.assertEqual(len(stats["routes"]), len(rendered), stats["routes"])
        for route in stats["routes"]:
            want = expected_row(route)
            with self.subTest(route=route["route"]):
                got = rendered[(route["method"], route["route"])]
                self.assertEqual({k: got[k] for k in want}, want)
                self.assertRegex(got["rate"], r"^\d+\.\d$")
        self.assertEqual(page.cards["c-total"], str(sum(r["count"] for r in stats["routes"])))
        self.assertEqual(page.cards["c-routes"], str(len(stats["routes"])))
        errors = sum(r["errors"] for r in stats["routes"])
        self.assertEqual(page.cards["c-errors"], to_fixed(100 * errors / sum(hits.values()), 2) + "%")

    def test_a_route_opens_its_slow_and_failed_requests(self):
        """Clicking a route (or a link to it, #route=METHOD%20/path, which a click sets) shows
        the flight recorder's records of that route from /stats: its slowest requests with the
        timeline as a bar, and its failures with their status."""
        import http.client
        import re
        import urllib.parse
        backend = ProfiledBackend(self)
        for _ in range(7):
            self.assertEqual(backend.get("/api/search?q=x"), 200)
        # The demo fails one checkout in ten, drawn per connection: one keep-alive connection.
        conn = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=10)
        self.addCleanup(conn.close)
        failed = 0
        for _ in range(300):
            conn.request("POST", "/api/checkout", body="{}")
            response = conn.getresponse()
            response.read()
            failed += response.status == 500
            if failed == 1:
                break
        self.assertEqual(failed, 1, "the demo backend answered no checkout with 500")
        backend.wait_count("GET", "/api/search", 7)

        def records(method, route):
            r = next(r for r in backend.stats()["routes"]
                     if (r["method"], r["route"]) == (method, route))
            return r.get("slow", {})

        def view(method, route):
            """The rows of the page's slow table, opened by link: [(list, id, status, html)]."""
            link = backend.admin + "/#route=" + urllib.parse.quote(f"{method} {route}")
            dom = self.chromium("--dump-dom", link)
            self.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
            self.assertIn('<span id="error"></span>', dom.stdout, "the page reported a fetch error")
            self.assertIn(f'id="slow-title">{method} {route}<', dom.stdout)
            table = dom.stdout.split('<table id="slow">', 1)[1].split("</table>", 1)[0]
            rows = []
            for m in re.finditer(r'<tr data-request-id="([^"]*)">(.*?)</tr>', table, re.S):
                cells = re.findall(r"<td[^>]*>(.*?)</td>", m.group(2), re.S)
                rows.append((cells[0], m.group(1), re.sub("<[^>]+>", "", cells[4]).strip(),
                             m.group(2)))
            return rows

        # /api/search: every slowest request /stats has (this window or, once it rolled, the
        # previous one), each with a bar whose origin segment is drawn.
        rows = view("GET", "/api/search")
        f = records("GET", "/api/search")
        want = {x["request_id"] for x in f.get("slow", []) + f.get("previous_slow", [])}
        self.assertEqual(len(want), 5, f)
        self.assertEqual({r[1] for r in rows if r[0].startswith("slowest")}, want, rows)
        for _, _, status, cells in rows:
            self.assertEqual(status, "200")
            self.assertIn('class="seg-origin"', cells)
        # /api/checkout: its failure, with the status.
        rows = view("POST", "/api/checkout")
        failures = records("POST", "/api/checkout")["failures"]
        self.assertEqual([(r[1], r[2]) for r in rows if r[0] == "failed"],
                         [(x["request_id"], "500") for x in failures])

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
        page = RenderedPage()
        page.feed(dom.stdout)
        self.assertEqual(dict(zip(COLUMNS, page.rows.get(("GET", "/api/users/{id}"), [])))
                         .get("hits"), "3", "304s still show the rows")
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
