"""Reading a notebook's cells: their source as text, the released stub of a solution cell, marked blocks.

Moved out of ``autograder/trusted.py`` (one module per job); ``trusted`` re-exports every name."""

from __future__ import annotations

import ast

STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


class SubmissionProblem(Exception):
    """The submission cannot be graded at all (not JSON, not a notebook, empty ...)."""


def cell_source(cell):
    src = cell.get("source", "")
    if isinstance(src, list):
        if not all(isinstance(s, str) for s in src):
            raise SubmissionProblem("a cell's source is not text")
        return "".join(src)
    if not isinstance(src, str):
        raise SubmissionProblem("a cell's source is not text")
    return src


def released_stub(source):
    """What nbgrader's release leaves of a solution cell: the solution block replaced by the stub."""
    if "### BEGIN SOLUTION" not in source:
        return STUB
    out, inside = [], False
    for line in source.splitlines():
        if "### BEGIN SOLUTION" in line:
            indent = line[: len(line) - len(line.lstrip())]
            out += [indent + s for s in STUB.splitlines()]
            inside = True
        elif "### END SOLUTION" in line:
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def _norm(text):
    return " ".join(text.split())


def _blocks(source, begin, end):
    """(inside, outside): the lines between the markers, and the others (markers dropped)."""
    inside, outside, on = [], [], False
    for line in source.splitlines():
        if begin in line:
            on = True
        elif end in line:
            on = False
        else:
            (inside if on else outside).append(line)
    return "\n".join(inside), "\n".join(outside)


def _unparsed(source):
    try:
        return ast.unparse(ast.parse(source))
    except SyntaxError:
        return ""
