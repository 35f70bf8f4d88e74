#!/usr/bin/env bash
# Start the workshop hub that workshop/setup.sh built: workshop/start.sh [PORT] (default 8000, on 127.0.0.1).
# Runs in the foreground; Ctrl-C stops it. TG_HUB_STATE picks another setup's state (default /srv/taming-gradients).
set -euo pipefail
STATE=${TG_HUB_STATE:-/srv/taming-gradients}
[ -f "$STATE/hub.env" ] || { echo "error: run workshop/setup.sh first (no $STATE/hub.env)" >&2; exit 1; }
set -a; source "$STATE/hub.env"; set +a
export TG_HUB_PORT=${1:-${TG_HUB_PORT:-8000}}
cd "$TG_HUB_STATE"
exec "$TG_HUB_PREFIX/venv/bin/jupyterhub" -f "$TG_HUB_PREFIX/src/workshop/jupyterhub_config.py"
