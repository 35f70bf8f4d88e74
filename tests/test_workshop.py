"""Workshops on a JupyterHub (docs/WORKSHOP.md).

Everywhere: the roster's format, and the course grader's results into nbgrader's gradebook (scores per
grade cell, `nbgrader export`, the feedback layout `release_feedback` reads, no hidden test or solution).
As root (marked ``workshop``): workshop/setup.sh builds the hub in /opt (cached), throwaway accounts log in
in headless Chromium, and nbgrader's round trip runs end to end through the exchange: the learners fetch, submit
and fetch feedback by clicking in JupyterLab's Assignments tab (tests/browser/assignments.py).
"""

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "workshop"))

from roster import RosterError, parse_roster  # noqa: E402

ASSIGNMENT = "03_clipping_by_hand"
COURSE_ID = "taming-gradients"
RELEASED = ROOT / "course" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
SOLUTION = ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


def _cells(path):
    return json.loads(Path(path).read_text())["cells"]


def _nbg(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def _grade_cells(path):
    return {_nbg(c)["grade_id"]: float(_nbg(c).get("points", 0)) for c in _cells(path) if _nbg(c).get("grade")}


SECRET_BLOCKS = {"hidden tests": r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS",
                 "solutions": r"### BEGIN SOLUTION\n(.*?)### END SOLUTION"}


def _secret_snippets(kinds=tuple(SECRET_BLOCKS)):
    """Lines of hidden tests and of solutions that must never reach the gradebook or feedback."""
    snippets = []
    for c in _cells(SOLUTION):
        src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for pattern in (SECRET_BLOCKS[k] for k in kinds):
            for block in re.findall(pattern, src, re.S):
                snippets += [line.strip() for line in block.splitlines() if len(line.strip()) >= 25]
    released = RELEASED.read_text()
    snippets = [s for s in snippets if json.dumps(s)[1:-1] not in released]  # lines the visible tests share
    assert snippets, "the solutions notebook has hidden tests and solutions to look for"
    return snippets


# --- the roster ---------------------------------------------------------------------------------------

def test_roster_reads_members_and_roles():
    """A roster gives each member's login name and role, skipping comments and blank lines."""
    members = parse_roster("# a workshop\nusername,role\nteach,instructor\n\nann,learner\nbo_b,Learner\n")
    assert [(m.username, m.role) for m in members] == [("teach", "instructor"), ("ann", "learner"),
                                                       ("bo_b", "learner")]


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("name,role\nteach,instructor\n", "header"),
    ("username,role\nteach,instructor\nAnn,learner\n", "not a valid login name"),
    ("username,role\nteach,instructor\nroot,learner\n", "system account"),
    ("username,role\nteach,instructor\nann,student\n", "is not one of"),
    ("username,role\nteach,instructor\nann,learner\nann,learner\n", "listed twice"),
    ("username,role\nann,learner\n", "no instructor"),
    ("username,role\nteach,instructor,extra\n", "expected 'username,role'"),
])
def test_roster_refuses_bad_input_with_the_line(text, message):
    """A bad roster is refused with a message that says what and where."""
    with pytest.raises(RosterError, match=message):
        parse_roster(text, "r.csv")


def test_the_example_roster_is_valid():
    """workshop/roster.example.csv, what `make hub` uses by default, parses."""
    members = parse_roster((ROOT / "workshop" / "roster.example.csv").read_text())
    assert sum(m.role == "instructor" for m in members) == 1 and len(members) >= 3


def test_nbgrader_config_keeps_the_files_release_feedback_needs():
    """The course's nbgrader config keeps timestamp.txt and submission_secret.txt (collect, release_feedback)."""
    from traitlets.config import Config, PyFileConfigLoader

    loader = PyFileConfigLoader("nbgrader_config.py", path=str(ROOT / "autograder"))
    config = loader.load_config()
    assert isinstance(config, Config)
    include = config.CourseDirectory.include
    assert {"*.ipynb", "timestamp.txt", "submission_secret.txt"} <= set(include)


# --- the gradebook ---------------------------------------------------------------------------------------

def _result(learner, scores):
    tests = [{"grade_id": g, "summary": g, "points": p, "score": scores.get(g, 0.0),
              "passed": scores.get(g, 0.0) == p} for g, p in _grade_cells(RELEASED).items()]
    return {"learner": learner, "assignment": ASSIGNMENT, "status": "graded", "tests": tests,
            "score": sum(t["score"] for t in tests), "max_score": sum(t["points"] for t in tests)}


def _course_with_results(tmp_path, results):
    course, out = tmp_path / "course_dir", tmp_path / "out"
    (course / "course" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(RELEASED, course / "course" / ASSIGNMENT)
    for r in results:
        learner = r["learner"]
        sub = course / "submitted" / learner / ASSIGNMENT
        sub.mkdir(parents=True)
        shutil.copy(RELEASED, sub)
        (sub / "timestamp.txt").write_text("2026-12-02 10:00:00.000000 UTC")
        (sub / "submission_secret.txt").write_text(f"secret-of-{learner}")
        res = out / "results" / learner / f"{ASSIGNMENT}.json"
        res.parent.mkdir(parents=True)
        res.write_text(json.dumps(r))
        fb = out / "feedback" / learner / ASSIGNMENT / f"{ASSIGNMENT}.html"
        fb.parent.mkdir(parents=True)
        fb.write_text(f"<html>feedback for {learner}</html>")
    return course, out


def test_results_go_into_the_gradebook_per_grade_cell(tmp_path):
    """Each grade cell's auto_score is the result's test score; the submission's score is grades.csv's."""
    from nbgrader.api import Gradebook

    from autograder.gradebook import write

    cells = _grade_cells(RELEASED)
    first = next(iter(cells))
    ann = _result("ann", dict(cells))                    # every test passed
    bob = _result("bob", {first: cells[first]})           # only the first
    expected = {"ann": sum(cells.values()), "bob": cells[first]}
    course, out = _course_with_results(tmp_path, [ann, bob])
    rows = write(out, course)
    assert sorted(rows) == sorted((k, ASSIGNMENT, v) for k, v in expected.items())
    with Gradebook("sqlite:///" + str(course / "gradebook.db")) as gb:
        for learner, total in expected.items():
            sub = gb.find_submission(ASSIGNMENT, learner)
            assert sub.score == pytest.approx(total)
            assert sub.max_score == pytest.approx(sum(cells.values()))
            assert str(sub.timestamp).startswith("2026-12-02 10:00:00")
        assert gb.find_grade(first, ASSIGNMENT, ASSIGNMENT, "bob").auto_score == cells[first]
        # Written twice (a regrade), the submission is replaced, not duplicated.
    write(out, course)
    with Gradebook("sqlite:///" + str(course / "gradebook.db")) as gb:
        assert len(gb.assignment_submissions(ASSIGNMENT)) == 2


def test_nbgrader_export_gives_the_same_numbers(tmp_path):
    """`nbgrader export` from that gradebook gives each learner's score."""
    from autograder.gradebook import write

    cells = _grade_cells(RELEASED)
    two = dict(list(cells.items())[:2])
    course, out = _course_with_results(tmp_path, [_result("ann", cells), _result("bob", two)])
    write(out, course)
    env = os.environ | {"TG_COURSE_ROOT": str(course), "TG_GRADEBOOK": str(course / "gradebook.db")}
    subprocess.run([sys.executable, "-m", "nbgrader", "export", "--to", str(tmp_path / "grades.csv")],
                   cwd=course, env=env, check=True, capture_output=True)
    exported = csv.DictReader(io.StringIO((tmp_path / "grades.csv").read_text()))
    rows = {r["student_id"]: float(r["score"]) for r in exported}
    assert rows == {"ann": pytest.approx(sum(cells.values())), "bob": pytest.approx(sum(two.values()))}


def test_feedback_is_placed_where_release_feedback_reads_it_and_nothing_secret_is_stored(tmp_path):
    """feedback/<learner>/<assignment>/ holds the grader's HTML, timestamp.txt and submission_secret.txt;
    the gradebook's stored notebook sources hold no hidden test or solution line."""
    import sqlite3

    from autograder.gradebook import write

    course, out = _course_with_results(tmp_path, [_result("ann", {})])
    write(out, course)
    fb = course / "feedback" / "ann" / ASSIGNMENT
    assert (fb / f"{ASSIGNMENT}.html").read_text() == "<html>feedback for ann</html>"
    assert (fb / "timestamp.txt").read_text() == "2026-12-02 10:00:00.000000 UTC"
    assert (fb / "submission_secret.txt").read_text() == "secret-of-ann"
    db = sqlite3.connect(course / "gradebook.db")
    tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    stored = "\n".join(str(v) for table in tables for row in db.execute(f'SELECT * FROM "{table}"') for v in row)
    assert "clip_by_value_basics" in stored  # the released cells are there
    leaked = [s for s in _secret_snippets() if s in stored]
    assert not leaked, f"hidden test or solution text in the gradebook: {leaked[:3]}"


def test_the_formgrader_counts_each_submission_as_autograded(tmp_path):
    """nbgrader's own API (what Manage Submissions, Manual Grading and the student pages read) lists every
    written submission as autograded with its score, and each one's notebook opens from autograded/."""
    from nbgrader.apps.api import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from autograder.gradebook import write

    cells = _grade_cells(RELEASED)
    first = next(iter(cells))
    course, out = _course_with_results(tmp_path, [_result("ann", dict(cells)), _result("bob", {first: cells[first]})])
    (course / "solutions" / ASSIGNMENT).mkdir(parents=True)   # the student pages list the source's assignments
    write(out, course)
    api = NbGraderAPI(coursedir=CourseDirectory(root=str(course), source_directory="solutions",
                                                release_directory="course"))
    assert api.get_autograded_students(ASSIGNMENT) == {"ann", "bob"}
    subs = {s["student"]: s for s in api.get_submissions(ASSIGNMENT)}
    assert {k: (s["autograded"], s["score"]) for k, s in subs.items()} == {
        "ann": (True, pytest.approx(sum(cells.values()))), "bob": (True, pytest.approx(cells[first]))}
    listed = api.get_notebook_submissions(ASSIGNMENT, ASSIGNMENT)
    assert sorted(s["student"] for s in listed) == ["ann", "bob"]   # the Manual Grading list
    student = {a["name"]: a for a in api.get_student_submissions("bob")}[ASSIGNMENT]
    assert student["autograded"] and student["score"] == pytest.approx(cells[first])
    # Scored by the grader, nothing waits for hand-grading (the Formgrader's "needs manual grading" badge).
    assert not any(s["needs_manual_grade"] for s in subs.values()), subs
    assert not any(n["needs_manual_grade"] for n in listed), listed


def test_the_autograded_notebook_is_the_release_with_the_answers_and_the_verdicts(tmp_path):
    """The notebook the Formgrader shows: the learner's answers in the exercise cells, the released test
    cells (never a hidden test or a learner's edit of a test) with the grader's verdict under each, and
    none of the learner's outputs (an HTML or script output would run in the instructor's browser)."""
    from autograder.gradebook import write

    cells = _grade_cells(RELEASED)
    first = next(iter(cells))
    course, out = _course_with_results(tmp_path, [_result("bob", {first: cells[first]})])
    sub = course / "submitted" / "bob" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    nb = json.loads(sub.read_text())
    exercise = next(c for c in nb["cells"] if _nbg(c).get("solution") and c["cell_type"] == "code")
    exercise["source"] = "def bobs_answer():\n    return 42\n"
    exercise["outputs"] = [{"output_type": "display_data", "metadata": {},
                            "data": {"text/html": "<script>steal()</script>"}}]
    test = next(c for c in nb["cells"] if _nbg(c).get("grade") and not _nbg(c).get("solution"))
    test["source"] = "pass  # bob's edit of a test cell\n"
    sub.write_text(json.dumps(nb))
    write(out, course)
    graded = course / "autograded" / "bob" / ASSIGNMENT
    assert (graded / "timestamp.txt").read_text() == "2026-12-02 10:00:00.000000 UTC"
    text = (graded / f"{ASSIGNMENT}.ipynb").read_text()
    shown = json.loads(text)["cells"]
    by_id = {_nbg(c).get("grade_id"): c for c in shown if _nbg(c).get("grade_id")}
    assert "".join(by_id[_nbg(exercise)["grade_id"]]["source"]) == exercise["source"]
    released = {_nbg(c).get("grade_id"): c for c in _cells(RELEASED) if _nbg(c).get("grade_id")}
    assert by_id[_nbg(test)["grade_id"]]["source"] == released[_nbg(test)["grade_id"]]["source"]
    assert "steal()" not in text and "bob's edit" not in text
    verdicts = {g: "".join(o["text"] for o in by_id[g]["outputs"]) for g in cells}
    assert verdicts[first].startswith("course grader: passed"), verdicts[first]
    assert all(v.startswith("course grader: failed") for g, v in verdicts.items() if g != first), verdicts
    leaked = [s for s in _secret_snippets() if s in text]
    assert not leaked, f"hidden test or solution text in the autograded notebook: {leaked[:3]}"


def test_a_result_that_the_release_does_not_know_is_refused(tmp_path):
    """A test name that is not a grade cell of the released notebook stops with a clear error."""
    from autograder.gradebook import GradebookError, write

    bad = _result("ann", {})
    bad["tests"].append({"grade_id": "no_such_cell", "points": 1, "score": 1})
    course, out = _course_with_results(tmp_path, [bad])
    with pytest.raises(GradebookError, match="no_such_cell"):
        write(out, course)


# --- the hub, end to end (root) ---------------------------------------------------------------------------

def _hub_skip_reason():
    if os.geteuid() != 0:
        return "the workshop hub makes user accounts and spawns servers as them: run as root (make test as root)"
    apt = shutil.which("apt-get") is not None   # workshop/setup.sh installs python3.11-venv and npm with it
    if not Path("/usr/bin/python3.11").exists() and not apt:
        return "Debian's /usr/bin/python3.11 is missing (the hub's environment is built from it) and no apt-get"
    if not Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium is missing (make test installs it: tools/ensure_browser.sh)"
    if shutil.which("npm") is None and not apt:
        return "npm is missing (configurable-http-proxy is installed with it) and no apt-get to install it"
    return None


PREFIX = Path(os.environ.get("TG_HUB_PREFIX", "/opt/taming-gradients"))


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hub:
    def __init__(self, base, state, exchange, names, passwords):
        self.base, self.state, self.exchange = base, state, exchange
        self.instructor, self.ann, self.bob = names
        self.passwords = passwords

    def home(self, user):
        import pwd

        return Path(pwd.getpwnam(user).pw_dir)

    def as_user(self, user, *cmd, cwd=None, check=True):
        """A command run as `user`, with the environment the hub gives that user's server."""
        home = self.home(user)
        env = {"HOME": str(home), "USER": user, "PATH": f"{PREFIX}/venv/bin:/usr/bin:/bin",
               "TG_EXCHANGE": str(self.exchange)}
        if user == self.instructor:
            course = home / "taming-gradients"
            env |= {"JUPYTER_CONFIG_PATH": f"{PREFIX}/etc/instructor:{PREFIX}/src/autograder",
                    "TG_COURSE_ROOT": str(course), "TG_GRADEBOOK": str(course / "gradebook.db")}
        else:
            env |= {"JUPYTER_CONFIG_PATH": f"{PREFIX}/etc/learner"}
        args = ["runuser", "-u", user, "--", "env", "-i", *[f"{k}={v}" for k, v in env.items()], *cmd]
        return subprocess.run(args, cwd=cwd or home, capture_output=True, text=True, check=check, timeout=300)


@pytest.fixture(scope="module")
def hub():
    tag = f"tg{os.getpid() % 100000}"
    names = (f"{tag}i", f"{tag}a", f"{tag}b")
    root = Path(f"/srv/{tag}-workshop-test")
    state, exchange = root / "state", root / "exchange"
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    roster = root / "roster.csv"
    roster.write_text(f"username,role\n{names[0]},instructor\n{names[1]},learner\n{names[2]},learner\n")
    env = os.environ | {"TG_HUB_STATE": str(state), "TG_HUB_EXCHANGE": str(exchange), "TG_HUB_PREFIX": str(PREFIX)}
    proc = None
    try:
        # The same script `make hub` runs; the environment in PREFIX is built once and then reused.
        subprocess.run(["bash", str(ROOT / "workshop" / "setup.sh"), str(roster)], env=env, check=True,
                       timeout=3600, stdout=subprocess.DEVNULL)
        passwords = dict(line.split(",", 1) for line in (state / "passwords.csv").read_text().split()[1:])
        port = _free_port()
        env |= {"TG_HUB_API_PORT": str(_free_port()), "TG_HUB_PROXY_API_PORT": str(_free_port())}
        log = open(root / "hub.log", "w")
        proc = subprocess.Popen(["bash", str(ROOT / "workshop" / "start.sh"), str(port)], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_for(f"http://127.0.0.1:{port}/hub/api", proc, root / "hub.log")
        yield Hub(f"http://127.0.0.1:{port}", state, exchange, names, passwords)
    finally:
        if proc is not None:
            import signal

            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
        subprocess.run([f"{PREFIX}/venv/bin/python", str(ROOT / "workshop" / "accounts.py"), "--remove",
                        "--state", str(state)], check=False, stdout=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)


def _wait_for(url, proc, log, seconds=120):
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the hub exited ({proc.returncode}):\n{Path(log).read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"the hub did not answer at {url}:\n{Path(log).read_text()[-3000:]}")


def _login(browser, hub, user):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{hub.base}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", hub.passwords[user])
    page.click("#login_submit")
    page.wait_for_url(re.compile(rf".*/user/{user}/lab.*"), timeout=180_000)
    page.wait_for_selector(".jp-LabShell", timeout=120_000)
    return context, page


class _UserLab:
    """A learner's JupyterLab on the hub, as browser.ui.open_notebook addresses a server."""

    def __init__(self, hub, user):
        self.base = f"{hub.base}/user/{user}/"

    def url(self, path):
        return self.base + path


def _solved(released, solution):
    """The released notebook with every solution cell's source from solutions/ (what a learner who
    solved it all would submit; the test cells stay the released, visible ones)."""
    nb = json.loads(Path(released).read_text())
    answers = {_nbg(c)["grade_id"]: c["source"] for c in _cells(solution) if _nbg(c).get("solution")}
    for c in nb["cells"]:
        if _nbg(c).get("solution") and _nbg(c).get("grade_id") in answers:
            c["source"] = answers[_nbg(c)["grade_id"]]
    return json.dumps(nb)


@pytest.mark.workshop
@pytest.mark.skipif(_hub_skip_reason() is not None, reason=_hub_skip_reason() or "")
@pytest.mark.timeout(3600)
def test_round_trip_on_the_hub(hub):
    """Release -> two learners fetch and submit by clicking in their Assignments tab -> collect -> make grade
    -> gradebook -> the Formgrader in its own tab shows the scores -> release_feedback -> each learner
    fetches feedback from the tab; and one learner cannot open another's server or files."""
    from browser import assignments as assignment_tab
    from browser import terminal
    from browser.ui import CHROMIUM, CHROMIUM_ARGS, DIRTY_TABS, TOASTS, PageRecorder, open_notebook
    from playwright.sync_api import sync_playwright

    I, A, B = hub.instructor, hub.ann, hub.bob
    course = hub.home(I) / "taming-gradients"
    cells = _grade_cells(RELEASED)
    expected = {A: 0.0, B: sum(cells.values())}   # ann submits it untouched, bob solved it

    # Homes closed to others; the course's environment readable by all.
    for user in (I, A, B):
        assert hub.home(user).stat().st_mode & 0o077 == 0, f"{hub.home(user)} is open to other users"
    assert hub.as_user(A, f"{PREFIX}/venv/bin/python", "-c", "import gradlab, nbgrader").returncode == 0

    released = hub.as_user(I, "nbgrader", "release_assignment", ASSIGNMENT, "--force", cwd=course, check=False)
    assert released.returncode == 0, released.stderr[-2000:]

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            # Each learner opens the Assignments tab (Nbgrader > Assignment List) and clicks Fetch.
            tabs, recorders, contexts = {}, {}, {}
            for user in (A, B):
                contexts[user], page = _login(browser, hub, user)
                recorders[user] = PageRecorder(page)
                with recorders[user].evidence_on_failure(f"workshop-{user}-fetch"):
                    tabs[user] = assignment_tab.open_tab(page, COURSE_ID)
                    assignment_tab.click(tabs[user], "released", ASSIGNMENT, then="fetched")
                assert (hub.home(user) / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file(), f"{user} fetched nothing"
            # ann opens the fetched notebook (in a second tab) and leaves it untouched: it is not marked
            # modified once its kernel is up, although the hub's Python (Debian's 3.11.x) is not the one the
            # release ran on (the course kernel reports 3.11, as the release writes: issue 16.8).
            nb_page = contexts[A].new_page()
            with PageRecorder(nb_page).evidence_on_failure(f"workshop-{A}-open"):
                open_notebook(nb_page, _UserLab(hub, A), f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb")
                time.sleep(3.0)  # the kernel's info reply lands after "idle"
                assert not nb_page.evaluate(DIRTY_TABS), f"{A}'s untouched notebook is marked modified on the hub"
                news = [t for t in nb_page.evaluate(TOASTS) if "news" in t.lower()]
                assert not news, f"a news prompt appeared in {A}'s lab: {news}"
            nb_page.close()
            # bob solves it (his notebook, owned by him); then each clicks Submit.
            nb_b = hub.home(B) / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
            nb_b.write_text(_solved(RELEASED, SOLUTION))
            shutil.chown(nb_b, B, B)
            for user in (A, B):
                with recorders[user].evidence_on_failure(f"workshop-{user}-submit"):
                    assignment_tab.click(tabs[user], "fetched", ASSIGNMENT, then="submitted")
                inbound = list((hub.exchange / COURSE_ID / "inbound").glob(f"{user}+{ASSIGNMENT}+*"))
                assert len(inbound) == 1, f"{user}'s Submit left {len(inbound)} submissions in the exchange"

            # One learner cannot open another's server (ann's browser session, redirects followed), nor
            # read their files.
            page_a = tabs[A].page
            for path in ("lab", f"api/contents/{ASSIGNMENT}"):
                other = page_a.request.get(f"{hub.base}/user/{B}/{path}")
                assert other.status in (403, 404), f"{A} opened {B}'s /user/{B}/{path}: HTTP {other.status}"
                assert f"{ASSIGNMENT}.ipynb" not in other.text(), f"{A} saw {B}'s files"
            peek = subprocess.run(["runuser", "-u", A, "--", "cat", str(nb_b)], capture_output=True)
            assert peek.returncode != 0, f"{A} can read {B}'s notebook"

            # The instructor collects, typing into a terminal of their JupyterLab (a login shell: the course's
            # environment must be on its PATH, and alembic with it); the course's grader grades; the results go
            # into the gradebook.
            ctx_i, page_i = _login(browser, hub, I)
            i_lab = f"{hub.base}/user/{I}/"
            which, status = terminal.run(page_i, i_lab, "command -v nbgrader alembic")
            assert status == 0 and f"{PREFIX}/venv/bin/nbgrader" in which, f"no nbgrader on the terminal's PATH:{which}"
            said, status = terminal.run(page_i, i_lab, f"cd ~/taming-gradients && nbgrader collect {ASSIGNMENT}",
                                        timeout_s=300)
            assert status == 0, f"nbgrader collect in the instructor's terminal failed:\n{said[-3000:]}"
            for user in (A, B):
                sub = course / "submitted" / user / ASSIGNMENT
                assert (sub / f"{ASSIGNMENT}.ipynb").is_file() and (sub / "timestamp.txt").is_file()
            out = hub.state / "grades"
            # The commands docs/WORKSHOP.md gives (root, in the repository).
            subprocess.run(["make", "grade", f"SUBMISSIONS={course / 'submitted'}", f"OUT={out}",
                            f"ASSIGNMENT={ASSIGNMENT}", f"SOURCE={course / 'solutions'}"],
                           cwd=ROOT, check=True, timeout=900, stdout=subprocess.DEVNULL)
            grades = csv.DictReader(io.StringIO((out / "grades.csv").read_text()))
            rows = {r["learner"]: float(r["score"]) for r in grades}
            assert rows == pytest.approx(expected), rows
            booked = subprocess.run(["make", "gradebook", f"OUT={out}", f"COURSE={course}"], cwd=ROOT, check=True,
                                    timeout=300, capture_output=True, text=True)
            assert "Warning" not in booked.stderr, booked.stderr[-2000:]   # nbgrader's SAWarnings kept off
            subprocess.run(["chown", "-R", f"{I}:{I}", str(course)], check=True)

            exported = hub.as_user(I, "nbgrader", "export", "--to", str(course / "export.csv"), cwd=course,
                                   check=False)
            assert exported.returncode == 0, exported.stderr[-2000:]
            export = {r["student_id"]: float(r["score"])
                      for r in csv.DictReader(io.StringIO((course / "export.csv").read_text()))}
            assert export == pytest.approx(expected)

            # The Formgrader, in a tab of its own (JupyterHub >= 4.1 forbids it in Lab's iframe, so the
            # instructor's Lab has no Formgrader entry that would show "refused to connect").
            page_i.locator(".lm-MenuBar-item", has_text="Nbgrader").click()
            entries = page_i.locator(".lm-Menu-itemLabel").all_inner_texts()
            page_i.keyboard.press("Escape")
            assert "Formgrader" not in entries, entries
            tab = ctx_i.new_page()
            with PageRecorder(tab).evidence_on_failure("workshop-formgrader"):
                tab.goto(f"{hub.base}/user/{I}/formgrader/manage_students")
                for user in (A, B):
                    tab.wait_for_selector(f"text={user}", timeout=60_000)
                text = tab.inner_text("body")
                rows_shown = {user: next(line for line in text.splitlines() if user in line) for user in (A, B)}
                # The scores the tab shows come from the Formgrader's API, read here with the tab's session.
                students = json.loads(tab.request.get(f"{hub.base}/user/{I}/formgrader/api/students").text())
                shown = {s["id"]: float(s["score"]) for s in students}
                assert shown == pytest.approx(expected), (shown, rows_shown)
                assert f"{expected[B]:g}" in rows_shown[B].replace(".00", "").replace(".0", ""), rows_shown
                # Manage Submissions counts both as autograded (not "needs autograding"), and Manual Grading
                # opens each one's notebook.
                tab.goto(f"{hub.base}/user/{I}/formgrader/manage_submissions/{ASSIGNMENT}")
                for user in (A, B):
                    tab.wait_for_selector(f"text={user}", timeout=60_000)
                shown_text = tab.inner_text("body").lower()
                for badge in ("needs autograding", "needs manual grading"):
                    assert badge not in shown_text, shown_text[-2000:]
                api = f"{hub.base}/user/{I}/formgrader/api"
                subs = json.loads(tab.request.get(f"{api}/submissions/{ASSIGNMENT}").text())
                assert {s["student"]: (s["autograded"], float(s["score"])) for s in subs} == {
                    u: (True, pytest.approx(v)) for u, v in expected.items()}, subs
                listed = json.loads(tab.request.get(f"{api}/submitted_notebooks/{ASSIGNMENT}/{ASSIGNMENT}").text())
                assert sorted(n["student"] for n in listed) == sorted((A, B)), listed
                # bob's page shows his answers (the solutions: nothing of them is secret there) and the
                # verdicts; ann's, her untouched notebook. Neither shows a hidden test; ann's no solution.
                for user, verdict, kinds in ((B, "course grader: passed", ("hidden tests",)),
                                             (A, "course grader: failed", tuple(SECRET_BLOCKS))):
                    sub_id = next(n["id"] for n in listed if n["student"] == user)
                    tab.goto(f"{hub.base}/user/{I}/formgrader/submissions/{sub_id}/")
                    tab.wait_for_selector(f"text={verdict}", timeout=60_000)
                    page_text = tab.inner_text("body")
                    leaked = [s for s in _secret_snippets(kinds) if s in page_text]
                    assert not leaked, f"{user}'s Manual Grading page shows {' or '.join(kinds)}: {leaked[:3]}"

            # Feedback goes back through the exchange; each learner clicks Fetch Feedback; nothing secret in it.
            fb = hub.as_user(I, "nbgrader", "release_feedback", ASSIGNMENT, cwd=course, check=False)
            assert fb.returncode == 0, fb.stderr[-2000:]
            for user in (A, B):
                with recorders[user].evidence_on_failure(f"workshop-{user}-feedback"):
                    assignment_tab.fetch_feedback(tabs[user], ASSIGNMENT)
                got = list((hub.home(user) / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html"))
                assert got, f"no feedback fetched into {hub.home(user) / ASSIGNMENT}"
                html = got[0].read_text()
                assert user in html and "score" in html
                leaked = [s for s in _secret_snippets() if s in html]
                assert not leaked, leaked[:3]
        finally:
            browser.close()
