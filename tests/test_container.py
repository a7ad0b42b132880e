"""The training container contract over a hand-made /opt/ml tree, and the sagelocal command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from sagemaker.amazon.common import write_numpy_to_dense_tensor  # the SDK writes the oracle bytes

import sagelocal
from sagelocal.container import train
from tests.conftest import low_rank

HP = {"feature_dim": "12", "num_components": "3", "mini_batch_size": "50"}


def make_job(root: Path, hyperparameters=None, channels=None, files=None) -> Path:
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(HP if hyperparameters is None else hyperparameters))
    (config / "inputdataconfig.json").write_text(json.dumps(
        channels if channels is not None else {"train": {"ContentType": "text/csv", "TrainingInputMode": "File"}}))
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    for relative, data in (files or {}).items():
        path = root / "input" / "data" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def csv_bytes(X) -> bytes:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in X).encode() + b"\n"


def protobuf_bytes(X) -> bytes:
    import io

    buffer = io.BytesIO()
    write_numpy_to_dense_tensor(buffer, X)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def X():
    return low_rank(n=400, d=12, spectrum=(5.0, 3.0, 2.0), noise=0.05)


def assert_trained(root: Path, X):
    assert (root / "model" / "sagelocal.json").is_file() and (root / "model" / "model.tar.gz").is_file()
    assert (root / "output" / "success").exists() and not (root / "output" / "failure").exists()
    model = sagelocal.load(root / "model" / "model.tar.gz")
    direct = sagelocal.estimator("pca", **HP).fit(X)
    np.testing.assert_allclose(model.predict(X[:20]), direct.predict(X[:20]), atol=1e-4)
    return model


def test_trains_from_csv(tmp_path, X):
    half = len(X) // 2
    root = make_job(tmp_path, files={"train/part-0.csv": csv_bytes(X[:half]),
                                     "train/sub/part-1.csv": csv_bytes(X[half:]),
                                     "train/.hidden.csv": b"junk,not,numbers\n"})
    assert train(tmp_path, "pca") == 0
    assert_trained(root, X)
    assert json.loads((root / "output" / "data" / "metrics.json").read_text()) == {}


def test_trains_from_recordio_protobuf_and_default_content_type(tmp_path, X):
    root = make_job(tmp_path, channels={"train": {"TrainingInputMode": "File"}},  # default: protobuf
                    files={"train/matrix_0.pbr": protobuf_bytes(X.astype(np.float64))})
    assert train(tmp_path, "PCA") == 0  # the SDK class name works as well as the image name
    assert_trained(root, X)


def test_trains_in_pipe_mode_from_fifos(tmp_path, X):
    hp = {**HP, "algorithm_mode": "randomized"}
    root = make_job(tmp_path, hyperparameters=hp, channels={
        "train": {"ContentType": "application/x-recordio-protobuf", "TrainingInputMode": "Pipe"}})
    data_dir = root / "input" / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    payload = protobuf_bytes(X)
    opened = []

    def writer():  # SageMaker's side: FIFO train_<epoch>, the next one once the previous is consumed
        epoch = 0
        while not done.is_set():
            fifo = data_dir / f"train_{epoch}"
            os.mkfifo(fifo)
            try:
                with open(fifo, "wb") as stream:  # blocks until the algorithm opens the epoch
                    opened.append(epoch)
                    stream.write(payload)
            except BrokenPipeError:
                pass
            epoch += 1

    done = threading.Event()
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    code = train(tmp_path, "pca")
    done.set()
    for fifo in data_dir.glob("train_*"):  # release the writer waiting on the epoch nobody reads
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
    thread.join(timeout=10)
    assert code == 0, (root / "output" / "failure").read_text()
    file_mode = sagelocal.estimator("pca", **hp).fit(X)
    model = sagelocal.load(root / "model")
    np.testing.assert_allclose(model.predict(X[:20]), file_mode.predict(X[:20]), atol=1e-4)
    assert opened[:3] == [0, 1, 2]  # one epoch per pass: sketch, power iterations, Rayleigh-Ritz


@pytest.mark.parametrize("hyperparameters, expected", [
    ({**HP, "num_components": "0"}, "hyperparameter 'num_components' must be an integer >= 1; got '0'"),
    ({**HP, "algorithm_mode": "fast", "subtract_mean": "yes"}, "2 invalid hyperparameters"),
    ({"num_components": "3"}, "missing required hyperparameter 'feature_dim'"),
    ({**HP, "bogus": "1"}, "unknown hyperparameter 'bogus'"),
])
def test_invalid_hyperparameters_write_the_failure_file(tmp_path, X, hyperparameters, expected):
    root = make_job(tmp_path, hyperparameters=hyperparameters, files={"train/a.csv": csv_bytes(X)})
    assert train(tmp_path, "pca") == 1
    failure = (root / "output" / "failure").read_text()
    assert failure.startswith("ClientError: ") and expected in failure
    assert not (root / "model" / "sagelocal.json").exists()


@pytest.mark.parametrize("files, channels, expected", [
    ({"train/a.csv": b"1,2,3\n4,x,6\n"}, None, "a.csv"),
    ({"train/a.pbr": b"\x00\x01\x02\x03garbage"}, {"train": {"ContentType": "application/x-recordio-protobuf"}},
     "a.pbr"),
    ({"train/a.csv": b"1,2\n"}, {"train": {"ContentType": "text/libsvm"}}, "content type 'text/libsvm'"),
    ({"train/a.csv": b"1,2\n"}, {"training": {}}, "Extraneous channel found: training"),
    ({}, {"test": {"ContentType": "text/csv"}}, "Missing required channel: train"),
    ({"train/a.csv": csv_bytes(np.ones((3, 5)))}, None, "5 features but hyperparameter feature_dim is 12"),
])
def test_unreadable_data_writes_the_failure_file(tmp_path, files, channels, expected):
    root = make_job(tmp_path, channels=channels, files=files)
    assert train(tmp_path, "pca") == 1
    failure = (root / "output" / "failure").read_text()
    assert failure.startswith("ClientError: ") and expected in failure, failure


def test_unknown_algorithm_and_choice_by_environment(tmp_path, X, monkeypatch):
    root = make_job(tmp_path, files={"train/a.csv": csv_bytes(X)})
    assert train(tmp_path, "no-such-algorithm") == 1
    assert "unknown algorithm 'no-such-algorithm'; available: " in (root / "output" / "failure").read_text()
    (root / "output" / "failure").unlink()
    monkeypatch.setenv("SAGELOCAL_ALGORITHM", "pca")
    assert train(tmp_path) == 0


def run_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "sagelocal.cli", *args], capture_output=True, text=True,
                          timeout=300, **kwargs)


def test_command_line_train_and_predict(tmp_path, X):
    root = make_job(tmp_path, files={"train/a.csv": csv_bytes(X)})
    done = run_cli("train", "--root", str(root), "--algorithm", "pca")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "training complete" in done.stdout
    (tmp_path / "rows.csv").write_bytes(csv_bytes(X[:3]))
    answer = run_cli("predict", "--model", str(root / "model" / "model.tar.gz"), "--input",
                     str(tmp_path / "rows.csv"), "--content-type", "text/csv")
    assert answer.returncode == 0, answer.stderr
    body = json.loads(answer.stdout)
    expected = sagelocal.load(root / "model").predict_records(X[:3])
    assert list(body) == ["projections"]
    np.testing.assert_allclose([r["projection"] for r in body["projections"]],
                               [r["projection"] for r in expected], rtol=1e-6)
    lines = run_cli("predict", "--model", str(root / "model"), "--input", str(tmp_path / "rows.csv"),
                    "--accept", "application/jsonlines")
    assert [list(json.loads(line)) for line in lines.stdout.splitlines()] == [["projection"]] * 3
    bad = run_cli("train", "--root", str(tmp_path / "empty"), "--algorithm", "pca")
    assert bad.returncode == 1 and (tmp_path / "empty" / "output" / "failure").exists()


def test_demo_runs_the_main_job(tmp_path):
    done = run_cli("demo", "--output", str(tmp_path / "demo"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert '{"projections": [{"projection": [' in done.stdout
    assert (tmp_path / "demo" / "opt_ml" / "model" / "model.tar.gz").is_file()


def test_channel_content_types_resolve_aliases_and_raw_channels(tmp_path):
    from sagelocal.base.registry import get_class
    from sagelocal.container import Layout, open_channels

    layout = Layout(tmp_path)
    deepar = get_class("forecasting-deepar")
    for alias in ("json", "json.gz", "application/jsonlines", "parquet"):  # DeepAR's documented types
        channel = open_channels(deepar, layout, {"train": {"ContentType": alias}})["train"]
        assert channel.content_type in ("application/jsonlines", "application/x-parquet")
    seq2seq = get_class("seq2seq")
    channels = open_channels(seq2seq, layout, {"train": {}, "validation": {},
                                               "vocab": {"ContentType": "application/json"}})
    assert set(channels) == {"train", "validation", "vocab"}  # vocab files are read by the algorithm itself
    with pytest.raises(sagelocal.ChannelError, match="content type 'text/csv' is not supported by seq2seq"):
        open_channels(seq2seq, layout, {"train": {"ContentType": "text/csv"}, "validation": {}, "vocab": {}})


def test_command_line_predict_uses_the_algorithms_own_codecs(tmp_path):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    model = sagelocal.estimator("xgboost", objective="binary:logistic", num_round="5").fit(X, y)
    model.save(tmp_path / "model")
    (tmp_path / "rows.csv").write_bytes(csv_bytes(X[:4]))
    answer = run_cli("predict", "--model", str(tmp_path / "model"), "--input", str(tmp_path / "rows.csv"))
    assert answer.returncode == 0, answer.stderr
    scores = [float(line) for line in answer.stdout.replace(",", "\n").split()]  # XGBoost answers text/csv
    np.testing.assert_allclose(scores, model.predict(X[:4]), rtol=1e-6)
    refused = run_cli("predict", "--model", str(tmp_path / "model"), "--input", str(tmp_path / "rows.csv"),
                      "--accept", "image/png")
    assert refused.returncode == 1 and "HTTP 406" in refused.stderr
