"""SageMaker's algorithm names (image names and SDK v2 class names) -> estimator classes.

:data:`IMPLEMENTED` names the module and class of each algorithm; a class is imported the first time it is
asked for, so loading a model (``sagelocal serve``, ``sagelocal.load``) imports that algorithm alone, and
``base`` never imports the algorithms package.
"""

from __future__ import annotations

import importlib
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

#: Image name -> (module, class name) of the algorithms this version implements.
IMPLEMENTED: dict[str, tuple[str, str]] = {
    "blazingtext": ("sagelocal.algorithms.blazingtext", "BlazingText"),
    "forecasting-deepar": ("sagelocal.algorithms.deepar", "DeepAR"),
    "kmeans": ("sagelocal.algorithms.kmeans", "KMeans"),
    "knn": ("sagelocal.algorithms.knn", "KNN"),
    "linear-learner": ("sagelocal.algorithms.linear_learner", "LinearLearner"),
    "pca": ("sagelocal.algorithms.pca", "PCA"),
    "seq2seq": ("sagelocal.algorithms.seq2seq", "Seq2Seq"),
    "xgboost": ("sagelocal.algorithms.xgboost", "XGBoost"),
}

_CLASSES: dict[str, type] = {}
#: lower-cased image name, SDK class name and class name -> image name
_ALIASES: dict[str, str] = {alias.lower(): name for name, (_, class_name) in IMPLEMENTED.items()
                            for alias in (name, BUILTINS.get(name) or class_name, class_name)}


def register(cls: type) -> type:
    """Class decorator: make ``cls`` reachable by its image name and its SDK class name."""
    name = cls.algorithm
    if name not in BUILTINS:
        raise ValueError(f"{name!r} is not a SageMaker built-in algorithm name")
    if name not in IMPLEMENTED:
        raise ValueError(f"add {name!r} to IMPLEMENTED in sagelocal/base/registry.py (module, class name)")
    _CLASSES[name] = cls
    return cls


def algorithms() -> list[str]:
    """The image names of the algorithms implemented in this version, sorted."""
    return sorted(IMPLEMENTED)


def get_class(name: str) -> type:
    """The estimator class for an image name or SDK class name (case-insensitive), imported on first use."""
    key = _ALIASES.get(str(name).lower())
    if key is not None:
        if key not in _CLASSES:
            module, class_name = IMPLEMENTED[key]
            importlib.import_module(module)  # its @register fills _CLASSES
            if _CLASSES.get(key) is None or _CLASSES[key].__name__ != class_name:
                raise UnknownAlgorithmError(f"{module} did not register the class {class_name} for '{key}'")
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
