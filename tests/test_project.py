"""The project's layout, its one list of pins, and the two-command setup the README promises."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pins_from_pyproject():
    project = _pyproject()["project"]
    reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return dict(_split(r) for r in reqs)


def _split(requirement):
    """(name, version) of ``name==version[; marker]``; a pin with a platform marker keeps its marker in
    the name (``tensorflow; platform_machine != 'x86_64' ...``) so that both platform variants count."""
    spec, _, marker = requirement.partition(";")
    name, _, version = spec.partition("==")
    assert version, f"{requirement!r} is not pinned exactly (name==version)"
    name = name.strip().lower()
    return (f"{name}; {marker.strip()}" if marker.strip() else name), version.strip()


def _applies(key):
    """Whether a pin (as ``_split`` names it) applies to this machine."""
    from packaging.markers import Marker

    _, _, marker = key.partition(";")
    return not marker.strip() or Marker(marker.strip()).evaluate()


def _pins_from_environment_yml():
    text = (ROOT / "environment.yml").read_text()
    pins, python = {}, None
    for line in text.splitlines():
        line = line.strip()
        if m := re.fullmatch(r"- python=(\S+)", line):
            python = m.group(1)
        elif m := re.fullmatch(r"""- "?([A-Za-z0-9_.\-]+==[^"]+)"?""", line):
            name, version = _split(m.group(1))
            pins[name] = version
    return python, pins


@pytest.mark.parametrize("path", [
    "README.md", "Makefile", "pyproject.toml", "environment.yml", ".ci/run", "solutions", "course",
    "course/gradlab/__init__.py", "autograder/nbgrader_config.py", "tests", "bench", "docs/AUTHORING.md",
])
def test_layout_of_design_md(path):
    """Every path DESIGN.md's layout names exists."""
    assert (ROOT / path).exists(), f"{path} is missing"


def test_every_dependency_is_pinned_exactly():
    """pyproject.toml pins every dependency with == and includes the course's core packages."""
    pins = _pins_from_pyproject()
    names = {key.partition(";")[0] for key in pins}
    for name in ["numpy", "torch", "tensorflow-cpu", "tensorflow", "keras", "jupyterlab", "notebook", "nbgrader",
                 "ipywidgets", "matplotlib", "scikit-learn", "pytest", "playwright", "ruff"]:
        assert name in names, f"{name} is not pinned in pyproject.toml"
    assert pins["torch"] == "2.13.0", "torch must stay at 2.13.0 (the CPU wheel on this disk)"


def test_environment_yml_matches_pyproject():
    """environment.yml repeats exactly pyproject.toml's pins, for Python 3.11."""
    python, env_pins = _pins_from_environment_yml()
    assert python == "3.11"
    assert env_pins == _pins_from_pyproject()


def test_installed_versions_match_the_pins():
    """The virtual environment holds the pinned versions (a stale .venv is caught here)."""
    from importlib.metadata import version

    for key, pinned in _pins_from_pyproject().items():
        if not _applies(key):
            continue
        name = key.partition(";")[0]
        installed = version(name).split("+")[0]
        assert installed == pinned, f"{name}: installed {installed}, pinned {pinned}; run `make setup`"


def test_ci_runs_make_test_and_nothing_else():
    """.ci/run's only command is `make test`."""
    commands = [line.strip() for line in (ROOT / ".ci/run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == "make test"
    assert all(c.startswith(("set ", "cd ")) for c in commands[:-1]), commands


def test_readme_quick_start_shows_the_two_commands():
    """The README's quick start shows `make lab` and `make test`, and the Makefile has both targets."""
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    assert "make lab" in quick and "make test" in quick
    makefile = (ROOT / "Makefile").read_text()
    for target in ("lab", "test", "release", "grade", "bench"):
        assert re.search(rf"^{target}:", makefile, re.M), f"Makefile has no `{target}` target"


def test_gradlab_is_installed_in_editable_mode():
    """gradlab imports from course/gradlab (editable install), not from a copy."""
    import gradlab

    assert Path(gradlab.__file__).resolve().parent == ROOT / "course" / "gradlab"


def test_ruff_passes():
    """`ruff check` passes over the project's Python code."""
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_gradlab_modules_have_docstrings():
    """Every gradlab module and public function has a docstring."""
    import importlib
    import inspect
    import pkgutil

    import gradlab

    missing = []
    for info in pkgutil.iter_modules(gradlab.__path__):  # tf_models too: TensorFlow's import costs ~8 s
        module = importlib.import_module(f"gradlab.{info.name}")
        if not module.__doc__:
            missing.append(module.__name__)
        for name, obj in vars(module).items():
            if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if getattr(obj, "__module__", None) == module.__name__ and not obj.__doc__:
                missing.append(f"{module.__name__}.{name}")
    assert not missing, f"no docstring: {missing}"
