"""Write docs/INSTRUCTOR.md, the instructor's guide for a workshop, from the solution notebooks.

    python tools/instructor_guide.py                 regenerate docs/INSTRUCTOR.md
    python tools/instructor_guide.py --check         exit 1 (and say why) when docs/INSTRUCTOR.md is stale
    python tools/instructor_guide.py --measure [NN_topic ...]
                                                     execute the notebooks (those given; with none given,
                                                     those whose code cells are not all measured yet),
                                                     record each code cell's seconds in
                                                     tools/instructor_cell_times.json, then regenerate

Every notebook in solutions/ (``NN_topic/NN_topic.ipynb``, once git tracks it: one still being written
joins when it is added) gets an episode, in the style of The Carpentries'
lesson episodes: teaching and exercise minutes, questions, objectives, key points, and the common mistakes
learners make there. Nothing in it is typed by hand; all of it is read from the notebook or measured:

* **objectives**: the numbered list under the first cell's "You will be able to" / "Objectives" line, one
  objective per item (or, where that line is followed by prose, the prose's semicolon-separated clauses);
* **questions**: the notebook's numbered section headings (``## N. ...``), which are what the episode answers,
  all of them but the key points ("What to remember", "Summary"), discussion questions and references;
* **key points**: the bullets of the last "What to remember" / "Summary" section, up to the next heading
  (never the Discussion questions or References that may follow in the same cell);
* **recaps**: the other notebooks its markdown mentions ("Notebook 02 showed ..."), so that a plan that
  skips one of them recaps it before this one;
* **common mistakes**: the messages of the visible tests (the assertions outside ``### BEGIN HIDDEN TESTS``),
  which name the usual mistake of each exercise;
* **minutes**: a reading-time model over the notebook's words, plus the measured execution time of its
  cells, plus an exercise-time model over the size of the solutions (the constants below, printed in the
  guide). Cell times are measured with bench/bench_notebooks.py's ``cell_times`` and stored with the
  machine's load; the guide is regenerated from the stored times, so regenerating is deterministic and a
  test (tests/test_instructor_guide.py) fails when the guide drifts from the notebooks.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import math
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.paths import SOLUTIONS, assignments, notebook_path  # noqa: E402

GUIDE = ROOT / "docs" / "INSTRUCTOR.md"
TIMES = ROOT / "tools" / "instructor_cell_times.json"

# --- the model (printed in the guide) --------------------------------------------------------------------
#: Words per minute for explanatory prose: Carver's "learning" rate (R. P. Carver, Reading rate: theory,
#: research, and practical implications, Journal of Reading 36(2), 1992: 138 wpm memorising, 200 learning,
#: 300 rauding).
PROSE_WPM = 200
#: Words (whitespace-separated tokens) per minute for code a learner reads but does not write: half the prose rate.
CODE_WPM = 100
#: Minutes per line of solution code (non-blank, not a comment or docstring) to write and debug it.
MINUTES_PER_SOLUTION_LINE = 1.0
#: Minutes per graded exercise on top: read the task, run the visible test, read its message.
MINUTES_PER_EXERCISE = 3.0
#: A learner runs an exercise's solution and test cells this many times (a failing try, the passing one).
EXERCISE_RUNS = 2
#: Minutes per episode's teaching block are rounded up to this (The Carpentries' schedules use 5).
ROUND_TO = 5

HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)
SOLUTION_BLOCK = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
OBJECTIVES_LINE = re.compile(r"^\*\*(?:[^*]*able to|Objectives\.?)[^*]*\*\*(.*)$", re.I | re.M)
LIST_ITEM = re.compile(r"^ {0,3}\d+[.)]\s+(.*)$")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
NUMBERED = re.compile(r"^(\d+)\.\s+(.+)$")
#: A section title (its number, if any, removed) that holds the key points: "What to remember", "Summary",
#: "Summary: what to remember", "Key points".
KEY_POINTS_TITLE = re.compile(r"^(?:what to remember\b|(?:summary|key points)(?:$|\s*[:.(]))", re.I)
#: Sections that are not a question the episode answers, numbered or not: the key points, the discussion
#: questions (the learners' to think about, not the notebook's), the bibliography.
NOT_A_QUESTION = re.compile(r"^(?:what to remember\b|(?:summary|key points|discussion(?: questions)?|references"
                            r"|bibliography|further reading)(?:$|\s*[:.(]))", re.I)
#: "notebook 02", "Notebook 02's", "notebooks 03 to 06", "Notebooks 01-04", "notebooks 03 and 05".
NOTEBOOK_REF = re.compile(r"\bnotebooks?\s+(\d{1,2}(?:\s*(?:-|\u2013|to|,|and|or)\s*\d{1,2}\b)*)", re.I)
MIN_MESSAGE_WORDS = 3


class GuideError(RuntimeError):
    """The guide cannot be written (a notebook is not measured, or lacks a part the guide reads)."""


def _source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _nbg(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def _words(text):
    return len(text.split())


def _markdown_words(text):
    """Words of a markdown cell as read: no link targets, HTML tags or emphasis marks."""
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"[*_`#>|]", " ", text)
    return _words(text)


def _solution_lines(source):
    lines = 0
    for block in SOLUTION_BLOCK.findall(source):
        in_docstring = False
        for line in block.splitlines():
            s = line.strip()
            if in_docstring:
                in_docstring = not s.endswith(('"""', "'''"))
                continue
            if s.startswith(('"""', "'''")):
                in_docstring = not (len(s) >= 6 and s.endswith(s[:3]))
                continue
            if not s or s.startswith("#"):
                continue
            lines += 1
    return lines


def _message_text(node):
    """The words of an assertion message (an f-string's fields become '…'), or None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "…" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _message_text(node.left), _message_text(node.right)
        return None if left is None or right is None else left + right
    return None


def visible_messages(source):
    """Messages of the visible part of a test cell: assert messages and raised AssertionError texts."""
    visible = HIDDEN.sub("", source)
    try:
        tree = ast.parse(visible)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        msg = None
        if isinstance(node, ast.Assert) and node.msg is not None:
            msg = _message_text(node.msg)
        elif (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
              and getattr(node.exc.func, "id", "") == "AssertionError" and node.exc.args):
            msg = _message_text(node.exc.args[0])
        if msg is None:
            continue
        msg = " ".join(msg.split())
        if _words(msg.replace("…", " ")) >= MIN_MESSAGE_WORDS:
            found.append((node.lineno, msg))
    return list(dict.fromkeys(m for _, m in sorted(found)))


def _numbered_items(lines):
    """The items of the markdown numbered list that ``lines`` start with (blank lines before it skipped):
    an item runs on over its continuation lines (indented or not) and a blank line followed by another
    item; [] when the first text is not a list item."""
    items, current, blank = [], None, False
    for line in lines:
        item = LIST_ITEM.match(line)
        if item:
            current = [item.group(1).strip()]
            items.append(current)
            blank = False
        elif not line.strip():
            blank = bool(items)
        elif not items:
            return []
        elif blank and not line.startswith(" "):
            break                       # a paragraph after the list
        else:
            current.append(line.strip())
            blank = False
    return [" ".join(i) for i in items]


def _split_clauses(text):
    """Prose objectives as items: split at each semicolon outside brackets, $math$ and `code`
    ("log the loss; show that ...; and name the step." gives three), the separator kept on all but the last."""
    parts, depth, math, code, start = [], 0, False, False, 0
    for i, ch in enumerate(text):
        if ch == "`":
            code = not code
        elif code:
            continue
        elif ch == "$":
            math = not math
        elif math:
            continue
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch == ";" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    parts = [re.sub(r"^(?:and|or)\s+", "", p.strip()) for p in parts]
    parts = [p for p in parts if p]
    return [p + ";" for p in parts[:-1]] + parts[-1:]


def objectives(first_cell_text, name="notebook"):
    """The numbered list under the objectives line, one objective per item; where prose follows the line
    instead, its first paragraph split into its semicolon-separated clauses."""
    m = OBJECTIVES_LINE.search(first_cell_text)
    if not m:
        raise GuideError(f"{name}: its first cell has no '**You will be able to**' or '**Objectives.**' line")
    rest = first_cell_text[m.end():]
    items = _numbered_items(rest.splitlines())
    if items:
        return items
    prose = (m.group(1) + rest).strip().split("\n\n")[0]
    prose = " ".join(prose.split())
    if not prose:
        raise GuideError(f"{name}: nothing follows its objectives line")
    return _split_clauses(prose)


@dataclass
class Section:
    level: int          # 2 for "## ..."
    title: str          # the heading's text, its number included ("8. What to remember")
    lines: list         # the lines up to the next heading of any level

    @property
    def number(self):
        m = NUMBERED.match(self.title)
        return int(m.group(1)) if m else None

    @property
    def name(self):
        """The title without its number."""
        m = NUMBERED.match(self.title)
        return m.group(2).strip() if m else self.title


def sections(cells):
    """The markdown cells' headings, in order, each with the lines that follow it up to the next heading
    (several headings in one cell are several sections; a "#" line inside a code fence is no heading)."""
    found = [Section(0, "", [])]
    for cell in cells:
        if cell["cell_type"] != "markdown":
            continue
        fenced = False
        for line in _source(cell).splitlines():
            if FENCE.match(line):
                fenced = not fenced
            heading = None if fenced else HEADING.match(line)
            if heading:
                found.append(Section(len(heading.group(1)), heading.group(2), []))
            else:
                found[-1].lines.append(line)
    return found[1:]


def _bullets(lines):
    points, current = [], None
    for line in lines:
        if line.startswith(("* ", "- ")):
            current = [line[2:].strip()]
            points.append(current)
        elif current is not None and line.strip():
            current.append(line.strip())     # an indented or lazy continuation line
        else:
            current = None
    return [" ".join(p) for p in points]


def key_points(cells, name="notebook"):
    """The bullets of the last "What to remember" / "Summary" section, and only of that section (with its
    subsections): a Discussion questions or References section after it, in the same cell or not, is not
    part of it."""
    secs = sections(cells)
    for i in reversed(range(len(secs))):
        sec = secs[i]
        if not KEY_POINTS_TITLE.match(sec.name):
            continue
        lines = list(sec.lines)
        for sub in secs[i + 1:]:
            if sub.level <= sec.level:
                break
            lines += sub.lines
        points = _bullets(lines)
        if points:
            return points
    raise GuideError(f"{name}: no '## What to remember' / '## Summary' cell with bullet points")


def questions(cells):
    """The notebook's numbered sections ("## N. ..."), in order, with the notebook's numbers: the teaching
    sections, not the key points ("What to remember", "Summary"), discussion questions or references,
    numbered or not."""
    return [f"{sec.number}. {sec.name}" for sec in sections(cells)
            if sec.level == 2 and sec.number is not None and not NOT_A_QUESTION.match(sec.name)]


def _number(assignment):
    head = assignment.split("_", 1)[0]
    return int(head) if head.isdigit() else None


def references(cells, own=None):
    """The numbers of the other notebooks the markdown cells mention ("Notebook 02 showed ...",
    "notebooks 03 to 06"), sorted."""
    text = "\n".join(_source(c) for c in cells if c["cell_type"] == "markdown")
    found = set()
    for m in NOTEBOOK_REF.finditer(text):
        prev, span = None, False
        for tok in re.finditer(r"\d{1,2}|-|\u2013|\bto\b", m.group(1)):
            if not tok.group(0).isdigit():
                span = prev is not None
                continue
            n = int(tok.group(0))
            found.update(range(prev + 1, n + 1) if span and prev < n else [n])
            prev, span = n, False
    found.discard(own)
    return tuple(sorted(found))


@dataclass
class Exercise:
    grade_id: str
    solution_lines: int
    tests: list = field(default_factory=list)        # grade ids of the test cells that follow it
    mistakes: list = field(default_factory=list)     # (test grade id, message)


@dataclass
class Episode:
    assignment: str
    title: str
    stated_minutes: int | None
    prose_words: int
    code_words: int
    test_words: int
    teach_run_s: float
    exercise_run_s: float
    kernel_start_s: float
    exercises: list
    objectives: list
    questions: list
    key_points: list
    points: float
    refers: tuple = ()     # the numbers of the other notebooks its markdown mentions ("Notebook 02 showed")

    @property
    def number(self):
        return _number(self.assignment)

    @property
    def reading_minutes(self):
        return self.prose_words / PROSE_WPM + self.code_words / CODE_WPM

    @property
    def teaching(self):
        raw = self.reading_minutes + (self.teach_run_s + self.kernel_start_s) / 60
        return ROUND_TO * math.ceil(raw / ROUND_TO)

    @property
    def exercise_raw(self):
        lines = sum(e.solution_lines for e in self.exercises)
        return (lines * MINUTES_PER_SOLUTION_LINE + len(self.exercises) * MINUTES_PER_EXERCISE
                + self.test_words / CODE_WPM + EXERCISE_RUNS * self.exercise_run_s / 60)

    @property
    def exercise(self):
        return ROUND_TO * math.ceil(self.exercise_raw / ROUND_TO)

    @property
    def total(self):
        return self.teaching + self.exercise


def load_times(path=TIMES):
    return json.loads(Path(path).read_text()) if Path(path).exists() else {}


def unmeasured(nb, measured):
    """Code cell ids of the notebook that the stored measurement does not have."""
    cells = (measured or {}).get("cells", {})
    return [c.get("id") for c in nb["cells"] if c["cell_type"] == "code" and c.get("id") not in cells]


def episode(assignment, nb, measured):
    cells = nb["cells"]
    missing = unmeasured(nb, measured)
    if missing:
        raise GuideError(f"{assignment}: {len(missing)} code cell(s) have no measured time (first: {missing[0]}); "
                         f"run: python tools/instructor_guide.py --measure {assignment}")
    times = measured["cells"]
    first = _source(cells[0])
    title = first.splitlines()[0].lstrip("# ").strip()
    stated = re.search(r"\*\*Time:\*\* about (\d+) minutes", first)
    prose = code = tests = 0
    teach_s = exercise_s = 0.0
    exercises, points = [], 0.0
    for cell in cells:
        text, meta = _source(cell), _nbg(cell)
        if cell["cell_type"] == "markdown":
            prose += _markdown_words(text)
            continue
        if cell["cell_type"] != "code":
            continue
        seconds = float(times[cell["id"]])
        if meta.get("solution"):
            exercises.append(Exercise(meta.get("grade_id", cell["id"]), _solution_lines(text)))
            exercise_s += seconds
        elif meta.get("grade"):
            tests += _words(HIDDEN.sub("", text))
            exercise_s += seconds
            points += float(meta.get("points", 0))
            if exercises:
                exercises[-1].tests.append(meta["grade_id"])
                exercises[-1].mistakes += [(meta["grade_id"], m) for m in visible_messages(text)]
        else:
            code += _words(text)
            teach_s += seconds
    if not exercises:
        raise GuideError(f"{assignment}: no solution cell (an episode needs at least one exercise)")
    return Episode(assignment, title, int(stated.group(1)) if stated else None, prose, code, tests, teach_s,
                   exercise_s, float(measured.get("kernel_start_s", 0.0)), exercises,
                   objectives(first, assignment),
                   questions(cells),
                   key_points(cells, assignment), points, references(cells, _number(assignment)))


def landed(source=SOLUTIONS):
    """The assignments whose notebook is in solutions/ and tracked by git (a notebook still being written,
    not yet added, is left out until it lands); every one with a notebook where git cannot tell."""
    present = [a for a in assignments(source) if notebook_path(a, source).exists()]
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--", *[str(notebook_path(a, source)) for a in present]],
                                cwd=Path(source), capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return present
    tracked = {Path(p).name for p in listed.split("\0") if p}
    return [a for a in present if notebook_path(a, source).name in tracked]


def episodes(source=SOLUTIONS, times=None):
    times = load_times() if times is None else times
    return [episode(a, json.loads(notebook_path(a, source).read_text()), times.get(a)) for a in landed(source)]


# --- the plans ---------------------------------------------------------------------------------------------

SETUP_MINUTES = 15     # log in to the hub, open the Assignments tab, fetch the day's notebooks
RECAP_MINUTES = 5      # a skipped notebook's key points, told before a later one that refers to it
WRAP_UP_MINUTES = 10   # submit, what comes next
BREAK_MINUTES = 15
LUNCH_MINUTES = 45
BREAK_EVERY = 90       # a break before an episode that would run past 90 minutes since the last one,
MIN_BEFORE_BREAK = 30  # unless fewer than 30 minutes have passed since it
LUNCH_FROM = "11:30"   # the full day's first break from then on is lunch

#: Which notebooks a workshop takes first when not all fit. The notebooks do not need each other's answers
#: (gradlab holds the reference code later notebooks build on), so a short workshop can start at the core:
#: 03 (clipping, the course's subject), 02 (why gradients explode and vanish), 04 (catching explosions),
#: 05 (PyTorch), 01 (the RNN and BPTT by hand), 06 (TensorFlow and Keras). A notebook not named here
#: (a new one) comes after these. The schedule itself runs in course order.
PRIORITY = ("03_clipping_by_hand", "02_vanishing_exploding", "04_catching_explosions", "05_pytorch",
            "01_rnn_from_scratch", "06_tensorflow_keras")


@dataclass
class Plan:
    name: str           # "Half-day workshop"; the heading adds the real times and length
    start: str          # "09:00"
    end: str            # the latest end
    lunch: bool


PLANS = (Plan("Half-day workshop", "09:00", "13:00", lunch=False),
         Plan("Full-day workshop", "09:00", "16:30", lunch=True))


def _minutes(hhmm):
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _clock(minutes):
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _length(minutes):
    """95 -> '1 h 35 min', 240 -> '4 h', 45 -> '45 min'."""
    h, m = divmod(minutes, 60)
    return " ".join(([f"{h} h"] if h else []) + ([f"{m} min"] if m or not h else []))


def recaps(chosen, eps):
    """{assignment: [skipped episodes]}: for each chosen episode, the earlier notebooks it refers to that the
    plan skips and that no earlier chosen episode has recapped yet (each skipped notebook is recapped once,
    before the first chosen one that refers to it)."""
    taken = {ep.assignment for ep in chosen}
    by_number = {ep.number: ep for ep in eps if ep.number is not None and ep.assignment not in taken}
    done, out = set(), {}
    for ep in sorted(chosen, key=lambda e: e.assignment):
        own = ep.number if ep.number is not None else math.inf
        skipped = [by_number[n] for n in ep.refers if n < own and n in by_number and n not in done]
        done.update(s.number for s in skipped)
        if skipped:
            out[ep.assignment] = skipped
    return out


def _rows(plan, chosen, eps=()):
    """(start, what, minutes) rows for the chosen episodes in course order, with breaks and lunch, and a
    recap of each skipped notebook (one of ``eps`` not chosen) right before the first chosen episode whose
    markdown refers to it."""
    t = _minutes(plan.start)
    rows = [(t, f"Setup: log in to the hub, open the Assignments tab, fetch the day's assignments (released "
                f"before {plan.start})", SETUP_MINUTES)]
    t += SETUP_MINUTES
    since_break, lunched = SETUP_MINUTES, not plan.lunch
    recap = recaps(chosen, eps)
    blocks = []
    for ep in chosen:
        for part, mins in (("teaching", ep.teaching), ("exercises", ep.exercise)):
            if mins > BREAK_EVERY - MIN_BEFORE_BREAK:   # too long to sit between two breaks with the rest: halves
                first = 5 * round(mins / 10)
                blocks += [(ep, f"{part} (part 1)", first), (ep, f"{part} (part 2)", mins - first)]
            elif mins:
                blocks.append((ep, part, mins))
    for ep, part, mins in blocks:
        before = [(f"Recap of [{s.assignment}](#{s.assignment}), which this plan skips and {ep.assignment} "
                   f"refers to: its key points, briefly", RECAP_MINUTES)
                  for s in recap.pop(ep.assignment, [])]          # before the episode's first block
        ahead = mins + sum(m for _, m in before)        # a recap and its episode's teaching stay together
        if since_break >= MIN_BEFORE_BREAK and since_break + ahead > BREAK_EVERY:
            what, pause = (("Lunch", LUNCH_MINUTES) if not lunched and t >= _minutes(LUNCH_FROM)
                           else ("Break", BREAK_MINUTES))
            rows.append((t, what, pause))
            t += pause
            lunched = lunched or what == "Lunch"
            since_break = 0
        for what, m in before + [(f"[{ep.assignment}](#{ep.assignment}): {ep.title}, {part}", mins)]:
            rows.append((t, what, m))
            t += m
            since_break += m
    if plan.lunch and not lunched:
        rows.append((t, "Lunch", LUNCH_MINUTES))
        t += LUNCH_MINUTES
    rows.append((t, "Wrap-up: submit from the Assignments tab; what comes next", WRAP_UP_MINUTES))
    return rows


def schedule(plan, eps):
    """(rows, left): the episodes taken in PRIORITY order while the whole day (recaps of skipped notebooks
    included) still ends by plan.end, scheduled in course order; ``left`` the ones for afterwards, in course
    order."""
    rank = {a: i for i, a in enumerate(PRIORITY)}
    order = sorted(eps, key=lambda ep: (rank.get(ep.assignment, len(rank)), ep.assignment))
    chosen = []
    for ep in order:
        trial = sorted(chosen + [ep], key=lambda e: e.assignment)
        last = _rows(plan, trial, eps)[-1]
        if last[0] + last[2] <= _minutes(plan.end):
            chosen = trial
    taken = {ep.assignment for ep in chosen}
    return _rows(plan, chosen, eps), [ep for ep in eps if ep.assignment not in taken]


def plan_heading(plan, rows):
    """The plan's name with the times and the length its rows really have, breaks counted."""
    start, finish = rows[0][0], rows[-1][0] + rows[-1][2]
    breaks = sum(what == "Break" for _, what, _ in rows)
    pauses = (["lunch"] if any(what == "Lunch" for _, what, _ in rows) else []) + (
        [f"{breaks} break{'s' if breaks != 1 else ''}"] if breaks else [])
    return (f"{plan.name}: {_clock(start)} to {_clock(finish)} ({_length(finish - start)}"
            + (f", {' and '.join(pauses)} included" if pauses else "") + ")")


# --- the guide -------------------------------------------------------------------------------------------

def _escape(text):
    """A test message as markdown text: its *, _, `, < and > shown as they are."""
    return re.sub(r"([*_`\\])", r"\\\1", text).replace("<", "&lt;").replace(">", "&gt;")


def render(eps, times):
    out = ["<!-- Generated by tools/instructor_guide.py from solutions/ and tools/instructor_cell_times.json;",
           "     do not edit by hand (tests/test_instructor_guide.py fails when it drifts). -->",
           "",
           "# Instructor's guide: a Taming Gradients workshop",
           "",
           "One episode per notebook, in the style of The Carpentries' lesson episodes: the minutes to plan for,",
           "the questions it answers, its objectives, its key points, and the mistakes learners make in its",
           "exercises. The hub, the exchange and grading are in [WORKSHOP.md](WORKSHOP.md).",
           "",
           "## How the minutes are measured",
           "",
           "Not guessed, but not observed in a classroom either: a model over what each notebook contains, with",
           "measured execution times. Regenerate with `python tools/instructor_guide.py` (after a notebook changes;",
           "`--measure NN_topic` re-times its cells).",
           "",
           f"* **Teaching** = the notebook's prose read at {PROSE_WPM} words per minute (Carver's \"learning\" rate;",
           "  R. P. Carver, *Reading rate: theory, research, and practical implications*, Journal of Reading",
           f"  36(2), 1992) + the code the learner runs but does not write read at {CODE_WPM} words per minute +",
           "  the measured execution time of those cells and of the kernel's start; rounded up to "
           f"{ROUND_TO} minutes.",
           f"* **Exercises** = {MINUTES_PER_SOLUTION_LINE:g} minute per line of the solution (non-blank, not a",
           f"  comment or docstring) + {MINUTES_PER_EXERCISE:g} minutes per exercise (read the task, run the visible",
           f"  test) + the visible tests read at {CODE_WPM} words per minute + {EXERCISE_RUNS} runs of the solution",
           f"  and test cells' measured time; rounded up to {ROUND_TO} minutes.",
           "* **Execution times** are each code cell's seconds from bench/bench_notebooks.py's `cell_times`",
           "  (a \"Restart and run all\" of the solution notebook with nbclient), stored in",
           "  `tools/instructor_cell_times.json` with the date and the machine's load average. A load above the",
           "  core count slows the runs several times (bench/README.md has quiet-machine times); running is a",
           "  small part of every episode, so the minutes move by one rounding step at most.",
           "* **Stated** is what the notebook's first cell says (\"about N minutes to work through\").",
           "",
           "| notebook | prose words | code words | solution lines | exercises | run (s) | teaching | exercises | "
           "total | stated | measured on |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for ep in eps:
        m = times[ep.assignment]
        run = ep.teach_run_s + ep.exercise_run_s + ep.kernel_start_s
        out.append(f"| [{ep.assignment}](#{ep.assignment}) | {ep.prose_words} | {ep.code_words} | "
                   f"{sum(e.solution_lines for e in ep.exercises)} | {len(ep.exercises)} | {run:.0f} | "
                   f"{ep.teaching} | {ep.exercise} | {ep.total} | "
                   f"{ep.stated_minutes if ep.stated_minutes is not None else '-'} | "
                   f"{m.get('date', '?')}, load {m.get('load', '?')} on {m.get('cores', '?')} cores |")
    total = sum(ep.total for ep in eps)
    out += ["", f"The whole course: {total} minutes ({total / 60:.1f} hours) of teaching and exercises."]
    apart = [ep for ep in eps if ep.stated_minutes and not 2 / 3 <= ep.total / ep.stated_minutes <= 3 / 2]
    if apart:
        out += ["", textwrap.fill(
            "The model and the notebook's own statement differ by more than half for "
            + ", ".join(f"{ep.assignment} ({ep.total} against {ep.stated_minutes})" for ep in apart)
            + ": plan with the larger number until a run with real learners says otherwise, and time that run "
            "(the exercise rate of one minute per solution line is the model's least certain constant).",
            width=110, break_on_hyphens=False)]
    out.append("")

    out += ["## Plans", "", textwrap.fill(
        "The notebooks do not need each other's answers (gradlab holds the reference code that later notebooks "
        "build on), so a workshop too short for all of them takes them in this order of priority, as long as the "
        "day still ends on time: " + ", ".join(PRIORITY) + ". The schedule then runs in course order, each episode "
        f"as its teaching and then its exercises (a block longer than {BREAK_EVERY - MIN_BEFORE_BREAK} minutes in two "
        "halves). A break comes before a block that would run past {BREAK_EVERY} "
        f"minutes since the last break (unless fewer than {MIN_BEFORE_BREAK} minutes have passed since it); the "
        f"full day's first break from {LUNCH_FROM} is a {LUNCH_MINUTES}-minute lunch. Where a plan skips a "
        "notebook that a later one refers "
        "to (its markdown says \"notebook 02\", \"notebooks 03 to 06\"), the later one starts with a "
        f"{RECAP_MINUTES}-minute recap of the skipped one's key points (listed under its episode below). What does "
        "not fit is for the learners to work through afterwards, on the same hub or their own machine "
        "(`make lab`); they submit it from the Assignments tab as before. Each plan's heading gives its real "
        "start, end and length, breaks included. Hand each learner their login (root's "
        "`/srv/taming-gradients/passwords.csv`) on paper before Setup; collect, grade and release feedback "
        "after the wrap-up (WORKSHOP.md's round trip, a few minutes for a room), and the learners fetch it from "
        "the same Assignments tab.", width=110, break_on_hyphens=False), ""]
    for plan in PLANS:
        rows, left = schedule(plan, eps)
        taken = [ep.assignment for ep in eps if ep not in left]
        finish = rows[-1][0] + rows[-1][2]
        out += [f"### {plan_heading(plan, rows)}", "",
                textwrap.fill(f"**Before {plan.start}**, release the day's assignments, so that the learners' "
                              f"first Fetch at {plan.start} finds them (a terminal in the instructor's JupyterLab, "
                              "in `~/taming-gradients`: [WORKSHOP.md](WORKSHOP.md#the-round-trip))"
                              + ("; release the ones for afterwards at the wrap-up, so that the learners can "
                                 "fetch them from the same Assignments tab (released at the start, they would "
                                 "crowd the day's list)" if left else "") + ":",
                              width=110, break_on_hyphens=False),
                "", "```", f"# before {plan.start}: the day's assignments"]
        out += [f"nbgrader release_assignment {a}" for a in taken]
        if left:
            out.append(f"# at the wrap-up, {_clock(rows[-1][0])}: the ones for afterwards")
            out += [f"nbgrader release_assignment {ep.assignment}" for ep in left]
        out += ["```", "", "| start | | minutes |", "|---|---|---:|"]
        out += [f"| {_clock(t)} | {what} | {mins} |" for t, what, mins in rows]
        out += ["", f"Ends at {_clock(finish)} (this plan may run until {plan.end})."]
        if left:
            out.append("Afterwards, on their own: " + ", ".join(f"{ep.assignment} ({ep.total} min)" for ep in left)
                       + ".")
        out.append("")

    out += ["## Episodes", ""]
    for ep in eps:
        out += [f"### {ep.assignment}", "", f"**{ep.title}**", "",
                f"Teaching: {ep.teaching} min. Exercises: {ep.exercise} min "
                f"({len(ep.exercises)} graded exercises, {ep.points:g} points).", "",
                "**Questions** (the notebook's sections)", ""]
        out += list(ep.questions) or ["* (no numbered sections)"]
        out += ["", "**Objectives**", ""]
        out += [f"{i}. {o}" for i, o in enumerate(ep.objectives, 1)]
        out += ["", "**Key points**", ""]
        out += [f"* {k}" for k in ep.key_points]
        out += ["", "**Common mistakes** (what the visible tests say when they fail)", ""]
        any_mistake = False
        for ex in ep.exercises:
            first_test = {}
            for test, msg in ex.mistakes:
                first_test.setdefault(msg, test)
            if not first_test:
                continue
            any_mistake = True
            out.append(f"* `{ex.grade_id}` ({ex.solution_lines} solution lines):")
            out += [f"  * {_escape(msg)} (`{test}`)" for msg, test in first_test.items()]
        if not any_mistake:
            out.append("* (the visible tests give no messages)")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def generate(source=SOLUTIONS, times_path=TIMES):
    times = load_times(times_path)
    return render(episodes(source, times), times)


def measure(names, source=SOLUTIONS, times_path=TIMES):
    """Execute the notebooks and store their cell times (bench/bench_notebooks.py's cell_times)."""
    from bench.bench_notebooks import cell_times

    times = load_times(times_path)
    failed = []
    for a in names:
        load = os.getloadavg()[0]
        try:
            start, cells = cell_times(notebook_path(a, source))
        except Exception as exc:  # noqa: BLE001 - a notebook that does not run is reported, the others measured
            lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
            print(f"{a}: does not run, not measured ({type(exc).__name__}: {lines[-1] if lines else ''})")
            failed.append(a)
            continue
        times[a] = {"date": datetime.date.today().isoformat(), "load": round(load, 2), "cores": os.cpu_count(),
                    "kernel_start_s": round(start, 2), "cells": {cid: round(s, 3) for cid, s in cells}}
        print(f"{a}: kernel start {start:.1f} s, cells {sum(s for _, s in cells):.1f} s (load {load:.2f})")
    Path(times_path).write_text(json.dumps(dict(sorted(times.items())), indent=1) + "\n")
    return failed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when docs/INSTRUCTOR.md is stale")
    parser.add_argument("--measure", nargs="*", metavar="NN_topic", help="execute and time these notebooks")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.measure is not None:
        names = args.measure
        if not names:
            times = load_times()
            names = [a for a in landed() if unmeasured(json.loads(notebook_path(a).read_text()), times.get(a))]
        unknown = [a for a in names if not notebook_path(a).exists()]
        if unknown:
            parser.error(f"no such notebook in solutions/: {', '.join(unknown)}")
        if measure(names):
            return 1
    try:
        text = generate()
    except GuideError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if not GUIDE.exists() or GUIDE.read_text() != text:
            print(f"{GUIDE.relative_to(ROOT)} is stale: run python tools/instructor_guide.py", file=sys.stderr)
            return 1
        return 0
    GUIDE.write_text(text)
    print(f"wrote {GUIDE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
