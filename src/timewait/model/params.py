"""One parameter of a scenario (:data:`timewait.model.scenarios.PARAMS`) or of a named
experiment (:mod:`timewait.experiments`): its name, kind, default, help and valid values,
checked the same way from Python and from the command line."""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Optional


def _number(x) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class Param:
    """A parameter; :meth:`check` refuses a wrong value with a ValueError naming the
    parameter and :meth:`valid_range`. A number needs a range (``minimum`` and ``maximum``)
    or ``choices``, unless ``valid`` says in words what decides its range (another
    parameter, checked where both are known). ``None`` is valid where it is the default
    (not set); text and tuples without ``choices`` are checked where they are parsed."""

    name: str  # Python name: "time_wait"; the command line spells it "--time-wait"
    kind: type  # bool, int, float, str or tuple
    default: Any
    help: str
    choices: tuple = ()
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    above_minimum: bool = False  # the minimum itself is not valid (an MSL of 0 s)
    valid: str = ""  # the valid range in words, where it depends on another parameter
    cli: bool = True  # offered as a command-line option

    def __post_init__(self):
        if (self.minimum is None) != (self.maximum is None):
            raise ValueError(f"{self.name}: give both a minimum and a maximum, or neither")
        numeric = self.kind in (int, float) and not self.choices
        if numeric and self.minimum is None and not self.valid:
            raise ValueError(f"{self.name}: a numeric option needs a minimum and a maximum")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def valid_range(self) -> str:
        if self.valid:
            return self.valid
        if self.kind is bool:
            return "True or False"
        if self.choices:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.minimum is None or self.maximum is None:
            return f"a value of type {self.kind.__name__}"
        low, high = _number(self.minimum), _number(self.maximum)
        if self.above_minimum:
            return f"more than {low} and at most {high}"
        return f"between {low} and {high}"

    def check(self, value):
        """``value`` if valid (a number as this parameter's kind: 3.0 for an int is 3), else a
        ValueError naming the parameter and its valid range (``nan`` and ``inf`` are out of
        every range; True is not a number)."""
        if value is None and self.default is None:
            return None
        kind = self.kind
        if kind is bool:
            if not isinstance(value, bool):
                raise self._refused(value)
            return value
        if self.choices:
            # True == 1 == 1.0 in Python: a choice must match in type as well as value, so
            # neither a flag nor a float is a valid choice of an integer option.
            if not any(value == c and type(value) is type(c) for c in self.choices):
                raise self._refused(value)
            return value
        if kind is not int and kind is not float:
            return value
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise self._refused(value)
        low, high = self.minimum, self.maximum
        if low is None or high is None:  # `valid`: checked where the other parameter is known
            return value
        number = float(value)
        if not (low <= number <= high) or (self.above_minimum and number == low):
            raise self._refused(value)
        if kind is float:
            return number
        if not number.is_integer():
            raise self._refused(value)
        return value if isinstance(value, int) else int(number)  # ranges are well within 2**53

    def _refused(self, value) -> ValueError:
        return ValueError(f"{self.name}: must be {self.valid_range()}, got {value!r}")
