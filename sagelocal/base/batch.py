"""The unit of data every reader yields and every algorithm consumes: :class:`Batch`.

A *data source* is anything with ``batches(batch_size, epoch=0) -> Iterator[Batch]`` that can be
asked again for the next epoch: :class:`ArraySource` for in-memory arrays and
:class:`sagelocal.io.Channel` for files and Pipe-mode FIFOs. :func:`as_source` turns what users
pass to ``fit`` into one.

Tabular and non-tabular batches
-------------------------------
Tabular formats (RecordIO-protobuf, CSV, libsvm, Parquet, JSON lines in the ``{"features": ...}`` shape)
fill ``features`` (and ``labels``, ``weights``, ``ids`` where the format has them) and leave
``records`` None. Formats whose records are not rows of numbers fill ``records`` instead, one entry per
record, and leave ``features`` None:

- ``application/jsonlines`` (DeepAR series, Object2Vec pairs, ...): each record is the line's parsed JSON
  object (a ``dict``); ``ids`` holds the 1-based line numbers, so an algorithm can name the line it rejects.
- ``text/plain`` (BlazingText, NTM's vocabulary): each record is one line as ``str`` without its line
  ending; ``ids`` holds the line numbers.
- augmented manifests: each record is a ``dict`` from attribute name to the ``bytes`` SageMaker streams
  for it (the object's bytes for a ``-ref`` attribute, the text of any other value); ``ids`` holds the
  manifest line numbers (File mode) or the record's position in the stream (Pipe mode).

``len(batch)`` counts rows or records either way, and :meth:`Batch.slice`, :meth:`Batch.concat` and
:func:`rebatch` treat both kinds alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .errors import DataFormatError

Features = "np.ndarray | sp.csr_matrix"


@dataclass
class Batch:
    """Rows (or records) of one mini-batch.

    Attributes
    ----------
    features : ndarray of shape (n, d) float32, or scipy CSR matrix of shape (n, d) float32, or None
        None only for a batch of non-tabular ``records``.
    labels : ndarray of shape (n,) or (n, k), optional
    weights : ndarray of shape (n,), optional
    ids : sequence of length n, optional (record ids such as the protobuf ``uid``, or line numbers)
    records : list of length n, optional
        Non-tabular records (parsed JSON objects, text lines, augmented-manifest attributes); see the
        module docstring.
    """

    features: np.ndarray | sp.csr_matrix | None = None
    labels: np.ndarray | None = None
    weights: np.ndarray | None = None
    ids: list | np.ndarray | None = None
    records: list | None = None

    def __len__(self) -> int:
        if self.features is None:
            return 0 if self.records is None else len(self.records)
        return self.features.shape[0]

    @property
    def feature_dim(self) -> int | None:
        """Number of feature columns; None for a batch of non-tabular records."""
        return None if self.features is None else self.features.shape[1]

    @property
    def is_sparse(self) -> bool:
        return sp.issparse(self.features)

    def slice(self, start: int, stop: int) -> Batch:
        """Rows ``start:stop`` of this batch (views where numpy allows)."""
        def part(values):
            return None if values is None else values[start:stop]

        return Batch(part(self.features), part(self.labels), part(self.weights), part(self.ids),
                     part(self.records))

    @staticmethod
    def concat(batches: list[Batch]) -> Batch:
        """One batch holding the rows of ``batches`` in order (sparse if any part is sparse).

        Sparse parts of different widths (libsvm files, whose width is their largest index + 1) are
        widened to the widest; ids missing from some parts become None entries, and weights missing
        from some parts become 1.
        """
        if len(batches) == 1:
            return batches[0]
        feats = [b.features for b in batches]
        if all(f is None for f in feats):
            features = None
        elif any(f is None for f in feats):
            raise DataFormatError("cannot join a batch of records with a batch of feature rows")
        elif any(sp.issparse(f) for f in feats):
            width = max(f.shape[1] for f in feats)
            parts = [sp.csr_matrix(f) for f in feats]
            if any(p.shape[1] != width for p in parts) and all(sp.issparse(f) for f in feats):
                parts = [_widened(p, width) for p in parts]
            features = sp.vstack(parts, format="csr")
        else:
            features = np.concatenate(feats)

        def cat(parts):
            if any(p is None for p in parts):
                return None
            if isinstance(parts[0], list):
                return [x for p in parts for x in p]
            return np.concatenate(parts)

        ids = [b.ids for b in batches]
        if any(i is not None for i in ids) and any(i is None for i in ids):
            ids = [[None] * len(b) if b.ids is None else list(b.ids) for b in batches]
        weights = [b.weights for b in batches]
        if any(w is not None for w in weights) and any(w is None for w in weights):  # unweighted rows weigh 1
            weights = [np.ones(len(b), np.float32) if b.weights is None else b.weights for b in batches]
        return Batch(features, cat([b.labels for b in batches]), cat(weights), cat(ids),
                     cat([b.records for b in batches]))


def _widened(matrix: sp.csr_matrix, width: int) -> sp.csr_matrix:
    """``matrix`` with empty columns appended up to ``width`` (no copy of the stored entries)."""
    return sp.csr_matrix((matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], width))


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
