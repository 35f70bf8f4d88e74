#!/usr/bin/env bash
# Make sure Debian's chromium is present for the browser tests (tests/test_browser.py), which drive it
# with the Python playwright package (`playwright install` needs the internet; Debian's package does not).
# Installs it when missing and running as root with apt-get; otherwise says what is missing.
# In CI (CI set) a missing browser fails the run; elsewhere the browser tests report a visible skip.
# TG_CHROMIUM overrides the browser's path (default /usr/bin/chromium), as it does for the tests.
set -u
CHROMIUM="${TG_CHROMIUM:-/usr/bin/chromium}"
LOG="${TMPDIR:-/tmp}/tg-chromium-install.log"

works() {
  [ -x "$CHROMIUM" ] && "$CHROMIUM" --headless --no-sandbox --version >/dev/null 2>&1
}

if works; then exit 0; fi

if [ "$CHROMIUM" = /usr/bin/chromium ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium for the browser tests (log: $LOG) ..."
  : >"$LOG"
  for attempt in 1 2 3; do  # another apt-get may hold the dpkg lock for a while
    if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >>"$LOG" 2>&1 \
       && works; then
      echo "chromium installed: $("$CHROMIUM" --version 2>/dev/null)"
      exit 0
    fi
    echo "attempt $attempt failed; retrying ..." >>"$LOG"
    sleep $((attempt * 10))
  done
  echo "error: could not install chromium; the end of $LOG:" >&2
  tail -n 15 "$LOG" >&2
else
  echo "warning: $CHROMIUM is missing or does not run, and it cannot be installed here" \
       "(needs root and apt-get: apt-get install chromium)" >&2
fi

if [ -n "${CI:-}" ]; then
  echo "error: CI needs a working $CHROMIUM for the browser tests" >&2
  exit 1
fi
echo "the browser tests will be skipped (see pytest's summary)" >&2
exit 0
