"""The one training loop, and the metric lines SageMaker algorithms print.

Iterative algorithms hand a :class:`Trainable` to :class:`TrainingLoop`; the loop owns epochs,
mini-batches, early stopping, checkpoints (with resume), progress lines and metric lines. Metric
lines follow the shapes built-in algorithms print, e.g.::

    #quality_metric: host=algo-1, epoch=3, validation rmse <loss>=0.1234

so that MetricDefinitions-style regexes (:func:`metric_regex`) match them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .batch import Batch

logger = logging.getLogger("sagelocal")

LOG_FORMAT = "[%(asctime)s %(levelname)s %(thread)d] %(message)s"
LOG_DATEFMT = "%m/%d/%Y %H:%M:%S"


@dataclass(frozen=True)
class Metric:
    """A metric an algorithm reports: SageMaker name (``"validation:rmse"``) and goal."""

    name: str
    goal: str = "Minimize"  # or "Maximize"

    @property
    def split(self) -> str:
        return self.name.split(":", 1)[0]

    @property
    def short_name(self) -> str:
        return self.name.split(":", 1)[1]


def metric_line(name: str, value: float, goal: str = "Minimize", *, host: str = "algo-1",
                epoch: int | None = None, batch: int | None = None) -> str:
    """The log line SageMaker built-ins print for a metric ``split:short`` (e.g. ``test:msd``)."""
    split, short = name.split(":", 1)
    # Observed shapes: "epoch=0, batch=0 train loss", "epoch=3, validation rmse", "validation rmse".
    where = f"epoch={epoch}, " if epoch is not None else ""
    where += f"batch={batch} " if batch is not None else ""
    tag = "loss" if goal == "Minimize" else "score"
    return f"#quality_metric: host={host}, {where}{split} {short} <{tag}>={value}"


def metric_regex(name: str) -> str:
    """A MetricDefinitions regex whose first group captures the value of ``name`` on each line."""
    split, short = name.split(":", 1)
    return (r"#quality_metric: host=\S+, (?:epoch=\d+, )?(?:batch=\d+ )?"
            + re.escape(split) + " " + re.escape(short) + r" <(?:loss|score)>=(\S+)")


class MetricReporter:
    """Collects metrics under their SageMaker names and logs them as metric lines."""

    def __init__(self, host: str = "algo-1"):
        self.host = host
        self.metrics: dict[str, float] = {}

    def report(self, name: str, value: float, goal: str = "Minimize", *, epoch: int | None = None,
               batch: int | None = None) -> None:
        value = float(value)
        self.metrics[name] = value
        logger.info(metric_line(name, value, goal, host=self.host, epoch=epoch, batch=batch))

    def progress(self, done: int, total: int) -> None:
        percent = 100 if total <= 0 else int(round(100 * done / total))
        logger.info("#progress_metric: host=%s, completed %d %% of epochs", self.host, percent)


class Trainable(Protocol):
    """What an iterative algorithm gives the loop."""

    def train_batch(self, batch: Batch) -> float | None:
        """Learn from one mini-batch; return its training loss (or ``None``)."""

    def end_epoch(self, epoch: int) -> dict[str, float]:
        """Called after each epoch; returns metrics by SageMaker name (e.g. validation ones)."""

    def state(self) -> dict[str, np.ndarray]:
        """Everything needed to resume, as numpy arrays."""

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state` returned."""


@dataclass
class EarlyStopping:
    """Stop when ``metric`` has not improved by more than ``tolerance`` (relative) for
    ``patience`` epochs. ``goal`` is ``"Minimize"`` or ``"Maximize"``.

    ``allowed``, when given, is asked before stopping: while it returns False the epochs without
    improvement are still counted but training goes on (e.g. until a minimum number of passes).
    """

    metric: str
    patience: int
    tolerance: float = 0.0
    goal: str = "Minimize"
    allowed: Callable[[], bool] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self.best = math.inf if self.goal == "Minimize" else -math.inf
        self.best_epoch = -1
        self.bad_epochs = 0

    def update(self, value: float, epoch: int) -> bool:
        """Record this epoch's value; return True when training should stop."""
        sign = 1.0 if self.goal == "Minimize" else -1.0
        improved = sign * value < sign * self.best - self.tolerance * abs(self.best) \
            if math.isfinite(self.best) else True
        if improved:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience and (self.allowed is None or self.allowed())


#: The checkpoint file of the loop in its checkpoint folder.
CHECKPOINT_FILE = "checkpoint.npz"


class TrainingLoop:
    """Epochs of mini-batches over a data source, with early stopping and checkpoints.

    An epoch is whatever ``source.batches(batch_size, epoch=e)`` yields: a pass over the data, or a run of
    updates between two evaluations (Seq2Seq's checkpoints every N batches).

    Parameters
    ----------
    epochs : number of epochs; None runs until early stopping ends training.
    batch_size : rows per mini-batch.
    reporter : where metrics go.
    early_stopping : optional :class:`EarlyStopping`.
    checkpoint_dir : when given, the state is saved there after every epoch and a run finding a
        checkpoint resumes after its epoch (SageMaker's ``/opt/ml/checkpoints`` contract).
    checkpoint_name : the checkpoint's file name in ``checkpoint_dir`` (an ``.npz`` archive whatever the name).
    config : optional JSON-serialisable settings saved with each checkpoint; a checkpoint written under other
        settings (other hyperparameters, or by something else) is ignored with a warning and training starts
        afresh.
    loss_name : name of the training loss in the ``train`` metric lines.
    keep_best : optional :class:`~sagelocal.base.torch_layer.KeepBest` (or any object with its
        ``update`` / ``restore`` / ``state`` / ``load_state``): the model ends with the weights of its best
        epoch, which are kept in checkpoints too.
    progress : show a progress bar (tqdm, on standard error) with the current loss: True, False, or
        ``"auto"``/None for "when standard error is a terminal". SageMaker's ``#progress_metric`` and
        ``#quality_metric`` log lines are written in every case (``#progress_metric`` when ``epochs`` is known).
    unit : what the bar counts (``"epoch"``; Seq2Seq's ``"checkpoint"``).
    """

    def __init__(self, *, epochs: int | None, batch_size: int, reporter: MetricReporter,
                 early_stopping: EarlyStopping | None = None, checkpoint_dir: str | None = None,
                 checkpoint_name: str = CHECKPOINT_FILE, config: Mapping[str, Any] | None = None,
                 loss_name: str = "loss", keep_best=None, progress: bool | str | None = "auto", unit: str = "epoch"):
        self.epochs, self.batch_size, self.reporter = epochs, batch_size, reporter
        self.early_stopping, self.loss_name, self.keep_best = early_stopping, loss_name, keep_best
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.checkpoint_name = checkpoint_name
        self.config = None if config is None else json.dumps(config, sort_keys=True)
        self.progress, self.unit = progress, unit
        self.epochs_run = 0

    def run(self, source, model: Trainable) -> int:
        """Train ``model`` on ``source``; return the number of epochs completed."""
        epoch = self._resume(model)
        with progress_bar(self.progress, total=self.epochs, initial=epoch, unit=self.unit) as bar:
            while self.epochs is None or epoch < self.epochs:
                if self._run_epoch(source, model, epoch, bar):
                    break
                epoch += 1
        if self.keep_best is not None:
            self.keep_best.restore()
        return self.epochs_run

    def _run_epoch(self, source, model: Trainable, epoch: int, bar: _Bar) -> bool:
        """Train one epoch, evaluate, keep the best, checkpoint; return whether early stopping ends training."""
        before = dict(self.reporter.metrics)
        losses = [loss for loss in self._epoch(source, model, epoch, bar) if loss is not None]
        if losses:
            self.reporter.report(f"train:{self.loss_name}", float(np.mean(losses)), epoch=epoch)
        metrics = model.end_epoch(epoch) or {}
        if self.keep_best is not None:
            self.keep_best.update(metrics, epoch)
        self.epochs_run = epoch + 1
        if self.epochs is not None:
            self.reporter.progress(epoch + 1, self.epochs)
        reported = {k: v for k, v in self.reporter.metrics.items() if before.get(k) != v}
        bar.update(1, {name.removeprefix("train:"): value for name, value in {**reported, **metrics}.items()})
        es = self.early_stopping
        stop = es is not None and es.metric in metrics and es.update(metrics[es.metric], epoch)
        self._checkpoint(model, epoch)  # after the early-stopping update, so that a resumed run counts this epoch
        if stop:
            logger.info("early stopping at epoch %d: best %s=%s at epoch %d", epoch, es.metric, es.best,
                        es.best_epoch)
        return stop

    def _epoch(self, source, model: Trainable, epoch: int, bar: _Bar) -> Iterator[float | None]:
        for batch in source.batches(self.batch_size, epoch=epoch):
            loss = model.train_batch(batch)
            bar.batch(loss)
            yield loss

    # ------------------------------------------------------------------------------ checkpoints
    def _checkpoint(self, model: Trainable, epoch: int) -> None:
        if self.checkpoint_dir is None:
            return
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        state = dict(model.state())
        state["__epoch__"] = np.asarray(epoch)
        if self.early_stopping is not None:
            es = self.early_stopping
            state["__early_stopping__"] = np.asarray([es.best, es.best_epoch, es.bad_epochs], float)
        if self.keep_best is not None:
            state.update(self.keep_best.state())
        if self.config is not None:
            state["__config__"] = np.asarray(self.config)
        write_npz_atomic(self.checkpoint_dir / self.checkpoint_name, state)

    def _resume(self, model: Trainable) -> int:
        path = None if self.checkpoint_dir is None else self.checkpoint_dir / self.checkpoint_name
        if path is None or not path.exists():
            return 0
        with np.load(path, allow_pickle=False) as data:
            if self.config is not None:
                written = str(data["__config__"]) if "__config__" in data.files else None
                if written != self.config:
                    logger.warning("ignoring checkpoint %s: written with other settings", path)
                    return 0
            state = {key: data[key] for key in data.files if key != "__config__"}
        epoch = int(state.pop("__epoch__"))
        es_state = state.pop("__early_stopping__", None)
        if es_state is not None and self.early_stopping is not None:
            es = self.early_stopping
            es.best, es.best_epoch, es.bad_epochs = float(es_state[0]), int(es_state[1]), int(es_state[2])
        if self.keep_best is not None:
            self.keep_best.load_state(state)
        model.load_state(state)
        logger.info("resuming from checkpoint %s after epoch %d", path, epoch)
        self.epochs_run = epoch + 1
        return epoch + 1


class _Bar:
    """A tqdm bar over epochs showing the latest loss, or nothing (not a terminal, or turned off)."""

    def __init__(self, bar):
        self._bar, self._loss = bar, None

    def batch(self, loss) -> None:
        if self._bar is not None and loss is not None:
            self._loss = float(loss)
            self._bar.set_postfix(loss=f"{self._loss:.4g}", refresh=False)

    def update(self, epochs: int, metrics: dict[str, float]) -> None:
        if self._bar is None:
            return
        shown = {name: f"{value:.4g}" for name, value in list(metrics.items())[:3]
                 if isinstance(value, (int, float))}
        if not shown and self._loss is not None:
            shown["loss"] = f"{self._loss:.4g}"
        self._bar.set_postfix(shown, refresh=False)
        self._bar.update(epochs)


@contextlib.contextmanager
def progress_bar(progress: bool | str | None, *, total: int, initial: int = 0, unit: str = "epoch"
                 ) -> Iterator[_Bar]:
    """A :class:`_Bar` for the training loop: tqdm on standard error when ``progress`` is True, or when it
    is ``"auto"``/None and standard error is a terminal (a container's log gets only SageMaker's lines)."""
    show = sys.stderr.isatty() if progress in (None, "auto") else bool(progress)
    if not show:
        yield _Bar(None)
        return
    from tqdm.auto import tqdm

    # a terminal that reports no size (0 x 0, as `docker run -t` may) would hide the bar: 80 x 24 then
    size = shutil.get_terminal_size((80, 24))
    with tqdm(total=total, initial=initial, unit=unit, desc="training", file=sys.stderr, leave=True,
              ncols=size.columns or 80, nrows=size.lines or 24) as bar:
        yield _Bar(bar)


def write_npz_atomic(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write an ``.npz`` through a temporary file and a rename, so readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def accumulate(source, batch_size: int, step: Callable[[Batch], None], *, epoch: int = 0) -> int:
    """One pass of ``step`` over every mini-batch of ``source``; returns the rows seen.

    For algorithms whose training is a single additive pass (PCA's summaries, statistics).
    """
    rows = 0
    for batch in source.batches(batch_size, epoch=epoch):
        step(batch)
        rows += len(batch)
    return rows


def dump_json(data: Any) -> str:
    """JSON with sorted keys, used for headers and metadata."""
    return json.dumps(data, sort_keys=True, indent=1)
