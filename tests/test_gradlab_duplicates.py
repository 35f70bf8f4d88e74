"""gradlab says each thing once: the `duplicates` tool finds no pair of repeated places in it (issue 17.4).

`duplicates` is a command of the development machine, not a dependency of the course: where it is not on
PATH (a learner's laptop, CI) the test is skipped and says so.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

GRADLAB = Path(__file__).resolve().parents[1] / "course" / "gradlab"


def test_no_duplicated_code_inside_gradlab():
    tool = shutil.which("duplicates")
    if tool is None:
        pytest.skip("the `duplicates` command is not on PATH here")
    proc = subprocess.run([tool, "--repo", str(GRADLAB), "--most", "20", "--seconds", "120"],
                          capture_output=True, text=True, timeout=300)
    report = proc.stdout.strip()
    first = report.splitlines()[0] if report else ""
    assert "incomplete" not in report, f"duplicates did not finish reading gradlab:\n{report}"
    assert first.startswith("no duplicates"), f"duplicates finds repeated code inside course/gradlab:\n{report}"
