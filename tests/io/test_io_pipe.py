"""Pipe mode end to end: the local feeder writes FIFOs, channels read them."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from sagelocal.base.errors import ChannelDataError, DataFormatError
from sagelocal.base.runtime import Runtime
from sagelocal.io import Batch, Channel, write_recordio_protobuf
from sagelocal.io.pipe import PipeFeeder

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")


def recordio_bytes(X, y=None) -> bytes:
    out = io.BytesIO()
    write_recordio_protobuf(out, X, y)
    return out.getvalue()


def make_parts(folder, n_files=6, rows=5):
    """Files part-i whose rows all hold the value i, so a row tells which file it came from."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n_files):
        (folder / f"part-{i:03d}.pbr").write_bytes(recordio_bytes(np.full((rows, 2), i, np.float32)))
    return folder


def file_order(batches) -> list[int]:
    values = np.concatenate([b.features[:, 0] for b in batches]).astype(int)
    return [int(v) for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


def pipe_channel(path, **kwargs) -> Channel:
    channel = Channel(path, input_mode="Pipe", **kwargs)
    channel.timeout = 20
    return channel


def test_epochs_are_fifos_fed_in_key_order(tmp_path):
    channel = pipe_channel(make_parts(tmp_path / "train"))
    with PipeFeeder(channel) as feeder:
        for epoch in range(3):
            assert file_order(channel.batches(4, epoch=epoch)) == [0, 1, 2, 3, 4, 5]
    assert feeder.error is None and feeder.epochs_fed == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train"]  # FIFOs removed


def test_shuffle_differs_per_epoch_and_is_reproducible(tmp_path):
    channel = pipe_channel(make_parts(tmp_path / "train"), shuffle_seed=11)
    with PipeFeeder(channel):
        orders = [file_order(channel.batches(7, epoch=e)) for e in range(3)]
    assert all(sorted(order) == list(range(6)) for order in orders)
    assert len({tuple(order) for order in orders}) > 1  # reshuffled every epoch in Pipe mode
    again = pipe_channel(tmp_path / "train", shuffle_seed=11)
    with PipeFeeder(again):
        assert [file_order(again.batches(7, epoch=e)) for e in range(3)] == orders


def test_sharded_by_s3_key_across_two_hosts(tmp_path):
    shares = []
    for host in ("algo-1", "algo-2"):
        channel = pipe_channel(make_parts(tmp_path / "train"), distribution="ShardedByS3Key",
                               runtime=Runtime(host=host, hosts=("algo-1", "algo-2")))
        with PipeFeeder(channel):
            shares.append(file_order(channel.batches(100)))
    assert shares == [[0, 2, 4], [1, 3, 5]]


def test_gzip_objects_are_decompressed_and_recordio_wrapped(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    (folder / "a.csv.gz").write_bytes(gzip.compress(b"1,10,11\n0,12,13\n"))
    (folder / "b.csv.gz").write_bytes(gzip.compress(b"1,14,15"))  # no final newline: safe when wrapped
    channel = pipe_channel(folder, content_type="text/csv", compression="Gzip", record_wrapper="RecordIO")
    with PipeFeeder(channel):
        batch = Batch.concat(list(channel.batches(10)))
    np.testing.assert_array_equal(batch.labels, [1, 0, 1])
    np.testing.assert_array_equal(batch.features, [[10, 11], [12, 13], [14, 15]])


def test_reader_closing_early_ends_the_epoch(tmp_path):
    channel = pipe_channel(make_parts(tmp_path / "train", n_files=50, rows=200))
    with PipeFeeder(channel) as feeder:
        batches = channel.batches(10, epoch=0)
        next(batches)
        batches.close()  # closes the FIFO after one batch
        assert file_order(channel.batches(10_000, epoch=1)) == list(range(50))
    assert feeder.error is None


def test_stop_without_a_reader_and_configuration_errors(tmp_path):
    channel = pipe_channel(make_parts(tmp_path / "train"))
    feeder = PipeFeeder(channel).start()
    time.sleep(0.2)  # blocked on the first FIFO: nobody reads
    started = time.monotonic()
    feeder.stop()
    assert time.monotonic() - started < 5 and not (tmp_path / "train_0").exists()
    with pytest.raises(ChannelDataError, match="does not exist"):
        PipeFeeder(pipe_channel(tmp_path / "missing"))
    with pytest.raises(ChannelDataError, match="Pipe-mode"):
        PipeFeeder(Channel(tmp_path / "train"))


def test_feeder_failure_is_reported(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    (folder / "m.manifest").write_text(json.dumps({"source-ref": "s3://b/missing"}) + "\n")
    channel = pipe_channel(folder, data_type="AugmentedManifestFile", attribute_names=["source-ref"],
                           record_wrapper="RecordIO", s3_root=tmp_path)
    with PipeFeeder(channel) as feeder:
        assert list(channel.batches(10)) == []  # the stream ends early...
    assert isinstance(feeder.error, DataFormatError) and "missing" in str(feeder.error)  # ...and says why


def test_streaming_memory_is_bounded(tmp_path):
    """A smaller version of the benchmark's 1 GB check: 96 MB through a FIFO, peak memory far below it."""
    folder = tmp_path / "train"
    folder.mkdir()
    X = np.random.default_rng(0).normal(size=(4096, 100)).astype(np.float32)
    block = recordio_bytes(X, X[:, 0])
    for i in range(6):
        with open(folder / f"part-{i}.pbr", "wb") as out:
            for _ in range(16 * 2**20 // len(block) + 1):
                out.write(block)
    total = sum(p.stat().st_size for p in folder.iterdir())
    script = textwrap.dedent(f"""
        from sagelocal.io import Channel
        from sagelocal.io.pipe import PipeFeeder

        def status(key):
            return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key)) / 1024

        channel = Channel({str(folder)!r}, input_mode="Pipe")
        base, rows = status("VmRSS"), 0
        with PipeFeeder(channel, epochs=1):
            for batch in channel.batches(1000):
                rows += len(batch)
        print(rows, status("VmHWM") - base)
    """)
    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc to read peak memory")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    rows, growth_mb = out.stdout.split()
    assert int(rows) == 6 * (16 * 2**20 // len(block) + 1) * 4096
    assert float(growth_mb) < 48, f"peak grew by {growth_mb} MB while streaming {total / 2**20:.0f} MB"
