"""`sagelocal train` honours inputdataconfig.json for every channel, Pipe mode included."""

from __future__ import annotations

import gzip
import io
import json
import os

import numpy as np
import pytest

import sagelocal
from sagelocal.container import train
from sagelocal.io import Channel, write_recordio_protobuf
from tests.conftest import low_rank

HP = {"feature_dim": "12", "num_components": "3", "mini_batch_size": "50"}
pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")


def recordio_bytes(X) -> bytes:
    out = io.BytesIO()
    write_recordio_protobuf(out, X)
    return out.getvalue()


def csv_bytes(X) -> bytes:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in X).encode() + b"\n"


def make_job(root, channel_config, files, hyperparameters=HP, hosts=("algo-1",), host="algo-1"):
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config / "inputdataconfig.json").write_text(json.dumps({"train": channel_config}))
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": host, "hosts": list(hosts)}))
    for name, data in files.items():
        path = root / "input" / "data" / "train" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@pytest.fixture(scope="module")
def X():
    return low_rank(n=400, d=12, spectrum=(5.0, 3.0, 2.0), noise=0.05)


def parts(X, n=4, encode=recordio_bytes, suffix=".pbr"):
    return {f"part-{i}{suffix}": encode(chunk) for i, chunk in enumerate(np.array_split(X, n))}


def predictions(root, X):
    assert (root / "output" / "success").exists(), (root / "output" / "failure").read_text()
    return sagelocal.load(root / "model" / "model.tar.gz").predict(X[:20])


def test_pipe_mode_runs_end_to_end_with_the_feeder(tmp_path, X, monkeypatch):
    epochs = []
    wait = Channel.wait_for_pipe
    monkeypatch.setattr(Channel, "wait_for_pipe", lambda self, epoch: epochs.append(epoch) or wait(self, epoch))
    hp = {**HP, "algorithm_mode": "randomized"}  # 2 + power_iterations passes, one FIFO epoch each
    make_job(tmp_path, {"TrainingInputMode": "Pipe", "ContentType": "application/x-recordio-protobuf"}, parts(X), hp)
    assert train(tmp_path, "pca") == 0
    expected = sagelocal.estimator("pca", **hp).fit(X).predict(X[:20])
    np.testing.assert_allclose(predictions(tmp_path, X), expected, atol=1e-4)
    assert epochs == list(range(len(epochs))) and len(epochs) >= 3
    assert sorted(p.name for p in (tmp_path / "input" / "data").iterdir()) == ["train"]  # FIFOs removed


def test_sharded_by_s3_key_trains_on_this_hosts_share(tmp_path, X):
    files = parts(X, n=4)
    make_job(tmp_path, {"S3DistributionType": "ShardedByS3Key"}, files, hosts=("algo-1", "algo-2"), host="algo-2")
    assert train(tmp_path, "pca") == 0
    share = np.concatenate([chunk for i, chunk in enumerate(np.array_split(X, 4)) if i % 2 == 1])  # files 1 and 3
    np.testing.assert_allclose(predictions(tmp_path, X), sagelocal.estimator("pca", **HP).fit(share).predict(X[:20]),
                               atol=1e-4)


def test_pipe_mode_gzip_recordio_wrapped_csv_with_shuffle(tmp_path, X):
    files = parts(X, n=5, encode=lambda c: gzip.compress(csv_bytes(c)), suffix=".csv.gz")
    make_job(tmp_path, {"TrainingInputMode": "Pipe", "ContentType": "text/csv", "CompressionType": "Gzip",
                        "RecordWrapperType": "RecordIO", "ShuffleConfig": {"Seed": 3}}, files)
    assert train(tmp_path, "pca") == 0
    # regular PCA is the exact scatter matrix: the row order does not change it, missing rows would
    np.testing.assert_allclose(predictions(tmp_path, X), sagelocal.estimator("pca", **HP).fit(X).predict(X[:20]),
                               atol=1e-3)


def test_feeder_failure_is_the_jobs_failure(tmp_path, X):
    make_job(tmp_path, {"TrainingInputMode": "Pipe", "ContentType": "text/csv", "CompressionType": "Gzip"},
             {"part-0.csv": csv_bytes(X)})  # not gzip although the channel says so
    assert train(tmp_path, "pca") != 0
    failure = (tmp_path / "output" / "failure").read_text()
    assert failure.startswith("ClientError") and "part-0.csv" in failure and "Gzip" in failure
