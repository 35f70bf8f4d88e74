"""Per-learner HTML feedback, written from a result JSON (never from the notebooks themselves).

Each test cell shows the first line of its docstring, its points, passed or failed, and for a
failure the exception type and a truncated message; never a traceback and never test source (the
messages were already screened for quotes of hidden tests and solutions by ``trusted.redact``).
The learner's own output from running their notebook is shown truncated.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

OUTPUT_CHARS = 8000

_CSS = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.35rem .5rem;text-align:left;
vertical-align:top}.pass{color:#1a7f37}.fail{color:#b3261e}pre{background:#f6f6f6;padding:.6rem;
white-space:pre-wrap;word-break:break-all;max-height:30rem;overflow:auto}.note{background:#fff8e1;padding:.5rem}
"""


def _e(text):
    return html.escape(str(text if text is not None else ""), quote=True)


def _points(x):
    return f"{x:g}"


def render(result):
    """The feedback page for one learner and assignment, as an HTML string."""
    learner, assignment = result.get("learner", ""), result.get("assignment", "")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Feedback: {_e(assignment)} ({_e(learner)})</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(assignment)}</h1>",
        f"<p>Learner: <b>{_e(learner)}</b> &middot; score <b>{_points(result.get('score', 0))} / "
        f"{_points(result.get('max_score', 0))}</b> &middot; status: <b>{_e(result.get('status'))}</b></p>",
    ]
    for note in result.get("notes", []):
        parts.append(f"<p class='note'>{_e(note)}</p>")
    tests = result.get("tests", [])
    if tests:
        parts.append("<h2>Tests</h2><table><tr><th>check</th><th>points</th><th>result</th><th>details</th></tr>")
        for t in tests:
            ok = t.get("passed")
            detail = ""
            if not ok:
                kind = t.get("error_type")
                msg = t.get("message") or ""
                detail = f"<b>{_e(kind)}</b>: {_e(msg)}" if kind else _e(msg)
            parts.append(
                f"<tr><td>{_e(t.get('summary'))}<br><small>{_e(t.get('grade_id'))}</small></td>"
                f"<td>{_points(t.get('score', 0))} / {_points(t.get('points', 0))}</td>"
                f"<td class='{'pass' if ok else 'fail'}'>{'passed' if ok else 'failed'}</td><td>{detail}</td></tr>"
            )
        parts.append("</table>")
    failed_cells = [c for c in result.get("cells", []) if not c.get("ok")]
    if failed_cells:
        parts.append("<h2>Cells that raised an error when your notebook ran</h2><ul>")
        for c in failed_cells:
            parts.append(f"<li><b>{_e(c.get('label'))}</b>: {_e(c.get('error_type'))}: {_e(c.get('message'))}</li>")
        parts.append("</ul>")
    output = result.get("output") or {}
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
