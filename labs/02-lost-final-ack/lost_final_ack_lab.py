"""Support for the lost-final-ACK lab: run a function written in the notebook inside a
fresh private network namespace, and observe independently what it did.

The function travels to the namespace's process by value (``dill``). After it returns, the
harness reads the packet capture and the fault rules itself, so the checks compare the
student's report with what really crossed the loopback.
"""

from __future__ import annotations

import dill

from timewait.lab import Lab
from timewait.labkit import call_student, lab_tier, run_student, time_limit  # noqa: F401

# The notebook calls settle(lab): the engine's own wait for the capture to catch up.
settle = Lab.settle


def harness(lab, payload: str, time_wait: bool, client_port: int, server_port: int) -> dict:
    """Inside the namespace: call the student's function, then look for ourselves."""
    experiment = dill.loads(bytes.fromhex(payload))
    report, crash = call_student(
        lab, experiment, lab, time_wait=time_wait, client_port=client_port, server_port=server_port
    )
    if crash:
        return {"student_error": crash}
    lab.settle()
    observed = lab.trace(client_port, server_port).to_dicts() if lab.capture else None
    return {
        "report": report,
        "observed_trace": observed,
        "rules": [{"match": vars(r.match), "count": r.count} for r in lab.rules],
        "tw_buckets": int(lab.sysctl("net.ipv4.tcp_max_tw_buckets")),
    }


def run_experiment(
    experiment, time_wait: bool, client_port: int = 40000, server_port: int = 5000, timeout: float = 25.0
) -> dict:
    """Run ``experiment(lab, time_wait=..., client_port=..., server_port=...)`` in a fresh
    namespace. Returns its report and what the harness saw: ``observed_trace`` (the capture,
    if the experiment started one), ``rules`` and the TIME_WAIT bucket limit."""
    return run_student(
        __file__,
        "harness",
        experiment,
        "your lost_final_ack",
        timeout=timeout,
        time_wait=time_wait,
        client_port=client_port,
        server_port=server_port,
    )


def after_last_server_fin(trace: list) -> list:
    """Segments the client sent after the server's last FIN."""
    fins = [i for i, s in enumerate(trace) if s["src"] == "server" and "FIN" in s["flags"]]
    return [s for s in trace[fins[-1] + 1 :] if s["src"] == "client"] if fins else []


def engine_outcome(time_wait: bool) -> dict:
    """What the course's own lost-final-ack experiment reports (cached per variant)."""
    if time_wait not in _ENGINE:
        from timewait.experiments import run

        r = run("lost-final-ack", time_wait=time_wait)
        _ENGINE[time_wait] = {"peer_error": r.peer_error, "answer": r.answer_to_retransmitted_fin}
    return _ENGINE[time_wait]


_ENGINE: dict = {}


def check_report(run: dict, client_port: int, server_port: int, time_wait: bool) -> dict:
    """The report against the harness's own capture and fault rules; returns the report."""
    report, trace = run["report"], run["observed_trace"]
    assert isinstance(report, dict), (
        f"lost_final_ack returned {type(report).__name__}; it should return a dict with the keys "
        f"'answer', 'fin_retransmissions', 'peer_error' and 'trace'."
    )
    assert trace, (
        "No segment was captured: start the capture (lab.start_capture()) before opening the connection."
    )
    ports = {(s["sport"], s["dport"]) for s in trace}
    others = ports - {(client_port, server_port), (server_port, client_port)}
    assert not others, (
        f"The capture holds segments between ports {sorted(others)}; the experiment uses the "
        f"client port {client_port} and the server port {server_port} it was given."
    )
    want = {"src_port": client_port, "dst_port": server_port, "flags": "ACK"}
    drops = [r for r in run["rules"] if r["match"] == want]
    assert drops, (
        f"The fault rules were {run['rules'] or 'none'}: none of them matches the client's pure ACKs "
        f"from port {client_port} to port {server_port}, so the final ACK was never lost."
    )
    assert all(r["count"] == 1 for r in drops), (
        f"The fault rules were {run['rules']}: a rule on the client's pure ACKs that drops "
        f"{max(r['count'] for r in drops)} of them loses more than the final ACK: the ACK the "
        f"client sends to the server's retransmitted FIN is a pure ACK too."
    )
    fins = [s for s in trace if s["src"] == "server" and "FIN" in s["flags"]]
    assert fins, (
        "The server never sent its FIN: after reading the client's end of file, "
        "shut down the server's sending side."
    )
    if time_wait:
        assert len(fins) >= 2, (
            "The server's FIN was never sent again, so its ACK was not lost: was the drop rule "
            "in place before the client's final ACK went out?"
        )
        dropped = [
            s
            for s in trace[trace.index(fins[0]) :]
            if s["src"] == "client" and s["flags"] == "ACK" and s["note"] == "dropped"
        ]
        assert dropped, "No ACK from the client was dropped after the server's FIN."
    answer = after_last_server_fin(trace)
    assert answer, "The capture shows no reply from the client to the server's last FIN."
    assert report.get("answer") == answer[0]["flags"], (
        f"Your report gives the answer as {report.get('answer')!r}, but the capture shows the "
        f"client answering the server's last FIN with {answer[0]['flags']}."
    )
    assert report.get("fin_retransmissions") == len(fins) - 1, (
        f"The capture shows the server's FIN sent {len(fins)} time(s), so "
        f"{len(fins) - 1} retransmission(s); your report says {report.get('fin_retransmissions')!r}."
    )
    return report


def check_against_engine(run: dict, time_wait: bool) -> None:
    """The report agrees with the course's own lost-final-ack experiment."""
    report, engine = run["report"], engine_outcome(time_wait)
    assert report.get("answer") == engine["answer"] or not engine["answer"], (
        f"In the course's experiment the client answers the retransmitted FIN with "
        f"{engine['answer']}; in yours with {report.get('answer')!r}."
    )
    assert report.get("peer_error") == engine["peer_error"], (
        f"In the course's experiment the server's socket reports {engine['peer_error']!r} at the "
        f"end; yours reports {report.get('peer_error')!r}. Read SO_ERROR after the connection "
        f"has ended."
    )
