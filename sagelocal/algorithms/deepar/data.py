"""DeepAR's data: series records, their files, and the flat panel windows are cut from.

A *record* is SageMaker's JSON object ``{"start": "2020-01-01 00:00:00", "target": [...], "cat": [...],
"dynamic_feat": [[...], ...]}`` (missing targets as ``null`` or ``"NaN"``). Files hold one record per
line (JSON lines, optionally gzip) or one per row (Parquet). :func:`parse_series` checks records and
turns them into a :class:`SeriesPanel`; :class:`FlatPanel` lays a panel out as one flat array per
quantity so that training windows and forecast contexts of any number of series are a single gather.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...base.errors import DataFormatError, MissingDependencyError
from ...io import Channel, is_channel, read
from ...io.content_types import JSONLINES
from .features import Frequency

#: Channel content types (and SageMaker's short names) read as JSON lines or as Parquet.
JSON_TYPES = ("application/jsonlines", "application/json", "application/x-jsonlines", "json", "json.gz",
              "jsonlines")
PARQUET_TYPES = ("application/x-parquet", "parquet")


# ----------------------------------------------------------------------------------------- records
@dataclass
class SeriesPanel:
    """Checked series: ``targets`` (float32, NaN = missing), ``starts`` (datetime64[s]), optional
    ``cats`` (int64, one row per series) and ``dynamic`` (float32, features x time, per series)."""

    targets: list[np.ndarray]
    starts: np.ndarray
    cats: np.ndarray | None
    dynamic: list[np.ndarray] | None

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(t) for t in self.targets), dtype=np.int64, count=len(self.targets))

    def observed_count(self) -> int:
        return int(sum(np.count_nonzero(~np.isnan(t)) for t in self.targets))

    def subset(self, keep: np.ndarray) -> SeriesPanel:
        """The series where ``keep`` (a boolean mask) is true."""
        index = np.flatnonzero(keep)
        return SeriesPanel([self.targets[i] for i in index], self.starts[index],
                           None if self.cats is None else self.cats[index],
                           None if self.dynamic is None else [self.dynamic[i] for i in index])


def parse_series(records: Iterable[Any], *, channel: str | None = None, what: str = "record") -> SeriesPanel:
    """Check SageMaker series records and gather them into a :class:`SeriesPanel`.

    ``records`` yields dicts, or ``(source, number, dict)`` triples from :func:`read_records` so that
    errors name the file and line. Every record must have ``start`` and ``target``; ``cat`` and
    ``dynamic_feat`` are optional but, when one record has them, every record must have the same count.
    """
    targets, starts, cats, dynamic = [], [], [], []
    first: tuple | None = None  # (has cat, n cat, has dyn, n dyn, where) of the first record
    for number, item in enumerate(records):
        source, where, record = (None, number, item) if not isinstance(item, tuple) else item
        fail = _failer(channel, source, where, what)
        if not isinstance(record, dict):
            fail(f"must be a JSON object with 'start' and 'target'; got {type(record).__name__}")
        for key in ("start", "target"):
            if key not in record:
                fail(f"has no '{key}' field (fields: {', '.join(sorted(record)) or 'none'})")
        starts.append(_start(record["start"], fail))
        targets.append(_target(record["target"], fail))
        cat = _cat(record.get("cat"), fail)
        dyn = _dynamic(record.get("dynamic_feat"), fail)
        layout = (cat is not None, 0 if cat is None else len(cat), dyn is not None, 0 if dyn is None else len(dyn))
        if first is None:
            first = (*layout, where)
        elif layout != first[:4]:
            fail(f"has {_describe(layout)} but {what} {first[4]} has {_describe(first[:4])}; every series "
                 f"must have the same number of cat and dynamic_feat features")
        cats.append(cat)
        dynamic.append(dyn)
    starts_array = np.array(starts, dtype="datetime64[s]") if starts else np.zeros(0, "datetime64[s]")
    has_cat = bool(first and first[0])
    has_dyn = bool(first and first[2])
    cat_array = np.array(cats, dtype=np.int64).reshape(len(cats), -1) if has_cat else None
    return SeriesPanel(targets, starts_array, cat_array, dynamic if has_dyn else None)


def _failer(channel, source, where, what):
    def fail(message: str):
        if source is None:
            raise DataFormatError(f"{what} {where} {message}", channel=channel)
        raise DataFormatError(message, channel=channel, source=source, record=where)
    return fail


def _describe(layout) -> str:
    has_cat, n_cat, has_dyn, n_dyn = layout
    cat = f"{n_cat} cat" if has_cat else "no cat"
    dyn = f"{n_dyn} dynamic_feat" if has_dyn else "no dynamic_feat"
    return f"{cat} and {dyn}"


def _start(value, fail) -> np.datetime64:
    if isinstance(value, (str, np.datetime64)) or hasattr(value, "isoformat"):
        try:
            parsed = np.datetime64(value.replace(tzinfo=None) if hasattr(value, "tzinfo") and
                                   not isinstance(value, str) else value, "s")
        except (ValueError, TypeError):
            parsed = None
        if parsed is not None and not np.isnat(parsed):
            return parsed
    fail(f"field 'start' must be a timestamp 'YYYY-MM-DD HH:MM:SS' (or 'YYYY-MM-DD'); got {value!r}")


def _target(value, fail) -> np.ndarray:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        fail(f"field 'target' must be an array of numbers (missing values as null or \"NaN\"); "
             f"got {type(value).__name__}")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        fail(f"field 'target' must hold numbers, null or \"NaN\"; {exc}")
    if array.ndim != 1:
        fail(f"field 'target' must be a flat array of numbers; got {array.ndim} dimensions")
    if np.isinf(array).any():
        fail(f"field 'target' holds an infinite value at index {int(np.flatnonzero(np.isinf(array))[0])}")
    return array.astype(np.float32)


def _cat(value, fail) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)):
        fail(f"field 'cat' must be an array of non-negative integers; got {value!r}")
    codes = []
    for code in value:
        if isinstance(code, float) and code.is_integer():
            code = int(code)
        if isinstance(code, bool) or not isinstance(code, (int, np.integer)) or code < 0:
            fail(f"field 'cat' must hold non-negative integer codes (0-based); got {code!r}")
        codes.append(int(code))
    return codes


def _dynamic(value, fail) -> np.ndarray | None:
    if value is None:
        return None
    try:
        array = np.asarray(value.tolist() if isinstance(value, np.ndarray) and value.dtype == object else value,
                           dtype=np.float64)
    except (TypeError, ValueError) as exc:
        fail(f"field 'dynamic_feat' must be an array of equally long arrays of numbers; {exc}")
    if array.ndim == 1 and array.size == 0:
        array = array.reshape(0, 0)
    if array.ndim != 2:
        fail(f"field 'dynamic_feat' must be an array of arrays of numbers; got {array.ndim} dimensions")
    if not np.isfinite(array).all():
        fail("field 'dynamic_feat' must not have missing or infinite values (only target may)")
    return array.astype(np.float32)


# ------------------------------------------------------------------------------------------- files
def file_format(path: str | os.PathLike, content_type: str | None) -> str:
    """``"jsonlines"`` or ``"parquet"``: from the extension, else from the channel's content type."""
    name = os.fspath(path).lower()
    if name.endswith((".parquet", ".parquet.gz", ".parquet.snappy", ".pq")):
        return "parquet"
    if name.endswith((".json", ".json.gz", ".jsonl", ".jsonl.gz", ".jsonlines")):
        return "jsonlines"
    media = (content_type or "").split(";")[0].strip().lower()
    if media in PARQUET_TYPES:
        return "parquet"
    if media in JSON_TYPES or not media:
        return "jsonlines"
    raise DataFormatError(f"content type {content_type!r} is not a DeepAR format; use application/jsonlines "
                          f"(json, json.gz) or parquet, or name files *.json, *.json.gz, *.parquet",
                          source=os.fspath(path))


def read_records(stream, content_type: str | None = None, *, channel: str | None = None, name: str | None = None
                 ) -> Iterator[tuple[str | None, int, Any]]:
    """``(object, record number, record)`` for each series in one object's binary stream named ``name``.

    The format comes from the name's extension, else from ``content_type``. JSON lines go through
    :func:`sagelocal.io.read`, which numbers records by their 1-based line; Parquet rows are read here
    (the shared Parquet reader is tabular) and numbered from 0.
    """
    if file_format(name or "", content_type) == "parquet":
        yield from _parquet_records(stream, name, channel)
        return
    for batch in read(stream, JSONLINES, batch_size=1024, channel=channel):
        if batch.records is None:
            raise DataFormatError("holds feature rows ({\"features\": ...}), not series records with 'start' and "
                                  "'target'", channel=channel, source=name)
        for number, record in zip(batch.ids, batch.records):
            yield name, int(number), record


def _parquet_records(stream, name, channel) -> Iterator[tuple[str | None, int, Any]]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError("forecasting-deepar: reading Parquet series needs pyarrow, which is not "
                                     "installed: pip install 'sagelocal[parquet]'") from None
    try:  # Parquet needs random access: a FIFO, a gzip stream or a RecordIO frame is read into memory
        table = pq.read_table(pa.BufferReader(stream.read()))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
        raise DataFormatError(f"cannot read Parquet: {exc}", channel=channel, source=name) from None
    for number, row in enumerate(table.to_pylist()):
        yield name, number, row


def series_channel(path, name: str) -> Channel:
    """A file or folder path given to ``fit`` or ``predict``: a File-mode channel of series files (each
    read by its extension, JSON lines when it has none)."""
    return Channel(path, JSONLINES, name=name, default_content_type=JSONLINES)


def records_of(source, name: str) -> Iterator[Any]:
    """The records of a ``fit`` argument: a :class:`SeriesSource`, a channel, or a file or folder path.

    A channel is read through :meth:`Channel.streams`, so its sharding, shuffling, manifests, Pipe mode
    and RecordIO wrapping apply; each object is read by its extension, else by the channel's content type.
    """
    if isinstance(source, SeriesSource):
        yield from source.records
        return
    if isinstance(source, (str, os.PathLike)):
        source = series_channel(source, name)
    if not is_channel(source):
        raise DataFormatError(f"{name}: DeepAR reads series records: pass a list of dicts, a file or folder "
                              f"path, or a sagelocal.io.Channel; got {type(source).__name__}", channel=name)
    for object_name, stream in source.streams(epoch=0):
        yield from read_records(stream, source.content_type, channel=name, name=object_name)


class SeriesSource:
    """In-memory series records given to ``fit`` (a list of SageMaker record dicts).

    ``batches`` yields lists of records so that it is a data source like arrays and channels.
    """

    def __init__(self, records: Sequence[Any], name: str = "train"):
        self.records, self.name = records, name

    def batches(self, batch_size: int, epoch: int = 0) -> Iterator[list]:
        """Lists of ``batch_size`` records (the same every epoch)."""
        for start in range(0, len(self.records), batch_size):
            yield list(self.records[start:start + batch_size])


# ------------------------------------------------------------------------------------- flat layout
@dataclass
class Windows:
    """A batch of windows: ``target``/``observed`` (B, W), ``features`` (B, W, F), ``cat`` (B, K)."""

    target: torch.Tensor
    observed: torch.Tensor
    features: torch.Tensor
    cat: torch.Tensor


class FlatPanel:
    """A panel laid out flat: per series ``pad`` empty steps, its target, then ``future`` steps.

    Missing targets are forward-filled (the model reads them through lags; the observed mask keeps
    them out of the likelihood and the scale); pads and leading gaps read as 0. ``features`` holds the
    calendar features, the age feature and the dynamic features of every position.
    """

    def __init__(self, panel: SeriesPanel, freq: Frequency, *, pad: int, future: int, num_dynamic: int,
                 use_cat: bool, device: torch.device):
        lengths = panel.lengths
        spans = pad + lengths + future
        self.offsets = np.concatenate([[0], np.cumsum(spans)[:-1]]).astype(np.int64) + pad  # first target step
        self.lengths, self.pad, self.future = lengths, pad, future
        n_flat = int(spans.sum())
        series = np.repeat(np.arange(len(panel)), spans)
        step = np.arange(n_flat, dtype=np.int64) - self.offsets[series]  # steps since the series start
        target = np.zeros(n_flat, np.float32)
        inside = (step >= 0) & (step < lengths[series])
        target[inside] = np.concatenate(panel.targets) if len(panel) else []
        observed = inside & ~np.isnan(target)
        target = _forward_fill(target, observed | ~inside)
        ordinals = freq.ordinal(panel.starts)[series] + step * freq.step
        features = [freq.features(ordinals, step)]
        if num_dynamic:
            features.append(_flat_dynamic(panel, spans, pad, lengths + future, num_dynamic))
        self.device = device
        self.target = torch.from_numpy(target).to(device)
        self.observed = torch.from_numpy(observed.astype(np.float32)).to(device)
        self.features = torch.from_numpy(np.concatenate(features, axis=1)).to(device)
        cats = panel.cats if use_cat and panel.cats is not None else np.zeros((len(panel), 0), np.int64)
        self.cats = torch.from_numpy(np.ascontiguousarray(cats)).to(device)

    def windows(self, series: np.ndarray, split: np.ndarray, before: int, after: int) -> Windows:
        """Windows of steps ``split - before`` .. ``split + after - 1`` of each chosen series."""
        first = torch.from_numpy(self.offsets[series] + split - before).to(self.device)
        index = first[:, None] + torch.arange(before + after, device=self.device)
        series_t = torch.from_numpy(np.asarray(series, dtype=np.int64)).to(self.device)
        return Windows(self.target[index], self.observed[index], self.features[index], self.cats[series_t])


def _forward_fill(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Each unknown value replaced by the last known one before it (``known[0]`` must hold)."""
    index = np.where(known, np.arange(len(values)), 0)
    np.maximum.accumulate(index, out=index)
    return values[index]


def _flat_dynamic(panel: SeriesPanel, spans: np.ndarray, pad: int, needed: np.ndarray, count: int) -> np.ndarray:
    """The dynamic features of every flat position: zeros in the pads, the first ``needed`` values after."""
    parts = []
    for dyn, span, need in zip(panel.dynamic, spans, needed):
        block = np.zeros((int(span), count), np.float32)
        block[pad:pad + int(need)] = dyn[:, :int(need)].T
        parts.append(block)
    return np.concatenate(parts) if parts else np.zeros((0, count), np.float32)


def mean_abs_scale(panel: SeriesPanel) -> float:
    """Mean over series of their mean absolute observed value (zero and empty series left out).

    The scale of a window whose context has no observation (cold start), as GluonTS uses the batch's
    mean scale; fixed at training time so that a forecast does not depend on the other series sent.
    """
    scales = [float(np.nanmean(np.abs(t))) for t in panel.targets if np.any(~np.isnan(t))]
    scales = [s for s in scales if s > 0 and math.isfinite(s)]
    return float(np.mean(scales)) if scales else 1.0
