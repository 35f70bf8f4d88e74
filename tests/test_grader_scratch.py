"""Scratch folders of a grader that was killed are swept by the next run (no root needed)."""

import os
import subprocess
import sys

from autograder.sandbox import scratch_dir, sweep_scratch


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_sweep_removes_only_folders_whose_owner_is_gone(tmp_path, monkeypatch):
    """Folders of dead PIDs go; a live owner's folder, other tg-* names and plain files stay."""
    dead, alive = _dead_pid(), os.getpid()
    gone = [tmp_path / f"tg-job-{dead}-a1", tmp_path / f"tg-sandbox-{dead}-b2", tmp_path / f"tg-runner-{dead}-c3"]
    kept = [tmp_path / f"tg-sandbox-{alive}-d4", tmp_path / "tg-release-e5", tmp_path / f"tg-job-{dead}"]
    for path in gone + kept:
        path.mkdir()
        (path / "notebook.ipynb").write_text("{}")
    (tmp_path / f"tg-job-{dead}-file").write_text("not a folder")
    removed = sweep_scratch(tmp_path)
    assert sorted(removed) == sorted(gone)
    assert not any(p.exists() for p in gone)
    assert all(p.exists() for p in kept) and (tmp_path / f"tg-job-{dead}-file").exists()


def test_scratch_dirs_carry_their_owners_pid(tmp_path, monkeypatch):
    """scratch_dir names its folder after the calling process, so a live grader's folders are never swept."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    path = scratch_dir("job")
    assert path.parent == tmp_path and path.name.startswith(f"tg-job-{os.getpid()}-")
    assert sweep_scratch(tmp_path) == [] and path.is_dir()


def test_a_killed_but_unreaped_owner_counts_as_gone(tmp_path):
    """A zombie (killed, its parent not yet waiting for it) owns nothing any more."""
    import signal
    import time

    proc = subprocess.Popen(["sleep", "60"])
    try:
        folder = tmp_path / f"tg-sandbox-{proc.pid}-z9"
        folder.mkdir()
        assert sweep_scratch(tmp_path) == [], "a running owner's folder must stay"
        proc.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 5
        while not open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z":
            assert time.monotonic() < deadline, "the child did not become a zombie"
            time.sleep(0.01)
        assert sweep_scratch(tmp_path) == [folder]
    finally:
        proc.kill()
        proc.wait()
