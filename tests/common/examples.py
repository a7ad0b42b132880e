"""One small training example per registered algorithm, for the contract suite.

Every algorithm added to the registry must add its entry here; a test fails when one is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.conftest import low_rank


@dataclass
class Example:
    """Hyperparameters (typed) and a data maker returning ``(X, y)`` for a quick fit."""

    hyperparameters: dict[str, Any]
    make_data: Any
    #: Hyperparameters whose changes need other values to stay valid, with those values.
    companions: dict[str, dict[str, Any]] = field(default_factory=dict)


def _pca_data(seed: int = 0):
    return low_rank(n=300, d=10, spectrum=(4.0, 2.0, 1.0), noise=0.05, seed=seed), None


def _kmeans_data(seed: int = 0):
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n_samples=400, n_features=6, centers=4, random_state=seed)
    return X.astype("float32"), None


def _knn_data(seed: int = 0):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=300, n_features=8, n_informative=4, n_classes=3, random_state=seed)
    return X.astype("float32"), y.astype("float32")


def _linear_learner_data(seed: int = 0):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=300, n_features=8, n_informative=4, random_state=seed)
    return X.astype("float32"), y.astype("float32")


def _deepar_data(seed: int = 0):
    """Six monthly series of 60 points (sine season + noise, one with gaps) as SageMaker records."""
    import numpy as np

    rng = np.random.default_rng(seed)
    steps = np.arange(60)
    records = []
    for i in range(6):
        target = 10.0 + i + 3.0 * np.sin(2 * np.pi * steps / 12) + rng.normal(0.0, 0.5, len(steps))
        values = [round(float(v), 3) for v in target]
        if i == 0:
            values[5] = "NaN"
        records.append({"start": "2015-01-01 00:00:00", "target": values, "cat": [i % 2]})
    return records, None


def _seq2seq_data(seed: int = 0):
    """Forty digit strings to copy (Sockeye's system-test task, tiny)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lines = [" ".join(map(str, rng.integers(0, 10, rng.integers(1, 6)))) for _ in range(40)]
    return np.array(lines), np.array(lines)


def _blazingtext_data(seed: int = 0):
    """Sixty labelled sentences of two kinds (supervised BlazingText lines)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    words = {"pos": ["good", "great", "fine", "superb", "nice"], "neg": ["bad", "awful", "poor", "dull", "weak"]}
    lines = [f"__label__{kind} " + " ".join(rng.choice(words[kind] + ["the", "a", "film"], 6))
             for kind in ("pos", "neg") for _ in range(30)]
    return lines, None


def _xgboost_data(seed: int = 0):
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=300, n_features=8, n_informative=4, random_state=seed)
    return X.astype("float32"), y.astype("float32")


EXAMPLES: dict[str, Example] = {
    "blazingtext": Example({"mode": "supervised", "epochs": 3, "buckets": 1000, "vector_dim": 8, "min_count": 1},
                           _blazingtext_data),
    "forecasting-deepar": Example({"time_freq": "M", "context_length": 6, "prediction_length": 6, "epochs": 2,
                                   "num_cells": 8, "num_layers": 1, "mini_batch_size": 16}, _deepar_data),
    "kmeans": Example({"k": 4, "mini_batch_size": 100, "init_method": "kmeans++"}, _kmeans_data),
    "knn": Example({"k": 5, "predictor_type": "classifier", "sample_size": 250, "mini_batch_size": 64}, _knn_data),
    "linear-learner": Example({"predictor_type": "binary_classifier", "num_models": 4, "epochs": 3,
                               "mini_batch_size": 64}, _linear_learner_data),
    "pca": Example({"num_components": 3, "algorithm_mode": "randomized", "mini_batch_size": 64}, _pca_data),
    "seq2seq": Example({"rnn_num_hidden": 8, "num_embed_source": 4, "num_embed_target": 4, "batch_size": 16,
                        "max_num_batches": 4, "checkpoint_frequency_num_batches": 2, "max_seq_len_source": 6,
                        "max_seq_len_target": 6, "beam_size": 2}, _seq2seq_data,
                       companions={"momentum": {"optimizer_type": "sgd"}}),
    "xgboost": Example({"num_round": 5, "objective": "binary:logistic", "max_depth": 3, "subsample": 0.8,
                        "eval_metric": "logloss,accuracy", "nthread": 1}, _xgboost_data,
                       companions={"num_class": {"objective": "multi:softprob"}}),
}


def fit_example(name: str, cls, **overrides):
    example = EXAMPLES[name]
    X, y = example.make_data()
    return cls(**{**example.hyperparameters, **overrides}).fit(X, y), X, y
