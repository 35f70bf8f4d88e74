"""The chroot the sandbox builds, read from its setup script (runs without root)."""

import shutil
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


def test_userns_mode_builds_the_same_chroot_with_the_same_script():
    """Without root (mode userns-chroot) the chroot comes from the same script: every mount and bind
    of root mode is there, in the same order; only the owner of the home, the final remount and the
    change of user differ, and the namespaces are entered through a user namespace."""
    args = (Path("/tmp/tg-x/root"), Path("/tmp/tg-runner"), 3, 4)
    root = Sandbox(mode="root", uid=61001)
    userns = Sandbox(mode="userns-chroot", uid=61001)
    as_root, as_user = root._root_script(*args).splitlines(), userns._root_script(*args).splitlines()
    differ = ("chown -R", "mount -o remount", "exec ", "PATH=")
    assert [x for x in as_root if not x.startswith(differ) and "tg-home" not in x] == \
           [x for x in as_user if not x.startswith(differ) and "tg-home" not in x]
    assert any("mount --bind -o ro,nosuid,nodev" in x and "gradlab" in x for x in as_user)
    assert not any("chown" in x for x in as_user)
    assert "mount -o remount,bind,ro /tmp/tg-x/root" in as_user
    home = [x for x in as_user if "tg-home" in x]
    assert home and "uid=" not in home[0] and "size=" in home[0]
    last = as_user[-1]
    assert last.startswith("exec prlimit ") and "unshare --user --map-user=61001 --map-group=61001" in last
    assert last.index("unshare --user") < last.index("chroot /tmp/tg-x/root setpriv")
    assert "--bounding-set=-all --no-new-privs" in last and "--reuid" not in last
    assert root._unshare()[:2] == ["unshare", "--mount"]
    assert userns._unshare()[:3] == ["unshare", "--user", "--map-root-user"]
    assert userns._unshare()[3:] == root._unshare()[1:]
    assert userns._env(sandbox.HOME) == root._env(sandbox.HOME)


def test_gradlab_is_bound_wherever_python_would_import_it_from(tmp_path, monkeypatch):
    """A second gradlab on the path (a regular install in site-packages, an editable install of another
    checkout) gets this course's filtered gradlab bound over it, so answer modules are hidden there too."""
    other = tmp_path / "site-packages" / "gradlab"
    shutil.copytree(sandbox.GRADLAB, other, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(sys, "path", [str(other.parent), *sys.path])
    sandbox._LOCATIONS.clear()
    assert str(other.resolve()) in sandbox.gradlab_locations()
    sb = Sandbox(mode="root", exercises={"clip_by_value"})
    sb._gradlab = tmp_path / "filtered"
    script = sb._root_script(Path("/tmp/tg-x/root"), Path("/tmp/tg-runner"), 3, 4)
    for where in (other.resolve(), sandbox.GRADLAB.resolve()):
        assert f"mount --bind -o ro,nosuid,nodev {(tmp_path / 'filtered').resolve()} /tmp/tg-x/root{where}" in script
    sandbox._LOCATIONS.clear()
