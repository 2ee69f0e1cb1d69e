#!/usr/bin/env bash
# Debian packages the live experiments need: unshare (util-linux), ip (iproute2), nft (nftables).
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
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
   && ! command -v google-chrome >/dev/null 2>&1 && ! command -v google-chrome-stable >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian package for the site test: chromium"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } \
      || echo "apt-get could not install chromium: \`make test-site\` will skip (or fail in CI)" >&2
  else
    echo "The site test (make test-site) needs Chromium. Install it with:  sudo apt-get install -y chromium"
  fi
fi
if ! command -v node >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian package for the Pyodide check: nodejs"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs >/dev/null; } \
      || echo "apt-get could not install nodejs: the Pyodide check in tests/site will skip (or fail in CI)" >&2
  else
    echo "The Pyodide check in tests/site needs Node.js 18+. Install it with:  sudo apt-get install -y nodejs"
  fi
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
