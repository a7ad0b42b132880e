"""The protobuf wire format of ``aialgs.data.Record``, written by hand.

sagelocal does not need the protobuf package: a tight scan locates the raw bytes of each tensor of a
record (:func:`_scan_record`); numbers are then decoded per batch with numpy (``frombuffer`` for packed
floats, a vectorised varint decoder for keys and int32 values). Any conformant proto2 encoding is
accepted: packed or unpacked repeated scalars, unknown fields, repeated map keys (the last wins).
"""

from __future__ import annotations

import numpy as np

from ..base.errors import DataFormatError

# Value.oneof tag byte (field << 3 | wire type 2) -> tensor kind
_VALUE_TAGS = {0x12: "float32", 0x1A: "float64", 0x3A: "int32", 0x4A: "bytes"}
_KIND_TAGS = {kind: bytes([tag]) for tag, kind in _VALUE_TAGS.items()}
# wire type of one unpacked element of Tensor.values (fixed32, fixed64, varint)
_UNPACKED_WIRE_TYPE = {"float32": 5, "float64": 1, "int32": 0}
_FIXED_DTYPES = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8")}
_VALUES_KEY = "values"


class _ProtoError(ValueError):
    """Malformed protobuf inside one record; the caller adds the record number and source."""


# --- Scanning a Record into raw tensor bytes ------------------------------------------------------------

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

