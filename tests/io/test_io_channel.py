"""Channels (contracts §3.1-3.2): File mode directories, gzip, Pipe mode FIFOs, inputdataconfig.json."""

from __future__ import annotations

import gzip
import io
import os
import threading
import time

import numpy as np
import pytest

from sagelocal.base.errors import ChannelError, DataFormatError, UnsupportedContentTypeError
from sagelocal.io import Channel, write_recordio_protobuf


def recordio_bytes(X, y=None) -> bytes:
    out = io.BytesIO()
    write_recordio_protobuf(out, X, y)
    return out.getvalue()


def rows(start: int, n: int) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.float32).repeat(2).reshape(n, 2)


def features_of(batches) -> np.ndarray:
    return np.concatenate([b.features for b in batches])


def test_directory_read_recursively_in_sorted_order_skipping_hidden(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "_tmp").mkdir()
    (tmp_path / ".cache").mkdir()
    (tmp_path / "a.pbr").write_bytes(recordio_bytes(rows(0, 3)))
    (tmp_path / "b" / "c.pbr").write_bytes(recordio_bytes(rows(3, 4)))
    (tmp_path / "c.pbr").write_bytes(recordio_bytes(rows(7, 5)))
    for skipped in (".amazon.manifest", "_SUCCESS", "_tmp/x.pbr", ".cache/y.pbr"):
        (tmp_path / skipped).write_bytes(b"garbage")
    channel = Channel(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in channel.files()] == ["a.pbr", "b/c.pbr", "c.pbr"]
    batches = list(channel.batches(5))
    assert [len(b) for b in batches] == [5, 5, 2]  # re-cut across files
    np.testing.assert_array_equal(features_of(batches), rows(0, 12))
    np.testing.assert_array_equal(features_of(channel.batches(5, epoch=1)), rows(0, 12))


def test_single_file_and_gzip_transparent(tmp_path):
    path = tmp_path / "train.csv.gz"
    path.write_bytes(gzip.compress(b"1,2,3\n4,5,6\n7,8,9\n"))
    channel = Channel(path, "text/csv", name="train")
    batches = list(channel.batches(2))
    assert [len(b) for b in batches] == [2, 1]
    np.testing.assert_array_equal(np.concatenate([b.labels for b in batches]), [1, 4, 7])


def test_empty_channel_names_the_channel(tmp_path):
    (tmp_path / "_SUCCESS").write_bytes(b"")
    with pytest.raises(DataFormatError, match="channel 'validation'.*no data files") as info:
        list(Channel(tmp_path, name="validation").batches(10))
    assert isinstance(info.value, ChannelError)
    with pytest.raises(DataFormatError, match="does not exist"):
        list(Channel(tmp_path / "missing", name="train").batches(10))


def test_reader_errors_name_channel_and_file(tmp_path):
    (tmp_path / "good.csv").write_bytes(b"1,2\n")
    (tmp_path / "other.csv").write_bytes(b"1,2\n3,x\n")
    with pytest.raises(DataFormatError) as info:
        list(Channel(tmp_path, "text/csv", name="test").batches(10))
    assert info.value.channel == "test" and info.value.source.endswith("other.csv") and info.value.record == 2


def test_files_must_agree_on_features_and_labels(tmp_path):
    (tmp_path / "a.csv").write_bytes(b"1,2,3\n")
    (tmp_path / "b.csv").write_bytes(b"1,2\n")
    with pytest.raises(DataFormatError, match="b.csv.*2 features.*a.csv.*3 features"):
        list(Channel(tmp_path, "text/csv;label_size=0").batches(10))
    (tmp_path / "a.pbr").write_bytes(recordio_bytes(rows(0, 2), [1, 2]))
    (tmp_path / "b.pbr").write_bytes(recordio_bytes(rows(2, 2)))
    (tmp_path / "a.csv").unlink()
    (tmp_path / "b.csv").unlink()
    with pytest.raises(DataFormatError, match="channel 'train'.*b.pbr.*no labels.*a.pbr.*one label each"):
        list(Channel(tmp_path).batches(10))


def test_unsupported_content_type_fails_at_construction(tmp_path):
    with pytest.raises(UnsupportedContentTypeError, match="channel 'train'"):
        Channel(tmp_path, "image/png")
    with pytest.raises(DataFormatError, match="TrainingInputMode"):
        Channel(tmp_path, input_mode="Stream")


def test_from_config(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "d.csv").write_bytes(b"0,1,2\n")
    config = {"ContentType": "text/csv;label_size=0", "TrainingInputMode": "File",
              "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None", "CompressionType": "None"}
    channel = Channel.from_config("train", tmp_path, config)
    assert channel.content_type == "text/csv;label_size=0" and channel.compression is None
    (batch,) = list(channel.batches(10))
    assert batch.labels is None and batch.features.shape == (1, 3)
    defaults = Channel.from_config("validation", tmp_path, {})
    assert defaults.input_mode == "File" and defaults.content_type == "application/x-recordio-protobuf"
    assert defaults.path == tmp_path / "validation"
    pipe = Channel.from_config("train", tmp_path, {"TrainingInputMode": "Pipe", "CompressionType": "Gzip"})
    assert pipe.input_mode == "Pipe" and pipe.compression == "Gzip"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_pipe_mode_reads_one_fifo_per_epoch(tmp_path):
    base = tmp_path / "train"
    epochs = {0: rows(0, 7), 1: rows(100, 7)}
    errors = []

    def writer():  # what SageMaker does: create epoch e+1's FIFO only after epoch e was read
        try:
            for epoch, X in epochs.items():
                fifo = tmp_path / f"train_{epoch}"
                time.sleep(0.1)  # the reader polls until the FIFO exists
                os.mkfifo(fifo)
                with open(fifo, "wb") as out:
                    out.write(recordio_bytes(X, X[:, 0]))
        except Exception as exc:  # surfaced in the main thread
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    channel = Channel(base, input_mode="Pipe")
    channel.timeout = 10
    for epoch, X in epochs.items():
        batches = list(channel.batches(3, epoch=epoch))
        assert [len(b) for b in batches] == [3, 3, 1]
        np.testing.assert_array_equal(features_of(batches), X)
        np.testing.assert_array_equal(np.concatenate([b.labels for b in batches]), X[:, 0])
    thread.join(10)
    assert not errors


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_pipe_mode_csv_gzip(tmp_path):
    fifo = tmp_path / "validation_0"
    os.mkfifo(fifo)
    payload = gzip.compress(b"1,2\n3,4\n")

    def writer():
        with open(fifo, "wb") as out:
            out.write(payload)

    thread = threading.Thread(target=writer)
    thread.start()
    channel = Channel(tmp_path / "validation", "text/csv", "Pipe", name="validation")
    (batch,) = list(channel.batches(10))
    thread.join(10)
    np.testing.assert_array_equal(batch.labels, [1, 3])


def test_pipe_that_never_appears_is_a_clear_error(tmp_path):
    channel = Channel(tmp_path / "train", input_mode="Pipe")
    channel.timeout = 0.2
    started = time.monotonic()
    with pytest.raises(DataFormatError, match="channel 'train'.*train_3.*epoch 3.*0.2 s"):
        list(channel.batches(10, epoch=3))
    assert time.monotonic() - started < 5
