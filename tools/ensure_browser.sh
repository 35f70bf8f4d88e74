#!/usr/bin/env bash
# Make sure Debian's chromium is present for the browser tests. Installs it when missing and running
# as root; otherwise says what is missing. In CI a missing browser fails the run; elsewhere the browser
# tests report a visible skip.
set -u
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "installing Debian's chromium for the browser tests ..."
  if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/tmp/tg-chromium-install.log 2>&1; then
    exit 0
  fi
  echo "error: could not install chromium (see /tmp/tg-chromium-install.log)" >&2
else
  echo "warning: /usr/bin/chromium is missing and cannot be installed (not root or no apt-get)" >&2
fi
if [ -n "${CI:-}" ]; then
  echo "error: CI needs /usr/bin/chromium for the browser tests" >&2
  exit 1
fi
exit 0
