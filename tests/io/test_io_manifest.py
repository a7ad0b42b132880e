"""Manifests and augmented manifests: s3:// resolution, attributes, File and Pipe mode."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest

from sagelocal.base.errors import DataFormatError
from sagelocal.io import Batch, Channel
from sagelocal.io.manifest import (
    S3_ROOT_VARIABLE,
    read_attribute_frames,
    read_augmented_manifest,
    read_manifest,
    resolve_s3,
)
from sagelocal.io.pipe import PipeFeeder


def frame(payload: bytes) -> bytes:
    """A RecordIO frame built by hand, independent of the code under test."""
    return struct.pack("<II", 0xCED7230A, len(payload)) + payload + b"\0" * (-len(payload) % 4)


@pytest.fixture
def s3(tmp_path):
    """A local S3 root holding bucket 'b' with two images and two CSV objects."""
    root = tmp_path / "s3"
    (root / "b" / "img").mkdir(parents=True)
    (root / "b" / "img" / "1.jpg").write_bytes(b"\xff\xd8one")
    (root / "b" / "img" / "2.jpg").write_bytes(b"\xff\xd8two")
    (root / "b" / "csv").mkdir()
    (root / "b" / "csv" / "a.csv").write_bytes(b"1,2,3\n")
    (root / "b" / "csv" / "b.csv").write_bytes(b"0,5,6\n")
    return root


LINES = [{"source-ref": "s3://b/img/1.jpg", "class": 1, "meta": {"x": 1}},
         {"source-ref": "s3://b/img/2.jpg", "class": [0, 3], "meta": "unused"}]


def manifest_bytes(lines=LINES) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def test_resolve_s3(tmp_path, monkeypatch):
    assert resolve_s3("s3://bucket/a/b.csv", tmp_path) == tmp_path / "bucket" / "a" / "b.csv"
    monkeypatch.setenv(S3_ROOT_VARIABLE, str(tmp_path / "env"))
    assert resolve_s3("s3://bucket/k") == tmp_path / "env" / "bucket" / "k"
    monkeypatch.delenv(S3_ROOT_VARIABLE)
    with pytest.raises(DataFormatError, match=S3_ROOT_VARIABLE):
        resolve_s3("s3://bucket/k")
    for bad in ("http://x/y", "s3://bucket", "s3://bucket/../../etc/passwd", 42):
        with pytest.raises(DataFormatError):
            resolve_s3(bad, tmp_path)


def test_manifest_file_lists_objects(s3, tmp_path):
    path = tmp_path / "train.manifest"
    path.write_text(json.dumps([{"prefix": "s3://b/csv/"}, "a.csv", "b.csv"]))
    assert read_manifest(path, s3_root=s3) == [s3 / "b" / "csv" / "a.csv", s3 / "b" / "csv" / "b.csv"]
    channel = Channel(path, "text/csv", data_type="ManifestFile", s3_root=s3)
    batch = Batch.concat(list(channel.batches(10)))
    np.testing.assert_array_equal(batch.labels, [1, 0])
    path.write_text(json.dumps(["a.csv"]))
    with pytest.raises(DataFormatError, match="record 1.*prefix"):
        read_manifest(path, s3_root=s3)


def test_augmented_manifest_records_hold_streamed_bytes(s3):
    batches = list(read_augmented_manifest(io.BytesIO(manifest_bytes()), ["source-ref", "class"], s3_root=s3,
                                           batch_size=1))
    assert [b.records for b in batches] == [[{"source-ref": b"\xff\xd8one", "class": b"1"}],
                                            [{"source-ref": b"\xff\xd8two", "class": b"[0,3]"}]]
    assert [int(b.ids[0]) for b in batches] == [1, 2]


def test_augmented_manifest_errors_name_line(s3):
    data = manifest_bytes([LINES[0], {"source-ref": "s3://b/img/missing.jpg", "class": 0}])
    with pytest.raises(DataFormatError, match="record 2.*missing.jpg"):
        list(read_augmented_manifest(io.BytesIO(data), ["source-ref", "class"], s3_root=s3))
    with pytest.raises(DataFormatError, match="record 1.*attribute 'label'.*missing"):
        list(read_augmented_manifest(io.BytesIO(data), ["label"], s3_root=s3))
    with pytest.raises(DataFormatError, match="AttributeNames"):
        list(read_augmented_manifest(io.BytesIO(data), [], s3_root=s3))


def test_file_mode_channel_shuffles_and_shards_lines(s3, tmp_path):
    lines = [{"source": f"sentence {i}", "label": i % 2} for i in range(20)]
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "train.manifest").write_bytes(manifest_bytes(lines))
    channel = Channel(tmp_path / "m", "application/jsonlines", data_type="AugmentedManifestFile",
                      attribute_names=["source", "label"], shuffle_seed=5)
    records = Batch.concat(list(channel.batches(6))).records
    assert sorted(r["source"] for r in records) == sorted(f"sentence {i}".encode() for i in range(20))
    assert [r["source"] for r in records] != [f"sentence {i}".encode() for i in range(20)]  # shuffled
    assert records == Batch.concat(list(channel.batches(6, epoch=1))).records  # File mode: shuffled once


def test_pipe_mode_recordio_wrapped_attributes(s3, tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "train.manifest").write_bytes(manifest_bytes())
    channel = Channel(tmp_path / "train", "application/x-recordio", "Pipe", data_type="AugmentedManifestFile",
                      attribute_names=["source-ref", "class"], record_wrapper="RecordIO", s3_root=s3)
    channel.timeout = 10
    received = []
    feeder = PipeFeeder(channel, epochs=1)
    feeder._epoch_bytes = _recording(feeder._epoch_bytes, received)
    with feeder:
        (batch,) = list(channel.batches(10))
    assert feeder.error is None
    # what SageMaker streams: frame(image 1) frame("1") frame(image 2) frame("[0,3]")
    assert b"".join(received) == (frame(b"\xff\xd8one") + frame(b"1") + frame(b"\xff\xd8two") + frame(b"[0,3]"))
    assert batch.records == [{"source-ref": b"\xff\xd8one", "class": b"1"},
                             {"source-ref": b"\xff\xd8two", "class": b"[0,3]"}]


def _recording(epoch_bytes, received):
    def wrapped(epoch):
        for chunk in epoch_bytes(epoch):
            received.append(chunk)
            yield chunk
    return wrapped


def test_attribute_frames_that_stop_inside_a_record():
    with pytest.raises(DataFormatError, match="record 2.*1 of 2 attribute frames"):
        list(read_attribute_frames(io.BytesIO(frame(b"a") + frame(b"b") + frame(b"c")), ["x", "y"]))
