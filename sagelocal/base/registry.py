"""SageMaker's algorithm names (image names and SDK v2 class names) -> estimator classes."""

from __future__ import annotations

from typing import Any

from .errors import HyperparameterError, UnknownAlgorithmError

#: Every SageMaker built-in, by image name, with its SDK v2 class name where the SDK has one.
BUILTINS: dict[str, str | None] = {
    "linear-learner": "LinearLearner", "xgboost": "XGBoost", "kmeans": "KMeans", "pca": "PCA",
    "knn": "KNN", "factorization-machines": "FactorizationMachines", "randomcutforest": "RandomCutForest",
    "lda": "LDA", "ntm": "NTM", "ipinsights": "IPInsights", "object2vec": "Object2Vec",
    "blazingtext": None, "seq2seq": None, "forecasting-deepar": None, "image-classification": None,
    "object-detection": None, "semantic-segmentation": None,
}

_CLASSES: dict[str, type] = {}
_ALIASES: dict[str, str] = {}


def register(cls: type) -> type:
    """Class decorator: make ``cls`` reachable by its image name and its SDK class name."""
    name = cls.algorithm
    if name not in BUILTINS:
        raise ValueError(f"{name!r} is not a SageMaker built-in algorithm name")
    _CLASSES[name] = cls
    for alias in (name, cls.sdk_class, cls.__name__):
        if alias:
            _ALIASES[alias.lower()] = name
    return cls


def algorithms() -> list[str]:
    """The image names of the algorithms implemented in this version, sorted."""
    return sorted(_CLASSES)


def get_class(name: str) -> type:
    """The estimator class for an image name or SDK class name (case-insensitive)."""
    key = _ALIASES.get(str(name).lower())
    if key is not None:
        return _CLASSES[key]
    available = ", ".join(algorithms())
    lowered = str(name).lower()
    if lowered in BUILTINS or lowered in {(c or "").lower() for c in BUILTINS.values()}:
        raise UnknownAlgorithmError(f"algorithm '{name}' is a SageMaker built-in that sagelocal does "
                                    f"not implement yet; available: {available}")
    raise UnknownAlgorithmError(f"unknown algorithm '{name}'; available: {available} (SageMaker image "
                                f"names or SDK class names)")


def estimator(name: str, **hyperparameters: Any):
    """A new estimator of algorithm ``name`` from SageMaker-style strings or typed values.

    Values are parsed by their declared kinds and validated now, with every rule ``fit`` runs before it
    reads data: each value, the required ones, the rules combining parameters (e.g. Linear Learner's
    multiclass ``num_classes``) and the sagelocal options; all problems are reported together in one
    :class:`HyperparameterError`. Required values that ``fit`` can take from the data (such as
    ``feature_dim``) may be left out; the rules that need them run in ``fit``.
    """
    cls = get_class(name)
    hyperparameters = cls.hyperparameters.canonical(hyperparameters)
    options = {k: hyperparameters.pop(k) for k in list(hyperparameters) if k in cls.option_defaults()}
    problems, parsed = [], {}
    for table, values in ((cls.hyperparameters, hyperparameters), (cls.option_table(), options)):
        try:
            parsed.update(table.parse(values))
        except HyperparameterError as error:  # each value first, options included, all together
            problems += error.problems
    if problems:
        raise HyperparameterError(cls.algorithm, problems)
    given = {k: parsed[k] for k in [*hyperparameters, *options]}
    estimator = cls(**given)
    estimator.validate_hyperparameters()
    return estimator
