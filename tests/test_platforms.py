"""The pins install on a learner's laptop: the whole set resolves to wheels on every platform the README
promises (Linux x86-64 and aarch64, macOS on Apple Silicon, Windows), and the one it says cannot be served
(an Intel Mac) indeed cannot.

pip cannot answer this for another platform: with ``--platform`` it still evaluates environment markers
against the machine it runs on, so a pin with a platform marker (TensorFlow's) would be judged for Linux.
``uv pip compile --python-platform`` evaluates markers and wheel tags for the target, from the registry's
metadata alone (nothing is downloaded but that). Without the registry the tests skip, saying why.
"""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVED = {
    "Linux x86-64": "x86_64-manylinux_2_28",
    "Linux aarch64": "aarch64-manylinux_2_28",
    "macOS Apple Silicon": "aarch64-apple-darwin",
    "Windows x86-64": "x86_64-pc-windows-msvc",
}
NOT_SERVED = {"macOS Intel": "x86_64-apple-darwin"}  # README: neither torch 2.13 nor TensorFlow 2.21 has a wheel
OFFLINE_SIGNS = ("Failed to fetch", "Could not connect", "dns error", "error sending request", "timed out")


def _uv():
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if not found:
        pytest.fail("uv is not installed: it is a test dependency in pyproject.toml; run `make setup`")
    return found


@pytest.fixture(scope="module")
def requirements(tmp_path_factory):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    path = tmp_path_factory.mktemp("pins") / "requirements.txt"
    path.write_text("\n".join(reqs) + "\n")
    return path


def _resolve(requirements, platform):
    cmd = [_uv(), "pip", "compile", "--no-config", "--quiet", "--no-header", "--python-version", "3.11",
           "--python-platform", platform, "--only-binary", ":all:", str(requirements)]
    # Apple Silicon wheels of torch 2.13 are tagged macosx_14_0; uv's default deployment target is older.
    # --native-tls: the machine's certificate store, as pip uses it (a proxy's CA may be installed there).
    cmd.insert(3, "--native-tls")
    env = dict(os.environ, MACOSX_DEPLOYMENT_TARGET="14.0")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    except subprocess.TimeoutExpired:
        pytest.skip("the package registry did not answer within 300 s: platform resolution not checked")
    if proc.returncode != 0 and any(s in proc.stderr for s in OFFLINE_SIGNS):
        pytest.skip(f"the package registry cannot be reached: platform resolution not checked ({proc.stderr[:200]})")
    return proc


def _resolved(stdout):
    pins = {}
    for line in stdout.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "==" in line:
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.split(";")[0].strip()
    return pins


@pytest.mark.parametrize("name", list(SERVED))
def test_pins_resolve_to_wheels_on(name, requirements):
    """Every pin (and everything it needs) has a wheel for this platform, with the pinned versions."""
    proc = _resolve(requirements, SERVED[name])
    assert proc.returncode == 0, f"the pins do not install on {name}:\n{proc.stderr[-3000:]}"
    pins = _resolved(proc.stdout)
    assert pins.get("torch") == "2.13.0", pins.get("torch")
    tf = pins.get("tensorflow-cpu") or pins.get("tensorflow")
    assert tf == "2.21.0", f"TensorFlow resolved to {tf} on {name}"
    assert ("tensorflow-cpu" in pins) == (name in ("Linux x86-64", "Windows x86-64")), (
        "tensorflow-cpu is the package on x86-64 Linux and Windows, tensorflow elsewhere")


@pytest.mark.parametrize("name", list(NOT_SERVED))
def test_readme_is_right_that_this_platform_cannot_be_served(name, requirements):
    """The platform the README sends to a container or a hub really has no wheels for the pins."""
    proc = _resolve(requirements, NOT_SERVED[name])
    assert proc.returncode != 0, f"the pins now resolve on {name}: update the README's platform table"
    assert "torch" in proc.stderr or "tensorflow" in proc.stderr, proc.stderr[-2000:]
    readme = (ROOT / "README.md").read_text()
    assert "Intel Mac" in readme, "the README must say that Intel Macs cannot install the pins, and what to do"
