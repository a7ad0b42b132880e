"""The algorithms; importing this package registers each one."""

from .blazingtext import BlazingText
from .deepar import DeepAR
from .kmeans import KMeans
from .knn import KNN
from .linear_learner import LinearLearner
from .pca import PCA
from .seq2seq import Seq2Seq
from .xgboost import XGBoost

__all__ = ["BlazingText", "DeepAR", "KMeans", "KNN", "LinearLearner", "PCA", "Seq2Seq", "XGBoost"]
