"""The numeric core: ``num_models`` linear models trained as one batched torch computation.

The weights of every variant live in one tensor of shape (models, features, outputs), stored
feature-major, so that a single matrix product ``X @ W`` scores a mini-batch under every variant
and a single ``X^T @ G`` gives every gradient: training 32 variants costs little more than one, since
the pass over the data dominates. Gradients are closed-form (the losses are simple), and the
optimizers (sgd with momentum, adam, rmsprop in MXNet's formulation, as SageMaker's algorithm runs on
MXNet), weight decay, the L1 proximal step and the step schedule take a per-variant learning rate,
``wd`` and ``l1``. Variants never mix: column ``m`` of every product depends on variant ``m`` only, so a
diverging variant cannot disturb the others, and a variant trains exactly as it would alone.

Everything is device-agnostic: tensors live on the device the estimator picks (CUDA when present).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from .settings import AUTO_MIN_LR_RATIO

EPSILON = 1e-8
#: MXNet's rmsprop decay (gamma1); SageMaker exposes no hyperparameter for it.
RMSPROP_DECAY = 0.95


# ------------------------------------------------------------------------------------------ losses
@dataclass(frozen=True)
class LossSpec:
    """A loss and its parameters (on the scale of the labels it is applied to)."""

    name: str
    margin: float = 1.0
    insensitivity: float = 0.01
    quantile: float = 0.5
    huber_delta: float = 1.0

    def rescaled(self, label_scale: float) -> LossSpec:
        """The same loss on labels divided by ``label_scale`` (training on normalized labels)."""
        return LossSpec(self.name, self.margin, self.insensitivity / label_scale, self.quantile,
                        self.huber_delta / label_scale)


def loss_and_grad(spec: LossSpec, z: torch.Tensor, y: torch.Tensor, grad: bool = True):
    """Per-row, per-model loss and its derivative in ``z``.

    ``z`` is (rows, models, outputs) of raw outputs; ``y`` is (rows,) float labels (class indices for
    softmax_loss). Returns ``(loss (rows, models), dz like z or None)``.
    """
    name = spec.name
    if name == "softmax_loss":
        logp = torch.log_softmax(z, dim=-1)
        index = y.long().view(-1, 1, 1).expand(-1, z.shape[1], 1)
        loss = -logp.gather(-1, index).squeeze(-1)
        if not grad:
            return loss, None
        dz = logp.exp_()
        dz.scatter_add_(-1, index, torch.full_like(index, -1.0, dtype=dz.dtype))
        return loss, dz
    z1 = z[..., 0]
    t = y.view(-1, 1)
    if name == "logistic":
        loss = F.softplus(z1) - t * z1
        dz = torch.sigmoid(z1) - t if grad else None
    elif name == "hinge_loss":
        sign = 2.0 * t - 1.0
        slack = spec.margin - sign * z1
        loss = slack.clamp(min=0.0)
        dz = -sign * (slack > 0) if grad else None
    else:
        loss, dz = _regression(spec, z1 - t, grad)
    return loss, None if dz is None else dz.unsqueeze(-1)


def _regression(spec: LossSpec, e: torch.Tensor, grad: bool):
    """Regression losses of the error ``e = prediction - label``."""
    name = spec.name
    if name == "squared_loss":
        return e * e, 2.0 * e if grad else None
    if name == "absolute_loss":
        return e.abs(), torch.sign(e) if grad else None
    if name == "eps_insensitive_squared_loss":
        r = (e.abs() - spec.insensitivity).clamp(min=0.0)
        return r * r, 2.0 * r * torch.sign(e) if grad else None
    if name == "eps_insensitive_absolute_loss":
        r = (e.abs() - spec.insensitivity).clamp(min=0.0)
        return r, torch.sign(e) * (r > 0) if grad else None
    if name == "quantile_loss":  # pinball loss of the residual label - prediction = -e
        q = spec.quantile
        loss = torch.maximum(-q * e, (1.0 - q) * e)
        return loss, torch.where(e < 0, -q, 1.0 - q) if grad else None
    if name == "huber_loss":
        d = spec.huber_delta
        a = e.abs()
        loss = torch.where(a <= d, 0.5 * e * e, d * (a - 0.5 * d))
        return loss, e.clamp(-d, d) if grad else None
    raise ValueError(f"unknown loss {name!r}")


# --------------------------------------------------------------------------------------- features
def to_device(features, device) -> torch.Tensor:
    """A batch's features as a torch tensor on ``device`` (CSR becomes a coalesced COO tensor)."""
    if sp.issparse(features):
        coo = features.tocoo()
        indices = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
        values = torch.from_numpy(coo.data.astype(np.float32, copy=False))
        tensor = torch.sparse_coo_tensor(indices, values, coo.shape, is_coalesced=True, check_invariants=False)
        return tensor.to(device)
    return torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(device, non_blocking=True)


class Standardizer:
    """``(x - shift) * scale`` per feature, applied so that sparse batches stay sparse."""

    def __init__(self, shift: np.ndarray, scale: np.ndarray, device):
        self.shift = torch.as_tensor(shift, dtype=torch.float32, device=device)
        self.scale = torch.as_tensor(scale, dtype=torch.float32, device=device)
        self.identity = not bool(np.any(shift)) and bool(np.all(scale == 1.0))
        self._minus_shift_scaled = -self.shift * self.scale

    def forward(self, X: torch.Tensor, W2: torch.Tensor):
        """``standardized(X) @ W2`` and what :meth:`backward` needs."""
        if X.is_sparse:  # fold: ((X - s) * c) @ W = X @ (c * W) - (s * c) @ W
            return X @ (self.scale[:, None] * W2) + self._minus_shift_scaled @ W2, X
        if not self.identity:  # one fused pass: X * c - s * c
            X = torch.addcmul(self._minus_shift_scaled, X, self.scale)
        return X @ W2, X

    def backward(self, X: torch.Tensor, G2: torch.Tensor, out: torch.Tensor) -> None:
        """``out = standardized(X)^T @ G2`` with ``X`` as :meth:`forward` returned it."""
        if X.is_sparse:
            out.copy_(self.scale[:, None] * (X.t() @ G2) + self._minus_shift_scaled[:, None] * G2.sum(0))
        else:
            torch.mm(X.t(), G2, out=out)


# -------------------------------------------------------------------------------------- ensemble
class Ensemble:
    """``num_models`` linear models with their optimizer state.

    The parameters of every variant are one tensor ``params`` of shape (features [+ 1], models,
    outputs): the weights, feature-major, then the bias as one more row (when ``use_bias``), so that
    one optimizer step updates everything; the per-row learning-rate and decay multipliers carry
    ``bias_lr_mult`` and ``bias_wd_mult``, and the bias row takes no L1.

    Parameters
    ----------
    settings : resolved :class:`~.settings.Settings`.
    variants : per-model learning rate, wd, l1 (:class:`~.settings.Variants`).
    init : (features, outputs) initial weights shared by every variant; ``init_bias`` the bias.
    standardizer : the feature transform.
    loss : the training loss (on the training label scale).
    """

    def __init__(self, settings, variants, init: np.ndarray, init_bias: float, standardizer: Standardizer,
                 loss: LossSpec, device):
        m = len(variants)
        d, k = init.shape
        self.settings, self.loss, self.std, self.device = settings, loss, standardizer, device
        self.shape = (d, m, k)
        rows = d + 1 if settings.use_bias else d
        as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32, device=device)  # noqa: E731
        self.params = torch.empty(rows, m, k, device=device)
        self.params[:d] = as_t(init)[:, None, :]
        if settings.use_bias:
            self.params[d] = float(init_bias)
        self.base_lr, self.wd, self.l1 = as_t(variants.learning_rate), as_t(variants.wd), as_t(variants.l1)
        minimum = settings.lr_scheduler_minimum_lr
        self.min_lr = self.base_lr * AUTO_MIN_LR_RATIO if minimum is None else torch.full_like(self.base_lr, minimum)
        self.use_l1 = bool(np.any(variants.l1 > 0))
        self._row_lr, self._row_wd, self._row_l1 = (torch.ones(rows, 1, 1, device=device) for _ in range(3))
        if settings.use_bias:
            self._row_lr[d], self._row_wd[d], self._row_l1[d] = settings.bias_lr_mult, settings.bias_wd_mult, 0.0
        self._wd_full = self.wd.view(1, m, 1) * self._row_wd
        self._l1_full = self.l1.view(1, m, 1) * self._row_l1
        self.active = torch.ones(m, dtype=torch.bool, device=device)
        self.updates = 0
        self.decays = 0  # scheduler steps taken; the rate is base * factor ** decays (floored)
        self._first, self._second = torch.zeros_like(self.params), torch.zeros_like(self.params)
        self._grad = torch.empty_like(self.params)
        self._set_rates()

    @property
    def weights(self) -> torch.Tensor:
        """The weight tensor, shape (models, features, outputs) (a view of the feature-major storage)."""
        return self.params[: self.shape[0]].permute(1, 0, 2)

    def split(self, params: torch.Tensor, model: int) -> tuple[np.ndarray, np.ndarray]:
        """(weights (features, outputs), bias (outputs,)) of one model of ``params`` as numpy."""
        d, _, k = self.shape
        chosen = params[:, model, :].cpu().numpy()
        return chosen[:d], chosen[d] if self.settings.use_bias else np.zeros(k, dtype=np.float32)

    # ------------------------------------------------------------------------------ schedule
    def _set_rates(self) -> None:
        rate = self.base_lr * (self.settings.lr_scheduler_factor ** self.decays)
        if self.settings.use_lr_scheduler:
            rate = torch.maximum(rate, torch.minimum(self.min_lr, self.base_lr))
        self.lr = torch.where(self.active, rate, torch.zeros_like(rate))
        self._lr_full = self.lr.view(1, -1, 1) * self._row_lr

    def decay_to(self, decays: int) -> None:
        """Set the number of scheduler decays (per update or per epoch, see the estimator)."""
        if self.settings.use_lr_scheduler and decays != self.decays:
            self.decays = decays
            self._set_rates()

    def freeze(self, stopped: torch.Tensor) -> None:
        """Stop updating the variants flagged in ``stopped`` (early stopping, divergence)."""
        self.active &= ~stopped
        self._first[:, stopped] = 0.0  # no sgd momentum left to carry a stopped variant on
        self._set_rates()

    # ------------------------------------------------------------------------------- forward
    def raw(self, X: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        """Raw outputs (rows, models, outputs) on the training label scale."""
        d, m, k = self.shape
        params = self.params if params is None else params
        z, _ = self.std.forward(X, params[:d].view(d, m * k))
        if self.settings.use_bias:
            z += params[d].view(1, m * k)
        return z.view(-1, m, k)

    # ------------------------------------------------------------------------------ training
    def step(self, X: torch.Tensor, y: torch.Tensor, row_weights: torch.Tensor | None) -> torch.Tensor:
        """One update of every variant on a mini-batch; returns the per-model weighted loss sum."""
        d, m, k = self.shape
        z, Xs = self.std.forward(X, self.params[:d].view(d, m * k))
        if self.settings.use_bias:
            z += self.params[d].view(1, m * k)
        loss, dz = loss_and_grad(self.loss, z.view(-1, m, k), y)
        rows = z.shape[0]
        if row_weights is not None:  # (rows,) or (rows, models)
            w = row_weights if row_weights.dim() == 2 else row_weights[:, None]
            loss = loss * w
            dz *= (w / rows).unsqueeze(-1)
        else:
            dz /= rows
        dz2 = dz.view(rows, m * k)
        grad = self._grad
        self.std.backward(Xs, dz2, out=grad[:d].view(d, m * k))
        if self.settings.use_bias:
            torch.sum(dz2, 0, out=grad[d].view(m * k))
        grad.addcmul_(self.params, self._wd_full)
        self.updates += 1
        step = self._update(grad)
        if self.use_l1:  # proximal step: soft-threshold by l1 times each coordinate's step size
            shrunk = (self.params.abs() - step * self._l1_full).clamp_(min=0.0)
            self.params.copy_(torch.sign(self.params) * shrunk)
        return loss.sum(0)

    def _update(self, grad: torch.Tensor):
        """One optimizer step of ``params`` in place; returns the per-coordinate step size (L1 prox)."""
        s, lr = self.settings, self._lr_full
        first, second, params = self._first, self._second, self.params
        if s.optimizer == "sgd":  # MXNet: mom = momentum * mom - lr * grad; w += mom
            first.mul_(s.momentum).addcmul_(grad, lr, value=-1.0)
            params.add_(first)
            return lr
        if s.optimizer == "adam":
            t = self.updates
            first.mul_(s.beta_1).add_(grad, alpha=1.0 - s.beta_1)
            second.mul_(s.beta_2).addcmul_(grad, grad, value=1.0 - s.beta_2)
            correction = math.sqrt(1.0 - s.beta_2 ** t) / (1.0 - s.beta_1 ** t)
            step = torch.div(lr * correction, second.sqrt().add_(EPSILON))
            params.addcmul_(first, step, value=-1.0)
            return step
        # rmsprop (MXNet, uncentred): n = (1 - g) grad^2 + g n; w -= lr grad / sqrt(n + eps)
        second.mul_(RMSPROP_DECAY).addcmul_(grad, grad, value=1.0 - RMSPROP_DECAY)
        step = torch.div(lr, (second + EPSILON).sqrt_())
        params.addcmul_(grad, step, value=-1.0)
        return step

    # --------------------------------------------------------------------------------- state
    def state(self) -> dict[str, np.ndarray]:
        out = {"params": self.params, "active": self.active, "first": self._first, "second": self._second}
        out = {key: value.detach().cpu().numpy() for key, value in out.items()}
        out["counters"] = np.asarray([self.updates, self.decays])
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        for key, target in (("params", self.params), ("first", self._first), ("second", self._second)):
            target.copy_(torch.as_tensor(state[key], device=self.device))
        self.active = torch.as_tensor(state["active"], device=self.device)
        self.updates, self.decays = (int(v) for v in state["counters"])
        self._set_rates()
