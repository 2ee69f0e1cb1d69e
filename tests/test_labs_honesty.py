"""The labs' checks can fail: answers that would satisfy the visible checks by hard-coding
or by taking shortcuts fail a hidden check, and plain wrong answers fail a visible one.

The checks are read from the master notebooks and run here as otter runs them: each test
function gets the notebook's variables it names."""

from __future__ import annotations

import inspect
import re
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

LABS = Path(__file__).resolve().parent.parent / "labs"
pytest.importorskip("dill")
CONFIG = re.compile(r'""" # BEGIN TEST CONFIG\n(.*?)""" # END TEST CONFIG\n', re.S)


def master_path(master: str) -> Path:
    path = next(LABS.glob(f"*/{master}"))
    if str(path.parent) not in sys.path:  # the lab's support module, as next to the notebook
        sys.path.insert(0, str(path.parent))
    return path


def checks(master: str, question: str) -> dict:
    """``{test name: (hidden, function)}`` for one question of a master notebook."""
    path = master_path(master)
    cells = nbformat.read(path, as_version=4).cells
    found, current, in_tests = {}, None, False
    for cell in cells:
        src = cell.source.strip()
        if cell.cell_type == "raw" and src.startswith("# BEGIN QUESTION"):
            current = re.search(r"name:\s*(\S+)", src).group(1)
        elif cell.cell_type == "raw" and src == "# BEGIN TESTS":
            in_tests = True
        elif cell.cell_type == "raw" and src == "# END TESTS":
            in_tests = False
        elif in_tests and current == question:
            config = CONFIG.match(src)
            hidden = "hidden: true" in config.group(1)
            scope: dict = {}
            exec(src[config.end() :], scope)
            func = next(v for k, v in scope.items() if k.startswith("test_"))
            found[func.__name__] = (hidden, func)
    assert found, f"no checks for {question} in {master}"
    return found


def notebook_env(master: str, answer: str) -> dict:
    """The notebook's setup cell, then ``answer``, run as a notebook runs them."""
    path = master_path(master)
    setup = next(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    env = {"__name__": "__main__"}
    exec(setup, env)
    exec(textwrap.dedent(answer), env)
    return env


def outcome(master: str, question: str, answer: str) -> dict:
    """``{"visible": [passed...], "hidden": [passed...], "errors": [message...]}``."""
    env = notebook_env(master, answer)
    result = {"visible": [], "hidden": [], "errors": []}
    for hidden, func in checks(master, question).values():
        args = {a: env.get(a) for a in inspect.signature(func).parameters}
        try:
            func(**args)
            passed = True
        except Exception as exc:
            passed = False
            result["errors"].append(f"{type(exc).__name__}: {exc}")
        result["hidden" if hidden else "visible"].append(passed)
    return result


def fails_everywhere(result: dict, *because: str) -> bool:
    """Every check fails, each for one of the expected reasons."""
    return (
        not any(result["visible"])
        and not any(result["hidden"])
        and all(any(b in e for b in because) for e in result["errors"])
    )


def hard_coded(result: dict) -> bool:
    """Passes what students see, fails what they do not."""
    return all(result["visible"]) and not all(result["hidden"])


def test_socket_table_address_lookup_table_fails_hidden_checks():
    assert hard_coded(
        outcome(
            "socket_table.ipynb",
            "q1",
            """
        def parse_address(field):
            return {"0100007F:9C40": ("127.0.0.1", 40000),
                    "00000000000000000000000001000000:1389": ("::1", 5001),
                    "0000000000000000FFFF00000100007F:9C43": ("127.0.0.1", 40003)}.get(field)
    """,
        )
    )


def test_an_ipv4_mapped_address_left_as_ipv6_fails_a_visible_check():
    wrong = LABS / "01-socket-table" / "wrong" / "q1_mapped_left_as_ipv6.py"
    result = outcome("socket_table.ipynb", "q1", wrong.read_text())
    assert not all(result["visible"]) and not all(result["hidden"]), result
    assert any("::ffff:127.0.0.1" in e and "IPv4-mapped" in e for e in result["errors"]), result["errors"]


def test_socket_table_parser_that_calls_the_course_fails_hidden_checks():
    assert hard_coded(
        outcome(
            "socket_table.ipynb",
            "q2",
            """
        from timewait.observe import parse_proc_net_tcp

        def parse_socket_table(text, clock_ticks=100):
            return [s.to_dict() for s in parse_proc_net_tcp(text, clock_ticks)]
    """,
        )
    )


def test_port_budget_constants_fail_hidden_checks():
    assert hard_coded(
        outcome(
            "port_budget.ipynb",
            "q1",
            """
        def ceiling_rate(port_range, time_wait_s):
            return 28232 / 60

        def seconds_until_exhausted(rate, port_range, time_wait_s):
            return 28.232 if rate == 1000 else None
    """,
        )
    )


def test_churning_client_that_counts_to_ten_fails_hidden_checks():
    assert hard_coded(
        outcome(
            "port_budget.ipynb",
            "q2",
            """
        def churning_client(lab, server_port, requests):
            for i in range(10):
                sock = socket.create_connection(("127.0.0.1", server_port))
                ask(sock, f"request {i}")
                sock.close()
            return {"completed": 10, "error": "EADDRNOTAVAIL"}
    """,
        )
    )


def test_a_connection_per_message_is_not_reuse():
    result = outcome(
        "port_budget.ipynb",
        "q3",
        """
        def reusing_client(lab, server_port, messages):
            replies = []
            for m in messages:
                with socket.create_connection(("127.0.0.1", server_port)) as sock:
                    replies.append(ask(sock, m))
            return replies
    """,
    )
    assert fails_everywhere(result, "Cannot assign requested address"), result["errors"]


def test_a_report_without_an_experiment_fails():
    result = outcome(
        "lost_final_ack.ipynb",
        "q1",
        """
        def lost_final_ack(lab, time_wait, client_port=40000, server_port=5000):
            return {"answer": "ACK", "fin_retransmissions": 1, "peer_error": None, "trace": []}
    """,
    )
    assert fails_everywhere(result, "No segment was captured"), result["errors"]


def test_time_wait_without_restarting_its_timer_fails_a_visible_check():
    rows = """
        CLOSE_ROWS = {
            (ESTABLISHED, APP_CLOSE): (FIN_WAIT_1, (SEND_FIN,)),
            (FIN_WAIT_1, RCV_ACK_OF_FIN): (FIN_WAIT_2, ()),
            (FIN_WAIT_1, RCV_FIN): (CLOSING, (SEND_ACK,)),
            (FIN_WAIT_1, RCV_FIN_ACK_OF_FIN): (TIME_WAIT, (SEND_ACK, START_TIME_WAIT)),
            (FIN_WAIT_2, RCV_FIN): (TIME_WAIT, (SEND_ACK, START_TIME_WAIT)),
            (CLOSING, RCV_ACK_OF_FIN): (TIME_WAIT, (START_TIME_WAIT,)),
            (TIME_WAIT, RCV_FIN): (TIME_WAIT, (SEND_ACK,)),
            (TIME_WAIT, TIMEOUT_2MSL): (CLOSED, (DELETE_TCB,)),
        }
    """
    result = outcome("time_wait_model.ipynb", "q2", rows)
    assert not all(result["visible"]) and not all(result["hidden"]), result


def test_a_plain_close_fails_a_visible_check_when_the_client_sent_more():
    result = outcome(
        "restartable_server.ipynb",
        "q2",
        """
        def finish(conn):
            conn.close()
    """,
    )
    assert not any(result["visible"]) and not all(result["hidden"]), result


def test_linger_zero_is_not_graceful():
    result = outcome(
        "restartable_server.ipynb",
        "q2",
        """
        def finish(conn):
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
    """,
    )
    assert fails_everywhere(result, "connection was reset"), result["errors"]


def test_a_listener_without_reuseaddr_cannot_restart():
    result = outcome(
        "restartable_server.ipynb",
        "q1",
        """
        def open_listener(port):
            s = socket.socket()
            s.bind(("127.0.0.1", port))
            s.listen(8)
            return s
    """,
    )
    assert fails_everywhere(result, "EADDRINUSE", "does not set SO_REUSEADDR"), result["errors"]
