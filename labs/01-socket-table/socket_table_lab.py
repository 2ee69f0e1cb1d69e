"""Support for the socket-table lab: a time limit for checks, fixtures, and a namespace run.

The namespace run opens a few sockets in a fresh private network namespace (a TIME_WAIT, an
ESTABLISHED pair, listeners, IPv6 and IPv4-mapped ones), then returns the raw text of
``/proc/net/tcp`` and ``/proc/net/tcp6`` together with what the course's engine parsed from
that same text.
"""

from __future__ import annotations

import os
import random
import socket

from timewait import observe
from timewait.labkit import lab_tier, run_in_namespace, time_limit  # noqa: F401

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
FIELDS = ("local", "remote", "state", "timer", "expires_s")


def comparable(rows) -> list:
    """Socket rows (dicts or SocketInfo) reduced to the fields the lab asks for."""
    out = []
    for row in rows:
        d = row if isinstance(row, dict) else row.to_dict()
        out.append(
            (tuple(d["local"]), tuple(d["remote"]), d["state"], d["timer"], round(float(d["expires_s"]), 6))
        )
    return out


def reference(text: str, clock_ticks: int = 100) -> list:
    return comparable(observe.parse_proc_net_tcp(text, clock_ticks))


# --- fixtures, written the way the kernel writes them (net/ipv4/tcp_ipv4.c, tcp_ipv6.c) ---
def hex_v4(addr: str) -> str:
    return f"{int.from_bytes(socket.inet_aton(addr), 'little'):08X}"


def hex_v6(addr: str) -> str:
    raw = socket.inet_pton(socket.AF_INET6, addr)
    return "".join(f"{int.from_bytes(raw[i : i + 4], 'little'):08X}" for i in range(0, 16, 4))


def kernel_line(slot, local, remote, state, timer=0, when=0, retransmits=0, v6=False) -> str:
    enc = hex_v6 if v6 else hex_v4
    return (
        f"{slot:4d}: {enc(local[0])}:{local[1]:04X} {enc(remote[0])}:{remote[1]:04X} "
        f"{state:02X} {0:08X}:{0:08X} {timer:02X}:{when:08X} {retransmits:08X} "
        f"{1000:5d} {0:8d} {12345 + slot} 1 0000000000000000 20 4 30 10 -1"
    )


def random_table(seed: int, rows: int = 12, v6: bool = False) -> str:
    """A table of random but well-formed rows: every state, timer and address kind."""
    rng = random.Random(seed)
    lines = [HEADER]
    for slot in range(rows):
        if v6:
            kind = rng.choice(["loopback", "mapped", "global", "any"])
            if kind == "loopback":
                addrs = ("::1", "::1")
            elif kind == "mapped":
                addrs = (
                    f"::ffff:10.{rng.randrange(256)}.{rng.randrange(256)}.1",
                    f"::ffff:192.168.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                )
            elif kind == "global":
                addrs = (
                    f"2001:db8:{rng.randrange(65536):x}::{rng.randrange(1, 65536):x}",
                    f"fe80::{rng.randrange(65536):x}:{rng.randrange(65536):x}",
                )
            else:
                addrs = ("::", "::")
        else:
            addrs = tuple(".".join(str(rng.randrange(256)) for _ in range(4)) for _ in range(2))
        state = rng.randrange(1, 13)
        timer = rng.choice([0, 0, 1, 2, 3, 4])
        when = rng.randrange(0, 12000) if timer else 0
        lines.append(
            kernel_line(
                slot,
                (addrs[0], rng.randrange(1, 65536)),
                (addrs[1], rng.randrange(0, 65536)),
                state,
                timer,
                when,
                rng.randrange(0, 5),
                v6,
            )
        )
    return "\n".join(lines) + "\n"


# --- the namespace run ----------------------------------------------------------------------
def observe_body(lab) -> dict:
    listener = lab.listener(5000)
    closed = lab.connect(5000, src_port=40000)
    peer, _ = listener.accept()
    lab.track(peer)
    lab.step("client closes first, so its side goes to TIME_WAIT")
    closed.close()
    peer.settimeout(5)
    peer.recv(10)
    peer.close()
    lab.wait_for(lambda: lab.state_of(40000, 5000) == "TIME_WAIT", "TIME_WAIT on port 40000")
    lab.connect(5000, src_port=40001)
    lab.track(listener.accept()[0])

    lab.step("an IPv6 connection on ::1 and an IPv4 client of a dual-stack listener")
    six = lab.track(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
    six.bind(("::", 5001))
    six.listen(4)
    c6 = lab.track(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
    c6.bind(("::1", 40002))
    c6.connect(("::1", 5001))
    lab.track(six.accept()[0])
    lab.connect(5001, src_port=40003)
    lab.track(six.accept()[0])

    texts = {}
    for name in ("tcp", "tcp6"):
        with open(f"/proc/net/{name}") as fh:
            texts[name] = fh.read()
    ticks = os.sysconf("SC_CLK_TCK")
    engine = {
        name: [s.to_dict() for s in observe.parse_proc_net_tcp(text, ticks)] for name, text in texts.items()
    }
    return {"texts": texts, "clock_ticks": ticks, "engine": engine}


def observe_namespace(timeout: float = 20.0) -> dict:
    """Run :func:`observe_body` in a fresh namespace."""
    return run_in_namespace(__file__, "observe_body", "reading a live socket table", timeout=timeout)
