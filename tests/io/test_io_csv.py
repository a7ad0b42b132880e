"""CSV training data: label columns, batching, errors naming the line."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest

from sagelocal.base.errors import DataFormatError
from sagelocal.io import csv as csv_module
from sagelocal.io import read, read_csv


def read_bytes(data: bytes, batch_size: int = 1000, **kwargs) -> list:
    return list(read_csv(io.BytesIO(data), batch_size, **kwargs))


def stacked(batches, what: str):
    return np.concatenate([getattr(b, what) for b in batches])


def test_label_size_one_is_the_default():
    (batch,) = read_bytes(b"1,2,3\n0,5,6\n")
    assert batch.features.dtype == np.float32 and batch.labels.dtype == np.float32
    np.testing.assert_array_equal(batch.features, [[2, 3], [5, 6]])
    np.testing.assert_array_equal(batch.labels, [1, 0])


def test_label_size_zero_has_no_labels():
    (batch,) = read_bytes(b"1,2,3\n4,5,6\n", label_size=0)
    assert batch.labels is None
    np.testing.assert_array_equal(batch.features, [[1, 2, 3], [4, 5, 6]])


def test_label_size_two_gives_label_matrix():
    (batch,) = read_bytes(b"1,2,3\n4,5,6\n", label_size=2)
    np.testing.assert_array_equal(batch.labels, [[1, 2], [4, 5]])
    np.testing.assert_array_equal(batch.features, [[3], [6]])


def test_label_size_leaving_no_features_is_rejected():
    with pytest.raises(DataFormatError, match="label_size=2"):
        read_bytes(b"1,2\n", label_size=2)
    with pytest.raises(DataFormatError, match="label_size"):
        read_csv(io.BytesIO(b""), label_size=-1)


def test_batches_of_exact_size_across_chunks(monkeypatch):
    monkeypatch.setattr(csv_module, "_CHUNK_BYTES", 64)  # many small chunks, cut mid-line
    X = np.arange(250 * 3, dtype=np.float32).reshape(250, 3)
    data = "\n".join(",".join(str(int(v)) for v in row) for row in X).encode() + b"\n"
    batches = read_bytes(data, batch_size=40)
    assert [len(b) for b in batches] == [40] * 6 + [10]
    np.testing.assert_array_equal(stacked(batches, "features"), X[:, 1:])
    np.testing.assert_array_equal(stacked(batches, "labels"), X[:, 0])


def test_blank_lines_crlf_and_missing_final_newline():
    (batch,) = read_bytes(b"1,2\r\n\r\n\n   \n3,4\r\n5,6")
    np.testing.assert_array_equal(batch.features, [[2], [4], [6]])
    np.testing.assert_array_equal(batch.labels, [1, 3, 5])


def test_empty_cells_are_nan():
    (batch,) = read_bytes(b"1,,3\n,5,\n7, ,9\n", label_size=0)
    expected = np.array([[1, np.nan, 3], [np.nan, 5, np.nan], [7, np.nan, 9]], np.float32)
    np.testing.assert_array_equal(batch.features, expected)


def test_ragged_row_names_the_line():
    with pytest.raises(DataFormatError) as info:
        read_bytes(b"1,2,3\n\n4,5,6\n7,8\n", source="data.csv", channel="train")
    error = info.value
    assert error.record == 4 and error.source == "data.csv" and error.channel == "train"
    assert "2 columns" in str(error) and "3" in str(error)


def test_ragged_row_in_a_later_chunk_names_the_line(monkeypatch):
    monkeypatch.setattr(csv_module, "_CHUNK_BYTES", 16)
    data = b"1,2,3\n" * 20 + b"1,2\n" * 5
    with pytest.raises(DataFormatError, match="record 21"):
        read_bytes(data)


def test_non_numeric_cell_names_line_column_and_text():
    with pytest.raises(DataFormatError) as info:
        read_bytes(b"1,2\n3,4\n5,abc\n", source="x.csv")
    assert info.value.record == 3
    assert "column 2" in str(info.value) and "'abc'" in str(info.value) and "x.csv" in str(info.value)


def test_header_row_is_rejected_on_line_one():
    with pytest.raises(DataFormatError, match="record 1.*'label'"):
        read_bytes(b"label,f1\n1,2\n")


def test_text_stream_and_bom():
    (batch,) = list(read_csv(io.StringIO("\ufeff1,2\n3,4\n")))
    np.testing.assert_array_equal(batch.features, [[2], [4]])


def test_empty_input_gives_no_batches():
    assert read_bytes(b"") == []
    assert read_bytes(b"\n\n") == []


def test_gzip_file(tmp_path):
    path = tmp_path / "train.csv.gz"
    path.write_bytes(gzip.compress(b"1,2,3\n4,5,6\n"))
    (batch,) = list(read(path, "text/csv;label_size=0"))
    np.testing.assert_array_equal(batch.features, [[1, 2, 3], [4, 5, 6]])


def test_large_values_round_trip():
    X = np.random.default_rng(1).normal(size=(500, 6)).astype(np.float32)
    buffer = io.StringIO()
    np.savetxt(buffer, X, delimiter=",", fmt="%.9g")
    batches = read_bytes(buffer.getvalue().encode(), batch_size=128, label_size=0)
    np.testing.assert_array_equal(stacked(batches, "features"), X)
