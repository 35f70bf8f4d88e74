"""gradlab never holds the answer to an exercise of the notebook that uses it (DESIGN.md).

For every notebook, the gradlab modules it imports, directly or through other gradlab modules, must
not define a public function or class named like one of that notebook's exercises.
"""

import ast
import importlib
import inspect
import json
import subprocess
import sys

import pytest

from autograder import notebooks
from autograder.paths import ROOT, assignments, notebook_path

ASSIGNMENTS = assignments()


def _gradlab_imports(nb):
    """Names of the gradlab modules that a notebook's code cells import."""
    modules = set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        try:
            tree = ast.parse("\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!"))))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gradlab":
                if node.module == "gradlab":
                    modules.update(f"gradlab.{alias.name}" for alias in node.names)
                else:
                    modules.add(node.module)
            elif isinstance(node, ast.Import):
                modules.update(a.name for a in node.names if a.name.split(".")[0] == "gradlab")
    return modules


def _closure(module_names):
    """The gradlab modules reached from ``module_names`` (their own gradlab imports included)."""
    script = (
        "import importlib, json, sys\n"
        f"for name in {sorted(module_names)!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('gradlab.'))))\n"
    )
    # a fresh interpreter, so that modules imported by other tests do not count
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebook_cannot_import_its_own_answers(assignment):
    """No gradlab module a notebook imports defines a function or class named like one of its exercises."""
    nb = notebooks.read(notebook_path(assignment))
    exercises = {notebooks.grade_id(c) for c in nb["cells"] if notebooks.is_solution(c)}
    offenders = []
    for name in _closure(_gradlab_imports(nb) | {"gradlab.grading"}):
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if attr in exercises and (inspect.isfunction(obj) or inspect.isclass(obj)):
                offenders.append(f"{name}.{attr}")
    assert not offenders, f"{assignment} can import answers to its own exercises: {offenders}"
