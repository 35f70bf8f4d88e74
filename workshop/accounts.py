"""Make (or remove) the workshop's accounts from a roster, as root. Called by workshop/setup.sh.

    accounts.py ROSTER --state STATE --prefix PREFIX     make the accounts that are missing
    accounts.py --remove --state STATE                   remove the accounts this STATE made (and their homes)

Each account that does not exist yet is made with ``useradd`` and a random password, which is written
to STATE/passwords.csv (mode 600). Every member's home is closed to other users (``chmod 700``, as The
Littlest JupyterHub does). Each instructor gets a course directory, ~/taming-gradients (solutions/,
course/, submitted/, feedback/, gradebook.db), copied from PREFIX/src once and then left as theirs.
STATE/roster.csv is the roster the hub reads (who may log in, who is an instructor); STATE/created-users
lists the accounts made here, so that ``--remove`` removes exactly those.
"""

from __future__ import annotations

import argparse
import os
import pwd
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from roster import RosterError, read_roster, write_roster  # noqa: E402

COURSE_DIR = "taming-gradients"


def _exists(username):
    try:
        pwd.getpwnam(username)
        return True
    except KeyError:
        return False


def _run(*cmd, stdin=None):
    subprocess.run(cmd, input=stdin, text=True, check=True, stdout=subprocess.DEVNULL)


def make_accounts(roster, state, prefix):
    state = Path(state)
    members = read_roster(roster)
    created = state / "created-users"
    made = set(created.read_text().split()) if created.exists() else set()
    passwords = state / "passwords.csv"
    fresh = []
    for m in members:
        if not _exists(m.username):
            _run("useradd", "--create-home", "--shell", "/bin/bash", "--user-group", m.username)
            password = secrets.token_urlsafe(12)
            _run("chpasswd", stdin=f"{m.username}:{password}\n")
            fresh.append((m.username, password))
            made.add(m.username)
            created.write_text("\n".join(sorted(made)) + "\n")
        home = Path(pwd.getpwnam(m.username).pw_dir)
        home.mkdir(parents=True, exist_ok=True)
        os.chmod(home, 0o700)
        if m.role == "instructor":
            _course_directory(m.username, home, Path(prefix))
    if fresh:
        new = not passwords.exists()
        fd = os.open(passwords, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as fh:
            if new:
                fh.write("username,password\n")
            fh.writelines(f"{u},{p}\n" for u, p in fresh)
    os.chmod(passwords, 0o600) if passwords.exists() else None
    write_roster(members, state / "roster.csv")
    os.chmod(state / "roster.csv", 0o644)
    for u, _ in fresh:
        print(f"made account {u} (password in {passwords})")


def _course_directory(username, home, prefix):
    """~/taming-gradients for an instructor: a copy of solutions/ and course/ that is theirs from then on."""
    course = home / COURSE_DIR
    if course.exists():
        return
    course.mkdir()
    for name in ("solutions", "course"):
        shutil.copytree(prefix / "src" / name, course / name)
    _run("chown", "-R", f"{username}:{pwd.getpwnam(username).pw_gid}", str(course))
    os.chmod(course, 0o700)


def remove_accounts(state):
    created = Path(state) / "created-users"
    if not created.exists():
        return
    for username in created.read_text().split():
        if _exists(username):
            subprocess.run(["pkill", "-KILL", "-u", username], check=False)
            subprocess.run(["userdel", "--remove", username], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            print(f"removed account {username}")
    created.unlink()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("roster", nargs="?")
    parser.add_argument("--state", required=True)
    parser.add_argument("--prefix", default="/opt/taming-gradients")
    parser.add_argument("--remove", action="store_true")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        parser.error("makes and removes user accounts: run as root")
    if args.remove:
        remove_accounts(args.state)
        return 0
    if not args.roster:
        parser.error("give the roster file")
    try:
        make_accounts(args.roster, args.state, args.prefix)
    except RosterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
