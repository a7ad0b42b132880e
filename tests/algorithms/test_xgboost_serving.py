"""XGBoost inference: the container's request and response rules, selectable output, ensembles, and
models trained by SageMaker (``xgboost-model`` in a ``model.tar.gz``, native or pickled)."""

from __future__ import annotations

import copy
import io
import json
import os
import pickle
import tarfile
import warnings

import numpy as np
import pytest
import xgboost as xgb
from sklearn.datasets import make_classification, make_regression

import sagelocal
from sagelocal import ArtifactError, XGBoost
from sagelocal.serving import Invoker


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    monkeypatch.delenv("SAGEMAKER_INFERENCE_OUTPUT", raising=False)
    monkeypatch.delenv("SAGEMAKER_INFERENCE_ENSEMBLE", raising=False)
    with xgb.config_context(nthread=1):
        yield


def _data(n=200, d=5, classes=2, seed=0):
    X, y = make_classification(n_samples=n, n_features=d, n_informative=3, n_classes=classes, random_state=seed)
    return X.astype(np.float32), y.astype(np.float32)


@pytest.fixture(scope="module")
def binary():
    X, y = _data()
    return XGBoost(num_round=4, objective="binary:logistic", nthread=1).fit(X, y), X


def _csv(X) -> bytes:
    return "\n".join(",".join(f"{v:.9g}" for v in row) for row in X).encode()


def _sagemaker_tarball(path, boosters, pickled=False):
    """A model.tar.gz as SageMaker XGBoost writes it: xgboost-model (xgboost-model-<i> after k-fold)."""
    names = ["xgboost-model"] if len(boosters) == 1 else [f"xgboost-model-{i}" for i in range(len(boosters))]
    folder = path.parent / "opt-ml-model"
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, booster in zip(names, boosters):
            if pickled:
                (folder / name).write_bytes(pickle.dumps(booster))
            else:
                with warnings.catch_warnings():  # "Saving model in the UBJSON format as default"
                    warnings.simplefilter("ignore", UserWarning)
                    booster.save_model(folder / name)  # what versions 1.3-1 and later do
            tar.add(folder / name, arcname=name)
    return path


# ------------------------------------------------------------------------------- selectable records
def test_standard_records_are_scores(binary):
    est, X = binary
    p = est.predict(X[:3])
    assert est.predict_records(X[:3]) == [{"score": float(v)} for v in p]


def test_selectable_binary_logistic(binary, monkeypatch):
    est, X = binary
    p = est.predict(X[:5]).astype(np.float64)
    monkeypatch.setenv("SAGEMAKER_INFERENCE_OUTPUT", "Probabilities, predicted_label,raw_scores,labels,raw_score,"
                                                     "probability,predicted_score")
    est = copy.copy(est)  # the module's model stays unserved
    est.configure_serving(os.environ)  # what a server does when it loads the model
    records = est.predict_records(X[:5])
    assert list(records[0]) == ["predicted_label", "labels", "probability", "probabilities", "raw_score",
                                "raw_scores", "predicted_score"]
    for record, value in zip(records, p):
        assert record["predicted_label"] == int(value > 0.5) and record["labels"] == [0, 1]
        assert record["probability"] == record["raw_score"] == value
        assert record["probabilities"] == record["raw_scores"] == [1.0 - value, value]
        assert np.isnan(record["predicted_score"])  # a regression key: NaN for a classifier


def test_selectable_multiclass_and_hinge():
    X, y = _data(n=300, classes=3)
    softprob = XGBoost(num_round=3, objective="multi:softprob", num_class=3, nthread=1).fit(X, y)
    p = softprob.predict(X[:4])
    records = softprob.predict_records(X[:4], inference_output="predicted_label,probability,probabilities,labels")
    assert [r["predicted_label"] for r in records] == p.argmax(axis=1).tolist()
    assert [r["probability"] for r in records] == p.max(axis=1).tolist()
    assert [r["probabilities"] for r in records] == p.tolist() and records[0]["labels"] == [0, 1, 2]
    Xb, yb = _data()
    hinge = XGBoost(num_round=3, objective="binary:hinge", nthread=1).fit(Xb, yb)
    for record, value in zip(hinge.predict_records(Xb[:4], inference_output="raw_scores,predicted_label"),
                             hinge.predict(Xb[:4]).tolist()):
        assert record == {"predicted_label": value, "raw_scores": [1.0 - value, value]}


# --------------------------------------------------------------------------------- the HTTP rules
def test_csv_requests_and_responses(binary):
    est, X = binary
    invoker = Invoker(est)
    p = est.predict(X[:3]).tolist()
    answer = invoker.invoke(_csv(X[:3]), "text/csv", None)  # no Accept: text/csv, as the container
    assert answer.status == 200 and answer.content_type == "text/csv"
    assert answer.body.decode() == "".join(f"{v}\n" for v in p)  # every row ends with a newline, as the container
    answer = invoker.invoke(_csv(X[:3]), "text/csv", "application/json")
    assert json.loads(answer.body) == {"predictions": [{"score": v} for v in p]}
    semicolons = _csv(X[:3]).replace(b",", b";")
    assert invoker.invoke(semicolons, "text/csv", "application/json").body == answer.body
    batch = Invoker(est, batch=True).invoke(_csv(X[:3]), "text/csv", "application/json")
    assert batch.body.decode() == "".join(f"{v}\n" for v in p)  # SAGEMAKER_BATCH: str per line, any Accept


def test_libsvm_requests(binary):
    est, X = binary
    rows = X[:3].copy()
    rows[:, 1] = 0.0
    body = "\n".join("1 " + " ".join(f"{j}:{v:.9g}" for j, v in enumerate(r) if v) for r in rows).encode()
    expected = est.predict(np.where(rows == 0, np.nan, rows))  # absent entries are missing, not zero
    for content_type in ("text/libsvm", "text/x-libsvm", None):  # none: libsvm, as the container
        answer = Invoker(est).invoke(body, content_type, "application/json")
        assert answer.status == 200, answer.message
        got = [r["score"] for r in json.loads(answer.body)["predictions"]]
        np.testing.assert_allclose(got, expected, atol=1e-7)


def test_recordio_protobuf_request(binary):
    from sagelocal.io import write_numpy_to_dense_tensor

    est, X = binary
    stream = io.BytesIO()
    write_numpy_to_dense_tensor(stream, X[:4])
    answer = Invoker(est).invoke(stream.getvalue(), "application/x-recordio-protobuf", "application/json")
    assert [r["score"] for r in json.loads(answer.body)["predictions"]] == est.predict(X[:4]).tolist()


@pytest.mark.parametrize("body, content_type, accept, status", [
    (b"", "text/csv", "application/json", 204),
    (b"1,2,3,4,5", "text/csv;label_size=2", "text/csv", 415),
    (b"1,abc,3,4,5", "text/csv", "text/csv", 415),
    (b'{"instances": [[1, 2, 3, 4, 5]]}', "application/json", "text/csv", 415),
    (b"1,2,3,4,5", "application/x-parquet", "text/csv", 415),
    (b"1,2,3,4,5", "text/csv", "text/html", 406),
    (b"1,2,3,4,5,6,7", "text/csv", "text/csv", 400),
    (b"1,2,3,4,5", "text/csv", "application/jsonlines", 500),
    (b"1,2,3,4,5", "text/csv", "application/x-recordio-protobuf", 500),
])
def test_status_codes(binary, body, content_type, accept, status):
    est, _ = binary
    assert Invoker(est).invoke(body, content_type, accept).status == status


@pytest.mark.filterwarnings("ignore:You are using the SageMaker Python SDK v2")
def test_selectable_response_formats(binary, monkeypatch):
    from sagemaker.amazon.common import read_records

    est, X = binary
    monkeypatch.setenv("SAGEMAKER_INFERENCE_OUTPUT", "probabilities,predicted_label")
    p = est.predict(X[:2]).astype(np.float64).tolist()
    invoker = Invoker(est)
    csv = invoker.invoke(_csv(X[:2]), "text/csv", "text/csv").body.decode()
    assert csv == "\n".join(f'"{[1.0 - v, v]}",{int(v > 0.5)}' for v in p)  # the requested order, lists quoted
    lines = invoker.invoke(_csv(X[:2]), "text/csv", "application/jsonlines").body.decode()
    assert lines == "".join(json.dumps({"predicted_label": int(v > 0.5), "probabilities": [1.0 - v, v]}) + "\n"
                            for v in p)
    protobuf = invoker.invoke(_csv(X[:2]), "text/csv", "application/x-recordio-protobuf").body
    records = read_records(io.BytesIO(protobuf))  # the SageMaker SDK's own reader
    assert len(records) == 2
    np.testing.assert_allclose(records[1].label["probabilities"].float32_tensor.values, [1 - p[1], p[1]], rtol=1e-6)
    assert list(records[1].label["predicted_label"].float32_tensor.values) == [int(p[1] > 0.5)]
    monkeypatch.setenv("SAGEMAKER_INFERENCE_OUTPUT", "predicted_label")
    Xr, yr = make_regression(n_samples=80, n_features=5, random_state=0)
    poisson = XGBoost(num_round=2, objective="count:poisson", nthread=1).fit(Xr, np.abs(yr))
    assert Invoker(poisson).invoke(_csv(Xr[:2]), "text/csv", "application/json").status == 500
    assert b"NaN" in Invoker(XGBoost(num_round=2, nthread=1).fit(Xr, yr)).invoke(
        _csv(Xr[:2]), "text/csv", "application/json").body


# ------------------------------------------------------------------------- SageMaker's own artifacts
def test_sagemaker_native_model_loads_predicts_and_serves(tmp_path):
    X, y = _data()
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1}, xgb.DMatrix(X, label=y), 5)
    tarball = _sagemaker_tarball(tmp_path / "model.tar.gz", [booster])
    model = sagelocal.load(tarball)
    assert isinstance(model, XGBoost) and model.objective_ == "binary:logistic"
    expected = booster.predict(xgb.DMatrix(X))
    np.testing.assert_array_equal(model.predict(X), expected)
    answer = Invoker(model).invoke(_csv(X[:3]), "text/csv", "application/json")
    assert [r["score"] for r in json.loads(answer.body)["predictions"]] == expected[:3].tolist()
    resaved = sagelocal.load(model.save(tmp_path / "resaved"))  # sagelocal's artifact keeps XGBoost's format
    np.testing.assert_array_equal(resaved.predict(X), expected)


def test_sagemaker_ensemble_averages_or_votes(tmp_path, monkeypatch):
    X, y = _data(n=300, classes=3)
    boosters = [xgb.train({"objective": "multi:softmax", "num_class": 3, "seed": s, "subsample": 0.6,
                           "nthread": 1}, xgb.DMatrix(X, label=y), 3) for s in range(3)]
    model = sagelocal.load(_sagemaker_tarball(tmp_path / "model.tar.gz", boosters))
    votes = np.stack([b.predict(xgb.DMatrix(X)) for b in boosters]).astype(int)
    expected = [np.bincount(column, minlength=3).argmax() for column in votes.T]  # majority, ties: smallest
    np.testing.assert_array_equal(model.predict(X), expected)
    monkeypatch.setenv("SAGEMAKER_INFERENCE_ENSEMBLE", "false")
    model.configure_serving(os.environ)  # what a server does when it loads the model
    np.testing.assert_array_equal(model.predict(X), votes[0])


def test_pickled_models_need_permission(tmp_path):
    X, y = _data()
    booster = xgb.train({"objective": "binary:logistic", "nthread": 1}, xgb.DMatrix(X, label=y), 3)
    tarball = _sagemaker_tarball(tmp_path / "model.tar.gz", [booster], pickled=True)
    with pytest.raises(ArtifactError, match="allow_pickle=True"):
        sagelocal.load(tarball)
    model = sagelocal.load(tarball, allow_pickle=True)
    np.testing.assert_array_equal(model.predict(X), booster.predict(xgb.DMatrix(X)))
    invoker = Invoker(model)  # pickled models get the container's width check: the model's or one less
    assert invoker.invoke(_csv(X[:2, :4]), "text/csv", "text/csv").status == 200
    assert invoker.invoke(_csv(X[:2, :3]), "text/csv", "text/csv").status == 400


def test_save_sagemaker_writes_what_xgboost_and_sagemaker_read(binary, tmp_path):
    est, X = binary
    tarball = est.save_sagemaker(tmp_path / "export")
    with tarfile.open(tarball) as tar:
        assert tar.getnames() == ["xgboost-model"]
        data = tar.extractfile("xgboost-model").read()
    booster = xgb.Booster(model_file=bytearray(data))
    np.testing.assert_array_equal(booster.predict(xgb.DMatrix(X)), est.predict(X))


def test_served_by_the_http_server(tmp_path):
    from sagelocal.serving import LocalServer

    X, y = _data()
    booster = xgb.train({"objective": "binary:logistic", "nthread": 1}, xgb.DMatrix(X, label=y), 3)
    tarball = _sagemaker_tarball(tmp_path / "model.tar.gz", [booster])
    import urllib.request

    env = {"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label,probability"}
    with LocalServer(tarball, env=env) as server:
        request = urllib.request.Request(f"{server.url}/invocations", data=_csv(X[:2]), method="POST",
                                         headers={"Content-Type": "text/csv", "Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
    p = booster.predict(xgb.DMatrix(X[:2]))
    assert body == {"predictions": [{"predicted_label": int(v > 0.5), "probability": float(v)} for v in p]}
