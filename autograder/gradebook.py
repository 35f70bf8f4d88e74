"""``python -m autograder gradebook OUT --course DIR``: the course grader's results into nbgrader's gradebook.

After ``make grade SUBMISSIONS=DIR/submitted OUT=OUT`` (DIR an nbgrader course directory, where
``nbgrader collect`` put the submissions), this writes, for every graded result in OUT/results/:

* nbgrader's gradebook (DIR/gradebook.db unless --db): the assignment and its notebook, built from the
  RELEASED notebook (DIR/course/, what learners got: no hidden test and no solution reaches the
  gradebook's notebooks), the learner, the submission (with nbgrader's timestamp.txt), and each grade
  cell's ``auto_score`` from the result's tests, so the Formgrader and ``nbgrader export`` give the
  scores of grades.csv;
* the course grader's HTML feedback (OUT/feedback/, which holds no test source) in nbgrader's feedback
  layout, DIR/feedback/<learner>/<assignment>/<assignment>.html with the submission's timestamp.txt and
  submission_secret.txt, so that ``nbgrader release_feedback`` sends it back through the exchange.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

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
            gb.db.commit()
            total = gb.find_submission(assignment, learner).score
        written.append((learner, assignment, total))
        _place_feedback(out, course, learner, assignment, submitted)
    return written


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
