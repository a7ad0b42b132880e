"""Resolving Linear Learner's ``auto`` values, and spreading the ``num_models`` variants around them.

SageMaker documents *that* ``auto`` values are chosen by the algorithm but not *which* values; each
choice below is marked "SageMaker does not say" and is listed in the README. The variants: model 0
uses exactly the user's (resolved) settings; the others spread learning rate, ``wd``, ``l1`` and,
with ``positive_example_weight_mult=auto``, the positive weight on a Latin hypercube around them
(wider when the user left a value to ``auto``). Each variant's settings are plain numbers, so any
variant can be re-trained alone with ``num_models=1`` and those values, and gives the same model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .hyperparameters import SDK_EXTRA_CRITERIA

AUTO = "auto"
#: SageMaker does not say: learning_rate=auto per optimizer.
AUTO_LEARNING_RATE = {"adam": 0.01, "rmsprop": 0.01, "sgd": 0.01}
AUTO_NUM_MODELS = 32
#: SageMaker does not say: num_calibration_samples=auto calibrates on (up to) ten million rows.
AUTO_CALIBRATION_SAMPLES = 10_000_000
#: SageMaker does not say: the step schedule, when auto, decays by 0.9 once per epoch to 1/1000 of the rate.
AUTO_LR_FACTOR = 0.9
AUTO_MIN_LR_RATIO = 1e-3
#: auto values documented as such (momentum and betas are the usual defaults; the bias is not decayed).
AUTO_MOMENTUM, AUTO_BETA_1, AUTO_BETA_2, AUTO_BIAS_WD_MULT = 0.9, 0.9, 0.999, 0.0
#: SageMaker does not say: bias_lr_mult=auto.
AUTO_BIAS_LR_MULT = 10.0
#: Decades around the user's value that the variants explore (learning rate: given / auto).
LR_SPAN_GIVEN, LR_SPAN_AUTO, REG_SPAN_GIVEN = 0.5, 1.0, 1.0
#: With wd / l1 = auto, the variants draw log-uniform values in these ranges, a share of them 0.
WD_AUTO_RANGE, WD_AUTO_ZERO_SHARE = (1e-7, 1e-1), 0.2
L1_AUTO_RANGE, L1_AUTO_ZERO_SHARE = (1e-7, 1e-2), 0.5


@dataclass
class Settings:
    """Every hyperparameter with ``auto`` resolved (variant-independent parts)."""

    predictor_type: str
    loss: str
    outputs: int
    num_models: int
    optimizer: str
    beta_1: float
    beta_2: float
    momentum: float
    bias_lr_mult: float
    bias_wd_mult: float
    use_bias: bool
    use_lr_scheduler: bool
    lr_scheduler_step: int | None  # None: once per epoch
    lr_scheduler_factor: float
    lr_scheduler_minimum_lr: float | None  # None: AUTO_MIN_LR_RATIO * each variant's rate
    center_features: bool
    scale_features: bool
    center_label: bool
    scale_label: bool
    criterion: str
    num_calibration_samples: int
    given: dict[str, Any] = field(default_factory=dict)

    @property
    def binary(self) -> bool:
        return self.predictor_type == "binary_classifier"

    @property
    def multiclass(self) -> bool:
        return self.predictor_type == "multiclass_classifier"

    @property
    def regressor(self) -> bool:
        return self.predictor_type == "regressor"

    @property
    def calibrates(self) -> bool:
        """Binary criteria other than the loss pick a threshold on the calibration rows."""
        return self.binary and self.criterion not in ("loss_function", "cross_entropy_loss")


def _auto(value, fallback):
    return fallback if value == AUTO else value


def resolve(hp: dict[str, Any]) -> Settings:
    """The :class:`Settings` of the parsed hyperparameters ``hp``."""
    kind = hp["predictor_type"]
    loss = hp["loss"]
    if loss == AUTO:
        loss = {"binary_classifier": "logistic", "multiclass_classifier": "softmax_loss"}.get(kind, "squared_loss")
    optimizer = "adam" if hp["optimizer"] == AUTO else hp["optimizer"]
    use_bias = hp["use_bias"]
    regressor = kind == "regressor"
    criterion = hp["binary_classifier_model_selection_criteria"]
    if criterion in SDK_EXTRA_CRITERIA:  # the SDK's names for f_beta with beta 1 and for the loss
        criterion = "f_beta_1" if criterion == "f1" else "loss_function"
    return Settings(
        predictor_type=kind, loss=loss,
        outputs=hp["num_classes"] if kind == "multiclass_classifier" else 1,
        num_models=_auto(hp["num_models"], AUTO_NUM_MODELS),
        optimizer=optimizer,
        beta_1=_auto(hp["beta_1"], AUTO_BETA_1), beta_2=_auto(hp["beta_2"], AUTO_BETA_2),
        momentum=_auto(hp["momentum"], AUTO_MOMENTUM),
        bias_lr_mult=_auto(hp["bias_lr_mult"], AUTO_BIAS_LR_MULT),
        bias_wd_mult=_auto(hp["bias_wd_mult"], AUTO_BIAS_WD_MULT),
        use_bias=use_bias, use_lr_scheduler=hp["use_lr_scheduler"],
        lr_scheduler_step=None if hp["lr_scheduler_step"] == AUTO else hp["lr_scheduler_step"],
        lr_scheduler_factor=_auto(hp["lr_scheduler_factor"], AUTO_LR_FACTOR),
        lr_scheduler_minimum_lr=None if hp["lr_scheduler_minimum_lr"] == AUTO else hp["lr_scheduler_minimum_lr"],
        center_features=_auto(hp["unbias_data"], use_bias),
        scale_features=_auto(hp["normalize_data"], True),
        # normalize_label / unbias_label apply to regression only: a classifier's true is ignored
        center_label=regressor and _auto(hp["unbias_label"], use_bias),
        scale_label=regressor and _auto(hp["normalize_label"], True),
        criterion=criterion,
        num_calibration_samples=_auto(hp["num_calibration_samples"], AUTO_CALIBRATION_SAMPLES),
        given=dict(hp),
    )


@dataclass
class Variants:
    """Per-model settings, one entry per variant (numpy arrays of length num_models)."""

    learning_rate: np.ndarray
    wd: np.ndarray
    l1: np.ndarray
    positive_example_weight_mult: np.ndarray

    def __len__(self) -> int:
        return len(self.learning_rate)

    def as_hyperparameters(self, index: int) -> dict[str, float]:
        """Variant ``index`` as explicit hyperparameters (train it alone with ``num_models=1``)."""
        out = {"learning_rate": float(self.learning_rate[index]), "wd": float(self.wd[index]),
               "l1": float(self.l1[index])}
        out["positive_example_weight_mult"] = float(self.positive_example_weight_mult[index])
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        return {"learning_rate": self.learning_rate, "wd": self.wd, "l1": self.l1,
                "positive_example_weight_mult": self.positive_example_weight_mult}


def _latin_hypercube(n: int, dims: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points in [0, 1)^dims, one per stratum along every axis."""
    strata = np.stack([rng.permutation(n) for _ in range(dims)], axis=1)
    return (strata + rng.random((n, dims))) / max(n, 1)


def _log_spread(unit: np.ndarray, low: float, high: float, zero_share: float) -> np.ndarray:
    """Map [0, 1) to 0 (the first ``zero_share``) then log-uniformly to [low, high]."""
    t = np.clip((unit - zero_share) / (1.0 - zero_share), 0.0, 1.0)
    values = 10.0 ** (np.log10(low) + t * (np.log10(high) - np.log10(low)))
    return np.where(unit < zero_share, 0.0, values)


def _around(given, unit: np.ndarray, auto_range, zero_share: float) -> tuple[float, np.ndarray]:
    """(model 0's value, the other variants' values) for wd or l1."""
    if given == AUTO:
        return 0.0, _log_spread(unit, *auto_range, zero_share)
    return float(given), float(given) * 10.0 ** (REG_SPAN_GIVEN * (2.0 * unit - 1.0))


def make_variants(settings: Settings, balanced_weight: float, seed: int) -> Variants:
    """The ``num_models`` variants around the user's settings (model 0 = the settings themselves)."""
    hp, m = settings.given, settings.num_models
    rng = np.random.default_rng([seed, 0x11])
    unit = _latin_hypercube(m - 1, 4, rng)
    lr_given = hp["learning_rate"]
    lr0 = AUTO_LEARNING_RATE[settings.optimizer] if lr_given == AUTO else float(lr_given)
    span = LR_SPAN_AUTO if lr_given == AUTO else LR_SPAN_GIVEN
    lr = lr0 * 10.0 ** (span * (2.0 * unit[:, 0] - 1.0))
    wd0, wd = _around(hp["wd"], unit[:, 1], WD_AUTO_RANGE, WD_AUTO_ZERO_SHARE)
    l10, l1 = _around(hp["l1"], unit[:, 2], L1_AUTO_RANGE, L1_AUTO_ZERO_SHARE)
    weight = hp["positive_example_weight_mult"]
    if weight == AUTO:  # "chosen for performance": the variants span unweighted .. balanced
        pw0, pw = 1.0, balanced_weight ** unit[:, 3]
    else:
        pw0 = balanced_weight if weight == "balanced" else float(weight)
        pw = np.full(m - 1, pw0)
    return Variants(np.r_[lr0, lr], np.r_[wd0, wd], np.r_[l10, l1], np.r_[pw0, pw])
