#!/usr/bin/env bash
# Build (or refresh) a workshop JupyterHub on this machine, as root. `make hub` runs this, then starts
# the hub; tests/test_workshop.py runs it too. Everything comes from the project's own files:
#
#   PREFIX  (/opt/taming-gradients)   readable by every user: the course's environment, a Python venv made
#                                     from Debian's /usr/bin/python3.11 (the project installed non-editable,
#                                     pinned by pyproject.toml, with the [hub] extra), configurable-http-proxy
#                                     from npm (pinned below), the hub's configuration and the course files
#   STATE   (/srv/taming-gradients)   root only (700): the hub's database, cookie secret, passwords.csv
#   EXCHANGE (/srv/nbgrader/exchange) nbgrader's exchange, writable by all (as nbgrader's docs set it up)
#
# Usage: workshop/setup.sh ROSTER     (ROSTER: workshop/roster.example.csv's format)
# The environment is cached: it is rebuilt only when pyproject.toml changes (the project's own code is
# reinstalled each time, which takes seconds).
set -euo pipefail

ROSTER=${1:?usage: workshop/setup.sh ROSTER.csv}
PREFIX=${TG_HUB_PREFIX:-/opt/taming-gradients}
STATE=${TG_HUB_STATE:-/srv/taming-gradients}
EXCHANGE=${TG_HUB_EXCHANGE:-/srv/nbgrader/exchange}
PYTHON=${TG_HUB_PYTHON:-/usr/bin/python3.11}
CHP_VERSION=5.3.0
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")

[ "$(id -u)" = 0 ] || { echo "error: workshop/setup.sh makes user accounts: run it as root" >&2; exit 1; }
# The system packages the hub needs, from Debian when missing: Python 3.11 with venv, and npm (for
# configurable-http-proxy). Nothing else is installed outside PREFIX.
apt_install() {
    command -v apt-get >/dev/null || { echo "error: $* missing, and no apt-get to install it" >&2; exit 1; }
    echo "installing Debian's $* ..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@") >/dev/null
}
if [ "$PYTHON" = /usr/bin/python3.11 ] && ! { [ -x "$PYTHON" ] && "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; }; then
    apt_install python3.11 python3.11-venv
fi
[ -x "$PYTHON" ] || { echo "error: $PYTHON not found (Debian: apt-get install python3.11-venv)" >&2; exit 1; }
command -v npm >/dev/null || apt_install npm
[ -f "$ROSTER" ] || { echo "error: roster $ROSTER not found" >&2; exit 1; }
case "$PREFIX" in /root|/root/*) echo "error: $PREFIX is under /root, which other users cannot read" >&2; exit 1;; esac
umask 022

# 1. The course files, copied where every user can read them (the repository may live under /root).
mkdir -p "$PREFIX"
chmod 755 "$PREFIX"
rm -rf "$PREFIX/src.new"
mkdir -p "$PREFIX/src.new"
for p in pyproject.toml README.md LICENSE autograder course solutions workshop; do
    cp -a "$REPO/$p" "$PREFIX/src.new/"
done
find "$PREFIX/src.new" \( -name __pycache__ -o -name .ipynb_checkpoints -o -name '*.egg-info' \) -prune \
    -exec rm -rf {} +
rm -rf "$PREFIX/src" && mv "$PREFIX/src.new" "$PREFIX/src"
# solutions/ (hidden tests) is for the instructor's copy only: not readable by learners.
chmod 700 "$PREFIX/src/solutions"

# 2. The environment: a venv from Debian's Python, the pinned dependencies, the project non-editable.
VENV="$PREFIX/venv"
# The cache key: the pins this environment installs (the dependencies and the hub extra), nothing else.
DEPS_KEY=$("$PYTHON" -c 'import sys, tomllib; p = tomllib.load(open(sys.argv[1], "rb"))["project"]
print(sorted(p["dependencies"]), sorted(p["optional-dependencies"]["hub"]))' "$REPO/pyproject.toml" \
    | sha256sum | cut -c1-16)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.deps-key" 2>/dev/null)" != "$DEPS_KEY" ]; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    # Installs every pinned dependency (torch==2.13.0 comes from the CPU wheel on this disk).
    "$VENV/bin/python" -m pip install --quiet "$PREFIX/src[hub]"
    echo "$DEPS_KEY" > "$VENV/.deps-key"
else
    "$VENV/bin/python" -m pip install --quiet --no-deps --force-reinstall "$PREFIX/src"
fi
rm -rf "$PREFIX/src/build" "$PREFIX/src"/*.egg-info

# 3. configurable-http-proxy, pinned, from npm.
if [ "$("$PREFIX/node/bin/configurable-http-proxy" --version 2>/dev/null)" != "$CHP_VERSION" ]; then
    rm -rf "$PREFIX/node"
    npm install --silent --global --prefix "$PREFIX/node" "configurable-http-proxy@$CHP_VERSION"
fi

# 4. The servers' configuration (learner, instructor), readable by all.
mkdir -p "$PREFIX/etc"
cp -a "$HERE/config/." "$PREFIX/etc/"
chmod -R a+rX "$PREFIX"
chmod 700 "$PREFIX/src/solutions"

# 4b. Login shells (a JupyterLab terminal is one) get the course's environment first on PATH: Debian's
# /etc/profile resets PATH, which would leave an instructor's terminal without nbgrader (and nbgrader
# without alembic). Only inside the hub's servers (JUPYTERHUB_USER set). The Littlest JupyterHub, too,
# puts its user environment on every login shell's PATH.
cat > /etc/profile.d/taming-gradients.sh <<'PROFILE'
# Written by Taming Gradients' workshop/setup.sh: the course's environment first in a hub server's login
# shells. TG_COURSE_BIN comes from the spawner (workshop/jupyterhub_config.py), so several hubs can share it.
if [ -n "${JUPYTERHUB_USER:-}" ] && [ -n "${TG_COURSE_BIN:-}" ]; then
    case ":$PATH:" in *":$TG_COURSE_BIN:"*) ;; *) PATH="$TG_COURSE_BIN:$PATH"; export PATH;; esac
fi
PROFILE
chmod 644 /etc/profile.d/taming-gradients.sh

# 5. The hub's private state (start.sh reads hub.env from there) and nbgrader's exchange.
mkdir -p "$STATE" "$EXCHANGE"
chmod 700 "$STATE"
chmod 777 "$EXCHANGE"
cat > "$STATE/hub.env" <<ENV
TG_HUB_PREFIX=$PREFIX
TG_HUB_STATE=$STATE
TG_HUB_EXCHANGE=$EXCHANGE
TG_HUB_ROSTER=$STATE/roster.csv
ENV

# 6. The accounts, from the roster; the instructor's course directory.
"$VENV/bin/python" "$HERE/accounts.py" "$ROSTER" --state "$STATE" --prefix "$PREFIX"
echo "workshop hub ready: $PREFIX (environment), $STATE (state, passwords.csv), $EXCHANGE (exchange)"
