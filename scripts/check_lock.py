#!/usr/bin/env python3
"""Check that the lock files still answer the requirements they were compiled from.

``requirements.txt`` (by hand) -> ``requirements.lock`` (what ``make setup`` installs), and
``binder/requirements.in`` (by hand) -> ``binder/requirements.txt`` (what Binder installs,
at the versions of ``requirements.lock``). Every requirement of an input must be pinned in
its lock at a version it allows, and Binder's pins must equal the main lock's. On a mismatch
it names the package and says to run ``make lock``; exit status 1.

    python scripts/check_lock.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PAIRS = (("requirements.txt", "requirements.lock"), ("binder/requirements.in", "binder/requirements.txt"))


def requirements(path: Path) -> list:
    """The requirements of a hand-written file (editable and option lines left out)."""
    found = []
    for line in path.read_text().splitlines():
        line = line.split(" #")[0].strip()
        if line and not line.startswith(("#", "-")):
            found.append(Requirement(line))
    return found


def pins(path: Path) -> dict:
    """``{canonical name: version}`` of a compiled lock file."""
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", line)
        if match:
            found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def problems(root: Path = ROOT) -> list:
    out = []
    for source, lock in PAIRS:
        pinned = pins(root / lock)
        for req in requirements(root / source):
            if req.marker is not None and not req.marker.evaluate({"python_version": "3.11"}):
                continue
            version = pinned.get(canonicalize_name(req.name))
            if version is None:
                out.append(f"{source} asks for {req}, which {lock} does not pin")
            elif not req.specifier.contains(version, prereleases=True):
                out.append(f"{source} asks for {req}, but {lock} pins {req.name}=={version}")
    main, binder = pins(root / PAIRS[0][1]), pins(root / PAIRS[1][1])
    for name, version in sorted(binder.items()):
        if main.get(name) != version:
            out.append(
                f"binder/requirements.txt pins {name}=={version}, requirements.lock "
                + (f"pins {name}=={main[name]}" if name in main else "does not")
            )
    return out


def main() -> int:
    found = problems()
    for p in found:
        print(f"lock files out of date: {p}", file=sys.stderr)
    if found:
        print("run `make lock` to compile them again, and commit them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
