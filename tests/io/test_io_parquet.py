"""Parquet: label in the first column, pandas as the oracle, bounded reads, pyarrow optional."""

from __future__ import annotations

import builtins
import gzip
import io
import os
import threading

import numpy as np
import pandas as pd
import pytest

from sagelocal.base.errors import DataFormatError, MissingDependencyError
from sagelocal.io import Batch, read
from sagelocal.io.parquet import read_parquet

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def parquet_bytes(frame: pd.DataFrame, **kwargs) -> bytes:
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), out, **kwargs)
    return out.getvalue()


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"target": rng.integers(0, 2, 50), "x1": rng.normal(size=50),
                         "x2": rng.normal(size=50).astype(np.float32), "flag": rng.integers(0, 2, 50) == 1})


def test_first_column_is_the_label(frame, tmp_path):
    path = tmp_path / "train.parquet"
    path.write_bytes(parquet_bytes(frame, row_group_size=16))
    batches = list(read(path, "application/x-parquet", batch_size=20))
    assert [len(b) for b in batches] == [20, 20, 10]
    batch = Batch.concat(batches)
    expected = frame.to_numpy(dtype=np.float32)  # pandas' own conversion is the oracle
    np.testing.assert_array_equal(batch.labels, expected[:, 0])
    np.testing.assert_array_equal(batch.features, expected[:, 1:])


def test_label_size_parameter_and_alias(frame):
    (batch,) = list(read(io.BytesIO(parquet_bytes(frame)), "parquet;label_size=0", batch_size=100))
    assert batch.labels is None and batch.features.shape == (50, 4)
    (batch,) = list(read(io.BytesIO(parquet_bytes(frame)), "application/x-parquet;label_size=2", batch_size=100))
    assert batch.labels.shape == (50, 2) and batch.features.shape == (50, 2)


def test_nulls_become_nan():
    frame = pd.DataFrame({"y": pd.array([1, None, 0], dtype="Int64"), "x": [1.5, None, 2.0]})
    (batch,) = list(read_parquet(io.BytesIO(parquet_bytes(frame))))
    np.testing.assert_array_equal(batch.labels, [1, np.nan, 0])
    np.testing.assert_array_equal(batch.features[:, 0], [1.5, np.nan, 2.0])


def test_non_numeric_column_is_named():
    frame = pd.DataFrame({"y": [1, 0], "city": ["a", "b"]})
    with pytest.raises(DataFormatError, match=r"column 1 \('city'\).*numeric") as info:
        list(read(io.BytesIO(parquet_bytes(frame)), "application/x-parquet", channel="train"))
    assert info.value.record == 1 and info.value.source == "<BytesIO>"


def test_not_parquet_and_gzip_and_fifo_streams(frame, tmp_path):
    with pytest.raises(DataFormatError, match="not a readable Parquet file"):
        list(read(io.BytesIO(b"1,2\n"), "application/x-parquet"))
    (batch,) = list(read(io.BytesIO(gzip.compress(parquet_bytes(frame))), "application/x-parquet", batch_size=64))
    assert len(batch) == 50
    read_fd, write_fd = os.pipe()  # a non-seekable stream, as in Pipe mode
    data = parquet_bytes(frame)

    def writer():
        with os.fdopen(write_fd, "wb") as out:
            out.write(data)

    thread = threading.Thread(target=writer)
    thread.start()
    with os.fdopen(read_fd, "rb", buffering=0) as stream:
        batches = list(read(stream, "application/x-parquet", batch_size=64))
    thread.join()
    assert sum(len(b) for b in batches) == 50


def test_missing_pyarrow_names_the_extra(monkeypatch, frame):
    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(MissingDependencyError, match=r"pip install 'sagelocal\[parquet\]'"):
        list(read(io.BytesIO(parquet_bytes(frame)), "application/x-parquet"))
