"""``python -m autograder gradebook OUT --course DIR``: the course grader's results into nbgrader's gradebook.

After ``make grade SUBMISSIONS=DIR/submitted OUT=OUT`` (DIR an nbgrader course directory, where
``nbgrader collect`` put the submissions), this writes, for every graded result in OUT/results/:

* nbgrader's gradebook (DIR/gradebook.db unless --db): the assignment and its notebook, built from the
  RELEASED notebook (DIR/course/, what learners got: no hidden test and no solution reaches the
  gradebook's notebooks), the learner, the submission (with nbgrader's timestamp.txt), and each grade
  cell's ``auto_score`` from the result's tests, so the Formgrader and ``nbgrader export`` give the
  scores of grades.csv;
* nbgrader's autograded folder, DIR/autograded/<learner>/<assignment>/<assignment>.ipynb with the
  submission's timestamp.txt: the RELEASED notebook with the learner's answers in its exercise cells
  (matched by grade id, as the grader matches them; the learner's outputs dropped) and, under each
  test cell, the course grader's verdict as plain text. With it and the gradebook's submission
  timestamp nbgrader counts the submission as autograded, so the Formgrader lists it with its score
  (not "needs autograding") and its Manual Grading pages open the notebook;
* the course grader's HTML feedback (OUT/feedback/, which holds no test source) in nbgrader's feedback
  layout, DIR/feedback/<learner>/<assignment>/<assignment>.html with the submission's timestamp.txt and
  submission_secret.txt, so that ``nbgrader release_feedback`` sends it back through the exchange.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from . import notebooks
from .cells import SubmissionProblem, cell_source
from .plan import cells_by_grade_id, read_submission

RELEASE_DIR = "course"


class GradebookError(ValueError):
    """Results that cannot be written to the gradebook; the message says which and why."""


def _results(out):
    folder = Path(out) / "results"
    if not folder.is_dir():
        raise GradebookError(f"{folder} does not exist: run `make grade ... OUT={out}` first")
    for path in sorted(folder.glob("*/*.json")):
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise GradebookError(f"{path}: unreadable result ({exc})") from None
        yield path, result


def _save_structure(gb_url, course, assignment):
    """The assignment's notebook, grade cells and source cells, from the released notebook."""
    import nbformat
    from nbgrader.preprocessors import SaveCells

    released = Path(course) / RELEASE_DIR / assignment / f"{assignment}.ipynb"
    if not released.is_file():
        raise GradebookError(f"{released} is missing: the gradebook is built from the released notebook")
    nb = nbformat.read(str(released), as_version=nbformat.NO_CONVERT)
    from nbgrader.api import Gradebook

    with Gradebook(gb_url) as gb:
        gb.update_or_create_assignment(assignment)
    resources = {"nbgrader": {"db_url": gb_url, "assignment": assignment, "notebook": assignment}}
    SaveCells().preprocess(nb, resources)


def _timestamp(submitted_dir):
    from nbgrader.utils import parse_utc

    stamp = submitted_dir / "timestamp.txt"
    return parse_utc(stamp.read_text().strip()) if stamp.is_file() else None


def write(out, course, db=None):
    """Write every graded result of OUT into the gradebook and the feedback folder; returns the rows
    written as (learner, assignment, score)."""
    import warnings

    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings():
        # nbgrader 0.9's Gradebook.add_submission builds its rows while SQLAlchemy 2 autoflushes and
        # warns "Object of type <SubmittedAssignment> not in session ..." for each; the rows are added
        # all the same (the tests read them back). Not ours to fix; kept off the instructor's terminal.
        warnings.filterwarnings("ignore", category=SAWarning, message=r"Object of type <Submitted")
        return _write(out, course, db)


def _write(out, course, db):
    from nbgrader.api import Gradebook, MissingEntry

    course = Path(course)
    db = Path(db) if db else course / "gradebook.db"
    url = "sqlite:///" + str(db)
    written, structured = [], set()
    for path, result in _results(out):
        learner, assignment = result.get("learner"), result.get("assignment")
        if not learner or not assignment or path.stem != assignment or path.parent.name != learner:
            raise GradebookError(f"{path}: its learner/assignment do not match its place in results/")
        if result.get("status") == "missing":
            continue
        if assignment not in structured:
            _save_structure(url, course, assignment)
            structured.add(assignment)
        submitted = course / "submitted" / learner / assignment
        with Gradebook(url) as gb:
            gb.update_or_create_student(learner)
            timestamp = _timestamp(submitted)
            try:
                gb.remove_submission(assignment, learner)
            except MissingEntry:
                pass
            gb.add_submission(assignment, learner, **({"timestamp": timestamp} if timestamp else {}))
            cells = {c.name: c for c in gb.find_notebook(assignment, assignment).grade_cells}
            scores = {}
            for t in result.get("tests", []):
                if t.get("grade_id") not in cells:
                    raise GradebookError(f"{path}: test {t.get('grade_id')!r} is not a grade cell of the "
                                         f"released {assignment} notebook (release and grader disagree)")
                scores[t["grade_id"]] = float(t.get("score") or 0)
            for name in cells:
                grade = gb.find_grade(name, assignment, assignment, learner)
                grade.auto_score = scores.get(name, 0.0)
                # As nbgrader's own SaveAutoGrades does: an auto score and no manual score needs no
                # hand-grading (left True, the Formgrader badges every submission "needs manual grading").
                grade.needs_manual_grade = grade.manual_score is None and grade.auto_score is None
            gb.db.commit()
            total = gb.find_submission(assignment, learner).score
        written.append((learner, assignment, total))
        _place_autograded(course, learner, assignment, submitted, result)
        _place_feedback(out, course, learner, assignment, submitted)
    return written


def _answers(submitted_nb):
    """grade id -> the learner's source of each exercise, matched as the grader matches it
    (plan.cells_by_grade_id: the first cell with the id, a code cell), or {} when the submission cannot
    be read (its cells are then shown as released)."""
    try:
        by_id, _ = cells_by_grade_id(read_submission(submitted_nb))
    except SubmissionProblem:
        return {}
    answers = {}
    for gid, cell in by_id.items():
        if cell.get("cell_type") == "code":
            try:
                answers[gid] = cell_source(cell)
            except SubmissionProblem:
                continue
    return answers


def _verdict(test):
    if test is None:
        return "course grader: this test did not run (0 points)\n"
    points = f"{float(test.get('score') or 0):g} / {float(test.get('points') or 0):g} points"
    if test.get("passed"):
        return f"course grader: passed, {points}\n"
    kind = f"{test['error_type']}: " if test.get("error_type") else ""
    return f"course grader: failed, {points}\n{kind}{test.get('message') or ''}\n"


def autograded_notebook(released, answers, result):
    """The notebook nbgrader's Formgrader shows for one submission: the released notebook (so no hidden
    test or solution), every exercise cell holding the learner's answer, no output but the course
    grader's verdict under each test cell."""
    nb = json.loads(json.dumps(released))
    tests = {t.get("grade_id"): t for t in result.get("tests", [])}
    for cell in nb["cells"]:
        if cell.get("cell_type") != "code":
            continue
        cell["outputs"], cell["execution_count"] = [], None
        gid = notebooks.grade_id(cell)
        if notebooks.is_solution(cell) and gid in answers:
            cell["source"] = answers[gid]
        elif notebooks.is_test(cell):
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": _verdict(tests.get(gid))}]
    return nb


def _place_autograded(course, learner, assignment, submitted, result):
    released = json.loads((Path(course) / RELEASE_DIR / assignment / f"{assignment}.ipynb").read_text("utf-8"))
    nb = autograded_notebook(released, _answers(submitted / f"{assignment}.ipynb"), result)
    dest = Path(course) / "autograded" / learner / assignment
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    (dest / f"{assignment}.ipynb").write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", "utf-8")
    if (submitted / "timestamp.txt").is_file():
        shutil.copyfile(submitted / "timestamp.txt", dest / "timestamp.txt")


def _place_feedback(out, course, learner, assignment, submitted):
    html = Path(out) / "feedback" / learner / assignment / f"{assignment}.html"
    if not html.is_file():
        raise GradebookError(f"{html} is missing: the grader writes it with every result")
    dest = Path(course) / "feedback" / learner / assignment
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(html, dest / html.name)
    for name in ("timestamp.txt", "submission_secret.txt"):
        if (submitted / name).is_file():
            shutil.copyfile(submitted / name, dest / name)


def add_arguments(parser):
    parser.add_argument("out", help="the grader's output folder (make grade's OUT)")
    parser.add_argument("--course", required=True,
                        help="the nbgrader course directory (its course/, submitted/ and feedback/)")
    parser.add_argument("--db", help="the gradebook file (default COURSE/gradebook.db)")


def main(args):
    try:
        rows = write(args.out, args.course, args.db)
    except GradebookError as exc:
        raise SystemExit(f"error: {exc}") from None
    for learner, assignment, score in rows:
        print(f"gradebook: {learner} {assignment} {score:g}")
    print(f"{len(rows)} submission(s) written to the gradebook and the feedback folder")
    return 0
