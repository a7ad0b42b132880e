"""Parquet (``application/x-parquet``, alias ``parquet``): the label in the first column.

As the SageMaker XGBoost container reads it: column 0 is the label, the remaining columns are features;
the ``label_size`` content-type parameter (default 1) works as for CSV, so ``label_size=0`` reads a file
of features only. Every column must be numeric (integers, floats, booleans, decimals); nulls become NaN.

Files are read one row group batch at a time (``ParquetFile.iter_batches``), so memory stays bounded by
the batch. Parquet keeps its index at the end of the file, so a non-seekable stream (a Pipe-mode FIFO,
gzip-compressed data) is first read whole into memory.

pyarrow is an optional dependency (``pip install sagelocal[parquet]``), imported only when a Parquet file
is read.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator

import numpy as np

from ..base.batch import Batch, rebatch
from ..base.errors import DataFormatError, MissingDependencyError
from ._streams import seekable


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError("reading application/x-parquet needs pyarrow, which is not installed: "
                                     "pip install 'sagelocal[parquet]'") from None
    return pa, pq


def read_parquet(stream, batch_size: int = 1000, *, label_size: int = 1, source: str | None = None,
                 channel: str | None = None) -> Iterator[Batch]:
    """Read a Parquet file or binary stream as batches of exactly ``batch_size`` rows (the last may be shorter).

    Features are float32 of shape (n, columns - label_size); labels as for CSV (none, (n,) or
    (n, label_size)). A file that is not Parquet, a non-numeric column or a corrupt page raises
    :class:`DataFormatError` naming the file, the column and the first row of the failing batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    if isinstance(label_size, bool) or not isinstance(label_size, (int, np.integer)) or label_size < 0:
        raise DataFormatError(f"label_size must be an integer >= 0; got {label_size!r}", channel=channel,
                              source=source)
    if source is None:
        name = getattr(stream, "name", None)
        source = name if isinstance(name, str) else f"<{type(stream).__name__}>"
    where = {"channel": channel, "source": source}
    return rebatch(_tables(stream, batch_size, int(label_size), where), batch_size)


def _tables(stream, batch_size: int, label_size: int, where: dict) -> Iterator[Batch]:
    pa, pq = _pyarrow()
    if not seekable(stream) or isinstance(stream, gzip.GzipFile):  # FIFOs, HTTP bodies, gzip: the index is at
        stream = io.BytesIO(stream.read())  # the end, and seeking backwards in gzip decompresses again
    # pyarrow reports corrupt files through several exception types (ArrowInvalid, OSError, ...), all
    # of which mean the same thing here: the data cannot be read.
    try:
        parquet = pq.ParquetFile(stream)
        schema = parquet.schema_arrow
    except Exception as exc:  # noqa: BLE001 - see above
        raise DataFormatError(f"not a readable Parquet file: {exc}", record=1, **where) from None
    _check_columns(pa, schema, label_size, where)
    row = 1
    batches = parquet.iter_batches(batch_size=max(batch_size, 1 << 14))
    while True:
        try:
            record_batch = next(batches, None)
            if record_batch is None:
                return
            table = _numbers(pa, record_batch)
        except Exception as exc:  # noqa: BLE001 - see above
            raise DataFormatError(f"corrupt Parquet data: {exc}", record=row, **where) from None
        row += len(table)
        if len(table) == 0:
            continue
        features = np.ascontiguousarray(table[:, label_size:])
        if label_size == 0:
            yield Batch(features)
        else:
            yield Batch(features, np.ascontiguousarray(table[:, 0] if label_size == 1 else table[:, :label_size]))


def _check_columns(pa, schema, label_size: int, where: dict) -> None:
    types = pa.types
    for i, field in enumerate(schema):
        kind = field.type
        if not (types.is_integer(kind) or types.is_floating(kind) or types.is_boolean(kind)
                or types.is_decimal(kind) or types.is_null(kind)):
            raise DataFormatError(f"column {i} ('{field.name}') has type {kind}; every column must be numeric",
                                  record=1, **where)
    if label_size >= len(schema):
        raise DataFormatError(f"label_size={label_size} but the file has {len(schema)} columns, leaving no "
                              f"feature columns", record=1, **where)


def _numbers(pa, record_batch) -> np.ndarray:
    """The batch's columns as one float32 (rows, columns) array, nulls as NaN."""
    table = np.empty((record_batch.num_rows, record_batch.num_columns), np.float32)
    for j, column in enumerate(record_batch.columns):
        if not pa.types.is_floating(column.type):  # integers, booleans, decimals, nulls: NaN for a null
            column = column.cast(pa.float64(), safe=False)
        with np.errstate(over="ignore", invalid="ignore"):  # a double beyond float32's range becomes inf
            table[:, j] = column.to_numpy(zero_copy_only=False)
    return table
