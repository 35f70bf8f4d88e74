"""Every public function and class of gradlab says what it takes and which notebook introduces it (issue 17.3).

d2l's habit: each helper's docstring says where it is defined ("Defined in notebook 03"); cs231n's: it gives
the shapes of its arrays ("x: (N, T, D)"). This test checks the first for every public function and class of
every gradlab module (modules that cannot be imported here, e.g. without TensorFlow, and module files git does
not track yet are skipped, by name),
and that a docstring which speaks of arrays gives at least one shape.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import subprocess
from pathlib import Path

import gradlab
import pytest

NOTEBOOK = re.compile(r"\bnotebooks? \d\d\b")
_DIM = r"(?:\.\.\.|[A-Za-z0-9_][A-Za-z0-9_ *+/\-]*)"
SHAPE = re.compile(rf"\({_DIM}(?:, ?{_DIM})+\)|\({_DIM},\)|\bshapes?\b")
ARRAY_WORDS = re.compile(r"\barrays?\b|\bmatri(?:x|ces)\b", re.IGNORECASE)


def _module_names():
    names = ["gradlab"]
    for info in pkgutil.walk_packages(gradlab.__path__, prefix="gradlab."):
        names.append(info.name)
    return sorted(names)


MODULES = _module_names()


def _being_written(module):
    """True for a module file that git does not track yet (work in progress; covered once committed)."""
    path = Path(module.__file__)
    try:
        proc = subprocess.run(["git", "ls-files", "--error-unmatch", path.name], cwd=path.parent,
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode != 0 and "not a git repository" not in proc.stderr


def _public_members(module):
    """(name, object) of the functions and classes the module defines (not imports) and does not hide."""
    exported = getattr(module, "__all__", None)
    for name, obj in vars(module).items():
        if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        if getattr(obj, "__module__", None) != module.__name__:
            continue
        if exported is not None and name not in exported:
            continue
        yield name, obj


def test_every_module_is_found():
    assert {"gradlab.rnn", "gradlab.training", "gradlab.clipping", "gradlab.explorers.base"} <= set(MODULES)


@pytest.mark.parametrize("module_name", MODULES)
def test_public_functions_and_classes_say_where_they_are_defined(module_name):
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # e.g. tf_models without TensorFlow
        pytest.skip(f"{module_name} cannot be imported here: {exc}")
    if _being_written(module):
        pytest.skip(f"{module_name} is not committed yet")
    missing, no_shape = [], []
    for name, obj in _public_members(module):
        doc = inspect.getdoc(obj) or ""
        if not NOTEBOOK.search(doc):
            missing.append(name)
        elif ARRAY_WORDS.search(doc) and not SHAPE.search(doc):
            no_shape.append(name)
    assert not missing, (f"{module_name}: these have no docstring naming the notebook that introduces them "
                         f"('Defined in notebook NN'): {missing}")
    assert not no_shape, f"{module_name}: these speak of arrays but give no shape ('x: (N, T, D)'): {no_shape}"


def test_the_checks_reject_what_they_should():
    assert NOTEBOOK.search("Defined in notebook 03.") and not NOTEBOOK.search("Defined in the notebook.")
    assert SHAPE.search("x: (N, T, D)") and SHAPE.search("b: (H,)") and SHAPE.search("(..., N, H)")
    assert SHAPE.search("an int array (num_steps, batch_size)") and not SHAPE.search("a list of arrays (the grads)")
