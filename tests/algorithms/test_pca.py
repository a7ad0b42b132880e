"""PCA against scikit-learn and hand computations; SageMaker's hyperparameters and response order."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.linalg import subspace_angles
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA as SklearnPCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sagelocal
from sagelocal import DataFormatError, HyperparameterError
from tests.conftest import low_rank

K = 5


@pytest.fixture(scope="module")
def data():
    return low_rank(n=4000, d=40, noise=0.05)


@pytest.fixture(scope="module")
def reference(data):
    return SklearnPCA(K, svd_solver="full").fit(data)


def largest_angle(ours, theirs):
    return subspace_angles(ours.components_.T.astype(np.float64), theirs.components_.T).max()


@pytest.mark.parametrize("mode, bound", [("regular", 1e-3), ("randomized", 1e-2)])
def test_subspace_and_variances_match_scikit_learn(data, reference, mode, bound):
    est = sagelocal.PCA(num_components=K, algorithm_mode=mode).fit(data)
    assert largest_angle(est, reference) < bound
    np.testing.assert_allclose(est.explained_variance_, reference.explained_variance_, rtol=1e-4)
    np.testing.assert_allclose(est.explained_variance_ratio_, reference.explained_variance_ratio_, rtol=1e-4)
    np.testing.assert_allclose(est.singular_values_, reference.singular_values_, rtol=1e-4)
    np.testing.assert_allclose(est.mean_, reference.mean_, rtol=1e-5, atol=1e-5)
    # same sign convention as scikit-learn, so the projections agree too
    np.testing.assert_allclose(est.transform(data[:50]), reference.transform(data[:50]), atol=2e-3)


def test_sagemaker_single_sketch_is_close_and_power_iteration_sharpens_it(data, reference):
    sketch_only = sagelocal.PCA(num_components=K, algorithm_mode="randomized", power_iterations=0).fit(data)
    refined = sagelocal.PCA(num_components=K, algorithm_mode="randomized").fit(data)
    assert largest_angle(sketch_only, reference) < 0.1
    assert largest_angle(refined, reference) < largest_angle(sketch_only, reference) / 10


@pytest.mark.parametrize("mode", ["regular", "randomized"])
def test_mini_batches_give_the_same_result_as_all_at_once(data, mode):
    whole = sagelocal.PCA(num_components=K, algorithm_mode=mode, mini_batch_size=len(data)).fit(data)
    batched = sagelocal.PCA(num_components=K, algorithm_mode=mode, mini_batch_size=37).fit(data)
    np.testing.assert_allclose(batched.components_, whole.components_, atol=1e-5)
    np.testing.assert_allclose(batched.explained_variance_, whole.explained_variance_, rtol=1e-6)


@pytest.mark.parametrize("mode", ["regular", "randomized"])
def test_sparse_input_matches_dense(data, mode):
    sparse = data.copy()
    sparse[np.abs(sparse) < 1.0] = 0.0
    dense_fit = sagelocal.PCA(num_components=K, algorithm_mode=mode).fit(sparse)
    sparse_fit = sagelocal.PCA(num_components=K, algorithm_mode=mode).fit(sp.csr_matrix(sparse))
    assert largest_angle(sparse_fit, dense_fit) < 1e-4
    np.testing.assert_allclose(sparse_fit.explained_variance_, dense_fit.explained_variance_, rtol=1e-4)
    np.testing.assert_allclose(sparse_fit.predict(sp.csr_matrix(sparse[:20])), dense_fit.predict(sparse[:20]),
                               atol=1e-3)


def test_without_subtract_mean_uses_the_uncentred_second_moment(data):
    est = sagelocal.PCA(num_components=K, subtract_mean=False).fit(data)
    _, s, vt = np.linalg.svd(data.astype(np.float64), full_matrices=False)  # hand computation
    assert subspace_angles(est.components_.T.astype(np.float64), vt[:K].T).max() < 1e-3
    np.testing.assert_allclose(est.singular_values_, s[:K], rtol=1e-4)
    assert not est.mean_.any()
    np.testing.assert_allclose(est.transform(data[:5]), data[:5] @ est.components_.T, rtol=1e-5)


def test_predictions_follow_sagemakers_ascending_order(data, reference):
    est = sagelocal.PCA(num_components=K).fit(data)
    projections = est.predict(data[:10])
    np.testing.assert_array_equal(projections, est.transform(data[:10])[:, ::-1])
    records = est.predict_records(data[:3])
    assert [list(r) for r in records] == [["projection"]] * 3
    assert all(len(r["projection"]) == K for r in records)
    np.testing.assert_allclose(records[0]["projection"], projections[0])
    # the last entry is the most significant component
    full = est.predict(data)
    assert np.argmax(full.var(axis=0)) == K - 1


def test_artifact_holds_sagemakers_mean_v_s(tmp_path, data):
    est = sagelocal.PCA(num_components=K).fit(data)
    est.save(tmp_path)
    with np.load(tmp_path / "model.npz") as arrays:
        assert arrays["mean"].shape == (1, data.shape[1])
        assert arrays["v"].shape == (data.shape[1], K)
        assert np.all(np.diff(arrays["s"]) > 0)  # ascending singular values


def test_data_derived_defaults_follow_the_sdk(data):
    est = sagelocal.PCA(num_components=2).fit(data[:300])
    assert est.hyperparameters_["feature_dim"] == 40
    assert est.hyperparameters_["mini_batch_size"] == 300  # min(500, rows)
    assert sagelocal.PCA(num_components=2).fit(data).hyperparameters_["mini_batch_size"] == 500


def test_invalid_combinations(data):
    with pytest.raises(HyperparameterError, match="'num_components' must be <= feature_dim"):
        sagelocal.PCA(num_components=41).fit(data)
    with pytest.raises(DataFormatError, match="40 features but hyperparameter feature_dim is 30"):
        sagelocal.PCA(num_components=3, feature_dim=30).fit(data)
    est = sagelocal.PCA(num_components=3).fit(data)
    with pytest.raises(DataFormatError, match="trained on 40"):
        est.predict(data[:, :20])


def test_pca_in_a_scikit_learn_pipeline():
    digits = load_digits()
    X, y = digits.data[:1200], digits.target[:1200]
    pipe = make_pipeline(StandardScaler(), sagelocal.PCA(num_components=20), LogisticRegression(max_iter=2000))
    pipe.fit(X, y)
    assert pipe.score(digits.data[1200:], digits.target[1200:]) > 0.85
    reduced = make_pipeline(StandardScaler(), sagelocal.PCA(num_components=20)).fit_transform(X)
    assert reduced.shape == (1200, 20)
