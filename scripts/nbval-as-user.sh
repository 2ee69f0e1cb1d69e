#!/usr/bin/env bash
# Re-run the notebook checks as an unprivileged user, as a reader (or Binder) would run them:
# the experiments must work without root, inside their own user+network namespace.
set -eu
if [ "$(id -u)" -ne 0 ]; then
  echo "test-notebooks already ran as the unprivileged user $(id -un); nothing more to do"
  exit 0
fi
user=nobody
home=$(mktemp -d /tmp/timewait-user.XXXXXX)
chown "$user" "$home"
chmod 755 "$home"
trap 'rm -rf "$home"' EXIT
# The repository and its venv must be readable by that user.
if ! setpriv --reuid="$user" --regid=nogroup --clear-groups test -r .venv/bin/python; then
  echo "the user $user cannot read .venv/bin/python; make the checkout world-readable" >&2
  exit 1
fi
cd "$(dirname "$0")/.."
setpriv --reuid="$user" --regid=nogroup --clear-groups \
  env -i PATH=/usr/bin:/bin:/usr/sbin HOME="$home" MPLCONFIGDIR="$home/mpl" \
      JUPYTER_RUNTIME_DIR="$home/rt" IPYTHONDIR="$home/ipy" PYTHONDONTWRITEBYTECODE=1 \
  .venv/bin/python -m pytest --nbval notebooks -q -n 2 --dist loadscope \
      --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=120 \
      -p no:cacheprovider -o cache_dir="$home/cache"
