"""Training channels: a file or a directory of files (File / FastFile mode) or Pipe-mode FIFOs.

A :class:`Channel` is a data source (``batches(batch_size, epoch)``) like
:class:`~sagelocal.io.batch.ArraySource`. In Pipe mode epoch ``e`` reads the FIFO ``<path>_<e>``
(``/opt/ml/input/data/train_0``, ``train_1``, ...), which is just another stream to the readers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from ..base.errors import ChannelDataError
from . import content_types as ct
from .batch import Batch, rebatch
from .readers import read, resolve_reader

INPUT_MODES = ("File", "Pipe", "FastFile")
_COMPRESSIONS = (None, "None", "Gzip")
_SKIPPED_PREFIXES = (".", "_")


class Channel:
    """One SageMaker input channel read as batches.

    Parameters
    ----------
    path : str or Path
        File mode: a data file or a directory (read recursively in sorted path order, skipping names
        that start with ``.`` or ``_``). Pipe mode: the channel path without the epoch suffix, e.g.
        ``/opt/ml/input/data/train``.
    content_type : str, optional
        The channel's ``ContentType``; ``default_content_type`` when None.
    input_mode : {"File", "Pipe", "FastFile"}
        FastFile reads like File.
    name : str
        The channel name, used in error messages.
    compression : {None, "None", "Gzip"}
        The channel's ``CompressionType``. Gzip is detected from the data's magic bytes whatever this
        says, since in Pipe mode SageMaker decompresses before writing to the FIFO.

    Attributes
    ----------
    timeout : float
        Seconds to wait for a Pipe-mode FIFO to appear (default 60).
    poll_interval : float
        Seconds between checks for the FIFO.
    """

    def __init__(self, path, content_type: str | None = None, input_mode: str = "File", *,
                 name: str = "train", default_content_type: str = ct.RECORDIO_PROTOBUF,
                 compression: str | None = None):
        if input_mode not in INPUT_MODES:
            raise ChannelDataError(f"TrainingInputMode must be one of {', '.join(INPUT_MODES)}; "
                                   f"got {input_mode!r}", channel=name)
        if compression not in _COMPRESSIONS:
            raise ChannelDataError(f"CompressionType must be 'None' or 'Gzip'; got {compression!r}",
                                   channel=name)
        self.path = Path(path)
        self.name = name
        self.content_type = content_type or default_content_type
        self.input_mode = input_mode
        self.compression = None if compression == "None" else compression
        self.timeout = 60.0
        self.poll_interval = 0.05
        resolve_reader(self.content_type, channel=name)  # an unsupported content type fails here, not mid-fit

    @classmethod
    def from_config(cls, name: str, data_dir, config: dict, *,
                    default_content_type: str = ct.RECORDIO_PROTOBUF) -> Channel:
        """The channel ``name`` described by its ``inputdataconfig.json`` entry, under ``data_dir``.

        Reads ``ContentType`` (default ``default_content_type``), ``TrainingInputMode`` (default File)
        and ``CompressionType`` (default None).
        """
        return cls(Path(data_dir) / name, config.get("ContentType"), config.get("TrainingInputMode", "File"),
                   name=name, default_content_type=default_content_type,
                   compression=config.get("CompressionType"))

    def __repr__(self) -> str:
        return (f"Channel({str(self.path)!r}, content_type={self.content_type!r}, "
                f"input_mode={self.input_mode!r}, name={self.name!r})")

    def batches(self, batch_size: int, epoch: int = 0) -> Iterator[Batch]:
        """Batches of exactly ``batch_size`` rows (the last may be shorter) for ``epoch``.

        File mode reads the same files every epoch; Pipe mode reads the FIFO of that epoch once.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        yield from rebatch(self._file_batches(batch_size, epoch), batch_size)

    def _file_batches(self, batch_size: int, epoch: int) -> Iterator[Batch]:
        sources = [self.wait_for_pipe(epoch)] if self.input_mode == "Pipe" else self.files()
        first = None  # (layout, file) of the first batch: every file must match it
        for source in sources:
            for batch in read(source, self.content_type, batch_size=batch_size, channel=self.name):
                layout = _layout(batch)
                if first is None:
                    first = layout, source
                elif layout != first[0]:  # rebatching would fail or silently drop the labels
                    raise ChannelDataError(f"rows have {_describe(layout)} but '{first[1]}' has "
                                           f"{_describe(first[0])}", channel=self.name, source=str(source))
                yield batch

    def files(self) -> list[Path]:
        """The data files of a File-mode channel, in the order they are read."""
        if not self.path.exists():
            raise ChannelDataError(f"path '{self.path}' does not exist", channel=self.name)
        if not self.path.is_dir():
            return [self.path]
        found, seen = [], set()
        for root, dirs, names in os.walk(self.path, followlinks=True):
            real = os.path.realpath(root)
            if real in seen:  # a symlink loop: each real directory is read once
                dirs[:] = []
                continue
            seen.add(real)
            dirs[:] = [d for d in dirs if not d.startswith(_SKIPPED_PREFIXES)]
            found += [Path(root, n) for n in names if not n.startswith(_SKIPPED_PREFIXES)]
        if not found:
            raise ChannelDataError(f"no data files under '{self.path}' (names starting with '.' or '_' are "
                                   f"skipped)", channel=self.name)
        # S3 key order, as SageMaker lists a prefix: by the path below the channel, compared as a string
        return sorted(found, key=lambda p: p.relative_to(self.path).as_posix())

    def pipe_path(self, epoch: int) -> Path:
        """The FIFO SageMaker creates for ``epoch``: ``<path>_<epoch>``."""
        return self.path.with_name(f"{self.path.name}_{epoch}")

    def wait_for_pipe(self, epoch: int) -> Path:
        """Wait until the FIFO of ``epoch`` exists (it may be created only after the previous one closed)."""
        fifo = self.pipe_path(epoch)
        deadline = time.monotonic() + self.timeout
        while not fifo.exists():
            if time.monotonic() >= deadline:
                raise ChannelDataError(f"Pipe-mode input '{fifo}' for epoch {epoch} did not appear within "
                                       f"{self.timeout:g} s", channel=self.name)
            time.sleep(self.poll_interval)
        return fifo


def _layout(batch: Batch) -> tuple:
    return batch.feature_dim, None if batch.labels is None else batch.labels.shape[1:]


def _describe(layout: tuple) -> str:
    width, labels = layout
    what = "no labels" if labels is None else "one label each" if labels == () else f"{labels[0]} labels each"
    return f"{width} features and {what}"
