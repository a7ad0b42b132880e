"""RecordIO-protobuf (``application/x-recordio-protobuf``): RecordIO framing and the SDK-identical writers.

The wire format is written by hand so that sagelocal does not need the protobuf package:
dmlc RecordIO frames (:class:`FrameReader`, :func:`write_recordio`) around proto2 ``Record`` messages
(:mod:`._protobuf`) whose feature and label maps hold ``Float32Tensor`` / ``Float64Tensor`` /
``Int32Tensor`` values. Reading records into batches lives in :mod:`.recordio_reader`.

The writers reproduce the SageMaker Python SDK v2 bytes exactly. Rows whose records all have the same
layout (dense float rows, float labels or integer labels of one varint width) are written as one
(rows x bytes) table filled from a template record, with no Python work per row.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from ..base.errors import DataFormatError
from ._protobuf import (
    _FIXED_DTYPES,
    _KIND_TAGS,
    _encode_varints,
    _ProtoError,
    _scan_record,
    _varint_bytes,
    decode_record,
)
from ._streams import source_name

__all__ = ["FrameReader", "MAGIC", "decode_record", "encode_int32_records", "encode_records", "iter_recordio",
           "write_numpy_to_dense_tensor", "write_recordio", "write_recordio_protobuf",
           "write_spmatrix_to_sparse_tensor"]

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)  # 0a 23 d7 ce
_LENGTH_MASK = 0x1FFFFFFF
_MAX_LENGTH = 1 << 29
_HEADER = struct.Struct("<II")
_READ_SIZE = 1 << 21
_PADDING = (b"", b"\x00", b"\x00\x00", b"\x00\x00\x00")
_WRITE_BLOCK = 4096  # records encoded per stream.write, to bound memory on large arrays


# --- Framing ---------------------------------------------------------------------------------------------

def write_recordio(stream, payload: bytes) -> None:
    """Write ``payload`` as one RecordIO frame exactly as the SDK does (cflag 0, zero padding to 4 bytes)."""
    stream.write(_frame(payload))


def _frame(payload: bytes) -> bytes:
    length = len(payload)
    if length >= _MAX_LENGTH:  # the length field has 29 bits; the SDK would silently write a bad frame
        raise ValueError(f"a RecordIO record must be shorter than 2**29 bytes; got {length}")
    return b"".join((_HEADER.pack(MAGIC, length), payload, _PADDING[-length & 3]))


class FrameReader:
    """Incremental reader of a RecordIO byte stream (works on FIFOs and HTTP bodies).

    Whole frames are buffered: ``buf[pos:end]`` is unread, ``base`` is the stream offset of ``buf[0]``.
    :meth:`record` returns one record at a time, and the batch reader may also consume runs of frames
    straight from the buffer. ``count`` is the number of records consumed so far, so errors name the
    1-based record number. Given ``data`` (bytes or an mmap of a whole file), no stream is read.
    """

    def __init__(self, stream, where: dict, data=None):
        self.stream, self.where = stream, where
        if data is None:
            self.buf, self.end, self.eof = bytearray(), 0, False
        else:
            self.buf, self.end, self.eof = data, len(data), True
        self.pos = self.base = self.count = 0

    def available(self) -> int:
        return self.end - self.pos

    def fill(self, need: int) -> bool:
        """Buffer at least ``need`` unread bytes unless the stream ends first; returns whether they are there."""
        if self.end - self.pos < need and not self.eof:
            self._refill(need)
        return self.end - self.pos >= need

    def _refill(self, need: int) -> None:
        """Move the unread bytes to the front and read into the rest of the buffer (no joining of copies)."""
        have, capacity = self.end - self.pos, max(_READ_SIZE, need)
        if len(self.buf) < capacity:  # a new buffer, so that views of the old one stay valid
            grown = bytearray(capacity)
            grown[:have] = memoryview(self.buf)[self.pos:self.end]
            self.buf = grown
        elif self.pos:
            self.buf[:have] = self.buf[self.pos:self.end]
        self.base, self.pos, self.end = self.base + self.pos, 0, have
        readinto = getattr(self.stream, "readinto", None)
        while self.end < need:
            if readinto is not None:
                got = readinto(memoryview(self.buf)[self.end:]) or 0
            else:
                data = self.stream.read(len(self.buf) - self.end)
                if isinstance(data, str):
                    raise TypeError("RecordIO needs a binary stream; got a text stream")
                got = len(data)
                self.buf[self.end:self.end + got] = data
            if got == 0:
                self.eof = True
                return
            self.end += got

    def slice(self, start: int, stop: int) -> bytes:
        """``buf[start:stop]`` as bytes (one copy)."""
        if isinstance(self.buf, bytearray):
            return bytes(memoryview(self.buf)[start:stop])
        return self.buf[start:stop]

    def error(self, message: str, record: int | None = None) -> DataFormatError:
        return DataFormatError(message, record=self.count + 1 if record is None else record, **self.where)

    def frame(self) -> tuple[bytes, int, int] | None:
        """(payload, cflag, stream offset) of the next frame, or None at the end of the stream."""
        if not self.fill(8):
            if self.available() == 0:
                return None
            raise self.error(f"truncated frame header at byte {self.base + self.pos}")
        magic, word = _HEADER.unpack_from(self.buf, self.pos)
        if magic != MAGIC:
            raise self.error(f"bad RecordIO magic 0x{magic:08x} at byte {self.base + self.pos} "
                             f"(expected 0x{MAGIC:08x}); not RecordIO data or a corrupt stream")
        length, cflag = word & _LENGTH_MASK, word >> 29
        padded = 8 + length + (-length & 3)
        if not self.fill(padded) and self.available() < 8 + length:
            raise self.error(f"truncated frame at byte {self.base + self.pos}: header says {length} bytes, "
                             f"{self.available() - 8} remain")
        at = self.base + self.pos
        payload = self.slice(self.pos + 8, self.pos + 8 + length)
        self.pos = min(self.pos + padded, self.end)  # a missing final padding at EOF is tolerated
        return payload, cflag, at

    def record(self) -> bytes | None:
        """The next record's payload (split records joined with the magic re-inserted), or None at the end."""
        pieces: list[bytes] | None = None
        while True:
            got = self.frame()
            if got is None:
                if pieces is not None:
                    raise self.error("a split record has no last part (cflag 3)")
                return None
            payload, cflag, at = got
            if cflag == 0 and pieces is None:
                self.count += 1
                return payload
            if cflag == 1 and pieces is None:
                pieces = [payload]
            elif cflag in (2, 3) and pieces is not None:
                pieces.append(payload)
                if cflag == 3:
                    self.count += 1
                    return MAGIC_BYTES.join(pieces)
            else:
                state = "inside" if pieces is not None else "outside"
                raise self.error(f"unexpected continuation flag {cflag} {state} a split record at byte {at}")


def iter_recordio(stream, *, source: str | None = None, channel: str | None = None) -> Iterator[bytes]:
    """Yield the payload of each record of a RecordIO byte stream, in order.

    Reads incrementally, masks the length word with ``0x1FFFFFFF``, joins split records (cflag 1, 2...,
    3) re-inserting the magic bytes between the pieces, and skips padding. A bad magic word or a
    truncated frame raises :class:`DataFormatError` naming the 1-based record number and byte offset.
    An empty stream yields nothing.
    """
    frames = FrameReader(stream, {"source": source if source is not None else source_name(stream),
                                  "channel": channel})
    while (payload := frames.record()) is not None:
        yield payload


# --- Writing (byte-identical to the SageMaker Python SDK v2) ---------------------------------------------

_SMALL_VARINTS = [bytes([n]) for n in range(128)]
_VALUES_ENTRY_KEY = b"\x0a\x06values"


def _ld(tag: bytes, body: bytes) -> bytes:
    """A length-delimited field: tag, varint length, body."""
    n = len(body)
    return b"".join((tag, _SMALL_VARINTS[n] if n < 128 else _varint_bytes(n), body))


def _resolve_kind(dtype: np.dtype) -> str:
    """The SDK's ``_resolve_type``: numpy's default int (int64) -> Int32, float64, float32; nothing else."""
    if dtype == np.dtype(int):
        return "int32"
    if dtype == np.dtype(float):
        return "float64"
    if dtype == np.dtype("float32"):
        return "float32"
    raise ValueError(f"Unsupported dtype {dtype} on array")


def _encode_flat(kind: str, values: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Wire bytes of ``values`` back to back and the byte offset of each value (length size + 1)."""
    values = np.ascontiguousarray(values).ravel()
    if kind == "int32":
        wide = values.astype(np.int64)
        out_of_range = np.flatnonzero((wide < -(2**31)) | (wide >= 2**31))
        if out_of_range.size:
            raise ValueError(f"Value out of range: {wide[out_of_range[0]]}")
        blob, lengths = _encode_varints(wide.view(np.uint64))
        return blob, np.concatenate(([0], np.cumsum(lengths)))
    dtype = _FIXED_DTYPES[kind]
    return values.astype(dtype).tobytes(), np.arange(values.size + 1) * dtype.itemsize


def _write_block(stream, kind: str, blob: bytes, offsets: np.ndarray, keys: tuple | None,
                 shape: bytes, label: tuple | None) -> None:
    """Frame one Record per row; row i's values are ``blob[offsets[i]:offsets[i + 1]]``."""
    value_tag, shape_field = _KIND_TAGS[kind], (_ld(b"\x1a", shape) if shape else b"")
    offsets = offsets.tolist()
    key_blob, key_offsets = (keys[0], keys[1].tolist()) if keys is not None else (b"", None)
    if label is not None:
        label_tag, label_blob, label_offsets = label[0], label[1], label[2].tolist()
    frames = []
    for i in range(len(offsets) - 1):
        values = blob[offsets[i]:offsets[i + 1]]
        row_keys = key_blob[key_offsets[i]:key_offsets[i + 1]] if key_offsets is not None else b""
        tensor = b"".join((_ld(b"\x0a", values) if values else b"",
                           _ld(b"\x12", row_keys) if row_keys else b"", shape_field))
        payload = _ld(b"\x0a", _VALUES_ENTRY_KEY + _ld(b"\x12", _ld(value_tag, tensor)))
        if label is not None:
            label_values = label_blob[label_offsets[i]:label_offsets[i + 1]]
            label_tensor = _ld(b"\x0a", label_values) if label_values else b""
            payload += _ld(b"\x12", _VALUES_ENTRY_KEY + _ld(b"\x12", _ld(label_tag, label_tensor)))
        frames.append(_frame(payload))
    stream.write(b"".join(frames))


def _label_block(kind: str | None, rows: np.ndarray | None, start: int, stop: int) -> tuple | None:
    if rows is None:
        return None
    block = rows[start:stop]
    blob, offsets = _encode_flat(kind, block)
    return _KIND_TAGS[kind], blob, offsets[np.arange(block.shape[0] + 1) * block.shape[1]]


def _write_dense(stream, kind: str, array: np.ndarray, label_kind: str | None,
                 label_rows: np.ndarray | None) -> None:
    n, d = array.shape
    for start in range(0, n, _WRITE_BLOCK):
        block = array[start:start + _WRITE_BLOCK]
        blob, offsets = _encode_flat(kind, block)
        offsets = offsets[np.arange(block.shape[0] + 1) * d]
        label = _label_block(label_kind, label_rows, start, start + _WRITE_BLOCK)
        if not _write_table(stream, kind, blob, offsets, label):
            _write_block(stream, kind, blob, offsets, None, b"", label)


def _uniform_rows(blob: bytes, offsets: np.ndarray) -> np.ndarray | None:
    """``blob`` as a (rows x bytes) table when every row takes the same number of bytes, else None."""
    lengths = np.diff(offsets)
    if lengths.size == 0 or lengths[0] == 0 or (lengths != lengths[0]).any():
        return None
    return np.frombuffer(blob, np.uint8).reshape(lengths.size, int(lengths[0]))


def _write_table(stream, kind: str, blob: bytes, offsets: np.ndarray, label: tuple | None) -> bool:
    """Write dense rows of one layout as a table filled from a template record; False when they differ.

    Rows have one layout when their values (and labels) take the same number of bytes in every row:
    always for float values, and for varint integers of one width (labels 0-127, say). The template is
    row 0 written by :func:`_write_block`, so the bytes are the per-row writer's bytes by construction.
    """
    values = _uniform_rows(blob, offsets)
    labels = None if label is None else _uniform_rows(label[1], label[2])
    if values is None or (label is not None and labels is None):
        return False
    template = io.BytesIO()
    first_label = None if label is None else (label[0], label[1][:labels.shape[1]], label[2][:2])
    _write_block(template, kind, blob[:values.shape[1]], offsets[:2], None, b"", first_label)
    first = template.getvalue()
    frame = np.frombuffer(first, np.uint8)
    try:
        features, label_map, *_ = _scan_record(first[8:8 + _HEADER.unpack_from(first)[1]])
    except _ProtoError:  # cannot happen for bytes we wrote; the per-row writer stays correct regardless
        return False
    table = np.empty((values.shape[0], frame.size), np.uint8)
    table[:] = frame
    for tensor, data in ((features.get("values"), values), (label_map.get("values"), labels)):
        if data is not None:
            start = 8 + tensor.offset
            table[:, start:start + data.shape[1]] = data
    stream.write(table.reshape(-1).data)
    return True


def _write_sparse(stream, kind: str, matrix: sp.csr_matrix, label_kind: str | None,
                  label_rows: np.ndarray | None) -> None:
    n, d = matrix.shape
    shape = _varint_bytes(d)
    for start in range(0, n, _WRITE_BLOCK):
        stop = min(start + _WRITE_BLOCK, n)
        bounds = matrix.indptr[start:stop + 1].astype(np.int64)
        lo, hi = int(bounds[0]), int(bounds[-1])
        blob, offsets = _encode_flat(kind, matrix.data[lo:hi])
        key_blob, key_lengths = _encode_varints(matrix.indices[lo:hi].astype(np.uint64))
        key_offsets = np.concatenate(([0], np.cumsum(key_lengths)))
        _write_block(stream, kind, blob, offsets[bounds - lo], (key_blob, key_offsets[bounds - lo]), shape,
                     _label_block(label_kind, label_rows, start, stop))


def _sdk_labels(labels, shape: tuple) -> tuple[str | None, np.ndarray | None]:
    """(label kind, labels as one-value rows) under the SDK's rules; (None, None) without labels."""
    if labels is None:
        return None, None
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError("Labels must be a Vector")
    # the SDK only checks that len(labels) is one of the array's dimensions; one label per row is meant
    if labels.shape[0] != shape[0]:
        raise ValueError(f"Label shape {labels.shape} not compatible with array shape {shape}")
    return _resolve_kind(labels.dtype), labels.reshape(-1, 1)


def write_numpy_to_dense_tensor(stream, array, labels=None) -> None:
    """Write a 2-D array as one dense-tensor Record per row, byte-identical to the SageMaker SDK.

    The tensor type follows the dtype as in the SDK: int64 -> Int32Tensor, float64 -> Float64Tensor,
    float32 -> Float32Tensor, anything else -> ``ValueError``. ``labels`` (1-D, one per row) go to
    ``label["values"]`` with their own dtype rule.
    """
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError("Array must be a Matrix")
    label_kind, label_rows = _sdk_labels(labels, array.shape)
    _write_dense(stream, _resolve_kind(array.dtype), array, label_kind, label_rows)


def write_spmatrix_to_sparse_tensor(stream, matrix, labels=None) -> None:
    """Write a scipy sparse matrix as one sparse-tensor Record per row, byte-identical to the SDK.

    Each row's stored entries become ``values`` and ``keys`` (in CSR order, explicit zeros kept) and
    ``shape = [n_columns]``; dtype and label rules as in :func:`write_numpy_to_dense_tensor`.
    """
    if not sp.issparse(matrix):
        raise TypeError("Array must be sparse")
    if len(matrix.shape) != 2:
        raise ValueError("Array must be a Matrix")
    label_kind, label_rows = _sdk_labels(labels, matrix.shape)
    _write_sparse(stream, _resolve_kind(matrix.dtype), matrix.tocsr(), label_kind, label_rows)


def _writer_kind(dtype: np.dtype) -> str:
    """:func:`write_recordio_protobuf`'s tensor type: the SDK's for the dtypes it writes, int32 as its int64
    (Int32Tensor), and Float32Tensor for every other dtype (bool, float16, small ints, ...), which the SDK
    refuses."""
    if dtype in (np.dtype(np.int32), np.dtype(np.int64)):
        return "int32"
    try:
        return _resolve_kind(dtype)
    except ValueError:
        return "float32"


def _writer_rows(values, what: str) -> tuple[str, np.ndarray]:
    """(tensor type, values) for ``values``, cast to float32 where that is the type."""
    kind = _writer_kind(values.dtype)
    if kind == "float32" and values.dtype != np.float32:
        try:
            values = values.astype(np.float32)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{what} must be numeric; got dtype {values.dtype}: {exc}") from None
    return kind, values


def write_recordio_protobuf(stream, X, labels=None) -> None:
    """Write features and optional labels as RecordIO-protobuf, byte-identical to the SageMaker SDK.

    Dense inputs (arrays, DataFrames) are written as the SDK's ``write_numpy_to_dense_tensor`` writes
    them, scipy sparse matrices as its ``write_spmatrix_to_sparse_tensor`` (keys in CSR order, explicit
    zeros kept, ``shape = [n_columns]``). The tensor type follows the dtype, features and labels each by
    their own, as in the SDK: float32 -> Float32Tensor, float64 -> Float64Tensor, int64 -> Int32Tensor
    (values outside int32 raise ``ValueError``, as the SDK does). int32, which the SDK refuses, is written
    as the Int32Tensor the SDK writes for the same values as int64; other dtypes (bool, float16, small
    ints), which it refuses too, as Float32Tensor. SageMaker's first-party algorithms train on Float32
    tensors only: give float32 arrays (``X.astype("float32")``) for files meant for them.

    ``labels`` may be (n,) for scalar labels, as in the SDK, or (n, k) for vector labels (k values in
    ``label["values"]``, a sagelocal extension).
    """
    if sp.issparse(X):
        kind, features = _writer_rows(X.tocsr(), "X")
    else:
        features = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X)
        if features.ndim != 2:
            raise ValueError(f"X must be 2-dimensional (rows x features); got shape {features.shape}")
        kind, features = _writer_rows(features, "X")
    label_kind = label_rows = None
    if labels is not None:
        label_rows = np.asarray(labels.to_numpy() if hasattr(labels, "to_numpy") else labels)
        if label_rows.ndim == 1:
            label_rows = label_rows.reshape(-1, 1)
        if label_rows.ndim != 2 or label_rows.shape[0] != features.shape[0]:
            raise ValueError(f"labels must have shape ({features.shape[0]},) or ({features.shape[0]}, k); "
                             f"got {np.shape(labels)}")
        label_kind, label_rows = _writer_rows(label_rows, "labels")
    if sp.issparse(features):
        _write_sparse(stream, kind, features, label_kind, label_rows)
    else:
        _write_dense(stream, kind, features, label_kind, label_rows)


def encode_records(records: list[dict]) -> bytes:
    """RecordIO-protobuf response body: one Record per dict, as SageMaker endpoints answer.

    Each key of a dict becomes ``label[key]`` holding a Float32Tensor (a scalar becomes one value, a
    list or array its flattened values); the features map stays empty.
    """
    frames = []
    for number, record in enumerate(records):
        entries = []
        for key, value in record.items():
            try:
                raw = np.asarray(value, dtype="<f4").ravel().tobytes()
            except (TypeError, ValueError):
                raise ValueError(f"record {number}: '{key}' must be numeric; got {value!r}") from None
            tensor = _ld(b"\x0a", raw) if raw else b""
            entry = _ld(b"\x0a", str(key).encode("utf-8")) + _ld(b"\x12", _ld(b"\x12", tensor))
            entries.append(_ld(b"\x12", entry))
        frames.append(_frame(b"".join(entries)))
    return b"".join(frames)


def encode_int32_records(rows) -> bytes:
    """RecordIO-protobuf body of one Record per row, its ``features`` map holding each named Int32Tensor.

    ``rows`` is an iterable of mappings ``name -> integer values`` (a sequence or array of any integer
    dtype, flattened; an empty one gives an empty tensor), e.g. Seq2Seq's ``{"source": ids, "target":
    ids}``. Entries follow the mapping's order and values are packed: the bytes protobuf's deterministic
    serialization writes for the same ``Record`` when the names are in sorted order, which the SDK's
    ``record_pb2.Record`` parses. Values outside int32 or not integers raise ``ValueError``.
    """
    frames = []
    for number, row in enumerate(rows):
        entries = []
        for name, values in row.items():
            values = np.asarray(values)
            if values.size and not np.issubdtype(values.dtype, np.integer):
                raise ValueError(f"record {number}: features['{name}'] must hold integers; got dtype {values.dtype}")
            blob = _encode_flat("int32", values)[0]
            value = _ld(b"\x12", _ld(_KIND_TAGS["int32"], _ld(b"\x0a", blob) if blob else b""))
            entries.append(_ld(b"\x0a", _ld(b"\x0a", str(name).encode("utf-8")) + value))
        frames.append(_frame(b"".join(entries)))
    return b"".join(frames)
