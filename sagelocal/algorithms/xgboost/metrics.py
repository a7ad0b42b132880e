"""Validation metrics as the SageMaker XGBoost container names, computes and logs them.

The container passes most ``eval_metric`` names to XGBoost and computes fifteen itself with
scikit-learn (accuracy, balanced_accuracy, f1 (macro), f1_binary, f1_macro, precision, precision_macro,
precision_micro, recall, recall_macro, recall_micro, mse, rmse, mae, r2) as a custom metric. Each
round XGBoost's evaluation line is logged as ``[i]#011train-<m>:<v>#011validation-<m>:<v>`` (the tab
that CloudWatch shows as ``#011``), and the metric definitions are regexes over those lines; only
``validation-*`` values become metrics.

Where the container computes a metric wrongly, sagelocal computes the intended one:

- Class labels for the scikit-learn metrics. The container thresholds every prediction at 0
  (``preds > 0``), written for the raw margins custom metrics received before XGBoost 1.6; since then
  they receive transformed predictions, so for ``binary:logistic`` every probability is "positive" and
  accuracy, precision, recall and F1 are wrong. sagelocal derives labels as serving does:
  p > 0.5 (binary:logistic, reg:logistic), margin > 0 (binary:logitraw), the value itself
  (binary:hinge, multi:softmax), argmax (multi:softprob), and rounding otherwise.
- ``aucpr``: XGBoost interpolates the precision-recall curve (Davis & Goadrich); sagelocal reports
  scikit-learn's average precision (macro over classes for multi-class), the definition the metric
  name promises, which differs from XGBoost's value in the fourth decimal. Ranking objectives keep
  XGBoost's per-query aucpr.
- Early-stopping direction of ``interval-regression-accuracy``: the container minimises it (it lists
  the metric under Minimize); higher is better, so sagelocal maximises it.
- ``tweedie-nloglik``: XGBoost 3 accepts only ``tweedie-nloglik@<rho>`` and fails the job on the bare
  name the container accepts; sagelocal asks XGBoost for ``tweedie-nloglik@<tweedie_variance_power>``
  (1.5 when not given) and logs it under the container's name.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from ...base.errors import SagelocalError
from ...base.training import Metric
from .hyperparameters import METRIC_GOALS, eval_metric_list, is_given

logger = logging.getLogger("sagelocal")

#: The metrics SageMaker defines for XGBoost (``validation:<name>``), with the spec's goals.
METRICS: tuple[Metric, ...] = tuple(Metric(f"validation:{name}", goal) for name, goal in METRIC_GOALS.items())
#: The separator CloudWatch renders for the tab XGBoost prints between evaluation results.
TAB = "#011"


def metric_definitions() -> list[dict[str, str]]:
    """The container's ``MetricDefinitions``: one regex per metric over the round lines."""
    return [{"Name": m.name, "Regex": rf".*\[[0-9]+\].*{TAB}validation-{m.short_name}:(\S+)"} for m in METRICS]


def maximize(name: str) -> bool:
    """Whether early stopping maximises ``name`` (the container's maximize list, see the module note)."""
    return METRIC_GOALS.get(name) == "Maximize" or name == "interval-regression-accuracy"


# ------------------------------------------------------------------------ labels and sklearn metrics
def predicted_labels(preds: np.ndarray, objective: str) -> np.ndarray:
    """Class labels from XGBoost's (transformed) predictions, as serving's predicted_label."""
    preds = np.asarray(preds)
    if preds.ndim == 2:
        return preds.argmax(axis=1)
    if objective in ("binary:logistic", "reg:logistic"):
        return (preds > 0.5).astype(np.int64)
    if objective == "binary:logitraw":
        return (preds > 0).astype(np.int64)
    if objective in ("binary:hinge", "multi:softmax"):
        return preds
    return np.rint(preds)


def _classification(score: Callable, **kwargs) -> Callable:
    def metric(labels, preds, objective, weights):
        return score(labels, predicted_labels(preds, objective), **kwargs)
    return metric


def _regression(score: Callable) -> Callable:
    def metric(labels, preds, objective, weights):
        return score(labels, preds)
    return metric


def _aucpr(labels, preds, objective, weights):
    preds = np.asarray(preds)
    if preds.ndim == 2:  # one-vs-rest, macro: as XGBoost averages its multi-class aucpr
        onehot = (labels[:, None] == np.arange(preds.shape[1])[None, :]).astype(np.int64)
        present = onehot.any(axis=0)
        return float(np.mean([skm.average_precision_score(onehot[:, k], preds[:, k], sample_weight=weights)
                              for k in np.flatnonzero(present)]))
    return skm.average_precision_score(labels, preds, sample_weight=weights)


#: Metrics computed in Python: the container's fifteen (unweighted, as the container computes them)
#: and aucpr (weighted, as XGBoost's own aucpr is).
PYTHON_METRICS: dict[str, Callable] = {
    "accuracy": _classification(skm.accuracy_score),
    "balanced_accuracy": _classification(skm.balanced_accuracy_score),
    "f1": _classification(skm.f1_score, average="macro"),
    "f1_binary": _classification(skm.f1_score, average="binary"),
    "f1_macro": _classification(skm.f1_score, average="macro"),
    "precision": _classification(skm.precision_score),
    "precision_macro": _classification(skm.precision_score, average="macro"),
    "precision_micro": _classification(skm.precision_score, average="micro"),
    "recall": _classification(skm.recall_score),
    "recall_macro": _classification(skm.recall_score, average="macro"),
    "recall_micro": _classification(skm.recall_score, average="micro"),
    "mse": _regression(skm.mean_squared_error),
    "rmse": _regression(lambda y, p: np.sqrt(skm.mean_squared_error(y, p))),
    "mae": _regression(skm.mean_absolute_error),
    "r2": _regression(skm.r2_score),
    "aucpr": _aucpr,
}


class MetricComputationError(SagelocalError):
    """A metric that cannot be computed on this data (e.g. binary precision on several classes)."""


def python_metric_value(name: str, labels: np.ndarray, preds: np.ndarray, objective: str,
                        weights: np.ndarray | None = None) -> float:
    """The value of a Python-computed metric ``name`` (see :data:`PYTHON_METRICS`)."""
    if preds.size == 0:
        return 0.0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)  # 0.0 when a class is never predicted
            return float(PYTHON_METRICS[name](labels, preds, objective, weights))
    except ValueError as exc:
        raise MetricComputationError(f"xgboost: eval_metric '{name}' cannot be computed for objective "
                                     f"'{objective}': {exc}") from None


# --------------------------------------------------------------------------------- the metric plan
class MetricPlan:
    """Which metrics XGBoost computes, which sagelocal computes, and which one drives early stopping.

    Parameters
    ----------
    hp : dict
        Resolved hyperparameters (``None`` = not given).
    objective : str
        The objective in effect.
    """

    def __init__(self, hp: dict[str, Any], objective: str):
        self.objective = objective
        power = hp.get("tweedie_variance_power")
        self.tweedie_power = float(power) if is_given(power) else 1.5
        user = eval_metric_list(hp)
        tuning = hp.get("_tuning_objective_metric")
        tuning = tuning.split(":", 1)[1].split(",") if is_given(tuning) else []
        # Under tuning the container unions the objective metric into eval_metric (sorted).
        names = sorted(set(user) | set(tuning)) if tuning else user
        ranking = objective.startswith("rank:")
        self.python = [n for n in names if n in PYTHON_METRICS and not (n == "aucpr" and ranking)]
        self.native = [self.library_name(n) for n in names if n not in self.python]
        self.names = names
        # The container: the tuning objective metric, else the last eval_metric as written; else none.
        self.early_stopping_metric = tuning[-1] if tuning else (user[-1] if user else None)
        #: id(DMatrix) -> {name: value} of the latest round, at full precision (XGBoost's log keeps 6 digits).
        self.latest: dict[int, dict[str, float]] = {}

    def library_name(self, name: str) -> str:
        """The name XGBoost knows ``name`` by (and logs it under)."""
        return f"tweedie-nloglik@{self.tweedie_power:g}" if name == "tweedie-nloglik" else name

    def custom_metric(self) -> Callable | None:
        """The ``custom_metric`` for ``xgboost.train`` computing :attr:`python` (None when empty)."""
        if not self.python:
            return None
        names, objective, latest = list(self.python), self.objective, self.latest

        def custom(preds, dmatrix):
            labels = dmatrix.get_label()
            weights = dmatrix.get_weight()
            weights = weights if weights.size else None
            values = {name: python_metric_value(name, labels, preds, objective, weights) for name in names}
            latest[id(dmatrix)] = values
            return list(values.items())

        return custom


# --------------------------------------------------------------------------------------- logging
def display_name(name: str) -> str:
    """The container's name of a metric XGBoost logged (``tweedie-nloglik@1.5`` -> ``tweedie-nloglik``)."""
    return "tweedie-nloglik" if name.startswith("tweedie-nloglik@") else name


def format_round(iteration: int, evals_log: dict[str, dict[str, list]]) -> str:
    """``[i]#011train-rmse:0.12345#011validation-rmse:0.23456`` from XGBoost's evaluation log."""
    parts = [f"[{iteration}]"]
    for data, metrics in evals_log.items():
        for name, values in metrics.items():
            value = values[-1][0] if isinstance(values[-1], tuple) else values[-1]
            parts.append(f"{data}-{display_name(name)}:{value:.5f}")
    return TAB.join(parts)


def last_validation_metrics(evals_log: dict[str, dict[str, list]], precise: dict[str, float] | None = None
                            ) -> dict[str, float]:
    """``{"validation:<name>": value}`` for the defined metrics in the latest round of ``evals_log``;
    ``precise`` replaces the 6-digit values XGBoost logs for Python-computed metrics."""
    out = {}
    for name, values in evals_log.get("validation", {}).items():
        name = display_name(name)
        if name in METRIC_GOALS and values:
            value = values[-1][0] if isinstance(values[-1], tuple) else values[-1]
            out[f"validation:{name}"] = float((precise or {}).get(name, value))
    return out
