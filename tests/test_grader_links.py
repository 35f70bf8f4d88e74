"""Nothing in a submission is followed: symbolic links (absolute or relative, at any depth), hard links,
FIFOs and devices in folders, git clones and tar archives get a clear status, and an honest learner
graded in the same batch keeps full marks."""

import io
import json
import os
import sys
import tarfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "fixtures"))

from grader_fixture import ASSIGNMENT, MAX_SCORE, SOURCE, solution_nb, write_submission  # noqa: E402

from autograder.grade import grade_all  # noqa: E402
from autograder.sandbox import Limits  # noqa: E402
from autograder.staging import discover, stage  # noqa: E402

LIMITS = Limits(cpu_seconds=60, wall_seconds=120, cell_seconds=30, call_seconds=30)
NB = f"{ASSIGNMENT}.ipynb"


def _tar(path, members, mode="w:gz"):
    """A tar archive; ``members`` maps a name to bytes (a file) or to a TarInfo-editing callable."""
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if callable(data):
                data(info)
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))


def _symlink_to(target):
    def edit(info):
        info.type, info.linkname = tarfile.SYMTYPE, target
    return edit


def _fifo(info):
    info.type = tarfile.FIFOTYPE


def _staged(subs, learner, dest=None):
    return stage(discover(subs).learners[learner], ASSIGNMENT, dest)


# ----------------------------------------------------------------------------- staging, unit by unit


@pytest.mark.parametrize("where", ["notebook", "deep"])
@pytest.mark.parametrize("absolute", [True, False])
def test_a_symlink_anywhere_in_the_folder_is_refused(tmp_path, where, absolute):
    """A symbolic link (absolute or relative) at the top or deep inside the assignment is refused."""
    subs = tmp_path / "submitted"
    other = write_submission(subs, "other", solution_nb())
    folder = subs / "mallory" / ASSIGNMENT
    folder.mkdir(parents=True)
    link = folder / NB if where == "notebook" else folder / "data" / "sub" / "x.csv"
    if where == "deep":
        write_submission(subs, "mallory", solution_nb())
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(other if absolute else os.path.relpath(other, link.parent))
    staged = _staged(subs, "mallory", tmp_path / "stage")
    assert staged.folder is None
    shown = NB if where == "notebook" else "data/sub/x.csv"
    assert staged.status == f"invalid submission (link: {shown})"


def test_assignment_folder_and_learner_folder_links_are_refused(tmp_path):
    """An assignment folder linking into solutions/, and a learner folder linking to another learner,
    are refused; the learner who is a link still has a row (it does not vanish)."""
    subs = tmp_path / "submitted"
    write_submission(subs, "honest", solution_nb())
    (subs / "linker").mkdir()
    (subs / "linker" / ASSIGNMENT).symlink_to(SOURCE / ASSIGNMENT)
    (subs / "thief").symlink_to("honest")
    (subs / "thief2.zip").symlink_to(subs / "honest")
    found = discover(subs).learners
    assert sorted(found) == ["honest", "linker", "thief", "thief2"]
    assert _staged(subs, "linker").status == "invalid submission (link: the assignment folder)"
    assert _staged(subs, "thief").status == "invalid submission (link: the learner entry)"
    assert _staged(subs, "thief2").status == "invalid submission (link: the learner entry)"
    assert _staged(subs, "honest").status is None


def test_hard_links_fifos_and_devices_are_refused(tmp_path):
    """A regular file with another hard link (e.g. to a file outside), a FIFO or a device is refused."""
    subs = tmp_path / "submitted"
    secret = tmp_path / "secret.txt"
    secret.write_text("the instructor's file")
    write_submission(subs, "hard", solution_nb())
    os.link(secret, subs / "hard" / ASSIGNMENT / "copy.txt")
    write_submission(subs, "fifo", solution_nb())
    os.mkfifo(subs / "fifo" / ASSIGNMENT / "pipe")
    assert _staged(subs, "hard").status == "invalid submission (hard link: copy.txt)"
    assert _staged(subs, "fifo").status == "invalid submission (FIFO: pipe)"  # and it did not block
    (subs / "fifo2").mkdir()
    os.mkfifo(subs / "fifo2" / ASSIGNMENT)
    assert _staged(subs, "fifo2").status == "invalid submission (the assignment is not a folder)"
    write_submission(subs, "dev", solution_nb())
    try:
        os.mknod(subs / "dev" / ASSIGNMENT / "null", 0o600 | 0o020000, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    assert _staged(subs, "dev").status == "invalid submission (device: null)"


def test_git_clone_is_staged_without_its_git_folder(tmp_path):
    """A learner folder that is a git clone is staged without .git (whose links are never visited)."""
    subs = tmp_path / "submitted"
    write_submission(subs, "cloner", solution_nb())
    for git in (subs / "cloner" / ".git", subs / "cloner" / ASSIGNMENT / ".git"):
        git.mkdir()
        (git / "HEAD").write_text("ref: refs/heads/main\n")
        (git / "evil").symlink_to("/etc/passwd")
    (subs / "cloner" / ASSIGNMENT / "data.txt").write_text("1 2 3")
    staged = _staged(subs, "cloner", tmp_path / "stage")
    assert staged.status is None
    files = sorted(str(p.relative_to(staged.folder)) for p in staged.folder.rglob("*"))
    assert files == ["00_fixture.ipynb", "data.txt"]


@pytest.mark.parametrize("member, status", [
    (_symlink_to("/etc/passwd"), "invalid tar (link in tar"),
    (_symlink_to("../../honest"), "invalid tar (link in tar"),
    (_fifo, "invalid tar (device, FIFO or special member in tar"),
])
def test_tar_link_and_device_members_are_refused(tmp_path, member, status):
    """A tar's symbolic link, hard link or FIFO member refuses the archive."""
    subs = tmp_path / "submitted"
    subs.mkdir()
    good = json.dumps(solution_nb()).encode()
    _tar(subs / "tina.tgz", {f"{ASSIGNMENT}/{NB}": good, f"{ASSIGNMENT}/x": member})
    staged = _staged(subs, "tina", tmp_path / "stage")
    assert staged.folder is None and staged.status.startswith(status), staged.status
    assert not (tmp_path / "stage" / "x").exists()


def test_tar_with_a_hard_link_member_or_unsafe_path_is_refused(tmp_path):
    """A tar's hard link member and a '..' path are refused (nothing written outside)."""
    subs = tmp_path / "submitted"
    subs.mkdir()
    good = json.dumps(solution_nb()).encode()

    def hard(info):
        info.type, info.linkname = tarfile.LNKTYPE, f"{ASSIGNMENT}/{NB}"

    _tar(subs / "hl.tar", {f"{ASSIGNMENT}/{NB}": good, f"{ASSIGNMENT}/copy": hard}, mode="w")
    _tar(subs / "slip.tar.gz", {f"{ASSIGNMENT}/{NB}": good, f"{ASSIGNMENT}/../../evil": b"x"})
    assert _staged(subs, "hl").status.startswith("invalid tar (link in tar")
    assert _staged(subs, "slip", tmp_path / "stage").status.startswith("invalid tar (unsafe path")
    assert not list(tmp_path.rglob("evil"))


def test_tar_like_zip_with_or_without_learner_level(tmp_path):
    """<learner>.tar, .tar.gz and .tgz are staged like zips, with or without the <learner>/ level."""
    subs = tmp_path / "submitted"
    subs.mkdir()
    good = json.dumps(solution_nb()).encode()
    _tar(subs / "t1.tar", {f"t1/{ASSIGNMENT}/{NB}": good}, mode="w")
    _tar(subs / "t2.tar.gz", {f"{ASSIGNMENT}/{NB}": good, "99_other/x.ipynb": b"{}"})
    _tar(subs / "t3.tgz", {f"t3/{ASSIGNMENT}/{NB}": good})
    for learner in ("t1", "t2", "t3"):
        staged = _staged(subs, learner, tmp_path / learner)
        assert staged.status is None, staged.status
        assert (staged.folder / NB).read_bytes() == good
        assert [p.name for p in staged.folder.iterdir()] == [NB]


def test_staging_hash_follows_the_content_not_the_container(tmp_path):
    """The same files staged from a folder, a zip or a tar hash alike; a changed byte changes it."""
    import zipfile

    subs = tmp_path / "submitted"
    good = json.dumps(solution_nb()).encode()
    write_submission(subs, "f", good.decode())
    with zipfile.ZipFile(subs / "z.zip", "w") as zf:
        zf.writestr(f"{ASSIGNMENT}/{NB}", good)
    _tar(subs / "t.tgz", {f"{ASSIGNMENT}/{NB}": good})
    digests = {name: _staged(subs, name).digest for name in ("f", "z", "t")}
    assert len(set(digests.values())) == 1, digests
    write_submission(subs, "f", good.decode() + " ")
    assert _staged(subs, "f").digest != digests["f"]


# ----------------------------------------------------------------------------- the batch


@pytest.mark.timeout(600)
def test_batch_with_links_grades_only_the_honest(tmp_path):
    """In one batch, every link trick gets a refused row with score 0 while the honest learner, a
    git clone and a tarball keep full marks; no result of one learner is anyone else's."""
    subs, out = tmp_path / "submitted", tmp_path / "out"
    honest = write_submission(subs, "honest", solution_nb())
    (subs / "linker").mkdir()
    (subs / "linker" / ASSIGNMENT).symlink_to(SOURCE / ASSIGNMENT)  # into solutions/
    (subs / "thief").symlink_to("honest")  # another learner's folder
    (subs / "nested" / ASSIGNMENT).mkdir(parents=True)
    (subs / "nested" / ASSIGNMENT / NB).symlink_to(os.path.relpath(honest, subs / "nested" / ASSIGNMENT))
    outside = tmp_path / "instructor_copy.ipynb"  # stands for solutions/ (a hard link cannot cross devices)
    outside.write_text(json.dumps(solution_nb()))
    (subs / "hard" / ASSIGNMENT).mkdir(parents=True)
    os.link(outside, subs / "hard" / ASSIGNMENT / NB)
    write_submission(subs, "cloner", solution_nb())
    (subs / "cloner" / ".git").mkdir()
    (subs / "cloner" / ".git" / "link").symlink_to(SOURCE)
    _tar(subs / "tarred.tar.gz", {f"tarred/{ASSIGNMENT}/{NB}": json.dumps(solution_nb()).encode()})
    _tar(subs / "tarlink.tgz", {f"{ASSIGNMENT}/{NB}": _symlink_to(str(SOURCE / ASSIGNMENT / NB))})
    rows = {r["learner"]: r for r in grade_all(subs, out, source=SOURCE, workers=2, limits=LIMITS, progress=False)}
    expected = {
        "honest": (MAX_SCORE, "graded"),
        "cloner": (MAX_SCORE, "graded"),
        "tarred": (MAX_SCORE, "graded"),
        "linker": (0, "invalid submission (link: the assignment folder)"),
        "thief": (0, "invalid submission (link: the learner entry)"),
        "nested": (0, f"invalid submission (link: {NB})"),
        "hard": (0, f"invalid submission (hard link: {NB})"),
        "tarlink": (0, "invalid tar (link in tar"),
    }
    assert sorted(rows) == sorted(expected)
    for learner, (score, status) in expected.items():
        assert rows[learner]["score"] == score and rows[learner]["status"].startswith(status), rows[learner]
        assert rows[learner]["max_score"] == MAX_SCORE


def test_a_link_beside_a_folder_of_the_same_name_does_not_replace_it(tmp_path):
    """alice/ and a link alice.zip: the folder is alice's submission, the link is listed as ignored."""
    subs = tmp_path / "submitted"
    write_submission(subs, "alice", solution_nb())
    (subs / "alice.zip").symlink_to("/etc/passwd")
    (subs / "bob.tgz").symlink_to("/etc/passwd")
    found = discover(subs)
    assert found.learners["alice"].kind == "folder" and found.learners["alice"].problem is None
    assert found.learners["bob"].problem == "invalid submission (link: the learner entry)"
    assert any(name.startswith("alice") for name, _why in found.ignored)
