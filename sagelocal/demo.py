"""``sagelocal demo``: the main job on a bundled default.

It lays out a SageMaker training job (``/opt/ml`` tree) under a local folder with scikit-learn's
handwritten digits as RecordIO-protobuf, trains PCA through the container entry point exactly as
``docker run <image> train`` would, then loads the model and answers a few requests in SageMaker's
JSON response format.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

HYPERPARAMETERS = {"feature_dim": "64", "num_components": "10", "mini_batch_size": "200",
                   "algorithm_mode": "regular", "subtract_mean": "True"}


def _layout_job(root: Path, train: np.ndarray) -> None:
    from .io import write_numpy_to_dense_tensor

    if root.exists():
        shutil.rmtree(root)
    config, data = root / "input" / "config", root / "input" / "data" / "train"
    config.mkdir(parents=True)
    data.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(HYPERPARAMETERS))
    (config / "inputdataconfig.json").write_text(json.dumps(
        {"train": {"ContentType": "application/x-recordio-protobuf", "TrainingInputMode": "File",
                   "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}}))
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "eth0"}))
    with open(data / "digits.pbr", "wb") as stream:
        write_numpy_to_dense_tensor(stream, train)


def run_demo(output: str = "sagelocal-demo") -> int:
    """Train PCA on the digits through the container layout; print results; return the exit code."""
    from sklearn.datasets import load_digits

    from . import load
    from .container import train as container_train
    from .io.codecs import encode_response

    digits = load_digits()
    X = digits.data.astype(np.float32)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    train, test = X[order[:1500]], X[order[1500:]]
    root = Path(output).resolve() / "opt_ml"
    _layout_job(root, train)
    print(f"== sagelocal demo: PCA on scikit-learn's digits ({train.shape[0]} x {train.shape[1]} "
          f"train, {test.shape[0]} test)\n== job layout: {root}\n== hyperparameters.json: "
          f"{json.dumps(HYPERPARAMETERS)}")
    start = time.perf_counter()
    code = container_train(root, "pca")
    if code != 0:
        print(f"training failed ({code}): {(root / 'output' / 'failure').read_text()}")
        return code
    print(f"== trained in {time.perf_counter() - start:.2f} s; model: {root / 'model' / 'model.tar.gz'}")
    model = load(root / "model" / "model.tar.gz")
    ratio = model.explained_variance_ratio_
    print("== explained variance ratio (largest first): " + " ".join(f"{r:.3f}" for r in ratio))
    print(f"== total explained by {len(ratio)} components: {ratio.sum():.3f}")
    from sklearn.decomposition import PCA as SklearnPCA

    anchor = SklearnPCA(len(ratio), svd_solver="full").fit(train)
    gap = np.max(np.abs(model.explained_variance_ / anchor.explained_variance_ - 1))
    print(f"== scikit-learn's PCA on the same rows: explained variances agree to {gap:.1e} (relative)")
    centred = test - model.mean_
    residual = centred - model.transform(test) @ model.components_
    print(f"== held-out reconstruction: {1 - (residual**2).sum() / (centred**2).sum():.3f} of the "
          f"test variance kept")
    body, content_type = encode_response(model.predict_records(test[:2]), "application/json",
                                         model.response_key)
    print(f"== {content_type} response for 2 test rows (most significant component last, as "
          f"SageMaker orders it):\n{body.decode()}")
    return 0
