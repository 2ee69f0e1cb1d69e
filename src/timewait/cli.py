"""The ``timewait`` command.

    timewait experiment --list
    timewait experiment NAME [options] [--json] [--pcap FILE]
    timewait simulate --list | SCENARIO [options] [--seed N] [--json]
    timewait tier
    timewait record [NAME ...]        (full tier: refresh the recorded outcomes)

Invalid options print one line naming the option and its valid range, and exit with 2;
they are refused while the command line is parsed, before anything runs. Ctrl-C (SIGINT),
SIGTERM or SIGHUP stop a running experiment with one line naming the step it was in, and
end the experiment's processes (cli_options.py, sandbox.py).

A subcommand is a module with ``add_parser(sub)``, which adds its parser and sets
``func(args) -> exit status``; ``build_parser`` calls it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from . import analyze, doctor, experiments, simulate_cli
from .cli_options import OUTPUT_FILE, OneLineParser, add_valid, checked, one_line, output_file, shown
from .experiments.base import TIMEOUT
from .sandbox import ExperimentFailed, ExperimentInterrupted, ExperimentTimeout
from .tiers import check_forced_tier, detect_tier, topology_support


def _add_param(parser: argparse.ArgumentParser, p) -> None:
    """An experiment's Param as an option, checked in full while the command line is parsed."""
    if p.kind is bool:
        action = parser.add_argument(
            p.flag, dest=p.name, action=argparse.BooleanOptionalAction, default=p.default, help=p.help
        )
    else:
        action = parser.add_argument(
            p.flag,
            dest=p.name,
            default=p.default,
            type=checked(p.kind, p.valid_range(), p.check),
            help=f"{p.help} ({p.valid_range()}; default {p.default})",
        )
    add_valid(action, p.valid_range())


def _experiment_parser(exp) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=f"timewait experiment {exp.name}", description=exp.summary)
    for p in exp.params + (TIMEOUT,):
        _add_param(parser, p)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    if exp.captures:  # only an experiment that captures its segments can write them
        add_valid(
            parser.add_argument(
                "--pcap",
                metavar="FILE",
                type=output_file,
                help="write the captured segments to FILE (FILE.pcapng: segments the experiment dropped, "
                "held or delivered late carry a comment saying so)",
            ),
            OUTPUT_FILE,
        )
    return parser


def cmd_experiment(args, rest) -> int:
    if args.list:
        for name, summary in experiments.list_experiments():
            print(f"{name:26s} {summary}")
        return 0
    if args.name is None:
        if any(r in ("-h", "--help") for r in rest):
            print(
                "usage: timewait experiment --list | NAME [options] [--json] [--pcap FILE]\n"
                "       timewait experiment NAME --help"
            )
            return 0
        print(
            f"timewait experiment: experiment: required: must be one of "
            f"{', '.join(sorted(experiments.REGISTRY))} (or --list)",
            file=sys.stderr,
        )
        return 2
    try:
        exp = experiments.get(args.name)
    except ValueError as exc:
        print(f"timewait experiment: {one_line(exc)}", file=sys.stderr)
        return 2
    opts = vars(_experiment_parser(exp).parse_args(rest))
    as_json, pcap, timeout = opts.pop("json"), opts.pop("pcap", None), opts.pop("timeout")
    try:
        result = experiments.run(exp.name, timeout=timeout, capture_frames=bool(pcap), **opts)
    except ValueError as exc:
        print(f"timewait experiment {exp.name}: {one_line(exc)}", file=sys.stderr)
        return 2
    except (ExperimentTimeout, ExperimentFailed, RuntimeError) as exc:
        print(f"timewait experiment {exp.name}: {exc}", file=sys.stderr)
        return 1
    except ExperimentInterrupted as exc:
        print(f"timewait experiment {exp.name}: stopped{_by(exc)} during step '{exc.step}'", file=sys.stderr)
        return 128 + _signal_of(exc)
    # The result is printed first: a pcap that cannot be written does not lose it.
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.summary())
        if result.trace is not None:
            print(result.trace.table())
    if pcap:
        try:
            result.write_pcap(pcap)
        except ValueError as exc:
            print(f"timewait experiment {exp.name}: {one_line(exc)}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(
                f"timewait experiment {exp.name}: --pcap: could not write {shown(pcap)} "
                f"({exc.strerror or exc})",
                file=sys.stderr,
            )
            return 1
        if not as_json:
            print(f"wrote {len(result.frames)} frames to {pcap}")
    return 0


def cmd_tier(args) -> int:
    tier = detect_tier()  # TIMEWAIT_TIER was checked in main()
    print(f"tier: {tier.name}\n{tier.reason}")
    if tier.name == "full":
        ok, why = topology_support()
        print(
            "topologies (Part III): "
            + ("yes: veth links, NAT and connection tracking work" if ok else f"no: {why}")
        )
    return 0


def cmd_record(args) -> int:
    try:
        for name in args.names:
            experiments.get(name)  # every name is checked before anything is recorded
        experiments.record_all(args.names or None)
    except (RuntimeError, ValueError) as exc:
        print(f"timewait record: {one_line(exc)}", file=sys.stderr)
        return 2
    except ExperimentInterrupted as exc:
        print(
            f"timewait record: {exc.experiment}: stopped{_by(exc)} during step '{exc.step}'", file=sys.stderr
        )
        return 128 + _signal_of(exc)
    return 0


class _Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is, so that what it started is ended."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop(signum, frame):
    raise _Stopped(signum)


def _signal_of(exc: BaseException) -> int:
    while exc is not None and not isinstance(exc, _Stopped):
        exc = exc.__cause__ or exc.__context__
    return exc.signum if exc is not None else signal.SIGINT


def _by(exc: BaseException) -> str:
    signum = _signal_of(exc)
    return "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"


def main(argv=None) -> int:
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `timewait ... | head` ends quietly
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            # A signal the caller ignores stays ignored (nohup, a background job), as SIGINT does.
            if signal.getsignal(signum) is not signal.SIG_IGN:
                previous[signum] = signal.signal(signum, _stop)
    try:
        return _main(argv)
    except KeyboardInterrupt as exc:  # outside an experiment: nothing of ours is running
        print(f"timewait: stopped{_by(exc)}", file=sys.stderr)
        return 128 + _signal_of(exc)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def build_parser() -> tuple:
    """The ``timewait`` parser and its subcommands' parsers (``sub.choices``)."""
    parser = OneLineParser(
        prog="timewait",
        description="Why TCP Waits: experiments on your own kernel and simulations of TCP's TIME_WAIT.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("experiment", help="run a named experiment in a private namespace", add_help=False)
    p.add_argument("name", nargs="?")
    p.add_argument("--list", action="store_true")
    sub.add_parser("tier", help="what this machine can run live, and why").set_defaults(func=cmd_tier)
    p = sub.add_parser("record", help="refresh recorded outcomes (full tier only)")
    p.add_argument("names", nargs="*")
    p.set_defaults(func=cmd_record)
    for module in (simulate_cli, doctor, analyze):
        module.add_parser(sub)  # each sets its own func(args)
    return parser, sub


def _main(argv) -> int:
    parser, sub = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command in ("experiment", "tier", "record"):
        try:
            check_forced_tier()
        except ValueError as exc:
            print(f"timewait {args.command}: {one_line(exc)}", file=sys.stderr)
            return 2
    if args.command == "experiment":  # its options depend on the experiment it names
        return cmd_experiment(args, rest)
    if rest:
        sub.choices[args.command].unknown(rest)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
