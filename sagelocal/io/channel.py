"""Training channels: a file or a directory of files (File / FastFile mode) or Pipe-mode FIFOs.

A :class:`Channel` is a data source (``batches(batch_size, epoch)``) like
:class:`~sagelocal.base.batch.ArraySource`, configured with the fields of a channel's
``inputdataconfig.json`` entry:

- ``TrainingInputMode``: File and FastFile read the channel's files; Pipe reads epoch ``e`` from the
  FIFO ``<path>_<e>`` (``/opt/ml/input/data/train_0``, ``train_1``, ...), which is just another stream
  to the readers. The writer side of Pipe mode is :class:`sagelocal.io.pipe.PipeFeeder`.
- ``S3DistributionType``: ``FullyReplicated`` gives every host every object; ``ShardedByS3Key``
  gives host ``i`` of ``n`` (from ``resourceconfig.json``, via :class:`~sagelocal.base.runtime.Runtime`)
  objects ``i, i + n, ...`` of the (shuffled) key order (sagelocal's rule; AWS does not document its own).
- ``ShuffleConfig``: a seeded permutation of the objects (of the lines of an augmented manifest),
  derived from ``(Seed, epoch)``: drawn once in File mode, anew every epoch in Pipe mode.
- ``S3DataType``: ``S3Prefix`` (the folder's files), ``ManifestFile`` (the folder holds manifests listing
  ``s3://`` objects), ``AugmentedManifestFile`` (JSON lines; ``AttributeNames`` select what is read).
- ``RecordWrapperType`` and ``CompressionType`` shape the Pipe-mode stream (each object in one RecordIO
  frame; gzip). Gzip data is recognised by its magic bytes in every mode.

In Pipe mode the writer has already sharded and shuffled the objects, so the reading side only reads.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..base.batch import Batch, rebatch
from ..base.errors import ChannelDataError
from ..base.runtime import Runtime
from . import content_types as ct
from ._streams import open_object
from .manifest import check_attribute_names, line_records, manifest_lines, read_attribute_frames, read_manifest
from .readers import read, resolve_reader
from .recordio import iter_recordio

INPUT_MODES = ("File", "Pipe", "FastFile")
DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")
DATA_TYPES = ("S3Prefix", "ManifestFile", "AugmentedManifestFile")
RECORD_WRAPPERS = ("None", "RecordIO")
COMPRESSIONS = ("None", "Gzip")
SKIPPED_PREFIXES = (".", "_")
_MANIFEST_BATCH = 1024


class Channel:
    """One SageMaker input channel read as batches.

    Parameters
    ----------
    path : str or Path
        File mode: a data file or a directory (read recursively, skipping names that start with ``.`` or
        ``_``); for manifests, the manifest file or a directory of them. Pipe mode: the channel path
        without the epoch suffix, e.g. ``/opt/ml/input/data/train``.
    content_type : str, optional
        The channel's ``ContentType``; ``default_content_type`` when None.
    input_mode : {"File", "Pipe", "FastFile"}
    name : str
        The channel name, used in error messages.
    compression : {None, "None", "Gzip"}
        ``CompressionType``. Gzip data is detected from its magic bytes whatever this says.
    distribution : {"FullyReplicated", "ShardedByS3Key"}
        ``S3DistributionType``.
    shuffle_seed : int, optional
        ``ShuffleConfig.Seed``; None reads objects in key order.
    record_wrapper : {None, "None", "RecordIO"}
        ``RecordWrapperType`` of a Pipe-mode stream.
    data_type : {"S3Prefix", "ManifestFile", "AugmentedManifestFile"}
    attribute_names : sequence of str, optional
        ``AttributeNames`` of an augmented manifest (required for one).
    s3_root : str or Path, optional
        Folder where ``s3://bucket/key`` is ``<s3_root>/bucket/key``; default ``$SAGELOCAL_S3_ROOT``.
    runtime : Runtime, optional
        This host and all hosts (``resourceconfig.json``), for ``ShardedByS3Key``; default one host.

    Attributes
    ----------
    timeout : float
        Seconds to wait for a Pipe-mode FIFO to appear (default 60).
    poll_interval : float
        Seconds between checks for the FIFO.
    """

    def __init__(self, path, content_type: str | None = None, input_mode: str = "File", *,
                 name: str = "train", default_content_type: str = ct.RECORDIO_PROTOBUF,
                 compression: str | None = None, distribution: str = "FullyReplicated",
                 shuffle_seed: int | None = None, record_wrapper: str | None = None, data_type: str = "S3Prefix",
                 attribute_names=None, s3_root=None, runtime: Runtime | None = None):
        self.name = name
        _check_choice("TrainingInputMode", input_mode, INPUT_MODES, name)
        _check_choice("S3DistributionType", distribution, DISTRIBUTIONS, name)
        _check_choice("S3DataType", data_type, DATA_TYPES, name)
        _check_choice("CompressionType", compression or "None", COMPRESSIONS, name)
        _check_choice("RecordWrapperType", record_wrapper or "None", RECORD_WRAPPERS, name)
        if shuffle_seed is not None and (isinstance(shuffle_seed, bool) or not isinstance(shuffle_seed, int)):
            raise ChannelDataError(f"ShuffleConfig.Seed must be an integer; got {shuffle_seed!r}", channel=name)
        self.path = Path(path)
        self.content_type = content_type or default_content_type
        self.input_mode, self.distribution, self.data_type = input_mode, distribution, data_type
        self.compression = None if compression in (None, "None") else compression
        self.record_wrapper = None if record_wrapper in (None, "None") else record_wrapper
        self.shuffle_seed = shuffle_seed
        self.attribute_names = None
        if data_type == "AugmentedManifestFile":
            self.attribute_names = check_attribute_names(attribute_names, channel=name)
        self.s3_root = s3_root
        self.runtime = runtime or Runtime()
        if self.runtime.host not in self.runtime.hosts:
            raise ChannelDataError(f"host '{self.runtime.host}' is not among the hosts {list(self.runtime.hosts)}",
                                   channel=name)
        self.timeout = 60.0
        self.poll_interval = 0.05
        if not self._reads_attributes():  # an unsupported content type fails here, not mid-fit
            resolve_reader(self.content_type, channel=name)

    @classmethod
    def from_config(cls, name: str, data_dir, config: dict, *, default_content_type: str = ct.RECORDIO_PROTOBUF,
                    runtime: Runtime | None = None, s3_root=None) -> Channel:
        """The channel ``name`` described by its ``inputdataconfig.json`` entry, under ``data_dir``.

        Reads ``ContentType`` (default ``default_content_type``), ``TrainingInputMode`` (File),
        ``S3DistributionType`` (FullyReplicated), ``ShuffleConfig`` (none), ``RecordWrapperType`` and
        ``CompressionType`` (None), and sagelocal's pass-through keys ``S3DataType`` (S3Prefix) and
        ``AttributeNames``.
        """
        shuffle = config.get("ShuffleConfig")
        if shuffle is not None and (not isinstance(shuffle, dict) or "Seed" not in shuffle):
            raise ChannelDataError(f'ShuffleConfig must be {{"Seed": <integer>}}; got {shuffle!r}', channel=name)
        return cls(Path(data_dir) / name, config.get("ContentType"), config.get("TrainingInputMode", "File"),
                   name=name, default_content_type=default_content_type,
                   compression=config.get("CompressionType"),
                   distribution=config.get("S3DistributionType", "FullyReplicated"),
                   shuffle_seed=None if shuffle is None else shuffle["Seed"],
                   record_wrapper=config.get("RecordWrapperType"),
                   data_type=config.get("S3DataType", "S3Prefix"),
                   attribute_names=config.get("AttributeNames"), s3_root=s3_root, runtime=runtime)

    def _reads_attributes(self) -> bool:
        """Whether records are augmented-manifest attributes (else the content type's reader parses bytes)."""
        return self.data_type == "AugmentedManifestFile" and (self.input_mode != "Pipe"
                                                              or self.record_wrapper == "RecordIO")

    def __repr__(self) -> str:
        return (f"Channel({str(self.path)!r}, content_type={self.content_type!r}, "
                f"input_mode={self.input_mode!r}, name={self.name!r})")

    # ------------------------------------------------------------------------------------ reading
    def batches(self, batch_size: int, epoch: int = 0) -> Iterator[Batch]:
        """Batches of exactly ``batch_size`` rows (the last may be shorter) for ``epoch``.

        File mode reads this host's objects every epoch; Pipe mode reads the FIFO of that epoch once.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        source = self._pipe_batches(batch_size, epoch) if self.input_mode == "Pipe" else self._file_batches(batch_size)
        yield from rebatch(_checked(source, self.name), batch_size)

    def _file_batches(self, batch_size: int) -> Iterator[tuple[Batch, str]]:
        if self.data_type != "AugmentedManifestFile":
            yield from self._object_batches(batch_size, epoch=0)
            return
        items = self.objects(epoch=0)  # File mode: one shuffle for the whole job
        for start in range(0, len(items), _MANIFEST_BATCH):
            part = items[start:start + _MANIFEST_BATCH]
            yield line_records(part, self.attribute_names, self.s3_root, self.name), part[0][0]

    def _pipe_batches(self, batch_size: int, epoch: int) -> Iterator[tuple[Batch, str]]:
        if self.data_type != "AugmentedManifestFile" or self.record_wrapper is None:
            # unwrapped manifest attributes are plain bytes: the content type's reader splits them
            yield from self._object_batches(batch_size, epoch)
            return
        fifo = self.wait_for_pipe(epoch)
        with open(fifo, "rb") as stream:
            for batch in read_attribute_frames(stream, self.attribute_names, batch_size, source=str(fifo),
                                               channel=self.name):
                yield batch, str(fifo)

    def _object_batches(self, batch_size: int, epoch: int) -> Iterator[tuple[Batch, str]]:
        for name, source in self._object_sources(epoch):  # readers open and gunzip the sources themselves
            for batch in read(source, self.content_type, batch_size=batch_size, channel=self.name):
                yield batch, name

    def streams(self, epoch: int = 0) -> Iterator[tuple[str, object]]:
        """This host's objects for ``epoch`` as ``(name, binary stream)`` pairs, in the channel's order.

        For algorithms that parse whole objects themselves (series records, sentence pairs, corpora): File
        mode opens the objects of :meth:`objects` (sharded, shuffled once for the job, manifests resolved);
        Pipe mode reads the FIFO of ``epoch`` (already sharded and shuffled by the writer) as one stream,
        or, with ``RecordWrapperType: RecordIO``, each frame as one object. Gzip is decompressed in every
        mode. Each stream is closed when the caller moves to the next one.
        """
        if self.data_type == "AugmentedManifestFile":
            raise ChannelDataError("an AugmentedManifestFile channel holds attribute records, not objects; "
                                   "read it with batches()", channel=self.name)
        for name, source in self._object_sources(epoch):
            with open_object(source, channel=self.name) as stream:
                yield name, stream

    def _object_sources(self, epoch: int) -> Iterator[tuple[str, object]]:
        """``(name, path or in-memory object)`` for each object of ``epoch``, not yet opened."""
        if self.input_mode != "Pipe":
            for path in self.objects(epoch=0):  # File mode: one shuffle for the whole job
                yield str(path), path
            return
        fifo = self.wait_for_pipe(epoch)
        if self.record_wrapper is None:
            yield str(fifo), fifo
            return
        with open(fifo, "rb") as raw:
            for number, payload in enumerate(iter_recordio(raw, source=str(fifo), channel=self.name), 1):
                name = f"{fifo} (object {number})"  # each frame wraps one whole object
                yield name, _Named(payload, name)

    def local_files(self) -> list[Path]:
        """File mode: this host's object files in read order, for a library that reads files itself (XGBoost's
        own libsvm parser). Pipe mode has no files, and an augmented manifest has no objects."""
        if self.input_mode == "Pipe" or self.data_type == "AugmentedManifestFile":
            raise ChannelDataError(f"a {self.input_mode}-mode {self.data_type} channel has no local files; read "
                                   f"it with streams() or batches()", channel=self.name)
        return [Path(p) for p in self.objects(epoch=0)]

    # ---------------------------------------------------------------------------------- objects
    def objects(self, epoch: int = 0) -> list:
        """This host's objects in read order for ``epoch``: file paths, or ``(manifest, line, object)``
        entries of an augmented manifest. Shuffled and sharded as the channel's configuration says."""
        if self.data_type == "S3Prefix":
            items = self.files()
        elif self.data_type == "ManifestFile":
            items = [p for manifest in self.files() for p in read_manifest(manifest, s3_root=self.s3_root,
                                                                           channel=self.name)]
        else:
            items = [line for manifest in self.files() for line in manifest_lines(manifest, channel=self.name)]
        hosts = self.runtime.hosts
        return plan(items, distribution=self.distribution, host_index=hosts.index(self.runtime.host),
                    host_count=len(hosts), seed=self.shuffle_seed, epoch=epoch)

    def files(self) -> list[Path]:
        """The files under the channel path (data files, or manifests), in S3 key order."""
        return list_files(self.path, channel=self.name)

    @property
    def feature_dim(self) -> int | None:
        """Columns of the first row of a File-mode channel of a tabular type with a declared width.

        None in Pipe mode (peeking would consume the epoch), for libsvm (no declared width), for
        non-tabular records and for a channel without rows.
        """
        if self.input_mode == "Pipe" or self.data_type == "AugmentedManifestFile":
            return None
        if ct.parse_content_type(self.content_type)[0] == ct.LIBSVM:
            return None
        for path in self.objects():
            for batch in read(path, self.content_type, batch_size=1, channel=self.name):
                return batch.feature_dim
        return None

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


def is_channel(value) -> bool:
    """Whether ``value`` is a training channel (rather than in-memory data or a path)."""
    return isinstance(value, Channel)


def _check_choice(field: str, value, allowed: tuple[str, ...], channel: str) -> None:
    if value not in allowed:
        raise ChannelDataError(f"{field} must be one of {', '.join(allowed)}; got {value!r}", channel=channel)


class _Named(io.BytesIO):
    """An in-memory object that names itself in error messages."""

    def __init__(self, data: bytes, name: str):
        super().__init__(data)
        self.name = name


def list_files(path: Path, *, channel: str | None = None) -> list[Path]:
    """The files of a channel path: the path itself, or the files below it (recursively, following links,
    skipping names that start with ``.`` or ``_``), sorted as S3 lists keys (by relative path)."""
    path = Path(path)
    if not path.exists():
        raise ChannelDataError(f"path '{path}' does not exist", channel=channel)
    if not path.is_dir():
        return [path]
    found, seen = [], set()
    for root, dirs, names in os.walk(path, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a symlink loop: each real directory is read once
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(SKIPPED_PREFIXES)]
        found += [Path(root, n) for n in names if not n.startswith(SKIPPED_PREFIXES)]
    if not found:
        raise ChannelDataError(f"no data files under '{path}' (names starting with '.' or '_' are skipped)",
                               channel=channel)
    return sorted(found, key=lambda p: p.relative_to(path).as_posix())


def plan(items: list, *, distribution: str = "FullyReplicated", host_index: int = 0, host_count: int = 1,
         seed: int | None = None, epoch: int = 0) -> list:
    """The objects one host reads in one epoch: shuffled by ``(seed, epoch)``, then sharded by position.

    ``ShardedByS3Key`` gives host ``host_index`` the objects at positions ``host_index, host_index +
    host_count, ...``; the hosts' shares are disjoint and together hold every object.
    """
    order = list(items)
    if seed is not None and order:
        permutation = np.random.default_rng([seed % 2**64, epoch]).permutation(len(order))
        order = [order[i] for i in permutation]
    if distribution == "ShardedByS3Key":
        order = order[host_index::host_count]
    return order


def _checked(batches, channel: str) -> Iterator[Batch]:
    """Pass ``(batch, source)`` pairs through, checking that every source has the first one's layout."""
    first = None  # (layout, source) of the first batch
    for batch, source in batches:
        layout = _layout(batch)
        if first is None:
            first = layout, source
        elif layout != first[0]:  # rebatching would fail or silently drop the labels
            raise ChannelDataError(f"rows have {_describe(layout)} but '{first[1]}' has {_describe(first[0])}",
                                   channel=channel, source=source)
        yield batch


def _layout(batch: Batch) -> tuple:
    if batch.features is None:
        return "records", None
    width = None if batch.is_sparse else batch.feature_dim  # sparse rows of fewer columns are still valid
    return width, None if batch.labels is None else batch.labels.shape[1:]


def _describe(layout: tuple) -> str:
    width, labels = layout
    if width == "records":
        return "non-tabular records"
    what = "no labels" if labels is None else "one label each" if labels == () else f"{labels[0]} labels each"
    return f"{'sparse' if width is None else width} features and {what}"
