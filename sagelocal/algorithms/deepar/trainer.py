"""DeepAR's training configuration for the shared loop: window sampling (its data source) and the Adam steps
with gradient clipping and the plateau schedule (its Trainable)."""

from __future__ import annotations

import math

import numpy as np
import torch

from ...base.errors import SagelocalError
from ...base.torch_layer import load_module_arrays, module_arrays
from .data import SeriesPanel

#: Gradient-norm clipping and the plateau schedule of GluonTS's DeepAR trainer.
CLIP_GRADIENT = 10.0
LR_DECAY_FACTOR, LR_DECAY_PATIENCE = 0.5, 10


class Trainer:
    """Window sampling (a data source for TrainingLoop) and the optimisation steps (its Trainable)."""

    def __init__(self, estimator, panel: SeriesPanel, hp):
        self.network, self.hp = estimator.network_, hp
        self.context, self.horizon = hp["context_length"], hp["prediction_length"]
        self.default_scale = estimator.default_scale_
        self.seed = estimator._options["random_state"]
        trainable = panel.subset(panel.lengths >= self.horizon)  # the guide: shorter series are skipped
        self.flat = estimator._flat(trainable, future=0)
        self.starts = self.flat.lengths - self.horizon + 1  # forecast starts per series: 0 .. len - horizon
        self.cumulative = np.cumsum(self.starts)
        windows = max(len(trainable), math.ceil(int(self.flat.lengths.sum()) / (self.context + self.horizon)))
        requested = estimator._options["num_batches_per_epoch"]
        self.batches_per_epoch = math.ceil(windows / hp["mini_batch_size"]) if requested == "auto" else requested
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=hp["learning_rate"])
        self.schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, factor=LR_DECAY_FACTOR, patience=LR_DECAY_PATIENCE)
        self.reporter = estimator._reporter
        self.last_loss = math.nan
        self._reset_sums()

    def _reset_sums(self) -> None:
        zero = torch.zeros((), device=self.flat.device)
        self.loss_sum, self.count = zero.clone(), zero.clone()

    # data source: batches of (series, forecast start) pairs, drawn uniformly
    def batches(self, batch_size: int, epoch: int = 0):
        rng = np.random.default_rng([self.seed, epoch])
        for _ in range(self.batches_per_epoch):
            draw = rng.integers(0, int(self.cumulative[-1]), size=batch_size)
            series = np.searchsorted(self.cumulative, draw, side="right")
            yield series, draw - (self.cumulative[series] - self.starts[series])

    # Trainable
    def train_batch(self, batch) -> None:
        series, split = batch
        windows = self.flat.windows(series, split, before=self.network.max_lag + self.context, after=self.horizon)
        self.network.train()
        total, count = self.network.loss(windows, self.context, self.default_scale)
        loss = total / count.clamp(min=1.0)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.network.parameters(), CLIP_GRADIENT)
        self.optimizer.step()
        self.loss_sum += total.detach()
        self.count += count
        return None  # the epoch's observation-weighted loss is reported by end_epoch (one device sync)

    def end_epoch(self, epoch: int) -> dict[str, float]:
        loss = float(self.loss_sum / self.count.clamp(min=1.0))
        self._reset_sums()
        if not math.isfinite(loss):
            raise SagelocalError(f"forecasting-deepar: the training loss became {loss} in epoch {epoch}; lower "
                                 f"learning_rate (now {self.hp['learning_rate']}) or check the target values")
        self.reporter.report("train:loss", loss, epoch=epoch)
        self.schedule.step(loss)
        self.last_loss = loss
        return {"train:loss": loss}

    def state(self) -> dict[str, np.ndarray]:
        arrays = module_arrays(self.network)
        for i, param_state in enumerate(self.optimizer.state_dict()["state"].values()):
            arrays.update({f"adam.{i}.{k}": v.detach().cpu().numpy() for k, v in param_state.items()})
        arrays["lr"] = np.asarray([g["lr"] for g in self.optimizer.param_groups])
        arrays["last_loss"] = np.asarray(self.last_loss)
        return arrays

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        device = self.flat.device

        def tensors(prefix):
            return {k[len(prefix):]: torch.from_numpy(np.asarray(v)).to(device) for k, v in state.items()
                    if k.startswith(prefix)}

        load_module_arrays(self.network, state)
        optimizer_state = self.optimizer.state_dict()
        count = len(optimizer_state["param_groups"][0]["params"])
        optimizer_state["state"] = {i: tensors(f"adam.{i}.") for i in range(count) if f"adam.{i}.step" in state}
        for group, lr in zip(optimizer_state["param_groups"], state["lr"]):
            group["lr"] = float(lr)
        self.optimizer.load_state_dict(optimizer_state)
        self.last_loss = float(state.get("last_loss", math.nan))
