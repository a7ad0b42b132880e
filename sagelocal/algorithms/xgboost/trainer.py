"""Training with XGBoost's own loop, as the SageMaker container runs it: evaluation lines, early
stopping, checkpoints with resume, stopping on SIGTERM, and the hidden k-fold mode.

This module imports ``xgboost`` at the top; :mod:`.estimator` imports it only inside ``fit``, after
:func:`.data.xgboost_module` has given a clear error when the library is missing.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xgboost
from xgboost.callback import EarlyStopping, TrainingCallback

from ...base.errors import DataFormatError, SagelocalError
from .metrics import MetricPlan, format_round, last_validation_metrics, maximize, predicted_labels

logger = logging.getLogger("sagelocal")

CHECKPOINT_PREFIX = "xgboost-checkpoint"
#: Checkpoints kept in the checkpoint folder (the container keeps the 5 most recent).
CHECKPOINTS_KEPT = 5
PREDICTIONS_FILE = "predictions.csv"
_CHECKPOINT = re.compile(rf"^{re.escape(CHECKPOINT_PREFIX)}\.([0-9]+)$")


class XGBoostLibraryError(SagelocalError):
    """XGBoost refused the job (an invalid parameter combination, data it cannot use, ...)."""


# ------------------------------------------------------------------------------------------ callbacks
class RoundLog(TrainingCallback):
    """Logs each round as ``[i]#011train-<m>:<v>#011validation-<m>:<v>`` and keeps the last values."""

    def __init__(self, offset: int, plan: MetricPlan, validation=None):
        self.offset, self.plan, self.validation = offset, plan, validation
        self.metrics: dict[str, float] = {}
        self.evals_log: dict = {}

    def after_iteration(self, model, epoch: int, evals_log) -> bool:
        if evals_log:
            logger.info("%s", format_round(self.offset + epoch, evals_log))
            self.metrics = last_validation_metrics(evals_log, self.plan.latest.get(id(self.validation)))
            self.evals_log = evals_log
        return False


class Checkpoints(TrainingCallback):
    """Saves ``xgboost-checkpoint.<round>`` (XGBoost's format) after each round, keeping the last five.

    Files are written under a temporary name and renamed, so a reader never sees half a checkpoint.
    """

    def __init__(self, directory: str | os.PathLike, offset: int = 0):
        self.directory = Path(directory)
        self.offset = offset

    def before_training(self, model):
        self.directory.mkdir(parents=True, exist_ok=True)
        return model

    def after_iteration(self, model, epoch: int, evals_log) -> bool:
        iteration = self.offset + epoch
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".sagemaker-ignore", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(model.save_raw("ubj"))
            os.replace(tmp, self.directory / f"{CHECKPOINT_PREFIX}.{iteration}")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        (self.directory / f"{CHECKPOINT_PREFIX}.{iteration - CHECKPOINTS_KEPT}").unlink(missing_ok=True)
        return False


class StopOnSigterm(TrainingCallback):
    """``save_model_on_termination=true``: SIGTERM ends training after the current round, so the job
    still saves the model trained so far (the container saves it after every round for the same end)."""

    def __init__(self):
        self.stop = False
        self.previous = None

    def before_training(self, model):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._handle)
        return model

    def _handle(self, signum, frame) -> None:
        logger.info("SIGTERM received: stopping after this round and saving the model trained so far")
        self.stop = True

    def after_iteration(self, model, epoch: int, evals_log) -> bool:
        return self.stop

    def after_training(self, model):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        return model


def latest_checkpoint(directory) -> tuple[xgboost.Booster | None, int]:
    """The newest readable checkpoint in ``directory`` and the number of rounds it holds (0 if none)."""
    if directory is None or not Path(directory).is_dir():
        return None, 0
    found = sorted(((int(m.group(1)), p) for p in Path(directory).iterdir() if (m := _CHECKPOINT.match(p.name))),
                   reverse=True)
    for iteration, path in found:
        try:
            return xgboost.Booster(model_file=bytearray(path.read_bytes())), iteration + 1
        except (xgboost.core.XGBoostError, OSError):
            logger.warning("skipping unreadable checkpoint %s", path)
    return None, 0


# ------------------------------------------------------------------------------------------ training
@dataclass
class Job:
    """One ``xgboost.train`` call: parameters, rounds and the container's training options."""

    params: dict[str, Any]
    num_round: int
    plan: MetricPlan
    early_stopping_rounds: int | None = None
    checkpoint_dir: str | None = None
    stop_on_sigterm: bool = False


def train_one(job: Job, dtrain, dvalidation=None) -> tuple[xgboost.Booster, dict[str, float], dict]:
    """Train (or resume from the latest checkpoint); returns booster, final validation metrics, log."""
    booster, done = latest_checkpoint(job.checkpoint_dir)
    if booster is not None:
        logger.info("resuming from checkpoint %s after %d rounds", job.checkpoint_dir, done)
    rounds = RoundLog(done, job.plan, dvalidation)
    callbacks: list[TrainingCallback] = [rounds]
    if job.checkpoint_dir:
        callbacks.append(Checkpoints(job.checkpoint_dir, done))
    if job.stop_on_sigterm:
        callbacks.append(StopOnSigterm())
    metric = job.plan.early_stopping_metric
    if job.early_stopping_rounds and dvalidation is not None and metric:
        callbacks.append(EarlyStopping(rounds=job.early_stopping_rounds, metric_name=job.plan.library_name(metric),
                                       data_name="validation", maximize=maximize(metric), save_best=True))
    elif job.early_stopping_rounds:
        logger.info("early_stopping_rounds ignored: it needs a validation channel and an eval_metric (or a "
                    "tuning objective metric), as in the SageMaker container")
    evals = [(dtrain, "train")] + ([(dvalidation, "validation")] if dvalidation is not None else [])
    try:
        booster = xgboost.train(job.params, dtrain, num_boost_round=max(job.num_round - done, 0), evals=evals,
                                custom_metric=job.plan.custom_metric(), callbacks=callbacks, xgb_model=booster,
                                verbose_eval=False)
    except xgboost.core.XGBoostError as exc:
        raise XGBoostLibraryError(f"xgboost: XGB train call failed: {error_summary(exc)}") from None
    except ValueError as exc:  # e.g. an early-stopping metric XGBoost did not log
        raise XGBoostLibraryError(f"xgboost: {exc}") from None
    return booster, rounds.metrics, rounds.evals_log


def error_summary(exc: Exception) -> str:
    """The first meaningful line of an XGBoost error (no timestamp, source location or stack trace)."""
    lines = [line for line in str(exc).splitlines() if line.strip() and not line.startswith("Stack trace")]
    return re.sub(r"^\[[0-9:]+\] \S+: ", "", lines[0]) if lines else type(exc).__name__


# ------------------------------------------------------------------------------------------- k-fold
@dataclass
class KFoldResult:
    """The boosters of every fold, the out-of-fold table and the cross-validated metrics."""

    boosters: list
    out_of_fold: np.ndarray
    metrics: dict[str, float]


def train_kfold(job: Job, rows, *, kfold: int, repeats: int, classification: bool, objective: str,
                random_state: int) -> KFoldResult:
    """The container's hidden k-fold mode over ``rows`` (train and validation joined).

    Folds are stratified for classification; each fold trains on its k-1 parts and is evaluated, and
    early-stopped, on its held-out part. (The container keeps evaluating on the original train and
    validation channels, whose rows are partly in the fold's training data; sagelocal evaluates on
    the held-out part, the cross-validation it means.) Splits are seeded with ``random_state``.
    """
    from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold

    dall = rows.dmatrix(job.params.get("nthread"), aft=objective == "survival:aft")
    labels = np.asarray(rows.labels)
    splitter = (RepeatedStratifiedKFold if classification else RepeatedKFold)(
        n_splits=kfold, n_repeats=repeats, random_state=random_state)
    recorder = OutOfFold(labels, repeats, classification, objective)
    boosters, logs, precise, metrics = [], [], [], {}
    try:
        splits = list(splitter.split(np.zeros(len(labels)), labels if classification else None))
    except ValueError as exc:
        raise DataFormatError(f"xgboost: cannot split the data into {kfold} folds: {exc}") from None
    for fold, (inside, held_out) in enumerate(splits):
        logger.info("Train cross validation fold %d", fold % kfold + 1)
        fold_job = Job(job.params, job.num_round, job.plan, job.early_stopping_rounds,
                       None if job.checkpoint_dir is None else str(Path(job.checkpoint_dir) / f"model-{fold}"),
                       job.stop_on_sigterm)
        held = dall.slice(held_out)
        booster, fold_metrics, log = train_one(fold_job, dall.slice(inside), held)
        boosters.append(booster)
        logs.append(log)
        precise.append(fold_metrics)
        recorder.record(held_out, booster.predict(held, validate_features=False))
        if len(boosters) % kfold == 0:
            logger.info("The metrics of round %d cross validation", len(boosters) // kfold)
            metrics = log_cv_metrics(job.num_round, logs[-kfold:], precise[-kfold:])
    if repeats > 1:
        logger.info("The overall metrics of %d-round cross validation", repeats)
        metrics = log_cv_metrics(job.num_round, logs, precise)
    return KFoldResult(boosters, recorder.table(), metrics)


def log_cv_metrics(num_round: int, logs: list[dict], precise: list[dict[str, float]]) -> dict[str, float]:
    """Logs ``[num_round]#011train-m:mean#011validation-m:mean`` (means over folds); returns the
    means of the folds' validation metrics."""
    means: dict[str, dict[str, list]] = {}
    for name in logs[0].get("train", {}):
        for data in ("train", "validation"):
            values = [float(_last(log[data][name])) for log in logs if name in log.get(data, {})]
            if values:
                means.setdefault(data, {})[name] = [float(np.mean(values))]
    logger.info("%s", format_round(num_round, means))
    return {name: float(np.mean([m[name] for m in precise])) for name in precise[0]}


def _last(values):
    return values[-1][0] if isinstance(values[-1], tuple) else values[-1]


class OutOfFold:
    """Out-of-fold predictions: ``label, mean probability, voted label`` for classification and
    ``label, mean prediction`` for regression, one row per training row (the container's
    ``predictions.csv``). Labels are derived per objective as serving derives predicted_label (the
    container thresholds every 1-d prediction at 0.5, wrong for multi:softmax and binary:logitraw)."""

    def __init__(self, labels: np.ndarray, repeats: int, classification: bool, objective: str):
        self.labels, self.repeats = labels, repeats
        self.classification, self.objective = classification, objective
        self.predicted = np.zeros((len(labels), repeats))
        self.probability = np.zeros((len(labels), repeats))
        self.count = np.zeros(len(labels), dtype=np.int64)

    def record(self, rows: np.ndarray, predictions: np.ndarray) -> None:
        slot = self.count[rows]
        if self.classification:
            self.predicted[rows, slot] = predicted_labels(predictions, self.objective)
            self.probability[rows, slot] = predictions.max(axis=1) if predictions.ndim == 2 else predictions
        else:
            self.predicted[rows, slot] = predictions
        self.count[rows] += 1

    def table(self) -> np.ndarray:
        if not self.classification:
            return np.column_stack([self.labels, self.predicted.mean(axis=1)])
        from scipy import stats

        voted = stats.mode(self.predicted, axis=1, keepdims=False).mode  # ties: the smallest label
        return np.column_stack([self.labels, self.probability.mean(axis=1), voted])

    @staticmethod
    def save(table: np.ndarray, directory) -> Path:
        """Write ``predictions.csv`` into ``directory`` (created if needed)."""
        path = Path(directory) / PREDICTIONS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savetxt(path, table, delimiter=",", fmt="%f")
        logger.info("Storing predictions on validation set(s) in %s", path)
        return path
