"""The JSONPath subset of batch transform's ``InputFilter`` / ``OutputFilter``.

Supported, as SageMaker documents: ``$``; ``.name``; ``*`` (``.*``, ``[*]``); ``['a','b']``; ``[n]`` and
``[n,m,...]`` with negative indices (``-1`` = last); slices ``[start:end]`` with either side omitted,
and lists mixing indices and slices (``$[0,5:]``). A CSV row is a JSON array of its cells, so only
index paths apply to it.

Selections follow Jayway JsonPath (which the DG points to): a single name or index selects the value
itself; several indices, a slice or ``*`` select an array; several names select an object holding
those keys (``$['id','SageMakerOutput']``); later steps apply to each selected element.

Slice ends: the DG says ``$[1:4]`` selects the 2nd through 5th columns, an *inclusive* end unlike
standard JSONPath; unverified against the service, so it is the default here and ``inclusive_end=False``
gives the standard reading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..base.errors import SagelocalError

_NAME = re.compile(r"[A-Za-z_$][\w$-]*")
_INDEX = re.compile(r"\s*(-?\d+)\s*")
_SLICE = re.compile(r"\s*(-?\d*)\s*:\s*(-?\d*)\s*")
_QUOTED = re.compile(r"\s*'((?:[^'\\]|\\.)*)'\s*|\s*\"((?:[^\"\\]|\\.)*)\"\s*")


class JSONPathError(SagelocalError):
    """A JSONPath outside the supported subset, or one that does not fit a record."""


@dataclass(frozen=True)
class _Step:
    kind: str  # "name", "names", "index", "indices", "wildcard"
    items: tuple = ()


class JSONPath:
    """A compiled filter expression; :meth:`apply` evaluates it on a decoded record.

    Parameters
    ----------
    expression : str
        The filter, e.g. ``"$[1:]"``, ``"$.features"``, ``"$['id','SageMakerOutput']"``.
    inclusive_end : bool
        Read slice ends as inclusive, as the SageMaker Developer Guide describes (default).
    """

    def __init__(self, expression: str, *, inclusive_end: bool = True):
        self.expression = expression
        self.inclusive_end = inclusive_end
        self.steps = _parse(expression)

    @property
    def is_root(self) -> bool:
        """True for ``$`` (the whole record: no filtering)."""
        return not self.steps

    def apply(self, value: Any) -> Any:
        """The selection of ``value``; :class:`JSONPathError` when the path does not fit it."""
        return self._apply(value, 0)

    def _apply(self, value: Any, position: int) -> Any:
        if position == len(self.steps):
            return value
        step = self.steps[position]
        if step.kind == "name":
            return self._apply(self._member(value, step.items[0]), position + 1)
        if step.kind == "index":
            return self._apply(self._element(value, step.items[0]), position + 1)
        if step.kind == "names":
            if not isinstance(value, dict):
                raise self._error(f"selects keys of an object; got {_kind(value)}")
            return {name: self._apply(self._member(value, name), position + 1) for name in step.items}
        selected = self._many(value, step)
        return [self._apply(item, position + 1) for item in selected]

    def _member(self, value: Any, name: str) -> Any:
        if not isinstance(value, dict):
            raise self._error(f"selects key '{name}' of an object; got {_kind(value)}")
        if name not in value:
            raise self._error(f"the record has no key '{name}'")
        return value[name]

    def _element(self, value: Any, index: int) -> Any:
        if not isinstance(value, list):
            raise self._error(f"selects index {index} of an array; got {_kind(value)}")
        if not -len(value) <= index < len(value):
            raise self._error(f"index {index} is outside the record's {len(value)} elements")
        return value[index]

    def _many(self, value: Any, step: _Step) -> list:
        if step.kind == "wildcard":
            if isinstance(value, dict):
                return list(value.values())
            if isinstance(value, list):
                return list(value)
            raise self._error(f"'*' needs an object or an array; got {_kind(value)}")
        if not isinstance(value, list):
            raise self._error(f"selects indices of an array; got {_kind(value)}")
        out = []
        for item in step.items:
            if isinstance(item, int):
                out.append(self._element(value, item))
            else:
                out.extend(value[self._slice(item, len(value))])
        return out

    def _slice(self, bounds: tuple, length: int) -> slice:
        start, end = bounds
        start = 0 if start is None else (start + length if start < 0 else start)
        if end is None:
            stop = length
        else:
            end = end + length if end < 0 else end
            stop = end + 1 if self.inclusive_end else end
        return slice(max(0, start), max(0, min(stop, length)))

    def _error(self, message: str) -> JSONPathError:
        return JSONPathError(f"JSONPath '{self.expression}': {message}")

    def __repr__(self) -> str:
        return f"JSONPath({self.expression!r})"


def _parse(expression: str) -> tuple[_Step, ...]:
    if not isinstance(expression, str) or not expression.strip().startswith("$"):
        raise JSONPathError(f"a JSONPath must start with '$'; got {expression!r}")
    text, pos, steps = expression.strip(), 1, []
    while pos < len(text):
        if text.startswith("..", pos):
            raise JSONPathError(f"JSONPath '{expression}': deep scan '..' is not supported by SageMaker")
        if text[pos] == "." and pos + 1 < len(text) and text[pos + 1] == "[":
            pos += 1  # "$.f.['a','b']" as the DG writes it
            continue
        if text[pos] == ".":
            match = _NAME.match(text, pos + 1)
            if text.startswith("*", pos + 1):
                steps.append(_Step("wildcard"))
                pos += 2
            elif match:
                steps.append(_Step("name", (match.group(),)))
                pos = match.end()
            else:
                raise JSONPathError(f"JSONPath '{expression}': expected a name after '.' at position {pos}")
        elif text[pos] == "[":
            close = _closing_bracket(text, pos, expression)
            steps.append(_bracket(text[pos + 1:close], expression))
            pos = close + 1
        else:
            raise JSONPathError(f"JSONPath '{expression}': unexpected {text[pos]!r} at position {pos}")
    return tuple(steps)


def _closing_bracket(text: str, start: int, expression: str) -> int:
    quote = None
    for pos in range(start + 1, len(text)):
        char = text[pos]
        if quote:
            if char == quote and text[pos - 1] != "\\":
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "]":
            return pos
    raise JSONPathError(f"JSONPath '{expression}': unclosed '['")


def _bracket(inner: str, expression: str) -> _Step:
    if inner.strip() == "*":
        return _Step("wildcard")
    parts = _split_commas(inner)
    names = [_QUOTED.fullmatch(p) for p in parts]
    if all(names):
        keys = tuple((m.group(1) if m.group(1) is not None else m.group(2)) for m in names)
        if any("." in k for k in keys) and len(keys) > 1:
            raise JSONPathError(f"JSONPath '{expression}': nested paths inside brackets are not supported")
        return _Step("name", keys) if len(keys) == 1 else _Step("names", keys)
    items: list = []
    for part in parts:
        index, slice_ = _INDEX.fullmatch(part), _SLICE.fullmatch(part)
        if index:
            items.append(int(index.group(1)))
        elif slice_:
            items.append(tuple(int(v) if v not in ("", "-") else None for v in slice_.groups()))
        else:
            raise JSONPathError(f"JSONPath '{expression}': [{inner}] is not a name list, index list or slice")
    if len(items) == 1 and isinstance(items[0], int):
        return _Step("index", (items[0],))
    return _Step("indices", tuple(items))


def _split_commas(inner: str) -> list[str]:
    parts, current, quote = [], [], None
    for char in inner:
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == ",":
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
