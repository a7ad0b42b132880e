"""The unit of data every reader yields and every algorithm consumes: :class:`Batch`.

A *data source* is anything with ``batches(batch_size, epoch=0) -> Iterator[Batch]`` that can be
asked again for the next epoch: :class:`ArraySource` for in-memory arrays and
:class:`sagelocal.io.Channel` for files and Pipe-mode FIFOs. :func:`as_source` turns what users
pass to ``fit`` into one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..base.errors import DataFormatError

Features = "np.ndarray | sp.csr_matrix"


@dataclass
class Batch:
    """Rows of one mini-batch.

    Attributes
    ----------
    features : ndarray of shape (n, d) float32, or scipy CSR matrix of shape (n, d) float32
    labels : ndarray of shape (n,) or (n, k), optional
    weights : ndarray of shape (n,), optional
    ids : sequence of length n, optional (record ids such as the protobuf ``uid``)
    """

    features: np.ndarray | sp.csr_matrix
    labels: np.ndarray | None = None
    weights: np.ndarray | None = None
    ids: list | np.ndarray | None = None

    def __len__(self) -> int:
        return self.features.shape[0]

    @property
    def feature_dim(self) -> int:
        return self.features.shape[1]

    @property
    def is_sparse(self) -> bool:
        return sp.issparse(self.features)

    def slice(self, start: int, stop: int) -> Batch:
        """Rows ``start:stop`` of this batch (views where numpy allows)."""
        return Batch(
            self.features[start:stop],
            None if self.labels is None else self.labels[start:stop],
            None if self.weights is None else self.weights[start:stop],
            None if self.ids is None else self.ids[start:stop],
        )

    @staticmethod
    def concat(batches: list[Batch]) -> Batch:
        """One batch holding the rows of ``batches`` in order (sparse if any part is sparse)."""
        if len(batches) == 1:
            return batches[0]
        feats = [b.features for b in batches]
        if any(sp.issparse(f) for f in feats):
            features = sp.vstack([sp.csr_matrix(f) for f in feats], format="csr")
        else:
            features = np.concatenate(feats)

        def cat(parts):
            if any(p is None for p in parts):
                return None
            if isinstance(parts[0], list):
                return [x for p in parts for x in p]
            return np.concatenate(parts)

        return Batch(features, cat([b.labels for b in batches]), cat([b.weights for b in batches]),
                     cat([b.ids for b in batches]))


def rebatch(batches: Iterable[Batch], batch_size: int) -> Iterator[Batch]:
    """Re-cut a stream of batches of any sizes into batches of exactly ``batch_size`` rows.

    The last batch may be shorter. Memory stays bounded by about two batches.
    """
    pending: list[Batch] = []
    count = 0
    for batch in batches:
        start = 0
        n = len(batch)
        while start < n:
            take = min(batch_size - count, n - start)
            pending.append(batch if (start == 0 and take == n) else batch.slice(start, start + take))
            count += take
            start += take
            if count == batch_size:
                yield Batch.concat(pending)
                pending, count = [], 0
    if pending:
        yield Batch.concat(pending)


def _as_features(X, what: str = "X") -> np.ndarray | sp.csr_matrix:
    """Features as float32 (dense C-ordered copy or CSR), never aliasing the caller's array."""
    if sp.issparse(X):
        out = sp.csr_matrix(X, dtype=np.float32, copy=True)
        if out.ndim != 2:
            raise DataFormatError(f"{what} must be 2-dimensional; got shape {out.shape}")
        return out
    if hasattr(X, "to_numpy"):  # pandas DataFrame / Series
        X = X.to_numpy()
    try:
        arr = np.array(X, dtype=np.float32, order="C", copy=True)
    except (TypeError, ValueError) as exc:
        raise DataFormatError(f"{what} must be numeric; {exc}") from None
    if arr.ndim != 2:
        raise DataFormatError(f"{what} must be a 2-dimensional array (rows x features); "
                              f"got shape {arr.shape}")
    return arr


class ArraySource:
    """An in-memory data source: features, optional labels and weights."""

    def __init__(self, X, y=None, weights=None, *, name: str = "train"):
        self.name = name
        self.features = _as_features(X)
        n = self.features.shape[0]
        self.labels = None if y is None else self._column(y, n, "y")
        self.weights = None if weights is None else self._column(weights, n, "weights")

    @staticmethod
    def _column(values, n: int, what: str) -> np.ndarray:
        if hasattr(values, "to_numpy"):
            values = values.to_numpy()
        try:
            arr = np.array(values, dtype=np.float32, copy=True)
        except (TypeError, ValueError) as exc:
            raise DataFormatError(f"{what} must be numeric; {exc}") from None
        if arr.shape[:1] != (n,):
            raise DataFormatError(f"{what} must have one entry per row ({n}); got shape {arr.shape}")
        return arr

    @property
    def n_rows(self) -> int:
        return self.features.shape[0]

    @property
    def feature_dim(self) -> int:
        return self.features.shape[1]

    def batches(self, batch_size: int, epoch: int = 0) -> Iterator[Batch]:
        """Consecutive batches of ``batch_size`` rows; every epoch yields the same rows."""
        whole = Batch(self.features, self.labels, self.weights)
        for start in range(0, self.n_rows, batch_size):
            yield whole.slice(start, start + batch_size)


def as_source(X, y=None, *, name: str = "train"):
    """Turn what a user passes to ``fit`` into a data source.

    Accepts a data source (anything with ``batches``), a ``(X, y)`` or ``(X,)`` tuple, numpy arrays,
    pandas DataFrames and scipy sparse matrices.
    """
    if X is None:
        return None
    if hasattr(X, "batches"):
        if y is not None:
            raise DataFormatError(f"{name}: labels come from the channel itself; do not pass y with it")
        return X
    if isinstance(X, tuple):
        if y is not None or not 1 <= len(X) <= 2:
            raise DataFormatError(f"{name}: pass a tuple as (X, y) or (X,); got a tuple of {len(X)}")
        return ArraySource(X[0], X[1] if len(X) == 2 else None, name=name)
    return ArraySource(X, y, name=name)
