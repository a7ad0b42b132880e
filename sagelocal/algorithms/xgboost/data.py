"""Training data as the SageMaker XGBoost container reads it, and the xgboost library behind an import.

Channels hold ``text/csv`` (no header; column 0 the label; with ``csv_weights=1`` column 1 the instance
weight; the delimiter sniffed from the first line of the first object), ``text/libsvm``
(``label[:weight] index:value ...``), ``application/x-parquet`` (column 0 the label) or
``application/x-recordio-protobuf`` (``features`` and ``label`` tensors). Every object comes from the
channel (:meth:`sagelocal.io.Channel.streams`), in its order and shard, so File/Pipe mode, sharding,
shuffling, manifests, gzip and the RecordIO wrapper apply; rows are parsed by :func:`sagelocal.io.read`.
Ranking data (libsvm with ``qid:`` tokens, which sagelocal.io does not read) goes through XGBoost's own
libsvm parser, as in the container, on the channel's local files (:meth:`~sagelocal.io.Channel.local_files`).

Pipe mode: the 2023 developer guide lists File and Pipe; the 3.0-5 container refuses Pipe in every
loader. sagelocal follows the guide for CSV, Parquet and RecordIO-protobuf (the FIFO is read once) and
refuses it for libsvm, which never supported Pipe.
"""

from __future__ import annotations

import csv
import io
import warnings
from contextlib import closing
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ...base.batch import ArraySource, Batch
from ...base.errors import ChannelError, DataFormatError, MissingDependencyError, UnsupportedContentTypeError
from ...io import content_types as ct
from ...io import is_channel, read

_READ_BATCH = 1 << 20  # rows per batch read: one batch per object for most channels
_DELIMITERS = ",\t;| "
_FIRST_LINE_BYTES = 1 << 20


def xgboost_module():
    """The ``xgboost`` package, imported on first use; :class:`MissingDependencyError` when it is not installed."""
    try:
        import xgboost
    except ImportError as exc:
        raise MissingDependencyError(f"the xgboost algorithm needs the xgboost library, which is not installed: "
                                     f"pip install 'sagelocal[xgboost]' (it installs xgboost-cpu; use the xgboost "
                                     f"package for CUDA GPUs); {exc}") from None
    return xgboost


@dataclass
class Rows:
    """Training rows: features (float32, dense or CSR), labels and optional instance weights."""

    features: np.ndarray | sp.csr_matrix
    labels: np.ndarray
    weights: np.ndarray | None = None
    #: Query ids of ranking data (libsvm ``qid:`` tokens), one per row, rows of a query adjacent.
    qid: np.ndarray | None = None

    def __len__(self) -> int:
        return self.features.shape[0]

    def dmatrix(self, nthread: int | None = None, *, aft: bool = False):
        """The rows as an ``xgboost.DMatrix`` (NaN is missing, as in the container).

        ``aft``: survival:aft needs label bounds, which the container never sets (its AFT jobs fail in
        XGBoost); sagelocal gives every row the interval [label, label], an observed survival time.
        """
        xgb = xgboost_module()
        matrix = xgb.DMatrix(self.features, label=self.labels, weight=self.weights, qid=self.qid, missing=np.nan,
                             nthread=nthread or -1)
        if aft:
            matrix.set_float_info("label_lower_bound", self.labels)
            matrix.set_float_info("label_upper_bound", self.labels)
        return matrix

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        """The rows of ``parts`` in order: CSR padded to the widest part when any part is sparse (libsvm);
        dense parts must agree on their width."""
        if len(parts) == 1:
            return parts[0]
        width = max(p.features.shape[1] for p in parts)
        if any(sp.issparse(p.features) for p in parts):  # libsvm: each file is as wide as its largest index
            features = sp.vstack([_csr(p.features, width) for p in parts], format="csr")
        elif len({p.features.shape[1] for p in parts}) > 1:
            raise DataFormatError(f"the files have different numbers of columns: "
                                  f"{sorted({p.features.shape[1] for p in parts})}")
        else:
            features = np.concatenate([p.features for p in parts])
        weights = None
        if any(p.weights is not None for p in parts):
            weights = np.concatenate([p.weights if p.weights is not None else np.ones(len(p), np.float32)
                                      for p in parts])
        qid = None
        if any(p.qid is not None for p in parts):  # keep the queries of different files apart
            offsets = np.cumsum([0] + [int(p.qid.max()) + 1 if p.qid is not None and len(p) else 1 for p in parts])
            qid = np.concatenate([(p.qid if p.qid is not None else np.zeros(len(p), np.int64)) + offset
                                  for p, offset in zip(parts, offsets)])
        return Rows(features, np.concatenate([p.labels for p in parts]), weights, qid)


def _csr(features, width: int) -> sp.csr_matrix:
    matrix = sp.csr_matrix(features, dtype=np.float32)
    matrix.resize((matrix.shape[0], width))
    return matrix


def read_rows(source, *, csv_weights: int = 0, name: str = "train") -> Rows:
    """The labelled rows of a training source (arrays, a :class:`sagelocal.io.Channel`, any data source).

    Raises :class:`DataFormatError` when the data has no labels or no rows.
    """
    if isinstance(source, ArraySource):
        rows = _from_batch(Batch(source.features, source.labels, source.weights), name)
    elif is_channel(source):
        rows = _read_channel(source, csv_weights, name)
    else:
        batches = list(source.batches(_READ_BATCH, epoch=0))
        if not batches:
            raise DataFormatError("no rows", channel=name)
        rows = _from_batch(Batch.concat(batches), name)
    if len(rows) == 0:
        raise DataFormatError(f"No data in {name} channel", channel=name)
    return rows


def _from_batch(batch: Batch, name: str, weight_column: bool = False) -> Rows:
    if batch.labels is None:
        raise DataFormatError("XGBoost trains on labelled rows; this data has no labels (CSV: the label is the "
                              "first column; libsvm: the first token; protobuf: the 'label' tensor)", channel=name)
    labels = np.asarray(batch.labels, dtype=np.float32)
    weights = batch.weights
    if weight_column:  # read with label_size=2: column 0 the label, column 1 the instance weight
        labels, weights = labels[:, 0].copy(), labels[:, 1].copy()
    elif labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    return Rows(batch.features, labels, None if weights is None else np.asarray(weights, dtype=np.float32))


# ------------------------------------------------------------------------------------------ channels
def _read_channel(channel, csv_weights: int, name: str) -> Rows:
    media, params = ct.parse_content_type(channel.content_type)
    pipe = channel.input_mode == "Pipe"
    if media == ct.CSV:
        if params.get("label_size", "1").strip() != "1":
            raise UnsupportedContentTypeError(f"{channel.content_type} is not an accepted csv ContentType. "
                                              f"Optional parameter label_size must be equal to 1", channel=name)
        return _read_csv(channel, csv_weights == 1, pipe, name)
    if media == ct.LIBSVM:
        if pipe:
            raise ChannelError(f"channel '{name}': Pipe mode not supported for LibSVM")
        return _read_libsvm(channel, name)
    if media in (ct.PARQUET, ct.RECORDIO_PROTOBUF):
        return Rows.concat([_read_object(stream, channel.content_type, name) for _, stream in channel.streams()])
    raise UnsupportedContentTypeError(f"{channel.content_type} is not an accepted ContentType: text/csv, "
                                      f"text/libsvm, application/x-parquet, application/x-recordio-protobuf",
                                      channel=name)


def _read_object(stream, content_type: str, name: str, weight_column: bool = False) -> Rows:
    """The rows of one object (a binary stream from the channel)."""
    batches = list(read(stream, content_type, batch_size=_READ_BATCH, channel=name))
    if not batches:
        raise DataFormatError("no rows", channel=name, source=getattr(stream, "name", None))
    return _from_batch(Batch.concat(batches), name, weight_column)


def _first_lines(channel, count: int | None = None) -> list[tuple[str, bytes]]:
    """``(name, first line)`` of the channel's first ``count`` objects (all when None), read from its streams.

    File mode only: the objects are read again afterwards (a Pipe-mode FIFO could not be).
    """
    with closing(channel.streams()) as objects:
        return [(shown, stream.readline(_FIRST_LINE_BYTES)) for shown, stream in islice(objects, count)]


def _read_csv(channel, weights: bool, pipe: bool, name: str) -> Rows:
    content_type = f"{ct.CSV};label_size={2 if weights else 1}"
    delimiter = ","
    if not pipe:  # a FIFO cannot be read twice: Pipe-mode CSV is comma-separated, as the container's mlio reader
        [(shown, line)] = _first_lines(channel, 1)
        delimiter = sniff_delimiter(line.decode("utf-8", "replace"), name=name, source=shown)
    parts = []
    for shown, stream in channel.streams():
        if delimiter != ",":
            stream = io.BytesIO(stream.read().replace(delimiter.encode(), b","))
            stream.name = shown
        parts.append(_read_object(stream, content_type, name, weights))
    return Rows.concat(parts)


def sniff_delimiter(line: str, *, name: str | None = None, source: str | None = None) -> str:
    """The delimiter of a CSV line, sniffed among ``, TAB ; | space`` (comma when the line has one column)."""
    line = line.strip().lstrip("\ufeff")
    if "," in line or not any(d in line for d in _DELIMITERS):
        return ","
    try:
        return csv.Sniffer().sniff(line, delimiters=_DELIMITERS).delimiter
    except csv.Error as exc:
        raise DataFormatError(f"Could not determine delimiter on line {line[:50]!r}: {exc}", channel=name,
                              source=source) from None


def _read_libsvm(channel, name: str) -> Rows:
    """File mode: each object through sagelocal.io, but ranking files (``qid:`` on the first line) through
    XGBoost's own parser on the channel's local file, as the container reads them (0-based indices)."""
    ranking = [b" qid:" in line for _, line in _first_lines(channel)]
    parts: dict[int, Rows] = {}
    if not all(ranking):
        for i, (_, stream) in enumerate(channel.streams()):
            if not ranking[i]:
                parts[i] = _read_object(stream, ct.LIBSVM, name)
    if any(ranking):
        for i, path in enumerate(channel.local_files()):
            if ranking[i]:
                parts[i] = _read_ranking_file(path, name)
    return Rows.concat([parts[i] for i in range(len(ranking))])


def _read_ranking_file(path: Path, name: str) -> Rows:
    """One libsvm file with query ids, parsed by XGBoost (which sagelocal.io leaves to it)."""
    xgb = xgboost_module()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # XGBoost 3 marks text-file URIs as deprecated
            matrix = xgb.DMatrix(f"{Path(path).resolve()}?format=libsvm")
    except xgb.core.XGBoostError as exc:
        raise DataFormatError(f"Failed to load libsvm data: {str(exc).splitlines()[0]}", channel=name,
                              source=str(path)) from None
    weights = matrix.get_weight()
    group_ptr = matrix.get_uint_info("group_ptr")
    qid = np.repeat(np.arange(len(group_ptr) - 1), np.diff(group_ptr)) if len(group_ptr) > 1 else None
    return Rows(sp.csr_matrix(matrix.get_data(), dtype=np.float32), matrix.get_label(),
                weights if weights.size else None, qid)
