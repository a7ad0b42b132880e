"""Linear Learner (``linear-learner``): see :mod:`.estimator`."""

from .estimator import LinearLearner

__all__ = ["LinearLearner"]
