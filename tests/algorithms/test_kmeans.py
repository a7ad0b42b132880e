"""K-Means against scikit-learn and hand computations; SageMaker's streaming method, metrics and responses."""

from __future__ import annotations

import io
import json
import logging
import os
import threading

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans as SklearnKMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

import sagelocal
from sagelocal import DataFormatError, HyperparameterError
from sagelocal.algorithms.kmeans import _lloyd, _local_lloyd
from sagelocal.base.runtime import Runtime
from sagelocal.io import Channel, write_numpy_to_dense_tensor


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=6000, n_features=8, centers=6, cluster_std=1.0, random_state=3)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def reference(blobs):
    return SklearnKMeans(6, n_init=10, random_state=0).fit(blobs[0])


def inertia(X, centers):
    return float((cdist(X.astype(np.float64), centers.astype(np.float64), "sqeuclidean").min(axis=1)).sum())


@pytest.mark.parametrize("init_method", ["random", "kmeans++"])
def test_recovers_planted_clusters_with_scikit_learn_inertia(blobs, reference, init_method):
    X, y = blobs
    est = sagelocal.KMeans(k=6, init_method=init_method, mini_batch_size=500).fit(X)
    assert adjusted_rand_score(y, est.predict(X)) >= 0.99
    assert inertia(X, est.cluster_centers_) <= 1.02 * reference.inertia_
    assert est.cluster_centers_.shape == (6, 8) and est.n_centers_streamed_ == 60  # auto factor 10


def test_streaming_update_is_the_running_mean_by_hand():
    # k = 2 and extra_center_factor = 1: the two streamed centres are the result (nothing to reduce).
    X = np.array([[0.0], [10.0], [1.0], [11.0], [2.0], [12.0]], dtype=np.float32)
    est = sagelocal.KMeans(k=2, extra_center_factor=1, mini_batch_size=2).fit(X)
    # seeds 0 and 10; then running means (0), (0+1)/2, (0+1+2)/3 and (10), (10+11)/2, (10+11+12)/3
    np.testing.assert_allclose(np.sort(est.cluster_centers_[:, 0]), [1.0, 11.0], rtol=1e-6)


def test_half_life_decays_old_points_by_hand():
    X = np.array([[0.0], [10.0], [1.0], [11.0], [2.0], [12.0]], dtype=np.float32)
    est = sagelocal.KMeans(k=2, extra_center_factor=1, mini_batch_size=2, half_life_time_size=2).fit(X)
    # a batch of 2 points halves the previous weight (half life 2 points):
    # w: 1 -> 0.5 + 1 = 1.5 -> 0.75 + 1 = 1.75; c: 0 -> (0.5*0 + 1)/1.5 -> (0.75*(2/3) + 2)/1.75
    low = (0.75 * (1 / 1.5) + 2) / 1.75
    high = (0.75 * ((0.5 * 10 + 11) / 1.5) + 12) / 1.75
    np.testing.assert_allclose(np.sort(est.cluster_centers_[:, 0]), [low, high], rtol=1e-6)


def test_local_lloyd_matches_weighted_lloyd_of_scikit_learn():
    rng = np.random.default_rng(0)
    points = rng.standard_normal((300, 4)) + rng.integers(0, 3, (300, 1)) * 4.0
    weights = rng.integers(1, 50, 300).astype(np.float64)
    start = points[[0, 50, 100, 150, 200]]
    ours, loss = _lloyd(points, weights, start, max_iter=300, tol=0.0)
    theirs = SklearnKMeans(5, init=start, n_init=1, tol=0.0, algorithm="lloyd").fit(points, sample_weight=weights)
    np.testing.assert_allclose(ours, theirs.cluster_centers_, rtol=1e-9, atol=1e-9)
    assert loss == pytest.approx(theirs.inertia_, rel=1e-9)

    def reduced_loss(trials):
        centers = _local_lloyd(points, weights, 5, init="kmeans++", max_iter=300, tol=0.0, trials=trials,
                               rng=np.random.default_rng(1))
        return float(weights @ cdist(points, centers, "sqeuclidean").min(axis=1))

    assert reduced_loss(10) <= reduced_loss(1)  # the best of the trials is kept
    # centres with no weight never pull the result
    padded = _local_lloyd(np.vstack([points, [[1e6] * 4]]), np.r_[weights, 0.0], 5, init="random",
                          max_iter=300, tol=0.0, trials=10, rng=np.random.default_rng(1))
    assert np.abs(padded).max() < 100


def write_protobuf(path, X):
    with open(path, "wb") as stream:
        write_numpy_to_dense_tensor(stream, X)


def test_pipe_mode_equals_file_mode_and_in_memory_arrays(tmp_path, blobs):
    X = blobs[0][:3000]
    hp = {"k": 6, "feature_dim": 8, "epochs": 3, "mini_batch_size": 256, "init_method": "kmeans++"}
    (tmp_path / "train").mkdir()
    write_protobuf(tmp_path / "train" / "part-0.pbr", X)
    file_mode = sagelocal.KMeans(**hp).fit(Channel(tmp_path / "train", input_mode="File"))
    in_memory = sagelocal.KMeans(**hp).fit(X)

    pipe_dir = tmp_path / "pipe"
    pipe_dir.mkdir()
    payload = (tmp_path / "train" / "part-0.pbr").read_bytes()
    opened, done = [], threading.Event()

    def writer():  # SageMaker's side: FIFO train_<epoch>, the next one once the previous is consumed
        epoch = 0
        while not done.is_set():
            fifo = pipe_dir / f"train_{epoch}"
            os.mkfifo(fifo)
            try:
                with open(fifo, "wb") as stream:
                    opened.append(epoch)
                    stream.write(payload)
            except BrokenPipeError:
                pass
            epoch += 1

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        piped = sagelocal.KMeans(**hp).fit(Channel(pipe_dir / "train", input_mode="Pipe"))
    finally:
        done.set()
        for fifo in pipe_dir.glob("train_*"):  # release the writer waiting on the epoch nobody reads
            os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
        thread.join(timeout=10)
    assert opened[:3] == [0, 1, 2]  # one FIFO per epoch
    np.testing.assert_array_equal(piped.cluster_centers_, file_mode.cluster_centers_)
    np.testing.assert_array_equal(in_memory.cluster_centers_, file_mode.cluster_centers_)


def test_test_channel_metrics_and_metric_lines(blobs, caplog):
    X, _ = blobs
    train, test = X[:4000], X[4000:]
    with caplog.at_level(logging.INFO, logger="sagelocal"):
        est = sagelocal.KMeans(k=6, eval_metrics=["msd", "ssd"]).fit(train, test=test)
    squared = cdist(test.astype(np.float64), est.cluster_centers_.astype(np.float64), "sqeuclidean").min(axis=1)
    assert est.metrics_["test:ssd"] == pytest.approx(squared.sum(), rel=1e-6)
    assert est.metrics_["test:msd"] == pytest.approx(squared.mean(), rel=1e-6)
    assert "#quality_metric: host=algo-1, test msd <loss>=" in caplog.text
    only_ssd = sagelocal.estimator("kmeans", k="6", eval_metrics='["ssd"]').fit(train, test=test)
    assert set(only_ssd.metrics_) == {"test:ssd"}
    assert sagelocal.KMeans(k=6).fit(train).metrics_ == {}  # no test channel, no metric


def test_bad_eval_metrics_and_too_few_rows_are_named(blobs):
    X, _ = blobs
    with pytest.raises(HyperparameterError, match="eval_metrics") as info:
        sagelocal.KMeans(k=3, eval_metrics=["rmse"]).fit(X)
    assert info.value.names == ["eval_metrics"]
    with pytest.raises(HyperparameterError, match="eval_metrics"):
        sagelocal.KMeans.from_sagemaker({"k": "3", "feature_dim": "8", "eval_metrics": '"msd"'}).fit(X)
    with pytest.raises(DataFormatError, match="5 rows, fewer than k=6"):
        sagelocal.KMeans(k=6).fit(X[:5])
    with pytest.raises(DataFormatError, match="feature_dim is 9"):
        sagelocal.KMeans(k=3, feature_dim=9).fit(X)


def test_records_give_closest_centre_and_euclidean_distance(blobs):
    X, _ = blobs
    est = sagelocal.KMeans(k=6).fit(X)
    distances = cdist(X[:50].astype(np.float64), est.cluster_centers_.astype(np.float64))
    records = est.predict_records(X[:50])
    assert [r["closest_cluster"] for r in records] == distances.argmin(axis=1).astype(float).tolist()
    assert all(isinstance(r["closest_cluster"], float) for r in records)
    np.testing.assert_allclose([r["distance_to_cluster"] for r in records], distances.min(axis=1), rtol=1e-6)
    np.testing.assert_allclose(est.transform(X[:50]), distances, rtol=1e-5, atol=1e-5)
    assert est.score(X[:50]) == pytest.approx(-(distances.min(axis=1) ** 2).sum(), rel=1e-6)


@pytest.mark.parametrize("force_dense", [None, True, False])
def test_sparse_input_matches_dense(force_dense):
    rng = np.random.default_rng(0)
    X = rng.random((800, 30)).astype(np.float32) * (rng.random((800, 30)) < 0.2)
    X[:400, :5] += 3.0  # two groups
    dense = sagelocal.KMeans(k=2, mini_batch_size=100, force_dense=force_dense).fit(X)
    sparse = sagelocal.KMeans(k=2, mini_batch_size=100, force_dense=force_dense).fit(sp.csr_matrix(X))
    np.testing.assert_allclose(sparse.cluster_centers_, dense.cluster_centers_, atol=1e-5)
    np.testing.assert_array_equal(sparse.predict(sp.csr_matrix(X)), dense.predict(X))
    np.testing.assert_allclose([r["distance_to_cluster"] for r in sparse.predict_records(sp.csr_matrix(X[:20]))],
                               [r["distance_to_cluster"] for r in dense.predict_records(X[:20])], rtol=1e-5)


def test_checkpoint_resume_continues_the_same_run(tmp_path, blobs):
    X = blobs[0][:3000]
    hp = {"k": 6, "mini_batch_size": 300}
    whole = sagelocal.KMeans(**hp, epochs=3).fit(X)
    first = sagelocal.KMeans(**hp, epochs=2)
    first.runtime = Runtime(checkpoint_dir=str(tmp_path))
    first.fit(X)
    assert (tmp_path / "checkpoint.npz").exists()
    resumed = sagelocal.KMeans(**hp, epochs=3)
    resumed.runtime = Runtime(checkpoint_dir=str(tmp_path))
    resumed.fit(X)
    np.testing.assert_array_equal(resumed.cluster_centers_, whole.cluster_centers_)


def test_artifact_holds_the_centroid_matrix(tmp_path, blobs):
    X, _ = blobs
    est = sagelocal.KMeans(k=6).fit(X)
    est.save(tmp_path / "model")
    with np.load(tmp_path / "model" / "model.npz") as data:
        np.testing.assert_array_equal(data["centroids"], est.cluster_centers_)  # k x feature_dim
    loaded = sagelocal.load(tmp_path / "model" / "model.tar.gz")
    assert loaded.predict_records(X[:5]) == est.predict_records(X[:5])


def test_responses_match_the_spec_shapes():
    from sagelocal.serving.invocation import Invoker

    pb = pytest.importorskip("sagemaker.amazon.common")  # the SDK decodes our protobuf bytes
    X = np.array([[0.0, 0.0], [0.2, 0.1], [5.0, 5.0], [5.1, 4.9]], dtype=np.float32)
    est = sagelocal.KMeans(k=2, extra_center_factor=1, mini_batch_size=4, init_method="kmeans++").fit(X)
    invoker = Invoker(est)
    body = json.dumps({"instances": [{"features": [0.1, 0.0]},
                                     {"data": {"features": {"values": [5.0, 5.0]}}}]}).encode()
    expected = est.predict_records(np.array([[0.1, 0.0], [5.0, 5.0]], dtype=np.float32))
    answer = invoker.invoke(body, "application/json", "application/json")
    assert answer.status == 200
    assert json.loads(answer.body) == {"predictions": expected}
    assert set(expected[0]) == {"closest_cluster", "distance_to_cluster"}
    lines = invoker.invoke(body, "application/json", "application/jsonlines").body.decode().splitlines()
    assert [json.loads(line) for line in lines] == expected
    csv_answer = invoker.invoke(b"0.1,0.0\n5.0,5.0\n", "text/csv", "text/csv")
    cells = [line.split(",") for line in csv_answer.body.decode().splitlines()]
    assert [[float(c) for c in row] for row in cells] == \
        [[r["closest_cluster"], r["distance_to_cluster"]] for r in expected]
    protobuf = invoker.invoke(body, "application/json", "application/x-recordio-protobuf").body
    records = pb.read_records(io.BytesIO(protobuf))
    assert len(records) == 2
    for record, want in zip(records, expected):
        assert set(record.label) == {"closest_cluster", "distance_to_cluster"}
        assert list(record.label["closest_cluster"].float32_tensor.values) == [want["closest_cluster"]]
        assert record.label["distance_to_cluster"].float32_tensor.values[0] == \
            pytest.approx(want["distance_to_cluster"], rel=1e-6)


def test_the_sdk_hyperparameters_train_as_sent(blobs):
    from unittest import mock

    sagemaker = pytest.importorskip("sagemaker")
    session = mock.MagicMock(boto_region_name="us-east-1", sagemaker_config=None)
    sdk = sagemaker.KMeans(role="arn:aws:iam::111111111111:role/r", instance_count=1, instance_type="ml.m5.large",
                           k=6, init_method="kmeans++", epochs=2, center_factor=4, eval_metrics=["msd", "ssd"],
                           sagemaker_session=session)
    sdk.feature_dim, sdk.mini_batch_size = 8, 500
    sent = sdk.hyperparameters()
    assert sent["force_dense"] == "True" and sent["eval_metrics"] == '["msd", "ssd"]'
    X, y = blobs
    est = sagelocal.KMeans.from_sagemaker(sent).fit(X[:4000], test=X[4000:])
    assert est.n_centers_streamed_ == 24 and set(est.metrics_) == {"test:msd", "test:ssd"}
    assert adjusted_rand_score(y, est.predict(X)) >= 0.99


def test_a_checkpoint_of_another_job_is_refused(tmp_path, blobs):
    X = blobs[0][:1000]
    other = sagelocal.KMeans(k=3, epochs=1)
    other.runtime = Runtime(checkpoint_dir=str(tmp_path))
    other.fit(X)
    job = sagelocal.KMeans(k=6, epochs=2)
    job.runtime = Runtime(checkpoint_dir=str(tmp_path))
    with pytest.raises(sagelocal.ArtifactError, match="streaming 30 centres for k=3"):
        job.fit(X)
