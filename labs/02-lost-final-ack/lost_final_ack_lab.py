"""Support for the lost-final-ACK lab: run a function written in the notebook inside a
fresh private network namespace, and observe independently what it did.

The function travels to the namespace's process by value (``dill``). After it returns, the
harness reads the packet capture and the fault rules itself, so the checks compare the
student's report with what really crossed the loopback.
"""
from __future__ import annotations

import os

import dill

from timewait.lab import Lab
from timewait.sandbox import run_body


# The notebook calls settle(lab): the engine's own wait for the capture to catch up.
settle = Lab.settle


def _importable_in_namespace() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.environ.get("PYTHONPATH", "")
    if here not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = here + (os.pathsep + path if path else "")


def harness(lab, payload: str, time_wait: bool, client_port: int, server_port: int) -> dict:
    """Inside the namespace: call the student's function, then look for ourselves."""
    experiment = dill.loads(bytes.fromhex(payload))
    report = experiment(lab, time_wait=time_wait, client_port=client_port,
                        server_port=server_port)
    lab.settle()
    observed = lab.trace(client_port, server_port).to_dicts() if lab.capture else None
    return {
        "report": report,
        "observed_trace": observed,
        "rules": [{"match": vars(r.match), "count": r.count} for r in lab.rules],
        "tw_buckets": int(lab.sysctl("net.ipv4.tcp_max_tw_buckets")),
    }


def run_experiment(experiment, time_wait: bool, client_port: int = 40000,
                   server_port: int = 5000, timeout: float = 25.0) -> dict:
    """Run ``experiment(lab, time_wait=..., client_port=..., server_port=...)`` in a fresh
    namespace. Returns its report and what the harness saw: ``observed_trace`` (the capture,
    if the experiment started one), ``rules`` and the TIME_WAIT bucket limit."""
    _importable_in_namespace()
    payload = dill.dumps(experiment, recurse=True).hex()
    params = {"payload": payload, "time_wait": time_wait, "client_port": client_port,
              "server_port": server_port}
    return run_body(f"{__name__}:harness", params, timeout=timeout)


def after_last_server_fin(trace: list) -> list:
    """Segments the client sent after the server's last FIN."""
    fins = [i for i, s in enumerate(trace) if s["src"] == "server" and "FIN" in s["flags"]]
    return [s for s in trace[fins[-1] + 1:] if s["src"] == "client"] if fins else []


def engine_outcome(time_wait: bool) -> dict:
    """What the course's own lost-final-ack experiment reports (cached per variant)."""
    if time_wait not in _ENGINE:
        from timewait.experiments import run
        r = run("lost-final-ack", time_wait=time_wait)
        _ENGINE[time_wait] = {"peer_error": r.peer_error,
                              "answer": r.answer_to_retransmitted_fin}
    return _ENGINE[time_wait]


_ENGINE: dict = {}
