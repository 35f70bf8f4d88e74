"""One job's result: its JSON (bounded in size), failed tests for a job that did not run, screened cells and output.

Moved out of ``autograder/trusted.py`` (one module per job); ``trusted`` re-exports every name."""

from __future__ import annotations

import json

from .redaction import STATUS_CHARS, TYPE_WITHHELD, _clip, redact, safe_type_name

MAX_NOTES = 50
MAX_RESULT_BYTES = 1 << 20  # of one job's result JSON


def _result(plan, *, status, tests, cells=(), output=None, notes=(), protections=(), not_enforced=(),
            elapsed=0.0, cpu=0.0):
    score = sum(t["score"] for t in tests)
    return _fit({
        "score": round(score, 6),
        "max_score": round(plan.max_score, 6),
        "status": redact(_clip(str(status), STATUS_CHARS), plan.secrets),
        "tests": tests,
        "cells": list(cells),
        "notes": [redact(_clip(str(n)), plan.secrets) for n in (list(plan.notes) + list(notes))[:MAX_NOTES]],
        "output": output or {"stdout": "", "stderr": ""},
        "protections": list(protections),
        "not_enforced": list(not_enforced),
        "elapsed_s": round(elapsed, 3),
        "sandbox_cpu_s": round(cpu, 3),
    })


def _size(data):
    return len(json.dumps(data, indent=1, sort_keys=True).encode("utf-8"))


def _fit(result, limit=None):
    """``result`` cut down, if need be, until its JSON is at most ``limit`` bytes (MAX_RESULT_BYTES).

    Every part is already bounded (tests and cells by the plan, each string clipped, output by the
    sandbox); this is the last guard, shortening first the learner's output, then cell and test
    messages, then dropping cell entries.
    """
    limit = limit or MAX_RESULT_BYTES
    if _size(result) <= limit:
        return result
    result["notes"] = [*result["notes"], "This result was cut down to stay within the grader's size limit."]
    for chars in (4000, 500, 0):
        result["output"] = {k: _clip(v, chars) for k, v in result["output"].items()}
        if _size(result) <= limit:
            return result
    for chars in (100, 0):
        for entry in result["cells"] + result["tests"]:
            if entry.get("message"):
                entry["message"] = _clip(entry["message"], chars)
        if _size(result) <= limit:
            return result
    while result["cells"] and _size(result) > limit:
        result["cells"] = result["cells"][: len(result["cells"]) // 2]
    return result


def _failed_tests(plan, reason):
    return [{"grade_id": t.grade_id, "summary": t.summary, "points": t.points, "score": 0.0, "passed": False,
             "error_type": None, "message": redact(_clip(reason), plan.secrets)} for t in plan.tests]


def _clean_cell(cell, plan, index):
    """A setup cell's result as the learner's process reported it, screened; the label is ours."""
    label = plan.setup[index]["label"] if index < len(plan.setup) else f"cell {index}"
    out = {"label": _clip(str(label), 100), "ok": cell.get("ok") is True}
    err = cell.get("error")
    if isinstance(err, dict):
        out["error_type"] = safe_type_name(_clip(err.get("type"), 100), plan.secrets) or TYPE_WITHHELD
        out["message"] = redact(_clip(err.get("message")), plan.secrets)
    elif not out["ok"]:
        out["error_type"], out["message"] = TYPE_WITHHELD, ""
    return out


def _redact_output(output, plan):
    """Learner output with every line that quotes hidden-test or solution source withheld."""
    out = {}
    for name, text in (output or {}).items():
        out[name] = "\n".join("[line withheld: it quotes grader test or solution code]"
                              if plan.secrets.found_in(line) else line for line in str(text).split("\n"))
    return out
