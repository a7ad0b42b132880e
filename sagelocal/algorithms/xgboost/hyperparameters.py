"""SageMaker XGBoost's hyperparameters: declarations, aliases, the container's rules, and the one table
from SageMaker names to the xgboost library's parameters.

The SageMaker container (algorithm mode, image 3.0-5) validates every value strictly but *injects no
defaults*: whatever the user leaves out is XGBoost's own default. The table below declares the
documented defaults (so that ``get_params`` and the docs show them) as *documented-default markers*:
values of the declared kind that remember they were not given. Only given values reach XGBoost, so a
default such as ``base_score=0.5`` (which XGBoost 2+ replaces by an intercept estimated from the data)
or ``updater="grow_colmaker,prune"`` (which would force the exact tree method) is never passed by
accident, while an explicit ``base_score=0.5`` is.
"""

from __future__ import annotations

import ast
import json
import logging
from typing import Any

from ...base.hyperparameters import REQUIRED, Hyperparameter, HyperparameterTable

logger = logging.getLogger("sagelocal")

ALGORITHM = "xgboost"

#: The 33 metric names the container accepts in ``eval_metric`` (and as tuning objectives), with goals.
METRIC_GOALS: dict[str, str] = {
    **dict.fromkeys(("accuracy", "auc", "aucpr", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "map",
                     "ndcg", "precision", "r2", "recall", "precision_macro", "precision_micro", "recall_macro",
                     "recall_micro"), "Maximize"),
    # interval-regression-accuracy is listed under Minimize by the container although higher is better
    **dict.fromkeys(("aft-nloglik", "cox-nloglik", "error", "gamma-deviance", "gamma-nloglik",
                     "interval-regression-accuracy", "logloss", "mae", "mape", "merror", "mlogloss", "mphe",
                     "mse", "poisson-nloglik", "rmse", "rmsle", "tweedie-nloglik"), "Minimize"),
}
#: Metric names that take a parameter as ``name@t`` (a threshold or a cut-off), t a number.
PARAMETRISED_METRICS = ("error", "ndcg", "map")
OBJECTIVES = ("aft_loss_distribution", "binary:logistic", "binary:logitraw", "binary:hinge", "count:poisson",
              "multi:softmax", "multi:softprob", "rank:pairwise", "rank:ndcg", "rank:map", "reg:linear",
              "reg:squarederror", "reg:logistic", "reg:gamma", "reg:pseudohubererror", "reg:squaredlogerror",
              "reg:absoluteerror", "reg:tweedie", "survival:aft", "survival:cox")
UPDATERS = ("grow_colmaker", "distcol", "grow_histmaker", "grow_skmaker", "sync", "refresh", "prune", "shotgun",
            "coord_descent")
_TREE_PLUGINS = ("grow_colmaker", "distcol", "grow_histmaker", "grow_local_histmaker", "grow_skmaker", "sync",
                 "refresh", "prune", "grow_quantile_histmaker")
_TREE_BUILDERS = ("grow_colmaker", "distcol", "grow_histmaker", "grow_local_histmaker", "grow_quantile_histmaker")
_LINEAR_UPDATERS = ("shotgun", "coord_descent")
_UPDATE_PLUGINS = ("refresh", "prune")
_INT31 = 2**31


# ------------------------------------------------------------------------- documented-default markers
class _DocumentedFloat(float):
    """A documented default that the user did not give (XGBoost's own default applies)."""

    __slots__ = ()


class _DocumentedInt(int):
    """A documented default that the user did not give (XGBoost's own default applies)."""

    __slots__ = ()


class _DocumentedStr(str):
    """A documented default that the user did not give (XGBoost's own default applies)."""

    __slots__ = ()


_MARKERS = {float: _DocumentedFloat, int: _DocumentedInt, str: _DocumentedStr}


def documented(value):
    """``value`` marked as a documented default (``None`` stays ``None``)."""
    return None if value is None else _MARKERS[type(value)](value)


def is_given(value) -> bool:
    """Whether ``value`` was set by the user (not ``None`` and not a documented-default marker)."""
    return value is not None and not isinstance(value, (_DocumentedFloat, _DocumentedInt, _DocumentedStr))


# ----------------------------------------------------------------------- kinds the container parses
# How the container reads a string (sagemaker_algorithm_toolkit's hyperparameter_validation.py, over the
# raw hyperparameters.json values): IntegerHyperparameter is int(value), so "1.0" and "1e3" are refused and
# surrounding whitespace is accepted; ContinuousHyperparameter is float(value); a CategoricalHyperparameter
# value must be one of the choices exactly (no whitespace, no case folding, no JSON quotes: '"gbtree"' is
# refused); a CommaSeparatedListHyperparameter is value.split(",") with each token checked exactly
# ("rmse, mae" holds the token " mae", refused). Integers and numbers follow sagelocal's base rule, which is
# the same; the classes below keep choices and tokens exact.
def metric_name_ok(token: str) -> bool:
    """Whether ``token`` is an eval_metric the container accepts: one of the 33 names, or error@t,
    ndcg@t, map@t with a number t (``float(t)``; the container strips around ``t``, and so does XGBoost).

    The container also strips around the name of ``name@t``, but XGBoost then fails on the unknown metric
    ``" error"``: sagelocal refuses such a token here.
    """
    if token in METRIC_GOALS:
        return True
    name, at, threshold = token.partition("@")
    if not at or name not in PARAMETRISED_METRICS:
        return False
    try:
        float(threshold)
    except ValueError:
        return False
    return True


# The container's formats that no kind covers, declared with the base's hooks (no private subclasses).
def _comma_tokens(value: Any) -> str:
    """A comma-separated token list kept as given (a list of strings is joined)."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        value = ",".join(value)
    if not isinstance(value, str):
        raise TypeError
    return value


def _tokens_valid(valid) -> Any:
    return lambda text: all(token and valid(token) for token in text.split(","))


def _tuple_literal(text: str) -> list:
    """``monotone_constraints``: the container evaluates the string with Python's ``eval``; sagelocal reads
    it with ``ast.literal_eval``, which accepts the same literals and runs no code."""
    value = ast.literal_eval(text)
    if not isinstance(value, (tuple, list)):
        raise ValueError
    return list(value)


def _groups(value: Any) -> list:
    """``interaction_constraints``: lists of integer feature indices."""
    if not isinstance(value, (list, tuple)) or not all(isinstance(group, (list, tuple)) for group in value):
        raise TypeError
    groups = [list(group) for group in value]
    if any(isinstance(v, bool) or not isinstance(v, int) for group in groups for v in group):
        raise TypeError
    return groups


_COMMA_LIST = dict(reader=str, convert=_comma_tokens)


# ------------------------------------------------------------------------------------ declarations
def _hp(name, kind, default=None, *, range=None, closed=(True, True), tune=None, **kwargs) -> Hyperparameter:
    if kind == "categorical":
        kwargs.setdefault("exact", True)  # the container compares choices exactly
    if default is not None and default is not REQUIRED:
        default = documented(default)
    if tune is not None:
        kwargs.update(tunable=True, tuning_range=tune, tuning_scale="Linear")
    return Hyperparameter(name, kind, default, range=range, closed=closed, **kwargs)


def _multiclass(values) -> bool:
    return values.get("objective") in ("multi:softmax", "multi:softprob")


_BOOL_CHOICES = ("true", "false")
_UNIT_OPEN_LOW = dict(range=(0, 1), closed=(False, True))

HYPERPARAMETERS = HyperparameterTable(ALGORITHM, [
    _hp("num_class", "int", range=(2, None), doc="Number of classes (multi:softmax, multi:softprob).",
        required_when=("objective is multi:softmax or multi:softprob", _multiclass)),
    _hp("num_round", "int", REQUIRED, range=(1, None), tune=(1, 4000), doc="Boosting rounds."),
    _hp("alpha", "float", 0.0, range=(0, None), tune=(0, 1000), aliases=("reg_alpha",),
        doc="L1 penalty on leaf weights."),
    _hp("base_score", "float", 0.5, range=(0, None), doc="Initial prediction (XGBoost estimates it when unset)."),
    _hp("booster", "categorical", "gbtree", choices=("gbtree", "gblinear", "dart"), doc="Booster kind."),
    _hp("colsample_bylevel", "float", 1.0, **_UNIT_OPEN_LOW, tune=(0.1, 1), doc="Column sample per level."),
    _hp("colsample_bynode", "float", 1.0, **_UNIT_OPEN_LOW, tune=(0.1, 1), doc="Column sample per node."),
    _hp("colsample_bytree", "float", 1.0, **_UNIT_OPEN_LOW, tune=(0.5, 1), doc="Column sample per tree."),
    _hp("csv_weights", "int", 0, range=(0, 1), doc="1: CSV column 2 holds instance weights."),
    _hp("deterministic_histogram", "categorical", "true", choices=_BOOL_CHOICES,
        doc="GPU histograms built deterministically (ignored by XGBoost 2+)."),
    _hp("early_stopping_rounds", "int", range=(1, None), doc="Rounds without improvement before stopping."),
    _hp("eta", "float", 0.3, range=(0, 1), tune=(0.1, 0.5), aliases=("learning_rate",), doc="Learning rate."),
    _hp("eval_metric", "string", **_COMMA_LIST, choices=tuple(METRIC_GOALS), check=_tokens_valid(metric_name_ok),
        describe="a comma-separated list of " + ", ".join(repr(c) for c in METRIC_GOALS)
                 + " (or 'error@t', 'ndcg@t', 'map@t' with a number t)",
        doc="Comma-separated validation metrics; the last one drives early stopping."),
    _hp("gamma", "float", 0.0, range=(0, None), tune=(0, 5), aliases=("min_split_loss",),
        doc="Minimum loss reduction to split."),
    _hp("grow_policy", "categorical", "depthwise", choices=("depthwise", "lossguide"), doc="Node growth order."),
    _hp("interaction_constraints", "json", reader=ast.literal_eval, convert=_groups,  # the container's parser
        check=lambda groups: bool(groups) and all(v >= 1 for group in groups for v in group),
        describe="a list of lists of feature indices >= 1, such as '[[1,2],[3,4,5]]'",
        doc="Groups of features allowed to interact."),
    _hp("lambda", "float", 1.0, range=(0, None), tune=(0, 1000), aliases=("reg_lambda",),
        doc="L2 penalty on leaf weights."),
    _hp("lambda_bias", "float", 0.0, range=(0, 1), doc="L2 on the gblinear bias (ignored by XGBoost 2+)."),
    _hp("max_bin", "int", 256, range=(0, None), doc="Histogram bins."),
    _hp("max_delta_step", "float", 0.0, range=(0, None), tune=(0, 10), doc="Cap on leaf-weight updates."),
    _hp("max_depth", "int", 6, range=(0, None), tune=(0, 10), doc="Maximum tree depth (0: unlimited)."),
    _hp("max_leaves", "int", 0, range=(0, None), doc="Maximum leaves (lossguide)."),
    _hp("min_child_weight", "float", 1.0, range=(0, None), tune=(0, 120), doc="Minimum hessian in a child."),
    _hp("monotone_constraints", "int_list", reader=_tuple_literal, choices=(-1, 0, 1),
        describe="a tuple of -1, 0 and 1 such as '(0,1,-1)' (one constraint needs a trailing comma: '(1,)')",
        doc="Per-feature monotonicity, e.g. '(0,1,-1)'."),
    _hp("normalize_type", "categorical", "tree", choices=("tree", "forest"), doc="DART normalisation."),
    _hp("nthread", "int", range=(1, None), doc="Training threads (default: all)."),
    _hp("objective", "categorical", "reg:squarederror", choices=OBJECTIVES, doc="Learning task."),
    _hp("one_drop", "int", 0, range=(0, 1), doc="DART: always drop a tree."),
    _hp("process_type", "categorical", "default", choices=("default", "update"), doc="Boosting process."),
    _hp("rate_drop", "float", 0.0, range=(0, 1), doc="DART dropout rate."),
    _hp("refresh_leaf", "int", 1, range=(0, 1), doc="Refresh updater: also update leaf values."),
    _hp("sample_type", "categorical", "uniform", choices=("uniform", "weighted"), doc="DART sampler."),
    _hp("scale_pos_weight", "float", 1.0, range=(0, None), closed=(False, True), doc="Positive-class weight."),
    _hp("seed", "int", 0, range=(-_INT31, _INT31 - 1), closed=(False, False), doc="Random seed."),
    _hp("single_precision_histogram", "categorical", "false", choices=_BOOL_CHOICES,
        doc="Documented, but rejected by the 3.0-5 container."),
    _hp("sketch_eps", "float", 0.03, range=(0, 1), closed=(False, False),
        doc="Approx sketch accuracy (ignored by XGBoost 2+)."),
    _hp("skip_drop", "float", 0.0, range=(0, 1), doc="DART: probability of skipping dropout."),
    _hp("subsample", "float", 1.0, **_UNIT_OPEN_LOW, tune=(0.5, 1), doc="Row sample per tree."),
    _hp("tree_method", "categorical", "auto", auto=True, choices=("auto", "exact", "approx", "hist", "gpu_hist"),
        doc="Tree construction algorithm."),
    _hp("tweedie_variance_power", "float", 1.5, range=(1, 2), closed=(False, False), doc="Tweedie power."),
    _hp("updater", "string", "grow_colmaker,prune", **_COMMA_LIST, choices=UPDATERS,
        check=_tokens_valid(UPDATERS.__contains__),
        describe="a comma-separated list of " + ", ".join(repr(c) for c in UPDATERS),
        doc="Comma-separated updater plugins."),
    _hp("verbosity", "int", 1, range=(0, 3), doc="XGBoost's log level."),
    _hp("dsplit", "categorical", choices=("row", "col"), doc="Legacy data split (ignored by XGBoost 2+)."),
    _hp("predictor", "categorical", auto=True, choices=("auto", "cpu_predictor", "gpu_predictor"),
        doc="Legacy predictor (ignored by XGBoost 2+)."),
    _hp("num_parallel_tree", "int", range=(1, None), doc="Trees per round (boosted random forest)."),
    _hp("aft_loss_distribution", "categorical", choices=("normal", "logistic", "extreme"),
        doc="survival:aft error distribution."),
    _hp("aft_loss_distribution_scale", "float", range=(0, None), doc="survival:aft distribution scale."),
    _hp("sampling_method", "categorical", choices=("uniform", "gradient_based"), doc="Row sampling method."),
    _hp("prob_buffer_row", "int", range=(1, None), closed=(False, True), doc="Legacy (ignored by XGBoost 2+)."),
    _hp("save_model_on_termination", "categorical", "false", choices=_BOOL_CHOICES,
        doc="true: a stopped job still leaves the model trained so far."),
    _hp("use_dask_gpu_training", "categorical", "false", choices=_BOOL_CHOICES,
        doc="Dask multi-GPU training (one host: plain training)."),
    _hp("_kfold", "int", range=(2, None), doc="Hidden: k-fold cross-validation over train + validation."),
    _hp("_num_cv_round", "int", 1, range=(1, None), doc="Hidden: repetitions of the k-fold procedure."),
    _hp("_tuning_objective_metric", "categorical", choices=tuple(f"validation:{m}" for m in METRIC_GOALS),
        doc="Set by automatic model tuning: added to eval_metric, drives early stopping."),
])


# ------------------------------------------------------------------------------ the container's rules
def check_rules(values: dict[str, Any]) -> list[tuple[str, str]]:
    """The container's dependency rules on parsed values (markers and None mean "not given")."""
    given = {name: value for name, value in values.items() if is_given(value)}
    problems: list[tuple[str, str]] = []
    if "single_precision_histogram" in given:
        problems.append(("single_precision_histogram", "Extraneous hyperparameter found: single_precision_histogram "
                         "(documented, but the SageMaker XGBoost 3.0-5 container rejects it)"))
    # The container reads the objective only when given and crashes on eval_metric without one; sagelocal
    # uses XGBoost's default objective then, as a user would expect.
    objective = given.get("objective", "reg:squarederror")
    metrics = given.get("eval_metric", "").split(",") if "eval_metric" in given else []
    if "auc" in metrics and not objective.startswith(("binary:", "rank:")):
        problems.append(("eval_metric", "Metric 'auc' can only be applied for classification and ranking "
                                        f"problems (binary:* or rank:* objectives); objective is '{objective}'"))
    if "aft-nloglik" in metrics and objective != "survival:aft":
        problems.append(("eval_metric", "Metric 'aft-nloglik' can only be applied for 'survival:aft' objective; "
                                        f"objective is '{objective}'"))
    tree_method = given.get("tree_method")
    if "monotone_constraints" in given and tree_method not in ("exact", "hist"):
        problems.append(("monotone_constraints", "monotone_constraints can be used only when the tree_method "
                                                 f"parameter is set to either 'exact' or 'hist'; got {tree_method!r}"))
    if "interaction_constraints" in given and tree_method not in ("exact", "hist", "approx"):
        problems.append(("interaction_constraints", "interaction_constraints can be used only when the tree_method "
                         f"parameter is set to either 'exact', 'hist' or 'approx'; got {tree_method!r}"))
    if "updater" in given:
        problems += _updater_problems(given["updater"].split(","), given)
    if given.get("use_dask_gpu_training") == "true" and tree_method not in ("gpu_hist", "hist"):
        problems.append(("use_dask_gpu_training", "Dask GPU training needs tree_method 'gpu_hist' or 'hist'; "
                                                  f"got {tree_method!r}"))
    return [(name, f"hyperparameter '{name}': {message}") for name, message in problems]


def _updater_problems(plugins: list[str], given: dict[str, Any]) -> list[tuple[str, str]]:
    if given.get("booster") == "gblinear":
        if not (len(plugins) == 1 and plugins[0] in _LINEAR_UPDATERS):
            return [("updater", "Linear updater should be one of these options: 'shotgun', 'coord_descent'; "
                                f"got {','.join(plugins)!r}")]
        return []
    if given.get("process_type") == "update":
        if not all(p in _UPDATE_PLUGINS for p in plugins):
            return [("updater", "process_type 'update' can only be used with updater 'refresh' and 'prune'; "
                                f"got {','.join(plugins)!r}")]
        return []
    if not all(p in _TREE_PLUGINS for p in plugins):
        return [("updater", "Tree updater should be selected from these options: " + ", ".join(
            repr(p) for p in _TREE_PLUGINS) + f"; got {','.join(plugins)!r}")]
    if sum(p in _TREE_BUILDERS for p in plugins) > 1:
        return [("updater", "Only one tree grow plugin can be selected: one of " + ", ".join(
            repr(p) for p in _TREE_BUILDERS) + f"; got {','.join(plugins)!r}")]
    return []


# -------------------------------------------------------------------- SageMaker -> the xgboost library
#: Every SageMaker name -> the xgboost library's parameter, or None when it does not go to XGBoost:
#: consumed by the container (num_round, csv_weights, ...) or removed from XGBoost 2+ (passing those only
#: prints "Parameters ... are not used"). eval_metric is split by sagelocal.algorithms.xgboost.metrics.
LIBRARY_NAMES: dict[str, str | None] = {
    **{hp.name: hp.name for hp in HYPERPARAMETERS},
    **dict.fromkeys(("num_round", "csv_weights", "early_stopping_rounds", "eval_metric", "save_model_on_termination",
                     "use_dask_gpu_training", "_kfold", "_num_cv_round", "_tuning_objective_metric",
                     "single_precision_histogram"), None),
    # removed upstream (XGBoost 2.0 dropped them; 3.x warns that they are unused)
    **dict.fromkeys(("deterministic_histogram", "lambda_bias", "sketch_eps", "predictor", "dsplit",
                     "prob_buffer_row"), None),
}


def library_params(hp: dict[str, Any], *, random_state: int = 0, cuda: bool = False) -> dict[str, Any]:
    """The ``params`` of ``xgboost.train`` for resolved hyperparameters (``None`` = not given).

    ``random_state`` (sagelocal's option) seeds XGBoost when ``seed`` is not given; its default 0 is
    XGBoost's own default seed. ``cuda`` says whether this xgboost build can train on a GPU.
    """
    params: dict[str, Any] = {}
    for name, value in hp.items():
        target = LIBRARY_NAMES.get(name)
        if target is None or not is_given(value):
            continue
        if name == "monotone_constraints":
            value = "(" + ",".join(str(int(v)) for v in value) + ")"
        elif name == "interaction_constraints":
            value = json.dumps(value)
        elif name == "tree_method" and value == "gpu_hist":  # XGBoost 2+ spells it tree_method=hist, device=cuda
            value = "hist"
            if cuda:
                params["device"] = "cuda"
            else:
                logger.warning("tree_method=gpu_hist: this xgboost build has no CUDA support; training on the CPU "
                               "with tree_method=hist")
        params[target] = value
    if "seed" not in params and random_state:
        params["seed"] = int(random_state)
    return params


def eval_metric_list(hp: dict[str, Any]) -> list[str]:
    """The user's ``eval_metric`` as a list, in the order given (empty when not given)."""
    value = hp.get("eval_metric")
    return [m for m in value.split(",") if m] if is_given(value) else []
