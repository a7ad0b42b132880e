"""Reading RecordIO-protobuf into batches: :func:`iter_recordio_protobuf` and :func:`read_recordio_protobuf`.

Two paths give identical results:

- **Runs of one layout** (the usual case: every dense row written by the SDK or by sagelocal). When a
  record is dense with packed values and no ``uid``, it becomes a *template*: the following frames of the
  same size whose bytes outside the value fields equal the template's parse exactly like it, so a whole
  run of them is checked and decoded with a few numpy operations over a (records x bytes) view of the
  read buffer, with no Python work per record.
- **Record by record** for everything else (sparse rows, uids, mixed layouts, split frames, corrupt data):
  each record is scanned into raw tensors and a batch of them is decoded at once.
"""

from __future__ import annotations

import mmap
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..base.batch import Batch, rebatch
from ..base.errors import DataFormatError
from ._protobuf import (
    _FIXED_DTYPES,
    _VALUES_KEY,
    _decode_varints,
    _numbers,
    _ProtoError,
    _RawTensor,
    _scan_record,
)
from ._streams import guarded, maybe_gunzip, opened, source_name
from .recordio import _HEADER, MAGIC, FrameReader

_RUN_LIMIT = 1 << 16  # records decoded at once from one buffer (the buffer bounds it anyway)
_SHORT_RUN = 16  # runs shorter than this, ended by another layout, do not pay for their numpy calls
_COOLDOWN = 32  # records read one by one after a record that cannot be a template, before trying again
_MAX_COOLDOWN = 4096


@dataclass
class _Layout:
    """What the first record of a stream fixed for all the others: feature width and label shape."""

    width: int | None = None
    has_label: bool | None = None
    label_width: int | None = None


def iter_recordio_protobuf(stream, batch_size: int = 1000, *, source: str | None = None,
                           channel: str | None = None) -> Iterator[Batch]:
    """Read a RecordIO-protobuf stream as batches of ``batch_size`` records (the last may be shorter).

    Features come from ``features["values"]``: a float32 array of shape (n, d), or a float32 CSR matrix
    when any record of the batch is sparse (``d`` from the tensor shape). Labels come from
    ``label["values"]`` (shape (n,) for scalar labels, (n, k) for vectors) or are None when the records
    have none; ids are the records' ``uid`` when present. Every record must have as many features (and
    label values) as the first one. Errors are :class:`DataFormatError` naming the 1-based record number.
    Reads incrementally (FIFOs, HTTP bodies); memory is bounded by the batch and a 2 MiB read buffer.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    where = {"source": source if source is not None else source_name(stream), "channel": channel}
    return rebatch(_chunks(FrameReader(stream, where), batch_size, np.float32), batch_size)


def read_recordio_protobuf(source, *, channel: str | None = None) -> tuple[np.ndarray | sp.csr_matrix,
                                                                           np.ndarray | None]:
    """Read a whole RecordIO-protobuf file or binary stream into ``(X, y)``.

    ``source`` is a path (opened and closed here) or an open binary stream; gzip is decompressed
    transparently. ``X`` is a dense array, or a CSR matrix when any record is sparse; ``y`` is the labels
    ((n,) or (n, k)) or None. Values keep the type the records carry: float32, float64, or int32 (the
    SDK writes numpy's int64 arrays as Int32Tensor), so the SDK's files read back as the arrays written.
    An empty input gives an array of shape (0, 0) and None.
    """
    name = source_name(source)
    where = {"source": name, "channel": channel}
    with opened(source, channel=channel) as stream:
        stream, compressed = maybe_gunzip(stream)
        data = None if compressed else _mapped(stream)
        frames = FrameReader(stream, where, data)
        # one run of one layout decodes straight into the result: no batches to join
        chunks = list(guarded(lambda _: _chunks(frames, _RUN_LIMIT, None, run_limit=None), stream, compressed,
                              source=name, channel=channel))
    if not chunks:
        return np.zeros((0, 0), np.float32), None
    whole = Batch.concat(chunks)
    return whole.features, whole.labels


def _mapped(stream):
    """A read-only memory map of a regular file positioned at its start (left at its end), or None.

    Mapping spares copying the file into the read buffer: runs are decoded straight from the page cache.
    """
    try:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode) or stream.tell() != 0:
            return None
        mapped = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ)
        stream.seek(0, os.SEEK_END)  # as if read, like the streaming path leaves it
        return mapped
    except (AttributeError, OSError, ValueError):  # no file descriptor, an empty file, no mmap
        return None


def _chunks(frames: FrameReader, limit: int, dtype, run_limit: int | None = _RUN_LIMIT) -> Iterator[Batch]:
    """Batches of any size in stream order; ``dtype`` None keeps each tensor's own number type.

    Records read one by one are decoded ``limit`` at a time; runs of one layout hold up to ``run_limit``
    records (None: as many as the buffer holds).
    """
    where = frames.where
    layout = _Layout()
    template, cooldown, backoff = None, 0, _COOLDOWN
    pending: list[bytes] = []
    first = 1
    while True:
        if cooldown <= 0:
            with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf, as in a cast
                template, run = _run(frames, template, dtype, run_limit)
            if run is not None:
                values, number, interrupted = run
                if pending:
                    yield _batch(pending, first, layout, where, dtype)
                    pending = []
                yield _run_batch(values, number, layout, where)
                # a short run cut by another layout: layouts alternate, so read record by record a while,
                # longer each time it happens again
                if interrupted and len(values["features"]) < _SHORT_RUN:
                    cooldown, backoff = backoff, min(2 * backoff, _MAX_COOLDOWN)
                else:
                    backoff = _COOLDOWN
                continue
            cooldown, backoff = backoff, min(2 * backoff, _MAX_COOLDOWN)
        payload = frames.record()
        if payload is None:
            break
        cooldown -= 1
        if not pending:
            first = frames.count
        pending.append(payload)
        if len(pending) >= limit:
            yield _batch(pending, first, layout, where, dtype)
            pending = []
    if pending:
        yield _batch(pending, first, layout, where, dtype)


# --- Runs of one layout ----------------------------------------------------------------------------------

class _Template:
    """The byte layout of one dense record frame: where its value fields are, and every other byte."""

    __slots__ = ("size", "ref", "spans", "fields")

    def __init__(self, size: int, ref: np.ndarray, fields: list[tuple]):
        self.size, self.ref, self.fields = size, ref, fields  # fields: (role, start, nbytes, kind, count)
        cuts = sorted((start, start + nbytes) for _, start, nbytes, _, _ in fields)
        edges = [0] + [x for cut in cuts for x in cut] + [size]
        self.spans = [(a, b) for a, b in zip(edges[::2], edges[1::2]) if b > a]  # the structural bytes

    @classmethod
    def at(cls, frames: FrameReader) -> _Template | None:
        """The template of the frame at the read position, or None when it cannot be one."""
        if not frames.fill(8):
            return None
        magic, length = _HEADER.unpack_from(frames.buf, frames.pos)
        size = 8 + length + (-length & 3)
        if magic != MAGIC or length >> 29 or not frames.fill(size):  # a continuation flag: not a whole record
            return None
        start = frames.pos
        try:
            features, label, uid, _, _ = _scan_record(frames.slice(start + 8, start + 8 + length))
        except _ProtoError:
            return None
        if uid is not None:
            return None
        fields = []
        for role, tensor in (("features", features.get(_VALUES_KEY)), ("label", label.get(_VALUES_KEY))):
            if tensor is None and role == "label":
                continue
            count = _fixed_count(tensor)
            if count is None:
                return None
            fields.append((role, 8 + tensor.offset, len(tensor.values), tensor.kind, count))
        return cls(size, np.frombuffer(frames.buf, np.uint8, count=size, offset=start).copy(), fields)

    def matching(self, frames: FrameReader, limit: int | None) -> tuple[np.ndarray, int]:
        """The (frames x bytes) table at the read position and how many leading frames match the layout.

        Checked in growing windows, so that a layout that holds for a few records only costs little.
        """
        if not frames.fill(self.size):
            return np.zeros((0, self.size), np.uint8), 0
        k = frames.available() // self.size
        k = k if limit is None else min(k, limit)
        table = np.frombuffer(frames.buf, np.uint8, count=k * self.size, offset=frames.pos).reshape(k, self.size)
        done, window = 0, 16
        while done < k:
            stop = min(k, done + window)
            part = table[done:stop]
            if not self._all_match(part):
                return table, done + int(np.argmin(self._matches(part)))
            done, window = stop, window * 16
        return table, k

    def _all_match(self, table: np.ndarray) -> bool:
        """Whether every frame of ``table`` has the layout (one reduction per field, no per-row work)."""
        for a, b in self.spans:
            if not np.array_equal(table[:, a:b], np.broadcast_to(self.ref[a:b], (len(table), b - a))):
                return False
        for _, start, nbytes, kind, count in self.fields:
            if kind == "int32":  # varints: the same count per record, the last one complete
                block = table[:, start:start + nbytes]
                if (block[:, -1] >= 0x80).any() or ((block < 0x80).sum(axis=1) != count).any():
                    return False
        return True

    def _matches(self, table: np.ndarray) -> np.ndarray:
        """Per frame of ``table``: whether it has the layout."""
        good = np.ones(len(table), bool)
        for a, b in self.spans:
            good &= (table[:, a:b] == self.ref[a:b]).all(axis=1)
        for _, start, nbytes, kind, count in self.fields:
            if kind == "int32":
                block = table[:, start:start + nbytes]
                good &= ((block < 0x80).sum(axis=1) == count) & (block[:, -1] < 0x80)
        return good

    def decode(self, frames: FrameReader, table: np.ndarray, m: int, dtype) -> dict[str, np.ndarray]:
        """The values of the first ``m`` frames of ``table`` by role, as (m, count) arrays."""
        out = {}
        for role, start, nbytes, kind, count in self.fields:
            target = dtype if dtype is not None else (np.int32 if kind == "int32" else _FIXED_DTYPES[kind])
            if kind == "int32":
                raw = np.ascontiguousarray(table[:m, start:start + nbytes]).ravel()
                values = _decode_varints(raw).view(np.int64).astype(np.int32).reshape(m, count)
                out[role] = values.astype(target, copy=False)
            else:
                wire = _FIXED_DTYPES[kind]
                view = np.ndarray((m, count), wire, buffer=frames.buf, offset=frames.pos + start,
                                  strides=(self.size, wire.itemsize))
                out[role] = view.astype(np.dtype(target).newbyteorder("="))  # a writable copy
        return out


def _fixed_count(tensor: _RawTensor | None) -> int | None:
    """How many values a dense tensor holds when its values are one packed run of a fixed layout."""
    if tensor is None or tensor.kind == "bytes" or tensor.is_sparse or tensor.offset < 0 or not tensor.values:
        return None
    if tensor.kind == "int32":
        raw = np.frombuffer(tensor.values, np.uint8)
        return int((raw < 0x80).sum()) if raw[-1] < 0x80 else None
    itemsize = _FIXED_DTYPES[tensor.kind].itemsize
    return len(tensor.values) // itemsize if len(tensor.values) % itemsize == 0 else None


def _run(frames: FrameReader, template: _Template | None, dtype,
         run_limit: int | None) -> tuple[_Template | None, tuple | None]:
    """Consume a run of frames laid out like ``template`` (or like a new one made at the read position).

    Returns the template to keep and the run ``(values by role, number of its first record, whether it
    ended on a frame of another layout)``, or None for the run when the next frame must be read record
    by record.
    """
    table, m = template.matching(frames, run_limit) if template is not None else (None, 0)
    if m == 0:
        template = _Template.at(frames)
        if template is None:
            return None, None
        table, m = template.matching(frames, run_limit)
        if m == 0:  # e.g. non-zero padding bytes
            return None, None
    try:
        values = template.decode(frames, table, m, dtype)
    except _ProtoError:  # a malformed varint: the record-by-record path names it
        return None, None
    frames.pos += m * template.size
    frames.count += m
    return template, (values, frames.count - m + 1, m < len(table))


def _run_batch(values: dict[str, np.ndarray], first: int, layout: _Layout, where: dict) -> Batch:
    features, labels = values["features"], values.get("label")
    layout.width = _same_width(np.array([features.shape[1]]), layout.width, first, where, "feature values")
    if not _has_labels([labels is not None], first, layout, where):
        return Batch(features)
    layout.label_width = _same_width(np.array([labels.shape[1]]), layout.label_width, first, where,
                                     "label values")
    return Batch(features, labels.ravel() if labels.shape[1] == 1 else labels)


# --- Record by record ------------------------------------------------------------------------------------

def _batch(payloads: list[bytes], first: int, layout: _Layout, where: dict, dtype) -> Batch:
    with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf, as in a cast
        return _decoded_batch(payloads, first, layout, where, dtype)


def _decoded_batch(payloads: list[bytes], first: int, layout: _Layout, where: dict, dtype) -> Batch:
    rows = []
    for number, payload in enumerate(payloads, first):
        try:
            features, label, uid, _, _ = _scan_record(payload)
        except _ProtoError as exc:
            raise DataFormatError(f"malformed protobuf Record: {exc}", record=number, **where) from None
        rows.append((features.get(_VALUES_KEY), label.get(_VALUES_KEY), uid))
    return _assemble(rows, first, layout, where, dtype)


def _assemble(rows: list[tuple], first: int, layout: _Layout, where: dict, dtype) -> Batch:
    features = [row[0] for row in rows]
    for i, tensor in enumerate(features):
        if tensor is None or tensor.kind == "bytes":
            what = "no features['values'] tensor" if tensor is None else "bytes in features['values']"
            raise DataFormatError(f"record has {what}", record=first + i, **where)
    if any(t.is_sparse for t in features):
        matrix = _sparse_features(features, first, layout, where, dtype)
    else:
        flat, counts = _flat_values(features, first, where, dtype)
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
    flat, counts = _flat_values(labels, first, where, dtype)
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


def _flat_values(tensors: list[_RawTensor], first: int, where: dict, dtype) -> tuple[np.ndarray, np.ndarray]:
    """All values of ``tensors`` as one array of ``dtype`` (None: their own type), and the count per tensor."""
    kinds = {t.kind for t in tensors}
    if len(kinds) > 1:  # records of mixed dtypes (rare): decode one by one
        arrays = []
        for i, tensor in enumerate(tensors):
            try:
                arrays.append(_numbers(tensor.kind, tensor.values))
            except _ProtoError as exc:
                raise DataFormatError(str(exc), record=first + i, **where) from None
        counts = np.fromiter((a.size for a in arrays), np.int64, len(arrays))
        return np.concatenate(arrays).astype(dtype or np.result_type(*arrays)), counts
    kind = kinds.pop()
    raws = [t.values for t in tensors]
    if kind == "int32":
        values, counts = _varint_runs(raws, first, where)
        return values.view(np.int64).astype(np.int32).astype(dtype or np.int32, copy=False), counts
    wire = _FIXED_DTYPES[kind]
    lengths = np.fromiter(map(len, raws), np.int64, len(raws))
    bad = np.flatnonzero(lengths % wire.itemsize)
    if bad.size:
        raise DataFormatError(f"{kind} values take {lengths[bad[0]]} bytes, not a multiple of "
                              f"{wire.itemsize}", record=first + int(bad[0]), **where)
    values = np.frombuffer(b"".join(raws), wire).astype(np.dtype(dtype or wire).newbyteorder("="))
    return values, lengths // wire.itemsize


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
    except _ProtoError:
        for i, raw in enumerate(raws):  # find the record to name
            try:
                _decode_varints(raw)
            except _ProtoError as exc:
                raise DataFormatError(f"{exc} in a tensor", record=first + i, **where) from None
        raise DataFormatError("malformed varints in a tensor", record=first, **where) from None
    return values, done[ends] - done[starts]


def _sparse_features(tensors: list[_RawTensor], first: int, layout: _Layout, where: dict,
                     dtype) -> sp.csr_matrix:
    flat, counts = _flat_values(tensors, first, where, dtype)
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
