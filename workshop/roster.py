"""The workshop's roster: who has an account on the hub, and as what.

A roster is a CSV file with a header line ``username,role``; ``role`` is ``instructor`` or ``learner``;
blank lines and lines starting with ``#`` are ignored. Usernames are Unix login names (lower case, they
become accounts made with ``useradd``). At least one instructor. See roster.example.csv.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

ROLES = ("instructor", "learner")
USERNAME = re.compile(r"[a-z_][a-z0-9_-]{0,30}")
# Accounts a roster may not name: the system's own (a workshop roster never takes over root or a daemon).
RESERVED = frozenset({"root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
                      "proxy", "www-data", "backup", "list", "irc", "nobody", "systemd-network", "sshd"})


class RosterError(ValueError):
    """A roster that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Member:
    username: str
    role: str


def parse_roster(text: str, name: str = "roster") -> list[Member]:
    """The members of a roster given as text; raises RosterError with the line number on bad input."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise RosterError(f"{name}: empty (expected a header line 'username,role')")
    header_no, header = lines[0]
    if [h.strip().lower() for h in next(csv.reader([header]))] != ["username", "role"]:
        raise RosterError(f"{name}:{header_no}: the header must be 'username,role', got {header.strip()!r}")
    members, seen = [], set()
    for n, line in lines[1:]:
        fields = [f.strip() for f in next(csv.reader([line]))]
        if len(fields) != 2:
            raise RosterError(f"{name}:{n}: expected 'username,role', got {line.strip()!r}")
        username, role = fields[0], fields[1].lower()
        if not USERNAME.fullmatch(username):
            raise RosterError(f"{name}:{n}: {username!r} is not a valid login name "
                              "(lower case letters, digits, '_' or '-', starting with a letter or '_', <= 31)")
        if username in RESERVED:
            raise RosterError(f"{name}:{n}: {username!r} is a system account")
        if role not in ROLES:
            raise RosterError(f"{name}:{n}: role {fields[1]!r} is not one of {', '.join(ROLES)}")
        if username in seen:
            raise RosterError(f"{name}:{n}: {username!r} is listed twice")
        seen.add(username)
        members.append(Member(username, role))
    if not any(m.role == "instructor" for m in members):
        raise RosterError(f"{name}: no instructor (at least one member needs the role 'instructor')")
    return members


def read_roster(path) -> list[Member]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RosterError(f"{path}: cannot read the roster ({exc.strerror})") from None
    return parse_roster(text, str(path))


def write_roster(members, path) -> None:
    lines = ["username,role"] + [f"{m.username},{m.role}" for m in members]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
