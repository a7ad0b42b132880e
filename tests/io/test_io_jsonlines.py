"""JSON Lines and plain text: tabular rows, non-tabular records, errors."""

from __future__ import annotations

import gzip
import io
import json

import numpy as np
import pytest
import scipy.sparse as sp

from sagelocal.base.errors import DataFormatError
from sagelocal.io import Batch, read


def lines(*objects) -> bytes:
    return "".join(json.dumps(o) + "\n" for o in objects).encode()


def read_all(data: bytes, content_type: str = "application/jsonlines", batch_size: int = 1000) -> Batch:
    return Batch.concat(list(read(io.BytesIO(data), content_type, batch_size=batch_size)))


def test_dense_features_in_both_documented_shapes():
    data = lines({"features": [1.5, 16.0, 14.0]}, {"data": {"features": {"values": [2, 3, 4]}}})
    batch = read_all(data)
    assert batch.records is None and batch.labels is None
    np.testing.assert_array_equal(batch.features, np.float32([[1.5, 16, 14], [2, 3, 4]]))


def test_sparse_features_from_keys_and_shape():
    # the documented example: keys [26, 182, 232, 243, 431] of a 2000-wide row
    data = lines({"data": {"features": {"keys": [26, 182, 232, 243, 431], "shape": [2000],
                                        "values": [1, 1, 1, 4, 1]}}},
                 {"features": [0.0] * 1999 + [7.0]})
    batch = read_all(data)
    assert sp.issparse(batch.features) and batch.features.shape == (2, 2000)
    expected = np.zeros((2, 2000), np.float32)
    expected[0, [26, 182, 232, 243, 431]] = [1, 1, 1, 4, 1]
    expected[1, 1999] = 7
    np.testing.assert_array_equal(batch.features.toarray(), expected)


def test_labels_when_records_carry_them():
    batch = read_all(lines({"features": [1, 2], "label": 1}, {"features": [3, 4], "label": 0}))
    np.testing.assert_array_equal(batch.labels, [1, 0])
    with pytest.raises(DataFormatError, match="record 2.*no 'label'"):
        read_all(lines({"features": [1, 2], "label": 1}, {"features": [3, 4]}))


def test_non_tabular_records_travel_as_dicts_with_line_numbers():
    series = [{"start": "2020-01-01 00:00:00", "target": [1, 2, None], "cat": [0]},
              {"start": "2020-01-02 00:00:00", "target": [4.0, "NaN"], "dynamic_feat": [[1, 2]]}]
    data = lines(series[0]) + b"\n" + lines(series[1])  # a blank line is skipped
    batches = list(read(io.BytesIO(gzip.compress(data)), "application/jsonlines", batch_size=1))
    assert [b.records for b in batches] == [[series[0]], [series[1]]]
    assert all(b.features is None for b in batches)
    assert [int(b.ids[0]) for b in batches] == [1, 3]
    assert len(Batch.concat(batches)) == 2


@pytest.mark.parametrize("data, message", [
    (b'{"features": [1, 2]}\n{"features": [1, 2\n', "record 2.*not valid JSON"),
    (b'{"a": 1}\n[1, 2]\n', "record 2.*JSON list, not an object"),
    (b'{"a": 1}\n\xff\xfe\n', "record 2.*not valid UTF-8"),
    (b'{"features": [1, 2]}\n{"features": [1, 2, 3]}\n', "record 2.*features has 3 values; earlier records have 2"),
    (b'{"features": [1, "x"]}\n', "record 1.*must be numbers"),
    (b'{"features": [1, 2]}\n{"start": 3}\n', "record 2.*no 'features'"),
    (b'{"data": {"features": {"keys": [5], "shape": [3], "values": [1]}}}\n',
     r"record 1.*keys must be integers in \[0, 3\)"),
    (b'{"data": {"features": {"keys": [1], "values": [1]}}}\n', "record 1.*need a 'shape'"),
    (b"[" * 100000 + b"\n", "record 1"),
])
def test_errors_name_the_line(data, message):
    with pytest.raises(DataFormatError, match=message) as info:
        read_all(data)
    assert info.value.source == "<BytesIO>"


def test_text_plain_lines_are_records(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes("__label__1 good movie\r\n\nna\u00efve text".encode())
    batches = list(read(path, "text/plain", batch_size=2))
    assert [b.records for b in batches] == [["__label__1 good movie", ""], ["na\u00efve text"]]
    assert [list(b.ids) for b in batches] == [[1, 2], [3]]
    assert batches[0].features is None and len(batches[0]) == 2


def test_text_plain_charset_and_bad_bytes():
    (batch,) = list(read(io.BytesIO("caf\u00e9\n".encode("latin-1")), "text/plain; charset=latin-1"))
    assert batch.records == ["caf\u00e9"]
    with pytest.raises(DataFormatError, match="record 2.*not valid utf-8"):
        list(read(io.BytesIO(b"ok\nbad \xff\n"), "text/plain"))
    with pytest.raises(DataFormatError, match="charset 'utf-16'"):
        list(read(io.BytesIO(b"ok\n"), "text/plain; charset=utf-16"))
