"""DeepAR forecasting (``forecasting-deepar``): estimator, network, features and data formats."""

from .estimator import DeepAR

__all__ = ["DeepAR"]
