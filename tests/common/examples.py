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


EXAMPLES: dict[str, Example] = {
    "pca": Example({"num_components": 3, "algorithm_mode": "randomized", "mini_batch_size": 64}, _pca_data),
}


def fit_example(name: str, cls, **overrides):
    example = EXAMPLES[name]
    X, y = example.make_data()
    return cls(**{**example.hyperparameters, **overrides}).fit(X, y), X, y
