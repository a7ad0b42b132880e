"""Channels: File mode directories, gzip, Pipe mode FIFOs, inputdataconfig.json."""

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


# --- sharding, shuffling, configuration -------------------------------------

def make_parts(folder, n_files=7):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_files):
        (folder / f"part-{i:02d}.pbr").write_bytes(recordio_bytes(np.full((2, 2), i, np.float32)))
    return folder


@pytest.mark.parametrize("n_files", [7, 1])
def test_sharded_by_s3_key_gives_disjoint_shares_covering_the_channel(tmp_path, n_files):
    from sagelocal.base.runtime import Runtime

    folder = make_parts(tmp_path / "train", n_files)
    hosts = ("algo-1", "algo-2")
    shares = [set(Channel(folder, distribution="ShardedByS3Key", runtime=Runtime(host=h, hosts=hosts)).objects())
              for h in hosts]
    every = set(Channel(folder).files())
    assert shares[0].isdisjoint(shares[1]) and shares[0] | shares[1] == every
    assert abs(len(shares[0]) - len(shares[1])) <= 1  # about 1/n each; with one file, one host gets none
    replicated = [set(Channel(folder, runtime=Runtime(host=h, hosts=hosts)).objects()) for h in hosts]
    assert replicated == [every, every]
    rows = [features_of(Channel(folder, distribution="ShardedByS3Key", runtime=Runtime(host=h, hosts=hosts))
                        .batches(100)) if shares[k] else np.zeros((0, 2)) for k, h in enumerate(hosts)]
    assert sum(len(r) for r in rows) == 2 * n_files


def test_shuffle_config_is_seeded_and_drawn_once_in_file_mode(tmp_path):
    folder = make_parts(tmp_path / "train")
    order = Channel(folder, shuffle_seed=3).objects()
    assert sorted(order) == Channel(folder).files() and order != Channel(folder).files()
    assert Channel(folder, shuffle_seed=3).objects() == order
    assert Channel(folder, shuffle_seed=4).objects() != order
    channel = Channel(folder, shuffle_seed=3)
    np.testing.assert_array_equal(features_of(channel.batches(3, epoch=0)), features_of(channel.batches(3, epoch=2)))
    assert features_of(channel.batches(3))[::2, 0].tolist() == [float(p.name[5:7]) for p in order]


def test_from_config_reads_every_field(tmp_path):
    from sagelocal.base.runtime import Runtime

    make_parts(tmp_path / "train")
    config = {"ContentType": "application/x-recordio-protobuf", "TrainingInputMode": "Pipe",
              "S3DistributionType": "ShardedByS3Key", "ShuffleConfig": {"Seed": 7}, "RecordWrapperType": "RecordIO",
              "CompressionType": "Gzip"}
    channel = Channel.from_config("train", tmp_path, config, runtime=Runtime(host="algo-2", hosts=("algo-1", "algo-2")))
    assert (channel.input_mode, channel.distribution, channel.shuffle_seed, channel.record_wrapper,
            channel.compression) == ("Pipe", "ShardedByS3Key", 7, "RecordIO", "Gzip")
    for bad, message in [({"S3DistributionType": "Sharded"}, "S3DistributionType"),
                         ({"ShuffleConfig": {"seed": 1}}, "ShuffleConfig"),
                         ({"RecordWrapperType": "Lines"}, "RecordWrapperType"),
                         ({"CompressionType": "Zip"}, "CompressionType"),
                         ({"S3DataType": "AugmentedManifestFile"}, "AttributeNames")]:
        with pytest.raises(DataFormatError, match=message):
            Channel.from_config("train", tmp_path, bad)
    with pytest.raises(ChannelError, match="algo-3"):
        Channel(tmp_path, runtime=Runtime(host="algo-3", hosts=("algo-1",)))


def test_feature_dim_and_fit_accept_channels(tmp_path):
    import sagelocal
    from tests.conftest import low_rank

    X = low_rank(n=300, d=12, spectrum=(5.0, 3.0, 2.0))
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "a.pbr").write_bytes(recordio_bytes(X[:120]))
    (tmp_path / "train" / "b.pbr").write_bytes(recordio_bytes(X[120:]))
    channel = Channel(tmp_path / "train")
    assert channel.feature_dim == 12
    assert Channel(tmp_path / "train", input_mode="Pipe").feature_dim is None  # peeking would consume the epoch
    from_channel = sagelocal.PCA(num_components=3).fit(channel)  # feature_dim comes from the channel
    from_arrays = sagelocal.PCA(num_components=3).fit(X)
    np.testing.assert_allclose(from_channel.predict(X[:10]), from_arrays.predict(X[:10]), atol=1e-4)
