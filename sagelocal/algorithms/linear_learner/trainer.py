"""Training of the variants for :class:`~sagelocal.base.training.TrainingLoop`, and model selection.

Each variant keeps its own early-stopping record (best value, epochs without an improvement of more
than ``early_stopping_tolerance`` relative) and a snapshot of its parameters at its best epoch; a
variant that runs out of patience or diverges stops updating, and the loop ends when none is left.
So every variant follows exactly the path it would follow trained alone. The value watched is the
selection criterion on the validation channel (calibrated per model for binary criteria), else the
validation loss, else, without a validation channel, the training loss (SageMaker's rule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ...base.batch import Batch
from ...base.errors import DataFormatError
from ...base.training import EarlyStopping
from .kernels import Ensemble, LossSpec, loss_and_grad, to_device
from .metrics import calibrate

#: Name of the value end_epoch hands the loop: the number of variants still training.
VARIANTS_TRAINING = "variants_training"


class UntilEveryVariantStops(EarlyStopping):
    """The loop's early stopping: stop once every variant has stopped (each tracks its own patience)."""

    def update(self, value: float, epoch: int) -> bool:
        self.best, self.best_epoch = value, epoch
        return value <= 0


def check_batch(batch: Batch, settings, feature_dim: int, channel: str) -> None:
    """Reject rows of the wrong width, missing or invalid labels and non-finite values."""
    if batch.feature_dim != feature_dim:
        raise DataFormatError(f"linear-learner: rows have {batch.feature_dim} features but feature_dim is "
                              f"{feature_dim}", channel=channel)
    y = batch.labels
    if y is None:
        raise DataFormatError("linear-learner needs labels: the first CSV column, or label['values'] in "
                              "RecordIO-protobuf; this channel has none", channel=channel)
    if y.ndim != 1:
        raise DataFormatError(f"linear-learner takes one label per row; got {y.shape[1]}", channel=channel)
    values = batch.features.data if sp.issparse(batch.features) else batch.features
    if not np.isfinite(values).all():
        raise DataFormatError("features must be finite numbers; found NaN or infinity", channel=channel)
    if not np.isfinite(y).all():
        raise DataFormatError("labels must be finite numbers; found NaN or infinity", channel=channel)
    if settings.binary:
        bad = (y != 0) & (y != 1)
        allowed = "0 or 1 (binary_classifier)"
    elif settings.multiclass:
        bad = (y < 0) | (y >= settings.outputs) | (y != np.floor(y))
        allowed = f"integers 0..{settings.outputs - 1} (num_classes={settings.outputs})"
    else:
        return
    if bad.any():
        raise DataFormatError(f"labels must be {allowed}; got {y[np.argmax(bad)]!r}", channel=channel)


@dataclass
class Preprocessing:
    """Feature standardization and label scaling estimated from the first num_point_for_scaler rows."""

    shift: np.ndarray
    scale: np.ndarray
    label_shift: float
    label_scale: float
    regressor: bool

    @classmethod
    def from_sample(cls, sample: Batch, settings) -> Preprocessing:
        X = sample.features
        if sp.issparse(X):  # moments without densifying
            mean = np.asarray(X.mean(axis=0), dtype=np.float64).ravel()
            var = np.asarray(X.multiply(X).mean(axis=0), dtype=np.float64).ravel() - mean * mean
        else:
            X64 = X.astype(np.float64)
            mean, var = X64.mean(axis=0), X64.var(axis=0)
        std = np.sqrt(np.clip(var, 0.0, None))
        constant = (std <= 1e-7 * np.abs(mean)) | (std == 0) | ~np.isfinite(std)
        std = np.where(constant, 1.0, std)  # a constant feature is left unscaled
        shift = mean if settings.center_features else np.zeros_like(mean)
        scale = 1.0 / std if settings.scale_features else np.ones_like(std)
        y = sample.labels.astype(np.float64)
        label_shift = float(y.mean()) if settings.center_label else 0.0
        label_std = float(y.std())
        label_scale = label_std if settings.scale_label and label_std > 0 else 1.0
        return cls(shift, scale, label_shift, label_scale, settings.regressor)

    def to_label_scale(self, z):
        """Raw outputs of the training label scale mapped back to the user's label scale."""
        return z * self.label_scale + self.label_shift if self.regressor else z


class VariantTrainer:
    """The :class:`~sagelocal.base.training.Trainable` that trains an :class:`Ensemble`."""

    def __init__(self, ensemble: Ensemble, *, settings, hp, reporter, prep, validation, feature_dim: int,
                 class_weights: torch.Tensor | None, positive_weights: torch.Tensor | None):
        self.ens, self.settings, self.hp, self.reporter, self.prep = ensemble, settings, hp, reporter, prep
        self.validation, self.feature_dim = validation, feature_dim
        self.class_weights, self.positive_weights = class_weights, positive_weights
        self.original_loss = LossSpec(settings.loss, hp["margin"], hp["loss_insensitivity"], hp["quantile"],
                                      hp["huber_delta"])
        m, device = len(ensemble.base_lr), ensemble.device
        self.best_value = np.full(m, -np.inf)  # snapshot record (strict improvement)
        self.patience_best = np.full(m, -np.inf)  # early-stopping record (improvement beyond tolerance)
        self.bad_epochs = np.zeros(m, dtype=np.int64)
        self.best = ensemble.params.clone()  # each variant's parameters at its best epoch
        self.epoch = 0
        self._checked = {"train": False, "validation": False}
        self._zero_epoch(device)

    def _zero_epoch(self, device) -> None:
        self.loss_sum = torch.zeros(len(self.ens.base_lr), dtype=torch.float64, device=device)
        self.weight_sum = torch.zeros(len(self.ens.base_lr), dtype=torch.float64, device=device)

    # ---------------------------------------------------------------------------- the batches
    def labels_tensor(self, labels: np.ndarray) -> torch.Tensor:
        y = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.float32)).to(self.ens.device)
        if self.settings.regressor:
            y = (y - self.prep.label_shift) / self.prep.label_scale
        return y

    def row_weights(self, y: torch.Tensor, given: np.ndarray | None) -> torch.Tensor | None:
        weights = None
        if self.positive_weights is not None:  # (rows, models): positives weigh each variant's mult
            weights = 1.0 + y[:, None] * (self.positive_weights - 1.0)
        elif self.class_weights is not None:
            weights = self.class_weights[y.long()]
        if given is not None:
            g = torch.from_numpy(np.asarray(given, dtype=np.float32)).to(self.ens.device)
            weights = g if weights is None else weights * (g[:, None] if weights.dim() == 2 else g)
        return weights

    def train_batch(self, batch: Batch) -> None:
        if not self._checked["train"]:
            check_batch(batch, self.settings, self.feature_dim, "train")
        X = to_device(batch.features, self.ens.device)
        y = self.labels_tensor(batch.labels)
        weights = self.row_weights(y, batch.weights)
        step = self.settings.lr_scheduler_step
        if step is not None:
            self.ens.decay_to(self.ens.updates // step)
        self.loss_sum += self.ens.step(X, y, weights)
        if weights is None:
            self.weight_sum += len(batch)
        else:  # per-variant total weight, without a device sync
            self.weight_sum += weights.sum(0, dtype=torch.float64) if weights.dim() == 2 else weights.sum(
                dtype=torch.float64)
        return None

    # ------------------------------------------------------------------------------ each epoch
    def end_epoch(self, epoch: int) -> dict[str, float]:
        self._checked["train"] = True
        train_loss = (self.loss_sum / self.weight_sum.clamp(min=1e-12)).cpu().numpy()
        finite = np.isfinite(train_loss)
        if finite.any():
            self.reporter.report("train:objective_loss", float(np.min(train_loss[finite])), epoch=epoch)
        if self.validation is not None:
            values, losses = self.evaluate(self.validation, epoch, "validation")
            best = int(np.argmax(values))
            if np.isfinite(losses[best]):
                self.reporter.report("validation:objective_loss", float(losses[best]), epoch=epoch)
        else:
            values = np.where(finite, -train_loss, -np.inf)
        self._track(values)
        if self.settings.lr_scheduler_step is None:  # auto: decay once per epoch
            self.ens.decay_to(epoch + 1)
        self.epoch = epoch + 1
        self._zero_epoch(self.ens.device)
        return {VARIANTS_TRAINING: float(self.ens.active.sum())}

    def _track(self, values: np.ndarray) -> None:
        values = np.where(np.isnan(values), -np.inf, values)
        trained = self.ens.active.cpu().numpy()  # variants that learned this epoch; stopped ones keep their best
        better = (values > self.best_value) & trained
        if better.any():
            mask = torch.as_tensor(better, device=self.ens.device)
            self.best = torch.where(mask.view(1, -1, 1), self.ens.params, self.best)
            self.best_value = np.where(better, values, self.best_value)
        tolerance = self.hp["early_stopping_tolerance"]
        best = self.patience_best
        with np.errstate(invalid="ignore"):  # relative improvement, as base.training.EarlyStopping counts it
            improved = np.isfinite(values) & (~np.isfinite(best) | (values > best + tolerance * np.abs(best)))
        self.patience_best = np.where(improved, values, self.patience_best)
        self.bad_epochs = np.where(improved, 0, self.bad_epochs + 1)
        stopped = (self.bad_epochs >= self.hp["early_stopping_patience"]) | ~np.isfinite(values)
        if (stopped & trained).any():
            self.ens.freeze(torch.as_tensor(stopped, device=self.ens.device))

    # ------------------------------------------------------------------------------ evaluation
    def evaluate(self, source, epoch: int, channel: str, snapshot: bool = False):
        """(selection values, mean losses) of every variant on ``source``.

        Values are larger-is-better: the calibrated criterion for binary criteria (calibrated on the
        raw outputs of the first num_calibration_samples rows), else minus the loss.
        """
        s, ens = self.settings, self.ens
        params = self.best if snapshot else ens.params
        wanted = s.num_calibration_samples if s.calibrates else 0
        loss_sum = torch.zeros(len(ens.base_lr), dtype=torch.float64, device=ens.device)
        rows, kept, kept_labels = 0, [], []
        with torch.no_grad():
            for batch in source.batches(self.hp["mini_batch_size"], epoch=epoch):
                if not self._checked.get(channel, True):
                    check_batch(batch, s, self.feature_dim, channel)
                z = self.prep.to_label_scale(ens.raw(to_device(batch.features, ens.device), params))
                y = torch.from_numpy(np.ascontiguousarray(batch.labels, dtype=np.float32)).to(ens.device)
                loss, _ = loss_and_grad(self.original_loss, z, y, grad=False)
                loss_sum += loss.sum(0, dtype=torch.float64)
                rows += len(batch)
                take = min(len(batch), wanted - sum(len(k) for k in kept_labels))
                if take > 0:
                    kept.append(z[:take, :, 0].T)
                    kept_labels.append(y[:take])
        self._checked[channel] = True
        losses = (loss_sum / max(rows, 1)).cpu().numpy()
        losses = np.where(np.isfinite(losses), losses, np.inf)
        if not kept:
            return -losses, losses
        _, values = calibrate(torch.cat(kept, dim=1), torch.cat(kept_labels), s.criterion,
                                       beta=self.hp["f_beta"], target_recall=self.hp["target_recall"],
                                       target_precision=self.hp["target_precision"])
        values = torch.where(torch.isfinite(torch.as_tensor(losses, device=ens.device)), values,
                             torch.full_like(values, -math.inf))
        return values.cpu().numpy(), losses

    def choose(self, sample_source) -> tuple[int, float]:
        """(winner, its value): by the validation record, else on a training sample."""
        if self.validation is not None:
            values = self.best_value
        else:
            values, _ = self.evaluate(sample_source, 0, "sample", snapshot=True)
        values = np.where(np.isnan(values), -np.inf, values)
        winner = int(np.argmax(values))
        return winner, float(values[winner])

    # ------------------------------------------------------------------------------- checkpoint
    def state(self) -> dict[str, np.ndarray]:
        out = {f"ensemble_{k}": v for k, v in self.ens.state().items()}
        out.update(best=self.best.cpu().numpy(),
                   best_value=self.best_value, patience_best=self.patience_best, bad_epochs=self.bad_epochs,
                   epoch=np.asarray(self.epoch))
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.ens.load_state({k[len("ensemble_"):]: v for k, v in state.items() if k.startswith("ensemble_")})
        device = self.ens.device
        self.best = torch.as_tensor(state["best"], device=device)
        self.best_value, self.patience_best = state["best_value"], state["patience_best"]
        self.bad_epochs = state["bad_epochs"]
        self.epoch = int(state["epoch"])
        self._checked["train"] = True
