#!/usr/bin/env python3
"""Turns the tests of a CMake build tree that carry a label (default "vm") into guest steps.

Usage: ctest-plan.py BUILD_DIR LABEL PLAN_OUT
Writes PLAN_OUT: one `vm_step NAME WORKDIR [VAR=VALUE...] COMMAND...` line per test (see lib/init.sh),
with the exact command line, working directory and environment ctest would use.
Prints what the guest needs for those commands, one "KIND PATH" per line:
  exe PATH   an executable (with its shared libraries)
  dir PATH   a working directory outside the build tree: its top-level files (e.g. test scripts)
  file PATH  an existing file named by an environment value (e.g. NETPROF_BIN=/.../netprof)
"""
import os
import json
import shlex
import subprocess
import sys


def props(test):
    return {p["name"]: p["value"] for p in test.get("properties", [])}


def main():
    build_dir, label, plan_out = sys.argv[1:4]
    out = subprocess.run(["ctest", "--test-dir", build_dir, "--show-only=json-v1"],
                         check=True, capture_output=True, text=True).stdout
    steps, needs = [], []

    def need(kind, path):
        if (kind, path) not in needs:
            needs.append((kind, path))

    for test in json.loads(out).get("tests", []):
        p = props(test)
        if label not in p.get("LABELS", []) or p.get("DISABLED"):
            continue
        command = test.get("command")
        if not command:
            sys.exit(f"vmtest: test '{test['name']}' has no command (is its executable built?)")
        workdir = p.get("WORKING_DIRECTORY", build_dir)
        env = p.get("ENVIRONMENT", [])
        steps.append(" ".join(shlex.quote(w) for w in
                              ["vm_step", test["name"], workdir, *env, *command]))
        need("exe", command[0])
        if os.path.isdir(workdir) and os.path.realpath(workdir) != os.path.realpath(build_dir):
            need("dir", workdir)
        for value in (e.split("=", 1)[1] for e in env if "=" in e):
            if value.startswith("/") and os.path.isfile(value):
                need("file", value)
    with open(plan_out, "w") as f:
        f.write("".join(s + "\n" for s in steps))
    print("".join(f"{kind} {path}\n" for kind, path in needs), end="")


if __name__ == "__main__":
    main()
