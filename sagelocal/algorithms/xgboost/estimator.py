"""XGBoost: SageMaker's XGBoost in algorithm mode (``xgboost`` image, container 3.0-5).

SageMaker's XGBoost is the open xgboost library behind a container; sagelocal keeps the container's
parts (hyperparameter validation, the four training content types, its metrics and early-stopping
rules, checkpoints, the hidden k-fold mode, its serving formats) and calls the same library with
the same parameters, so a model trained here predicts what ``xgboost.train`` predicts on the same
data. Models are stored in XGBoost's own format, and models SageMaker trained (``xgboost-model`` in a
``model.tar.gz``) load with :func:`sagelocal.load`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from ...base.artifacts import load_estimator
from ...base.errors import ArtifactError, DataFormatError
from ...base.estimator import Estimator
from ...base.registry import register
from ...io import content_types as ct
from .artifacts import (
    booster_from_bytes,
    folder_model_files,
    holds_sagelocal_model,
    is_pickled,
    native_files,
    read_model_files,
    sorted_model_names,
    write_sagemaker_model,
)
from .data import Rows, read_rows, xgboost_module
from .hyperparameters import HYPERPARAMETERS, OBJECTIVES, check_rules, is_given, library_params
from .metrics import METRICS, MetricPlan, metric_definitions
from .serving import (
    INFERENCE_ENSEMBLE,
    INFERENCE_OUTPUT,
    REQUEST_CODECS,
    RESPONSE_CODECS,
    ensemble_enabled,
    inference_output_keys,
    selected_records,
    standard_records,
)

logger = logging.getLogger("sagelocal")

#: Objectives whose ensembles vote (their predictions are labels) instead of averaging.
VOTING_OBJECTIVES = ("multi:softmax", "binary:hinge")


@register
class XGBoost(Estimator):
    """SageMaker's XGBoost algorithm (gradient-boosted trees) with the container's behaviour.

    Hyperparameters take SageMaker's names (aliases learning_rate, min_split_loss, reg_lambda and
    reg_alpha too). Values left out are XGBoost's own defaults: the documented defaults that
    ``get_params`` shows are never passed to the library unless given. ``_kfold`` and
    ``_num_cv_round`` are the container's hidden k-fold mode (one model per fold, out-of-fold
    predictions).

    Attributes
    ----------
    boosters_ : list of xgboost.Booster
        One booster, or one per fold in k-fold mode (an ensemble at inference).
    objective_ : str
    num_class_ : int or None
    out_of_fold_ : ndarray or None
        k-fold mode: ``label, mean probability, voted label`` (classification) or ``label, mean
        prediction`` per training row; also written to ``predictions.csv`` in the output data folder.
    metrics_ : dict
        The last ``validation:*`` values (the cross-validated means in k-fold mode).
    """

    algorithm = "xgboost"
    sdk_class = "estimator.Estimator"  # algorithm mode has no SDK class: sagemaker.estimator.Estimator
    hyperparameters = HYPERPARAMETERS
    channels = {"train": True, "validation": False}
    training_content_types = (ct.LIBSVM, ct.CSV, ct.PARQUET, ct.RECORDIO_PROTOBUF)
    metrics = METRICS
    response_key = "predictions"
    request_content_types = (ct.CSV, ct.LIBSVM, ct.RECORDIO_PROTOBUF)
    response_content_types = (ct.CSV, ct.JSON, ct.JSONLINES, ct.RECORDIO_PROTOBUF)
    default_accept = ct.CSV
    default_content_type = ct.LIBSVM
    request_codecs = REQUEST_CODECS
    response_codecs = RESPONSE_CODECS
    #: Read once when a server or batch transform loads the model (:meth:`configure_serving`).
    serving_variables = (INFERENCE_OUTPUT, INFERENCE_ENSEMBLE)

    # ---------------------------------------------------------------------------- hyperparameters
    @classmethod
    def _get_param_names(cls) -> list[str]:
        # scikit-learn reads parameter names from the __init__ signature, which cannot hold `lambda`
        return sorted([*cls.hyperparameters.names, *cls.option_defaults()])

    @classmethod
    def metric_definitions(cls) -> list[dict[str, str]]:
        """The container's metric regexes over its round lines (``#011validation-<name>:<value>``)."""
        return metric_definitions()

    def to_sagemaker(self) -> dict[str, str]:
        """The ``hyperparameters.json`` strings of the values set (documented defaults are left out)."""
        given = {name: value for name, value in self._hyperparameter_values().items() if is_given(value)}
        parsed = self.hyperparameters.parse(given)
        return self.hyperparameters.to_sagemaker({name: parsed[name] for name in given})

    @classmethod
    def _check_hyperparameters(cls, values: dict[str, Any]) -> list[tuple[str, str]]:
        return check_rules(values)

    def _resolve_hyperparameters(self, train) -> dict[str, Any]:
        """The given values, validated as the container does; ``None`` for the ones left to XGBoost."""
        given = {name: value for name, value in self._hyperparameter_values().items() if is_given(value)}
        parsed = self.hyperparameters.parse(given, require=True, check=self._check_hyperparameters)
        return {name: (parsed[name] if name in given else None) for name in self.hyperparameters.names}

    # ----------------------------------------------------------------------------------------- fit
    def _fit(self, train, validation, test, hp: dict[str, Any]) -> None:
        xgb = xgboost_module()
        from . import trainer

        csv_weights = hp["csv_weights"] or 0
        rows = read_rows(train, csv_weights=csv_weights, name="train")
        held = None if validation is None else read_rows(validation, csv_weights=csv_weights, name="validation")
        params = library_params(hp, random_state=self._options["random_state"], cuda=_has_cuda(xgb))
        objective = params.get("objective", "reg:squarederror")
        plan = MetricPlan(hp, objective)
        if plan.native:
            params["eval_metric"] = plan.native
        if hp["use_dask_gpu_training"] == "true":
            logger.info("use_dask_gpu_training=true: one host, so sagelocal trains without Dask")
        job = trainer.Job(params, hp["num_round"], plan, hp["early_stopping_rounds"], self.runtime.checkpoint_dir,
                           hp["save_model_on_termination"] == "true")
        self.out_of_fold_ = None
        if hp["_kfold"] is not None:
            boosters, metrics = self._fit_kfold(job, rows, held, hp, objective)
        else:
            nthread, aft = params.get("nthread"), objective == "survival:aft"
            booster, metrics, _ = trainer.train_one(
                job, rows.dmatrix(nthread, aft=aft), None if held is None else held.dmatrix(nthread, aft=aft))
            boosters = [booster]
        self._reporter.metrics.update(metrics)
        self._set_boosters(boosters, pickled=False)

    def _fit_kfold(self, job, rows, held, hp, objective) -> tuple[list, dict[str, float]]:
        from . import trainer

        everything = rows if held is None else Rows.concat([rows, held])
        classification = hp["num_class"] is not None or objective.startswith("binary:")
        logger.info("Run %d-round of %d-fold cross validation with %d rows", hp["_num_cv_round"] or 1,
                    hp["_kfold"], len(everything))
        result = trainer.train_kfold(job, everything, kfold=hp["_kfold"], repeats=hp["_num_cv_round"] or 1,
                                      classification=classification, objective=objective,
                                      random_state=self._options["random_state"])
        self.out_of_fold_ = result.out_of_fold
        if self.runtime.output_data_dir:
            trainer.OutOfFold.save(result.out_of_fold, self.runtime.output_data_dir)
        return result.boosters, result.metrics

    def _set_boosters(self, boosters: list, *, pickled: bool) -> None:
        self.boosters_ = list(boosters)
        learner = json.loads(self.boosters_[0].save_config())["learner"]
        self.objective_ = learner["objective"]["name"]
        num_class = int(learner["learner_model_param"].get("num_class", "0") or 0)
        self.num_class_ = num_class or None
        self.n_features_ = int(self.boosters_[0].num_features())
        self.pickled_ = pickled
        if not hasattr(self, "out_of_fold_"):
            self.out_of_fold_ = None

    @property
    def booster_(self):
        """The first (usually the only) booster."""
        self._check_fitted()
        return self.boosters_[0]

    # ------------------------------------------------------------------------------------- predict
    def _predict(self, features) -> np.ndarray:
        xgb = xgboost_module()
        matrix = xgb.DMatrix(features, missing=np.nan)
        boosters = self.boosters_ if ensemble_enabled(self.serving_environment) else self.boosters_[:1]
        try:
            predictions = [b.predict(matrix, validate_features=False) for b in boosters]
        except xgb.core.XGBoostError as exc:
            from .trainer import error_summary

            raise DataFormatError(f"xgboost: Unable to evaluate payload provided: {error_summary(exc)}") from None
        if len(predictions) == 1:
            return predictions[0]
        if self.objective_ in VOTING_OBJECTIVES:
            return _vote(np.stack(predictions))
        return np.mean(predictions, axis=0)

    def _records(self, features, inference_output: str | None = None) -> list[dict[str, Any]]:
        """Standard records ``{"score": ...}``, or selectable ones when ``inference_output`` (else the
        served ``SAGEMAKER_INFERENCE_OUTPUT``) names keys such as ``"predicted_label,probabilities"``."""
        predictions = self._predict(features)
        if inference_output is None:
            inference_output = self.serving_environment.get(INFERENCE_OUTPUT)
        keys = inference_output_keys(inference_output)
        if keys is None:
            return standard_records(predictions)
        return selected_records(predictions, keys, self.objective_, self.num_class_)

    def _serving_input(self, request) -> tuple[Any, dict[str, Any]]:
        features = request.features
        if self.pickled_:  # the container checks the width of requests to pickled (pre-1.3) models only
            _check_pickled_width(features.shape[1], self.n_features_, request.media_type)
        return features, {}

    # ----------------------------------------------------------------------------------- artifacts
    def _get_state(self):
        arrays = {} if self.out_of_fold_ is None else {"out_of_fold": self.out_of_fold_}
        return arrays, {"metrics": self.metrics_, "pickled": self.pickled_, "boosters": len(self.boosters_)}

    def _get_native_files(self) -> dict[str, bytes]:
        """The boosters in XGBoost's own format, named as SageMaker names them."""
        return native_files(self.boosters_)

    def _set_native_files(self, files: dict[str, bytes]) -> None:
        self._native_boosters = [booster_from_bytes(files[name], False, name) for name in sorted_model_names(files)]

    def _set_state(self, arrays, meta) -> None:
        boosters = getattr(self, "_native_boosters", None)
        if not boosters:
            raise ArtifactError("xgboost: the artifact holds no XGBoost model file")
        self._set_boosters(boosters, pickled=bool(meta.get("pickled", False)))
        self.out_of_fold_ = arrays.get("out_of_fold")
        del self._native_boosters

    def save_sagemaker(self, path) -> str:
        """Write SageMaker's own layout, deployable to a SageMaker XGBoost endpoint: ``xgboost-model``
        (``xgboost-model-<i>`` for an ensemble) in the folder ``path`` and ``path/model.tar.gz``."""
        self._check_fitted()
        return write_sagemaker_model(self.boosters_, path)

    @classmethod
    def _from_model_files(cls, files: dict[str, bytes], allow_pickle: bool, shown: str) -> XGBoost:
        """A fitted estimator from SageMaker's model files (one booster each; several make an ensemble)."""
        names = sorted_model_names(files)
        boosters = [booster_from_bytes(files[name], allow_pickle, f"{shown}: {name}") for name in names]
        model = cls()
        model._set_boosters(boosters, pickled=any(is_pickled(files[name]) for name in names))
        given = {"num_round": boosters[0].num_boosted_rounds()}
        if model.objective_ in OBJECTIVES:
            given["objective"] = model.objective_
        if model.num_class_:
            given["num_class"] = model.num_class_
        model.set_params(**given)
        model._hp = {name: given.get(name) for name in model.hyperparameters.names}
        model.hyperparameters_ = model._hp
        model.metrics_ = {}
        return model


def load_sagemaker_model(path, *, allow_pickle: bool = False) -> XGBoost:
    """Load a model SageMaker's XGBoost trained: a ``model.tar.gz``, its extracted folder, or one model file.

    Every regular file of the folder is a booster (dotfiles and ``model.tar.gz`` excluded); several
    make an ensemble, as after k-fold training. Returns a fitted :class:`~sagelocal.XGBoost` (a sagelocal
    artifact at ``path`` loads as :func:`sagelocal.load` loads it).
    """
    if holds_sagelocal_model(path):
        return load_estimator(path, allow_pickle=allow_pickle)
    return XGBoost._from_model_files(read_model_files(path), allow_pickle, str(path))


def load_foreign(directory, allow_pickle: bool, shown: str) -> XGBoost:
    """The loader :func:`sagelocal.load` uses for SageMaker XGBoost model folders."""
    return XGBoost._from_model_files(folder_model_files(directory, shown), allow_pickle, shown)


def _vote(stacked: np.ndarray) -> np.ndarray:
    """Majority vote over boosters (rows of ``stacked``); ties go to the smallest label."""
    classes = np.unique(stacked)
    counts = (stacked[None, :, :] == classes[:, None, None]).sum(axis=1)
    return classes[counts.argmax(axis=0)].astype(stacked.dtype)


def _check_pickled_width(width: int, expected: int, media_type: str) -> None:
    kind = {ct.LIBSVM: "libsvm", ct.CSV: "csv"}.get(media_type, "recordio-protobuf")
    if kind == "libsvm" and width > expected + 1:
        raise DataFormatError(f"Feature size of libsvm inference data {width} is larger than feature size of "
                              f"trained model {expected}.")
    if kind != "libsvm" and width not in (expected, expected - 1):
        raise DataFormatError(f"Feature size of {kind} inference data {width} is not consistent with feature "
                              f"size of trained model {expected}.")


def _has_cuda(xgb) -> bool:
    try:
        return bool(xgb.build_info().get("USE_CUDA"))
    except Exception:  # noqa: BLE001 - an old build without build_info: assume CPU only
        return False
