"""What test cells need so that the course's autograder can check learner code from outside.

Under ``nbgrader validate`` or in JupyterLab, a test cell runs in the learner's kernel like any cell.
Under the course's class grader (``python -m autograder grade``) the same test cell runs in the
grader's own, trusted process: the learner's functions become proxies that call into the sandboxed
learner process, and only plain values (numbers, strings, NumPy arrays, torch and TensorFlow tensors,
and lists, tuples and dicts of them) travel back. So a grade never depends on anything the learner's
code can reach.

Some checks must build objects in the learner's process (a torch model and optimizer handed to a
training step the learner repaired). Write them as a function decorated with ``in_learner_process``:
it runs where the learner's code runs, takes the learner's functions as arguments, and returns plain
values that the test cell then compares, in the trusted process, with a reference it computes itself.
Such a function must be self-contained: it imports what it uses and reads no variable of the cell.
"""

from __future__ import annotations

import functools

# Set by the autograder in its trusted process; None everywhere else.
_remote_runner = None


def in_learner_process(func):
    """Run ``func`` in the learner's process when grading; call it directly everywhere else.

    Used by the hidden tests from notebook 01 on.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if _remote_runner is None:
            return func(*args, **kwargs)
        return _remote_runner(func, args, kwargs)

    wrapper.__tg_shipped__ = func
    return wrapper


#: Exercises whose contract is to update their arguments in place (by grade id). Only calls of these are
#: copied back into a test's own variables by the class grader (autograder/write_back.py); any other
#: learner function gets copies, so its changes to its inputs never reach the test.
IN_PLACE_EXERCISES = frozenset({
    "guarded_sgd_step",  # 04: p -= lr * g on the caller's arrays
    "manual_clip_grad_norm_",  # 05: scales each parameter's .grad in place
    "manual_clip_grad_value_",  # 05: clamps each parameter's .grad in place
})


def in_place(func):
    """Declare, in a solution cell, that the exercise ``func`` updates its arguments in place.

    Changes nothing at run time; the class grader reads the decoration from solutions/ (never from a
    submission) and copies such a function's in-place changes back into the test's arguments.
    Used by the hidden tests from notebook 01 on.
    """
    func.__tg_in_place__ = True
    return func


#: gradlab functions that compute an exercise's answer under another name ("module.function"), by
#: exercise (grade id). The class grader leaves their modules out of that assignment's sandbox, unless
#: the notebook's own cells need the module; then the function is still reachable and the exercise's
#: hidden tests must detect the delegation (``delegates_to``). tests/test_answer_equivalents.py tries
#: every public gradlab function on every exercise's sample inputs, and fails on one that answers an
#: exercise without being listed here.
ANSWER_EQUIVALENTS = {
    "global_norm": ("gradlab.training.grad_norm", "gradlab.tf_models.float64_global_norm",
                    "gradlab.clipping._overflow_safe_norm"),
    # 07: chunk by chunk, full BPTT (notebook 01's) is the truncated gradient; 07's cells need gradlab.rnn
    "rnn_backward_truncated": ("gradlab.rnn.rnn_backward",),
}


class DelegatedAnswer(Exception):
    """Kept for submissions and tests that name it; ``delegates_to`` no longer raises it.

    Used by the hidden tests from notebook 03 on.
    """


#: What runs inside a "by hand" exercise's call that a hidden test refuses, by what it asks of it:
#: ``packages`` (any of their Python code or C functions: notebook 03 is NumPy by hand) and ``modules``
#: (the frameworks' clipping code: any function defined in those files, or a copy of one's code).
BY_HAND = {
    "numpy": {"packages": ("torch", "tensorflow", "keras", "jax")},
    "torch": {"modules": ("torch.nn.utils.clip_grad",)},
    "tensorflow": {"modules": ("tensorflow.python.ops.clip_ops", "keras.src.optimizers.base_optimizer",
                               "keras.src.backend.tensorflow.optimizer")},
}

# C functions through which code in the traced call could switch the tracer off or reach its record
_TAMPERING = {("sys", "setprofile"), ("sys", "settrace"), ("sys", "getprofile"), ("sys", "gettrace"),
              ("sys", "_getframe"), ("sys", "_current_frames"), ("gc", "get_objects"), ("gc", "get_referrers"),
              ("gc", "get_referents"), ("_thread", "start_new_thread"), ("_thread", "start_joinable_thread"),
              ("posix", "fork"), ("_ctypes", "call_function"), ("_ctypes", "PyObj_FromPtr")}


# of those, the ones no library calls while it computes (the others are named only when the learner's code calls them)
_SWITCHES = {("sys", "setprofile"), ("sys", "settrace"), ("sys", "getprofile"), ("sys", "gettrace")}


def _library_dirs():
    import os
    import sysconfig

    paths = sysconfig.get_paths()
    dirs = {os.path.join(paths[k], "") for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    return tuple(sorted(dirs | {os.path.join(os.path.realpath(d), "") for d in dirs}))


def _code_key(code, _depth=0):
    """What a code object does, not where it was made: its bytecode, names and constants (nested code by
    the same key), so ``types.FunctionType(f.__code__, ...)`` and ``f.__code__.replace(co_filename=...)``
    copies of ``f`` have ``f``'s key."""
    import types

    consts = tuple(_code_key(c, _depth + 1) if isinstance(c, types.CodeType) and _depth < 20
                   else (type(c).__name__, repr(c)[:200]) for c in code.co_consts)
    return (code.co_code, code.co_names, code.co_argcount, code.co_kwonlyargcount, code.co_flags & 0x2F, consts)


def _codes_of(obj, seen, out, file=None):
    """Every code object reachable from a function or class ``obj`` (unwrapped, closures, methods, nested code);
    with ``file``, only what was defined in that file."""
    import types

    if id(obj) in seen or len(seen) > 20000:
        return
    seen.add(id(obj))
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if isinstance(obj, types.MethodType):
        obj = obj.__func__
    if isinstance(obj, type):
        for value in list(vars(obj).values()):
            if isinstance(value, property):
                for f in (value.fget, value.fset, value.fdel):
                    if f is not None:
                        _codes_of(f, seen, out, file)
            elif isinstance(value, (types.FunctionType, staticmethod, classmethod, type)):
                _codes_of(value, seen, out, file)
        return
    wrapped = getattr(obj, "__wrapped__", None) if not isinstance(obj, type) else None
    if wrapped is not None:
        _codes_of(wrapped, seen, out, file)
    code = getattr(obj, "__code__", None)
    if not isinstance(code, types.CodeType):
        return
    for cell in getattr(obj, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if isinstance(value, (types.FunctionType, type)):
            _codes_of(value, seen, out, file)
    stack = [code]
    while stack:
        c = stack.pop()
        if file is None or c.co_filename == file:
            out.append(c)
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))


def _package_dirs(names):
    """((folder + os.sep, top-level name), ...) of the packages ``names``, found without importing them."""
    import importlib.util
    import os

    dirs = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        for location in (getattr(spec, "submodule_search_locations", None) or ()) if spec else ():
            for folder in {os.path.realpath(location), os.path.abspath(location)}:
                dirs.append((os.path.join(folder, ""), name))
    return tuple(dirs)


def _distinctive(code):
    """Whether a copy of ``code`` says where it came from: a named function with a body of its own (a lambda,
    a comprehension or a two-line helper has twins in every library; a call of one is caught by its file)."""
    return not code.co_name.startswith("<") and len(code.co_code) >= 24 and bool(code.co_names)


def _named_functions(names):
    """[(name, object), ...] for each "module.function" of ``names`` that imports; the others are left out."""
    import importlib

    found = []
    for name in names:
        module, _, attr = name.rpartition(".")
        try:
            found.append((name, getattr(importlib.import_module(module), attr)))
        except (ImportError, AttributeError):
            continue
    return found


def _forbidden_codes(modules=(), functions=()):
    """(files, {code key: name}) of the modules' functions (only those already imported) and the named functions."""
    import sys
    import types

    files, keys, seen = set(), {}, set()
    for name in modules:
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        if module is None or not file:
            continue
        files.add(file)
        codes = []
        for value in list(vars(module).values()):
            if isinstance(value, (types.FunctionType, type)):
                _codes_of(value, seen, codes, file)
        for c in codes:
            if _distinctive(c):
                keys.setdefault(_code_key(c), f"{name}.{c.co_name}")
    for name, target in _named_functions(functions):
        codes = []
        _codes_of(target, seen, codes)
        for c in codes:
            if _distinctive(c):
                keys.setdefault(_code_key(c), name)
    return files, keys


def _c_function_owner(func):
    """The module a C function belongs to: 'torch' for torch.clamp and for Tensor.clamp_ alike."""
    module = getattr(func, "__module__", None)
    if not module:
        owner = getattr(func, "__self__", None)
        if owner is None:
            owner = getattr(func, "__objclass__", None)
        owner_type = owner if isinstance(owner, type) else type(owner)
        module = getattr(owner, "__name__", None) if type(owner).__name__ == "module" else owner_type.__module__
    return module or ""


def framework_code_run(call, packages=(), modules=(), functions=(), result=False):
    """Run ``call()`` and say what forbidden code ran meanwhile: a sorted list of names, empty when none did.
    For an ``@in_learner_process`` check in a hidden test (the learner's functions live there).

    With ``result=True`` it returns ``(names, value)``: ``value`` is what the watched ``call()`` returned
    (None if it raised). A hidden test must compare that value with its own reference: code that notices it
    is watched (``threading._profile_hook``, ``sys.getprofile()``) and answers differently then would
    otherwise pass the by-hand check with a wrong answer and score with a framework's answer elsewhere.

    Forbidden are: any Python code in the top-level ``packages`` ("torch") and any C function they define
    (``torch.clamp``, ``Tensor.clamp_``); any function defined in the files of ``modules``
    ("torch.nn.utils.clip_grad"), or whose code is a copy of one of theirs (bytecode, names and constants
    equal, nested functions too, wherever the copy says it was made); the functions ``functions``
    ("module.function") and copies of their code. It looks at what runs (a profiler sees every frame and
    every C call, aliases and captured references included), not at names. Code in the call that switches
    the profiler off or reaches for its record (``sys.setprofile``, ``sys._getframe``, ``gc.get_referrers``,
    a raw thread, ...) is named too, as tampering.
    Used by the hidden tests from notebook 03 on.
    """
    import os
    import sys
    import threading

    dirs = _package_dirs(packages)
    files, keys = _forbidden_codes(modules, functions)
    roots = {name.split(".")[0] for name in packages}
    found, verdicts, live = [], {}, []
    watching = True

    libraries = _library_dirs()

    def in_library(code):
        filename = code.co_filename or ""
        return filename.startswith(libraries) and os.path.exists(filename)

    def package_of(filename):
        for folder, name in dirs:
            if filename.startswith(folder):
                return name
        real = os.path.realpath(filename) if filename.startswith("/") else filename
        for folder, name in dirs:
            if real.startswith(folder):
                return name
        return None

    def verdict(code):
        try:
            return verdicts[code]
        except KeyError:
            pass
        name, filename = None, code.co_filename or ""
        if filename in files:
            name = keys.get(_code_key(code)) or f"{os.path.basename(filename)}: {code.co_name}"
        elif dirs and package_of(filename):
            name = f"{package_of(filename)} ({code.co_name})"
        elif keys:
            name = keys.get(_code_key(code))
            if name is not None:
                name += " (a copy of its code)"
        verdicts[code] = name
        return name

    def tracer(frame, event, arg):
        if not watching or len(found) > 100:
            return
        if event == "call":
            live.append(1)
            name = verdict(frame.f_code)
            if name is not None:
                found.append(name)
        elif event == "c_call":
            owner = _c_function_owner(arg)
            what = getattr(arg, "__name__", "?")
            if owner.split(".")[0] in roots:
                found.append(f"{owner.split('.')[0]}.{what}")
            elif (owner, what) in _TAMPERING and ((owner, what) in _SWITCHES or not in_library(frame.f_code)):
                found.append(f"{owner}.{what} (switching the check off)")

    def probe():
        return None

    setprofile = _genuine(sys, "setprofile")
    previous = sys.getprofile()
    threading.setprofile(tracer)
    setprofile(tracer)
    try:
        probe()
        if not live:
            found.append("a patched sys.setprofile (the check could not watch the call)")
        try:
            value = call()
        except Exception:  # noqa: BLE001 - what ran is reported; a value check then fails on None
            value = None
    finally:
        watching = False
        setprofile(previous)
        threading.setprofile(None)
    names = sorted(set(found))
    return (names, value) if result else names


def _genuine(module, name):
    """``module.name`` if it is still the interpreter's own C function, else raise (a learner replaced it)."""
    import types

    func = getattr(module, name)
    if not (isinstance(func, types.BuiltinFunctionType) and func.__name__ == name and func.__self__ is module):
        raise RuntimeError(f"{module.__name__}.{name} was replaced: the check cannot run")
    return func


def delegates_to(func, call, names, result=False):
    """Which of the functions ``names`` ("module.function") the learner's ``func`` is, or runs while
    ``call()`` runs: an empty list when it computes its answer itself. For an ``@in_learner_process``
    check in a hidden test (run it in the learner's process, where ``func`` lives).

    It watches what runs (``framework_code_run``): aliases (``global_norm = grad_norm``), captured
    references and copies of a function's code (``types.FunctionType(grad_norm.__code__, ...)``) are
    caught as well as module look-ups. With ``result=True`` it returns ``(hits, value)``, ``value`` being
    what the watched ``call()`` returned (None if it raised), for the test to check against its reference.
    Used by the hidden tests from notebook 03 on.
    """

    hits = []
    for name, target in _named_functions(names):
        if target is func or getattr(func, "__wrapped__", None) is target:
            hits.append(name)
    ran, value = framework_code_run(call, functions=names, result=True)
    hits += [name for name in names if any(r == name or r.startswith(name + " ") for r in ran)]
    hits += [r for r in ran if r.endswith("(switching the check off)") or r.startswith("a patched")]
    hits = sorted(set(hits))
    return (hits, value) if result else hits
