#!/usr/bin/env bash
# Debian packages the live experiments need: unshare (util-linux), ip (iproute2), nft (nftables);
# the proxy experiment also runs haproxy and curl.
# As root they are installed with apt-get; otherwise the exact command is printed and the
# course falls back to recorded outcomes for what cannot run live.
# The site test (`make test-site`) also needs a Chromium (Debian's chromium; Google Chrome does
# too), and the check that the model runs in Pyodide needs Node.js 18 or newer (Debian's
# nodejs); without them those tests are skipped, or fail in CI, and everything else works.
set -u
missing=()
python=${PYTHON:-python3}
# Debian splits venv (and the pip it bootstraps) out of the interpreter package.
if command -v "$python" >/dev/null 2>&1 && ! "$python" -c "import ensurepip, venv" >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
{ command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ]; } || missing+=(iproute2)
{ command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ]; } || missing+=(nftables)
# optional_package PACKAGE PURPOSE: what a test needs but the course does without.
optional_package() {
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian package for $2: $1"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >/dev/null; } \
      || echo "apt-get could not install $1: $2 will skip (or fail in CI)" >&2
  else
    echo "$2 needs the Debian package $1. Install it with:  sudo apt-get install -y $1"
  fi
}
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
   && ! command -v google-chrome >/dev/null 2>&1 && ! command -v google-chrome-stable >/dev/null 2>&1; then
  optional_package chromium "the site test (make test-site)"
fi
command -v node >/dev/null 2>&1 || optional_package nodejs "the Pyodide check in tests/site"
# The proxy-is-a-client experiment runs Debian's HAProxy and curl; without them it shows its recording.
{ command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ]; } || optional_package haproxy "the proxy experiment (proxy-is-a-client)"
command -v curl >/dev/null 2>&1 || optional_package curl "the proxy experiment's HTTP client (proxy-is-a-client)"
# tshark: the tests check `timewait analyze` and the site's pcaps against Wireshark's dissector.
# Its package asks whether non-root users may capture; answer no, without a prompt.
if ! command -v tshark >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v debconf-set-selections >/dev/null 2>&1; then
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  fi
  optional_package tshark "the capture checks against Wireshark (tests/test_analyze.py)"
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; } \
    || { echo "apt-get could not install ${missing[*]}" >&2; exit 1; }
else
  echo "The live experiments need these Debian packages: ${missing[*]}"
  echo "Install them with:  sudo apt-get install -y ${missing[*]}"
  echo "Until then, experiments that need them show their recorded outcomes."
fi
