"""Everything that comes out of the sandbox is bounded before it is parsed, and what the grader writes
is bounded too (no sandbox needed here; tests/adversarial/cases.py forges the same frames for real).
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures"))

from grader_fixture import SOURCE_NB, solution_nb  # noqa: E402

from autograder import feedback, learner_runner, notebooks, trusted, wire  # noqa: E402
from autograder.sandbox import Limits, Sandbox  # noqa: E402


@pytest.fixture(scope="module")
def plan():
    return trusted.build_plan(notebooks.read(SOURCE_NB), solution_nb())


def test_control_caps_are_kilobytes_not_the_frame_cap(plan):
    """Setup messages may hold each cell's clipped error, value-less replies a few kilobytes."""
    assert wire.reply_limit("len") == wire.reply_limit("repr") == wire.CONTROL_BYTES <= 64 * 1024
    assert wire.reply_limit("call") == wire.REPLY_BYTES < wire.MAX_FRAME
    limit = wire.setup_limit(len(plan.setup))
    assert limit < 1 << 20 and limit < wire.MAX_FRAME // 1000
    # what a real ready message can weigh: every cell failing with the longest message and type name
    cells = [{"label": c["label"], "ok": False,
              "error": {"type": "E" * learner_runner.MAX_TYPE_NAME, "builtin": False,
                        "message": "\U0001f600" * learner_runner.MAX_MESSAGE}} for c in plan.setup]
    assert len(wire.dumps({"op": "ready", "cells": cells})) <= limit


class _Pipe:
    """A Sandbox's frame reader fed from a pipe, without a learner process."""

    def __init__(self):
        self.sb = Sandbox(limits=Limits())
        r, self.w = os.pipe()
        os.set_blocking(r, False)
        self.sb._fds = {r: "resp"}
        self.sb._buf = bytearray()
        self.r = r

    def close(self):
        os.close(self.r)
        os.close(self.w)


def test_a_frame_over_its_cap_is_refused_from_its_header():
    """A frame announcing more than the caller's cap is a WireError before any of its body is read."""
    pipe = _Pipe()
    try:
        os.write(pipe.w, struct.pack(">I", 512 * 1024 * 1024) + b"{")
        t0 = time.monotonic()
        with pytest.raises(wire.WireError, match="announced"):
            pipe.sb.recv(time.monotonic() + 5, limit=wire.CONTROL_BYTES)
        assert time.monotonic() - t0 < 1
        body = wire.dumps({"ok": True, "value": "x" * 100})
        os.write(pipe.w, struct.pack(">I", len(body)) + body)
        pipe.sb._buf.clear()
        assert pipe.sb.recv(time.monotonic() + 5, limit=wire.CONTROL_BYTES)["value"] == "x" * 100
    finally:
        pipe.close()


def test_forged_error_fields_of_any_type_are_clipped_strings():
    """A reply's error may hold anything: the exception built from it has short string fields."""
    exc = trusted._learner_exception({"type": ["x"] * 1000, "message": {"a": 1}})
    assert isinstance(exc, trusted.LearnerException) and exc.type_name == "Exception" and str(exc) == ""
    exc = trusted._learner_exception({"type": "T" * 10_000, "message": "m" * 100_000})
    assert len(exc.type_name) == 100 and len(str(exc)) == 2000
    assert trusted._clip(12345) == "[int]" and trusted._clip(None) == ""
    assert len(trusted._clip("y" * 10_000)) == trusted.MESSAGE_CHARS + len(" [...]")


def test_cell_results_are_clipped_before_screening(plan):
    """A cell error is clipped, then screened; its label is the plan's."""
    cell = {"ok": False, "label": "forged" * 1000, "error": {"type": "X" * 5000, "message": "z" * 10**6}}
    out = trusted._clean_cell(cell, plan, 0)
    assert out["label"] == plan.setup[0]["label"]
    assert out["error_type"] == trusted.TYPE_WITHHELD
    assert len(out["message"]) <= trusted.MESSAGE_CHARS + 6


def test_result_json_is_cut_to_its_cap(plan):
    """A result whose parts add up to more than 1 MB is cut down (output first) and says so."""
    tests = [{"grade_id": t.grade_id, "summary": t.summary, "points": t.points, "score": 0.0, "passed": False,
              "error_type": None, "message": "\x00" * 500} for t in plan.tests]
    cells = [{"label": "c", "ok": False, "error_type": "E", "message": "\x01" * 500}] * 2000
    output = {"stdout": "\x02" * (64 << 10), "stderr": "\x03" * (64 << 10)}
    result = trusted._result(plan, status="graded", tests=tests, cells=cells, output=output)
    size = len(json.dumps(result, indent=1, sort_keys=True).encode())
    assert size <= trusted.MAX_RESULT_BYTES, size
    assert any("cut down" in n for n in result["notes"])
    assert [t["grade_id"] for t in result["tests"]] == [t.grade_id for t in plan.tests]
    small = trusted._result(plan, status="graded", tests=tests[:1], output={"stdout": "hello", "stderr": ""})
    assert small["output"]["stdout"] == "hello" and not any("cut down" in n for n in small["notes"])


def test_feedback_page_is_at_most_its_cap():
    """A page whose rows add up to more than 1 MB is rendered without the cell errors and output."""
    result = {"learner": "a", "assignment": "00_fixture", "status": "graded", "score": 0, "max_score": 1,
              "tests": [{"grade_id": "t", "summary": "s", "message": "'" * 5000, "passed": False}] * 1000,
              "cells": [{"ok": False, "label": "l", "error_type": "E", "message": "<" * 5000}] * 5000,
              "output": {"stdout": "&" * 100_000, "stderr": ""}, "notes": ["n" * 10**6] * 100}
    page = feedback.render(result)
    assert len(page.encode()) <= feedback.MAX_PAGE_BYTES
    assert "left out of this page" in page


def test_runner_reports_what_a_request_wrote_to_stderr(tmp_path):
    """The runner's stderr after setup is a memory file: a request's writes come back with its reply."""
    fd = os.memfd_create("stderr-test")
    server = learner_runner.Server({}, -1, -1, stderr_fd=fd)
    assert server.take_stderr() == ""
    os.write(fd, b"RuntimeWarning: divide by zero encountered in log\n" + b"x" * 5000)
    got = server.take_stderr()
    assert got.startswith("RuntimeWarning: divide by zero") and len(got) == learner_runner.MAX_STDERR
    assert server.take_stderr() == "", "the memory file is emptied after each request"
    os.close(fd)
