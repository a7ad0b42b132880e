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
