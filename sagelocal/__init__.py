"""sagelocal: the Amazon SageMaker built-in algorithms, locally.

>>> import sagelocal
>>> est = sagelocal.estimator("pca", num_components="3")       # strings as in hyperparameters.json
>>> est = sagelocal.PCA(num_components=3)                        # or typed values
"""

from . import io
from ._version import __version__
from .algorithms import KNN, PCA, BlazingText, DeepAR, KMeans, LinearLearner, Seq2Seq, XGBoost
from .base.errors import (
    ArtifactError,
    ChannelError,
    DataFormatError,
    HyperparameterError,
    MissingDependencyError,
    NotFittedError,
    SagelocalError,
    UnknownAlgorithmError,
    UnsupportedContentTypeError,
)
from .base.registry import algorithms, estimator


def load(path, *, allow_pickle: bool = False):
    """Load a model saved by ``Estimator.save``: a model directory or its ``model.tar.gz``.

    ``allow_pickle=True`` permits pickled payloads; only use it for files you trust, since
    unpickling runs code named in the file.
    """
    from .base.artifacts import load_estimator

    return load_estimator(path, allow_pickle=allow_pickle)


__all__ = [
    "KNN", "PCA", "BlazingText", "DeepAR", "Seq2Seq", "KMeans", "LinearLearner", "XGBoost",
    "ArtifactError", "ChannelError", "DataFormatError", "HyperparameterError", "MissingDependencyError",
    "NotFittedError", "SagelocalError", "UnknownAlgorithmError", "UnsupportedContentTypeError", "__version__",
    "algorithms", "estimator", "io", "load",
]
