"""DeepAR's hyperparameters: the declaration table.

``time_freq`` is a string of SageMaker's base units with an optional integer multiple (``5min``), so its
declared choices are the base units and a multiple is accepted in front of them.

The feature switches ``cardinality`` and ``num_dynamic_feat`` take 'auto', 'ignore', '' or a value. The spec
types them as JSON with ``auto`` allowed; SageMaker also accepts the literal strings ``ignore`` and the empty
string (both: drop the feature even if present), which are not JSON. They are read literally, and the value's
shape is checked (a list of integers >= 1 for ``cardinality``, an integer >= 1 for ``num_dynamic_feat``).
"""

from __future__ import annotations

import json
from typing import Any

from ...base.hyperparameters import AUTO, REQUIRED, Hyperparameter, HyperparameterTable, as_int

#: SageMaker's base units of ``time_freq``.
UNITS = ("M", "W", "D", "H", "min")
#: The switch words that drop a feature even when the series have it.
IGNORE = ("ignore", "")
_WORDS = (AUTO, *IGNORE)


def _read_frequency(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':  # script-mode estimators quote strings
        text = text[1:-1]
    return text


def _is_frequency(text: str) -> bool:
    """An optional integer multiple >= 1, then one of :data:`UNITS`."""
    unit = text.lstrip("0123456789")
    multiple = text[:len(text) - len(unit)]
    return unit in UNITS and not (multiple and int(multiple) < 1)


def _read_switch(text: str) -> Any:
    """A switch's string: ``auto``, ``ignore`` or ``""`` as words (any case), else JSON (not a quoted word)."""
    word = text.strip().lower()
    if word in _WORDS:
        return word
    value = json.loads(text.strip())
    if isinstance(value, str) and value.strip().lower() in _WORDS:
        raise ValueError("a JSON-quoted switch word")
    return value


def _switch_list(value: Any) -> Any:
    """``cardinality``: a switch word, or a non-empty list of integers."""
    if isinstance(value, str) and value in _WORDS:
        return value
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError("not a non-empty list")
    return [as_int(v) for v in value]


def _switch_int(value: Any) -> Any:
    """``num_dynamic_feat``: a switch word, or an integer."""
    if isinstance(value, str) and value in _WORDS:
        return value
    return as_int(value)


def _switch_valid(value: Any) -> bool:
    """Words pass; numbers (each item of a list) must be >= 1."""
    if isinstance(value, str):
        return value in _WORDS
    return min(value if isinstance(value, list) else [value]) >= 1


HYPERPARAMETERS = HyperparameterTable("forecasting-deepar", [
    Hyperparameter("context_length", "int", REQUIRED, range=(1, None), tunable=True, tuning_range=(1, 200),
                   doc="Steps the network reads before forecasting (lags reach further back)."),
    Hyperparameter("epochs", "int", REQUIRED, range=(1, None), tunable=True, tuning_range=(1, 1000),
                   doc="Maximum passes over the training data."),
    Hyperparameter("prediction_length", "int", REQUIRED, range=(1, None),
                   doc="Forecast horizon, fixed at training time."),
    Hyperparameter("time_freq", "string", REQUIRED, choices=UNITS, reader=_read_frequency, check=_is_frequency,
                   describe=f"an optional integer multiple (>= 1) followed by one of {', '.join(UNITS)} (e.g. '5min')",
                   doc="Granularity: optional integer multiple and M, W, D, H or min (e.g. '5min')."),
    Hyperparameter("cardinality", "json", "auto", auto=True, reader=_read_switch, convert=_switch_list,
                   check=_switch_valid, describe="a list of integers >= 1, 'auto', 'ignore' or ''",
                   doc="Categories per cat feature: 'auto', 'ignore' (or '') or a list such as [2, 3]."),
    Hyperparameter("dropout_rate", "float", 0.1, range=(0, 1), tunable=True, tuning_range=(0.0, 0.2),
                   doc="Zoneout rate of the recurrent states during training."),
    Hyperparameter("early_stopping_patience", "int", None, range=(1, None),
                   doc="Stop after this many epochs without a lower training loss; keep the best model."),
    Hyperparameter("embedding_dimension", "int", 10, range=(1, None), tunable=True, tuning_range=(1, 50),
                   doc="Embedding size of every cat feature."),
    Hyperparameter("learning_rate", "float", 0.001, range=(0, None), tunable=True, tuning_range=(0.00001, 0.1),
                   doc="Adam learning rate."),
    Hyperparameter("likelihood", "categorical", "student-T",
                   choices=("gaussian", "beta", "negative-binomial", "student-T", "deterministic-L1"),
                   doc="Noise model of the target."),
    Hyperparameter("mini_batch_size", "int", 128, range=(1, None), tunable=True, tuning_range=(32, 1028),
                   doc="Windows per mini-batch."),
    Hyperparameter("num_cells", "int", 40, range=(1, None), tunable=True, tuning_range=(30, 200),
                   doc="Units per LSTM layer."),
    Hyperparameter("num_dynamic_feat", "json", "auto", range=(1, None), auto=True, reader=_read_switch,
                   convert=_switch_int, check=_switch_valid, describe="an integer >= 1, 'auto', 'ignore' or ''",
                   doc="Number of dynamic_feat series: 'auto', 'ignore' (or '') or a positive integer."),
    Hyperparameter("num_eval_samples", "int", 100, range=(1, None),
                   doc="Sample paths per test series for the test metrics."),
    Hyperparameter("num_layers", "int", 2, range=(1, None), tunable=True, tuning_range=(1, 8),
                   doc="LSTM layers."),
    Hyperparameter("test_quantiles", "float_list", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], range=(0, 1),
                   closed=(False, False), doc="Quantiles of the weighted quantile losses on the test channel."),
])
