"""The algorithms; importing this package registers each one."""

from .pca import PCA

__all__ = ["PCA"]
