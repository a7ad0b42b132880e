"""DeepAR's inference formats and test metrics, over arrays of sample paths.

Requests (deepar-in-formats): a JSON body ``{"instances": [series, ...], "configuration": {...}}`` or
JSON lines of series (batch transform, configuration from ``DEEPAR_INFERENCE_CONFIG``). The
configuration holds ``num_samples``, ``output_types`` (any of mean, quantiles, samples) and
``quantiles`` (strings, echoed as the keys of the ``quantiles`` object). Every prediction holds only
the requested keys.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...base.errors import DataFormatError

OUTPUT_TYPES = ("mean", "quantiles", "samples")
#: The batch-transform default when DEEPAR_INFERENCE_CONFIG is absent (also used by the endpoint).
DEFAULT_CONFIGURATION = {"num_samples": 100, "output_types": ["mean", "quantiles"],
                         "quantiles": ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"]}
CONFIG_VARIABLE = "DEEPAR_INFERENCE_CONFIG"


@dataclass(frozen=True)
class Configuration:
    """A checked inference configuration; ``quantile_keys`` are the strings as the request wrote them."""

    num_samples: int
    output_types: tuple[str, ...]
    quantile_keys: tuple[str, ...]
    quantiles: tuple[float, ...]

    @classmethod
    def parse(cls, configuration: Mapping[str, Any] | None) -> Configuration:
        """Check a request's ``configuration`` object; absent keys take :data:`DEFAULT_CONFIGURATION`."""
        if isinstance(configuration, Configuration):
            return configuration
        if configuration is None:
            configuration = {}
        if not isinstance(configuration, Mapping):
            raise DataFormatError(f"'configuration' must be a JSON object; got {type(configuration).__name__}")
        unknown = sorted(set(configuration) - set(DEFAULT_CONFIGURATION))
        if unknown:
            raise DataFormatError(f"unknown configuration key(s) {', '.join(map(repr, unknown))}; known: "
                                  f"{', '.join(DEFAULT_CONFIGURATION)}")
        values = {**DEFAULT_CONFIGURATION, **configuration}
        return cls(_num_samples(values["num_samples"]), _output_types(values["output_types"]),
                   *_quantiles(values["quantiles"]))

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Configuration:
        """The batch-transform configuration: ``DEEPAR_INFERENCE_CONFIG`` of ``environ`` (the estimator's
        ``serving_environment``; a JSON object) or the default."""
        text = environ.get(CONFIG_VARIABLE)
        if not text:
            return cls.parse(None)
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise DataFormatError(f"environment variable {CONFIG_VARIABLE} must hold a JSON object; {exc}") from None
        return cls.parse(value)


def _num_samples(value) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 1:
        raise DataFormatError(f"configuration 'num_samples' must be an integer >= 1; got {value!r}")
    return int(value)


def _output_types(value) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not value or any(v not in OUTPUT_TYPES for v in value):
        raise DataFormatError(f"configuration 'output_types' must be a non-empty list of {', '.join(OUTPUT_TYPES)}; "
                              f"got {value!r}")
    return tuple(dict.fromkeys(value))


def _quantiles(value) -> tuple[tuple[str, ...], tuple[float, ...]]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise DataFormatError(f"configuration 'quantiles' must be a list such as [\"0.1\", \"0.9\"]; got {value!r}")
    keys, levels = [], []
    for item in value:
        try:
            level = float(item)
        except (TypeError, ValueError):
            level = math.nan
        if isinstance(item, bool) or not 0.0 < level < 1.0:
            raise DataFormatError(f"configuration 'quantiles' must hold numbers strictly between 0 and 1; "
                                  f"got {item!r}")
        keys.append(item if isinstance(item, str) else str(item))
        levels.append(level)
    return tuple(keys), tuple(levels)


def forecast_records(samples: np.ndarray, config: Configuration) -> list[dict[str, Any]]:
    """One prediction per series from sample paths (series, samples, steps), keys as requested.

    Keys come in the order of the guide's response example: quantiles, samples, mean.
    """
    outputs: dict[str, list] = {}
    if "quantiles" in config.output_types:
        levels = np.quantile(samples, config.quantiles, axis=1) if config.quantiles else \
            np.zeros((0, *samples.shape[:1], samples.shape[2]))
        per_level = [level.tolist() for level in levels.astype(np.float64)]
        outputs["quantiles"] = [{key: per_level[k][i] for k, key in enumerate(config.quantile_keys)}
                                for i in range(len(samples))]
    if "samples" in config.output_types:
        outputs["samples"] = samples.astype(np.float64).tolist()
    if "mean" in config.output_types:
        outputs["mean"] = samples.mean(axis=1, dtype=np.float64).tolist()
    order = [key for key in ("quantiles", "samples", "mean") if key in outputs]
    return [{key: outputs[key][i] for key in order} for i in range(len(samples))]


def weighted_quantile_loss(truth: np.ndarray, forecast: np.ndarray, level: float) -> float:
    """``2 * sum(|(y - q) * (1{y < q} - level)|) / sum(|y|)`` over observed ``truth`` (NaN = missing)."""
    observed = ~np.isnan(truth)
    y, q = truth[observed], forecast[observed]
    loss = 2.0 * np.sum(np.abs((y - q) * ((y < q) - level)))
    denominator = np.sum(np.abs(y))
    return float(loss / denominator) if denominator > 0 else math.nan


def rmse(truth: np.ndarray, forecast: np.ndarray) -> float:
    """Root mean squared error over the observed ``truth`` values."""
    observed = ~np.isnan(truth)
    return float(np.sqrt(np.mean((truth[observed] - forecast[observed]) ** 2))) if observed.any() else math.nan


def seasonal_naive(targets: Sequence[np.ndarray], season: int, horizon: int) -> np.ndarray:
    """The last observed season repeated over ``horizon`` steps (series, horizon); the benchmark anchor."""
    out = np.zeros((len(targets), horizon), np.float64)
    for i, target in enumerate(targets):
        history = np.asarray(target, np.float64)
        known = np.flatnonzero(~np.isnan(history))
        if known.size == 0:
            continue
        history = history[known[0]:]
        filled = history[np.maximum.accumulate(np.where(np.isnan(history), 0, np.arange(len(history))))]
        period = season if len(filled) >= season else 1
        out[i] = np.resize(filled[-period:], horizon)
    return out
