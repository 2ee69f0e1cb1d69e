"""``timewait simulate SCENARIO [options] [--seed N] [--json]`` and ``timewait simulate --list``.

The options are generated from :data:`timewait.model.scenarios.PARAMS`, so the command line
and the Python API take the same parameters under the same names (``--time-wait-msl`` is
``time_wait_msl``), checked against the same ranges while the command line is parsed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap

from .cli_options import OneLineParser, add_valid, checked, one_line
from .model.scenarios import PARAMS, REGISTRY, parse_drop, simulate


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def configure(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("scenario", nargs="?", help="scenario name (see --list)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--times", action="store_true", help="show segment times in the table")
    for name, par in PARAMS.items():
        if not par.cli:
            continue
        kw = dict(dest=name, default=argparse.SUPPRESS, help=par.help)
        if par.kind is bool:
            action = parser.add_argument(_option(name), action=argparse.BooleanOptionalAction, **kw)
        elif name == "drop":
            action = parser.add_argument(
                _option(name),
                action="append",
                type=checked(str, _DROP, _drop_rule),
                metavar="SENDER:FLAGS:N",
                **kw,
            )
        else:
            metavar = "{" + ",".join(par.choices) + "}" if par.choices else name.upper()
            action = parser.add_argument(
                _option(name), type=checked(par.kind, par.valid_range(), par.check), metavar=metavar, **kw
            )
        add_valid(action, par.valid_range() if name != "drop" else _DROP)
    return parser


_DROP = "SENDER:FLAGS:N (SENDER client or server, N from 1), e.g. client:ACK:3"


def _drop_rule(text: str) -> str:
    parse_drop(text)
    return text


def _as_option(message: str) -> str:
    """The model names a parameter ``time_wait_msl``; the command line ``--time-wait-msl``."""
    return re.sub(r"^(\w+):", lambda m: (_option(m[1]) if m[1] in PARAMS else m[1]) + ":", one_line(message))


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``simulate`` on an argparse ``subparsers`` object."""
    parser = subparsers.add_parser(
        "simulate",
        help="run a scenario on the TCP termination model",
        description="Run a named scenario on the sans-IO TCP model and print its outcome.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: timewait simulate lost-final-ack --time-wait-msl 0 --json",
    )
    configure(parser)
    parser.set_defaults(func=main)
    return parser


def _listing() -> str:
    lines = []
    for scenario in REGISTRY.values():
        lines.append(scenario.name)
        lines += textwrap.wrap(scenario.summary, 88, initial_indent="    ", subsequent_indent="    ")
        opts = " ".join(_option(p) for p in scenario.params if PARAMS[p].cli)
        lines += textwrap.wrap("options: " + opts, 88, initial_indent="    ", subsequent_indent="        ")
    return "\n".join(lines)


def main(args) -> int:
    """Run the command for parsed ``args``; returns the exit status."""
    if getattr(args, "list", False):
        print(_listing())
        return 0
    if args.scenario is None:
        print(
            f"timewait simulate: scenario: required: must be one of {', '.join(REGISTRY)} (or --list)",
            file=sys.stderr,
        )
        return 2
    params = {name: getattr(args, name) for name in PARAMS if hasattr(args, name)}
    if "drop" in params:
        params["drop"] = tuple(params["drop"])
    try:
        result = simulate(args.scenario, **params)
    except ValueError as exc:
        if args.json:
            print(json.dumps({"error": one_line(exc)}))
        print(f"timewait simulate: {_as_option(str(exc))}", file=sys.stderr)
        return 2
    if args.json:
        print(result.to_json())
    else:
        print(
            str(result)
            if not args.times
            else str(result).rsplit("\n", len(result.trace))[0] + "\n" + result.trace.table(times=True)
        )
    return 0


def run(argv=None) -> int:
    parser = configure(OneLineParser(prog="timewait simulate"))
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run())
