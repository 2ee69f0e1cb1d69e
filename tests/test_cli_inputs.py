"""Every bad value on the command line: exit status 2, one line naming the option and its
valid range, no traceback, within 5 s, and nothing started.

The cases are generated from what the commands declare: each experiment's Params (and
``--timeout``), each scenario's Params, and the options of the other subcommands as their
parsers hold them, so a new option is swept as soon as it exists. The sweep runs the
command in this process (the experiments and recordings are replaced by a tripwire, as
nothing may start); a sample runs as a real process.
"""

import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from timewait import cli, experiments, sandbox
from timewait.cli_options import OUTPUT_FILE
from timewait.experiments.base import TIMEOUT
from timewait.model.scenarios import PARAMS, REGISTRY
from timewait.tiers import ENV_VAR

SRC = Path(__file__).resolve().parent.parent / "src"
LONG = "9" * 100_000
UNICODE = "∞ü三"
FLAG_VALUES = ["yes", "1", "", UNICODE, LONG]  # given as --flag=VALUE to an on/off option
PATH_VALUES = [
    "",
    "/",
    "/nonexistent-dir/x.pcap",
    f"/nonexistent-dir/{UNICODE}.pcap",
    "/proc/timewait-test.pcap",
    "x" * 100_000,
]
GENERIC_NUMBERS = ["0", "-1", "1e18", "inf", "nan", "abc", "1.5x", "", UNICODE, LONG]


def _text(x) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def bad_numbers(kind, minimum, maximum, above_minimum=False) -> list:
    """Out of range above and below, 0 where 0 is invalid, 1e18, inf, nan, a wrong type,
    empty, unicode and a 100,000-character value."""
    values = [
        _text(maximum + 1 if kind is int else maximum * 2 + 1),
        _text(minimum - 1),
        "-1",
        "1e18",
        "inf",
        "-inf",
        "nan",
        "abc",
        "",
        UNICODE,
        LONG,
    ]
    if minimum > 0 or (above_minimum and minimum == 0):
        values.append("0")
    if kind is int:
        values += ["1.5", "2.0", "0x10"]
    return [v for v in dict.fromkeys(values) if v != "-1" or minimum > -1]


def bad_choices(choices) -> list:
    values = ["nosuch", "", UNICODE, LONG, "1.5"]
    if any(isinstance(c, int) for c in choices):
        values += ["abc", "1.0", "-1", "1e18", "nan"]
    return values


def run(capsys, argv, env=None, monkeypatch=None):
    if env is not None:
        monkeypatch.setenv(ENV_VAR, env)
    start = time.monotonic()
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    elapsed = time.monotonic() - start
    out, err = capsys.readouterr()
    return code, out, err, elapsed


@pytest.fixture(autouse=True)
def nothing_may_start(monkeypatch):
    def tripwire(*args, **kwargs):
        raise AssertionError(f"a bad value got through: something started ({args[:1]})")

    monkeypatch.setattr(experiments, "run", tripwire)
    monkeypatch.setattr(experiments, "record_all", tripwire)
    monkeypatch.setattr(sandbox, "run_body", tripwire)
    monkeypatch.delenv(ENV_VAR, raising=False)


def check_refused(capsys, argv, prefix, valid, **kw):
    code, out, err, elapsed = run(capsys, argv, **kw)
    shown = [a if len(a) < 60 else a[:20] + f"...({len(a)} chars)" for a in argv]
    assert code == 2, (shown, code, err[:300])
    assert "Traceback" not in err, (shown, err[:2000])
    lines = err.splitlines()
    assert len(lines) == 1, (shown, err[:2000])
    assert lines[0].startswith(prefix), (shown, lines[0][:300])
    assert valid in lines[0], (shown, valid, lines[0][:300])
    assert len(lines[0]) < 1000, (shown, len(lines[0]))
    assert elapsed < 5, (shown, elapsed)


# ---- experiments ---------------------------------------------------------------------------
def experiment_cases():
    for name in sorted(experiments.REGISTRY):
        exp = experiments.REGISTRY[name]
        for p in exp.params + (TIMEOUT,):
            yield pytest.param(name, p, id=f"{name}{p.flag}")


def values_for(p) -> list:
    if p.kind is bool:
        return [f"{p.flag}={v}" for v in FLAG_VALUES]
    if p.choices:
        values = bad_choices(p.choices)
    else:
        values = bad_numbers(p.kind, p.minimum, p.maximum)
    return [[p.flag, v] for v in values]


@pytest.mark.parametrize("name,param", list(experiment_cases()))
def test_experiment_option_refuses_bad_values(capsys, name, param):
    valid = f"{param.flag} or --no-{param.flag[2:]}" if param.kind is bool else param.valid_range()
    for value in values_for(param):
        argv = ["experiment", name] + ([value] if isinstance(value, str) else value)
        check_refused(capsys, argv, f"timewait experiment {name}: {param.flag}: ", valid)


@pytest.mark.parametrize("name", sorted(experiments.REGISTRY))
def test_experiment_own_options_refuse_bad_values(capsys, name, tmp_path):
    if experiments.REGISTRY[name].captures:  # only these offer --pcap
        for value in PATH_VALUES + [str(tmp_path)]:
            check_refused(
                capsys,
                ["experiment", name, "--pcap", value],
                f"timewait experiment {name}: --pcap: ",
                OUTPUT_FILE,
            )
        check_refused(
            capsys, ["experiment", name, "--pcap"], f"timewait experiment {name}: --pcap: ", OUTPUT_FILE
        )
    else:
        check_refused(
            capsys,
            ["experiment", name, "--pcap", "x.pcap"],
            f"timewait experiment {name}: '--pcap': ",
            "not an option of",
        )
    for value in FLAG_VALUES:
        check_refused(
            capsys,
            ["experiment", name, f"--json={value}"],
            f"timewait experiment {name}: --json: ",
            "takes no value",
        )
    for unknown in ["--nosuch", "--nosuch=1", "extra", UNICODE, "--" + "x" * 100_000]:
        check_refused(
            capsys, ["experiment", name, unknown], f"timewait experiment {name}: ", "not an option of"
        )
    assert not list(tmp_path.iterdir())


def test_experiment_names_are_checked_with_help_too(capsys):
    for value in ["nosuch", "", UNICODE, LONG]:
        for extra in ([], ["--help"], ["-h"], ["--timeout", "5"]):
            check_refused(
                capsys,
                ["experiment", value, *extra],
                "timewait experiment: experiment: ",
                "must be one of abortive-close",
            )


# ---- simulate --------------------------------------------------------------------------------
def scenario_cases():
    for scenario, spec in REGISTRY.items():
        for name in spec.params:
            if PARAMS[name].cli:
                yield pytest.param(scenario, name, id=f"{scenario}--{name}")


@pytest.mark.parametrize("scenario,name", list(scenario_cases()))
def test_simulate_option_refuses_bad_values(capsys, scenario, name):
    par = PARAMS[name]
    flag = "--" + name.replace("_", "-")
    if par.kind is bool:
        cases, valid = [[f"{flag}={v}"] for v in FLAG_VALUES], f"{flag} or --no-{flag[2:]}"
    elif name == "drop":
        cases = [
            [flag, v] for v in ("", "client", "client:ACK:0", "client:ACK:x", "nobody:ACK:1", UNICODE, LONG)
        ]
        valid = "SENDER:FLAGS:N"
    elif par.choices:
        cases, valid = [[flag, v] for v in bad_choices(par.choices)], par.valid_range()
    elif par.minimum is not None:
        cases = [[flag, v] for v in bad_numbers(par.kind, par.minimum, par.maximum, par.above_minimum)]
        valid = par.valid_range()
    else:  # a range set by another parameter (at most the MSL): the model states it
        cases, valid = [[flag, v] for v in GENERIC_NUMBERS + ["31"]], "must be"
    for case in cases + [[flag]] * (par.kind is not bool):
        check_refused(capsys, ["simulate", scenario, *case], f"timewait simulate: {flag}: ", valid)


def test_simulate_scenario_and_unknown_options(capsys):
    for value in ["nosuch", "", UNICODE, LONG]:
        check_refused(
            capsys, ["simulate", value], "timewait simulate: scenario: ", "must be one of four-way-close"
        )
    for unknown in ["--nosuch", "--nosuch=1", "extra", UNICODE, "--" + "x" * 100_000]:
        check_refused(
            capsys, ["simulate", "four-way-close", unknown], "timewait simulate: ", "not an option of"
        )


# ---- the other subcommands, from their parsers ------------------------------------------------
def other_options():
    _, sub = cli.build_parser()
    for command, parser in sub.choices.items():
        if command in ("experiment", "simulate"):
            continue
        # A readable file stands for a required argument (analyze's capture).
        positional = [__file__ for a in parser._actions if not a.option_strings and a.nargs is None]
        for action in parser._actions:
            if not action.option_strings or action.dest == "help":
                continue
            yield pytest.param(command, positional, action, id=f"{command}{action.option_strings[0]}")


@pytest.mark.parametrize("command,positional,action", list(other_options()))
def test_other_subcommand_options_refuse_bad_values(capsys, command, positional, action):
    flag = action.option_strings[0]
    if action.nargs == 0:
        cases, valid = [[f"{flag}={v}"] for v in FLAG_VALUES], "takes no value"
    elif action.metavar in ("FILE", "DIR"):  # a path: the message may say what it lacks
        cases, valid = [[flag, v] for v in PATH_VALUES], getattr(action, "valid", "")
    else:
        valid = getattr(action, "valid", "must be")
        cases = [[flag, v] for v in GENERIC_NUMBERS if v != "0" or "between 0 and" not in valid]
    for case in cases:
        check_refused(capsys, [command, *positional, *case], f"timewait {command}: {flag}: ", valid)


def other_arguments():
    _, sub = cli.build_parser()
    for command, parser in sub.choices.items():
        for action in parser._actions:
            if not action.option_strings and hasattr(action, "valid"):
                yield pytest.param(command, action, id=f"{command}-{action.dest}")


@pytest.mark.parametrize("command,action", list(other_arguments()))
def test_other_subcommand_arguments_refuse_bad_values(capsys, command, action):
    for value in PATH_VALUES:
        check_refused(capsys, [command, value], f"timewait {command}: {action.dest}: ", action.valid)


@pytest.mark.parametrize("command", ["tier", "record", "doctor", "analyze"])
def test_unknown_options_of_other_subcommands(capsys, command):
    positional = [__file__] if command == "analyze" else []
    for unknown in ["--nosuch", "--nosuch=1", "--" + "x" * 100_000]:
        check_refused(capsys, [command, *positional, unknown], f"timewait {command}: ", "not an option of")


def test_commands_and_recorded_names(capsys):
    for value in ["nosuch", "", UNICODE, LONG]:
        check_refused(capsys, [value], "timewait: command: ", "must be one of")
        check_refused(
            capsys, ["record", value], "timewait record: experiment: ", "must be one of abortive-close"
        )
        check_refused(
            capsys,
            ["record", "four-way-close", value],
            "timewait record: experiment: ",
            "must be one of abortive-close",
        )
    check_refused(capsys, [], "timewait: command: ", "must be one of")


# ---- the environment ---------------------------------------------------------------------------
BAD_TIERS = ["bogus", "fulll", "0", UNICODE, "full host", LONG]


@pytest.mark.parametrize(
    "argv", [["tier"], ["experiment", "four-way-close"], ["record", "four-way-close"]], ids=lambda a: a[0]
)
def test_bad_tier_variable(capsys, monkeypatch, argv):
    for value in BAD_TIERS:
        check_refused(
            capsys,
            argv,
            f"timewait {argv[0]}: {ENV_VAR}: ",
            "must be one of none, host, full",
            env=value,
            monkeypatch=monkeypatch,
        )


def test_every_variable_the_package_reads_is_swept():
    """A new TIMEWAIT_* variable in the package must join the sweep above."""
    names = set()
    for path in (SRC / "timewait").rglob("*.py"):
        names |= set(re.findall(r"\bTIMEWAIT_[A-Z_]+\b", path.read_text()))
    assert names == {ENV_VAR}, f"environment variables read by the package: {sorted(names)}"


# ---- the Python API takes the same ranges --------------------------------------------------------
@pytest.mark.parametrize("value", [0, -1, 0.5, 3601, 1e18, math.inf, math.nan, "5", True])
def test_run_refuses_a_bad_timeout_before_starting(value):
    with pytest.raises(ValueError, match=r"^timeout: must be between 1 and 3600"):
        experiments.base.run("four-way-close", timeout=value)


@pytest.mark.parametrize("value", [0, -1, math.inf, math.nan, "5"])
def test_run_body_refuses_a_timeout_it_cannot_keep(value):
    from importlib import reload  # the tripwire replaced run_body in the module

    fresh = reload(sandbox)
    with pytest.raises(ValueError, match=r"^timeout: must be a number of seconds"):
        fresh.run_body("tests.engine_bodies:fails", {}, timeout=value)


# ---- as a real process ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv,env,needle",
    [
        (["experiment", "nosuch", "--help"], None, "timewait experiment: experiment: must be one of"),
        (
            ["experiment", "four-way-close", "--timeout", "inf"],
            None,
            "timewait experiment four-way-close: --timeout: must be between 1 and 3600, got 'inf'",
        ),
        (
            ["experiment", "close-wait-leak", "--connections", "abc"],
            None,
            "timewait experiment close-wait-leak: --connections: must be between 1 and 100, got 'abc'",
        ),
        (
            ["experiment", "four-way-close", "--pcap", "/nonexistent-dir/x.pcap"],
            None,
            f"--pcap: must be {OUTPUT_FILE}, got '/nonexistent-dir/x.pcap' (no such directory)",
        ),
        (
            ["simulate", "lost-fin", "--fin-losses", "1000000000000000000"],
            None,
            "timewait simulate: --fin-losses: must be between 0 and 100, got '1000000000000000000'",
        ),
        (
            ["simulate", "old-duplicate", "--reconnect-delay", LONG],
            None,
            "timewait simulate: --reconnect-delay: must be between 0 and 86400, got '9999",
        ),
        (["tier"], "bogus", "timewait tier: TIMEWAIT_TIER: must be one of none, host, full, got 'bogus'"),
    ],
)
def test_as_a_real_process(argv, env, needle):
    environ = dict(os.environ, PYTHONPATH=str(SRC))
    environ.pop(ENV_VAR, None)
    if env is not None:
        environ[ENV_VAR] = env
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "timewait.cli", *argv], env=environ, capture_output=True, text=True, timeout=30
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1, proc.stderr[-2000:]
    assert needle in proc.stderr
    # Refused while the options are read: the interpreter's start and the course's imports
    # only (about a second on a quiet machine, several under load), never an experiment's run.
    assert elapsed < 15
