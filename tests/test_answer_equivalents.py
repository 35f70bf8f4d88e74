"""No answer under another name (issue 15, point 5, the gradlab side).

Every public gradlab function that computes a notebook-03 exercise's answer is either left out of 03's
sandbox or listed in ``gradlab.grading.ANSWER_EQUIVALENTS`` (then hidden with its module, unless the
notebook's own cells need that module, where ``gradlab.grading.delegates_to`` detects a delegation).
"""

import importlib
import inspect
import pkgutil
import warnings

import gradlab
import numpy as np
import pytest
from gradlab.grading import ANSWER_EQUIVALENTS, delegates_to

from autograder import notebooks
from autograder.paths import SOLUTIONS
from autograder.sandbox import answer_modules, kept_equivalents, needed_modules
from autograder.trusted import build_plan

A03 = "03_clipping_by_hand"


def _source(assignment):
    return notebooks.read(SOLUTIONS / assignment / f"{assignment}.ipynb")


def _solutions(nb):
    ns = {}
    exec("import numpy as np", ns)
    for c in nb["cells"]:
        if notebooks.is_solution(c):
            exec("".join(c["source"]) if isinstance(c["source"], list) else c["source"], ns)
    return ns


def _same(a, b):
    try:
        if isinstance(a, (list, tuple)):
            return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(_same, a, b))
        return np.shape(a) == np.shape(b) and np.allclose(np.asarray(a, float), np.asarray(b, float))
    except (TypeError, ValueError):
        return False


def _copy(args):
    return [[g.copy() for g in a] if isinstance(a, list) else (a.copy() if isinstance(a, np.ndarray) else a)
            for a in args]


@pytest.mark.timeout(300)
def test_every_gradlab_function_answering_03_is_hidden_or_declared(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # some helpers write files (a TensorBoard log folder named by an argument)
    nb = _source(A03)
    ns = _solutions(nb)
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(3, 2)) * 5, rng.normal(size=4) * 5]
    cases = {"clip_by_value": (grads, 1.0), "clip_by_norm": (grads[0], 1.0), "global_norm": (grads,),
             "clip_by_global_norm": (grads, 1.0)}
    plan = build_plan(nb, nb)
    hidden = {"gradlab." + ".".join(p.with_suffix("").parts) for p in answer_modules(plan.exercises, keep=plan.needed)}
    assert set(cases) <= plan.exercises
    found, undeclared = set(), []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for info in pkgutil.walk_packages(gradlab.__path__, "gradlab."):
            if info.name in hidden:
                continue
            module = importlib.import_module(info.name)
            for attr, func in vars(module).items():
                if not inspect.isfunction(func) or func.__module__ != info.name:
                    continue
                for exercise, args in cases.items():
                    want = ns[exercise](*_copy(args))
                    try:
                        got = func(*_copy(args))
                    except Exception:  # noqa: BLE001 - a function that cannot take these inputs answers nothing
                        continue
                    if _same(want, got):
                        found.add(f"{info.name}.{attr}")
                        if f"{info.name}.{attr}" not in ANSWER_EQUIVALENTS.get(exercise, ()):
                            undeclared.append((exercise, f"{info.name}.{attr}"))
    assert not undeclared, f"gradlab answers 03 under another name, not in ANSWER_EQUIVALENTS: {undeclared}"
    assert "gradlab.training.grad_norm" in found, "the search must find the known equivalent, or it proves nothing"


def test_03_sandbox_hides_the_equivalents_it_can_and_names_the_rest():
    nb = _source(A03)
    plan = build_plan(nb, nb)
    assert "training.py" in {str(p) for p in plan.needed}, "03's setup cell imports gradlab.training"
    hidden = {str(p) for p in answer_modules(plan.exercises, keep=plan.needed)}
    assert {"clipping.py", "tf_models.py"} <= hidden and "training.py" not in hidden
    assert kept_equivalents(plan.exercises, plan.needed) == ["gradlab.training.grad_norm"]
    assert {str(p) for p in needed_modules(["from gradlab.explorers import base"])} >= {"explorers/base.py"}


def test_delegates_to_catches_aliases_captured_references_and_lookups():
    from gradlab import training

    names = ANSWER_EQUIVALENTS["global_norm"]
    grads = [np.ones(3), np.full(2, 2.0)]
    captured = training.grad_norm

    def honest(gs):
        return float(np.sqrt(sum(float((g ** 2).sum()) for g in gs)))

    def wrapper(gs):
        try:
            return captured(gs)
        except Exception:  # a learner hiding the tripwire's exception still delegated
            return 0.0

    def lookup(gs):
        return importlib.import_module("gradlab.training").grad_norm(gs)

    assert delegates_to(honest, lambda: honest(grads), names) == []
    assert "gradlab.training.grad_norm" in delegates_to(wrapper, lambda: wrapper(grads), names)
    assert "gradlab.training.grad_norm" in delegates_to(lookup, lambda: lookup(grads), names)
    assert delegates_to(captured, lambda: captured(grads), names) == ["gradlab.training.grad_norm"]
    assert training.grad_norm(grads) == pytest.approx(np.sqrt(11.0)), "the original code must be back after the check"
