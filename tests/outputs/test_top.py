"""`netprof top` in a real terminal (tmux): the screen shows the routes with their counts,
keys switch the sort, a narrow window still fits, and piped output is one snapshot."""
import os
import shutil
import subprocess
import unittest
import uuid

from outputs_harness import ARTIFACTS, NETPROF, ProfiledBackend, send_mixed_traffic, wait_for


class TopInTmux(unittest.TestCase):
    def tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              timeout=30)

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "top").stdout

    def screen_with(self, text):
        screen = self.screen()
        return screen if text in screen else None

    def start_top(self, backend, width, height=30):
        if shutil.which("tmux") is None:
            raise unittest.SkipTest("tmux not installed (scripts/install-deps --test installs it)")
        self.socket = "netprof-test-" + uuid.uuid4().hex[:8]
        self.addCleanup(self.tmux, "kill-server")
        started = self.tmux("new-session", "-d", "-s", "top", "-x", str(width), "-y", str(height),
                            f"{NETPROF} top --admin {backend.admin_hostport} --interval 0.2")
        self.assertEqual(started.returncode, 0, started.stderr)

    def test_screen_shows_routes_and_keys_switch_sort(self):
        backend = ProfiledBackend(self)
        send_mixed_traffic(backend, users=11, searches=6, orders=2)
        self.start_top(backend, 110)
        screen = wait_for(lambda: self.screen_with("/api/orders"),
                          what="top to show the routes")
        rows = {line.split()[-1]: line.split() for line in screen.splitlines()
                if line.strip().split() and line.split()[-1].startswith("/api/")}
        self.assertEqual(rows["/api/users/{id}"][0], "11")
        self.assertEqual(rows["/api/search"][0], "6")
        self.assertEqual(rows["/api/orders"][0], "2")
        self.assertIn("P99ms", screen)
        with open(os.path.join(ARTIFACTS, "top.txt"), "w") as f:
            f.write(screen)
        # 'n' sorts by route name: /api/orders, /api/search, /api/users/{id}.
        self.tmux("send-keys", "-t", "top", "n")
        screen = wait_for(lambda: self.screen_with("sort: route"),
                          what="the sort to switch")
        order = [l.split()[-1] for l in screen.splitlines() if l.split() and l.split()[-1].startswith("/api/")]
        self.assertEqual(order, sorted(order))
        # 'c' sorts by count: users (11) first.
        self.tmux("send-keys", "-t", "top", "c")
        screen = wait_for(lambda: self.screen_with("sort: count"),
                          what="the sort to switch")
        order = [l.split()[-1] for l in screen.splitlines() if l.split() and l.split()[-1].startswith("/api/")]
        self.assertEqual(order[0], "/api/users/{id}")
        # 'q' quits and gives the terminal back.
        self.tmux("send-keys", "-t", "top", "q")
        wait_for(lambda: self.tmux("has-session", "-t", "top").returncode != 0, what="top to quit")

    def test_enter_on_a_route_shows_its_slow_requests(self):
        backend = ProfiledBackend(self)
        for _ in range(6):
            self.assertEqual(backend.get("/api/search?q=x"), 200)
        backend.wait_count("GET", "/api/search", 6)
        self.start_top(backend, 140)
        wait_for(lambda: self.screen_with("/api/search"), what="top to show the route")
        # The cursor starts on the first row (the only one); Enter opens it.
        self.tmux("send-keys", "-t", "top", "j")
        wait_for(lambda: self.screen_with(">"), what="the cursor")
        self.tmux("send-keys", "-t", "top", "Enter")
        screen = wait_for(lambda: self.screen_with("SLOWEST (this report window)"),
                          what="the route's slow requests")
        self.assertIn("GET /api/search", screen)
        route = next(r for r in backend.stats()["routes"] if r["route"] == "/api/search")
        ids = [x["request_id"] for x in route["slow"]["slow"] + route["slow"]["previous_slow"]]
        self.assertEqual(len(ids), 5, route)
        screen = wait_for(lambda: (lambda s: s if all(i in s for i in ids) else None)(self.screen()),
                          what="every recorded request id on the screen")
        self.assertIn("LATEST FAILURES", screen)
        with open(os.path.join(ARTIFACTS, "top-slow.txt"), "w") as f:
            f.write(screen)
        # Escape goes back to the table.
        self.tmux("send-keys", "-t", "top", "Escape")
        wait_for(lambda: (lambda s: s if "P99ms" in s and "SLOWEST" not in s else None)(self.screen()),
                 what="the table again")

    def test_narrow_terminal_still_fits(self):
        backend = ProfiledBackend(self)
        send_mixed_traffic(backend, users=3, searches=1, orders=1)
        self.start_top(backend, 48)
        screen = wait_for(lambda: self.screen_with("/api/users/{id}"),
                          what="top to show the routes in 48 columns")
        self.assertTrue(all(len(line) <= 48 for line in screen.splitlines()), screen)
        self.assertNotIn("P99ms", screen)  # dropped to make room for the route


class TopPiped(unittest.TestCase):
    def test_piped_output_is_one_snapshot(self):
        backend = ProfiledBackend(self)
        send_mixed_traffic(backend, users=4, searches=2, orders=1)
        result = subprocess.run([NETPROF, "top", "--admin", backend.admin_hostport, "--sort", "count"],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn("\x1b", result.stdout)  # no terminal control in a pipe
        lines = result.stdout.splitlines()
        self.assertTrue(lines[0].startswith("netprof top"))
        body = [l.split() for l in lines[2:]]
        self.assertEqual([(r[0], r[-1]) for r in body],
                         [("4", "/api/users/{id}"), ("2", "/api/search"), ("1", "/api/orders")])

    def test_unreachable_admin_api_is_explained(self):
        result = subprocess.run([NETPROF, "top", "--admin", "127.0.0.1:1"], capture_output=True,
                                text=True, timeout=30)
        self.assertEqual(result.returncode, 1)
        self.assertIn("is netprof running", result.stderr)


if __name__ == "__main__":
    unittest.main()
