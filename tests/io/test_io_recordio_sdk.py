"""Interoperability with the SageMaker Python SDK v2 and a write -> read round-trip property."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sagelocal.io import (
    encode_records,
    read_recordio_protobuf,
    write_numpy_to_dense_tensor,
    write_recordio_protobuf,
    write_spmatrix_to_sparse_tensor,
)

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
sdk = pytest.importorskip("sagemaker.amazon.common")

RNG = np.random.default_rng(7)
LABELS = {
    "none": None,
    "float32": RNG.normal(size=30).astype(np.float32),
    "float64": RNG.normal(size=30),
    "int64": RNG.integers(-3, 300, size=30),
}


def written(writer, *args) -> bytes:
    out = io.BytesIO()
    writer(out, *args)
    return out.getvalue()


def read_all(data: bytes, batch_size: int = 1000) -> list:
    return list(read_recordio_protobuf(io.BytesIO(data), batch_size))


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_dense_bytes_identical_to_sdk(dtype, label):
    X = (RNG.normal(size=(30, 70)) * 1e4).astype(dtype)  # rows over 127 bytes: multi-byte lengths
    labels = LABELS[label]
    assert written(write_numpy_to_dense_tensor, X, labels) == written(sdk.write_numpy_to_dense_tensor, X, labels)


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_sparse_bytes_identical_to_sdk(dtype, label):
    keep = np.ones(30)
    keep[4] = 0  # an all-zero row: a tensor with only a shape
    X = sp.csr_matrix(sp.diags(keep) @ sp.random(30, 500, density=0.05, format="csr", random_state=3))
    X.eliminate_zeros()
    X = (X * 1000).astype(dtype)
    assert X[4].nnz == 0
    labels = LABELS[label]
    assert (written(write_spmatrix_to_sparse_tensor, X, labels)
            == written(sdk.write_spmatrix_to_sparse_tensor, X, labels))


def test_sparse_bytes_identical_to_sdk_with_unsorted_keys_and_explicit_zeros():
    X = sp.csr_matrix((np.array([3, 0, 2, 5], np.float32), np.array([2, 1, 0, 200]), np.array([0, 3, 4])),
                      shape=(2, 300))
    assert not X.has_sorted_indices
    assert written(write_spmatrix_to_sparse_tensor, X) == written(sdk.write_spmatrix_to_sparse_tensor, X)


def test_empty_rows_identical_to_sdk():
    X = np.zeros((2, 0), np.float32)
    assert written(write_numpy_to_dense_tensor, X) == written(sdk.write_numpy_to_dense_tensor, X)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_reads_sdk_dense_output(dtype):
    X = (RNG.normal(size=(30, 5)) * 100).astype(dtype)
    y = RNG.integers(0, 2, size=30)
    batches = read_all(written(sdk.write_numpy_to_dense_tensor, X, y), batch_size=8)
    assert [len(b) for b in batches] == [8, 8, 8, 6]
    np.testing.assert_array_equal(np.concatenate([b.features for b in batches]), X.astype(np.float32))
    np.testing.assert_array_equal(np.concatenate([b.labels for b in batches]), y.astype(np.float32))


def test_reads_sdk_sparse_output():
    X = sp.random(40, 1000, density=0.02, format="csr", random_state=5, dtype=np.float64)
    (batch,) = read_all(written(sdk.write_spmatrix_to_sparse_tensor, X))
    assert sp.issparse(batch.features) and batch.features.shape == (40, 1000)
    np.testing.assert_allclose(batch.features.toarray(), X.toarray().astype(np.float32))


def test_sdk_reads_encode_records():
    body = encode_records([{"score": 0.25, "predicted_label": 1.0}, {"closest_cluster": [3.0, 4.5]}])
    records = sdk.read_records(io.BytesIO(body))
    assert len(records) == 2
    assert list(records[0].label["score"].float32_tensor.values) == [0.25]
    assert list(records[0].label["predicted_label"].float32_tensor.values) == [1.0]
    assert list(records[1].label["closest_cluster"].float32_tensor.values) == [3.0, 4.5]
    assert len(records[0].features) == 0


def test_sdk_reads_our_dense_and_sparse_output():
    X = RNG.normal(size=(3, 4)).astype(np.float32)
    records = sdk.read_records(io.BytesIO(written(write_recordio_protobuf, X, np.arange(3.0))))
    assert np.array_equal(records[2].features["values"].float32_tensor.values, X[2])
    assert list(records[2].label["values"].float32_tensor.values) == [2.0]
    records = sdk.read_records(io.BytesIO(written(write_recordio_protobuf, sp.csr_matrix(np.eye(3)))))
    tensor = records[1].features["values"].float32_tensor
    assert list(tensor.keys) == [1] and list(tensor.values) == [1.0] and list(tensor.shape) == [3]


# --- round-trip property -----------------------------------------------------------------------------------

floats = st.floats(-1e6, 1e6, width=32, allow_nan=False)


@st.composite
def datasets(draw):
    n, d = draw(st.integers(1, 25)), draw(st.integers(1, 12))
    X = draw(hnp.arrays(np.float32, (n, d), elements=floats))
    if draw(st.booleans()):
        X[draw(hnp.arrays(np.bool_, (n, d)))] = 0
        X = sp.csr_matrix(X)
    label_shape = draw(st.sampled_from([None, (n,), (n, draw(st.integers(2, 4)))]))
    y = None if label_shape is None else draw(hnp.arrays(np.float32, label_shape, elements=floats))
    return X, y, draw(st.integers(1, 30))


@settings(max_examples=150, deadline=None)
@given(datasets())
def test_write_read_round_trip(data):
    X, y, batch_size = data
    batches = read_all(written(write_recordio_protobuf, X, y), batch_size)
    assert all(len(b) == batch_size for b in batches[:-1])
    if sp.issparse(X):
        got = sp.vstack([sp.csr_matrix(b.features) for b in batches])
        assert got.shape == X.shape and (got != X).nnz == 0
    else:
        np.testing.assert_array_equal(np.concatenate([b.features for b in batches]), X)
    if y is None:
        assert all(b.labels is None for b in batches)
    else:
        np.testing.assert_array_equal(np.concatenate([b.labels for b in batches]), y)
