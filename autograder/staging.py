"""Finding the class's submissions and staging each one into a private copy before it is graded.

``discover(SUBMISSIONS)`` lists the learners: a folder ``<learner>/`` (a git clone is a folder too; its
``.git`` is ignored), or an archive ``<learner>.zip`` / ``.tar`` / ``.tar.gz`` / ``.tgz`` holding
``<assignment>/...`` with or without the ``<learner>/`` level; a folder wins over an archive of the
same name. Nothing found there is dropped silently: a learner entry that is a symbolic link, a FIFO, a
device or a socket, or whose name is outside ``SAFE_NAME``, is a learner with a ``problem`` (a status
that every one of its rows gets, under a neutralised name for an unsafe one); other files and hidden
entries are listed in ``Discovery.ignored``.

``stage(learner, assignment, dest)`` copies one assignment of one learner into ``dest`` (or, with
``dest=None``, only reads it) and returns a ``Staged``: the folder, or the status saying why there is
none, and a content hash of what would be graded. Nothing is followed: the walk opens every folder
and file relative to its parent's descriptor with ``O_NOFOLLOW``, and refuses a symbolic link, a
regular file with more than one hard link, a FIFO, a device or a socket anywhere in it (status
``invalid submission (link: PATH)`` and the like); archives refuse link and device members and
unsafe paths. Folders and archives share the caps ``MAX_FILES`` and ``MAX_BYTES``.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

MAX_FILES = 10_000
MAX_BYTES = 200 << 20
ZIP_MAX_RATIO = 200
ZIP_MAX_MEMBERS, ZIP_MAX_BYTES = MAX_FILES, MAX_BYTES  # the old names
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
SAFE_NAME = re.compile(r"[A-Za-z0-9_@][A-Za-z0-9._@-]{0,99}")
IGNORED_NAMES = {".git"}
CHUNK = 1 << 20


class StagingProblem(Exception):
    """A submission that is refused; ``str(exc)`` is the job's status."""


class ZipProblem(StagingProblem):
    """A zip or tar submission that is refused (unsafe paths, links, too large, not an archive)."""


@dataclass
class Learner:
    """One learner of the class: where their submission is, or the status every row of theirs gets."""

    name: str  # a SAFE_NAME (neutralised when the entry's own name is not one)
    path: Path | None
    kind: str  # "folder", "zip", "tar" or "refused"
    problem: str | None = None


@dataclass
class Discovery:
    learners: dict = field(default_factory=dict)  # name -> Learner
    ignored: list = field(default_factory=list)  # (entry name, why)


@dataclass
class Staged:
    folder: Path | None  # the staged assignment folder, None with a status
    status: str | None  # None: gradable
    digest: str  # sha256 of what would be graded (or of the status)


def safe_name(name):
    """True for a learner name that is safe as a path, a CSV field and a spreadsheet cell."""
    return type(name) is str and SAFE_NAME.fullmatch(name) is not None


def neutral_name(name):
    """A stable SAFE_NAME standing for an unsafe learner entry name (its hash, never its text)."""
    raw = os.fsencode(name) if isinstance(name, str) else bytes(name)
    return "invalid-name_" + hashlib.sha256(raw).hexdigest()[:12]


def _archive_stem(name):
    low = name.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if low.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)], ("zip" if suffix == ".zip" else "tar")
    return None, None


def _add(found, name, path, kind, problem=None):
    if safe_name(name):
        found.learners[name] = Learner(name, path, kind, problem)
    else:
        shown = ascii(name)[:80]
        found.learners[neutral_name(name)] = Learner(
            neutral_name(name), None, "refused",
            f"invalid learner name ({shown}: rename it to letters, digits and . _ @ -)")


def discover(submissions):
    """Every learner entry of ``submissions`` (see the module docstring); a ``Discovery``."""
    submissions = Path(submissions)
    try:
        st = os.lstat(submissions)
    except OSError:
        raise SystemExit(f"error: submissions folder {submissions} does not exist") from None
    if not stat.S_ISDIR(st.st_mode):
        raise SystemExit(f"error: submissions folder {submissions} is not a folder")
    found = Discovery()
    archives = []
    with os.scandir(submissions) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            found.ignored.append((name, "hidden"))
            continue
        try:
            mode = os.lstat(entry.path).st_mode
        except OSError:
            found.ignored.append((name, "vanished"))
            continue
        stem, kind = _archive_stem(name)
        if stat.S_ISDIR(mode):
            _add(found, name, Path(entry.path), "folder")
        elif stat.S_ISLNK(mode):
            archives.append((stem or name, None, "refused", "invalid submission (link: the learner entry)"))
        elif stat.S_ISREG(mode) and stem:
            archives.append((stem, Path(entry.path), kind, None))
        elif stat.S_ISREG(mode):
            found.ignored.append((name, "not a folder or an archive"))
        else:
            archives.append((stem or name, None, "refused", "invalid submission (not a file or folder)"))
    for stem, path, kind, problem in archives:  # after the folders: a folder wins over its namesakes
        key = stem if safe_name(stem) else neutral_name(stem)
        if key in found.learners:
            found.ignored.append((f"{stem} ({kind})", f"a folder or archive for {key} comes first"))
        else:
            _add(found, stem, path, kind, problem)
    return found


# ---------------------------------------------------------------------------------------- staging


class _Sink:
    """Counts, hashes and (with a destination) writes the staged files."""

    def __init__(self, dest):
        self.dest = Path(dest) if dest is not None else None
        self.hash = hashlib.sha256()
        self.files = 0
        self.bytes = 0
        self._paths, self._dirs = set(), set()
        if self.dest is not None:
            self.dest.mkdir(parents=True, exist_ok=True)

    def add(self, rel, chunks, what):
        """Store one file at ``rel`` (a tuple of safe parts) from an iterable of byte chunks."""
        self.files += 1
        if self.files > MAX_FILES:
            raise what(f"more than {MAX_FILES} files")
        parents = {rel[:i] for i in range(1, len(rel))}
        if rel in self._paths or rel in self._dirs or parents & self._paths:
            raise what(f"duplicate path: {'/'.join(rel)!r}")
        self._paths.add(rel)
        self._dirs |= parents
        name = "/".join(rel).encode("utf-8", "surrogateescape")
        self.hash.update(b"F" + len(name).to_bytes(4, "big") + name)
        out = None
        if self.dest is not None:
            target = self.dest.joinpath(*rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            out = open(target, "xb")  # noqa: SIM115 - closed below
        size = 0
        try:
            for chunk in chunks:
                size += len(chunk)
                self.bytes += len(chunk)
                if self.bytes > MAX_BYTES:
                    raise what(f"more than {MAX_BYTES >> 20} MiB of files")
                self.hash.update(chunk)
                if out is not None:
                    out.write(chunk)
        finally:
            if out is not None:
                out.close()
        self.hash.update(b"E" + size.to_bytes(8, "big"))


def _safe_parts(raw, what):
    name = raw.replace("\\", "/")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]) or any("\0" in p for p in parts):
        raise what(f"unsafe path in archive: {raw!r}")
    return parts


def _in_assignment(parts, learner, assignment):
    """The path inside the assignment folder, or None for a member of something else."""
    if len(parts) >= 2 and parts[0] == learner and parts[1] == assignment:
        rel = parts[2:]
    elif parts and parts[0] == assignment:
        rel = parts[1:]
    else:
        return None
    if any(p in IGNORED_NAMES for p in rel):
        return None
    return tuple(rel) or None


def _read_fd(fd):
    while True:
        chunk = os.read(fd, CHUNK)
        if not chunk:
            return
        yield chunk


def _walk(dir_fd, rel, sink):
    with os.scandir(dir_fd) as it:
        names = sorted(e.name for e in it)
    for name in names:
        if name in IGNORED_NAMES:
            continue
        path = (*rel, name)
        shown = ascii("/".join(path))[1:-1][:120]
        st = os.lstat(name, dir_fd=dir_fd)
        if stat.S_ISLNK(st.st_mode):
            raise StagingProblem(f"invalid submission (link: {shown})")
        if stat.S_ISDIR(st.st_mode):
            try:
                sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            except OSError:
                raise StagingProblem(f"invalid submission (unreadable folder: {shown})") from None
            try:
                _walk(sub, path, sink)
            finally:
                os.close(sub)
        elif stat.S_ISREG(st.st_mode):
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
            except OSError:
                raise StagingProblem(f"invalid submission (unreadable file: {shown})") from None
            try:
                fst = os.fstat(fd)
                if not stat.S_ISREG(fst.st_mode):
                    raise StagingProblem(f"invalid submission (not a regular file: {shown})")
                if fst.st_nlink > 1:
                    raise StagingProblem(f"invalid submission (hard link: {shown})")
                sink.add(path, _read_fd(fd), StagingProblem)
            finally:
                os.close(fd)
        else:
            kind = ("FIFO" if stat.S_ISFIFO(st.st_mode) else "device"
                    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "socket"
                    if stat.S_ISSOCK(st.st_mode) else "special file")
            raise StagingProblem(f"invalid submission ({kind}: {shown})")


def _stage_folder(learner_dir, assignment, sink):
    """Returns False when the learner has no folder for ``assignment``."""
    try:
        top = os.open(learner_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        raise StagingProblem("invalid submission (link: the learner folder)") from None
    try:
        try:
            st = os.lstat(assignment, dir_fd=top)
        except FileNotFoundError:
            return False
        if stat.S_ISLNK(st.st_mode):
            raise StagingProblem("invalid submission (link: the assignment folder)")
        if not stat.S_ISDIR(st.st_mode):
            raise StagingProblem("invalid submission (the assignment is not a folder)")
        fd = os.open(assignment, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=top)
        try:
            _walk(fd, (), sink)
        finally:
            os.close(fd)
    finally:
        os.close(top)
    return True


def _zip_chunks(zf, info):
    with zf.open(info) as src:
        yield from _file_chunks(src)


def _stage_zip(path, learner, assignment, sink):
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ZipProblem(f"not a valid zip file ({exc.__class__.__name__})") from None
    found = False
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_FILES:
            raise ZipProblem(f"more than {MAX_FILES} files in the zip")
        for info in sorted(infos, key=lambda i: i.filename):
            parts = _safe_parts(info.filename, ZipProblem)
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind == stat.S_IFLNK:
                raise ZipProblem(f"symbolic link in zip: {info.filename!r}")
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                raise ZipProblem(f"device, FIFO or socket in zip: {info.filename!r}")
            rel = _in_assignment(parts, learner, assignment)
            if parts[:1] == [assignment] or parts[:2] == [learner, assignment]:
                found = True
            if info.is_dir() or rel is None:
                continue
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > (1 << 20) and ratio > ZIP_MAX_RATIO:
                raise ZipProblem(f"compression ratio too high for {info.filename!r} (zip bomb?)")
            try:
                sink.add(rel, _zip_chunks(zf, info), ZipProblem)
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as exc:
                raise ZipProblem(f"unreadable member {info.filename!r} ({type(exc).__name__})") from None
    return found


def _file_chunks(src):
    while True:
        chunk = src.read(CHUNK)
        if not chunk:
            return
        yield chunk


def _stage_tar(path, learner, assignment, sink):
    try:
        tf = tarfile.open(path, mode="r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ZipProblem(f"not a valid tar file ({exc.__class__.__name__})") from None
    found = False
    with tf:
        count = 0
        while True:
            try:
                member = tf.next()
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise ZipProblem(f"not a valid tar file ({exc.__class__.__name__})") from None
            if member is None:
                break
            count += 1
            if count > MAX_FILES:
                raise ZipProblem(f"more than {MAX_FILES} files in the tar")
            if member.offset_data + member.size > 2 * MAX_BYTES:
                raise ZipProblem(f"more than {2 * MAX_BYTES >> 20} MiB once unpacked (tar bomb?)")
            parts = _safe_parts(member.name, ZipProblem)
            if member.issym() or member.islnk():
                raise ZipProblem(f"link in tar: {member.name!r}")
            if not (member.isfile() or member.isdir()):
                raise ZipProblem(f"device, FIFO or special member in tar: {member.name!r}")
            try:
                tarfile.data_filter(member, "/nonexistent-dest")
            except tarfile.FilterError as exc:
                raise ZipProblem(f"unsafe member in tar: {member.name!r} ({type(exc).__name__})") from None
            if parts[:1] == [assignment] or parts[:2] == [learner, assignment]:
                found = True
            rel = _in_assignment(parts, learner, assignment)
            if member.isdir() or rel is None:
                continue
            src = tf.extractfile(member)
            try:
                sink.add(rel, _file_chunks(src), ZipProblem)
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise ZipProblem(f"unreadable member {member.name!r} ({type(exc).__name__})") from None
    return found


def stage(learner, assignment, dest=None):
    """Stage ``assignment`` of ``learner`` (a ``Learner``) into ``dest``; a ``Staged`` (never raises
    for anything a submission can do). With ``dest=None`` nothing is written (the hash only)."""
    if learner.problem:
        return Staged(None, learner.problem, _digest_of_status(learner.problem))
    sink = _Sink(dest)
    try:
        if learner.kind == "folder":
            found = _stage_folder(learner.path, assignment, sink)
        elif learner.kind == "zip":
            found = _stage_zip(learner.path, learner.name, assignment, sink)
        elif learner.kind == "tar":
            found = _stage_tar(learner.path, learner.name, assignment, sink)
        else:
            raise StagingProblem(f"invalid submission ({learner.kind})")
    except ZipProblem as exc:
        status = f"invalid {'tar' if learner.kind == 'tar' else 'zip'} ({exc})"
        return Staged(None, status, _digest_of_status(status))
    except StagingProblem as exc:
        return Staged(None, str(exc), _digest_of_status(str(exc)))
    if not found or sink.files == 0:
        return Staged(None, "missing", _digest_of_status("missing"))
    return Staged(sink.dest, None, sink.hash.hexdigest())


def _digest_of_status(status):
    return "status:" + hashlib.sha256(status.encode("utf-8", "surrogateescape")).hexdigest()


def extract_assignment(zip_path, learner, assignment, dest):
    """Extract ``assignment``'s folder from a learner's zip into ``dest`` safely; returns ``dest``.
    Raises ZipProblem for a refused archive (the older interface of ``stage``)."""
    sink = _Sink(dest)
    _stage_zip(zip_path, learner, assignment, sink)
    return Path(dest)


def source_digest(source_nb):
    """sha256 of the source notebook a job is graded against (a change of solutions/ regrades)."""
    try:
        return hashlib.sha256(Path(source_nb).read_bytes()).hexdigest()
    except OSError:
        return "unreadable"
