"""Reading, writing and authoring the course's notebooks.

Notebooks are committed without outputs and with stable cell ids, written the same way every time
(``write``), so that diffs stay readable and the release check can compare files byte for byte.

Cell conventions (see docs/AUTHORING.md):

* a solution cell is an nbgrader ``solution`` cell whose grade_id is the exercise name;
* a test cell is an nbgrader ``grade`` cell (locked, with points) whose source opens with a one-line
  docstring saying what it checks;
* every other code cell is a locked read-only nbgrader cell, so that nbgrader restores it on autograde;
* a code cell tagged ``slow`` (a long experiment or a widget) is left out when the autograder grades a
  submission; graded cells never depend on one.

The builders below (``md``, ``code``, ``solution``, ``tests``, ``new_notebook``) are for authors who
prefer to generate a first draft from a script; the committed .ipynb in solutions/ stays the source.
"""

from __future__ import annotations

import json
import re
from pathlib import Path


class _Nbformat:
    """nbformat, imported on first use: its import pulls in jsonschema's format checkers (seconds of
    CPU per process), which reading and grading notebooks never need; building them does."""

    def __getattr__(self, name):
        import nbformat as real

        return getattr(real, name)


nbformat = _Nbformat()

SLOW_TAG = "slow"
_ID_RE = re.compile(r"^[a-zA-Z0-9-_]{1,64}$")


def nbgrader_meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def is_solution(cell):
    return bool(nbgrader_meta(cell).get("solution"))


def is_test(cell):
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution") and cell.get("cell_type") == "code"


def is_slow(cell):
    return SLOW_TAG in cell.get("metadata", {}).get("tags", [])


def grade_id(cell):
    return nbgrader_meta(cell).get("grade_id")


def _meta(grade_id_, *, solution=False, grade=False, locked=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id_, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return meta


def md(source, *, id):
    """A markdown cell."""
    cell = nbformat.v4.new_markdown_cell(source.strip("\n"))
    cell["id"] = id
    return cell


def code(source, *, id, tags=()):
    """A read-only code cell (locked, so nbgrader's autograde restores it)."""
    cell = nbformat.v4.new_code_cell(source.strip("\n"))
    cell["id"] = id
    cell["metadata"]["nbgrader"] = _meta(id, locked=True)
    if tags:
        cell["metadata"]["tags"] = list(tags)
    return cell


def solution(source, *, grade_id):
    """A solution cell: the part between ### BEGIN SOLUTION / ### END SOLUTION is stubbed on release."""
    if "### BEGIN SOLUTION" not in source:
        raise ValueError(f"solution cell {grade_id!r} has no '### BEGIN SOLUTION' marker")
    cell = nbformat.v4.new_code_cell(source.strip("\n"))
    cell["id"] = grade_id
    cell["metadata"]["nbgrader"] = _meta(grade_id, solution=True)
    return cell


def tests(source, *, grade_id, points):
    """A graded test cell; its source must open with a one-line docstring."""
    if not source.lstrip().startswith('"""'):
        raise ValueError(f"test cell {grade_id!r} must open with a one-line docstring")
    cell = nbformat.v4.new_code_cell(source.strip("\n"))
    cell["id"] = grade_id
    cell["metadata"]["nbgrader"] = _meta(grade_id, grade=True, locked=True, points=points)
    return cell


def new_notebook(cells):
    nb = nbformat.v4.new_notebook()
    nb["cells"] = list(cells)
    nb["metadata"] = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python", "version": "3.11"},
    }
    return nb


def strip(nb):
    """Remove outputs, execution counts and per-run metadata; give every cell a stable, unique id."""
    nb["nbformat"], nb["nbformat_minor"] = 4, 5
    seen = set()
    for index, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.pop("attachments", None) if not cell.get("attachments") else None
        meta = cell.setdefault("metadata", {})
        for key in ("execution", "collapsed", "scrolled", "jupyter", "ExecuteTime"):
            meta.pop(key, None)
        cid = cell.get("id")
        if not cid or not _ID_RE.match(cid) or cid in seen:
            cid = grade_id(cell) or f"cell-{index:03d}"
            while cid in seen:
                cid = f"{cid}-{index}"
        cell["id"] = cid
        seen.add(cid)
    for key in ("widgets",):
        nb.get("metadata", {}).pop(key, None)
    return nb


def dumps(nb):
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def read(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write(nb, path):
    """Write ``nb`` stripped and in the one canonical form."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(dumps(strip(nb)), encoding="utf-8")


def normalize(path):
    """Rewrite a notebook file in canonical form; returns True when the file changed."""
    before = Path(path).read_text(encoding="utf-8")
    after = dumps(strip(json.loads(before)))
    if after != before:
        Path(path).write_text(after, encoding="utf-8")
        return True
    return False
