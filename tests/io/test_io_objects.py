"""The io door for algorithms that parse whole objects: Channel.streams, local_files, open_object, is_channel."""

from __future__ import annotations

import gzip
import io
import os

import numpy as np
import pytest

from sagelocal.base.batch import ArraySource
from sagelocal.base.errors import ChannelDataError, DataFormatError
from sagelocal.base.runtime import Runtime
from sagelocal.io import Channel, PipeFeeder, is_channel, open_object


def make_objects(folder, n=6, gzipped=True):
    """Files obj-i holding the text 'object i' (every other one gzip-compressed when ``gzipped``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        data = f"object {i}\n".encode()
        name = f"obj-{i:02d}.txt"
        if gzipped and i % 2:
            data, name = gzip.compress(data), name + ".gz"
        (folder / name).write_bytes(data)
    return folder


def texts(channel, epoch=0):
    return [stream.read().decode().strip() for _, stream in channel.streams(epoch)]


def test_file_mode_streams_in_key_order_gunzipped(tmp_path):
    channel = Channel(make_objects(tmp_path / "train"), "text/plain")
    assert texts(channel) == [f"object {i}" for i in range(6)]
    names = [name for name, _ in channel.streams()]
    assert names == [str(p) for p in channel.local_files()]


def test_streams_follow_sharding_and_shuffle(tmp_path):
    folder = make_objects(tmp_path / "train")
    hosts = ["algo-1", "algo-2"]
    shares = [texts(Channel(folder, "text/plain", distribution="ShardedByS3Key",
                            runtime=Runtime(host=h, hosts=hosts))) for h in hosts]
    assert not set(shares[0]) & set(shares[1])
    assert sorted(shares[0] + shares[1]) == [f"object {i}" for i in range(6)]
    shuffled = texts(Channel(folder, "text/plain", shuffle_seed=7))
    assert shuffled != [f"object {i}" for i in range(6)] and sorted(shuffled) == sorted(texts(Channel(folder)))
    assert shuffled == texts(Channel(folder, "text/plain", shuffle_seed=7))  # reproducible


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
@pytest.mark.parametrize("wrapper", [None, "RecordIO"])
def test_pipe_mode_streams(tmp_path, wrapper):
    folder = make_objects(tmp_path / "train", n=3, gzipped=False)  # a raw stream is the objects' bytes
    channel = Channel(folder, "text/plain", input_mode="Pipe", record_wrapper=wrapper)
    channel.timeout = 20
    with PipeFeeder(channel, epochs=1):
        got = texts(channel)
    if wrapper is None:  # one stream: the objects back to back
        assert got == ["object 0\nobject 1\nobject 2"]
    else:  # each frame is one object
        assert got == ["object 0", "object 1", "object 2"]


def test_local_files_refused_in_pipe_mode(tmp_path):
    channel = Channel(make_objects(tmp_path / "train"), "text/plain", input_mode="Pipe")
    with pytest.raises(ChannelDataError, match="no local files"):
        channel.local_files()


def test_open_object_paths_streams_and_corrupt_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"hello " * 1000))
    with open_object(path) as stream:
        assert stream.read() == b"hello " * 1000
    with open_object(io.BytesIO(b"plain")) as stream:
        assert stream.read() == b"plain"
    data = gzip.compress(os.urandom(50_000))
    (tmp_path / "bad.gz").write_bytes(data[:len(data) // 2])
    with pytest.raises(DataFormatError, match="bad.gz.*corrupt gzip"), open_object(tmp_path / "bad.gz") as stream:
        stream.read()


def test_corrupt_gzip_in_a_channel_is_a_data_error(tmp_path):
    data = gzip.compress(b"1,2,3\n" * 20000)
    (tmp_path / "a.csv.gz").write_bytes(data[:len(data) // 2])
    with pytest.raises(DataFormatError, match="a.csv.gz.*corrupt gzip"):
        list(Channel(tmp_path, "text/csv").batches(100))


def test_is_channel(tmp_path):
    assert is_channel(Channel(make_objects(tmp_path / "t"), "text/plain"))
    assert not is_channel(ArraySource(np.zeros((2, 2))))
    assert not is_channel(str(tmp_path))
