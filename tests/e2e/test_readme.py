"""The README's folder table matches the tree: every folder of user/ and every top-level folder
has a row, every row names folders that exist, and each reason is one line."""
import os
import re
import subprocess
import unittest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def folder_table():
    """{folder: reason} from the README's table (a row may name several folders)."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    start = text.index("| folder | what it does |")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        for folder in re.findall(r"`([^`]+)/`", cells[0]):
            rows[folder] = cells[1]
    return rows


class FolderTable(unittest.TestCase):
    def test_every_folder_has_a_row_and_every_row_a_folder(self):
        rows = folder_table()
        # The folders git tracks (build trees and other local folders are no part of the tree).
        files = subprocess.run(["git", "-C", ROOT, "ls-files"], capture_output=True, text=True,
                               check=True).stdout.split()
        tree = set()
        for path in files:
            parts = path.split("/")
            if len(parts) < 2 or parts[0].startswith("."):
                continue
            if parts[0] != "user":
                tree.add(parts[0])
            elif len(parts) > 2:
                tree.add("user/" + parts[1])
        self.assertEqual(sorted(tree - rows.keys()), [], "folders without a row in the README")
        self.assertEqual(sorted(rows.keys() - tree), [], "README rows for folders that are gone")
        for folder, reason in rows.items():
            self.assertTrue(reason, f"{folder} has no reason")


if __name__ == "__main__":
    unittest.main()
