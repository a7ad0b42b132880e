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
    iter_recordio_protobuf,
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
    "int64": RNG.integers(-3, 300, size=30),  # varints of 1, 2 and 10 bytes: rows of several layouts
    "int64-binary": RNG.integers(0, 2, size=30),  # one-byte varints: one layout, the writer's table path
    "int64-negative": -RNG.integers(1, 5, size=30),  # ten-byte varints: one layout too
}


def written(writer, *args) -> bytes:
    out = io.BytesIO()
    writer(out, *args)
    return out.getvalue()


def read_all(data: bytes, batch_size: int = 1000) -> list:
    return list(iter_recordio_protobuf(io.BytesIO(data), batch_size))


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
    assert list(records[2].label["values"].float64_tensor.values) == [2.0]  # float64 labels: as the SDK
    records = sdk.read_records(io.BytesIO(written(write_recordio_protobuf, sp.csr_matrix(np.eye(3)))))
    tensor = records[1].features["values"].float64_tensor  # a float64 matrix: as the SDK writes it
    assert list(tensor.keys) == [1] and list(tensor.values) == [1.0] and list(tensor.shape) == [3]


# --- write_recordio_protobuf: the SDK's bytes for every dtype the SDK writes ------------------------------
# The SDK writes float32 as Float32Tensor, float64 as Float64Tensor and numpy's default int (int64) as
# Int32Tensor, features and labels each by their own dtype. It refuses int32 arrays; write_recordio_protobuf
# writes them as the Int32Tensor the SDK writes for the same values as int64.
WRITER_LABELS = {**LABELS, "int32": RNG.integers(-3, 300, size=30).astype(np.int32)}


def _sdk_input(values):
    """What the SDK is given for ``values``: int32 as numpy's default int, the rest as they are."""
    return None if values is None else values.astype(np.int64) if values.dtype == np.int32 else values


@pytest.mark.parametrize("label", WRITER_LABELS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32"])
def test_write_recordio_protobuf_dense_is_the_sdks_bytes(dtype, label):
    X = (RNG.normal(size=(30, 70)) * 1e4).astype(dtype)
    labels = WRITER_LABELS[label]
    assert (written(write_recordio_protobuf, X, labels)
            == written(sdk.write_numpy_to_dense_tensor, _sdk_input(X), _sdk_input(labels)))


@pytest.mark.parametrize("label", WRITER_LABELS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "int32"])
def test_write_recordio_protobuf_sparse_is_the_sdks_bytes(dtype, label):
    keep = np.ones(30)
    keep[4] = 0  # an all-zero row: a tensor with only a shape
    X = sp.csr_matrix(sp.diags(keep) @ sp.random(30, 500, density=0.05, format="csr", random_state=3))
    X.eliminate_zeros()
    X = (X * 1000).astype(dtype)
    labels = WRITER_LABELS[label]
    sdk_X = X.astype(np.int64) if dtype == "int32" else X
    assert (written(write_recordio_protobuf, X, labels)
            == written(sdk.write_spmatrix_to_sparse_tensor, sdk_X, _sdk_input(labels)))


def test_write_recordio_protobuf_sparse_keeps_the_sdks_key_order_and_explicit_zeros():
    X = sp.csr_matrix((np.array([3, 0, 2, 5], np.float64), np.array([2, 1, 0, 200]), np.array([0, 3, 4])),
                      shape=(2, 300))
    assert not X.has_sorted_indices
    assert written(write_recordio_protobuf, X) == written(sdk.write_spmatrix_to_sparse_tensor, X)
    assert written(write_recordio_protobuf, X.tocoo()) == written(sdk.write_spmatrix_to_sparse_tensor, X.tocoo())


def test_write_recordio_protobuf_dataframes_and_series_are_their_arrays():
    pd = pytest.importorskip("pandas")
    X = RNG.normal(size=(30, 5))
    y = RNG.integers(0, 2, size=30)
    assert (written(write_recordio_protobuf, pd.DataFrame(X), pd.Series(y))
            == written(sdk.write_numpy_to_dense_tensor, X, y))


def test_write_recordio_protobuf_other_dtypes_stay_float32():
    """Dtypes the SDK refuses (bool, float16, small ints) are written as Float32Tensor, as before."""
    X = RNG.integers(0, 5, size=(6, 3))
    for dtype in (np.bool_, np.float16, np.int8, np.uint8):
        features, labels = X.astype(dtype), X[:, 0].astype(dtype)
        assert (written(write_recordio_protobuf, features, labels)
                == written(sdk.write_numpy_to_dense_tensor, features.astype(np.float32), labels.astype(np.float32)))


def test_write_recordio_protobuf_int_values_outside_int32_fail_like_the_sdk():
    X = np.array([[1, 2**31]])
    with pytest.raises(ValueError):
        written(sdk.write_numpy_to_dense_tensor, X)
    with pytest.raises(ValueError, match="out of range"):
        written(write_recordio_protobuf, X)


def test_write_recordio_protobuf_vector_labels_follow_their_dtype():
    """(n, k) labels, which the SDK does not write, go to label["values"] with the SDK's dtype rule."""
    X = np.ones((4, 2), np.float32)
    for dtype, field in (("float32", "float32_tensor"), ("float64", "float64_tensor"), ("int64", "int32_tensor")):
        Y = np.arange(12).reshape(4, 3).astype(dtype)
        records = sdk.read_records(io.BytesIO(written(write_recordio_protobuf, X, Y)))
        assert [list(getattr(r.label["values"], field).values) for r in records] == Y.tolist()
        assert all(list(r.features["values"].float32_tensor.values) == [1.0, 1.0] for r in records)


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


# --- whole files to arrays, both directions (the interoperability acceptance) ----------------------------

@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sdk_dense_files_read_back_as_identical_arrays(tmp_path, dtype, label):
    X = RNG.normal(size=(30, 6)).astype(dtype)
    labels = LABELS[label]
    path = tmp_path / "matrix_0.pbr"
    with open(path, "wb") as out:
        sdk.write_numpy_to_dense_tensor(out, X, labels)
    got_X, got_y = read_recordio_protobuf(path)
    assert got_X.dtype == X.dtype
    np.testing.assert_array_equal(got_X, X)
    if labels is None:
        assert got_y is None
    else:
        np.testing.assert_array_equal(got_y, labels)  # int64 labels travel as Int32Tensor: same values


@pytest.mark.parametrize("label", ["none", "float32", "int64"])
def test_sdk_sparse_files_read_back_as_identical_matrices(label):
    X = sp.random(30, 700, density=0.03, format="csr", random_state=4, dtype=np.float64)
    got_X, got_y = read_recordio_protobuf(io.BytesIO(written(sdk.write_spmatrix_to_sparse_tensor, X, LABELS[label])))
    assert sp.issparse(got_X) and got_X.shape == X.shape and got_X.dtype == np.float64
    assert (got_X != X).nnz == 0
    assert (got_y is None) == (label == "none")


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_sdk_read_records_reads_our_files(dtype, label):
    X = (RNG.normal(size=(30, 5)) * 100).astype(dtype)
    labels = LABELS[label]
    records = sdk.read_records(io.BytesIO(written(write_numpy_to_dense_tensor, X, labels)))
    field = {"float32": "float32_tensor", "float64": "float64_tensor", "int64": "int32_tensor"}[dtype]
    np.testing.assert_array_equal([list(getattr(r.features["values"], field).values) for r in records], X)
    if labels is not None:
        label_field = "int32_tensor" if label.startswith("int64") else f"{label}_tensor"
        np.testing.assert_array_equal([getattr(r.label["values"], label_field).values[0] for r in records], labels)
    sparse = sp.random(30, 50, density=0.1, format="csr", random_state=6, dtype=np.float32)
    records = sdk.read_records(io.BytesIO(written(write_spmatrix_to_sparse_tensor, sparse, labels)))
    for i, record in enumerate(records):
        tensor = record.features["values"].float32_tensor
        row = sparse[i]
        assert list(tensor.shape) == [50] and list(tensor.keys) == list(row.indices)
        np.testing.assert_array_equal(tensor.values, row.data)


def test_gzip_file_and_empty_input(tmp_path):
    import gzip

    X = RNG.normal(size=(10, 3)).astype(np.float32)
    path = tmp_path / "part.pbr.gz"
    path.write_bytes(gzip.compress(written(sdk.write_numpy_to_dense_tensor, X)))
    got_X, got_y = read_recordio_protobuf(str(path))
    np.testing.assert_array_equal(got_X, X)
    assert got_y is None
    got_X, got_y = read_recordio_protobuf(io.BytesIO(b""))
    assert got_X.shape == (0, 0) and got_y is None


# --- the vectorised path over runs of one layout against the SDK's own parse ----------------------------

@st.composite
def mixed_streams(draw):
    """SDK-written pieces whose layouts change: label varint widths, dtypes, sparse rows, uids."""
    width = draw(st.integers(1, 6))
    pieces, rows, labels = [], [], []
    for _ in range(draw(st.integers(1, 6))):
        n = draw(st.integers(1, 40))
        X = draw(hnp.arrays(np.float32, (n, width), elements=floats))
        kind = draw(st.sampled_from(["float32", "float64", "int-small", "int-mixed", "sparse"]))
        y = {"float32": X[:, 0], "float64": X[:, 0].astype(np.float64),
             "int-small": np.arange(n) % 100, "int-mixed": np.arange(n) * 97 - 50,
             "sparse": X[:, 0]}[kind]
        if kind == "sparse":
            pieces.append(written(sdk.write_spmatrix_to_sparse_tensor, sp.csr_matrix(X), y))
        else:
            pieces.append(written(sdk.write_numpy_to_dense_tensor, X.astype(y.dtype) if kind == "float64" else X, y))
        rows.append(X)
        labels.append(y.astype(np.float32))
    return b"".join(pieces), np.concatenate(rows), np.concatenate(labels)


@settings(max_examples=80, deadline=None)
@given(mixed_streams(), st.integers(1, 50))
def test_mixed_layouts_read_like_the_sdk(stream, batch_size):
    data, X, y = stream
    records = sdk.read_records(io.BytesIO(data))
    assert len(records) == len(X)
    batches = read_all(data, batch_size)
    assert all(len(b) == batch_size for b in batches[:-1])
    features = sp.vstack([sp.csr_matrix(b.features) for b in batches]).toarray()
    np.testing.assert_array_equal(features, X)
    np.testing.assert_array_equal(np.concatenate([b.labels for b in batches]), y)
