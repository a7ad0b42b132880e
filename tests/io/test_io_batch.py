"""Batch: records of non-tabular formats, and joining batches of different shapes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from sagelocal.base.errors import DataFormatError
from sagelocal.io import Batch, rebatch


def test_records_batches_slice_concat_and_rebatch():
    parts = [Batch(records=[{"a": 1}, {"a": 2}], ids=np.array([1, 2])), Batch(records=[{"a": 3}], ids=np.array([5]))]
    assert len(parts[0]) == 2 and parts[0].feature_dim is None and not parts[0].is_sparse
    joined = Batch.concat(parts)
    assert joined.features is None and joined.records == [{"a": 1}, {"a": 2}, {"a": 3}]
    assert list(joined.ids) == [1, 2, 5]
    assert joined.slice(1, 3).records == [{"a": 2}, {"a": 3}]
    assert [b.records for b in rebatch(parts, 2)] == [[{"a": 1}, {"a": 2}], [{"a": 3}]]
    with pytest.raises(DataFormatError, match="records"):
        Batch.concat([parts[0], Batch(np.zeros((1, 2), np.float32))])


def test_sparse_parts_of_different_widths_are_widened():
    narrow = Batch(sp.csr_matrix(np.array([[1, 0]], np.float32)))
    wide = Batch(sp.csr_matrix(np.array([[0, 0, 0, 2]], np.float32)))
    joined = Batch.concat([narrow, wide])
    np.testing.assert_array_equal(joined.features.toarray(), [[1, 0, 0, 0], [0, 0, 0, 2]])


def test_missing_weights_are_one_and_missing_ids_none():
    a = Batch(np.ones((2, 1), np.float32), weights=np.float32([0.5, 2]), ids=["x", "y"])
    b = Batch(np.ones((1, 1), np.float32))
    joined = Batch.concat([a, b])
    np.testing.assert_array_equal(joined.weights, [0.5, 2, 1])
    assert joined.ids == ["x", "y", None]
