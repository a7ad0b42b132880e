"""DeepAR's hyperparameters whose values the generic kinds cannot check.

``time_freq`` is a string of SageMaker's base units with an optional integer multiple (``5min``), so
its declared choices are the base units and a multiple is accepted in front of them.

The feature switches ``cardinality`` and ``num_dynamic_feat``: 'auto', 'ignore', '' or a value.

The spec types them as JSON with ``auto`` allowed; SageMaker also accepts the literal strings
``ignore`` and the empty string (both: drop the feature even if present), which are not JSON. This
declaration parses those literally and checks the value's shape (a list of positive integers for
``cardinality``, a positive integer for ``num_dynamic_feat``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ...base.hyperparameters import AUTO, Hyperparameter, _as_int, _Invalid

IGNORE = ("ignore", "")


@dataclass(frozen=True)
class FrequencyHyperparameter(Hyperparameter):
    """A ``string`` hyperparameter: one of ``choices`` (base units) after an optional integer multiple."""

    def parse(self, value):
        if not isinstance(value, str):
            raise _Invalid
        text = value.strip()
        if len(text) >= 2 and text[0] == text[-1] == '"':  # script-mode estimators quote strings
            text = text[1:-1]
        unit = text.lstrip("0123456789")
        multiple = text[:len(text) - len(unit)]
        if unit not in (self.choices or ()) or (multiple and int(multiple) < 1):
            raise _Invalid
        return text

    def allowed(self) -> str:
        return f"an optional integer multiple (>= 1) followed by one of {', '.join(self.choices or ())} (e.g. '5min')"


@dataclass(frozen=True)
class FeatureSwitch(Hyperparameter):
    """A ``json`` hyperparameter taking ``auto``, ``ignore``, ``""`` or an ``item_kind`` value."""

    item_kind: str = "int"  # "int" or "int_list"

    def parse(self, value):
        if isinstance(value, str):
            text = value.strip()
            if text.lower() in (AUTO, *IGNORE):
                return text.lower()
            try:
                value = json.loads(text)
            except ValueError:
                raise _Invalid from None
        if self.item_kind == "int_list":
            if not isinstance(value, (list, tuple)) or not value:
                raise _Invalid
            items = [_as_int(v) for v in value]
            if min(items) < 1:
                raise _Invalid
            return items
        number = _as_int(value)
        if number < 1:
            raise _Invalid
        return number

    def allowed(self) -> str:
        what = "a list of integers >= 1" if self.item_kind == "int_list" else "an integer >= 1"
        return f"{what}, 'auto', 'ignore' or ''"
