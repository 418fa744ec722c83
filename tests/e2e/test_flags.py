"""One name per setting in every mode: the flags of `netprof MODE --help` for the profiling
modes agree with each other and with the README's flag table, node mode documents the JSON
field and variable of each, and old spellings still work with a deprecation note."""
import json
import os
import re
import subprocess
import tempfile
import unittest

from harness import NETPROF

MODES = ["proxy", "attach", "node", "demo"]
README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "README.md")


def run(*args, env=None):
    return subprocess.run([NETPROF, *args], capture_output=True, text=True, timeout=20,
                          env={**os.environ, **(env or {})})


def help_flags(mode):
    """{flag: help line} of `netprof MODE --help`, or None if this build has no such mode
    (-DNETPROF_BUILD_BPF=OFF has no attach or node)."""
    p = run(mode, "--help")
    if p.returncode != 0:
        return None
    flags = {}
    for m in re.finditer(r"^  ((?:-\w,)?--[a-z0-9-]+)([^\n]*(?:\n {20,}[^\n]*)*)", p.stdout, re.M):
        for name in m.group(1).split(","):
            flags[name] = m.group(2)
    flags.pop("-h", None)
    flags.pop("--help", None)
    return flags


def readme_table():
    """{flag: set of modes} from the README's flag table."""
    with open(README) as f:
        text = f.read()
    start = text.index("<!-- flags:")
    end = text.index("<!-- flags end -->")
    table = {}
    for line in text[start:end].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        modes = set(MODES) if cells[1] == "all" else {m.strip() for m in cells[1].split(",")}
        for flag in re.findall(r"`(-[-a-z0-9]+)`", cells[0]):
            table[flag] = modes
    return table


class FlagTable(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.helps = {m: help_flags(m) for m in MODES}
        cls.present = [m for m in MODES if cls.helps[m] is not None]
        cls.readme = readme_table()

    def test_every_flag_is_in_the_readme_with_its_modes(self):
        for mode in self.present:
            for flag in self.helps[mode]:
                with self.subTest(mode=mode, flag=flag):
                    self.assertIn(flag, self.readme,
                                  f"`netprof {mode} --help` has {flag}; add a row to the README's "
                                  f"flag table")
                    self.assertIn(mode, self.readme[flag],
                                  f"{flag} is in `netprof {mode} --help` but the README's row does "
                                  f"not list {mode}")

    def test_every_readme_flag_is_in_the_help_of_each_of_its_modes(self):
        for flag, modes in self.readme.items():
            for mode in sorted(modes & set(self.present)):
                with self.subTest(flag=flag, mode=mode):
                    self.assertIn(flag, self.helps[mode],
                                  f"the README lists {flag} for {mode}; `netprof {mode} --help` "
                                  f"does not have it")

    def test_shared_flags_have_the_same_help_in_every_mode(self):
        # Same name, same type, same default, same meaning (node adds its config/env names).
        shared = set.intersection(*(set(self.helps[m]) for m in self.present))
        # Without eBPF (no attach, node) proxy and demo alone have more flags in common than the
        # shared ones (--listen is each mode's own): keep those the README lists for every mode.
        shared = {f for f in shared if self.readme.get(f) == set(MODES)}
        self.assertIn("--otlp-endpoint", shared)
        self.assertIn("--max-series", shared)
        for flag in shared:
            texts = {re.sub(r"\s+", " ", self.helps[m][flag].split(" (config ")[0]).strip()
                     for m in self.present}
            self.assertEqual(len(texts), 1, f"{flag} differs between modes: {texts}")

    def test_node_names_the_config_field_and_variable_of_every_setting(self):
        node = self.helps["node"]
        if node is None:
            self.skipTest("this build has no node mode (-DNETPROF_BUILD_BPF=OFF)")
        for flag, text in node.items():
            if flag in ("--config", "-q", "-v") or flag.startswith("--no-"):
                continue
            field = flag[2:].replace("-", "_")
            with self.subTest(flag=flag):
                self.assertIn(f"config {field}, env NETPROF_{field.upper()}",
                              re.sub(r"\s+", " ", text))

    def test_short_options_mean_one_thing(self):
        meaning = {}
        for mode in ["proxy", "attach", "node", "demo", "top", "tap", "check"]:
            p = run(mode, "--help")
            if p.returncode != 0:
                continue
            for short, long in re.findall(r"^  (-\w),(--[a-z0-9-]+)", p.stdout, re.M):
                if short == "-h":
                    continue
                with self.subTest(short=short, mode=mode):
                    self.assertEqual(meaning.setdefault(short, long), long,
                                     f"{short} is {long} in {mode} but {meaning[short]} elsewhere")


class DeprecatedSpellings(unittest.TestCase):
    """Old node spellings keep working for one release, each with a one-line note."""

    def test_old_flag_works_with_a_note(self):
        # A bad value after it stops netprof before it starts; the note comes first.
        p = run("proxy", "--asset-extensions", "png", "--connect-timeout-s", "2",
                "--max-routes", "0", "--admin", "off")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--asset-extensions is deprecated: use --asset-ext", p.stderr)
        self.assertIn("--connect-timeout-s is deprecated: use --connect-timeout", p.stderr)
        self.assertIn("--max-routes", p.stderr)
        self.assertNotIn("--connect-timeout-s", help_flags("proxy"))

    def test_old_node_field_and_variable_work_with_a_note(self):
        if help_flags("node") is None:
            self.skipTest("this build has no node mode (-DNETPROF_BUILD_BPF=OFF)")
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"report_interval_s": 3, "admin_address": "off", "max_pods": 0}, f)
        self.addCleanup(os.unlink, f.name)
        p = run("node", "--config", f.name, "--inbound-ports", "80",
                env={"NETPROF_DRAIN_TIMEOUT_S": "2"})
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("field report_interval_s is deprecated: use report_interval", p.stderr)
        self.assertIn("field admin_address is deprecated: use admin", p.stderr)
        self.assertIn("max_pods: 0 is out of range", p.stderr)


if __name__ == "__main__":
    unittest.main()
