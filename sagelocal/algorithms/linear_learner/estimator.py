"""Linear Learner: SageMaker's ``linear-learner`` image, ``sagemaker.LinearLearner`` in the SDK.

What sets it apart from a plain linear model, and what this module keeps:

- ``num_models`` variants are trained together in one batched torch computation (see ``kernels``),
  spread around the user's settings (see ``settings``); each variant stops on its own patience and
  keeps its best epoch; the winner is chosen on the validation channel (or a training sample) by
  ``binary_classifier_model_selection_criteria`` for binary classifiers, by the loss otherwise.
- For binary classifiers the decision threshold is calibrated on ``num_calibration_samples``
  validation rows to optimise the criterion (e.g. best precision at ``target_recall``).
- Features (and, for regression, labels) are standardized from the first ``num_point_for_scaler``
  rows; predictions are mapped back to the label scale.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from ...base.batch import ArraySource, Batch
from ...base.device import DEVICE_OPTION, resolve_device
from ...base.errors import DataFormatError
from ...base.estimator import Estimator
from ...base.registry import register
from .hyperparameters import HYPERPARAMETERS, check_hyperparameters
from .kernels import Ensemble, LossSpec, Standardizer
from .metrics import (
    METRIC_GOALS,
    VALIDATION_ONLY,
    binary_metrics,
    calibrate,
    declared_metrics,
    multiclass_metrics,
    objective_loss,
    regression_metrics,
)
from .model import LinearModel
from .settings import Settings, Variants, make_variants, resolve
from .trainer import VARIANTS_TRAINING, Preprocessing, UntilEveryVariantStops, VariantTrainer, check_batch

logger = logging.getLogger("sagelocal")


class _ReplayFirstEpoch:
    """A data source whose epoch 0 replays the batches already read for the scaler, then goes on.

    The scaler sample is the head of epoch 0, so no extra pass is made (a Pipe-mode FIFO is read once).
    """

    def __init__(self, source, head: list[Batch], rest):
        self.source, self._head, self._rest = source, head, rest

    def batches(self, batch_size: int, epoch: int = 0):
        if epoch == 0 and self._rest is not None:
            head, rest = self._head, self._rest
            self._head, self._rest = [], None
            yield from head
            yield from rest
        else:
            yield from self.source.batches(batch_size, epoch=epoch)


@register
class LinearLearner(Estimator):
    """Linear models for regression and binary / multiclass classification, with SageMaker's
    hyperparameters, many variants trained at once and the best one kept.

    Attributes
    ----------
    model_ : the chosen model (standardization, weights, threshold).
    coef_ : ndarray (outputs, features), intercept_ : ndarray (outputs,)
        The chosen model on the original features and label scale (raw outputs before the sigmoid
        or softmax).
    threshold_ : float, the calibrated decision threshold on ``score`` (binary; a probability under
        logistic loss): ``predicted_label`` is 1 when ``score >= threshold_``.
    variants_ : list of dict, each variant's settings as explicit hyperparameters.
    chosen_model_ : int, index of the winner in ``variants_``.
    epochs_run_ : int
    """

    algorithm = "linear-learner"
    sdk_class = "LinearLearner"
    hyperparameters = HYPERPARAMETERS
    channels = {"train": True, "validation": False, "test": False}
    metrics = declared_metrics()
    response_key = "predictions"
    options = (DEVICE_OPTION,)

    @classmethod
    def _check_hyperparameters(cls, values):
        return check_hyperparameters(values)

    @classmethod
    def from_sagemaker(cls, hyperparameters, **options) -> LinearLearner:
        """Build from ``hyperparameters.json`` strictly; under automatic model tuning (SageMaker adds
        ``_tuning_objective_metric``) ``num_models`` is forced to 1, as SageMaker does."""
        estimator = super().from_sagemaker(hyperparameters, **options)
        if "_tuning_objective_metric" in hyperparameters:
            estimator.num_models = 1
        return estimator

    # ----------------------------------------------------------------------------------- fit
    def _device(self) -> torch.device:
        return resolve_device(self.algorithm, self._options["device"])

    def _fit(self, train, validation, test, hp):
        settings = resolve(hp)
        device = self._device()
        head, rest = self._prefetch(train, hp["mini_batch_size"], hp["num_point_for_scaler"])
        sample = Batch.concat(head).slice(0, hp["num_point_for_scaler"])
        feature_dim = sample.feature_dim
        if hp["feature_dim"] != "auto" and hp["feature_dim"] != feature_dim:
            raise DataFormatError(f"linear-learner: rows have {feature_dim} features but hyperparameter "
                                  f"feature_dim is {hp['feature_dim']}", channel="train")
        check_batch(sample, settings, feature_dim, "train")
        prep = Preprocessing.from_sample(sample, settings)
        variants = make_variants(settings, _balanced_weight(sample.labels), self._options["random_state"])
        trainer = self._trainer(settings, hp, variants, prep, validation, feature_dim, sample, device)
        stop = UntilEveryVariantStops(VARIANTS_TRAINING, patience=hp["early_stopping_patience"],
                                      tolerance=hp["early_stopping_tolerance"], goal="Maximize")
        loop = self._training_loop(epochs=hp["epochs"], batch_size=hp["mini_batch_size"], early_stopping=stop,
                                   loss_name="objective_loss")
        epochs_run = loop.run(_ReplayFirstEpoch(train, head, rest), trainer)
        sample_source = ArraySource(sample.features, sample.labels, name="train")
        winner, value = trainer.choose(sample_source)
        if not np.isfinite(value):
            logger.warning("linear-learner: every variant diverged; keeping variant %d as it stands", winner)
        weights, bias = trainer.ens.split(trainer.best, winner)
        self.model_ = LinearModel(prep.shift, prep.scale, weights, bias, prep.label_shift, prep.label_scale,
                                  settings.loss, settings.predictor_type, 0.0)
        outputs = {name: self._collect(name, source, settings, hp, epochs_run, feature_dim)
                   for name, source in (("validation", validation), ("test", test)) if source is not None}
        if settings.calibrates:  # on the chosen model's own outputs, as inference computes them
            raw, labels = outputs.get("validation") or self._collect("train", sample_source, settings, hp, 0,
                                                                      feature_dim)
            self.model_.threshold = self._calibrate(raw, labels, settings, hp)
        self._set_fitted(variants, winner, epochs_run, feature_dim)
        for name, (raw, labels) in outputs.items():
            self._report_final(name, raw, labels, hp)

    @staticmethod
    def _prefetch(train, batch_size: int, rows: int):
        """The first batches of epoch 0 holding ``rows`` rows (the scaler sample), and the rest."""
        rest = iter(train.batches(batch_size, epoch=0))
        head, count = [], 0
        for batch in rest:
            head.append(batch)
            count += len(batch)
            if count >= rows:
                break
        if count == 0:
            raise DataFormatError("linear-learner: the train channel has no rows", channel="train")
        return head, rest

    def _trainer(self, settings: Settings, hp, variants: Variants, prep, validation, feature_dim, sample, device):
        seed = self._options["random_state"]
        rng = np.random.default_rng([seed, 0x22])
        shape = (feature_dim, settings.outputs)
        if hp["init_method"] == "uniform":
            init = rng.uniform(-hp["init_scale"], hp["init_scale"], shape)
        else:
            init = rng.normal(0.0, hp["init_sigma"], shape)
        train_loss = LossSpec(settings.loss, hp["margin"], hp["loss_insensitivity"], hp["quantile"],
                              hp["huber_delta"]).rescaled(prep.label_scale)
        ensemble = Ensemble(settings, variants, init.astype(np.float32), hp["init_bias"],
                            Standardizer(prep.shift, prep.scale, device), train_loss, device)
        positive = class_weights = None
        if settings.binary and np.any(variants.positive_example_weight_mult != 1.0):
            positive = torch.as_tensor(variants.positive_example_weight_mult, dtype=torch.float32, device=device)
        if settings.multiclass and hp["balance_multiclass_weights"]:
            counts = np.bincount(sample.labels.astype(np.int64), minlength=settings.outputs).astype(np.float64)
            weights = np.where(counts > 0, counts.sum() / (settings.outputs * np.maximum(counts, 1)), 1.0)
            class_weights = torch.as_tensor(weights, dtype=torch.float32, device=device)
        return VariantTrainer(ensemble, settings=settings, hp=hp, reporter=self._reporter, prep=prep,
                              validation=validation, feature_dim=feature_dim, class_weights=class_weights,
                              positive_weights=positive)

    def _set_fitted(self, variants: Variants, winner: int, epochs_run: int, feature_dim: int) -> None:
        self._variants = variants
        self.variants_ = [variants.as_hyperparameters(i) for i in range(len(variants))]
        self.chosen_model_ = int(winner)
        self.epochs_run_ = int(epochs_run)
        self.n_features_in_ = int(feature_dim)
        self._set_public_attributes()

    def _set_public_attributes(self) -> None:
        model = self.model_
        folded = model.scale[:, None].astype(np.float64) * model.weights
        intercept = model.bias.astype(np.float64) - (model.shift.astype(np.float64) * model.scale) @ model.weights
        if model.predictor_type == "regressor":
            folded, intercept = folded * model.label_scale, intercept * model.label_scale + model.label_shift
        self.coef_, self.intercept_ = folded.T, intercept
        if model.predictor_type != "regressor":
            self.classes_ = np.arange(max(2, model.weights.shape[1]))
        if model.predictor_type == "binary_classifier":
            self.threshold_ = model.score_threshold

    # ------------------------------------------------------------------------------- metrics
    def _collect(self, split: str, source, settings, hp, epoch: int, feature_dim: int):
        """Raw outputs (rows, outputs) of the chosen model and the labels of every row of ``source``."""
        raws, labels = [], []
        for batch in source.batches(hp["mini_batch_size"], epoch=epoch):
            if split == "test":  # validation batches were checked during training
                check_batch(batch, settings, feature_dim, split)
            raws.append(self.model_.raw(batch.features))
            labels.append(batch.labels)
        if not raws:
            raise DataFormatError(f"linear-learner: the {split} channel has no rows", channel=split)
        return np.concatenate(raws), np.concatenate(labels)

    @staticmethod
    def _calibrate(raw: np.ndarray, labels: np.ndarray, settings, hp) -> float:
        """The decision threshold optimising the criterion on the first num_calibration_samples rows."""
        n = settings.num_calibration_samples
        thresholds, _ = calibrate(torch.from_numpy(np.ascontiguousarray(raw[:n, 0]))[None, :],
                                  torch.from_numpy(labels[:n].astype(np.float64)), settings.criterion,
                                  beta=hp["f_beta"], target_recall=hp["target_recall"],
                                  target_precision=hp["target_precision"])
        return float(thresholds[0])

    def _report_final(self, split: str, raw: np.ndarray, y: np.ndarray, hp) -> None:
        """Every metric of the chosen model on ``split``, under SageMaker's names."""
        kind = self.model_.predictor_type
        scores = self.model_.scores(raw)
        if kind == "binary_classifier":
            values = binary_metrics(y, self.model_.labels(raw), scores, hp["f_beta"])
        elif kind == "multiclass_classifier":
            values = multiclass_metrics(y, raw, hp["accuracy_top_k"], hp["f_beta"])
        else:
            values = regression_metrics(y, scores)
        values["objective_loss"] = objective_loss(LossSpec(self.model_.loss, hp["margin"], hp["loss_insensitivity"],
                                                           hp["quantile"], hp["huber_delta"]), raw, y)
        goals = METRIC_GOALS[kind]
        for name, value in values.items():
            if split == "test" and name in VALIDATION_ONLY:
                continue
            self._reporter.report(f"{split}:{name}", value, goals[name])

    # ------------------------------------------------------------------------------- predict
    def _predict(self, features) -> np.ndarray:
        """Predicted labels (int) for classifiers, predicted values for regressors."""
        raw = self.model_.raw(features)
        return self.model_.scores(raw) if self.model_.predictor_type == "regressor" else self.model_.labels(raw)

    def _records(self, features) -> list[dict[str, Any]]:
        return self.model_.records(features)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (rows, classes) of a logistic or softmax_loss classifier."""
        features = self._features(X)
        if self.model_.loss not in ("logistic", "softmax_loss"):
            raise DataFormatError(f"linear-learner: predict_proba needs loss logistic or softmax_loss; this model "
                                  f"was trained with {self.model_.loss}, whose scores are not probabilities")
        scores = self.model_.scores(self.model_.raw(features))
        return np.column_stack([1.0 - scores, scores]) if scores.ndim == 1 else scores

    def decision_function(self, X) -> np.ndarray:
        """Raw outputs before the sigmoid / softmax (rows,) or (rows, classes)."""
        raw = self.model_.raw(self._features(X))
        return raw[:, 0] if raw.shape[1] == 1 else raw

    def to_onnx(self, path) -> str:
        """Export the chosen model as ONNX (input ``features``; outputs ``score``, ``predicted_label``)."""
        self._check_fitted()
        return self.model_.to_onnx(path)

    # ------------------------------------------------------------------------------ artifacts
    def _get_state(self):
        arrays = {**self.model_.arrays(), **{f"variant_{k}": v for k, v in self._variants.arrays().items()}}
        meta = {"loss": self.model_.loss, "predictor_type": self.model_.predictor_type,
                "chosen_model": self.chosen_model_, "epochs_run": self.epochs_run_, "metrics": self.metrics_}
        return arrays, meta

    def _set_state(self, arrays, meta):
        self.model_ = LinearModel.from_arrays(arrays, meta["loss"], meta["predictor_type"])
        variants = Variants(*(arrays[f"variant_{k}"] for k in ("learning_rate", "wd", "l1",
                                                               "positive_example_weight_mult")))
        self._set_fitted(variants, meta["chosen_model"], meta["epochs_run"], self.model_.weights.shape[0])


def _balanced_weight(labels: np.ndarray) -> float:
    """negatives / positives in the scaler sample: the positive weight that balances the classes."""
    positives = float(np.sum(labels == 1))
    negatives = float(len(labels) - positives)
    return negatives / positives if positives > 0 and negatives > 0 else 1.0
