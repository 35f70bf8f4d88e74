"""Per-learner HTML feedback, written from a result JSON (never from the notebooks themselves).

Each test cell shows the first line of its docstring, its points, passed or failed, and for a
failure the exception type and a truncated message; never a traceback and never test source (the
messages were already screened for quotes of hidden tests and solutions by ``trusted.redact``).
The learner's own output from running their notebook is shown truncated. A missing assignment's
page says "not submitted" and nothing else. A page is at most ``MAX_PAGE_BYTES``: every part is
bounded (tests and cells come from the grader's plan, messages are clipped, output is cut), and a
page still over the cap is rendered again without the cell errors and output.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

OUTPUT_CHARS = 8000
MESSAGE_CHARS = 600  # of one test or cell message (the grader clips them to 500 already)
MAX_ROWS = 500  # test rows and cell errors shown
MAX_PAGE_BYTES = 1 << 20

# The page fits a narrow viewer (JupyterLab's HTML viewer in a side panel): the table takes its container's
# width and no more (fixed layout: the columns share it, the details column the most), and a long word or
# message wraps anywhere instead of widening the table; output keeps its line breaks and wraps too.
_CSS = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222;
overflow-wrap:anywhere;word-wrap:break-word}
table{border-collapse:collapse;width:100%;max-width:100%;table-layout:fixed}td,th{border:1px solid #ccc;
padding:.35rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere;word-wrap:break-word;
word-break:break-word;min-width:0}th:nth-child(1){width:30%}th:nth-child(2){width:14%}th:nth-child(3){width:12%}
.pass{color:#1a7f37}.fail{color:#b3261e}pre{background:#f6f6f6;padding:.6rem;white-space:pre-wrap;
overflow-wrap:anywhere;word-break:break-all;max-width:100%;max-height:30rem;overflow:auto}
.note{background:#fff8e1;padding:.5rem}
"""


def _e(text):
    return html.escape(str(text if text is not None else ""), quote=True)


def _points(x):
    return f"{x:g}"


def _short(text, n=MESSAGE_CHARS):
    text = str(text if text is not None else "")
    return text if len(text) <= n else text[:n] + " [...]"


def _head(learner, assignment):
    return ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            f"<title>Feedback: {_e(assignment)} ({_e(learner)})</title><style>{_CSS}</style></head><body>",
            f"<h1>{_e(assignment)}</h1>"]


def render(result):
    """The feedback page for one learner and assignment, as an HTML string of at most MAX_PAGE_BYTES."""
    page = _render(result, details=True)
    if len(page.encode("utf-8")) > MAX_PAGE_BYTES:
        page = _render(result, details=False)
    return page


def _render(result, details):
    learner, assignment = _short(result.get("learner", ""), 200), _short(result.get("assignment", ""), 200)
    if result.get("status") == "missing":
        return "\n".join(_head(learner, assignment) + ["<p>Not submitted.</p></body></html>"])
    parts = [
        *_head(learner, assignment),
        f"<p>Learner: <b>{_e(learner)}</b> &middot; score <b>{_points(result.get('score', 0))} / "
        f"{_points(result.get('max_score', 0))}</b> &middot; status: <b>{_e(_short(result.get('status')))}</b></p>",
    ]
    for note in result.get("notes", [])[:MAX_ROWS]:
        parts.append(f"<p class='note'>{_e(_short(note))}</p>")
    tests = result.get("tests", [])
    if tests:
        parts.append("<h2>Tests</h2><table><tr><th>check</th><th>points</th><th>result</th><th>details</th></tr>")
        for t in tests[:MAX_ROWS]:
            ok = t.get("passed")
            detail = ""
            if not ok:
                kind = _short(t.get("error_type"), 100) if t.get("error_type") else None
                msg = _short(t.get("message") or "", MESSAGE_CHARS if details else 100)
                detail = f"<b>{_e(kind)}</b>: {_e(msg)}" if kind else _e(msg)
            parts.append(
                f"<tr><td>{_e(_short(t.get('summary')))}<br><small>{_e(_short(t.get('grade_id'), 200))}</small></td>"
                f"<td>{_points(t.get('score', 0))} / {_points(t.get('points', 0))}</td>"
                f"<td class='{'pass' if ok else 'fail'}'>{'passed' if ok else 'failed'}</td><td>{detail}</td></tr>"
            )
        parts.append("</table>")
    failed_cells = [c for c in result.get("cells", []) if not c.get("ok")][:MAX_ROWS] if details else []
    if failed_cells:
        parts.append("<h2>Cells that raised an error when your notebook ran</h2><ul>")
        for c in failed_cells:
            parts.append(f"<li><b>{_e(_short(c.get('label'), 200))}</b>: {_e(_short(c.get('error_type'), 100))}: "
                         f"{_e(_short(c.get('message')))}</li>")
        parts.append("</ul>")
    output = (result.get("output") or {}) if details else {}
    if not details:
        parts.append("<p class='note'>Your notebook's cell errors and output are left out of this page "
                     "(it would be too large).</p>")
    for name in ("stdout", "stderr"):
        text = output.get(name) or ""
        if text.strip():
            if len(text) > OUTPUT_CHARS:
                text = text[:OUTPUT_CHARS] + f"\n[... {len(text) - OUTPUT_CHARS} more characters]"
            parts.append(f"<h2>Your notebook's {name}</h2><pre>{_e(text)}</pre>")
    parts.append("<p><small>Tests ran outside your notebook's process, on the values your functions "
                 "returned. Skipped when grading: cells tagged <code>slow</code>.</small></p></body></html>")
    return "\n".join(parts)


def write(result, out_dir):
    """Write OUT/feedback/<learner>/<assignment>/<assignment>.html atomically; returns its path."""
    learner, assignment = result["learner"], result["assignment"]
    path = Path(out_dir) / "feedback" / learner / assignment / f"{assignment}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(render(result), encoding="utf-8")
    os.replace(tmp, path)
    return path
