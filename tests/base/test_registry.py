"""The registry: SageMaker image names and SDK class names."""

from __future__ import annotations

import pytest

import sagelocal
from sagelocal import UnknownAlgorithmError
from sagelocal.base.registry import BUILTINS


def _missing_builtins():
    """SageMaker built-ins this version does not implement yet (image name, SDK class)."""
    return [(name, sdk) for name, sdk in BUILTINS.items() if name not in sagelocal.algorithms()]


def test_image_names_and_sdk_aliases():
    assert "pca" in sagelocal.algorithms() and set(sagelocal.algorithms()) <= set(BUILTINS)
    for name in ("pca", "PCA", "Pca"):
        assert type(sagelocal.estimator(name, num_components=2)) is sagelocal.PCA
    assert len(BUILTINS) == 17


def test_not_yet_implemented_and_unknown_names_list_what_exists():
    available = ", ".join(sagelocal.algorithms())
    for name, sdk in _missing_builtins():
        with pytest.raises(UnknownAlgorithmError) as info:
            sagelocal.estimator(name)
        assert f"'{name}' is a SageMaker built-in" in str(info.value) and available in str(info.value)
        if sdk:
            with pytest.raises(UnknownAlgorithmError, match=f"'{sdk}' is a SageMaker built-in"):
                sagelocal.estimator(sdk)
    with pytest.raises(UnknownAlgorithmError, match=f"unknown algorithm 'svm'; available: {available}"):
        sagelocal.estimator("svm")


def test_factory_validates_values_and_passes_options():
    est = sagelocal.estimator("pca", num_components="3", feature_dim="64", mini_batch_size="500",
                              random_state=5)
    assert est.get_params() == sagelocal.PCA(num_components=3, feature_dim=64, mini_batch_size=500,
                                             random_state=5).get_params()
    with pytest.raises(sagelocal.HyperparameterError) as info:
        sagelocal.estimator("pca", num_components="-1", subtract_mean="maybe")
    assert set(info.value.names) == {"num_components", "subtract_mean"}


def test_factory_and_from_sagemaker_run_every_rule_fit_runs():
    cases = [  # (algorithm, strings, the parameter fit would refuse)
        ("linear-learner", {"predictor_type": "multiclass_classifier"}, "num_classes"),
        ("linear-learner", {"predictor_type": "regressor", "loss": "logistic"}, "loss"),
        ("knn", {"k": "3", "predictor_type": "classifier", "dimension_reduction_type": "sign"},
         "dimension_reduction_target"),
        ("knn", {"k": "3", "predictor_type": "classifier", "index_type": "faiss.IVFPQ", "index_metric": "COSINE"},
         "index_metric"),
        ("xgboost", {"num_round": "2", "eval_metric": "auc"}, "eval_metric"),
        ("xgboost", {"num_round": "2", "objective": "multi:softmax"}, "num_class"),
        ("xgboost", {"eval_metric": "rmse"}, "num_round"),  # required and not taken from the data
        ("pca", {"num_components": "3", "random_state": "-1"}, "random_state"),  # options are checked too
    ]
    for name, strings, parameter in cases:
        with pytest.raises(sagelocal.HyperparameterError) as info:
            sagelocal.estimator(name, **strings)
        assert info.value.names == [parameter], (name, strings)
        assert f"'{parameter}'" in str(info.value)
    with pytest.raises(sagelocal.HyperparameterError) as info:
        sagelocal.KNN.from_sagemaker({"k": "3", "predictor_type": "classifier", "sample_size": "10",
                                      "feature_dim": "5"}, random_state=-1)
    assert info.value.names == ["random_state"]


def test_factory_leaves_values_fit_takes_from_the_data_to_fit():
    # feature_dim (and KNN's sample_size, PCA's mini_batch_size) are filled by fit from the data
    import numpy as np

    X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.float32)
    knn = sagelocal.estimator("knn", k="3", predictor_type="classifier", dimension_reduction_type="sign",
                              dimension_reduction_target="4")
    assert knn.feature_dim is None and knn.fit(X, y).hyperparameters_["feature_dim"] == 6
    assert sagelocal.estimator("pca", num_components="8").num_components == 8  # checked against the data at fit
    with pytest.raises(sagelocal.HyperparameterError, match="'num_components'"):
        sagelocal.estimator("pca", num_components="8").fit(X)
    with pytest.raises(sagelocal.HyperparameterError, match="'dimension_reduction_target'"):
        sagelocal.estimator("knn", k="3", predictor_type="classifier", dimension_reduction_type="sign",
                            dimension_reduction_target="6", feature_dim="6")
    sagelocal.estimator("kmeans", k="2")
