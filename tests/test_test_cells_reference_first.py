"""Every test cell in solutions/ computes its expected values before learner code can touch them.

Issue 15, point 4 (docs/AUTHORING.md, "References first"). The rule, checked statically (ast) over
each test cell's statements in source order (the bodies of for/while/if/with/try flattened in order):

* a *learner call* is a call, by name, of one of the assignment's exercises whose calls the class
  grader writes back (``autograder.write_back.in_place_exercises``: declared in place), or a call of
  a cell-local helper that is handed such an exercise (``check(keras_clipnorm, grads, ...)``); calls of
  ``@in_learner_process`` functions are not (they build their own objects in the learner's process);
* a name handed to a learner call is *tainted* from then on (in nbgrader, or in JupyterLab, the
  learner's code holds the very object and may overwrite it); a direct call of an exercise taints its
  arguments within its own statement too (``allclose(f(x), 2 * x)`` reads ``x`` after the call); a
  name bound by a statement that reads a tainted name is tainted; rebinding from clean values cleans it;
* names bound by a statement holding a learner call are *results*;
* a statement may read a tainted name (outside a learner call's own arguments) only together with
  values computed before (literals, clean names): reading it with a result or another tainted name in
  the same statement, e.g. ``assert np.allclose(out, 2 * x)`` or ``np.allclose(f(g), g)``, breaks the
  rule. Take a private copy first (``g0 = g.copy()``) and compare with that.

The arguments of every other learner call are private copies by construction: the grader sends
copies over the wire and writes nothing back (tests/test_grader_write_back.py), so a reference built
from them after the call is still the test's own value.
"""

import ast
import json

from autograder import notebooks
from autograder.paths import SOLUTIONS, assignments
from autograder.write_back import in_place_exercises

COMPOUND = (ast.For, ast.AsyncFor, ast.While, ast.If, ast.With, ast.AsyncWith, ast.Try)


def _flat(body):
    for stmt in body:
        if isinstance(stmt, COMPOUND):
            if isinstance(stmt, (ast.For, ast.AsyncFor)):
                loop = ast.Assign(targets=[stmt.target], value=stmt.iter, lineno=stmt.lineno)
                if isinstance(stmt.iter, ast.Call) and getattr(stmt.iter.func, "id", None) != "zip":
                    loop.value = ast.Call(func=ast.Name("zip", ast.Load()), args=[stmt.iter], keywords=[]) \
                        if not isinstance(stmt.target, ast.Tuple) else stmt.iter
                loop.tg_loop = True
                yield loop
                yield from _flat(stmt.body)
                yield from _flat(stmt.orelse)
                continue
            head = [getattr(stmt, f) for f in ("test",) if getattr(stmt, f, None) is not None]
            head += [item.context_expr for item in getattr(stmt, "items", [])]
            head += [item.optional_vars for item in getattr(stmt, "items", []) if item.optional_vars is not None]
            if head:
                yield ast.Module(body=[ast.Expr(h) for h in head], type_ignores=[])
            yield from _flat(stmt.body)
            for part in ("orelse", "finalbody"):
                yield from _flat(getattr(stmt, part, []))
            for handler in getattr(stmt, "handlers", []):
                yield from _flat(handler.body)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue  # helpers run when called: their calls are checked where they are called
        else:
            yield stmt


def _shipped(tree):
    return {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and any((d.attr if isinstance(d, ast.Attribute) else getattr(d, "id", None)) == "in_learner_process"
                    for d in n.decorator_list)}


def _handed(arg):
    """Names whose objects an argument expression hands over (not names only used to compute a new value)."""
    if isinstance(arg, ast.Name):
        return {arg.id}
    if isinstance(arg, (ast.Subscript, ast.Attribute, ast.Starred)):
        return _handed(arg.value)
    if isinstance(arg, (ast.List, ast.Tuple, ast.Set)):
        return set().union(*map(_handed, arg.elts)) if arg.elts else set()
    if isinstance(arg, ast.Dict):
        return set().union(*map(_handed, arg.values)) if arg.values else set()
    if isinstance(arg, ast.IfExp):
        return _handed(arg.body) | _handed(arg.orelse)
    return set()  # a call, an operation, a literal, a comprehension: a new object


def _names(node, ctx=ast.Load):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ctx)}


CHECKS = {"allclose", "isclose", "array_equal", "equal", "assert_close", "assert_allclose", "assert_array_equal",
          "assert_array_almost_equal", "assert_equal", "assertEqual", "assertAllClose"}
IMMUTABLE_CALLS = {"int", "float", "bool", "str", "complex", "len", "round", "abs"}


def _immutable(value):
    """Whether an assigned value is an immutable scalar (a literal, int(...), a comparison): handing it
    to a function cannot let that function change it."""
    if isinstance(value, ast.Constant):
        return True
    if isinstance(value, (ast.Compare, ast.BoolOp)):
        return True
    if isinstance(value, ast.UnaryOp):
        return _immutable(value.operand)
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in IMMUTABLE_CALLS


def _literal(value):
    """A list/tuple display of immutable scalars (``cases = [(2.0, torch.float32), ...]``)."""
    if isinstance(value, (ast.List, ast.Tuple)):
        return all(_literal(e) for e in value.elts)
    return _immutable(value) or isinstance(value, ast.Attribute)


def _learner_calls(node, exercises, shipped):
    """(direct, helper): the learner calls in ``node`` (see the module docstring)."""
    direct, helper = [], []
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id not in shipped:
            args = [*call.args, *(k.value for k in call.keywords)]
            if call.func.id in exercises:
                direct.append(set().union(*map(_handed, args)) if args else set())
            elif any(_names(a) & exercises for a in args):
                helper.append(set().union(*map(_handed, args)) - exercises if args else set())
    return direct, helper


def _sides(node):
    """The operands of each comparison in ``node``: a Compare's, or a check function's first two arguments."""
    for n in ast.walk(node):
        if isinstance(n, ast.Compare):
            yield [n.left, *n.comparators]
        elif isinstance(n, ast.Call) and len(n.args) >= 2:
            name = n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", None)
            if name in CHECKS:
                yield n.args[:2]


def _bindings(stmt):
    """(target names, value) pairs a statement binds, element by element where a tuple unpacks a tuple or zip."""
    if isinstance(stmt, ast.Assign):
        pairs = [(t, stmt.value) for t in stmt.targets]
    elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)) and stmt.value is not None:
        pairs = [(stmt.target, stmt.value if isinstance(stmt, ast.AnnAssign) else
                  ast.BinOp(stmt.target, ast.Add(), stmt.value))]
    else:
        return [(name, stmt) for name in _names(stmt, ast.Store)]
    out = []
    for target, value in pairs:
        elts = None
        if isinstance(value, ast.Tuple):
            elts = value.elts
        elif isinstance(value, ast.Call) and getattr(value.func, "id", None) == "zip":
            elts = value.args
        if isinstance(target, ast.Tuple) and elts is not None and len(elts) == len(target.elts):
            for t, v in zip(target.elts, elts, strict=True):
                out += [(name, v) for name in _names(t, ast.Store)]
        else:
            out += [(name, value) for name in _names(target, ast.Store)]
    return out


def violations(source, exercises):
    """Comparisons in a test cell that set a value learner code was handed against a result or another such value."""
    tree = ast.parse(source)
    shipped = _shipped(tree)
    tainted, results, immutable, literals, found = set(), set(), set(), set(), []
    for stmt in _flat(tree.body):
        if getattr(stmt, "tg_loop", False) and (
                _names(stmt.value) - {"enumerate", "range", "zip", *IMMUTABLE_CALLS} <= literals):
            immutable |= _names(stmt, ast.Store)  # the items of a literal table of scalars
            continue
        direct, helper = _learner_calls(stmt, exercises, shipped)
        handed = (set().union(*direct, *helper) if (direct or helper) else set()) - immutable
        during = tainted | (set().union(*direct) - immutable if direct else set())
        for sides in _sides(stmt):
            marks = []
            for side in sides:
                d, h = _learner_calls(side, exercises, shipped)
                reads = _names(side) - exercises
                marks.append((bool(reads & during), bool(d or h or reads & results)))
            if any(t for t, _ in marks) and sum(t or r for t, r in marks) > 1:
                found.append((getattr(stmt, "lineno", 0), ast.unparse(stmt)[:160]))
                break
        for name, value in _bindings(stmt):
            reads = _names(value) if isinstance(value, ast.AST) else set()
            immutable.discard(name)
            tainted.discard(name)
            results.discard(name)
            if direct or helper:
                results.add(name)
            elif reads & (tainted | results):
                tainted.add(name)
            elif isinstance(value, ast.AST) and (_immutable(value) or (
                    isinstance(value, ast.Subscript) and _names(value.value) <= literals)):
                immutable.add(name)  # a scalar, or an item of a literal table of scalars
            literals.discard(name)
            if isinstance(value, (ast.List, ast.Tuple)) and _literal(value):
                literals.add(name)
        tainted |= handed - _names(stmt, ast.Store)
    return found


def all_violations():
    out = {}
    for assignment in assignments():
        nb = notebooks.read(SOLUTIONS / assignment / f"{assignment}.ipynb")
        exercises = set(in_place_exercises(nb))
        for c in nb["cells"]:
            if notebooks.is_test(c):
                src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                try:
                    found = violations(src, exercises)
                except SyntaxError:
                    found = [(0, "not plain Python")]
                if found:
                    out[f"{assignment}:{notebooks.grade_id(c)}"] = found
    return out


def test_the_rule_catches_a_late_reference_and_accepts_a_private_copy():
    ex = {"double", "scale"}
    assert violations("x = np.ones(2)\nout = double(x)\nassert np.allclose(out, 2 * x)", ex)
    assert violations("g = np.ones(2)\nassert np.allclose(double(g), g)", ex)
    assert violations("x = np.ones(2)\nout = double(x)\nexpected = 2 * x\nassert np.allclose(out, expected)", ex)
    assert violations("def check(f, a):\n    pass\nx = [1]\ncheck(double, x)\nref = x[0]\nassert ref == y", ex) == []
    assert not violations("x = np.ones(2)\nexpected = 2 * x\nout = double(x)\nassert np.allclose(out, expected)", ex)
    assert not violations("a = [np.ones(2)]\nfirst = a[0]\nscale(a, 3)\nassert np.allclose(a[0], 3.0)\n"
                          "assert a[0] is first", ex)
    assert not violations("g = np.ones(2)\ng0 = g.copy()\nassert np.allclose(double(g), 2 * g0)", ex)
    loop = ("lr = 0.1\nstart = [p.copy() for p in ps]\ng0 = [g.copy() for g in gs]\nscale(ps, gs, lr, n)\n"
            "for p, s, g in zip(ps, start, {}):\n    assert np.allclose(p, s - lr * g)\n")
    assert violations(loop.format("gs"), ex), "the update's reference reads the gradients after the call"
    assert not violations(loop.format("g0"), ex)
    table = "cases = [(1.0, 2), (3.0, 4)]\nfor lr, n in cases:\n    out = double(lr)\n    assert out == 2 * lr\n"
    assert not violations(table, ex), "scalars from a literal table cannot be changed by the call"
    assert violations("x = [np.ones(2)]\nfor a in x:\n    double(x)\n    assert np.allclose(double(a), a)", ex)


def test_every_test_cell_computes_its_expected_values_first():
    found = all_violations()
    assert not found, "test cells that read a value learner code was handed, after the call, together " \
                      "with a result (take a private copy before the call):\n" + json.dumps(found, indent=1)
