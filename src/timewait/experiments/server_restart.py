"""server-restart: a new server binds the port an old one used. When does the kernel let it?

The old server listens on port 5000 and leaves one of four things holding that port
(``held_by``):

- ``time-wait``: it closed its connection first and exited, so a TIME_WAIT socket sits on
  the server's own port;
- ``established``: its listener is closed but an accepted connection is still open (a worker
  still finishing a request, or a child process that inherited the socket);
- ``listener``: its listener is still open (the new server starts before the old one stops);
- ``nothing``: the client closed first and the old server exited; the TIME_WAIT socket is the
  client's, on the client's port.

Then a new listening socket binds and listens on the same port, with or without
SO_REUSEADDR (``old_reuseaddr`` on the old listener, ``new_reuseaddr`` on the new one) and
with or without SO_REUSEPORT on both (``reuseport``). A socket accepted from a listener
carries the listener's flags, and so does the TIME_WAIT socket it turns into: that is why the
old listener's flags matter. When the new server listens, it is asked to accept a connection
(with ``held_by="listener"``, after the old listener has closed, as a hand-over would).

On the host tier the port is a free one the kernel picks on the host loopback.

``family=6`` runs old server, new server and clients over IPv6, on ``::1`` (on the host tier
only where the host's ``lo`` has ``::1``).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Optional

from .base import Experiment, ExperimentResult, Param, register, shown
from .common import errno_name, host_has_ipv6_loopback

SERVER_PORT = 5000
HOLDERS = ("time-wait", "established", "listener", "nothing")


@dataclass(kw_only=True)
class ServerRestartResult(ExperimentResult):
    QUIET_OPTIONS = {"family": 4}  # an IPv4 run reads as before IPv6 was an option

    sockets_on_port: list = shown()  # states on the server's port, sorted
    time_wait_on_server_port: bool = shown()  # just before the new bind
    error: Optional[str] = shown()  # errno name, None if the new server listens
    failed_at: Optional[str] = shown()  # "bind" or "listen"
    new_server_accepts: Optional[bool] = shown()  # a new client could connect to it
    sockets_after_listen: list = shown()  # states once the new one listens
    addresses_on_port: list  # local addresses of the sockets on the server's port, old and new

    @property
    def outcome(self) -> str:
        """One phrase for a table: "listens" or "EADDRINUSE at bind"."""
        return "listens" if self.error is None else f"{self.error} at {self.failed_at}"


def _socket(lab, reuseaddr: bool, reuseport: bool) -> socket.socket:
    s = lab.new_socket()
    if reuseaddr:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return s


def _on_port(lab, port: int) -> list:
    return sorted(s.state for s in lab.sockets([port]) if s.local[1] == port)


def _close_with_reset(sock: socket.socket) -> None:
    """Close without leaving a TIME_WAIT socket behind (it matters on the host)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def body(
    lab, old_reuseaddr: bool, new_reuseaddr: bool, held_by: str, reuseport: bool, family: int = 4
) -> dict:
    address = lab.use_family(family)
    lab.step("the old server listens")
    old = _socket(lab, old_reuseaddr, reuseport)
    old.bind((address, SERVER_PORT if lab.isolated else 0))
    old.listen(8)
    port = old.getsockname()[1]

    if held_by != "listener":
        client, conn = lab.accepted(old)
        client.settimeout(5)
        conn.settimeout(5)
        if held_by == "time-wait":
            lab.step("the old server closes first and exits")
            conn.close()
            assert client.recv(1) == b""
            client.close()
            old.close()
            lab.wait_for(lambda: _on_port(lab, port) == ["TIME_WAIT"], "TIME_WAIT on the server's port")
        elif held_by == "nothing":
            lab.step("the client closes first; the old server closes and exits")
            client_port = client.getsockname()[1]
            client.close()
            assert conn.recv(1) == b""
            conn.close()
            old.close()
            lab.wait_for(
                lambda: (
                    not _on_port(lab, port)
                    and any(
                        s.local[1] == client_port and s.state == "TIME_WAIT"
                        for s in lab.sockets([client_port])
                    )
                ),
                "the client's TIME_WAIT, and a free port",
            )
        else:
            lab.step("the old listener closes; its accepted connection stays open")
            old.close()
            lab.wait_for(
                lambda: _on_port(lab, port) == ["ESTABLISHED"],
                "only the open connection on the server's port",
            )
    held = _on_port(lab, port)
    addresses = {s.local[0] for s in lab.sockets([port]) if s.local[1] == port}

    lab.step("a new server binds and listens on the same port")
    new = _socket(lab, new_reuseaddr, reuseport)
    error = failed_at = None
    for call, name in ((lambda: new.bind((address, port)), "bind"), (lambda: new.listen(8), "listen")):
        try:
            call()
        except OSError as exc:
            error, failed_at = errno_name(exc), name
            break
    accepts, after = None, []
    if error is None:
        after = _on_port(lab, port)
        addresses |= {s.local[0] for s in lab.sockets([port]) if s.local[1] == port}
        if held_by == "listener":
            lab.step("the old listener hands over: it closes")
            old.close()
        new.settimeout(5)
        probe, _ = lab.accepted(new)
        accepts = True
        _close_with_reset(probe)
    return {
        "sockets_on_port": held,
        "time_wait_on_server_port": "TIME_WAIT" in held,
        "error": error,
        "failed_at": failed_at,
        "new_server_accepts": accepts,
        "sockets_after_listen": after,
        "addresses_on_port": sorted(addresses),
    }


# The matrix the chapter shows: every holder with SO_REUSEADDR off and on, on each socket;
# then every holder with SO_REUSEPORT on both sockets and no SO_REUSEADDR.
MATRIX = tuple(
    [
        {"held_by": h, "old_reuseaddr": o, "new_reuseaddr": n, "reuseport": False}
        for h in HOLDERS
        for o in (False, True)
        for n in (False, True)
    ]
    + [{"held_by": h, "old_reuseaddr": False, "new_reuseaddr": False, "reuseport": True} for h in HOLDERS]
)


def _yes(flag: bool) -> str:
    return "yes" if flag else "-"


def matrix_table(results) -> str:
    """A text table of server-restart results, one row each."""
    rows = [("port held by", "old REUSEADDR", "new REUSEADDR", "REUSEPORT (both)", "new server")]
    for r in results:
        p = r.params
        rows.append(
            (
                p["held_by"],
                _yes(p["old_reuseaddr"]),
                _yes(p["new_reuseaddr"]),
                _yes(p["reuseport"]),
                r.outcome,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


COLUMNS = (  # (heading, old_reuseaddr, new_reuseaddr, reuseport)
    ("no option", False, False, False),
    ("REUSEADDR\nnew only", False, True, False),
    ("REUSEADDR\nold only", True, False, False),
    ("REUSEADDR\nboth", True, True, False),
    ("REUSEPORT\nboth", False, False, True),
)


def _grid(results) -> dict:
    return {
        (
            r.params["held_by"],
            r.params["old_reuseaddr"],
            r.params["new_reuseaddr"],
            r.params["reuseport"],
        ): r.outcome
        for r in results
    }


def matrix_figure(results):
    """The matrix as a coloured grid: one row per holder, one column per option setting.

    Returns ``(figure, alt_text)``. Every cell is labelled, so colour carries no meaning alone.
    """
    import matplotlib.pyplot as plt

    from ..plots import OKABE_ITO

    grid = _grid(results)
    fig, ax = plt.subplots(figsize=(8.2, 3.4))
    alt = []
    for row, holder in enumerate(HOLDERS):
        cells = []
        for col, (heading, old, new, port) in enumerate(COLUMNS):
            outcome = grid[(holder, old, new, port)]
            ok = outcome == "listens"
            ax.add_patch(
                plt.Rectangle(
                    (col, row),
                    0.96,
                    0.92,
                    zorder=1,
                    color=OKABE_ITO["green"] if ok else OKABE_ITO["vermillion"],
                )
            )
            ax.text(
                col + 0.48,
                row + 0.46,
                "listens" if ok else outcome.replace(" at ", "\nat "),
                ha="center",
                va="center",
                color="white",
                fontsize=9,
                weight="bold",
            )
            cells.append(f"{heading.replace(chr(10), ' ')}: {outcome}")
        alt.append(f"port held by {holder}: " + ", ".join(cells))
    ax.set_xlim(0, len(COLUMNS))
    ax.set_ylim(len(HOLDERS), 0)
    ax.set_xticks([c + 0.48 for c in range(len(COLUMNS))], [c[0] for c in COLUMNS], fontsize=9)
    ax.set_yticks([r + 0.46 for r in range(len(HOLDERS))], HOLDERS, fontsize=10)
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_ylabel("the old server's port is held by")
    fig.tight_layout()
    text = (
        "Grid of server-restart outcomes, rows are what holds the port, columns the socket "
        "options; " + "; ".join(alt) + "."
    )
    return fig, text


register(
    Experiment(
        name="server-restart",
        summary="Restart a server on its port: when does the new listener's bind() succeed?",
        params=(
            Param("old_reuseaddr", bool, False, "SO_REUSEADDR on the old server's listener"),
            Param("new_reuseaddr", bool, False, "SO_REUSEADDR on the new server's listener"),
            Param(
                "held_by", str, "time-wait", "what of the old server still holds the port", choices=HOLDERS
            ),
            Param("reuseport", bool, False, "SO_REUSEPORT on both listeners"),
            Param("family", int, 4, "IP version: 4 (127.0.0.1) or 6 (::1)", choices=(4, 6)),
        ),
        body=f"{__name__}:body",
        result=ServerRestartResult,
        timeout=lambda p: 20.0,
        host_ok=lambda p: p["family"] == 4 or host_has_ipv6_loopback(),
        variants=MATRIX
        + (
            {
                "held_by": "time-wait",
                "old_reuseaddr": True,
                "new_reuseaddr": True,
                "reuseport": False,
                "family": 6,
            },
        ),
    )
)
