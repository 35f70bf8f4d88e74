"""Temporary notebooks for the browser tests: the repository's files are copied, never modified.

* ``copy_course_tree``: a private copy of ``course/`` (and ``solutions/``) to serve;
* ``answered_notebook``: a released notebook whose exercise cells hold the solution's answers, i.e. what
  a learner who solved everything submits (locked cells untouched, so nbgrader's checksums still match);
* ``widget_notebook``: the cells a course notebook needs to show its first slider widget;
* ``fallback_widget_notebook``: a minimal slider + matplotlib notebook, used only while the course has
  no slider widget yet.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .lab import COURSE, SOLUTIONS

IGNORED = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc", "feedback")
#: A code cell that builds a slider: an ipywidgets slider, interact(), or a gradlab explorer.
WIDGET_SOURCE = re.compile(r"Slider\b|\binteract(ive)?\b|Explorer\b|\.widget\b")


def copy_course_tree(dest: Path, *, with_solutions: bool = False) -> Path:
    """Copy ``course/`` (and ``solutions/`` if asked) into ``dest``; returns ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(COURSE, dest / "course", ignore=IGNORED, dirs_exist_ok=True)
    if with_solutions and SOLUTIONS.is_dir():
        shutil.copytree(SOLUTIONS, dest / "solutions", ignore=IGNORED, dirs_exist_ok=True)
    return dest


def released_notebooks(course: Path = COURSE) -> list[Path]:
    """Released notebooks ``course/NN_topic/NN_topic.ipynb``, in course order."""
    return sorted(
        p / f"{p.name}.ipynb" for p in course.iterdir()
        if p.is_dir() and p.name[:2].isdigit() and (p / f"{p.name}.ipynb").is_file()
    )  # fmt: skip


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def answered_notebook(released: Path, solution: Path, dest: Path) -> Path:
    """Write ``dest``: ``released`` with each exercise cell's source taken from ``solution``.

    Exercise cells are matched by nbgrader ``grade_id``; everything else stays as released.
    """
    nb = nbformat.read(released, as_version=4)
    answers = {
        _nbgrader(c)["grade_id"]: c.source
        for c in nbformat.read(solution, as_version=4).cells
        if _nbgrader(c).get("solution") and "grade_id" in _nbgrader(c)
    }
    filled = 0
    for cell in nb.cells:
        meta = _nbgrader(cell)
        if meta.get("solution") and meta.get("grade_id") in answers:
            cell.source = answers[meta["grade_id"]]
            filled += 1
    if not filled:
        raise ValueError(f"{released} has no exercise cell matching {solution}")
    nbformat.write(nb, dest)
    return dest


@dataclass
class WidgetNotebook:
    """A notebook written for the widget test, and where its widget comes from."""

    path: Path
    source: str  # "solutions/NN/NN.ipynb, cell <id>" or "fallback"


def _is_test_cell(cell) -> bool:
    meta = _nbgrader(cell)
    return bool(meta.get("grade")) and not meta.get("solution")


def _is_import_only(source: str) -> bool:
    lines = [ln.strip() for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return all(ln.startswith(("import ", "from ")) for ln in lines)


def widget_notebook(solution: Path, dest: Path) -> str | None:
    """Write ``dest``: the code cells of ``solution`` up to its first slider widget cell.

    Test cells (graded, no answer) and markdown are left out: they define nothing later cells use.
    Returns the widget cell's id, or None (nothing written) when ``solution`` has no widget cell.
    """
    nb = nbformat.read(solution, as_version=4)
    kept = []
    for cell in nb.cells:
        if cell.cell_type != "code" or _is_test_cell(cell):
            continue
        kept.append(cell)
        if WIDGET_SOURCE.search(cell.source) and not _is_import_only(cell.source):
            for c in kept:
                c.outputs, c.execution_count = [], None
            nb.cells = kept
            nbformat.write(nb, dest)
            return cell.get("id", "?")
    return None


def course_widget_notebook(dest_dir: Path, preferred=("02_", "03_")) -> WidgetNotebook | None:
    """A trimmed copy of the first course notebook with a slider (notebooks 02, 03 first), or None."""
    if not SOLUTIONS.is_dir():
        return None
    sources = sorted(p for p in SOLUTIONS.glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb") if p.stem == p.parent.name)
    sources.sort(key=lambda p: (not p.stem.startswith(preferred), p.stem))
    for solution in sources:
        target_dir = dest_dir / solution.parent.name
        target_dir.mkdir(parents=True, exist_ok=True)
        path = target_dir / f"{solution.stem}_widget.ipynb"
        cell_id = widget_notebook(solution, path)
        if cell_id is not None:
            return WidgetNotebook(path, f"solutions/{solution.parent.name}/{solution.name}, cell {cell_id}")
    return None


FALLBACK_WIDGET_SOURCE = '''\
import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np


def plot_gradient_norms(rho=0.9):
    """||dL/dh_t|| ~ rho**(T - t) on a log scale."""
    t = np.arange(50)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.semilogy(t, rho ** (50 - t))
    ax.set_title(f"rho = {rho:.2f}")
    plt.show()


widgets.interact(plot_gradient_norms, rho=widgets.FloatSlider(value=0.9, min=0.5, max=1.5, step=0.05));
'''


def fallback_widget_notebook(dest: Path) -> WidgetNotebook:
    """A one-cell notebook with a FloatSlider driving a matplotlib plot."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(FALLBACK_WIDGET_SOURCE)]
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    return WidgetNotebook(dest, "fallback")


FALLBACK_STUB = "    # YOUR CODE HERE\n    raise NotImplementedError()"
FALLBACK_ANSWER = "    import numpy as np\n    return np.sqrt(sum(float((g**2).sum()) for g in grads))"


def fallback_assignment(dest_dir: Path) -> tuple[Path, Path]:
    """A one-exercise released notebook and its answered copy (used only while course/ has none).

    Cells carry nbgrader metadata and checksums as ``nbgrader generate_assignment`` writes them.
    """
    from nbgrader.utils import compute_checksum

    exercise = nbformat.v4.new_code_cell(
        f'def global_norm(grads):\n    """sqrt of the sum of squares of all entries."""\n{FALLBACK_STUB}'
    )
    exercise.metadata["nbgrader"] = {
        "grade": False, "solution": True, "locked": False, "grade_id": "global_norm", "schema_version": 3,
    }  # fmt: skip
    test = nbformat.v4.new_code_cell(
        '"""global_norm of [3, 4] and [12] is 13."""\nimport numpy as np\n\n'
        "assert np.isclose(global_norm([np.array([3.0, 4.0]), np.array([12.0])]), 13.0)"
    )
    test.metadata["nbgrader"] = {
        "grade": True, "solution": False, "locked": True, "grade_id": "global_norm_pythagoras",
        "points": 1, "schema_version": 3,
    }  # fmt: skip
    for cell in (exercise, test):
        cell.metadata["nbgrader"]["checksum"] = compute_checksum(cell)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [exercise, test]
    dest_dir.mkdir(parents=True, exist_ok=True)
    released, answered = dest_dir / "fallback.ipynb", dest_dir / "fallback_answered.ipynb"
    nbformat.write(nb, released)
    exercise.source = exercise.source.replace(FALLBACK_STUB, FALLBACK_ANSWER)
    nbformat.write(nb, answered)
    return released, answered
