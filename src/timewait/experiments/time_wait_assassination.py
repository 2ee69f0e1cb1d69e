"""time-wait-assassination: an in-window RST reaches a TIME_WAIT socket (RFC 1337).

After an ordinary close the client sits in TIME_WAIT. A RST then arrives with exactly the
sequence number TIME_WAIT expects (the server's FIN seq + 1), as a stray reset from the old
connection would. It is crafted from the captured FIN of the server. With
``net.ipv4.tcp_rfc1337=0`` (Linux's default) the RST kills the TIME_WAIT socket at once and
the 4-tuple is free again; with ``tcp_rfc1337=1`` the kernel ignores it and TIME_WAIT runs
its full course.

With ``trigger="retransmitted-fin"`` nothing is crafted but a copy of the server's FIN, sent
again as a retransmission would be, after the server's kernel has forgotten the connection
(its socket went from LAST_ACK to CLOSED when TIME_WAIT's ACK arrived). TIME_WAIT answers the
FIN with an ACK; the server's kernel, which has no socket for the 4-tuple, answers that ACK
with a RST whose sequence number is the ACK's acknowledgement number: exactly what TIME_WAIT
expects. The reset is then the one that decides, as above.

Then the client connects again from the same port, as a client with a fixed source port
would. Neither socket sets SO_REUSEADDR, so bind() fails while the TIME_WAIT socket lives.
(With SO_REUSEADDR and timestamps on, Linux lets an explicitly bound connect() take over a
TIME_WAIT 4-tuple whatever tcp_tw_reuse says.) ``family=6`` runs it over IPv6, on ``::1``; the
crafted segments go out through :meth:`timewait.lab.Lab.deliver`, over either family.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Optional

from ..faults import Match
from ..observe import counter_delta, ss_text
from .base import Experiment, ExperimentResult, Param, register, shown
from .common import try_port

SERVER_PORT = 5000
CLIENT_PORT = 40000


@dataclass(kw_only=True)
class TimeWaitAssassinationResult(ExperimentResult):
    QUIET_OPTIONS = {"family": 4}  # an IPv4 run reads as before IPv6 was an option

    time_wait_survived: bool = shown()
    reply_to_rst: Optional[str] = shown()  # what the TIME_WAIT socket sent back, if anything
    reply_to_fin: Optional[str] = shown()  # trigger="retransmitted-fin": TIME_WAIT's answer
    peer_reply: Optional[str] = shown()  # trigger="retransmitted-fin": the server's answer to it
    reconnect: str = shown()  # same source port, at once: "ok" or the errno name of bind/connect
    reusable_after_s: Optional[float]  # 0 if at once; else TIME_WAIT's remaining time
    time_wait_timer_s: Optional[int]  # remaining, whole seconds rounded up
    counters: dict
    socket_table: str = shown()  # after the RST


def _flags_after(lab, sent_at: float, src_port: int) -> Optional[str]:
    replies = [v for v in lab.segments(start=sent_at) if v.src[1] == src_port]
    return replies[0].flags if replies else None


def body(lab, rfc1337: int, trigger: str = "rst", family: int = 4) -> dict:
    lab.use_family(family)
    lab.start_capture()
    listener = lab.listener(SERVER_PORT)
    client, server = lab.accepted(listener, CLIENT_PORT)

    lab.step("closing: client first, so the client keeps TIME_WAIT")
    client.close()
    server.settimeout(5)
    assert server.recv(100) == b""
    server.close()
    lab.wait_for(
        lambda: (
            lab.state_of(CLIENT_PORT, SERVER_PORT) == "TIME_WAIT"
            and lab.state_of(SERVER_PORT, CLIENT_PORT) == "CLOSED"
        ),
        "the client to reach TIME_WAIT",
    )
    fin = lab.wait_for_segment(Match(src_port=SERVER_PORT, flags="FIN|ACK"), "the server's FIN")

    before = lab.counters()
    sent_at = lab.now()
    if trigger == "rst":
        lab.step("a RST with the expected sequence number reaches TIME_WAIT")
        lab.deliver(fin, flags="R", seq=(fin.seq + 1) % 2**32, ack=0)
        time.sleep(0.1)
        reply_to_rst, reply_to_fin, peer_reply = _flags_after(lab, sent_at, CLIENT_PORT), None, None
    else:
        lab.step("the server's FIN arrives again, as a retransmission would")
        lab.deliver(fin)
        lab.wait_for_segment(Match(src_port=CLIENT_PORT), "TIME_WAIT's answer to the FIN", after=sent_at)
        # The server's kernel answers at once if it answers at all; 0.3 s is ample.
        time.sleep(0.3)
        reply_to_rst = None
        reply_to_fin = _flags_after(lab, sent_at, CLIENT_PORT)
        peer_reply = next(
            (v.flags for v in lab.segments(start=sent_at) if v.src[1] == SERVER_PORT and v.seq != fin.seq),
            None,
        )
    table = lab.sockets([SERVER_PORT])
    tw = [s for s in table if s.state == "TIME_WAIT"]
    counters = counter_delta(before, lab.counters())
    checked_at = lab.now()
    reconnect = try_port(CLIENT_PORT, SERVER_PORT, timeout=2, address=lab.address) or "ok"
    time.sleep(0.05)
    trace = lab.trace(CLIENT_PORT, SERVER_PORT, end=checked_at).to_dicts()
    if trigger == "rst":
        for row in trace:
            if row["flags"] == "RST" and row["src"] == "server":
                row["note"] = "crafted"
    else:
        fins = [row for row in trace if "FIN" in row["flags"] and row["src"] == "server"]
        fins[-1]["note"] = "crafted"  # the copy of the captured FIN
    return {
        "trace": trace,
        "time_wait_survived": bool(tw),
        "reply_to_rst": reply_to_rst,
        "reply_to_fin": reply_to_fin,
        "peer_reply": peer_reply,
        "reconnect": reconnect,
        "reusable_after_s": round(tw[0].expires_s, 1) if tw else 0.0,
        "time_wait_timer_s": math.ceil(tw[0].expires_s) if tw else None,
        "counters": counters,
        "socket_table": ss_text(table, timers=False) if table else "(no sockets left)",
    }


register(
    Experiment(
        name="time-wait-assassination",
        captures=True,
        summary="An in-window RST hits a TIME_WAIT socket (crafted, or the forgetful peer's answer "
        "to TIME_WAIT's ACK): killed, unless tcp_rfc1337=1.",
        params=(
            Param(
                "rfc1337", int, 0, "net.ipv4.tcp_rfc1337: 1 makes TIME_WAIT ignore RSTs", minimum=0, maximum=1
            ),
            Param(
                "trigger",
                str,
                "rst",
                "what reaches TIME_WAIT: a crafted RST, or a copy of the "
                "server's FIN after the server forgot the connection (its RST answers the ACK)",
                choices=("rst", "retransmitted-fin"),
            ),
            Param("family", int, 4, "IP version: 4 (127.0.0.1) or 6 (::1)", choices=(4, 6)),
        ),
        body=f"{__name__}:body",
        result=TimeWaitAssassinationResult,
        sysctls=lambda p: {"net.ipv4.tcp_rfc1337": p["rfc1337"]},
        timeout=lambda p: 15.0,
        variants=(
            {"rfc1337": 0},
            {"rfc1337": 1},
            {"rfc1337": 0, "trigger": "retransmitted-fin"},
            {"rfc1337": 1, "trigger": "retransmitted-fin"},
            {"rfc1337": 0, "family": 6},
        ),
    )
)
