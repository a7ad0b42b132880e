"""text/csv answers end every row with a newline, as SageMaker's containers write them (issue 13, defect 1).

The XGBoost container encodes standard (non-selectable) CSV with sagemaker-containers'
``encoders.array_to_csv``: a ``csv.writer`` with ``lineterminator="\\n"`` over the predictions, so
``b"0.86\\n0.10\\n"`` (``multi:softprob``: one comma-separated row per record, each ended the same way).
AWS's xgboost_mnist notebook parses the answer with ``result.split("\\n")[:-1]``; that code runs here
against a real ``sagelocal serve`` and must recover every prediction. Batch transform, which assembles
records itself, must keep its bytes.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import xgboost as xgb
from sklearn.datasets import make_classification

from sagelocal import XGBoost
from sagelocal.serving import Invoker, LocalServer
from sagelocal.serving.transform import transform

boto3 = pytest.importorskip("boto3")
botocore = pytest.importorskip("botocore")


@pytest.fixture(autouse=True)
def _standard_output(monkeypatch):
    monkeypatch.delenv("SAGEMAKER_INFERENCE_OUTPUT", raising=False)
    monkeypatch.delenv("SAGEMAKER_INFERENCE_ENSEMBLE", raising=False)
    with xgb.config_context(nthread=1):
        yield


def _data(classes: int):
    X, y = make_classification(n_samples=240, n_features=6, n_informative=4, n_classes=classes, random_state=3)
    return X.astype(np.float32), y.astype(np.float32)


@pytest.fixture(scope="module")
def models():
    """A binary, a multi:softmax (the mnist notebook's objective) and a multi:softprob model, with data."""
    X2, y2 = _data(2)
    X3, y3 = _data(3)
    return {
        "binary:logistic": (XGBoost(num_round=3, objective="binary:logistic", nthread=1).fit(X2, y2), X2),
        "multi:softmax": (XGBoost(num_round=3, objective="multi:softmax", num_class=3, nthread=1).fit(X3, y3), X3),
        "multi:softprob": (XGBoost(num_round=3, objective="multi:softprob", num_class=3, nthread=1).fit(X3, y3), X3),
    }


def _csv(X) -> bytes:
    return "\n".join(",".join(f"{v:.9g}" for v in row) for row in X).encode()


def _libsvm_lines(X) -> list[str]:
    return ["0 " + " ".join(f"{j}:{v:.9g}" for j, v in enumerate(row)) for row in X]


def _container_csv(predictions: np.ndarray) -> bytes:
    """What sagemaker-containers' ``array_to_csv`` writes: csv.writer rows, each ended by ``\\n``."""
    rows = np.asarray(predictions.tolist())
    rows = rows.reshape(-1, 1) if rows.ndim == 1 else rows
    return "".join(",".join(str(v) for v in row) + "\n" for row in rows.tolist()).encode()


# ------------------------------------------------------------------------------ the exact bytes
@pytest.mark.parametrize("objective", ["binary:logistic", "multi:softmax", "multi:softprob"])
@pytest.mark.parametrize("accept", [None, "*/*", "text/csv"])
def test_csv_answer_ends_every_row_with_a_newline(models, objective, accept):
    est, X = models[objective]
    answer = Invoker(est).invoke(_csv(X[:4]), "text/csv", accept)
    assert answer.status == 200 and answer.content_type == "text/csv"
    assert answer.body == _container_csv(est.predict(X[:4]))
    assert answer.body.endswith(b"\n") and not answer.body.endswith(b"\n\n")


def test_one_row_answer_is_one_terminated_line(models):
    est, X = models["binary:logistic"]
    body = Invoker(est).invoke(_csv(X[:1]), "text/csv", "text/csv").body
    assert body == f"{est.predict(X[:1])[0]}\n".encode()


# ------------------------------------------------------------ AWS's notebook against a real server
def _do_predict(runtime, endpoint_name, data, content_type):
    """The xgboost_mnist notebook's ``do_predict``, unchanged but for the client passed in."""
    payload = "\n".join(data)
    response = runtime.invoke_endpoint(EndpointName=endpoint_name, ContentType=content_type, Body=payload)
    result = response["Body"].read()
    result = result.decode("utf-8")
    result = result.split("\n")[:-1]
    preds = [float(num) for num in result]
    return preds


def _runtime(url: str):
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    return session.client("sagemaker-runtime", endpoint_url=url,
                          config=botocore.config.Config(retries={"max_attempts": 1}))


def test_mnist_notebook_parsing_recovers_every_prediction_from_sagelocal_serve(models):
    est, X = models["multi:softmax"]
    X = X[:25]
    expected = est.predict(X).tolist()
    with LocalServer(est) as server:
        runtime = _runtime(server.url)
        # the notebook sends libsvm lines in batches; every batch must come back whole
        got = []
        for start in range(0, 25, 10):
            got += _do_predict(runtime, "xgboost-mnist", _libsvm_lines(X[start:start + 10]), "text/x-libsvm")
        assert got == expected
        assert _do_predict(runtime, "xgboost-mnist", [_csv(X[:7]).decode()], "text/csv") == expected[:7]
        assert [math.ceil(p) for p in got] == [int(v) for v in expected]
        one = _do_predict(runtime, "xgboost-mnist", _libsvm_lines(X[:1]), "text/libsvm")
        assert one == expected[:1]  # one row: one terminated line, not an empty result


def test_softprob_rows_over_http(models):
    est, X = models["multi:softprob"]
    expected = est.predict(X[:5])
    with LocalServer(est) as server:
        for accept in (None, "text/csv"):
            answer = server.invoke(_csv(X[:5]), "text/csv", accept)
            assert answer.status == 200 and answer.body == _container_csv(expected)
            rows = [[float(v) for v in line.split(",")] for line in answer.body.decode().split("\n")[:-1]]
            assert rows == expected.tolist()
        # JSON is unchanged
        answer = server.invoke(_csv(X[:2]), "text/csv", "application/json")
        assert json.loads(answer.body) == {"predictions": [{"score": row} for row in expected[:2].tolist()]}


# ------------------------------------------------------------------ batch transform keeps its bytes
@pytest.mark.parametrize("objective", ["binary:logistic", "multi:softprob"])
@pytest.mark.parametrize("assemble_with", ["None", "Line"])
def test_batch_transform_output_is_unchanged(models, objective, assemble_with, tmp_path):
    """SAGEMAKER_BATCH output is ``str(prediction)`` per line plus a final newline, whatever the Accept."""
    est, X = models[objective]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part.csv").write_bytes(_csv(X[:6]) + b"\n")
    result = transform(est, tmp_path / "in", tmp_path / "out", content_type="text/csv", accept="text/csv",
                       split_type="Line", batch_strategy="MultiRecord", assemble_with=assemble_with)
    assert result.ok
    expected = "".join(f"{p}\n" for p in est.predict(X[:6]).tolist())
    assert (tmp_path / "out" / "part.csv.out").read_text() == expected
    single = transform(est, tmp_path / "in", tmp_path / "out1", content_type="text/csv", accept="text/csv",
                       split_type="Line", batch_strategy="SingleRecord", assemble_with=assemble_with)
    assert single.ok
    assert (tmp_path / "out1" / "part.csv.out").read_text() == expected
