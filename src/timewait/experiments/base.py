"""What every named experiment shares: parameters, results, running and recordings."""

from __future__ import annotations

import dataclasses
import datetime
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

from .. import sandbox
from ..model.params import Param
from ..tiers import Tier, detect_tier, find_tool, topology_support
from ..trace import Trace

RECORDINGS = Path(__file__).resolve().parent.parent / "recordings"


# ``run(..., timeout=)`` and ``--timeout``: an hour is longer than any experiment needs.
TIMEOUT = Param(
    "timeout",
    float,
    None,
    "seconds before the experiment is stopped (default: the experiment's own limit)",
    minimum=1,
    maximum=3600,
)


@dataclass(frozen=True)
class Shown:
    """When ``summary()`` shows an outcome field: declared with ``shown()``."""

    when: Optional[str] = None  # only in runs that set this option (truthy)
    unless: Optional[str] = None  # only in runs that do not set it
    only_if_set: bool = False  # only when the field holds a value (not None, "" or [])

    def applies(self, params: dict, value: Any) -> bool:
        if self.when is not None and not params.get(self.when):
            return False
        if self.unless is not None and params.get(self.unless):
            return False
        return not (self.only_if_set and value in (None, "", []))


def shown(
    *, when: Optional[str] = None, unless: Optional[str] = None, only_if_set: bool = False, **field_args: Any
) -> Any:
    """An outcome field that ``summary()`` shows, in the order the fields are declared: a
    ``dataclasses.field`` (``field_args``: its ``default`` or ``default_factory``, none for a
    required field). ``when``/``unless`` name an option that decides whether a run shows it;
    ``only_if_set`` leaves the line out while the field holds no value. A field declared
    without it is kept out of the summary (timings, machine-dependent detail)."""
    return field(metadata={"shown": Shown(when, unless, only_if_set)}, **field_args)


@dataclass(kw_only=True)
class ExperimentResult:
    """Common fields; each experiment adds its outcome fields in a subclass, also
    ``@dataclass(kw_only=True)``: a field without a default must be given."""

    experiment: str
    params: dict
    tier: str
    kernel: str
    recorded: bool = False
    recorded_on: Optional[str] = None
    notice: str = ""
    trace: Optional[Trace] = None
    frames: list = field(default_factory=list, repr=False)  # (t, bytes) for pcap export

    # Options the summary's first line leaves out while they hold the value given here
    # (options added after the runs a chapter quotes, so that those read as before).
    QUIET_OPTIONS: ClassVar[dict] = {}

    def to_json(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "frames":
                continue
            value = getattr(self, f.name)
            out[f.name] = value.to_dicts() if isinstance(value, Trace) else value
        return out

    @classmethod
    def from_json(cls, data: dict, *, recording: bool = False) -> ExperimentResult:
        """The result a body returned (``recording=False``: a key this class has no field for,
        or a field without a default that has no key, is a TypeError, so a misspelt or
        forgotten key cannot vanish), or one stored in a recording (``recording=True``: keys
        of fields an older version had are left out, and a field it did not have yet is None:
        not recorded)."""
        fields = [f for f in dataclasses.fields(cls) if f.init]
        names = {f.name for f in fields}
        unknown = sorted(set(data) - names)
        if unknown and not recording:
            raise TypeError(
                f"{data.get('experiment') or cls.__name__}: the result has no "
                f"field {', '.join(map(repr, unknown))}; fields: "
                f"{', '.join(sorted(names))}"
            )
        kwargs = {k: v for k, v in data.items() if k in names}
        missing = [
            f.name
            for f in fields
            if f.name not in kwargs
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing and not recording:
            raise TypeError(
                f"{data.get('experiment') or cls.__name__}: the result lacks "
                f"field {', '.join(map(repr, missing))}, which has no default"
            )
        kwargs.update(dict.fromkeys(missing))
        if kwargs.get("trace") is not None:
            kwargs["trace"] = Trace.from_dicts(kwargs["trace"])
        return cls(**kwargs)

    def summary(self) -> str:
        """Readable, stable text: parameters and the fields declared ``shown()``, no kernel
        version or timings."""
        lines = []
        if self.notice:
            lines.append(self.notice)
        opts = ", ".join(
            f"{k}={v}"
            for k, v in self.params.items()
            if k not in self.QUIET_OPTIONS or v != self.QUIET_OPTIONS[k]
        )
        lines.append(f"{self.experiment} ({opts})")
        for f in dataclasses.fields(self):
            how = f.metadata.get("shown")
            value = getattr(self, f.name)
            if how is None or not how.applies(self.params, value):
                continue
            if isinstance(value, str) and "\n" in value:
                lines.append(f"  {f.name}:")
                lines += ["    " + line for line in value.splitlines()]
            elif value is None or isinstance(value, (bool, dict, list)):
                lines.append(f"  {f.name}: {json.dumps(value)}")
            else:
                lines.append(f"  {f.name}: {value}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(self.summary())

    def write_pcap(self, path: str) -> None:
        from ..capture import Frame, frame_notes, write_pcap

        if not self.frames:
            raise ValueError(
                "pcap: this result has no captured frames (recorded results and host-tier runs carry none)"
            )
        frames = [Frame(t, data) for t, data in self.frames]
        trace = self.trace.to_dicts() if self.trace is not None else []
        write_pcap(path, frames, frame_notes(frames, trace))


@dataclass(frozen=True)
class Experiment:
    name: str
    summary: str
    params: tuple
    body: str  # "module:function" run inside the namespace
    result: type[ExperimentResult]
    sysctls: Callable = lambda p: {}
    timeout: Callable = lambda p: 30.0
    host_ok: Callable = lambda p: False  # can it run on the host loopback with these params?
    variants: tuple = ({},)  # parameter sets kept as recordings
    topology: bool = False  # builds hosts and links (timewait.topology): needs topology_support()
    captures: bool = False  # records its segments, so it offers --pcap
    programs: tuple = ()  # commands it starts on a host (e.g. "haproxy"): each must be installed
    # Why a live run's own instrument missed its moment (a reading that a starved thread did
    # not take in time), "" if it did not: such a run is run again, up to RERUNS more times.
    # Never about the kernel's outcome, which a run reports as it was.
    missed: Callable = lambda p, data: ""

    def check(self, params: dict) -> dict:
        known = {p.name: p for p in self.params}
        for key in params:
            if key not in known:
                raise ValueError(
                    f"{key}: not an option of {self.name}; options: {', '.join(known) or 'none'}"
                )
        return {p.name: p.check(params.get(p.name, p.default)) for p in self.params}


REGISTRY: dict = {}


def register(exp: Experiment) -> Experiment:
    REGISTRY[exp.name] = exp
    return exp


def get(name: str) -> Experiment:
    if name not in REGISTRY:
        raise ValueError(f"experiment: must be one of {', '.join(sorted(REGISTRY))}, got {name!r}")
    return REGISTRY[name]


def program_installed(name: str) -> bool:
    """Is command ``name`` installed (on PATH, or in /usr/sbin or /sbin where Debian puts
    daemons)?"""
    return find_tool(name) is not None


def params_key(params: dict) -> str:
    return json.dumps(params, sort_keys=True)


def kernel_version() -> str:
    return f"{platform.system()} {platform.release()}"


RERUNS = 2


def run(
    name: str, *, timeout: Optional[float] = None, capture_frames: bool = False, **params
) -> ExperimentResult:
    """Run experiment ``name`` live if this machine's tier allows it, else show its recording."""
    exp = get(name)
    params = exp.check(params)
    if timeout is not None:
        timeout = TIMEOUT.check(timeout)
    tier = detect_tier()
    live = tier.name == "full" or (tier.name == "host" and exp.host_ok(params))
    if live and exp.topology:
        ok, why = topology_support()
        if not ok:
            return recorded(exp, params, Tier(tier.name, why))
    missing = [p for p in exp.programs if not program_installed(p)] if live else []
    if missing:
        return recorded(exp, params, Tier(tier.name, f"{', '.join(missing)} not installed"))
    if not live:
        return recorded(exp, params, tier)
    isolated = tier.name == "full"
    for _ in range(1 + RERUNS):
        data = sandbox.run_body(
            exp.body,
            {**params, "capture_frames": capture_frames},
            sysctls=exp.sysctls(params) if isolated else {},
            timeout=timeout or exp.timeout(params),
            isolated=isolated,
        )
        if not exp.missed(params, data):
            break
    frames = [(t, bytes.fromhex(h)) for t, h in data.pop("frames", [])]
    result = exp.result.from_json(
        {**data, "experiment": name, "params": params, "tier": tier.name, "kernel": kernel_version()}
    )
    result.frames = frames
    return result


def recording_path(name: str) -> Path:
    return RECORDINGS / f"{name}.json"


def recorded(exp: Experiment, params: dict, tier) -> ExperimentResult:
    path = recording_path(exp.name)
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    for entry in runs:
        if params_key(entry["params"]) == params_key(params):
            data = dict(entry["result"])
            result = exp.result.from_json(
                {**data, "params": params, "tier": tier.name, "recorded": True}, recording=True
            )
            result.notice = (
                f"[recorded on {result.kernel}, {result.recorded_on}: this machine "
                f"cannot run it live ({tier.reason})]"
            )
            return result
    raise RuntimeError(
        f"{exp.name}: this machine cannot run it live ({tier.reason}), and no "
        f"recording exists for {params_key(params)}; recorded parameter sets: "
        + "; ".join(params_key(e["params"]) for e in runs)
    )


def record_all(names=None, progress=print) -> None:
    """Run every experiment's recorded variants live and store them (full tier only)."""
    tier = detect_tier()
    if tier.name != "full":
        raise RuntimeError(f"recordings are made on a full-tier machine; this one is {tier}")
    today = datetime.date.today().isoformat()
    RECORDINGS.mkdir(exist_ok=True)
    for name in names or sorted(REGISTRY):
        exp = REGISTRY[name]
        runs = []
        for variant in exp.variants:
            params = exp.check(variant)
            result = run(name, **params)
            data = result.to_json()
            data.update(recorded_on=today, recorded=False, notice="")
            runs.append({"params": params, "result": data})
            progress(f"recorded {name} {params_key(params)}")
        recording_path(name).write_text(
            json.dumps(
                {"experiment": name, "kernel": kernel_version(), "date": today, "runs": runs},
                indent=1,
                sort_keys=True,
            )
            + "\n"
        )
