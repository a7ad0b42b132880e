"""KNN against scikit-learn, raw faiss and hand computations; SageMaker's index rules and responses."""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pytest
import scipy.linalg
from sklearn.datasets import make_blobs
from sklearn.metrics import accuracy_score, mean_squared_error
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

import sagelocal
from sagelocal import DataFormatError, HyperparameterError, SagelocalError
from sagelocal.algorithms.knn import _walsh_hadamard

faiss = pytest.importorskip("faiss")


@pytest.fixture(autouse=True, scope="module")
def one_faiss_thread():
    """faiss's OpenMP threads spin while waiting, which is very slow on shared, busy cores."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 12)).astype(np.float32)
    y_class = (np.digitize(X[:, 0] + 0.5 * X[:, 1], [-0.7, 0.0, 0.7])).astype(np.float32)  # 4 classes
    y_value = (X[:, 0] * 2 + np.sin(X[:, 2])).astype(np.float32)
    queries = rng.standard_normal((300, 12)).astype(np.float32)
    return X, y_class, y_value, queries


@pytest.mark.parametrize("k", [1, 5, 8])
def test_flat_classifier_predicts_what_scikit_learn_predicts(data, k):
    X, y, _, Q = data
    est = sagelocal.KNN(k=k, predictor_type="classifier").fit(X, y)
    theirs = KNeighborsClassifier(k, algorithm="brute").fit(X, y)
    np.testing.assert_array_equal(est.predict(Q), theirs.predict(Q))
    assert all(isinstance(r["predicted_label"], float) for r in est.predict_records(Q[:3]))


@pytest.mark.parametrize("k", [1, 7])
def test_flat_regressor_predicts_the_neighbour_mean_of_scikit_learn(data, k):
    X, _, y, Q = data
    est = sagelocal.KNN(k=k, predictor_type="regressor").fit(X, y)
    theirs = KNeighborsRegressor(k, algorithm="brute").fit(X, y)
    np.testing.assert_allclose(est.predict(Q), theirs.predict(Q), rtol=1e-5, atol=1e-6)


def test_vote_ties_go_to_the_smallest_label_as_in_scikit_learn():
    X = np.array([[0.0], [1.0], [-1.2], [5.0], [6.0]], dtype=np.float32)
    y = np.array([2.0, 1.0, 7.0, 1.0, 2.0], dtype=np.float32)
    # the 3 neighbours of 0.1 carry labels 2, 1, 7: a three-way tie -> 1
    est = sagelocal.KNN(k=3, predictor_type="classifier").fit(X, y)
    query = np.array([[0.1]], dtype=np.float32)
    assert est.predict(query).tolist() == [1.0]
    assert KNeighborsClassifier(3).fit(X, y).predict(query).tolist() == [1.0]


def recall(found, exact):
    k = exact.shape[1]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(found, exact)]))


@pytest.mark.parametrize("index_type, extra, bound", [
    ("faiss.IVFFlat", {}, 0.95),
    ("faiss.IVFPQ", {}, 0.7),  # auto m = 4 sub-vectors of 4 dimensions
    ("faiss.IVFPQ", {"faiss_index_pq_m": 8}, 0.85),
])
def test_ivf_recall_against_flat(index_type, extra, bound, record_property):
    X, y = make_blobs(3000, n_features=16, centers=30, cluster_std=3.0, random_state=0)
    X, y = X.astype(np.float32), (y % 4).astype(np.float32)
    queries = X[:300] + np.random.default_rng(1).standard_normal((300, 16)).astype(np.float32)
    _, exact = sagelocal.KNN(k=10, predictor_type="classifier").fit(X, y).kneighbors(queries)
    approx = sagelocal.KNN(k=10, predictor_type="classifier", index_type=index_type, **extra).fit(X, y)
    value = recall(approx.kneighbors(queries)[1], exact)
    record_property(f"recall@10 {index_type} {extra}", value)
    print(f"recall@10 of {index_type} {extra} against faiss.Flat: {value:.3f} (bound {bound})")
    assert value >= bound


@pytest.mark.parametrize("target, m, expected", [(None, 4, 12), (None, 5, None), (6, 4, 8), (7, 8, 8)])
def test_pq_m_pads_the_dimension_or_raises_the_target(data, target, m, expected):
    X, y, _, Q = data  # feature_dim 12
    if m not in (1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96):
        with pytest.raises(HyperparameterError, match="faiss_index_pq_m"):
            sagelocal.KNN(k=3, predictor_type="classifier", index_type="faiss.IVFPQ", faiss_index_pq_m=m).fit(X, y)
        return
    reduction = {"dimension_reduction_type": "sign", "dimension_reduction_target": target} if target else {}
    est = sagelocal.KNN(k=3, predictor_type="classifier", index_type="faiss.IVFPQ", faiss_index_pq_m=m,
                        faiss_index_ivf_nlists=8, sample_size=120, **reduction).fit(X, y)  # 6-bit codes
    assert est.index_dim_ == expected and est.index_dim_ % m == 0
    assert est.predict(Q).shape == (len(Q),)


def test_padding_keeps_exact_neighbours(data):
    X, y, _, Q = data
    flat = sagelocal.KNN(k=5, predictor_type="classifier").fit(X, y)
    ivf = sagelocal.KNN(k=5, predictor_type="classifier", index_type="faiss.IVFFlat", faiss_index_ivf_nlists=1)
    ivf.fit(X, y)  # one list: exhaustive, so the result is the exact one
    np.testing.assert_array_equal(ivf.kneighbors(Q)[1], flat.kneighbors(Q)[1])


def test_fast_walsh_hadamard_matches_the_hadamard_matrix():
    rows = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    np.testing.assert_allclose(_walsh_hadamard(rows), rows @ scipy.linalg.hadamard(16).T, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["sign", "fjlt"])
def test_dimension_reduction_preserves_distances_and_is_stored(tmp_path, kind):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 300)).astype(np.float32)
    y = rng.integers(0, 3, 400).astype(np.float32)
    est = sagelocal.KNN(k=3, predictor_type="classifier", dimension_reduction_type=kind,
                        dimension_reduction_target=128).fit(X, y)
    assert est.index_dim_ == 128
    reduced = est._transform.apply(X[:40])
    pairs = np.triu_indices(40, 1)
    ratio = (np.linalg.norm(reduced[pairs[0]] - reduced[pairs[1]], axis=1)
             / np.linalg.norm(X[:40][pairs[0]] - X[:40][pairs[1]], axis=1))
    assert 0.75 < ratio.min() and ratio.max() < 1.25  # Johnson-Lindenstrauss at 128 dimensions
    distances, positions = est.kneighbors(X[:50])
    np.testing.assert_array_equal(positions[:, 0], np.arange(50))  # each training row finds itself
    np.testing.assert_allclose(distances[:, 0], 0.0, atol=1e-3)
    loaded = sagelocal.load(est.save(tmp_path / "model"))
    np.testing.assert_array_equal(loaded.kneighbors(X[:50])[1], positions)
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    assert meta["dimension_reduction"] == {"type": kind, "seed": 0, "target_dim": 128, "input_dim": 300}


def test_reservoir_keeps_a_uniform_sample_whatever_the_batch_size():
    X = np.arange(1000, dtype=np.float32)[:, None]
    y = np.zeros(1000, dtype=np.float32)
    small = sagelocal.KNN(k=1, predictor_type="regressor", sample_size=100, mini_batch_size=7).fit(X, y)
    large = sagelocal.KNN(k=1, predictor_type="regressor", sample_size=100, mini_batch_size=1000).fit(X, y)
    assert small.n_indexed_ == 100 and small.n_samples_seen_ == 1000
    kept = np.sort(_indexed_rows(small))
    np.testing.assert_array_equal(kept, np.sort(_indexed_rows(large)))
    assert len(np.unique(kept)) == 100
    counts = np.zeros(1000)
    for seed in range(100):  # inclusion probability is 100/1000 for every row
        est = sagelocal.KNN(k=1, predictor_type="regressor", sample_size=100, mini_batch_size=64,
                            random_state=seed).fit(X, y)
        counts[_indexed_rows(est)] += 1
    by_decile = counts.reshape(10, 100).sum(axis=1)  # expected 1000 per tenth of the stream
    assert np.all(np.abs(by_decile - 1000) < 150), by_decile


def _indexed_rows(est):
    index = est._index
    return np.rint(index.reconstruct_n(0, index.ntotal)[:, 0]).astype(int)


def test_k_and_predictor_type_are_read_from_the_model_metadata(tmp_path, data):
    X, y, _, Q = data
    est = sagelocal.KNN(k=5, predictor_type="classifier").fit(X, y)
    est.save(tmp_path / "model")
    meta_path = tmp_path / "model" / "model.json"
    meta = json.loads(meta_path.read_text())
    assert (meta["k"], meta["predictor_type"], meta["normalize"]) == (5, "classifier", False)
    meta.update(k=3, predictor_type="regressor")
    meta_path.write_text(json.dumps(meta))
    edited = sagelocal.load(tmp_path / "model")
    np.testing.assert_allclose(edited.predict(Q), KNeighborsRegressor(3).fit(X, y).predict(Q), rtol=1e-5)
    meta["k"] = 0
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(sagelocal.ArtifactError, match="'k'"):
        sagelocal.load(tmp_path / "model")


def test_index_is_stored_with_faiss_own_writer(tmp_path, data):
    X, y, _, Q = data
    est = sagelocal.KNN(k=4, predictor_type="classifier", index_type="faiss.IVFFlat").fit(X, y)
    est.save(tmp_path / "model")
    with np.load(tmp_path / "model" / "model.npz") as payload:
        index = faiss.deserialize_index(payload["index"])
        np.testing.assert_array_equal(payload["labels"], y)
    assert index.ntotal == len(X) and index.d == 12
    faiss.extract_index_ivf(index).nprobe = est._faiss_ivf().nprobe
    np.testing.assert_array_equal(index.search(Q, 4)[1], est.kneighbors(Q)[1])


def test_test_channel_accuracy_and_mse_match_scikit_learn(data):
    X, y_class, y_value, _ = data
    train, test = slice(0, 1500), slice(1500, None)
    clf = sagelocal.KNN(k=5, predictor_type="classifier").fit(X[train], y_class[train],
                                                             test=(X[test], y_class[test]))
    expected = accuracy_score(y_class[test], KNeighborsClassifier(5).fit(X[train], y_class[train]).predict(X[test]))
    assert clf.metrics_ == {"test:accuracy": pytest.approx(expected)}
    reg = sagelocal.KNN(k=5, predictor_type="regressor").fit(X[train], y_value[train], test=(X[test], y_value[test]))
    expected = mean_squared_error(y_value[test], KNeighborsRegressor(5).fit(X[train], y_value[train]).predict(X[test]))
    assert reg.metrics_["test:mse"] == pytest.approx(expected, rel=1e-5)


def test_cosine_and_inner_product_metrics(data):
    X, y, _, Q = data
    cosine = sagelocal.KNN(k=5, predictor_type="classifier", index_metric="COSINE").fit(X, y)
    theirs = KNeighborsClassifier(5, metric="cosine", algorithm="brute").fit(X, y)
    np.testing.assert_array_equal(cosine.predict(Q), theirs.predict(Q))
    similarities, _ = cosine.kneighbors(Q[:5])
    assert np.all(np.diff(similarities, axis=1) <= 1e-6) and similarities.max() <= 1.0 + 1e-5
    inner = sagelocal.KNN(k=5, predictor_type="classifier", index_metric="INNER_PRODUCT").fit(X, y)
    _, positions = inner.kneighbors(Q[:20])
    np.testing.assert_array_equal(positions, np.argsort(-(Q[:20] @ X.T), axis=1, kind="stable")[:, :5])


def test_invalid_combinations_are_named(data):
    X, y, _, _ = data
    with pytest.raises(HyperparameterError, match="index_metric") as info:
        sagelocal.KNN(k=3, predictor_type="classifier", index_type="faiss.IVFPQ", index_metric="COSINE").fit(X, y)
    assert info.value.names == ["index_metric"]
    with pytest.raises(HyperparameterError, match="dimension_reduction_target"):
        sagelocal.KNN(k=3, predictor_type="classifier", dimension_reduction_type="sign").fit(X, y)
    with pytest.raises(HyperparameterError, match=r"must be < feature_dim \(12\); got 12"):
        sagelocal.KNN(k=3, predictor_type="classifier", dimension_reduction_type="fjlt",
                      dimension_reduction_target=12).fit(X, y)
    with pytest.raises(HyperparameterError, match="'k' must be <= the number of sampled rows"):
        sagelocal.KNN(k=50, predictor_type="classifier", sample_size=20).fit(X, y)
    with pytest.raises(HyperparameterError, match="faiss_index_ivf_nlists"):
        sagelocal.KNN(k=3, predictor_type="classifier", index_type="faiss.IVFFlat", sample_size=30,
                      faiss_index_ivf_nlists=64).fit(X, y)
    with pytest.raises(DataFormatError, match="needs a label"):
        sagelocal.KNN(k=3, predictor_type="classifier").fit(X)
    with pytest.raises(HyperparameterError, match="sample_size"):
        sagelocal.KNN.from_sagemaker({"k": "3", "predictor_type": "classifier", "feature_dim": "12"})


def test_missing_faiss_names_the_extra(monkeypatch, data):
    X, y, _, _ = data
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now raises ImportError
    with pytest.raises(SagelocalError, match=r"pip install sagelocal\[knn\]"):
        sagelocal.KNN(k=3, predictor_type="classifier").fit(X, y)


def test_verbose_records_give_sorted_distances_and_labels(data):
    X, y, _, Q = data
    est = sagelocal.KNN(k=4, predictor_type="classifier").fit(X, y)
    distances, indices = KNeighborsClassifier(4).fit(X, y).kneighbors(Q[:10])
    records = est.predict_records(Q[:10], verbose=True)
    for record, want_distances, want_indices in zip(records, distances, indices):
        assert list(record) == ["predicted_label", "distances", "labels"]
        np.testing.assert_allclose(record["distances"], want_distances ** 2, rtol=1e-4)  # faiss: squared L2
        assert record["labels"] == y[want_indices].tolist()
    assert est.predict_records(Q[:2], verbose="false") == est.predict_records(Q[:2])
    with pytest.raises(DataFormatError, match="verbose"):
        est.predict_records(Q[:2], verbose="maybe")


def test_responses_match_the_spec_shapes_verbose_included():
    from sagelocal.serving.invocation import Invoker

    pb = pytest.importorskip("sagemaker.amazon.common")  # the SDK decodes our protobuf bytes
    X = np.array([[-3, -1, -4, 2], [3, 0, 0, 0], [-2, -1, -3, 2], [4, 0.1, 0, 0]], dtype=np.float32)
    est = sagelocal.KNN(k=2, predictor_type="classifier").fit(X, np.array([0, 2, 0, 2], dtype=np.float32))
    invoker = Invoker(est)
    body = json.dumps({"instances": [{"data": {"features": {"values": [-3, -1, -4, 2]}}},
                                     {"features": [3.0, 0.1, 0.04, 0.002]}]}).encode()
    plain = invoker.invoke(body, "application/json", "application/json")
    assert json.loads(plain.body) == {"predictions": [{"predicted_label": 0.0}, {"predicted_label": 2.0}]}
    verbose = json.loads(invoker.invoke(body, "application/json", "application/json; verbose=true").body)
    first = verbose["predictions"][0]
    assert list(first) == ["predicted_label", "distances", "labels"]
    assert first["labels"] == [0.0, 0.0] and first["distances"][0] == 0.0
    assert first["distances"][1] == pytest.approx(2.0)  # |(-1, 0, -1, 0)|^2
    jsonl_body = b'{"features": [-3, -1, -4, 2]}\n{"features": [3.0, 0.1, 0.04, 0.002]}\n'
    lines = invoker.invoke(jsonl_body, "application/jsonlines", "application/jsonlines").body.decode().splitlines()
    assert [json.loads(line) for line in lines] == [{"predicted_label": 0.0}, {"predicted_label": 2.0}]
    protobuf = invoker.invoke(body, "application/json", "application/x-recordio-protobuf; verbose=true").body
    records = pb.read_records(io.BytesIO(protobuf))
    assert [set(r.label) for r in records] == [{"predicted_label", "distances", "labels"}] * 2
    assert list(records[1].label["predicted_label"].float32_tensor.values) == [2.0]
    assert list(records[1].label["labels"].float32_tensor.values) == [2.0, 2.0]
    np.testing.assert_allclose(records[0].label["distances"].float32_tensor.values, first["distances"], rtol=1e-6)
    csv_answer = invoker.invoke(b"-3,-1,-4,2\n", "text/csv", "application/json")
    assert json.loads(csv_answer.body) == {"predictions": [{"predicted_label": 0.0}]}


def test_the_sdk_hyperparameters_train_as_sent(data):
    from unittest import mock

    sagemaker = pytest.importorskip("sagemaker")
    session = mock.MagicMock(boto_region_name="us-east-1", sagemaker_config=None)
    sdk = sagemaker.KNN(role="arn:aws:iam::111111111111:role/r", instance_count=1, instance_type="ml.m5.large",
                        k=5, sample_size=500, predictor_type="classifier", dimension_reduction_type="fjlt",
                        dimension_reduction_target=6, index_type="faiss.IVFFlat", faiss_index_ivf_nlists="auto",
                        sagemaker_session=session)
    sdk.feature_dim, sdk.mini_batch_size = 12, 200
    X, y, _, Q = data
    est = sagelocal.KNN.from_sagemaker(sdk.hyperparameters()).fit(X, y)
    assert (est.n_indexed_, est.index_dim_, est._faiss_ivf().nlist) == (500, 6, 22)  # round(sqrt(500))
    assert est.predict(Q).shape == (len(Q),)
