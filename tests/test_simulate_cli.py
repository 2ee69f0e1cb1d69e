"""`timewait simulate`: scenarios by name, options from the model's parameters, JSON out."""

import json

import pytest

from timewait import simulate_cli
from timewait.cli_options import OneLineParser


def run(capsys, *argv):
    parser = OneLineParser(prog="timewait")
    sub = parser.add_subparsers(dest="command")
    simulate_cli.add_parser(sub)
    try:
        args = parser.parse_args(["simulate", *argv])
        code = args.func(args)
    except SystemExit as exc:  # refused while parsing
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_lost_final_ack_without_time_wait_is_a_peer_reset(capsys):
    code, out, _ = run(capsys, "lost-final-ack", "--time-wait-msl", "0", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["outcome"] == "peer-reset"
    assert data["end_states"] == {"client": "CLOSED", "server": "CLOSED"}


def test_with_time_wait_it_is_a_clean_close(capsys):
    code, out, _ = run(capsys, "lost-final-ack", "--json")
    assert json.loads(out)["outcome"] == "clean-close"


def test_list_names_every_scenario(capsys):
    code, out, _ = run(capsys, "--list")
    assert code == 0
    for name in ("four-way-close", "simultaneous-close", "lost-final-ack", "old-duplicate"):
        assert name in out


def test_text_output_is_a_table(capsys):
    code, out, _ = run(capsys, "four-way-close", "--closer", "server")
    assert code == 0
    assert "outcome clean-close" in out and "server -> client FIN|ACK" in out


def test_seed_and_options_reach_the_model(capsys):
    _, a, _ = run(capsys, "four-way-close", "--loss", "0.3", "--seed", "5", "--json")
    _, b, _ = run(capsys, "four-way-close", "--loss", "0.3", "--seed", "5", "--json")
    assert a == b and json.loads(a)["params"]["seed"] == 5


def test_drop_rule_and_boolean_options(capsys):
    _, out, _ = run(
        capsys, "old-duplicate", "--isn", "fixed", "--time-wait-msl", "0", "--timestamps", "--json"
    )
    data = json.loads(out)
    assert (data["outcome"], data["defence"]) == ("old-duplicate-rejected", "paws")
    _, out, _ = run(capsys, "four-way-close", "--drop", "server:FIN|ACK:1", "--json")
    assert "server: FIN|ACK (dropped)" in json.loads(out)["flags"]


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["four-way-close", "--loss", "1.5"], "--loss: must be between 0 and 1, got '1.5'"),
        (["old-duplicate", "--closer", "server"], "closer: scenario 'old-duplicate' does not use"),
        (["no-such-scenario"], "scenario: must be one of"),
        ([], "scenario"),
    ],
)
def test_bad_input_is_a_message_and_status_2(capsys, argv, needle):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert needle in err and "Traceback" not in err
