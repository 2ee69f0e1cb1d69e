"""The ``timewait`` command.

    timewait experiment --list
    timewait experiment NAME [options] [--json] [--pcap FILE]
    timewait simulate --list | SCENARIO [options] [--seed N] [--json]
    timewait tier
    timewait record [NAME ...]        (full tier: refresh the recorded outcomes)

Invalid options print one line naming the option and its valid range, and exit with 2.
"""
from __future__ import annotations

import argparse
import inspect
import json
import signal
import sys

from . import experiments
from .sandbox import ExperimentFailed, ExperimentTimeout
from .tiers import detect_tier


def _experiment_parser(exp) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"timewait experiment {exp.name}",
                                     description=exp.summary)
    for p in exp.params:
        if p.kind is bool:
            parser.add_argument(p.flag, dest=p.name, action=argparse.BooleanOptionalAction,
                                default=p.default, help=p.help)
        else:
            parser.add_argument(p.flag, dest=p.name, type=p.kind, default=p.default,
                                help=f"{p.help} ({p.valid_range()}; default {p.default})")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--pcap", metavar="FILE", help="write the captured segments to FILE")
    parser.add_argument("--timeout", type=float, help="seconds before the experiment is stopped")
    return parser


def cmd_experiment(args, rest) -> int:
    if args.list:
        for name, summary in experiments.list_experiments():
            print(f"{name:26s} {summary}")
        return 0
    if not args.name:
        print("timewait experiment: give an experiment name, or --list", file=sys.stderr)
        return 2
    try:
        exp = experiments.get(args.name)
    except ValueError as exc:
        print(f"timewait experiment: {exc}", file=sys.stderr)
        return 2
    opts = vars(_experiment_parser(exp).parse_args(rest))
    as_json, pcap, timeout = opts.pop("json"), opts.pop("pcap"), opts.pop("timeout")
    try:
        result = experiments.run(exp.name, timeout=timeout, capture_frames=bool(pcap), **opts)
    except ValueError as exc:
        print(f"timewait experiment {exp.name}: {exc}", file=sys.stderr)
        return 2
    except (ExperimentTimeout, ExperimentFailed, RuntimeError) as exc:
        print(f"timewait experiment {exp.name}: {exc}", file=sys.stderr)
        return 1
    if pcap:
        try:
            result.write_pcap(pcap)
        except ValueError as exc:
            print(f"timewait experiment {exp.name}: {exc}", file=sys.stderr)
            return 1
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.summary())
        if result.trace is not None:
            print(result.trace.table())
        if pcap:
            print(f"wrote {len(result.frames)} frames to {pcap}")
    return 0


def cmd_tier(args, rest) -> int:
    tier = detect_tier()
    print(f"tier: {tier.name}\n{tier.reason}")
    return 0


def cmd_record(args, rest) -> int:
    try:
        experiments.record_all(args.names or None)
    except (RuntimeError, ValueError) as exc:
        print(f"timewait record: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv=None) -> int:
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `timewait ... | head` ends quietly
    parser = argparse.ArgumentParser(prog="timewait", description="Why TCP Waits: experiments "
                                     "on your own kernel and simulations of TCP's TIME_WAIT.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("experiment", help="run a named experiment in a private namespace",
                       add_help=False)
    p.add_argument("name", nargs="?")
    p.add_argument("--list", action="store_true")
    p.set_defaults(func=cmd_experiment)
    sub.add_parser("tier", help="what this machine can run live, and why").set_defaults(func=cmd_tier)
    p = sub.add_parser("record", help="refresh recorded outcomes (full tier only)")
    p.add_argument("names", nargs="*")
    p.set_defaults(func=cmd_record)
    for module in ("simulate_cli", "doctor", "analyze"):
        try:
            mod = __import__(f"timewait.{module}", fromlist=["add_parser", "main"])
        except ModuleNotFoundError as exc:
            if exc.name != f"timewait.{module}":
                raise
            continue
        mod.add_parser(sub)
    args, rest = parser.parse_known_args(argv)
    if args.command == "experiment":
        if any(r in ("-h", "--help") for r in rest) and args.name:
            _experiment_parser(experiments.get(args.name)).print_help()
            return 0
        return args.func(args, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    # Subcommands take (args) or (args, rest); pass what each asks for.
    wants_rest = len(inspect.signature(args.func).parameters) >= 2
    return args.func(args, rest) if wants_rest else args.func(args)

if __name__ == "__main__":
    sys.exit(main())
