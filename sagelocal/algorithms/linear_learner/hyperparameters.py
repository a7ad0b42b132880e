"""Linear Learner's 44 hyperparameters, declared once as data, and their cross-parameter rules.

Ranges follow the documentation where it and the SDK validator disagree on an open or closed bound,
except where the SDK's bound is the one that keeps the value meaningful (``beta_1``, ``beta_2``,
``momentum`` in [0, 1); ``lr_scheduler_factor``, ``quantile``, ``target_*`` in (0, 1)).
"""

from __future__ import annotations

from typing import Any

from ...base.hyperparameters import REQUIRED, Hyperparameter, HyperparameterTable

PREDICTOR_TYPES = ("binary_classifier", "multiclass_classifier", "regressor")
REGRESSION_LOSSES = ("squared_loss", "absolute_loss", "eps_insensitive_squared_loss",
                     "eps_insensitive_absolute_loss", "quantile_loss", "huber_loss")
LOSSES_BY_TYPE = {
    "binary_classifier": ("logistic", "hinge_loss"),
    "multiclass_classifier": ("softmax_loss",),
    "regressor": REGRESSION_LOSSES,
}
DOC_CRITERIA = ("accuracy", "f_beta", "precision_at_target_recall", "recall_at_target_precision",
                "loss_function")
#: Selection criteria the SDK v2 validator accepts besides the documented ones.
SDK_EXTRA_CRITERIA = ("f1", "cross_entropy_loss")


def _positive(name, default, auto=False, doc="", **kw):
    return Hyperparameter(name, "float", default, range=(0, None), closed=(False, True), auto=auto, doc=doc, **kw)


def _non_negative(name, default, auto=False, doc="", **kw):
    return Hyperparameter(name, "float", default, range=(0, None), auto=auto, doc=doc, **kw)


def _open_unit(name, default, auto=False, doc=""):
    return Hyperparameter(name, "float", default, range=(0, 1), closed=(False, False), auto=auto, doc=doc)


def _half_open_unit(name, doc):
    return Hyperparameter(name, "float", "auto", range=(0, 1), closed=(True, False), auto=True, doc=doc)


def _flag(name, default, doc, auto=True):
    return Hyperparameter(name, "bool", default, auto=auto, doc=doc)


HYPERPARAMETERS = HyperparameterTable("linear-learner", [
    # The Developer Guide: required for multiclass_classifier, "otherwise, the algorithm ignores it" (the
    # SDK's own tests send num_classes="1" with binary_classifier). Any integer is accepted then; the range
    # applies when predictor_type is multiclass_classifier or not given.
    Hyperparameter("num_classes", "int", None, range=(3, 1_000_000),
                   required_when=("predictor_type is multiclass_classifier",
                                  lambda v: v.get("predictor_type") == "multiclass_classifier"),
                   used_when=("predictor_type is multiclass_classifier",
                              lambda v: v.get("predictor_type") in (None, "multiclass_classifier")),
                   doc="Number of classes (multiclass only, ignored otherwise); labels are 0..num_classes-1."),
    Hyperparameter("predictor_type", "categorical", REQUIRED, choices=PREDICTOR_TYPES,
                   doc="binary_classifier, multiclass_classifier or regressor."),
    Hyperparameter("accuracy_top_k", "int", 3, range=(1, None), doc="k of the multiclass top-k accuracy metric."),
    _flag("balance_multiclass_weights", False, "Multiclass: every class weighs the same in the loss.",
          auto=False),
    _half_open_unit("beta_1", "Adam's first-moment decay; auto is 0.9."),
    _half_open_unit("beta_2", "Adam's second-moment decay; auto is 0.999."),
    _positive("bias_lr_mult", "auto", auto=True, doc="Bias learning rate = learning_rate * bias_lr_mult."),
    _non_negative("bias_wd_mult", "auto", auto=True, doc="Bias L2 = wd * bias_wd_mult; auto is 0 (no bias decay)."),
    Hyperparameter("binary_classifier_model_selection_criteria", "categorical", "accuracy", choices=DOC_CRITERIA,
                   check=(*DOC_CRITERIA, *SDK_EXTRA_CRITERIA).__contains__,  # exact, like any choice
                   describe="one of " + ", ".join(repr(c) for c in DOC_CRITERIA)
                            + " (the SDK also sends " + ", ".join(repr(c) for c in SDK_EXTRA_CRITERIA) + ")",
                   doc="How the best variant and its threshold are chosen (binary only)."),
    Hyperparameter("early_stopping_patience", "int", 3, range=(1, None),
                   doc="Epochs without improvement before a variant stops."),
    _positive("early_stopping_tolerance", 0.001,
              doc="Relative improvement below which an epoch counts as no improvement."),
    Hyperparameter("epochs", "int", 15, range=(1, None), doc="Maximum passes over the training data."),
    _positive("f_beta", 1.0, doc="Beta of the F-beta metrics and of the f_beta criterion."),
    Hyperparameter("feature_dim", "int", "auto", range=(1, None), auto=True,
                   doc="Number of features; auto takes it from the data."),
    _positive("huber_delta", 1.0, doc="Huber loss: squared below delta, absolute above."),
    Hyperparameter("init_bias", "float", 0, doc="Initial bias."),
    Hyperparameter("init_method", "categorical", "uniform", choices=("uniform", "normal"),
                   doc="Initial weight distribution."),
    _positive("init_scale", 0.07, doc="Half-width of the uniform initial weights."),
    _positive("init_sigma", 0.01, doc="Standard deviation of the normal initial weights."),
    _non_negative("l1", "auto", auto=True, tunable=True, tuning_range=(1e-7, 1),
                  doc="L1 penalty; auto lets the variants explore values around 0."),
    _positive("learning_rate", "auto", auto=True, tunable=True, tuning_range=(1e-5, 1),
              doc="Step size; auto depends on the optimizer."),
    Hyperparameter("loss", "categorical", "auto", choices=("auto", "logistic", *REGRESSION_LOSSES, "hinge_loss",
                                                           "softmax_loss"),
                   doc="Loss function; auto: logistic, softmax_loss or squared_loss by predictor_type."),
    _positive("loss_insensitivity", 0.01, doc="Epsilon of the eps_insensitive losses."),
    _open_unit("lr_scheduler_factor", "auto", auto=True, doc="Learning-rate decay factor per step."),
    _positive("lr_scheduler_minimum_lr", "auto", auto=True, doc="Floor of the scheduled learning rate."),
    Hyperparameter("lr_scheduler_step", "int", "auto", range=(1, None), auto=True,
                   doc="Updates between learning-rate decays; auto decays once per epoch."),
    _positive("margin", 1.0, doc="Margin of hinge_loss."),
    Hyperparameter("mini_batch_size", "int", 1000, range=(1, None), tunable=True, tuning_range=(100, 5000),
                   doc="Rows per mini-batch."),
    _half_open_unit("momentum", "Momentum of the sgd optimizer; auto is 0.9."),
    _flag("normalize_data", True, "Standardize features from a sample of num_point_for_scaler rows."),
    _flag("normalize_label", "auto", "Standardize the label; auto: regressor only."),
    Hyperparameter("num_calibration_samples", "int", "auto", range=(1, None), auto=True,
                   doc="Validation rows used to calibrate the threshold and choose the variant."),
    Hyperparameter("num_models", "int", "auto", range=(1, None), auto=True,
                   doc="Variants trained together; auto is 32."),
    Hyperparameter("num_point_for_scaler", "int", 10000, range=(1, None),
                   doc="Rows sampled for normalization statistics."),
    Hyperparameter("optimizer", "categorical", "auto", choices=("auto", "sgd", "adam", "rmsprop"),
                   doc="auto means adam."),
    Hyperparameter("positive_example_weight_mult", "float", 1.0, range=(0, None), closed=(False, True),
                   also=("balanced",), auto=True, tunable=True, tuning_range=(1e-5, 1e5),
                   doc="Weight of positive examples; 'balanced' or 'auto' choose it from the data."),
    _open_unit("quantile", 0.5, doc="Quantile of quantile_loss."),
    _open_unit("target_precision", 0.8, doc="Precision held while recall is maximised."),
    _open_unit("target_recall", 0.8, doc="Recall held while precision is maximised."),
    _flag("unbias_data", "auto", "Centre features; auto: when use_bias."),
    _flag("unbias_label", "auto", "Centre the label (regressor); auto: when use_bias."),
    Hyperparameter("use_bias", "bool", True, tunable=True, tuning_range=(True, False), doc="Learn an intercept."),
    _flag("use_lr_scheduler", True, "Step-decay the learning rate.", auto=False),
    _non_negative("wd", "auto", auto=True, tunable=True, tuning_range=(1e-7, 1),
                  doc="L2 penalty; auto lets the variants explore values around 0."),
])


def check_hyperparameters(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Cross-parameter problems: the loss must suit the predictor type."""
    problems = []
    kind, loss = values["predictor_type"], values["loss"]
    if kind is not None and loss != "auto" and loss not in LOSSES_BY_TYPE[kind]:
        problems.append(("loss", f"hyperparameter 'loss' must be one of 'auto', "
                                 f"{', '.join(repr(x) for x in LOSSES_BY_TYPE[kind])} when predictor_type is "
                                 f"'{kind}'; got '{loss}'"))
    return problems


__all__ = ["HYPERPARAMETERS", "LOSSES_BY_TYPE", "PREDICTOR_TYPES", "check_hyperparameters"]
