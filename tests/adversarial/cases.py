"""Adversarial submissions of the fixture assignment, each with the outcome the grader must give.

``CASES[name] = (build, expect)``: ``build()`` returns the submitted notebook (a dict, or raw text for
broken files); ``expect(result, ctx)`` asserts on the result JSON the grader wrote (``ctx`` holds
the paths of the run). The fixture has 8 points: double 1, clip_norm 2, mean_value 1,
scale_in_place 1, numerical_derivative 1, RunningMax 1 + 1.
"""

from __future__ import annotations

import copy
import json
import os

from grader_fixture import MAX_SCORE, SOURCE_NB, blank_nb, cell, solution_nb, with_cell

WRONG_DOUBLE = "def double(x):\n    return x\n"
LEAK_TOKENS = ("TG-HIDDEN-TOKEN-7f3a", "TG-HIDDEN-SHIPPED-9c1e")


def _score(result, grade_id):
    return next(t["score"] for t in result["tests"] if t["grade_id"] == grade_id)


def full_marks(result, ctx):
    assert result["score"] == MAX_SCORE == result["max_score"], result["tests"]


def loses_only(*grade_ids):
    def check(result, ctx):
        for t in result["tests"]:
            if t["grade_id"] in grade_ids:
                assert not t["passed"], f"{t['grade_id']} should fail: {t}"
            else:
                assert t["passed"], f"{t['grade_id']} should pass: {t}"
    return check


def both(*checks):
    def check(result, ctx):
        for c in checks:
            c(result, ctx)
    return check


def status_is(prefix):
    def check(result, ctx):
        assert result["status"].startswith(prefix), result["status"]
    return check


def zero(result, ctx):
    assert result["score"] == 0 and result["max_score"] == MAX_SCORE, result


# -- cheating ---------------------------------------------------------------------------------------

ALLCLOSE_PATCH = """
import numpy as np
np.allclose = lambda *args, **kwargs: True
np.array_equal = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
def double(x):
    return x
"""

ALWAYS_EQUAL_FLOAT = """
class Always(float):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = float.__hash__

class Anything:
    def __eq__(self, other):
        return True

def mean_value(xs):
    return Always(0.0)
"""

ANYTHING_EQUAL = """
class Anything:
    def __eq__(self, other):
        return True
    def __len__(self):
        return 4
def mean_value(xs):
    return Anything()
"""

INPUT_TRANSFORMER = """
def _neuter(lines):
    return [line.replace("assert ", "pass  # ") for line in lines]
get_ipython().input_transformers_cleanup.append(_neuter)
get_ipython().input_transformers_post.append(_neuter)
def double(x):
    return x
"""

AST_TRANSFORMER = """
import ast
class _NoAsserts(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.Pass()
    def visit_Module(self, node):
        self.generic_visit(node)
        handler = ast.ExceptHandler(type=ast.Name("BaseException", ast.Load()), name=None, body=[ast.Pass()])
        node.body = [ast.Try(body=node.body or [ast.Pass()], handlers=[handler], orelse=[], finalbody=[])]
        return ast.fix_missing_locations(node)
get_ipython().ast_transformers.append(_NoAsserts())
def double(x):
    return x
"""


def _reader(ctx_paths, source_nb=SOURCE_NB):
    return f"""
import json, os
found = {{}}
for path in {ctx_paths!r}:
    try:
        if os.path.isdir(path):
            found[path] = sorted(os.listdir(path))
        else:
            with open(path, "rb") as f:
                found[path] = f.read(200).decode("latin-1")
    except Exception as exc:
        found[path] = "DENIED " + type(exc).__name__
print("READ-ATTEMPT", json.dumps(found))
try:
    nb = json.load(open({str(source_nb)!r}))
    for c in nb["cells"]:
        if c.get("metadata", {{}}).get("nbgrader", {{}}).get("solution"):
            exec("".join(c["source"]).replace("### BEGIN SOLUTION", "").replace("### END SOLUTION", ""))
except Exception as exc:
    print("could not steal the solutions:", type(exc).__name__)
"""


def read_secrets_nb(ctx_paths, source_nb=SOURCE_NB):
    nb = blank_nb()
    cell(nb, "double")["source"] = _reader(ctx_paths, source_nb)
    return nb


def no_secrets_read(result, ctx):
    """Every probed path is unreadable from the sandbox, and the sentinels among them do exist on the host."""
    assert result["score"] == 0, "the stolen solutions earned points"
    out = result["output"]["stdout"]
    assert "READ-ATTEMPT" in out, out[:2000]
    found = json.loads(out.split("READ-ATTEMPT", 1)[1].strip().splitlines()[0])
    assert set(found) == set(ctx["read_paths"]), "the reader did not probe every path"
    for path, what in found.items():
        assert isinstance(what, str) and what.startswith("DENIED"), f"sandbox could read {path}: {what!r}"
    for path in ctx["sentinels"]:  # so the denials above are not just "it does not exist anyway"
        assert os.path.exists(path), f"sentinel {path} is missing on the host: the probe proves nothing"
        assert found[path].startswith("DENIED"), (path, found[path])


def _writer(ctx_paths):
    return f"""
import os
for path in {ctx_paths!r}:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("learner,assignment,score,max_score,status\\nmallory,00_fixture,1000,8,graded\\n")
        print("WROTE", path)
    except Exception as exc:
        print("DENIED", path, type(exc).__name__)
def double(x):
    return x
"""


def writes_nothing(result, ctx):
    """Every write target is denied inside the sandbox and every host file is unchanged afterwards."""
    out = result["output"]["stdout"]
    assert "WROTE" not in out, out[:2000]
    for path in ctx["write_targets"]:
        assert f"DENIED {path} " in out, f"no denial reported for {path}: {out[:2000]}"
    for path, before in ctx["snapshots"].items():
        assert path.read_bytes() == before, f"{path} was modified"
    assert all(row["learner"] != "mallory" for row in ctx["rows"]), "a forged row reached grades.csv"
    assert "mallory" not in (ctx["out"] / "grades.csv").read_text(), "a forged row reached grades.csv"
    assert SOURCE_NB.read_bytes() == ctx["source_bytes"], "the committed fixture notebook was modified"
    assert not list(ctx["out"].rglob("mallory*")), "a forged result file appeared"
    loses_only("double_values")(result, ctx)


# -- crashes and resource abuse ---------------------------------------------------------------------

OS_EXIT = "import os\nos._exit(3)\n"
EXIT_IN_CALL = "import os\ndef double(x):\n    os._exit(4)\n"
INFINITE_LOOP = """
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGXCPU, signal.SIG_IGN)
while True:
    pass
"""
MEMORY_BOMB = """
hog = []
while True:
    hog.append(bytearray(256 << 20))
"""
BIG_PRINT = 'print("x" * 20_000_000)\n'
NETWORK = """
import socket
for host, port in (("1.1.1.1", 80), ("127.0.0.1", 22), ("pypi.org", 443)):
    try:
        socket.create_connection((host, port), timeout=3).close()
        print("CONNECTED", host)
    except Exception as exc:
        print("BLOCKED", host, type(exc).__name__)
"""
LEGIT_STDERR = """
import sys
import warnings
from tqdm import tqdm
warnings.warn("a harmless warning from the learner's own cell")
for _ in tqdm(range(50)):
    pass
print("progress on stderr", file=sys.stderr)
"""
# The runner's own globals (IPython's ``__main__`` is the learner's namespace, not the runner): patch
# the ``_compile`` it compiles shipped test functions with, so as to capture their source.
SPY = """
import gc
import sys
captured = []
_runner = next(d for d in gc.get_objects() if type(d) is dict and "Server" in d and "_compile" in d)
_orig_compile = _runner["_compile"]
def _spy(source, *args, **kwargs):
    captured.append(source)
    sys.__stdout__.write(source)
    return _orig_compile(source, *args, **kwargs)
_runner["_compile"] = _spy
"""

LEAK = SPY + """
import os
import sys
_saved_stdout = os.dup(1)

class RunningMax:
    def __init__(self):
        self.best = None
    def update(self, value):
        text = "\\n".join(captured)
        os.write(_saved_stdout, text.encode())
        print(text)
        print(text, file=sys.stderr)
        with open("leak.txt", "w") as f:
            f.write(text)
        if captured:
            raise ValueError(text)
        return text
"""


LEAK_TYPE_NAME = SPY + """
def _named(name):
    cls = type(name, (Exception,), {})
    cls.__module__ = "builtins"  # and claim to be a builtin exception
    return cls

class _Loud:
    def __repr__(self):
        return "\\n".join(captured)
    __str__ = __repr__

class RunningMax:
    def __init__(self):
        self.best = None
    def update(self, value):
        if any("TG-" in c for c in captured):  # the shipped hidden test is running
            text = "\\n".join(captured)
            line = next((l.strip() for l in text.splitlines() if "TG-" in l), text)
            token = line.split("'")[1] if "'" in line else line
            raise _named(token)(_Loud())
        self.best = value if self.best is None else max(self.best, value)
        return self.best
"""


def _prepend(grade_id, extra):
    src = cell(solution_nb(), grade_id)["source"]
    src = "".join(src) if isinstance(src, list) else src
    return with_cell(grade_id, extra + "\n" + src)


def _duplicated():
    nb = solution_nb()
    dup = copy.deepcopy(cell(nb, "double"))
    dup["source"] = WRONG_DOUBLE
    dup["id"] = "double-copy"
    tests = [copy.deepcopy(c) for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    for i, t in enumerate(tests):
        t["id"] = f"dup-{i}"
        t["source"] = "pass"
    nb["cells"] += [dup] + tests
    return nb


def _deleted_tests():
    nb = solution_nb()
    nb["cells"] = [c for c in nb["cells"] if not c.get("metadata", {}).get("nbgrader", {}).get("grade")]
    return nb


def _renamed():
    nb = solution_nb()
    cell(nb, "double")["metadata"]["nbgrader"]["grade_id"] = "double_renamed"
    for c in nb["cells"]:  # and rename every test cell, with its points raised
        meta = c.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            meta["grade_id"] += "_x"
            meta["points"] = 100
    return nb


def _retyped():
    nb = solution_nb()
    cell(nb, "double")["cell_type"] = "markdown"
    cell(nb, "double").pop("outputs", None)
    cell(nb, "double").pop("execution_count", None)
    return nb


def _kernelspec():
    nb = solution_nb()
    nb["metadata"]["kernelspec"] = {"name": "bash", "display_name": "Bash", "language": "bash"}
    nb["metadata"]["language_info"] = {"name": "bash"}
    return nb


def _slow_tags():
    nb = solution_nb()
    for c in nb["cells"]:
        tags = c.setdefault("metadata", {}).setdefault("tags", [])
        if "slow" in tags:
            tags.remove("slow")
        elif c.get("cell_type") == "code":
            tags.append("slow")
    return nb


def feedback_has_no_leak(result, ctx):
    text = json.dumps(result)
    for token in LEAK_TOKENS:
        assert token not in text, f"{token} leaked into the result"


def spy_captured_shipped_code(result, ctx):
    """The attack really ran: the spy cell ran and the shipped test failed on what it raised."""
    assert all(c["ok"] for c in result["cells"]), result["cells"]
    test = next(t for t in result["tests"] if t["grade_id"] == "running_max_in_learner_process")
    assert not test["passed"] and "withheld" in test["message"], test


def type_name_withheld(grade_id):
    def check(result, ctx):
        from autograder.trusted import TYPE_WITHHELD

        test = next(t for t in result["tests"] if t["grade_id"] == grade_id)
        assert test["error_type"] == TYPE_WITHHELD, test
    return check


def small_output(result, ctx):
    assert len(result["output"]["stdout"]) < 200_000


def network_blocked(result, ctx):
    out = result["output"]["stdout"]
    assert "CONNECTED" not in out and out.count("BLOCKED") == 3, out[:2000]


def note_mentions(word):
    def check(result, ctx):
        assert any(word in n for n in result["notes"]), result["notes"]
    return check


def cell_timed_out(result, ctx):
    """The cell that ran past its limit says so in the grader's words (not what its re-run reported)."""
    timed = [c for c in result["cells"] if "timed out after" in (c.get("message") or "")]
    assert len(timed) == 1 and timed[0]["error_type"] == "TimeoutError" and not timed[0]["ok"], result["cells"]
    assert any("timed out after" in n for n in result["notes"]), result["notes"]


CASES = {
    "honest": (solution_nb, full_marks),
    "untouched_release": (blank_nb, zero),
    "allclose_patched": (lambda: with_cell("double", ALLCLOSE_PATCH), loses_only("double_values")),
    "always_equal_float": (lambda: with_cell("mean_value", ALWAYS_EQUAL_FLOAT), loses_only("mean_value_correct")),
    "anything_equal_object": (lambda: with_cell("mean_value", ANYTHING_EQUAL), loses_only("mean_value_correct")),
    "input_transformer": (lambda: with_cell("double", INPUT_TRANSFORMER), loses_only("double_values")),
    "ast_transformer": (lambda: with_cell("double", AST_TRANSFORMER), loses_only("double_values")),
    "read_solutions_and_gradebook": (None, no_secrets_read),  # built by the test (needs run paths)
    "write_gradebook_and_grades": (None, writes_nothing),
    "os_exit_in_cell": (lambda: with_cell("double", OS_EXIT),
                        both(loses_only("double_values"), status_is("kernel died (exit code 3)"))),
    "os_exit_in_call": (lambda: with_cell("double", EXIT_IN_CALL),
                        both(loses_only("double_values"), status_is("kernel died (exit code 4)"),
                             note_mentions("during the test 'double_values'"))),
    "infinite_loop_ignoring_sigint": (lambda: with_cell("mean_value", INFINITE_LOOP),
                                      both(loses_only("mean_value_correct"), status_is("timeout"), cell_timed_out)),
    "memory_bomb": (lambda: with_cell("scale_in_place", MEMORY_BOMB),
                    both(loses_only("scale_in_place_updates"), status_is("memory limit"))),
    "print_20MB_line": (lambda: _prepend("double", BIG_PRINT), both(full_marks, small_output)),
    "network_connection": (lambda: _prepend("double", NETWORK), both(full_marks, network_blocked)),
    "duplicated_cells": (_duplicated, both(full_marks, note_mentions("more than once"))),
    "deleted_test_cells": (_deleted_tests, full_marks),
    "renamed_cells": (_renamed, both(loses_only("double_values"), note_mentions("not found"))),
    "cell_type_changed": (_retyped, both(loses_only("double_values"), note_mentions("no longer a code cell"))),
    "kernelspec_changed": (_kernelspec, full_marks),
    "slow_tags_tampered": (_slow_tags, full_marks),
    "malformed_json": (lambda: '{"cells": [', both(zero, status_is("invalid notebook (malformed JSON)"))),
    "empty_file": (lambda: "", both(zero, status_is("invalid notebook (empty file)"))),
    "legit_stderr_warnings_tqdm": (lambda: _prepend("double", LEGIT_STDERR), full_marks),
    "leak_hidden_tests": (lambda: with_cell("RunningMax", LEAK), both(feedback_has_no_leak, spy_captured_shipped_code)),
    "leak_through_exception_type_name": (lambda: with_cell("RunningMax", LEAK_TYPE_NAME),
                                         both(feedback_has_no_leak, spy_captured_shipped_code,
                                              loses_only("running_max_in_learner_process"),
                                              type_name_withheld("running_max_in_learner_process"))),
}


# -- forged frames on the runner's response pipe, and output on stderr during a test -----------------
# A learner cell can write frames of its own on the pipe the runner answers the grader on (its number
# is the runner's argv[2]): a forged ``ready`` with a million cell results, a forged error reply with
# megabytes of text, a frame that announces the 512 MiB cap. What comes out stays under the caps.

FORGE = """
import json, struct, sys, os
def _forge(message=None, announce=None):
    body = b"" if message is None else json.dumps(message).encode()
    os.write(int(sys.argv[2]), struct.pack(">I", len(body) if announce is None else announce) + body)
"""
FORGED_READY_FLOOD = FORGE + '_forge({"op": "ready", "cells": [{}] * 1_000_000})  # 3 MB\n'
FORGED_READY_UNDER_CAP = FORGE + '_forge({"op": "ready", "cells": [{"ok": False, "error": {}}] * 5000})\n'
FORGED_FRAME_AT_CAP = FORGE + "_forge(announce=512 * 1024 * 1024)\nimport time\ntime.sleep(30)\n"
FORGED_HUGE_ERROR_REPLY = FORGE + """
def mean_value(xs):
    _forge({"ok": False, "error": {"type": "E" * 1_000_000, "message": "\\u2603" * 2_000_000, "builtin": True}})
    return float(sum(xs)) / len(xs)
"""
FORGED_FRAME_AT_CAP_IN_CALL = FORGE + """
import numpy as np
def clip_norm(g, max_norm):
    _forge(announce=512 * 1024 * 1024)
    import time
    time.sleep(30)
"""
STDERR_PRINT_IN_CALL = """
import sys
import numpy as np
def double(x):
    print("debugging double", file=sys.stderr)
    return 2 * np.asarray(x, dtype=float)
"""
NUMPY_WARNING_IN_CALL = """
import numpy as np
def mean_value(xs):
    np.log(np.zeros(1))  # RuntimeWarning: divide by zero, on stderr
    return float(sum(xs)) / len(xs)
"""
RESULT_CAP = 1 << 20
PAGE_CAP = 1 << 20


def bounded(result, ctx):
    """The result JSON and the feedback page stay under 1 MB; no more cell entries than the plan ran."""
    learner = result["learner"]
    size = (ctx["out"] / "results" / learner / "00_fixture.json").stat().st_size
    assert size < RESULT_CAP, f"result of {size} bytes"
    page = ctx["out"] / "feedback" / learner / "00_fixture" / "00_fixture.html"
    assert page.stat().st_size < PAGE_CAP, f"feedback page of {page.stat().st_size} bytes"
    from autograder import notebooks
    from autograder.trusted import build_plan

    assert len(result["cells"]) <= len(build_plan(notebooks.read(SOURCE_NB), None).setup)
    for entry in result["cells"] + result["tests"]:
        assert len(entry.get("message") or "") <= 510 and len(entry.get("error_type") or "") <= 110, entry


def fails(grade_id):
    """``grade_id`` fails (the tests after it may too: a forged reply puts the learner's answers out of step)."""
    def check(result, ctx):
        assert not next(t for t in result["tests"] if t["grade_id"] == grade_id)["passed"]
    return check


def stderr_fails(grade_id):
    def check(result, ctx):
        test = next(t for t in result["tests"] if t["grade_id"] == grade_id)
        assert not test["passed"] and "wrote to stderr" in test["message"] and "nbgrader scores that 0" in \
            test["message"], test
    return check


CASES.update({
    "forged_ready_flood": (lambda: _prepend("double", FORGED_READY_FLOOD),
                           both(bounded, loses_only("double_values"), note_mentions("protocol error"))),
    "forged_ready_under_cap": (lambda: _prepend("double", FORGED_READY_UNDER_CAP), bounded),
    "forged_frame_at_cap": (lambda: _prepend("double", FORGED_FRAME_AT_CAP),
                            both(bounded, loses_only("double_values"), note_mentions("protocol error"))),
    "forged_huge_error_reply": (lambda: with_cell("mean_value", FORGED_HUGE_ERROR_REPLY),
                                both(bounded, fails("mean_value_correct"))),
    "forged_frame_at_cap_in_call": (lambda: with_cell("clip_norm", FORGED_FRAME_AT_CAP_IN_CALL),
                                    both(bounded, loses_only("clip_norm_rescales"),
                                         status_is("protocol error"))),
    "stderr_print_in_call": (lambda: with_cell("double", STDERR_PRINT_IN_CALL),
                             both(loses_only("double_values"), stderr_fails("double_values"))),
    "numpy_warning_in_call": (lambda: with_cell("mean_value", NUMPY_WARNING_IN_CALL),
                              both(loses_only("mean_value_correct"), stderr_fails("mean_value_correct"))),
})
