"""The Dask backend of ``make grade ... SCHEDULER=tcp://host:8786``: one task per learner x assignment.

Needs the optional ``cluster`` extra (dask and distributed). The client (``grade_all`` with
``scheduler=``) stages each submission itself, as ``make grade`` does (nothing followed), and sends it
as bytes: a tar of the staged assignment folder. A worker (``dask worker tcp://host:8786``, started
from a checkout of the course with its virtual environment) runs ``grade_task``: it writes that tar
into a private scratch folder and grades it with the very ``grade-one`` process of the local batch
(its own session, ``RLIMIT_AS``, death signal, the sandbox), forked from the worker thread's zygote
(``autograder.zygote``, kept from task to task), then returns the result JSON. Only the client
writes OUT.

Trust between them: every worker proves it grades against the same solutions/ as the client (a
digest of the source tree, ``tree_digest``) and reports its sandbox mode. Before anything is sent the
client asks every worker (``Client.run``) and refuses the batch if one has another solutions/ or a
sandbox weaker than ``root`` mode (unless ``allow_weak_sandbox``); each task checks again on the
worker that runs it (a worker may join later), and a refused task gives a non-final row that the
next run grades again.

A worker that dies mid-batch costs nothing: the scheduler runs its tasks on another worker (its
``grade-one`` process dies with it: the death signal), and the client writes each job's result once,
when its future completes.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import threading
from dataclasses import asdict
from pathlib import Path

from .paths import ROOT

MODE_RANK = {"root": 3, "userns-chroot": 2, "userns": 1, "rlimits": 0}
STRONG_MODE = "root"


def tree_digest(source):
    """sha256 of every file under ``source`` (relative paths and contents; hidden entries and caches
    skipped): the solutions/ a worker grades against."""
    source = Path(source)
    h = hashlib.sha256()
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if any(p.startswith(".") or p == "__pycache__" for p in rel.parts) or not path.is_file():
            continue
        name = rel.as_posix().encode()
        data = path.read_bytes()
        h.update(len(name).to_bytes(4, "big") + name + len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def _source_ref(source):
    """How a worker finds ``source``: relative to its own checkout when it is inside the client's."""
    source = Path(source).resolve()
    try:
        return source.relative_to(ROOT).as_posix()
    except ValueError:
        return str(source)


def _resolve(ref):
    path = Path(ref)
    return path if path.is_absolute() else ROOT / path


def weak(mode):
    return MODE_RANK.get(mode, -1) < MODE_RANK[STRONG_MODE]


def probe(source_ref):
    """On a worker: its solutions/ digest and sandbox mode."""
    from .sandbox import detect_mode

    return {"digest": tree_digest(_resolve(source_ref)), "mode": detect_mode(), "pid": os.getpid()}


def pack(folder, assignment):
    """The staged assignment ``folder`` as tar bytes holding ``<assignment>/...`` (regular files only,
    owner and times zeroed)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                raise ValueError(f"not a regular file in a staged folder: {path}")
            info = tf.gettarinfo(str(path), arcname=f"{assignment}/{path.relative_to(folder).as_posix()}")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if path.is_file():
                with open(path, "rb") as f:
                    tf.addfile(info, f)
            else:
                tf.addfile(info)
    return buf.getvalue()


_ZYGOTES = threading.local()  # each worker thread's zygote (autograder.zygote), kept from task to task


def grade_task(payload, learner, assignment, source_ref, expected_digest, limits, worker_memory, allow_weak):
    """On a worker: grade one submission (tar bytes) with ``grade-one``; returns a dict with the result
    (or ``refused``), the worker's digest, mode and pid."""
    from .batch import _Runner
    from .job import load_result, result_path
    from .sandbox import Limits, scratch_dir

    info = probe(source_ref)
    if info["digest"] != expected_digest:
        return info | {"refused": "worker refused: its solutions/ differ from the client's"}
    if weak(info["mode"]) and not allow_weak:
        return info | {"refused": f"worker refused: sandbox mode {info['mode']} is weaker than {STRONG_MODE}"}
    tmp = scratch_dir("job")
    try:
        subs, out = tmp / "submitted", tmp / "out"
        subs.mkdir()
        (subs / f"{learner}.tar").write_bytes(payload)
        from .paths import assignments, notebook_path
        from .zygote import preloads

        source = _resolve(source_ref)
        runner = _Runner(subs, out, source, Limits(**limits), info["mode"], worker_memory,
                         preload=preloads(notebook_path(a, source) for a in assignments(source)), kept=_ZYGOTES)
        returncode, err, elapsed = runner.run(learner, assignment)
        result = load_result(result_path(out, learner, assignment)) if returncode == 0 else None
        return info | {"result": result, "returncode": returncode, "stderr_tail": err, "elapsed_s": elapsed}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def connect(scheduler, timeout=30):
    try:
        from distributed import Client
    except ImportError:
        raise SystemExit("error: SCHEDULER needs the cluster extra: pip install -e '.[cluster]'") from None
    try:
        return Client(scheduler, timeout=timeout, set_as_default=False)
    except OSError as exc:
        raise SystemExit(f"error: cannot reach the Dask scheduler {scheduler}: {exc}") from None


def check_workers(client, source_ref, expected_digest, allow_weak):
    """Every worker's digest and mode; SystemExit naming the workers to refuse."""
    infos = client.run(probe, source_ref)
    if not infos:
        raise SystemExit("error: the Dask scheduler has no workers")
    bad = []
    for addr, info in sorted(infos.items()):
        if info["digest"] != expected_digest:
            bad.append(f"{addr}: its solutions/ differ from the client's")
        elif weak(info["mode"]) and not allow_weak:
            bad.append(f"{addr}: sandbox mode {info['mode']} is weaker than {STRONG_MODE} (--allow-weak-sandbox)")
    if bad:
        raise SystemExit("error: refused worker(s): " + "; ".join(bad))
    return infos


def grade_on_cluster(scheduler, jobs, source, limits, worker_memory, *, allow_weak=False, log=print):
    """Run ``jobs`` (learner, assignment, staged folder) on the cluster; yields (learner, assignment,
    reply) once per job as each finishes: ``reply`` is ``grade_task``'s dict, or ``{"error": text}``."""
    from distributed import as_completed

    source_ref = _source_ref(source)
    expected = tree_digest(source)
    client = connect(scheduler)
    try:
        infos = check_workers(client, source_ref, expected, allow_weak)
        log(f"Dask scheduler {scheduler}: {len(infos)} worker(s), sandbox mode(s) "
            + ", ".join(sorted({i['mode'] for i in infos.values()})))
        futures = {}
        for learner, assignment, folder in jobs:
            fut = client.submit(grade_task, pack(folder, assignment), learner, assignment, source_ref, expected,
                                asdict(limits), worker_memory, allow_weak, pure=False,
                                key=f"grade-{learner}-{assignment}-{os.urandom(4).hex()}")
            futures[fut] = (learner, assignment)
        seen = set()
        for fut in as_completed(list(futures), loop=client.loop):
            learner, assignment = futures[fut]
            if (learner, assignment) in seen:  # cannot happen: one future per job
                continue
            seen.add((learner, assignment))
            try:
                reply = fut.result()
            except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker after repeated deaths
                reply = {"error": f"grader error (cluster task failed: {type(exc).__name__})"}
            yield learner, assignment, reply
    finally:
        client.close()
