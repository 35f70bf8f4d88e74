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

import contextlib
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
    with _client(notebook_path, timeout) as (client, _nb):
        t0 = time.perf_counter()
        client.execute()
        return time.perf_counter() - t0


def cell_times(notebook_path, *, timeout=CELL_TIMEOUT_S):
    """Execute a notebook as ``execute`` does; returns ``(kernel_start_s, [(cell_id, seconds), ...])``.

    One entry per code cell, timed from the request to the reply (what a learner waits for each cell).
    Raises on a failing cell.
    """
    with _client(notebook_path, timeout) as (client, nb):
        times = []
        t0 = time.perf_counter()
        with client.setup_kernel():
            start = time.perf_counter() - t0
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                t1 = time.perf_counter()
                client.execute_cell(cell, index)
                times.append((cell.get("id", str(index)), time.perf_counter() - t1))
        return start, times


@contextlib.contextmanager
def _client(notebook_path, timeout):
    """(an nbclient client, the notebook) on a temporary copy of the notebook's folder."""
    import nbformat
    from nbclient import NotebookClient

    notebook_path = Path(notebook_path)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("MPLBACKEND", "Agg")
    with tempfile.TemporaryDirectory(prefix="bench-nb-") as tmp:
        workdir = Path(tmp) / notebook_path.parent.name
        shutil.copytree(notebook_path.parent, workdir, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        nb = nbformat.read(workdir / notebook_path.name, as_version=4)
        yield NotebookClient(nb, timeout=timeout, kernel_name="python3",
                             resources={"metadata": {"path": str(workdir)}}), nb


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


def main(argv=None):
    """``python -m bench.bench_notebooks NOTEBOOK...``: each code cell's seconds and the machine's load."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for path in args.notebooks:
        load = os.getloadavg()[0]
        start, times = cell_times(path)
        total = start + sum(s for _, s in times)
        print(f"{path.name}: {total:.1f} s (kernel start {start:.1f} s; load average {load:.2f} -> "
              f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")
        for cell_id, seconds in times:
            print(f"  {seconds:7.2f} s  {cell_id}")


if __name__ == "__main__":
    main()
