"""Command-line options that refuse a bad value in one line.

Every option of ``timewait`` is checked while the command line is parsed, before anything
runs. A value of the wrong type and a value out of range give the same line, naming the
option and its valid range, and the exit status 2::

    timewait experiment close-wait-leak: --hold: must be between 1 and 60, got 'abc'
    timewait experiment close-wait-leak: --hold: must be between 1 and 60, got '600'
"""

from __future__ import annotations

import argparse
import errno
import os
import re
from collections.abc import Callable

SHOWN_CHARS = 40  # a value is echoed up to this long, so a 100,000-character one stays one line


def shown(text) -> str:
    """The value as typed, quoted and cut short."""
    text = str(text)
    return repr(text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "...")


def one_line(message: str) -> str:
    """``message`` on one line, with any long quoted value in it cut short."""
    message = " ".join(str(message).split())
    return re.sub(rf"(['\"])([^'\"]{{{SHOWN_CHARS}}})[^'\"]+\1", r"\1\2...\1", message)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose every error is one line, ``PROG: --OPTION: problem``, naming
    the option's valid range (set as ``action.valid`` by :func:`add_valid`)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {self._one_line(message)}\n")

    def unknown(self, rest: list):
        """Refuse options this parser does not have (what ``parse_known_args`` left over)."""
        self.error(self._not_an_option(rest[0]))

    def _not_an_option(self, text: str) -> str:
        options = ", ".join(
            s for a in self._actions for s in a.option_strings if s.startswith("--") and s != "--help"
        )
        return f"{shown(text)}: not an option of {self.prog}; options: {options or 'none'}"

    def _one_line(self, message: str) -> str:
        m = re.fullmatch(r"argument (\S+): (.*)", message, re.S)
        if m:
            names, problem = m.groups()
            option = names.split("/")[0]
            action = self._option_string_actions.get(option)
            if action is None:  # a positional argument
                action = next((a for a in self._actions if a.dest == option), None)
            valid = getattr(action, "valid", None)
            explicit = re.fullmatch(r"ignored explicit argument (.*)", problem, re.S)
            choice = re.fullmatch(r"invalid choice: (.*) \(choose from (.*)\)", problem, re.S)
            if explicit:
                problem = f"takes no value (give {names.replace('/', ' or ')}), got {explicit[1]}"
            elif choice:
                problem = f"must be one of {choice[2]}, got {choice[1]}"
            elif problem.startswith("expected") and valid:
                problem = f"needs a value: must be {valid}"
            message = f"{option}: {problem}"
        elif message.startswith("unrecognized arguments: "):
            message = self._not_an_option(message.split(": ", 1)[1].split(" ")[0])
        elif message.startswith("the following arguments are required: "):
            name = message.split(": ", 1)[1].split(", ")[0]
            action = next((a for a in self._actions if a.dest == name or a.metavar == name), None)
            valid = getattr(action, "valid", None) or (
                "one of " + ", ".join(action.choices) if action and action.choices else None
            )
            message = f"{name}: required" + (f": must be {valid}" if valid else "")
        return one_line(message)


def add_valid(action: argparse.Action, valid: str) -> argparse.Action:
    """Note an option's valid range on it, for the messages of :class:`OneLineParser`."""
    action.valid = valid
    return action


def parse_number(kind: type, text: str):
    """``text`` as an int or a float, strictly: ASCII digits only (``float("٣")`` is 3.0),
    no ``1.5`` or ``1e3`` for an int."""
    if not text.isascii():
        raise ValueError(text)
    return kind(text)


def checked(kind: type, valid: str, check: Callable) -> Callable:
    """An argparse ``type``: ``check(value)`` of the text parsed as ``kind`` (str, int,
    float), where a parse error and a ValueError from ``check`` give the same message."""

    def convert(text: str):
        try:
            value = text if kind is str else parse_number(kind, text)
            return check(value)
        except (ValueError, TypeError, OverflowError):
            raise argparse.ArgumentTypeError(f"must be {valid}, got {shown(text)}") from None

    convert.__name__ = kind.__name__
    return convert


INPUT_FILE = "a file that exists and that you can read"


def input_file(text: str) -> str:
    """An argparse ``type`` for a file the command will read: refused now if it is empty,
    missing, a directory or unreadable (what is in it is the command's to judge)."""

    def refuse(why: str):
        raise argparse.ArgumentTypeError(f"must be {INPUT_FILE}, got {shown(text)} ({why})")

    if not text.strip():
        refuse("empty")
    if os.path.isdir(text):
        refuse("a directory")
    try:
        with open(text, "rb"):
            pass
    except ValueError:  # a NUL byte
        refuse("not a file name")
    except OSError as exc:
        refuse(os.strerror(exc.errno) if exc.errno else str(exc))
    return text


OUTPUT_FILE = "a file you can write, in a directory that exists"


def output_file(text: str) -> str:
    """An argparse ``type`` for a file the command will write (``--pcap``): refused now,
    before anything runs, if it is empty, a directory, in a missing directory or unwritable.
    The check opens it for appending (which changes nothing) and removes it if it made it."""

    def refuse(why: str):
        raise argparse.ArgumentTypeError(f"must be {OUTPUT_FILE}, got {shown(text)} ({why})")

    if not text.strip():
        refuse("empty")
    if os.path.isdir(text):
        refuse("a directory")
    existed = os.path.exists(text)
    try:
        with open(text, "ab"):
            pass
    except ValueError:  # a NUL byte
        refuse("not a file name")
    except OSError as exc:
        refuse(
            "no such directory"
            if exc.errno == errno.ENOENT
            else os.strerror(exc.errno)
            if exc.errno
            else str(exc)
        )
    if not existed:
        try:
            os.unlink(text)
        except OSError:
            pass
    return text
