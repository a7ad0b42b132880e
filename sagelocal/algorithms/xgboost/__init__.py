"""SageMaker's XGBoost (algorithm mode): :class:`XGBoost` and the loader of SageMaker-trained models.

The xgboost library is imported on first use (``pip install sagelocal[xgboost]``). Importing this package
lets :func:`sagelocal.load` read SageMaker's own XGBoost artifacts (``xgboost-model`` files).
"""

from __future__ import annotations

from ...base.artifacts import register_foreign_loader
from .artifacts import is_sagemaker_model_dir
from .estimator import XGBoost, load_foreign, load_sagemaker_model

register_foreign_loader(is_sagemaker_model_dir, load_foreign)

__all__ = ["XGBoost", "load_sagemaker_model"]
