"""The course's own catalogue of typical learner mistakes, one file per notebook.

``tests/mistakes/NN_topic.py`` (named after its assignment) holds ``MISTAKES``, a list of dicts:

* ``grade_id``: the exercise (the ``solution: true`` cell) the mistake is made in;
* ``name``: a short identifier, unique among the exercise's mistakes;
* ``kind``: ``"common"`` (a learner is likely to make it: the visible tests must catch it, so that
  Validate tells the learner before the grader does) or ``"rare"`` (the hidden tests must catch it);
  ``"harmless"`` is a variant that is *not* a mistake (e.g. a correct formula that NumPy warns about
  inside a test that says warnings are not graded) and must keep every point;
* ``why``: the mistake in words;
* ``replace``: ``[(old, new), ...]``, text replacements applied in order to the solution cell's source
  (each ``old`` must occur exactly once), or ``cell``: the whole new source of the cell.

Each mistake is the solution notebook with that one cell changed. ``tests/test_mistakes.py`` grades all
of them with the class grader in one batch and asserts that every mistake loses points on its exercise
(a test cell that calls one of the functions the cell defines fails) and that every common one also
fails the visible part of such a test cell. Adding a notebook's catalogue means adding its file here.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import re
import shutil
from pathlib import Path

from autograder import notebooks
from autograder.paths import SOLUTIONS, assignments, notebook_path

HERE = Path(__file__).resolve().parent
KINDS = ("common", "rare", "harmless")
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)
VISIBLE_SUFFIX = "__visible"
RESET_ID = "zz_mistakes_fresh_warnings"
# Run in the learner's process between the graded cells and their visible copies: Python shows a warning
# once per code location, so without this a warning the full cell already raised would not reach stderr
# again in the visible copy (catch_warnings clears every module's record of warnings already shown).
RESET_SOURCE = '''"""Forget which warnings were already shown in the learner's process. [no hidden tests]"""
from gradlab.grading import in_learner_process


@in_learner_process
def fresh_warnings():
    import warnings

    with warnings.catch_warnings():
        pass


fresh_warnings()
'''


def _src(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def load(assignment):
    """The mistakes of ``assignment`` (an empty list when it has no catalogue file yet)."""
    path = HERE / f"{assignment}.py"
    if not path.exists():
        return []
    spec = importlib.util.spec_from_file_location(f"_mistakes_{assignment}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [dict(m, assignment=assignment) for m in module.MISTAKES]


def catalogue(source=SOLUTIONS):
    """Every assignment's mistakes, {assignment: [mistake, ...]}."""
    return {a: load(a) for a in assignments(source)}


def catalogue_files():
    return sorted(p.stem for p in HERE.glob("[0-9][0-9]_*.py"))


def exercise_cells(nb):
    """{grade_id: source} of the notebook's exercise (solution) code cells."""
    return {notebooks.grade_id(c): _src(c) for c in nb["cells"]
            if notebooks.is_solution(c) and c["cell_type"] == "code" and notebooks.grade_id(c)}


def defined_functions(src):
    tree = ast.parse(src)
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}


def loaded_names(src):
    return {n.id for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def apply(mistake, original):
    """The mistaken source of the exercise cell (ValueError when the catalogue no longer fits it)."""
    if "cell" in mistake:
        new = mistake["cell"]
    else:
        # the replacements apply to the answer (between the solution markers), never to the docstring
        head, sep, rest = original.partition("### BEGIN SOLUTION")
        answer, end, tail = rest.rpartition("### END SOLUTION")
        if not (sep and end):
            head, sep, answer, end, tail = "", "", original, "", ""
        for old, replacement in mistake["replace"]:
            count = answer.count(old)
            if count != 1:
                raise ValueError(f"{mistake['assignment']} {mistake['name']}: {old!r} occurs {count} times "
                                 f"in the answer of {mistake['grade_id']} (expected once)")
            answer = answer.replace(old, replacement)
        new = head + sep + answer + end + tail
    if new == original:
        raise ValueError(f"{mistake['assignment']} {mistake['name']}: the mistake changes nothing")
    return new


def problems(assignment, mistakes):
    """What is wrong with a notebook's catalogue, in words (empty when nothing is)."""
    nb = notebooks.read(notebook_path(assignment))
    cells = exercise_cells(nb)
    out, names = [], set()
    for m in mistakes:
        label = f"{assignment} {m.get('name')}"
        if set(m) - {"assignment", "grade_id", "name", "kind", "why", "replace", "cell"}:
            out.append(f"{label}: unknown keys {sorted(set(m) - {'grade_id', 'name', 'kind', 'why'})}")
        if (m.get("grade_id"), m.get("name")) in names:
            out.append(f"{label}: the name is used twice for {m.get('grade_id')}")
        names.add((m.get("grade_id"), m.get("name")))
        if m.get("kind") not in KINDS:
            out.append(f"{label}: kind must be one of {KINDS}")
        if not m.get("why"):
            out.append(f"{label}: say in words what the mistake is (why)")
        if m.get("grade_id") not in cells:
            out.append(f"{label}: no exercise cell {m.get('grade_id')!r}")
            continue
        if ("replace" in m) == ("cell" in m):
            out.append(f"{label}: give either replace or cell")
            continue
        try:
            new = apply(m, cells[m["grade_id"]])
            ast.parse(new)
        except (ValueError, SyntaxError) as err:
            out.append(str(err))
    return out


def dependencies(nb):
    """{test grade_id: exercises (grade ids) its outcome can depend on}: the exercises whose functions the
    test cell names, and those that these exercises' solutions call, transitively."""
    cells = exercise_cells(nb)
    owner = {f: gid for gid, src in cells.items() for f in defined_functions(src)}
    calls = {gid: {owner[n] for n in loaded_names(src) if n in owner} | {gid} for gid, src in cells.items()}
    changed = True
    while changed:
        changed = False
        for gid in calls:
            wider = set().union(*(calls[g] for g in calls[gid]))
            if wider != calls[gid]:
                calls[gid], changed = wider, True
    deps = {}
    for c in nb["cells"]:
        if notebooks.is_test(c):
            direct = {owner[n] for n in loaded_names(_src(c)) if n in owner}
            deps[notebooks.grade_id(c)] = set().union(set(), *(calls[g] for g in direct))
    return deps


def own_tests(nb, grade_id):
    """The test cells of an exercise: those that name one of the functions its cell defines."""
    functions = defined_functions(exercise_cells(nb)[grade_id])
    return {notebooks.grade_id(c) for c in nb["cells"] if notebooks.is_test(c) and loaded_names(_src(c)) & functions}


def pack(assignment, mistakes):
    """Mistakes grouped into submissions: two share one only when no test cell depends on both their
    exercises, so each test's outcome is due to at most one of them; a harmless variant shares one only
    with other harmless variants (it must keep every point its submission's tests give, and a mistake
    packed with it would cost some of them). A list of lists."""
    nb = notebooks.read(notebook_path(assignment))
    deps = dependencies(nb)
    cells = exercise_cells(nb)
    owner = {f: gid for gid, src in cells.items() for f in defined_functions(src)}
    # the exercises a mistaken cell calls (a mistake may call one the solution does not)
    reach = {key(m): {m["grade_id"]} | {owner[n] for n in loaded_names(apply(m, cells[m["grade_id"]])) if n in owner}
             for m in mistakes}

    def apart(m, o):
        return m["grade_id"] != o["grade_id"] and all(
            not (m["grade_id"] in d and (d | reach[key(m)]) & reach[key(o)])
            and not (o["grade_id"] in d and (d | reach[key(o)]) & reach[key(m)]) for d in deps.values())

    groups = []
    for m in mistakes:
        for group in groups:
            if all(apart(m, o) and (m["kind"] == "harmless") == (o["kind"] == "harmless") for o in group):
                group.append(m)
                break
        else:
            groups.append([m])
    return groups


def key(mistake):
    return mistake["grade_id"], mistake["name"]


def reached(assignment, group):
    """The test cells whose outcome a group of mistakes can change (what its job needs to run)."""
    nb = notebooks.read(notebook_path(assignment))
    cells = exercise_cells(nb)
    owner = {f: gid for gid, src in cells.items() for f in defined_functions(src)}
    touched = {m["grade_id"] for m in group}
    deps = dependencies(nb)
    out = {gid for gid, d in deps.items() if d & touched}
    for m in group:  # and through the exercises a mistaken cell calls (when a test reaches the mistake)
        calls = {owner[n] for n in loaded_names(apply(m, cells[m["grade_id"]])) if n in owner}
        out |= {gid for gid, d in deps.items() if d & calls and m["grade_id"] in d}
    return out


def mistaken_notebook(assignment, group):
    """The solution notebook with each mistake of ``group`` made in its cell."""
    nb = copy.deepcopy(notebooks.read(notebook_path(assignment)))
    by_cell = {m["grade_id"]: m for m in group}
    for cell in nb["cells"]:
        gid = notebooks.grade_id(cell) if notebooks.is_solution(cell) else None
        if gid in by_cell:
            cell["source"] = apply(by_cell[gid], _src(cell))
    return nb


def source_with_visible_copies(assignment, dest, name=None, keep=None):
    """Copy solutions/ASSIGNMENT to DEST/NAME (NAME defaults to ASSIGNMENT) with only the graded cells in
    ``keep`` (default: all), unchanged and in place, then a fresh-warnings cell and a copy of each kept test
    cell's visible part (grade id + VISIBLE_SUFFIX): one job grades both what the grader gives and what
    Validate shows."""
    name = name or assignment
    shutil.copytree(SOLUTIONS / assignment, Path(dest) / name)
    (Path(dest) / name / f"{assignment}.ipynb").unlink()
    nb = notebooks.read(notebook_path(assignment))
    nb["cells"] = [c for c in nb["cells"] if not notebooks.is_test(c) or keep is None or notebooks.grade_id(c) in keep]
    tests = [c for c in nb["cells"] if notebooks.is_test(c)]
    extra = [notebooks.tests(RESET_SOURCE, grade_id=RESET_ID, points=0)]
    for cell in tests:
        visible = copy.deepcopy(cell)
        visible["source"] = HIDDEN.sub("", _src(cell))
        visible["metadata"]["nbgrader"]["grade_id"] = notebooks.grade_id(cell) + VISIBLE_SUFFIX
        visible["id"] = (cell.get("id") or "cell")[:40] + "-visible"
        extra.append(visible)
    nb["cells"].extend(extra)
    Path(notebook_path(name, dest)).write_text(json.dumps(nb), encoding="utf-8")
