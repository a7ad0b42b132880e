"""Hyperparameters declared once, as data.

Each algorithm lists its hyperparameters as :class:`Hyperparameter` entries in a
:class:`HyperparameterTable`. Everything else derives from that table: parsing SageMaker's strings,
validation that reports every problem at once, the estimator's constructor signature and
``get_params``, ``to_sagemaker()`` and the tuning search space.

SageMaker passes every value as a string (``"true"``, ``"0.1"``, ``'["msd", "ssd"]'``, ``"auto"``);
values are parsed by the *declared* kind, never sniffed, and as strictly as SageMaker parses them.

How strings are read (one rule for every algorithm). The oracle is SageMaker's algorithm toolkit
(``sagemaker_algorithm_toolkit/hyperparameter_validation.py``, used by the XGBoost container; the
first-party algorithms' own validator is not public, and the SDK's descriptors convert with ``int()``
too): an integer is ``int(text)``, a number ``float(text)``, a choice is compared exactly.

* ``int``: what Python's ``int()`` reads: optional sign, decimal digits, optional surrounding whitespace
  (``" 7 "``, ``"+7"``). ``"1.0"``, ``"1e3"``, ``"7."`` are not integers: SageMaker refuses them.
* ``float``: what ``float()`` reads (surrounding whitespace included), except NaN.
* ``categorical``, ``string``, ``bool`` and ``"auto"``: exact, no whitespace is stripped
  (``"binary:logistic "`` is not a choice). ``bool`` and ``"auto"`` ignore case (the SDK sends
  ``str(True)``, i.e. ``"True"``); a fully JSON-quoted value (``'"hinge"'``, as script-mode estimators send)
  is unquoted.
* lists: items follow the rules above (a JSON ``1.0`` in an integer list is refused like ``"1.0"``).

Formats no kind covers are declared, not subclassed: ``exact=True`` compares a choice (and ``"auto"``)
to the letter, with no unquoting or case folding (the XGBoost container); ``also`` lists literal words
accepted besides the kind's values (Linear Learner's ``'balanced'``, the SDK's extra criteria); ``reader``
reads the string (``ast.literal_eval`` for a Python tuple), ``convert`` turns a read or typed value into
the parameter's value and ``check`` says whether it is valid (each raising ``ValueError`` / ``TypeError``
or returning False for an invalid value); ``describe`` is then the "allowed" text of error messages.
``also`` words ignore case and JSON quotes (unless ``exact``); values that must match to the letter go in
``choices`` or a ``check``. Hooks are module-level functions beside the table that use only public rules
(:func:`as_int`, :func:`parse_bool`), never ``_Invalid``. DeepAR's ``time_freq`` fits as a ``string`` with
its base units as ``choices``, a ``reader`` that strips and unquotes, a ``check`` for "an optional multiple
>= 1, then a unit" and a ``describe``; its feature switches (``cardinality``, ``num_dynamic_feat``) as
``json`` with ``auto=True``, a ``reader`` that strips and returns ``auto`` / ``ignore`` / ``""`` as words or
``json.loads`` the rest, a ``convert`` that keeps those words and applies :func:`as_int` (per item for
``cardinality``), a ``check`` for ">= 1" and a ``describe``.

Typed Python values (constructor keywords) are the caller's own objects: an integer kind takes ``int``,
numpy integers and integral floats (``10.0``, as the SDK's ``int(value)`` would), never ``bool``,
non-integral or non-finite numbers.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import HyperparameterError

KINDS = ("int", "float", "bool", "categorical", "string", "int_list", "float_list", "json")

#: Keys SageMaker itself adds to hyperparameters.json; accepted and ignored.
IGNORED_KEYS = ("_tuning_objective_metric",)
IGNORED_PREFIXES = ("sagemaker_",)

AUTO = "auto"


class _Required:
    """Sentinel default of a hyperparameter that has no documented default."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()


class _Invalid(Exception):
    """Internal: one value failed to parse or validate; the message says what is allowed."""


@dataclass(frozen=True)
class Hyperparameter:
    """The declaration of one SageMaker hyperparameter.

    Parameters
    ----------
    name : SageMaker's exact name.
    kind : one of ``KINDS``.
    default : the documented default (a typed value, ``"auto"``), ``None`` for "unset/optional
        without default", or ``REQUIRED`` when the user must supply it.
    range : ``(low, high)`` bounds for numbers (and for each item of a list); ``None`` = open side.
    closed : whether each bound is included.
    choices : allowed values for ``categorical`` (and items of ``string`` lists when given).
    auto : whether the literal string ``"auto"`` is allowed.
    required_when : ``(text, predicate)``; the predicate receives the parsed values and says
        whether this parameter must then be given.
    tunable, tuning_range, tuning_scale : automatic model tuning metadata.
    doc : one line for docstrings and error messages.
    """

    name: str
    kind: str
    default: Any = None
    range: tuple[float | None, float | None] | None = None
    closed: tuple[bool, bool] = (True, True)
    choices: tuple | None = None
    auto: bool = False
    required_when: tuple[str, Callable[[Mapping[str, Any]], bool]] | None = None
    tunable: bool = False
    tuning_range: tuple | None = None
    tuning_scale: str = "Auto"
    doc: str = ""
    #: Other names the algorithm accepts for this parameter (XGBoost's ``learning_rate`` for ``eta``).
    aliases: tuple[str, ...] = ()
    #: ``(text, predicate)``: the parameter only matters when the predicate (over the parsed values, ``None``
    #: = not given) holds; otherwise a value of the right kind is accepted and its range and choices are not
    #: applied (Linear Learner ignores ``num_classes`` unless multiclass).
    used_when: tuple[str, Callable[[Mapping[str, Any]], bool]] | None = None
    #: Choices and ``"auto"`` compared exactly: no JSON unquoting, no case folding.
    exact: bool = False
    #: Literal words accepted besides the kind's values (case-insensitive unless ``exact``).
    also: tuple[str, ...] = ()
    #: Reads the string form instead of the kind's rule (see the module docstring).
    reader: Callable[[str], Any] | None = None
    #: Turns a read or typed value into the parameter's value (replacing the kind's coercion).
    convert: Callable[[Any], Any] | None = None
    #: Whether a converted value is valid (instead of the range and choices check).
    check: Callable[[Any], bool] | None = None
    #: The "allowed" text of error messages, for a ``reader`` / ``convert`` / ``check`` the kind cannot say.
    describe: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"hyperparameter '{self.name}': unknown kind {self.kind!r}")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def constructor_default(self) -> Any:
        """Default used in the estimator's ``__init__`` signature (``None`` when required)."""
        return None if self.default is REQUIRED else self.default

    # ----------------------------------------------------------------------------- description
    def allowed(self) -> str:
        """What this parameter accepts, in words (used in every error message)."""
        kinds = {"int": "an integer", "float": "a number", "bool": "true or false",
                 "string": "a string", "int_list": "a list of integers",
                 "float_list": "a list of numbers", "json": "a JSON value"}
        if self.describe is not None:
            return self.describe + "".join(f" or {word!r}" for word in self.also)
        if self.kind == "categorical":
            text = "one of " + ", ".join(repr(c) for c in self.choices or ())
        else:
            text = kinds[self.kind]
            if self.range is not None:
                text += _describe_range(self.range, self.closed)
            if self.choices is not None and self.kind != "categorical":
                text += " from " + ", ".join(repr(c) for c in self.choices)
        if self.auto:
            text += " or 'auto'"
        return text + "".join(f" or {word!r}" for word in self.also)

    # ---------------------------------------------------------------------------------- parse
    def parse(self, value: Any) -> Any:
        """A typed, validated value from a SageMaker string or a typed Python value.

        Raises ``_Invalid`` with a message saying what is allowed; callers collect these.
        """
        if self._is_auto(value):
            return AUTO
        word = self._also(value)
        if word is not None:
            return word
        value = self._parse_kind(value)
        self._check(value)
        return value

    def _is_auto(self, value: Any) -> bool:
        if not self.auto or not isinstance(value, str):
            return False
        return value == AUTO if self.exact else value.lower() == AUTO

    def _also(self, value: Any) -> str | None:
        """The ``also`` word ``value`` names (JSON-quoted too unless exact), else None."""
        if not self.also or not isinstance(value, str):
            return None
        text = value
        if not self.exact:
            if len(text) >= 2 and text[0] == text[-1] == '"':
                text = text[1:-1]
            text = text.lower()
        return next((word for word in self.also if (word if self.exact else word.lower()) == text), None)

    def _parse_kind(self, value: Any) -> Any:
        """``value`` parsed by kind (strings as the module docstring says), before range and choices."""
        if self._is_auto(value):  # exact but for case, like a choice
            return AUTO
        word = self._also(value)
        if word is not None:
            return word
        if isinstance(value, str):
            value = self._from_string(value)
        return self._coerce(value)

    def _from_string(self, text: str) -> Any:
        kind = self.kind
        if self.reader is not None:
            try:
                return self.reader(text)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                raise _Invalid from None
        if kind in ("categorical", "string") and self.exact:
            return text
        if kind in ("categorical", "string"):
            # Script-mode estimators json.dumps every value, so strings may arrive quoted.
            if len(text) >= 2 and text[0] == text[-1] == '"':
                try:
                    return json.loads(text)
                except ValueError:
                    return text
            return text
        if kind == "bool":
            flag = parse_bool(text)
            if flag is None:
                raise _Invalid
            return flag
        if kind == "int":
            return _int_from_text(text)
        if kind == "float":
            try:
                if not text.isascii():
                    raise ValueError
                return float(text)  # the toolkit's ContinuousHyperparameter: float(value)
            except ValueError:
                raise _Invalid from None
        if kind in ("int_list", "float_list"):
            try:
                parsed = json.loads(text)
            except ValueError:
                # The developer guide writes lists comma-separated: "1,2,3" or "[1,2,3]".
                parsed = [p for p in text.strip().strip("[]").split(",") if p.strip()]
            if not isinstance(parsed, list):
                parsed = [parsed]
            if kind == "int_list" and any(isinstance(p, float) for p in parsed):
                raise _Invalid  # "[1.0]" writes an integer as "1.0", which int() refuses
            item = Hyperparameter(self.name, "int" if kind == "int_list" else "float")
            return [item._from_string(p) if isinstance(p, str) else p for p in parsed]
        try:  # json
            return json.loads(text)
        except ValueError:
            raise _Invalid from None

    def _coerce(self, value: Any) -> Any:
        kind = self.kind
        if self.convert is not None:
            try:
                return self.convert(value)
            except (ValueError, TypeError):
                raise _Invalid from None
        if kind == "bool":
            if isinstance(value, (bool, np.bool_)):
                return bool(value)
            raise _Invalid
        if kind == "int":
            return _as_int(value)
        if kind == "float":
            return _as_float(value)
        if kind in ("int_list", "float_list"):
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise _Invalid
            convert = _as_int if kind == "int_list" else _as_float
            return [convert(v) for v in value]
        if kind in ("categorical", "string"):
            if not isinstance(value, str):
                raise _Invalid
            return value
        return value  # json: any JSON-serialisable value

    def _check(self, value: Any) -> None:
        if self.check is not None:
            try:
                valid = self.check(value)
            except (ValueError, TypeError):
                valid = False
            if not valid:
                raise _Invalid
            return
        if self.kind == "categorical":
            if value not in (self.choices or ()):
                raise _Invalid
            return
        items = value if self.kind in ("int_list", "float_list") else [value]
        if self.kind in ("int_list", "float_list") and not items:
            raise _Invalid
        for item in items:
            if self.range is not None and not _in_range(item, self.range, self.closed):
                raise _Invalid
            if self.choices is not None and item not in self.choices:
                raise _Invalid

    def to_string(self, value: Any) -> str:
        """The string hyperparameters.json holds for ``value`` (the SDK's ``str`` / ``json.dumps``)."""
        if isinstance(value, (list, tuple, dict)):
            return json.dumps(value)
        return str(value)


def parse_bool(value: Any) -> bool | None:
    """The one boolean rule: a bool (numpy's too), or ``"true"`` / ``"false"`` in any case; None otherwise.

    Hyperparameters, Accept parameters (``verbose=true``) and request flags all read booleans with it;
    callers strip white space where their format allows it and raise their own error for None.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _int_from_text(text: str) -> int:
    """An integer string read as SageMaker's algorithm toolkit reads it: ``int(text)``.

    So an optional sign, digits and surrounding whitespace (``" 7 "``, ``"+7"``; Python's ``int`` also
    allows ``_`` between digits) are accepted, and ``"1.0"``, ``"1e3"``, ``"7."``, ``""`` are not integers.
    Only ASCII is read (``int`` would also take other scripts' digits, which no SageMaker client writes).
    """
    if not text.isascii():
        raise _Invalid
    try:
        return int(text)
    except ValueError:
        raise _Invalid from None


def _as_int(value: Any) -> int:
    """A typed value as an integer: ``int`` and numpy integers exactly, integral finite floats converted."""
    if isinstance(value, (bool, np.bool_)):
        raise _Invalid
    if hasattr(value, "__index__"):  # int, numpy integers: exact, however large
        return operator.index(value)
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        raise _Invalid from None
    if not math.isfinite(as_float) or as_float != int(as_float):
        raise _Invalid
    return int(as_float)


def as_int(value: Any) -> int:
    """The integer rule for typed values, for ``convert`` hooks: ``int`` and numpy integers exactly, integral
    finite floats converted; ``bool`` and anything else raise ``ValueError``."""
    try:
        return _as_int(value)
    except _Invalid:
        raise ValueError(f"not an integer: {value!r}") from None


def _as_float(value: Any) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise _Invalid
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise _Invalid from None
    if math.isnan(out):
        raise _Invalid
    return out


def _in_range(value: float, bounds, closed) -> bool:
    low, high = bounds
    if low is not None and (value < low or (value == low and not closed[0])):
        return False
    if high is not None and (value > high or (value == high and not closed[1])):
        return False
    return True


def _describe_range(bounds, closed) -> str:
    low, high = bounds
    if low is not None and high is not None:
        return f" in {'[' if closed[0] else '('}{low}, {high}{']' if closed[1] else ')'}"
    if low is not None:
        return f" {'>=' if closed[0] else '>'} {low}"
    if high is not None:
        return f" {'<=' if closed[1] else '<'} {high}"
    return ""


@dataclass
class HyperparameterTable:
    """All hyperparameters of one algorithm, in declaration order."""

    algorithm: str
    entries: list[Hyperparameter] = field(default_factory=list)

    def __post_init__(self):
        self._by_name = {hp.name: hp for hp in self.entries}
        if len(self._by_name) != len(self.entries):
            raise ValueError(f"{self.algorithm}: duplicate hyperparameter names")
        self._aliases = {alias: hp.name for hp in self.entries for alias in hp.aliases}

    def canonical(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` with alias names replaced by the declared names (one name per parameter).

        Giving a parameter under two of its names is reported as a :class:`HyperparameterError`.
        """
        if not self._aliases or not any(name in self._aliases for name in values):
            return dict(values)
        out: dict[str, Any] = {}
        problems = []
        for name, value in values.items():
            target = self._aliases.get(name, name)
            if out.get(target) is not None and value is not None:  # None means "not given"
                problems.append((target, f"hyperparameter '{target}' is given twice (as '{name}' and under "
                                         f"another of its names: {', '.join([target, *self[target].aliases])})"))
            if value is not None or target not in out:
                out[target] = value
        if problems:
            raise HyperparameterError(self.algorithm, problems)
        return out

    def __iter__(self):
        return iter(self.entries)

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Hyperparameter:
        return self._by_name[name]

    @property
    def names(self) -> list[str]:
        return [hp.name for hp in self.entries]

    def defaults(self) -> dict[str, Any]:
        """The constructor defaults (``None`` for required parameters)."""
        return {hp.name: hp.constructor_default for hp in self.entries}

    def parse(self, values: Mapping[str, Any], *, require: bool = False,
              check: Callable[[dict[str, Any]], list[tuple[str, str]]] | None = None,
              excused: Collection[str] = ()) -> dict[str, Any]:
        """Parse and validate ``values`` (strings or typed); return every parameter, typed.

        Unknown names, values of the wrong kind or out of range, and (with ``require``) missing
        required ones are all collected and raised together in one :class:`HyperparameterError`.
        ``None`` means "not given". ``check`` adds cross-parameter problems once the parts are valid.
        ``excused`` names are not demanded by ``require`` (values ``fit`` will take from the data).
        """
        values = self.canonical(values)
        problems: list[tuple[str, str]] = []
        for name in values:
            if name not in self._by_name and not _ignored(name):
                problems.append((name, f"unknown hyperparameter '{name}'; "
                                       f"known: {', '.join(sorted(self._by_name))}"))
        parsed: dict[str, Any] = {}
        unused: dict[str, Any] = {}  # used_when parameters whose value is valid but for range or choices
        for hp in self.entries:
            raw = values.get(hp.name)
            if raw is None:
                parsed[hp.name] = hp.constructor_default
                continue
            try:
                parsed[hp.name] = hp.parse(raw)
            except _Invalid:
                parsed[hp.name] = hp.constructor_default
                if hp.used_when is not None:
                    try:
                        parsed[hp.name] = hp._parse_kind(raw)
                        unused[hp.name] = raw
                        continue
                    except _Invalid:
                        pass
                problems.append((hp.name, f"hyperparameter '{hp.name}' must be {hp.allowed()}; "
                                          f"got {_show(raw)}"))
        for name, raw in unused.items():  # out of range: a problem only where the parameter is used
            hp = self._by_name[name]
            if hp.used_when[1](parsed):
                problems.append((name, f"hyperparameter '{name}' must be {hp.allowed()} when "
                                       f"{hp.used_when[0]}; got {_show(raw)}"))
                parsed[name] = hp.constructor_default
        if require:
            problems += self._missing(parsed, {name for name, _ in problems} | set(excused))
        if check is not None and not problems:
            problems += check(parsed)
        if problems:
            raise HyperparameterError(self.algorithm, problems)
        return parsed

    def _missing(self, parsed: dict[str, Any], bad: set[str]) -> list[tuple[str, str]]:
        problems = []
        for hp in self.entries:
            if parsed[hp.name] is not None or hp.name in bad:
                continue
            if hp.required:
                problems.append((hp.name, f"missing required hyperparameter '{hp.name}' "
                                          f"({hp.allowed()})"))
            elif hp.required_when is not None and hp.required_when[1](parsed):
                problems.append((hp.name, f"hyperparameter '{hp.name}' is required when "
                                          f"{hp.required_when[0]} ({hp.allowed()})"))
        return problems

    def to_sagemaker(self, values: Mapping[str, Any]) -> dict[str, str]:
        """The ``hyperparameters.json`` dict of strings for the given (typed) values; ``None`` omitted."""
        return {hp.name: hp.to_string(values[hp.name]) for hp in self.entries
                if values.get(hp.name) is not None}

    def search_space(self) -> dict[str, dict[str, Any]]:
        """Tuning ranges of the tunable parameters, in SageMaker's ``ParameterRanges`` terms."""
        space = {}
        for hp in self.entries:
            if not hp.tunable or hp.tuning_range is None:
                continue
            if hp.kind == "categorical" or (hp.kind == "bool"):
                space[hp.name] = {"type": "Categorical", "values": list(hp.tuning_range)}
            else:
                low, high = hp.tuning_range
                space[hp.name] = {"type": "Integer" if hp.kind == "int" else "Continuous",
                                  "min": low, "max": high, "scaling": hp.tuning_scale}
        return space


def _ignored(name: str) -> bool:
    return name in IGNORED_KEYS or name.startswith(IGNORED_PREFIXES)


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else f"{value!r} ({type(value).__name__})"
