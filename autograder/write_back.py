"""Copying a learner function's in-place changes back into a test's own arguments.

Only calls of an exercise whose contract is "in place" are written back (``in_place_exercises``:
declared in gradlab.grading, ``IN_PLACE_EXERCISES`` or ``@in_place`` on the function in its solution
cell of solutions/). Every other call leaves the test's variables exactly as they were, so a function
that overwrites its inputs with its own output cannot make a reference built after the call agree.

Even for an in-place exercise a value is only overwritten in place, never replaced: an array keeps its
type, shape and dtype, a list its length, a dict its keys, a tuple its length; whatever does not fit is
left as it was (so the test sees the input unchanged and fails on its own terms).
"""

from __future__ import annotations

import ast
import sys

from . import notebooks, wire

DECORATOR = "in_place"


def _cell_source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def declared_in_cell(source):
    """Names of the functions a solution cell's source decorates with ``in_place`` (or ``grading.in_place``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for dec in node.decorator_list:
                name = dec.attr if isinstance(dec, ast.Attribute) else getattr(dec, "id", None)
                if name == DECORATOR:
                    found.add(node.name)
    return found


def in_place_exercises(source_nb):
    """The exercises of ``source_nb`` (a solutions/ notebook) whose contract is to update their arguments."""
    from gradlab.grading import IN_PLACE_EXERCISES

    exercises, declared = set(), set()
    for cell in (source_nb or {}).get("cells", []):
        if notebooks.is_solution(cell) and notebooks.grade_id(cell):
            exercises.add(notebooks.grade_id(cell))
            declared |= declared_in_cell(_cell_source(cell))
    return frozenset(exercises & (set(IN_PLACE_EXERCISES) | declared))


def write_back(args, kwargs, back_args, back_kwargs):
    """Update ``args``/``kwargs`` (the trusted objects) in place from their copies as the call left them."""
    if type(back_args) is list and len(back_args) == len(args):
        for a, b in zip(args, back_args, strict=True):
            sync(a, b)
    if type(back_kwargs) is dict and set(back_kwargs) == set(kwargs or {}):
        for key, a in (kwargs or {}).items():
            sync(a, back_kwargs[key])


def sync(orig, new, depth=0):
    """Overwrite ``orig``'s contents with ``new``'s where both have the same kind (see ``same_kind``)."""
    if depth > wire.MAX_DEPTH or not same_kind(orig, new):
        return
    np, torch, tf = (sys.modules.get(m) for m in ("numpy", "torch", "tensorflow"))
    if np is not None and type(orig) is np.ndarray:
        if orig.flags.writeable:
            np.copyto(orig, new)
    elif torch is not None and isinstance(orig, torch.Tensor):
        with torch.no_grad():
            orig.data.copy_(new.data) if orig.is_leaf else orig.copy_(new)
        if orig.is_leaf:
            g = new.grad
            if g is None:
                orig.grad = None
            elif g.shape == orig.shape and g.dtype == orig.dtype:
                if orig.grad is not None and orig.grad.shape == g.shape and orig.grad.dtype == g.dtype:
                    orig.grad.copy_(g)
                else:
                    orig.grad = g.clone()
    elif tf is not None and isinstance(orig, tf.Variable):
        orig.assign(new)
    elif type(orig) in (list, tuple):
        for a, b in zip(orig, new, strict=True):
            sync(a, b, depth + 1)
    elif type(orig) is dict:
        for key, a in orig.items():
            sync(a, new[key], depth + 1)


def same_kind(a, b):
    """Whether ``b`` can be written into ``a`` without changing its type, shape, dtype, length or keys."""
    np, torch, tf = (sys.modules.get(m) for m in ("numpy", "torch", "tensorflow"))
    if np is not None and type(a) is np.ndarray:
        return type(b) is np.ndarray and a.shape == b.shape and a.dtype == b.dtype
    if torch is not None and isinstance(a, torch.Tensor):
        return type(b) is type(a) and a.shape == b.shape and a.dtype == b.dtype
    if tf is not None and isinstance(a, tf.Variable):
        return isinstance(b, tf.Variable) and a.shape == b.shape and a.dtype == b.dtype
    if type(a) in (list, tuple):
        return type(b) is type(a) and len(a) == len(b)
    if type(a) is dict:
        return type(b) is dict and set(a) == set(b)
    return False
