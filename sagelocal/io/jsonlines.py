"""JSON Lines (``application/jsonlines``): one JSON object per line.

Two shapes, decided by the first record of the stream:

- **Tabular** (the first-party inference shape): ``{"features": [1.5, 16.0]}``,
  ``{"data": {"features": {"values": [...]}}}`` or, sparse, ``{"data": {"features": {"keys": [...],
  "shape": [d], "values": [...]}}}``. These fill ``Batch.features`` (dense float32, or CSR when any record
  is sparse) like any tabular reader. A ``"label"`` (number or list of numbers) fills ``Batch.labels``
  (sagelocal's choice: the guide documents no label field for JSON Lines training data).
- **Records** (DeepAR series, Object2Vec pairs, BlazingText manifests, ...): anything else. Each parsed
  object travels as a ``dict`` in ``Batch.records`` with ``features`` None, and ``Batch.ids`` holds the
  1-based line numbers, so an algorithm can name the line it rejects.

Blank lines are skipped. A line that is not UTF-8, not JSON, or not an object raises
:class:`DataFormatError` naming the line (as ``record``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..base.batch import Batch, rebatch
from ..base.errors import DataFormatError
from .csv import line_chunks

_MISSING = object()


@dataclass
class _Layout:
    tabular: bool | None = None
    width: int | None = None
    has_label: bool | None = None
    label_shape: tuple | None = None


def read_jsonlines(stream, batch_size: int = 1000, *, source: str | None = None,
                   channel: str | None = None) -> Iterator[Batch]:
    """Read JSON Lines as batches of ``batch_size`` records: tabular rows or parsed objects (see module)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    if source is None:
        name = getattr(stream, "name", None)
        source = name if isinstance(name, str) else f"<{type(stream).__name__}>"
    return rebatch(_batches(stream, {"channel": channel, "source": source}), batch_size)


def is_tabular(record: dict) -> bool:
    """Whether a JSON Lines record has the first-party ``features`` shape."""
    return _features_of(record) is not _MISSING


def _features_of(record: dict):
    if "features" in record:
        return record["features"]
    data = record.get("data")
    if isinstance(data, dict) and "features" in data:
        return data["features"]
    return _MISSING


def _batches(stream, where: dict) -> Iterator[Batch]:
    layout = _Layout()
    for line, chunk in line_chunks(stream):
        numbers, objects = parse_lines(chunk, line, where)
        if not objects:
            continue
        if layout.tabular is None:
            layout.tabular = is_tabular(objects[0])
        if layout.tabular:
            with np.errstate(over="ignore"):  # a number beyond float32's range becomes inf, as in a cast
                batch = _tabular(numbers, objects, layout, where)
            yield batch
        else:
            yield Batch(records=objects, ids=np.array(numbers))


def parse_lines(chunk: bytes, line: int, where: dict) -> tuple[list[int], list[dict]]:
    """(line numbers, parsed objects) of the non-blank lines of ``chunk``, whose first line is ``line``."""
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"line is not valid UTF-8 ({exc.reason})",
                              record=line + chunk.count(b"\n", 0, exc.start), **where) from None
    numbers, objects = [], []
    for number, raw in enumerate(text.split("\n")[:-1], line):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"not valid JSON: {exc.msg} at column {exc.colno}", record=number,
                                  **where) from None
        except RecursionError:
            raise DataFormatError("JSON nested too deeply", record=number, **where) from None
        if not isinstance(value, dict):
            raise DataFormatError(f"line holds a JSON {type(value).__name__}, not an object", record=number,
                                  **where)
        numbers.append(number)
        objects.append(value)
    return numbers, objects


def _tabular(numbers: list[int], objects: list[dict], layout: _Layout, where: dict) -> Batch:
    rows = []
    for number, record in zip(numbers, objects):
        features = _features_of(record)
        if isinstance(features, list):
            rows.append((features, None, None))
        elif isinstance(features, dict) and isinstance(features.get("values", []), list):
            rows.append((features.get("values", []), features.get("keys"), features.get("shape")))
        else:
            what = "no 'features'" if features is _MISSING else f"'features' of type {type(features).__name__}"
            raise DataFormatError(f"record has {what}; expected a list of numbers or "
                                  f"{{'values': [...], 'keys': [...], 'shape': [...]}}", record=number, **where)
    if any(keys is not None for _, keys, _ in rows):
        features = _sparse(rows, numbers, layout, where)
    else:
        features = _numeric([values for values, _, _ in rows], numbers, where, "features")
        if features.ndim != 2:
            raise DataFormatError("'features' must be a flat list of numbers", record=numbers[0], **where)
        _check_width(features.shape[1], numbers[0], layout, where)
    labels = _labels(objects, numbers, layout, where)
    return Batch(features, labels)


def _check_width(width: int, number: int, layout: _Layout, where: dict) -> None:
    if layout.width is None:
        layout.width = width
    elif width != layout.width:
        raise DataFormatError(f"record has {width} features; earlier records have {layout.width}", record=number,
                              **where)


def _numeric(values: list, numbers: list[int], where: dict, what: str) -> np.ndarray:
    """``values`` (one entry per record) as a float32 array; errors name the first bad record."""
    try:
        return np.array(values, dtype=np.float32)
    except (ValueError, TypeError, OverflowError):
        pass
    width = None
    for number, value in zip(numbers, values):
        try:
            row = np.array(value, dtype=np.float32)
        except (ValueError, TypeError, OverflowError):
            raise DataFormatError(f"{what} must be numbers; got {str(value)[:80]}", record=number, **where) from None
        if width is None:
            width = row.shape
        elif row.shape != width:
            got, before = (row.shape[0], width[0]) if row.ndim == len(width) == 1 else (row.shape, width)
            raise DataFormatError(f"{what} has {got} values; earlier records have {before}", record=number,
                                  **where)
    raise DataFormatError(f"{what} must be numbers", record=numbers[0], **where)  # not reached in practice


def _sparse(rows: list[tuple], numbers: list[int], layout: _Layout, where: dict) -> sp.csr_matrix:
    """CSR rows from ``(values, keys, shape)`` entries; dense entries count as keys 0..n-1."""
    indptr, all_keys, all_values = [0], [], []
    for number, (values, keys, shape) in zip(numbers, rows):
        values = _numeric([values], [number], where, "'values'").ravel()
        if keys is None:
            keys = np.arange(values.size)
            width = values.size
        else:
            keys = _numeric([keys], [number], where, "'keys'").ravel()
            if not isinstance(shape, list) or not shape:
                raise DataFormatError("sparse features (with 'keys') need a 'shape'", record=number, **where)
            width = int(np.prod(_numeric([shape], [number], where, "'shape'").astype(np.int64)))
            if keys.size != values.size:
                raise DataFormatError(f"{keys.size} keys for {values.size} values", record=number, **where)
            if keys.size and ((keys < 0) | (keys >= width) | (keys != np.floor(keys))).any():
                raise DataFormatError(f"keys must be integers in [0, {width})", record=number, **where)
        _check_width(width, number, layout, where)
        all_keys.append(keys.astype(np.int64))
        all_values.append(values)
        indptr.append(indptr[-1] + values.size)
    matrix = sp.csr_matrix((np.concatenate(all_values), np.concatenate(all_keys), np.array(indptr)),
                           shape=(len(rows), layout.width))
    matrix.sum_duplicates()
    return matrix


def _labels(objects: list[dict], numbers: list[int], layout: _Layout, where: dict) -> np.ndarray | None:
    present = ["label" in record for record in objects]
    if layout.has_label is None:
        layout.has_label = present[0]
    if not all(p == layout.has_label for p in present):
        i = present.index(not layout.has_label)
        what = "no 'label'" if layout.has_label else "a 'label' while earlier records have none"
        raise DataFormatError(f"record has {what}", record=numbers[i], **where)
    if not layout.has_label:
        return None
    labels = _numeric([record["label"] for record in objects], numbers, where, "'label'")
    if layout.label_shape is None:
        layout.label_shape = labels.shape[1:]
    if labels.shape[1:] != layout.label_shape or labels.ndim > 2:
        raise DataFormatError(f"labels have shape {labels.shape[1:]}; earlier records have {layout.label_shape}",
                              record=numbers[0], **where)
    return labels
