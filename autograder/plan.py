"""The plan of one job: the notebook that runs in the sandbox, rebuilt from the SOURCE notebook (never
from the submission's structure), the test cells that run in the trusted process, and their free names.

Moved out of ``autograder/trusted.py`` (one module per job); ``trusted`` re-exports every name."""

from __future__ import annotations

import ast
import builtins
import json
import symtable
from dataclasses import dataclass, field
from pathlib import Path

from . import notebooks
from .cells import SubmissionProblem, cell_source, released_stub
from .redaction import Secrets
from .sandbox import needed_modules

MAX_NOTEBOOK_BYTES = 50 << 20


@dataclass
class TestCell:
    grade_id: str
    source: str
    points: float
    summary: str


@dataclass
class Plan:
    setup: list = field(default_factory=list)  # [{"label", "source", "origin"}]
    tests: list = field(default_factory=list)  # [TestCell]
    notes: list = field(default_factory=list)
    secrets: Secrets = field(default_factory=lambda: Secrets())
    exercises: frozenset = frozenset()  # grade ids of the source's solution cells
    needed: tuple = ()  # gradlab modules the source's own setup cells import (sandbox.needed_modules)
    skipped: dict = field(default_factory=dict)  # setup cell index -> why it is skipped on a restart

    @property
    def max_score(self):
        return sum(t.points for t in self.tests)


def read_submission(path):
    """The submission notebook as a dict, or SubmissionProblem saying why it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise SubmissionProblem("missing notebook")
    if path.is_symlink():
        raise SubmissionProblem("invalid notebook (a symbolic link)")
    size = path.stat().st_size
    if size == 0:
        raise SubmissionProblem("invalid notebook (empty file)")
    if size > MAX_NOTEBOOK_BYTES:
        raise SubmissionProblem(f"invalid notebook (larger than {MAX_NOTEBOOK_BYTES >> 20} MiB)")
    try:
        nb = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise SubmissionProblem("invalid notebook (malformed JSON)") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise SubmissionProblem("invalid notebook (no list of cells)")
    return nb


def cells_by_grade_id(submission_nb):
    """(grade id -> the submission's first cell with that id, the ids seen more than once), read
    defensively: a learner's notebook may hold anything where a cell or its metadata should be."""
    by_id, dupes = {}, set()
    for cell in (submission_nb or {}).get("cells", []):
        if not isinstance(cell, dict):
            continue
        meta = cell.get("metadata")
        nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
        gid = nbg.get("grade_id") if isinstance(nbg, dict) else None
        if not isinstance(gid, str):
            continue
        if gid in by_id:
            dupes.add(gid)
            continue
        by_id[gid] = cell
    return by_id, dupes


def build_plan(source_nb, submission_nb):
    """The cells to run in the sandbox and the test cells to run here (see the module docstring)."""
    plan = Plan(secrets=Secrets(source_nb))
    plan.exercises = frozenset(notebooks.grade_id(c) for c in source_nb.get("cells", [])
                               if notebooks.is_solution(c) and notebooks.grade_id(c))
    by_id, seen_dupes = cells_by_grade_id(submission_nb)
    for index, cell in enumerate(source_nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        gid = notebooks.grade_id(cell) or f"cell {index}"
        src = cell_source(cell)
        if notebooks.is_test(cell):
            doc = ast.get_docstring(ast.parse(src)) if _parses(src) else None
            summary = (doc or gid).strip().splitlines()[0] if (doc or gid).strip() else gid
            points = float(notebooks.nbgrader_meta(cell).get("points", 0) or 0)
            plan.tests.append(TestCell(gid, src, points, summary))
        elif notebooks.is_solution(cell):
            theirs = by_id.get(gid)
            learner_src = None
            if theirs is None:
                plan.notes.append(f"Exercise cell '{gid}' was not found in your notebook (deleted, or its "
                                  "grade_id changed); it was graded as left blank.")
            elif theirs.get("cell_type") != "code":
                plan.notes.append(f"Exercise cell '{gid}' is no longer a code cell; it was graded as left blank.")
            else:
                try:
                    learner_src = cell_source(theirs)
                except SubmissionProblem:
                    plan.notes.append(f"Exercise cell '{gid}' has unreadable source; graded as left blank.")
            if gid in seen_dupes:
                plan.notes.append(f"Exercise cell '{gid}' appears more than once; only the first one was used.")
            origin = "learner" if learner_src is not None else "stub"
            plan.setup.append({"label": gid, "source": learner_src if learner_src is not None
                               else released_stub(src), "origin": origin})
        elif notebooks.is_slow(cell):
            continue
        else:
            plan.setup.append({"label": gid, "source": src, "origin": "course"})
    plan.needed = tuple(needed_modules([c["source"] for c in plan.setup if c["origin"] == "course"] + [
        released_stub(cell_source(c)) for c in source_nb.get("cells", []) if notebooks.is_solution(c)]))
    return plan


def _parses(src):
    try:
        ast.parse(src)
        return True
    except SyntaxError:
        return False


def free_names(source):
    """Names the cell reads from its module namespace but never binds there, builtins excluded, in order of
    appearance. Scope-aware (``symtable``): a parameter or local of a function, a comprehension's variable or
    a class attribute binds its name in its own scope only, so a helper whose parameter is named like a
    learner's function does not hide that function from the rest of the cell; a name a function declares
    ``global`` and assigns counts as bound."""
    top = symtable.symtable(source, "<cell>", "exec")
    free, bound = set(), {sym.get_name() for sym in top.get_symbols() if sym.is_local()}

    def visit(table):
        for sym in table.get_symbols():
            name = sym.get_name()
            if table is top:
                if sym.is_referenced() and not sym.is_local():
                    free.add(name)
            elif sym.is_declared_global() and sym.is_assigned():
                bound.add(name)
            elif sym.is_referenced() and sym.is_global():
                free.add(name)
        for child in table.get_children():
            visit(child)

    visit(top)
    free = {name for name in free - bound if not hasattr(builtins, name)}
    order = [node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)]
    out = []
    for name in order + sorted(free):
        if name in free and name not in out:
            out.append(name)
    return out
