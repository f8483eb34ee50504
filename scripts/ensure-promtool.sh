#!/usr/bin/env bash
# The alert rules are unit-tested with promtool (tests/test_monitoring.py), which comes with Debian's
# `prometheus` package. When it is missing, take promtool alone out of that package into
# /usr/local/bin: installing the whole package would also install, and may start, a Prometheus daemon.
set -u
if command -v promtool >/dev/null; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing promtool (from Debian's prometheus package)"
  work=$(mktemp -d)
  chmod a+rwx "$work"  # apt-get download fetches as the _apt user
  trap 'rm -rf "$work"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  if (cd "$work" && apt-get update -qq && apt-get download -qq prometheus) \
     && dpkg-deb -x "$work"/prometheus_*.deb "$work/root" \
     && install -m 0755 "$work/root/usr/bin/promtool" /usr/local/bin/promtool; then
    promtool --version >/dev/null && exit 0
  fi
fi
echo "promtool is not installed and cannot be installed here (need root and apt-get)" >&2
exit 1
