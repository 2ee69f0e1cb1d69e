"""Capability tiers: what this machine lets the course run live.

- ``full``: Linux with unprivileged user+network namespaces, ``ip`` and ``nft``; every
  experiment runs live in a private namespace.
- ``host``: Linux sockets but no private namespace; experiments that need no sysctl, no
  firewall rule and no packet capture run on the host loopback, the rest are recorded.
- ``none``: no Linux sockets; recorded outcomes and simulations only.

``TIMEWAIT_TIER=host`` (or ``none``) forces a lower tier, e.g. to see what Binder users
without namespaces see. A tier can be lowered, never raised.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache

TIER_ORDER = ("none", "host", "full")
ENV_VAR = "TIMEWAIT_TIER"


@dataclass(frozen=True)
class Tier:
    name: str  # "full", "host" or "none"
    reason: str  # plain words: why this tier

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"

    def at_least(self, name: str) -> bool:
        return TIER_ORDER.index(self.name) >= TIER_ORDER.index(name)


def _namespace_works() -> tuple:
    unshare = shutil.which("unshare")
    if not unshare:
        return False, "the `unshare` command is missing (Debian package util-linux)"
    try:
        proc = subprocess.run(
            [unshare, "-rn", "--", "sh", "-c", "echo 0 > /proc/sys/net/ipv4/tcp_fin_timeout"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"`unshare -rn` could not start ({exc})"
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no detail"
        if "No space left on device" in detail:  # ENOSPC: a user-namespace limit is reached
            advice = (
                "user.max_user_namespaces allows no more user namespaces here (it may be "
                "0); an administrator can raise it with `sysctl user.max_user_namespaces=N`"
            )
        else:
            advice = (
                "on Debian/Ubuntu an administrator can allow it with "
                "`sysctl kernel.unprivileged_userns_clone=1` or by relaxing AppArmor's "
                "user-namespace restriction"
            )
        return False, (
            "this kernel does not let an unprivileged user create a user+network "
            f"namespace (`unshare -rn` failed: {detail}); {advice}"
        )
    return True, ""


@lru_cache(maxsize=1)
def _detected() -> Tier:
    if not sys.platform.startswith("linux"):
        return Tier("none", f"this is {sys.platform}, not Linux: the experiments need a Linux kernel")
    ok, why = _namespace_works()
    if not ok:
        return Tier("host", why)
    missing = [tool for tool in ("ip", "nft") if find_tool(tool) is None]
    if missing:
        pkgs = " ".join({"ip": "iproute2", "nft": "nftables"}[m] for m in missing)
        return Tier(
            "host",
            f"the command(s) {', '.join(missing)} are missing (install with `sudo apt-get install {pkgs}`)",
        )
    return Tier("full", "private user+network namespaces, nftables and packet capture are available")


TOPOLOGY_CHECK = """
unshare -n -- sleep 10 & holder=$!
trap 'kill $holder' EXIT
sleep 0.1
ip link add tw0 type veth peer name tw1 netns $holder || exit 3
nft add table ip nat && nft add chain ip nat post '{ type nat hook postrouting priority srcnat; }' \
  && nft add rule ip nat post masquerade || exit 4
nsenter --net=/proc/$holder/ns/net -- sh -c \
  'nft add table ip t && test -r /proc/net/nf_conntrack' || exit 5
"""
TOPOLOGY_FAILURES = {
    3: "this kernel will not make a veth pair between two namespaces (module veth missing?)",
    4: "nftables cannot add a NAT rule here (kernel modules nf_nat/nft_masq missing?)",
    5: "connection tracking (/proc/net/nf_conntrack) cannot be read in a host's namespace",
}


@lru_cache(maxsize=1)
def topology_support() -> tuple:
    """``(True, "")`` when a private namespace can hold further namespaces joined by veth
    links, with NAT and connection tracking (Part III's topologies); else ``(False, why)``.
    A machine can be at the full tier and still lack these.

    Conntrack is read in a host's namespace, made inside the private one: an unprivileged
    user cannot read the first namespace's /proc/net/nf_conntrack, which was made before its
    user namespace had a uid mapping and so belongs to the real root."""
    tier = detect_tier()
    if tier.name != "full":
        return False, tier.reason
    try:
        proc = subprocess.run(
            ["unshare", "-rn", "--", "sh", "-c", TOPOLOGY_CHECK],
            capture_output=True,
            text=True,
            timeout=20,
            env={**os.environ, "PATH": os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"a topology of namespaces could not be built ({exc})"
    if proc.returncode != 0:
        why = TOPOLOGY_FAILURES.get(proc.returncode, f"the check exited with {proc.returncode}")
        detail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no detail"
        return False, f"one private namespace works, but not a topology: {why} ({detail})"
    return True, ""


def check_forced_tier() -> str:
    """The tier ``TIMEWAIT_TIER`` asks for, "" when it is unset or empty; a ValueError naming
    the variable and its valid values for anything else."""
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced and forced not in TIER_ORDER:
        shown = forced if len(forced) <= 40 else forced[:40] + "..."
        raise ValueError(f"{ENV_VAR}: must be one of {', '.join(TIER_ORDER)}, got {shown!r}")
    return forced


def detect_tier() -> Tier:
    """The tier this process may use: detected once, then lowered by ``TIMEWAIT_TIER``."""
    tier = _detected()
    forced = check_forced_tier()
    if not forced:
        return tier
    if TIER_ORDER.index(forced) < TIER_ORDER.index(tier.name):
        return Tier(forced, f"lowered from {tier.name} by {ENV_VAR}={forced}")
    return tier


def find_tool(name: str):
    """Full path of a command such as ``ip``, ``nft`` or ``ss``, ``None`` if it is missing. They
    live in /usr/sbin or /sbin, often off an unprivileged user's PATH."""
    return shutil.which(name) or next(
        (f"{d}/{name}" for d in ("/usr/sbin", "/sbin") if os.path.exists(f"{d}/{name}")), None
    )


def tool_path(name: str) -> str:
    """Full path of a command (:func:`find_tool`); RuntimeError if it is missing."""
    found = find_tool(name)
    if not found:
        raise RuntimeError(f"the `{name}` command is missing")
    return found
