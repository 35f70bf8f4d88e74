"""Execution time of every solution notebook and of the whole course (budgets 60 s each, 5 min in all).

Each ``solutions/NN_topic/NN_topic.ipynb`` is executed top to bottom with nbclient, as a learner's
"Restart and run all" would, in a temporary copy of its assignment folder (the working directory is the
notebook's folder, so relative paths behave as in JupyterLab; nothing is written into solutions/). The
time counts from the kernel's start to the last cell's end.

The budgets are absolute seconds on this machine. Because a shared machine's speed drifts, a fixed NumPy
workload (``bench.common.reference_workload``) is timed just before and just after each notebook; the
ratio column is the notebook's time in units of that workload (the mean of the two), which stays
comparable between machines and runs.

``--quick`` executes a two-cell generated notebook through the same code path instead (the machinery,
not the course).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import error_row, reference_workload, row

NOTEBOOK_BUDGET_S = 60.0
COURSE_BUDGET_S = 300.0
CELL_TIMEOUT_S = 600
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colours in the kernel's tracebacks


def execute(notebook_path, *, timeout=CELL_TIMEOUT_S):
    """Execute a notebook in a temporary copy of its folder; returns wall seconds. Raises on a failing cell."""
    import nbformat
    from nbclient import NotebookClient

    notebook_path = Path(notebook_path)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("MPLBACKEND", "Agg")
    with tempfile.TemporaryDirectory(prefix="bench-nb-") as tmp:
        workdir = Path(tmp) / notebook_path.parent.name
        shutil.copytree(notebook_path.parent, workdir, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        nb = nbformat.read(workdir / notebook_path.name, as_version=4)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(workdir)}})
        t0 = time.perf_counter()
        client.execute()
        return time.perf_counter() - t0


def _quick_notebook(folder):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import numpy as np\nx = np.arange(10.0)"),
                nbformat.v4.new_code_cell("assert float(x.sum()) == 45.0\nimport gradlab")]
    path = Path(folder) / "00_quick" / "00_quick.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    return path


def _notebooks(quick, tmp):
    if quick:
        return [("00_quick", _quick_notebook(tmp))]
    from autograder.paths import assignments, notebook_path

    return [(a, notebook_path(a)) for a in assignments() if notebook_path(a).exists()]


def run(quick=False):
    """One row per notebook (seconds, ratio to the reference workload), then the course total."""
    rows = []
    total = 0.0
    total_ref = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-quick-") as tmp:
        notebooks = _notebooks(quick, tmp)
        for assignment, path in notebooks:
            name = f"notebook {assignment}"
            before = reference_workload(quick)
            try:
                seconds = execute(path)
            except Exception as exc:  # a failing notebook is reported and the others still run
                lines = _ANSI.sub("", str(exc)).strip().splitlines()
                rows.append(error_row(name, f"{type(exc).__name__}: {lines[-1] if lines else ''}"[:300]))
                continue
            ref = (before + reference_workload(quick)) / 2
            total += seconds
            total_ref += ref
            rows.append(row(name, seconds, "s", peer=f"reference workload {ref:.3g} s", ratio=seconds / ref,
                            budget=f"<= {NOTEBOOK_BUDGET_S:g} s", ok=seconds <= NOTEBOOK_BUDGET_S))
    executed = sum(1 for r in rows if not r.get("error"))
    failed = len(notebooks) - executed
    note = f"{executed} notebooks" + (f", {failed} failed (not counted)" if failed else "")
    if not notebooks:
        note = "no solution notebooks found in solutions/"
    rows.append(row("course total (all solution notebooks)", total, "s",
                    peer=f"reference workload x {len(notebooks)}: {total_ref:.3g} s; {note}",
                    ratio=total / total_ref if total_ref else None,
                    budget=f"<= {COURSE_BUDGET_S:g} s", ok=total <= COURSE_BUDGET_S and not failed))
    return rows
