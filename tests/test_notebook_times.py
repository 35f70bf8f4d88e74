"""Each notebook states its expected time at the top, in one fixed form, and the statement holds.

The first (title/objectives) cell of every solution notebook says, once:

    **Time:** about N minutes to work through; the code runs in about S s.

S is what "Restart and run all" takes on a 2-core machine (bench_notebooks measures it); it must fit the
60 s budget, and when a bench report is at hand (bench/results/report.json, written by ``make bench``) the
measured time must lie within a factor of two of S either way (a shared machine drifts by about that much).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from autograder.paths import assignments, notebook_path
from bench.bench_notebooks import NOTEBOOK_BUDGET_S, cell_times

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "bench" / "results" / "report.json"
TIME_LINE = re.compile(r"\*\*Time:\*\* about (\d+) minutes to work through; the code runs in about (\d+) s\.")
MARGIN = 2.0

ASSIGNMENTS = [a for a in assignments() if notebook_path(a).exists()]


def stated(assignment):
    """(minutes, seconds) from the notebook's first cell; fails unless the line appears exactly once."""
    first = nbformat.read(notebook_path(assignment), as_version=4).cells[0]
    assert first.cell_type == "markdown", f"{assignment}: the first cell must be the title/objectives markdown"
    found = TIME_LINE.findall(first.source)
    assert len(found) == 1, (f"{assignment}: the first cell must say once '**Time:** about N minutes to work "
                             f"through; the code runs in about S s.' (found {len(found)})")
    minutes, seconds = found[0]
    return int(minutes), int(seconds)


def test_the_time_line_is_recognised_and_rejects_other_forms():
    assert TIME_LINE.findall("**Time:** about 75 minutes to work through; the code runs in about 20 s.") == [
        ("75", "20")]
    assert not TIME_LINE.findall("About 60 to 90 minutes.")
    assert not TIME_LINE.findall("**Time:** about 75 minutes; the code runs in well under a minute.")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_first_cell_states_the_expected_time(assignment):
    minutes, seconds = stated(assignment)
    assert 10 <= minutes <= 240, f"{assignment}: {minutes} minutes to work through is not a lesson's length"
    assert 1 <= seconds <= NOTEBOOK_BUDGET_S, f"{assignment}: a stated run time of {seconds} s exceeds the budget"
    assert seconds < minutes * 60


def _measured():
    if not REPORT.exists():
        return {}
    rows = json.loads(REPORT.read_text()).get("rows", [])
    return {r["name"].removeprefix("notebook "): r["value"] for r in rows
            if r.get("name", "").startswith("notebook ") and not r.get("error")}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_stated_run_time_matches_the_bench_report(assignment):
    measured = _measured()
    if assignment not in measured:
        pytest.skip(f"no bench report row for {assignment} (make bench writes {REPORT.relative_to(ROOT)})")
    _, seconds = stated(assignment)
    took = measured[assignment]
    assert seconds / MARGIN <= took <= seconds * MARGIN, (
        f"{assignment}: the first cell says the code runs in about {seconds} s; bench measured {took:.1f} s")


def test_cell_times_times_every_code_cell(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# title"),
                nbformat.v4.new_code_cell("import time\ntime.sleep(0.3)"),
                nbformat.v4.new_code_cell("x = 1")]
    path = tmp_path / "00_probe" / "00_probe.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    start, times = cell_times(path)
    assert start > 0 and [cell_id for cell_id, _ in times] == [nb.cells[1].id, nb.cells[2].id]
    assert times[0][1] >= 0.3 and times[1][1] < times[0][1]
