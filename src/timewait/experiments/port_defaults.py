"""port-defaults: the settings that govern source ports and TIME_WAIT reuse, as a fresh
namespace has them.

Nothing is set: the experiment reads each sysctl file of a namespace it has just created
(``None`` for one this kernel does not have).
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import Experiment, ExperimentResult, register, shown
from .common import read_defaults

DEFAULT_SYSCTLS = (
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_tw_reuse",
    "net.ipv4.tcp_tw_reuse_delay",
    "net.ipv4.tcp_timestamps",
    "net.ipv4.ip_autobind_reuse",
)


@dataclass(kw_only=True)
class PortDefaultsResult(ExperimentResult):
    sysctls: dict = shown()  # name -> value as the kernel prints it, or None


def body(lab) -> dict:
    return {"sysctls": read_defaults(lab, DEFAULT_SYSCTLS)}


register(
    Experiment(
        name="port-defaults",
        summary="Read a fresh namespace's defaults for port choice and TIME_WAIT reuse.",
        params=(),
        body=f"{__name__}:body",
        result=PortDefaultsResult,
        timeout=lambda p: 20.0,
    )
)
