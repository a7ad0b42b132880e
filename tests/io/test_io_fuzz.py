"""Fuzzing every reader: truncated, corrupted and random input either reads or raises DataFormatError naming
the stream and the record, never another exception, never a hang."""

from __future__ import annotations

import gzip
import io
import json
import signal
from contextlib import contextmanager

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.datasets import dump_svmlight_file

from sagelocal.base.errors import DataFormatError
from sagelocal.io import read, write_numpy_to_dense_tensor, write_recordio_protobuf, write_spmatrix_to_sparse_tensor
from sagelocal.io.manifest import read_attribute_frames, read_augmented_manifest
from sagelocal.io.recordio import write_recordio

RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 4)).astype(np.float32)


def _written(writer, *args) -> bytes:
    out = io.BytesIO()
    writer(out, *args)
    return out.getvalue()


def _libsvm() -> bytes:
    out = io.BytesIO()
    dump_svmlight_file(sp.random(30, 20, density=0.2, format="csr", random_state=1), np.arange(30), out)
    return out.getvalue()


def _parquet() -> bytes:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    out = io.BytesIO()
    pq.write_table(pa.table({"y": np.arange(30.0), "a": X[:, 0], "b": np.arange(30)}), out, row_group_size=8)
    return out.getvalue()


CSV = ("\n".join(",".join(f"{v:.4g}" for v in row) for row in X) + "\n").encode()
JSONL_ROWS = "".join(json.dumps({"features": [float(v) for v in row], "label": 1}) + "\n" for row in X).encode()
JSONL_SPARSE = "".join(json.dumps({"data": {"features": {"keys": [1, 3], "shape": [5], "values": [1.5, 2]}}})
                       + "\n" for _ in range(20)).encode()
JSONL_SERIES = "".join(json.dumps({"start": "2021-01-01", "target": [1, 2, None]}) + "\n" for _ in range(20)).encode()
CORPUS = {
    "recordio-dense": ("application/x-recordio-protobuf", _written(write_recordio_protobuf, X, np.arange(30.0))),
    "recordio-int": ("application/x-recordio-protobuf",
                     _written(write_numpy_to_dense_tensor, (X * 100).astype(int), np.arange(30))),
    "recordio-sparse": ("application/x-recordio-protobuf",
                        _written(write_spmatrix_to_sparse_tensor, sp.random(30, 40, density=0.1, format="csr",
                                                                            random_state=2), np.arange(30.0))),
    "csv": ("text/csv", CSV),
    "libsvm": ("text/libsvm", _libsvm()),
    "jsonlines-rows": ("application/jsonlines", JSONL_ROWS),
    "jsonlines-sparse": ("application/jsonlines", JSONL_SPARSE),
    "jsonlines-records": ("application/jsonlines", JSONL_SERIES),
    "text": ("text/plain", CSV),
}


@contextmanager
def time_limit(seconds: float):
    """Fail instead of hanging (the readers must end on any input)."""
    def expire(signum, frame):
        raise TimeoutError(f"reader still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@st.composite
def damaged(draw, valid: bytes) -> bytes:
    """``valid`` truncated, corrupted (random or structural bytes), or replaced by random bytes; maybe gzipped."""
    how = draw(st.sampled_from(["truncate", "corrupt", "separators", "random"]))
    data = bytearray(valid)
    if how == "truncate":
        data = data[:draw(st.integers(0, len(data)))]
    elif how in ("corrupt", "separators"):
        alphabet = st.integers(0, 255) if how == "corrupt" else st.sampled_from(list(b' :\n,.-e09\t#{}[]"\r'))
        for _ in range(draw(st.integers(1, 6))):
            data[draw(st.integers(0, len(data) - 1))] = draw(alphabet)
    else:
        data = bytearray(draw(st.binary(max_size=400)))
    if draw(st.integers(0, 4)) == 0:
        data = bytearray(gzip.compress(bytes(data)))
        if draw(st.booleans()):
            data = data[:draw(st.integers(0, len(data)))]  # a truncated gzip stream
    return bytes(data)


def check(run) -> None:
    """``run()`` reads everything; a failure must be a DataFormatError naming the stream and a record."""
    try:
        with time_limit(20):
            run()
    except DataFormatError as exc:
        assert exc.source and exc.record is not None and exc.record >= 1, str(exc)
        assert exc.source in str(exc) and f"record {exc.record}" in str(exc)


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_readers_fail_only_with_named_data_format_errors(name):
    content_type, valid = CORPUS[name]

    @FUZZ
    @given(damaged(valid), st.integers(1, 16))
    def fuzz(data, batch_size):
        check(lambda: list(read(io.BytesIO(data), content_type, batch_size=batch_size)))

    fuzz()


def test_parquet_reader_fails_only_with_named_data_format_errors():
    valid = _parquet()

    @FUZZ
    @given(damaged(valid))
    def fuzz(data):
        check(lambda: list(read(io.BytesIO(data), "application/x-parquet", batch_size=5)))

    fuzz()


def test_augmented_manifest_readers_fail_only_with_named_data_format_errors(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.jpg").write_bytes(b"jpeg")
    manifest = "".join(json.dumps({"source-ref": "s3://b/x.jpg", "label": i}) + "\n" for i in range(10)).encode()
    stream = io.BytesIO()
    for i in range(10):
        write_recordio(stream, b"jpeg")
        write_recordio(stream, str(i).encode())
    frames = stream.getvalue()

    @FUZZ
    @given(damaged(manifest), damaged(frames))
    def fuzz(manifest_data, frame_data):
        check(lambda: list(read_augmented_manifest(io.BytesIO(manifest_data), ["source-ref", "label"],
                                                   s3_root=tmp_path)))
        check(lambda: list(read_attribute_frames(io.BytesIO(frame_data), ["image", "label"])))

    fuzz()
