#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright; install it if it is missing.
set -u
if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing chromium (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null && exit 0
fi
echo "chromium is not installed and cannot be installed here (need root and apt-get)" >&2
exit 1
