"""Content-type parsing and the :func:`sagelocal.io.read` dispatcher (gzip, streams, unsupported types)."""

from __future__ import annotations

import gzip
import io
import os
import threading

import numpy as np
import pytest

from sagelocal.base.errors import DataFormatError, UnsupportedContentTypeError
from sagelocal.io import parse_content_type, read, write_recordio_protobuf
from sagelocal.io.readers import READERS


@pytest.mark.parametrize("value, expected", [
    ("text/csv", ("text/csv", {})),
    ("text/CSV; label_size=0", ("text/csv", {"label_size": "0"})),
    ("text/csv;label_size=1", ("text/csv", {"label_size": "1"})),
    ("csv", ("text/csv", {})),
    ("CSV ; Label_Size = 2 ;", ("text/csv", {"label_size": "2"})),
    ("libsvm", ("text/libsvm", {})),
    ("text/x-libsvm", ("text/libsvm", {})),
    ("parquet", ("application/x-parquet", {})),
    ("recordio-protobuf", ("application/x-recordio-protobuf", {})),
    ("application/JSONLINES", ("application/jsonlines", {})),
    ("application/json;verbose", ("application/json", {"verbose": ""})),
    ("application/json; verbose=True", ("application/json", {"verbose": "True"})),
    ('application/json; infer_max_seqlens="10,20"; x="a;b\\"c"',
     ("application/json", {"infer_max_seqlens": "10,20", "x": 'a;b"c'})),
])
def test_parse_content_type(value, expected):
    assert parse_content_type(value) == expected


@pytest.mark.parametrize("value", ["", "   ", "text", "text/", "text/csv; =1", None])
def test_malformed_content_type(value):
    with pytest.raises(UnsupportedContentTypeError):
        parse_content_type(value)


def recordio_bytes(X, y=None) -> bytes:
    out = io.BytesIO()
    write_recordio_protobuf(out, X, y)
    return out.getvalue()


def test_unsupported_content_type_lists_supported():
    with pytest.raises(UnsupportedContentTypeError) as info:
        read(io.BytesIO(b""), "application/x-image", channel="train")
    message = str(info.value)
    assert "application/x-image" in message and "text/csv" in message and "x-recordio-protobuf" in message
    assert info.value.http_status == 415 and "channel 'train'" in message


def test_registry_holds_csv_and_recordio():
    assert {"text/csv", "application/x-recordio-protobuf"} <= set(READERS)


def test_dispatch_by_content_type(tmp_path):
    X = np.arange(6, dtype=np.float32).reshape(3, 2)
    path = tmp_path / "part"
    path.write_bytes(recordio_bytes(X, [1, 2, 3]))
    (batch,) = list(read(path, "recordio-protobuf"))
    np.testing.assert_array_equal(batch.features, X)
    (batch,) = list(read(io.BytesIO(b"1,2\n3,4\n"), "text/csv; label_size=0"))
    assert batch.labels is None and batch.features.shape == (2, 2)


def test_invalid_label_size_parameter():
    with pytest.raises(DataFormatError, match="label_size"):
        list(read(io.BytesIO(b"1,2\n"), "text/csv;label_size=abc"))


def test_gzip_detected_on_non_seekable_stream():
    X = np.random.default_rng(0).normal(size=(200, 3)).astype(np.float32)
    data = gzip.compress(recordio_bytes(X))
    read_fd, write_fd = os.pipe()

    def writer():
        with os.fdopen(write_fd, "wb", buffering=0) as out:
            out.write(data[:1])  # the magic arrives split across writes
            out.write(data[1:])

    thread = threading.Thread(target=writer)
    thread.start()
    with os.fdopen(read_fd, "rb", buffering=0) as stream:
        batches = list(read(stream, "application/x-recordio-protobuf", batch_size=64))
    thread.join()
    np.testing.assert_array_equal(np.concatenate([b.features for b in batches]), X)


def test_plain_stream_is_not_consumed_by_gzip_detection():
    stream = io.BytesIO(b"1,2\n")
    (batch,) = list(read(stream, "text/csv"))
    np.testing.assert_array_equal(batch.labels, [1])


def test_corrupt_gzip_names_channel_and_file(tmp_path):
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(b"1,2\n" * 1000)[:40])
    with pytest.raises(DataFormatError, match="gzip") as info:
        list(read(path, "text/csv", channel="validation"))
    assert "bad.gz" in str(info.value) and "validation" in str(info.value)


def test_missing_file_names_file(tmp_path):
    with pytest.raises(DataFormatError, match="nope.csv"):
        list(read(tmp_path / "nope.csv", "text/csv"))


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "data.pbr"
    path.write_bytes(b"not recordio")
    with pytest.raises(DataFormatError, match="data.pbr.*record 1"):
        list(read(str(path), "application/x-recordio-protobuf", channel="train"))


def test_file_is_closed_after_reading(tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(b"1,2\n" * 10)
    batches = read(path, "text/csv", batch_size=3)
    next(batches)
    batches.close()  # an abandoned generator closes its file (no ResourceWarning)
    assert len(list(read(path, "text/csv", batch_size=3))) == 4
