"""RecordIO-protobuf (``application/x-recordio-protobuf``): framing, ``aialgs.data.Record`` codec, readers.

The wire format is written by hand (contracts §1) so that sagelocal does not need the protobuf package:
dmlc RecordIO frames around proto2 ``Record`` messages whose feature and label maps hold
``Float32Tensor`` / ``Float64Tensor`` / ``Int32Tensor`` values.

Hot path: a tight per-record scan locates the raw bytes of each tensor; numbers are decoded per batch
with numpy (``frombuffer`` for packed floats, a vectorised varint decoder for keys and int32 values).
The writers reproduce the SageMaker Python SDK v2 bytes exactly.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..base.errors import DataFormatError
from .batch import Batch

MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)  # 0a 23 d7 ce
_LENGTH_MASK = 0x1FFFFFFF
_MAX_LENGTH = 1 << 29
_HEADER = struct.Struct("<II")
_READ_SIZE = 1 << 20
_PADDING = (b"", b"\x00", b"\x00\x00", b"\x00\x00\x00")
_WRITE_BLOCK = 4096  # records encoded per stream.write, to bound memory on large arrays

# Value.oneof tag byte (field << 3 | wire type 2) -> tensor kind
_VALUE_TAGS = {0x12: "float32", 0x1A: "float64", 0x3A: "int32", 0x4A: "bytes"}
_KIND_TAGS = {kind: bytes([tag]) for tag, kind in _VALUE_TAGS.items()}
# wire type of one unpacked element of Tensor.values (fixed32, fixed64, varint)
_UNPACKED_WIRE_TYPE = {"float32": 5, "float64": 1, "int32": 0}
_FIXED_DTYPES = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8")}
_VALUES_KEY = "values"


class _ProtoError(ValueError):
    """Malformed protobuf inside one record; the caller adds the record number and source."""


def _stream_name(stream) -> str | None:
    name = getattr(stream, "name", None)
    return name if isinstance(name, str) else None


# --- Framing ---------------------------------------------------------------------------------------------

def write_recordio(stream, payload: bytes) -> None:
    """Write ``payload`` as one RecordIO frame exactly as the SDK does (cflag 0, zero padding to 4 bytes)."""
    stream.write(_frame(payload))


def _frame(payload: bytes) -> bytes:
    length = len(payload)
    if length >= _MAX_LENGTH:  # the length field has 29 bits; the SDK would silently write a bad frame
        raise ValueError(f"a RecordIO record must be shorter than 2**29 bytes; got {length}")
    return b"".join((_HEADER.pack(MAGIC, length), payload, _PADDING[-length & 3]))


def iter_recordio(stream, *, source: str | None = None, channel: str | None = None) -> Iterator[bytes]:
    """Yield the payload of each record of a RecordIO byte stream, in order.

    Reads incrementally (works on FIFOs and HTTP bodies), masks the length word with ``0x1FFFFFFF``,
    joins split records (cflag 1, 2..., 3) re-inserting the magic bytes between the pieces, and skips
    padding. A bad magic word or a truncated frame raises :class:`DataFormatError` naming the 1-based
    record number and byte offset. An empty stream yields nothing.
    """
    where = {"source": source if source is not None else _stream_name(stream), "channel": channel}
    buf, pos, base, eof = b"", 0, 0, False
    count = 0  # records yielded so far
    pieces: list[bytes] | None = None
    while True:
        avail = len(buf) - pos
        if avail < 8:
            if not eof:
                buf, pos, base, eof = _refill(stream, buf, pos, base, 8)
                continue
            if avail == 0 and pieces is None:
                return
            what = "a split record has no last part (cflag 3)" if avail == 0 else "truncated frame header"
            raise DataFormatError(f"{what} at byte {base + pos}", record=count + 1, **where)
        magic, word = _HEADER.unpack_from(buf, pos)
        if magic != MAGIC:
            raise DataFormatError(f"bad RecordIO magic 0x{magic:08x} at byte {base + pos} "
                                  f"(expected 0x{MAGIC:08x}); not RecordIO data or a corrupt stream",
                                  record=count + 1, **where)
        length, cflag, at = word & _LENGTH_MASK, word >> 29, base + pos
        stop = pos + 8 + length
        if stop + (-length & 3) > len(buf) and not eof:
            buf, pos, base, eof = _refill(stream, buf, pos, base, 8 + length + (-length & 3))
            continue
        if stop > len(buf):
            raise DataFormatError(f"truncated frame at byte {at}: header says {length} bytes, "
                                  f"{len(buf) - pos - 8} remain", record=count + 1, **where)
        payload = buf[pos + 8:stop]
        pos = min(stop + (-length & 3), len(buf))  # a missing final padding at EOF is tolerated
        if cflag == 0 and pieces is None:
            count += 1
            yield payload
        elif cflag == 1 and pieces is None:
            pieces = [payload]
        elif cflag in (2, 3) and pieces is not None:
            pieces.append(payload)
            if cflag == 3:
                count += 1
                yield MAGIC_BYTES.join(pieces)
                pieces = None
        else:
            state = "inside" if pieces is not None else "outside"
            raise DataFormatError(f"unexpected continuation flag {cflag} {state} a split record at byte {at}",
                                  record=count + 1, **where)


def _refill(stream, buf: bytes, pos: int, base: int, need: int) -> tuple[bytes, int, int, bool]:
    """Drop consumed bytes and read until ``need`` bytes are buffered or EOF: (buf, pos, base, eof)."""
    chunks, have = [buf[pos:]], len(buf) - pos
    while have < need:  # joined once, so a large record arriving in small reads is not copied repeatedly
        data = stream.read(max(_READ_SIZE, need - have))
        if isinstance(data, str):
            raise TypeError("RecordIO needs a binary stream; got a text stream")
        if not data:
            return b"".join(chunks), 0, base + pos, True
        chunks.append(data)
        have += len(data)
    return b"".join(chunks), 0, base + pos, False


# --- Protobuf wire format: scanning a Record into raw tensor bytes ---------------------------------------

class _RawTensor:
    """A tensor as raw wire bytes: floats packed little-endian, integers as a run of varints.

    ``offset`` is where ``values`` starts in the record when it came from one packed run (else -1);
    a ``bytes`` tensor keeps its entries in ``items``.
    """

    __slots__ = ("kind", "values", "keys", "shape", "offset", "items", "content_type")

    def __init__(self, kind: str, values: bytes = b"", keys: bytes = b"", shape: bytes = b"",
                 offset: int = -1):
        self.kind, self.values, self.keys, self.shape, self.offset = kind, values, keys, shape, offset
        self.items: list[bytes] | None = None
        self.content_type: str | None = None

    @property
    def is_sparse(self) -> bool:
        # keys make a row sparse; so does a shape with no values (an all-zero sparse row)
        return bool(self.keys) or (bool(self.shape) and not self.values)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    try:
        while True:
            byte = buf[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result, pos
            shift += 7
            if shift >= 70:
                raise _ProtoError("varint longer than 10 bytes")
    except IndexError:
        raise _ProtoError("truncated varint") from None


def _span(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Body (start, stop) of the length-delimited field whose length varint starts at ``pos``."""
    try:  # lengths below 16 KiB (one or two bytes) are decoded inline: this runs several times a record
        n = buf[pos]
        if n < 0x80:
            pos += 1
        elif buf[pos + 1] < 0x80:
            n, pos = (n & 0x7F) | (buf[pos + 1] << 7), pos + 2
        else:
            n, pos = _varint(buf, pos)
    except IndexError:
        raise _ProtoError("truncated length-delimited field") from None
    if pos + n > end:
        raise _ProtoError(f"field of {n} bytes runs past the end of its message")
    return pos, pos + n


def _skip(buf: bytes, pos: int, end: int, tag: int) -> int:
    """Position after the value of an unknown field with ``tag`` (proto2 allows any to appear)."""
    wire = tag & 7
    if wire == 0:
        _, pos = _varint(buf, pos)
    elif wire == 1:
        pos += 8
    elif wire == 2:
        pos = _span(buf, pos, end)[1]
    elif wire == 5:
        pos += 4
    elif wire == 3:  # a group: skip fields up to the matching end-group tag
        while True:
            if pos >= end:
                raise _ProtoError("unterminated group")
            inner, pos = _varint(buf, pos)
            if inner & 7 == 4:
                if inner >> 3 != tag >> 3:
                    raise _ProtoError("mismatched end-group tag")
                break
            pos = _skip(buf, pos, end, inner)
    else:
        raise _ProtoError(f"invalid wire type {wire}")
    if pos > end:
        raise _ProtoError("field runs past the end of its message")
    return pos


def _scan_record(buf: bytes) -> tuple[dict, dict, str | None, str | None, str | None]:
    """(features, label, uid, metadata, configuration) of one ``Record``; maps hold :class:`_RawTensor`."""
    features: dict[str, _RawTensor | None] = {}
    label: dict[str, _RawTensor | None] = {}
    strings: list[str | None] = [None, None, None]
    pos, end = 0, len(buf)
    while pos < end:
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _varint(buf, pos)
        if tag == 0x0A or tag == 0x12:  # features / label map entry; a repeated key replaces the earlier
            start, pos = _span(buf, pos, end)
            key, value = _scan_entry(buf, start, pos)
            (features if tag == 0x0A else label)[key] = value
        elif tag in (0x1A, 0x22, 0x2A):  # uid, metadata, configuration
            start, pos = _span(buf, pos, end)
            strings[(tag >> 3) - 3] = buf[start:pos].decode("utf-8", "replace")
        else:
            pos = _skip(buf, pos, end, tag)
    return features, label, strings[0], strings[1], strings[2]


def _scan_entry(buf: bytes, pos: int, end: int) -> tuple[str, _RawTensor | None]:
    key, value = "", None
    while pos < end:
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _varint(buf, pos)
        if tag == 0x0A:
            start, pos = _span(buf, pos, end)
            key = buf[start:pos].decode("utf-8", "replace")
        elif tag == 0x12:  # Value; a repeated message field merges into the earlier one
            start, pos = _span(buf, pos, end)
            value = _scan_value(buf, start, pos, value)
        else:
            pos = _skip(buf, pos, end, tag)
    return key, value


def _scan_value(buf: bytes, pos: int, end: int, merged: _RawTensor | None) -> _RawTensor | None:
    while pos < end:
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _varint(buf, pos)
        kind = _VALUE_TAGS.get(tag)
        if kind is None:
            pos = _skip(buf, pos, end, tag)
            continue
        start, pos = _span(buf, pos, end)
        base = merged if merged is not None and merged.kind == kind else None  # oneof: another kind replaces
        if kind == "bytes":
            merged = _scan_bytes(buf, start, pos, base)
        else:
            merged = _scan_tensor(buf, start, pos, kind, base)
    return merged


def _scan_tensor(buf: bytes, pos: int, end: int, kind: str, base: _RawTensor | None) -> _RawTensor:
    parts = [b"", b"", b""] if base is None else [base.values, base.keys, base.shape]
    offset, unpacked = -1, _UNPACKED_WIRE_TYPE[kind]
    while pos < end:
        tag = buf[pos]
        if tag == 0x0A or tag == 0x12 or tag == 0x1A:  # packed values / keys / shape: the usual encoding
            start, pos = _span(buf, pos + 1, end)
            if tag == 0x0A:
                offset = start if not parts[0] else -1
            parts[(tag >> 3) - 1] += buf[start:pos]
            continue
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _varint(buf, pos)
        field = tag >> 3
        if (field == 1 and tag & 7 == unpacked) or (field in (2, 3) and tag & 7 == 0):  # one element
            start, pos = pos, _skip(buf, pos, end, tag)
            if type(parts[field - 1]) is bytes:  # element by element: grow in place, not quadratically
                parts[field - 1] = bytearray(parts[field - 1])
            parts[field - 1] += buf[start:pos]
            offset = -1 if field == 1 else offset
        else:
            pos = _skip(buf, pos, end, tag)
    return _RawTensor(kind, bytes(parts[0]), bytes(parts[1]), bytes(parts[2]), offset)


def _scan_bytes(buf: bytes, pos: int, end: int, base: _RawTensor | None) -> _RawTensor:
    out = base
    if out is None:
        out = _RawTensor("bytes")
        out.items = []
    while pos < end:
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _varint(buf, pos)
        if tag == 0x0A or tag == 0x12:
            start, pos = _span(buf, pos, end)
            if tag == 0x0A:
                out.items.append(buf[start:pos])
            else:
                out.content_type = buf[start:pos].decode("utf-8", "replace")
        else:
            pos = _skip(buf, pos, end, tag)
    return out


# --- Vectorised number codecs ----------------------------------------------------------------------------

def _decode_varints(data: bytes | np.ndarray) -> np.ndarray:
    """Decode a run of concatenated varints into a uint64 array (no Python loop over values)."""
    raw = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if raw.size == 0:
        return np.zeros(0, np.uint64)
    last = raw < 0x80
    if last.all():  # every value below 128: one byte each
        return raw.astype(np.uint64)
    if not last[-1]:
        raise _ProtoError("truncated varint")
    ends = np.flatnonzero(last)
    starts = np.empty_like(ends)
    starts[0], starts[1:] = 0, ends[:-1] + 1
    lengths = ends - starts + 1
    if lengths.max() > 10:
        raise _ProtoError("varint longer than 10 bytes")
    shifts = (np.arange(raw.size) - np.repeat(starts, lengths)).astype(np.uint64) * np.uint64(7)
    parts = (raw & 0x7F).astype(np.uint64) << shifts
    return np.bitwise_or.reduceat(parts, starts)


def _encode_varints(values: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Varint bytes of uint64 ``values`` back to back, and the byte length of each value."""
    values = np.ascontiguousarray(values, dtype=np.uint64).ravel()
    if values.size == 0:
        return b"", np.zeros(0, np.int64)
    if values.max() < 0x80:
        return values.astype(np.uint8).tobytes(), np.ones(values.size, np.int64)
    lengths = np.ones(values.size, np.int64)
    for k in range(1, 10):
        lengths += (values >> np.uint64(7 * k)) != 0
    j = np.arange(lengths.max())
    groups = ((values[:, None] >> (np.uint64(7) * j.astype(np.uint64))) & np.uint64(0x7F)).astype(np.uint8)
    groups |= (j < (lengths[:, None] - 1)).astype(np.uint8) << 7
    return groups[j < lengths[:, None]].tobytes(), lengths


def _varint_bytes(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _numbers(kind: str, raw: bytes) -> np.ndarray:
    """The values of one tensor in their wire dtype."""
    if kind == "int32":
        # int32 travels sign-extended to 64 bits; a C cast keeps the low 32 bits as proto2 parsers do
        return _decode_varints(raw).view(np.int64).astype(np.int32)
    dtype = _FIXED_DTYPES[kind]
    if len(raw) % dtype.itemsize:
        raise _ProtoError(f"{kind} values take {len(raw)} bytes, not a multiple of {dtype.itemsize}")
    return np.frombuffer(raw, dtype).astype(dtype.newbyteorder("="))  # a writable copy in native order


def _tensor_dict(tensor: _RawTensor | None) -> dict | None:
    if tensor is None:
        return None
    if tensor.kind == "bytes":
        return {"values": list(tensor.items), "keys": None, "shape": None, "dtype": "bytes",
                "content_type": tensor.content_type}
    return {"values": _numbers(tensor.kind, tensor.values),
            "keys": _decode_varints(tensor.keys) if tensor.keys else None,
            "shape": [int(v) for v in _decode_varints(tensor.shape)] if tensor.shape else None,
            "dtype": tensor.kind}


def decode_record(payload: bytes) -> dict:
    """Decode one serialized ``aialgs.data.Record`` into plain Python and numpy values.

    Returns ``{"features": {name: tensor}, "label": {name: tensor}, "uid", "metadata", "configuration"}``
    where a tensor is ``{"values": ndarray, "keys": ndarray | None, "shape": list | None, "dtype": str}``
    (``dtype`` one of ``float32``, ``float64``, ``int32``, ``bytes``; a ``bytes`` tensor's values are a
    list of ``bytes`` and it also carries ``content_type``). A map entry without a value maps to None.
    Raises :class:`DataFormatError` on malformed bytes.
    """
    try:
        features, label, uid, metadata, configuration = _scan_record(bytes(payload))
        return {"features": {k: _tensor_dict(v) for k, v in features.items()},
                "label": {k: _tensor_dict(v) for k, v in label.items()},
                "uid": uid, "metadata": metadata, "configuration": configuration}
    except _ProtoError as exc:
        raise DataFormatError(f"malformed protobuf Record: {exc}") from None


# --- Reading batches -------------------------------------------------------------------------------------

@dataclass
class _Layout:
    """What the first record of a stream fixed for all the others: feature width and label shape."""

    width: int | None = None
    has_label: bool | None = None
    label_width: int | None = None


def read_recordio_protobuf(stream, batch_size: int = 1000, *, source: str | None = None,
                           channel: str | None = None) -> Iterator[Batch]:
    """Read a RecordIO-protobuf stream as batches of ``batch_size`` records (the last may be shorter).

    Features come from ``features["values"]``: a float32 array of shape (n, d), or a float32 CSR matrix
    when any record of the batch is sparse (``d`` from the tensor shape). Labels come from
    ``label["values"]`` (shape (n,) for scalar labels, (n, k) for vectors) or are None when the records
    have none; ids are the records' ``uid`` when present. Every record must have as many features (and
    label values) as the first one. Errors are :class:`DataFormatError` naming the 1-based record number.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    where = {"source": source if source is not None else _stream_name(stream), "channel": channel}
    layout = _Layout()
    payloads: list[bytes] = []
    first = 1
    for number, payload in enumerate(iter_recordio(stream, **where), 1):
        payloads.append(payload)
        if len(payloads) == batch_size:
            yield _batch(payloads, first, layout, where)
            payloads, first = [], number + 1
    if payloads:
        yield _batch(payloads, first, layout, where)


def _batch(payloads: list[bytes], first: int, layout: _Layout, where: dict) -> Batch:
    uniform = _uniform_values(payloads)
    if uniform is not None:
        features, labels = uniform
        n, width = features.shape
        layout.width = _same_width(np.full(n, width), layout.width, first, where, "feature values")
        if not _has_labels([labels is not None], first, layout, where):
            return Batch(features)
        counts = np.full(n, labels.shape[1])
        return Batch(features, _label_matrix(labels.ravel(), counts, first, layout, where))
    rows = []
    for number, payload in enumerate(payloads, first):
        try:
            features, label, uid, _, _ = _scan_record(payload)
        except _ProtoError as exc:
            raise DataFormatError(f"malformed protobuf Record: {exc}", record=number, **where) from None
        rows.append((features.get(_VALUES_KEY), label.get(_VALUES_KEY), uid))
    return _assemble(rows, first, layout, where)


def _uniform_values(payloads: list[bytes]) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Fast path: (features, labels or None) when the records differ only in their packed float values.

    The common case (every dense row written by the SDK) then needs one scan per batch: records of equal
    length whose other bytes all equal the first record's parse exactly like it, so their values can be
    sliced out of one (records x bytes) table. Returns None when the batch needs the general path.
    """
    size = len(payloads[0])
    if any(len(p) != size for p in payloads):
        return None
    try:
        features, label, uid, _, _ = _scan_record(payloads[0])
    except _ProtoError:
        return None
    tensors = (features.get(_VALUES_KEY), label.get(_VALUES_KEY))
    if tensors[0] is None or uid is not None:
        return None
    structural = np.ones(size, bool)
    for tensor in tensors:
        if tensor is not None:
            if (tensor.kind not in _FIXED_DTYPES or tensor.is_sparse or tensor.offset < 0
                    or len(tensor.values) % _FIXED_DTYPES[tensor.kind].itemsize):
                return None
            structural[tensor.offset:tensor.offset + len(tensor.values)] = False
    table = np.frombuffer(b"".join(payloads), np.uint8).reshape(len(payloads), size)
    if len(payloads) > 1 and (table[1:, structural] != table[0, structural]).any():
        return None
    return tuple(None if t is None else np.ascontiguousarray(table[:, t.offset:t.offset + len(t.values)])
                 .view(_FIXED_DTYPES[t.kind]).astype(np.float32) for t in tensors)


def _assemble(rows: list[tuple], first: int, layout: _Layout, where: dict) -> Batch:
    features = [row[0] for row in rows]
    for i, tensor in enumerate(features):
        if tensor is None or tensor.kind == "bytes":
            what = "no features['values'] tensor" if tensor is None else "bytes in features['values']"
            raise DataFormatError(f"record has {what}", record=first + i, **where)
    if any(t.is_sparse for t in features):
        matrix = _sparse_features(features, first, layout, where)
    else:
        flat, counts = _flat_values(features, first, where)
        layout.width = _same_width(counts, layout.width, first, where, "feature values")
        matrix = flat.reshape(len(rows), layout.width)
    uids = [row[2] for row in rows]
    ids = uids if any(uid is not None for uid in uids) else None
    labels = [row[1] for row in rows]
    if not _has_labels([t is not None for t in labels], first, layout, where):
        return Batch(matrix, ids=ids)
    for i, tensor in enumerate(labels):
        if tensor.kind == "bytes" or tensor.is_sparse:
            raise DataFormatError("label['values'] must be a dense numeric tensor", record=first + i, **where)
    flat, counts = _flat_values(labels, first, where)
    return Batch(matrix, _label_matrix(flat, counts, first, layout, where), ids=ids)


def _has_labels(present: list[bool], first: int, layout: _Layout, where: dict) -> bool:
    """Whether these records have labels; the first record of the stream decides for all."""
    if layout.has_label is None:
        layout.has_label = present[0]
    if not all(p == layout.has_label for p in present):
        i = present.index(not layout.has_label)
        what = "no label['values']" if layout.has_label else "a label['values'] while earlier ones have none"
        raise DataFormatError(f"record has {what}", record=first + i, **where)
    return layout.has_label


def _label_matrix(flat: np.ndarray, counts: np.ndarray, first: int, layout: _Layout,
                  where: dict) -> np.ndarray:
    layout.label_width = _same_width(counts, layout.label_width, first, where, "label values")
    if layout.label_width == 0:
        raise DataFormatError("label['values'] holds no values", record=first, **where)
    return flat if layout.label_width == 1 else flat.reshape(len(counts), layout.label_width)


def _same_width(counts: np.ndarray, expected: int | None, first: int, where: dict, what: str) -> int:
    width = int(counts[0]) if expected is None else expected
    bad = np.flatnonzero(counts != width)
    if bad.size:
        i = int(bad[0])
        raise DataFormatError(f"record has {counts[i]} {what}; earlier records have {width}",
                              record=first + i, **where)
    return width


def _flat_values(tensors: list[_RawTensor], first: int, where: dict) -> tuple[np.ndarray, np.ndarray]:
    """All values of ``tensors`` as one float32 array, and how many each tensor has."""
    kinds = {t.kind for t in tensors}
    if len(kinds) > 1:  # records of mixed dtypes (rare): decode one by one
        arrays = []
        for i, tensor in enumerate(tensors):
            try:
                arrays.append(_numbers(tensor.kind, tensor.values))
            except _ProtoError as exc:
                raise DataFormatError(str(exc), record=first + i, **where) from None
        counts = np.fromiter((a.size for a in arrays), np.int64, len(arrays))
        return np.concatenate(arrays).astype(np.float32), counts
    kind = kinds.pop()
    raws = [t.values for t in tensors]
    if kind == "int32":
        values, counts = _varint_runs(raws, first, where)
        return values.view(np.int64).astype(np.int32).astype(np.float32), counts
    dtype = _FIXED_DTYPES[kind]
    lengths = np.fromiter(map(len, raws), np.int64, len(raws))
    bad = np.flatnonzero(lengths % dtype.itemsize)
    if bad.size:
        raise DataFormatError(f"{kind} values take {lengths[bad[0]]} bytes, not a multiple of "
                              f"{dtype.itemsize}", record=first + int(bad[0]), **where)
    return np.frombuffer(b"".join(raws), dtype).astype(np.float32), lengths // dtype.itemsize


def _varint_runs(raws: list[bytes], first: int, where: dict) -> tuple[np.ndarray, np.ndarray]:
    """Decode the varint runs of several records at once; returns (uint64 values, count per record)."""
    lengths = np.fromiter(map(len, raws), np.int64, len(raws))
    data = np.frombuffer(b"".join(raws), np.uint8)
    if data.size == 0:
        return np.zeros(0, np.uint64), np.zeros(len(raws), np.int64)
    last = data < 0x80
    ends = np.cumsum(lengths)
    starts = ends - lengths
    bad = np.flatnonzero((lengths > 0) & ~last[np.maximum(ends - 1, 0)])
    if bad.size:
        raise DataFormatError("truncated varint in a tensor", record=first + int(bad[0]), **where)
    done = np.concatenate(([0], np.cumsum(last)))
    try:
        values = _decode_varints(data)
    except _ProtoError as exc:
        raise DataFormatError(f"{exc} in records {first}-{first + len(raws) - 1}", **where) from None
    return values, done[ends] - done[starts]


def _sparse_features(tensors: list[_RawTensor], first: int, layout: _Layout, where: dict) -> sp.csr_matrix:
    flat, counts = _flat_values(tensors, first, where)
    widths = np.empty(len(tensors), np.int64)
    known: dict[bytes, int] = {}
    for i, tensor in enumerate(tensors):
        if not tensor.is_sparse:
            widths[i] = counts[i]  # a dense row inside a sparse batch
        elif not tensor.shape:
            raise DataFormatError("sparse tensor (with keys) has no shape", record=first + i, **where)
        else:
            if tensor.shape not in known:
                try:
                    known[tensor.shape] = int(np.prod(_decode_varints(tensor.shape)))
                except _ProtoError as exc:
                    raise DataFormatError(str(exc), record=first + i, **where) from None
            widths[i] = known[tensor.shape]
    layout.width = width = _same_width(widths, layout.width, first, where, "features")
    keys, key_counts = _varint_runs([t.keys for t in tensors], first, where)
    is_dense = np.fromiter((not t.keys and bool(t.values) for t in tensors), bool, len(tensors))
    bad = np.flatnonzero(~is_dense & (key_counts != counts))
    if bad.size:
        i = int(bad[0])
        raise DataFormatError(f"sparse tensor has {key_counts[i]} keys for {counts[i]} values",
                              record=first + i, **where)
    if is_dense.any():
        pieces = np.split(keys, np.cumsum(key_counts)[:-1])
        keys = np.concatenate([np.arange(c, dtype=np.uint64) if dense else piece
                               for piece, c, dense in zip(pieces, counts, is_dense)])
    indptr = np.concatenate(([0], np.cumsum(counts)))
    if keys.size and keys.max() >= width:
        at = int(np.argmax(keys >= width))
        i = int(np.searchsorted(indptr, at, side="right")) - 1
        raise DataFormatError(f"sparse key {keys[at]} is out of range for {width} features",
                              record=first + i, **where)
    index_dtype = np.int32 if max(width, keys.size) < 2**31 else np.int64
    matrix = sp.csr_matrix((flat, keys.astype(index_dtype), indptr.astype(index_dtype)),
                           shape=(len(tensors), width))
    matrix.sum_duplicates()  # canonical CSR: sorted keys, repeated keys added up
    return matrix


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
        _write_block(stream, kind, blob, offsets[np.arange(block.shape[0] + 1) * d], None, b"",
                     _label_block(label_kind, label_rows, start, start + _WRITE_BLOCK))


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


def write_recordio_protobuf(stream, X, labels=None) -> None:
    """Write features and optional labels as float32 RecordIO-protobuf, the format algorithms train on.

    Dense inputs (arrays, DataFrames) become dense tensors; scipy sparse matrices become sparse tensors
    with keys and shape. ``labels`` may be (n,) for scalar labels or (n, k) for vector labels.
    """
    if sp.issparse(X):
        features = sp.csr_matrix(X, dtype=np.float32)
    else:
        features = np.asarray(X.to_numpy() if hasattr(X, "to_numpy") else X, dtype=np.float32)
        if features.ndim != 2:
            raise ValueError(f"X must be 2-dimensional (rows x features); got shape {features.shape}")
    label_rows = None
    if labels is not None:
        label_rows = np.asarray(labels.to_numpy() if hasattr(labels, "to_numpy") else labels, np.float32)
        if label_rows.ndim == 1:
            label_rows = label_rows.reshape(-1, 1)
        if label_rows.ndim != 2 or label_rows.shape[0] != features.shape[0]:
            raise ValueError(f"labels must have shape ({features.shape[0]},) or ({features.shape[0]}, k); "
                             f"got {np.shape(labels)}")
    label_kind = None if label_rows is None else "float32"
    if sp.issparse(features):
        _write_sparse(stream, "float32", features, label_kind, label_rows)
    else:
        _write_dense(stream, "float32", features, label_kind, label_rows)


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
