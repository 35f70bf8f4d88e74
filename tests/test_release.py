"""The release pipeline: course/ is exactly what `make release` makes of solutions/, and leaks nothing."""

import json
import re
from pathlib import Path

import pytest

from autograder import notebooks
from autograder.paths import COURSE, SOLUTIONS, assignments, notebook_path
from autograder.release import check

ASSIGNMENTS = assignments()


def _source_regions(nb, begin, end):
    """Lines inside begin/end markers, and lines outside them, over all cells of a source notebook."""
    inside, outside = set(), set()
    for cell in nb["cells"]:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        active = False
        for line in src.splitlines():
            stripped = line.strip()
            if begin in stripped:
                active = True
            elif end in stripped:
                active = False
            elif stripped:
                (inside if active else outside).add(stripped)
    return inside, outside


def _src(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _visible_lines(nb):
    """Lines of a source notebook that stand, at least once, outside every hidden-test and solution region."""
    visible = set()
    for cell in nb["cells"]:
        region = None
        for line in _src(cell).splitlines():
            stripped = line.strip()
            if "### BEGIN HIDDEN TESTS" in stripped or "### BEGIN SOLUTION" in stripped:
                region = stripped
            elif "### END HIDDEN TESTS" in stripped or "### END SOLUTION" in stripped:
                region = None
            elif stripped and region is None:
                visible.add(stripped)
    return visible


def _course_text():
    return "\n".join(p.read_text() for p in sorted(COURSE.glob("*/*.ipynb")))


def _course_lines(assignment):
    lines = set()
    for path in sorted((COURSE / assignment).glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            lines.update(line.strip() for line in src.splitlines() if line.strip())
    return lines


def test_there_is_at_least_one_assignment():
    """solutions/ holds at least one NN_topic assignment folder with its notebook."""
    assert ASSIGNMENTS
    for a in ASSIGNMENTS:
        assert notebook_path(a).exists()


def test_course_is_in_sync_with_a_fresh_release():
    """Regenerating course/ from solutions/ into a temporary folder changes nothing."""
    diffs = check()
    assert not diffs, f"course/ is out of sync with solutions/ (run `make release`): {diffs}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebooks_are_stored_without_outputs_and_with_stable_ids(assignment):
    """Source and released notebooks have no outputs, no execution counts, and unique cell ids."""
    for base in (SOLUTIONS, COURSE):
        path = notebook_path(assignment, base)
        text = path.read_text()
        nb = json.loads(text)
        assert notebooks.dumps(notebooks.strip(json.loads(text))) == text, f"{path} is not in canonical form"
        ids = [c["id"] for c in nb["cells"]]
        assert len(ids) == len(set(ids)) and all(ids), f"{path}: missing or duplicate cell ids"
        assert all(not c.get("outputs") and not c.get("execution_count") for c in nb["cells"])


def test_no_solution_or_hidden_test_marker_in_course():
    """No BEGIN SOLUTION / BEGIN HIDDEN TESTS marker appears anywhere in course/."""
    text = _course_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text


#: A hidden-test line this long is specific enough that finding it in gradlab's code means it leaked
#: (shorter ones, such as ``continue`` or ``N, T, _ = X.shape``, are everyday code).
SPECIFIC_LINE = 45


def _released_lines():
    """Stripped lines of every released notebook in course/."""
    return set().union(*(_course_lines(a) for a in ASSIGNMENTS))


def _gradlab_lines():
    """Stripped lines of gradlab's source files in course/gradlab."""
    return {line.strip() for path in sorted((COURSE / "gradlab").rglob("*.py"))
            for line in path.read_text().splitlines() if line.strip()}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_hidden_test_or_solution_line_in_course(assignment):
    """No hidden-test or solution line (not visible in some source) is in a release; no hidden test in gradlab."""
    nb = notebooks.read(notebook_path(assignment))
    visible_anywhere = set().union(*(_visible_lines(notebooks.read(notebook_path(a))) for a in ASSIGNMENTS))
    released = _released_lines()
    for begin, end in (("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"), ("### BEGIN SOLUTION", "### END SOLUTION")):
        inside, _ = _source_regions(nb, begin, end)
        secret = {line for line in inside - visible_anywhere if len(line) > 3 and not re.fullmatch(r"[\W_]+", line)}
        leaked = sorted(secret & released)
        assert not leaked, f"{begin.split()[-1].lower()} lines leaked into course/: {leaked[:5]}"
    hidden, _ = _source_regions(nb, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
    in_gradlab = sorted(line for line in (hidden - visible_anywhere) & _gradlab_lines() if len(line) >= SPECIFIC_LINE)
    assert not in_gradlab, f"hidden-test lines appear in course/gradlab: {in_gradlab[:5]}"


def _exercise_groups(nb):
    """(exercise grade ids, the test cells that follow them) for each run of solution cells."""
    groups = []
    for cell in nb["cells"]:
        if notebooks.is_solution(cell):
            if groups and not groups[-1][1]:
                groups[-1][0].append(notebooks.grade_id(cell))  # exercises tested together
            else:
                groups.append(([notebooks.grade_id(cell)], []))
        elif notebooks.is_test(cell):
            assert groups, f"test cell {notebooks.grade_id(cell)} comes before any exercise"
            groups[-1][1].append(cell)
    return groups


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_graded_cells_follow_the_conventions(assignment):
    """Each exercise has a visible test and hidden tests after it; every test cell opens with a docstring."""
    nb = notebooks.read(notebook_path(assignment))
    tests = [c for c in nb["cells"] if notebooks.is_test(c)]
    solutions = [c for c in nb["cells"] if notebooks.is_solution(c)]
    assert solutions and tests
    hidden = 0
    for cell in tests:
        src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        first = src.lstrip().splitlines()[0]
        assert re.fullmatch(r'"""[^"]+"""', first.strip()), f"{notebooks.grade_id(cell)}: {first!r}"
        assert notebooks.nbgrader_meta(cell).get("points", 0) > 0
        assert not notebooks.is_slow(cell), "a graded cell must not be tagged slow"
        hidden += "### BEGIN HIDDEN TESTS" in src
    assert hidden >= len(solutions), "each exercise needs hidden tests"
    for exercises, group in _exercise_groups(nb):
        visible = [notebooks.grade_id(c) for c in group if "### BEGIN HIDDEN TESTS" not in _src(c)]
        hidden_ = [notebooks.grade_id(c) for c in group if "### BEGIN HIDDEN TESTS" in _src(c)]
        assert visible, f"exercise {exercises} has no visible test cell (the common mistake, shown to learners)"
        assert hidden_, f"exercise {exercises} has no hidden tests"
    ids = [notebooks.grade_id(c) for c in nb["cells"] if notebooks.nbgrader_meta(c)]
    assert len(ids) == len(set(ids)), "duplicate grade ids"


def test_course_holds_nothing_but_releases_and_gradlab():
    """course/ holds released assignments and the gradlab package only (no stray notebooks)."""
    allowed = set(ASSIGNMENTS) | {"gradlab"}
    extra = [p.name for p in COURSE.iterdir() if p.is_dir() and p.name not in allowed and not p.name.startswith(".")
             and p.name != "__pycache__"]
    assert not extra, f"unexpected folders in course/: {extra}"
    for a in ASSIGNMENTS:
        assert Path(COURSE / a / f"{a}.ipynb").exists(), f"course/{a} was not released"
