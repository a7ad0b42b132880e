"""Threshold calibration, model-selection criteria and the metrics Linear Learner reports.

Calibration works on every variant at once: each model's calibration scores are sorted, cumulative
true/false positive counts give precision, recall, accuracy and F-beta at every possible cut, and the
best admissible cut (by the selection criterion) becomes the model's threshold. ``predicted_label`` is
1 when ``score >= threshold``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.stats import rankdata

from ...base.training import Metric
from .kernels import LossSpec, loss_and_grad

#: Short metric names per problem type, with their goals (spec: 14 test and 15 validation metrics).
METRIC_GOALS = {
    "binary_classifier": {"binary_classification_accuracy": "Maximize", "binary_f_beta": "Maximize",
                          "precision": "Maximize", "recall": "Maximize", "roc_auc_score": "Maximize",
                          "objective_loss": "Minimize"},
    "multiclass_classifier": {"multiclass_accuracy": "Maximize", "multiclass_top_k_accuracy": "Maximize",
                              "macro_precision": "Maximize", "macro_recall": "Maximize",
                              "macro_f_beta": "Maximize", "dcg": "Maximize", "objective_loss": "Minimize"},
    "regressor": {"mse": "Minimize", "rmse": "Minimize", "absolute_loss": "Minimize",
                  "objective_loss": "Minimize"},
}
#: SageMaker documents rmse for the validation channel only.
VALIDATION_ONLY = {"rmse"}


def declared_metrics() -> tuple[Metric, ...]:
    """Every metric the algorithm can report, under its SageMaker name."""
    seen: dict[str, str] = {}
    for goals in METRIC_GOALS.values():
        seen.update(goals)
    out = []
    for split in ("test", "validation"):
        out += [Metric(f"{split}:{name}", goal) for name, goal in sorted(seen.items())
                if split == "validation" or name not in VALIDATION_ONLY]
    return tuple(out)


# ------------------------------------------------------------------------------------ calibration
def _f_beta(tp, fp, positives, beta):
    b2 = beta * beta
    denominator = (1.0 + b2) * tp + b2 * (positives - tp) + fp
    return torch.where(denominator > 0, (1.0 + b2) * tp / denominator.clamp(min=1e-300), torch.zeros_like(tp))


def calibrate(scores: torch.Tensor, labels: torch.Tensor, criterion: str, *, beta: float = 1.0,
              target_recall: float = 0.8, target_precision: float = 0.8) -> tuple[torch.Tensor, torch.Tensor]:
    """Best threshold and criterion value of every model.

    Parameters
    ----------
    scores : (models, rows) scores of the calibration rows.
    labels : (rows,) 0/1 labels.
    criterion : accuracy, f_beta, f_beta_1, precision_at_target_recall or recall_at_target_precision.

    Returns
    -------
    thresholds, values : (models,) each; larger values are better. A model that cannot meet a target
        gets ``achieved - 1`` (below every model that can), one with non-finite scores ``-inf``.
    """
    m, n = scores.shape
    finite = torch.isfinite(scores).all(dim=1)
    safe = torch.where(finite[:, None], scores, torch.zeros_like(scores))
    s, order = torch.sort(safe, dim=1, descending=True)
    hits = labels.to(torch.float64)[order]
    zero = torch.zeros(m, 1, dtype=torch.float64, device=scores.device)
    tp = torch.cat([zero, torch.cumsum(hits, dim=1)], dim=1)  # positives among the top k, k = 0..n
    taken = torch.arange(n + 1, dtype=torch.float64, device=scores.device)
    fp = taken - tp
    positives = float(labels.sum())
    negatives = n - positives
    precision = torch.where(taken > 0, tp / taken.clamp(min=1.0), torch.zeros_like(tp))
    recall = tp / positives if positives > 0 else torch.zeros_like(tp)
    if criterion == "accuracy":
        value = (tp + negatives - fp) / max(n, 1)
    elif criterion in ("f_beta", "f_beta_1"):
        value = _f_beta(tp, fp, positives, beta if criterion == "f_beta" else 1.0)
    elif criterion == "precision_at_target_recall":
        value = torch.where(recall >= target_recall, precision, recall - 1.0)
    elif criterion == "recall_at_target_precision":
        value = torch.where(precision >= target_precision, recall, precision - 1.0)
    else:
        raise ValueError(f"unknown calibration criterion {criterion!r}")
    valid = torch.ones_like(value, dtype=torch.bool)
    valid[:, 1:n] = s[:, :-1] > s[:, 1:]  # a cut between equal scores cannot be realised
    best, k = torch.where(valid, value, torch.full_like(value, -math.inf)).max(dim=1)
    return _cut_thresholds(s, k), torch.where(finite, best, torch.full_like(best, -math.inf))


def _cut_thresholds(s: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Thresholds that put exactly the top ``k`` sorted scores at or above them."""
    n = s.shape[1]
    inf = torch.full_like(s[:, 0], math.inf)
    above = s.gather(1, (k - 1).clamp(min=0)[:, None])[:, 0]
    below = s.gather(1, k.clamp(max=n - 1)[:, None])[:, 0]
    middle = (above + below) / 2
    middle = torch.where(middle > below, middle, torch.nextafter(below, inf))
    threshold = torch.where(k == 0, torch.nextafter(s[:, 0], inf), middle)
    return torch.where(k == n, s[:, n - 1], threshold)


# ---------------------------------------------------------------------------------- final metrics
def objective_loss(spec: LossSpec, raw: np.ndarray, labels: np.ndarray) -> float:
    """Mean of the training loss on the original label scale (raw: (rows, outputs))."""
    with torch.no_grad():
        z = torch.from_numpy(np.ascontiguousarray(raw, dtype=np.float32))[:, None, :]
        loss, _ = loss_and_grad(spec, z, torch.from_numpy(labels.astype(np.float32)), grad=False)
    return float(loss.double().mean())


def binary_metrics(labels: np.ndarray, predicted: np.ndarray, scores: np.ndarray, beta: float) -> dict[str, float]:
    """Accuracy, precision, recall, F-beta of the 0/1 ``predicted`` labels and the ROC AUC of ``scores``
    (ties counted half)."""
    y = labels.astype(bool)
    predicted = predicted.astype(bool)
    tp = float(np.sum(predicted & y))
    fp = float(np.sum(predicted & ~y))
    positives, n = float(y.sum()), len(y)
    b2 = beta * beta
    f_denominator = (1 + b2) * tp + b2 * (positives - tp) + fp
    out = {"binary_classification_accuracy": float(np.mean(predicted == y)) if n else math.nan,
           "precision": tp / (tp + fp) if tp + fp > 0 else 0.0,
           "recall": tp / positives if positives > 0 else 0.0,
           "binary_f_beta": (1 + b2) * tp / f_denominator if f_denominator > 0 else 0.0}
    negatives = n - positives
    if positives > 0 and negatives > 0:  # Mann-Whitney U with average ranks for ties
        ranks = rankdata(scores)
        out["roc_auc_score"] = float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))
    return out


def multiclass_metrics(labels: np.ndarray, scores: np.ndarray, top_k: int, beta: float) -> dict[str, float]:
    """Accuracy, top-k accuracy, macro precision / recall / F-beta and DCG of (rows, classes) scores.

    Macro averages run over the classes present in the labels or the predictions (scikit-learn's
    convention; SageMaker does not say), a class never predicted having precision 0.
    """
    y = labels.astype(np.int64)
    n, classes = scores.shape
    predicted = np.argmax(scores, axis=1)
    true_score = scores[np.arange(n), y]
    rank = np.sum(scores > true_score[:, None], axis=1)  # classes scored above the true one
    confusion = np.bincount(y * classes + predicted, minlength=classes * classes).reshape(classes, classes)
    tp = np.diag(confusion).astype(np.float64)
    predicted_count, true_count = confusion.sum(axis=0), confusion.sum(axis=1)
    present = (predicted_count + true_count) > 0
    precision = np.divide(tp, predicted_count, out=np.zeros(classes), where=predicted_count > 0)
    recall = np.divide(tp, true_count, out=np.zeros(classes), where=true_count > 0)
    b2 = beta * beta
    denominator = b2 * precision + recall
    f_beta = np.divide((1 + b2) * precision * recall, denominator, out=np.zeros(classes), where=denominator > 0)
    return {"multiclass_accuracy": float(np.mean(predicted == y)),
            "multiclass_top_k_accuracy": float(np.mean(rank < top_k)),
            "macro_precision": float(precision[present].mean()), "macro_recall": float(recall[present].mean()),
            "macro_f_beta": float(f_beta[present].mean()),
            "dcg": float(np.mean(1.0 / np.log2(rank + 2.0)))}


def regression_metrics(labels: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """Mean squared error, its root and mean absolute error."""
    error = predictions.astype(np.float64) - labels.astype(np.float64)
    mse = float(np.mean(error * error))
    return {"mse": mse, "rmse": math.sqrt(mse), "absolute_loss": float(np.mean(np.abs(error)))}
