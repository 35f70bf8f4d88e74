"""The chroot the sandbox builds, read from its setup script (runs without root)."""

import sys
from pathlib import Path

from autograder import sandbox
from autograder.sandbox import Sandbox


def test_a_virtual_environment_under_tmp_is_not_hidden_by_the_private_tmp(monkeypatch):
    """A clone under /tmp (as CI makes) keeps its venv and gradlab visible: /tmp is mounted before the binds."""
    venv = "/tmp/ci-clone/.venv"
    monkeypatch.setattr(sys, "prefix", venv)
    monkeypatch.setattr(sandbox, "GRADLAB", Path("/tmp/ci-clone/course/gradlab"))
    script = Sandbox(mode="root")._root_script(Path("/tmp/tg-x/root"), Path("/tmp/tg-runner"), 3, 4).splitlines()

    def line_of(fragment):
        hits = [i for i, line in enumerate(script) if fragment in line]
        assert hits, f"no line with {fragment!r} in\n" + "\n".join(script)
        return hits[0]

    private_tmp = line_of("tg-tmp /tmp/tg-x/root/tmp")
    for path in (venv, "/tmp/ci-clone/course/gradlab"):
        bind = line_of(f"mount --bind -o ro,nosuid,nodev {path} /tmp/tg-x/root{path}")
        assert bind > private_tmp, f"{path} is bound before the private /tmp is mounted over it"
    assert not any("/tmp/ci-clone/solutions" in line for line in script)
