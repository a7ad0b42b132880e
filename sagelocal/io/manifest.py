"""Manifests: ``ManifestFile`` lists of objects and ``AugmentedManifestFile`` JSON lines.

``s3://bucket/key`` references are resolved against a local folder, the *S3 root*: the object is the file
``<root>/<bucket>/<key>``. The root is the ``s3_root`` argument, or else the ``SAGELOCAL_S3_ROOT``
environment variable.

Augmented manifests: each line is a JSON object; ``AttributeNames`` (1-16, ordered) choose what is read.
A record travels as ``Batch.records`` entry ``{attribute name: bytes}`` holding exactly the bytes
SageMaker streams for the attribute: the object's bytes for a name ending in ``-ref``; the text of a
string value; the compact JSON text of any other value (``1`` -> ``b"1"``, ``[1, 3]`` -> ``b"[1,3]"``:
sagelocal's choice, the guide only shows a scalar). ``Batch.ids`` holds the manifest line numbers
(File mode) or the record's position in the stream (Pipe mode).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..base.batch import Batch, rebatch
from ..base.errors import DataFormatError
from ._streams import GZIP_ERRORS, guarded, maybe_gunzip, opened, source_name
from .csv import line_chunks
from .jsonlines import parse_lines
from .recordio import iter_recordio

S3_ROOT_VARIABLE = "SAGELOCAL_S3_ROOT"
MAX_ATTRIBUTES = 16


def check_attribute_names(names, *, channel: str | None = None) -> tuple[str, ...]:
    """``AttributeNames`` as a tuple, checked as the API does (1-16 distinct non-empty strings)."""
    if (not isinstance(names, (list, tuple)) or not 1 <= len(names) <= MAX_ATTRIBUTES
            or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names)):
        raise DataFormatError(f"AttributeNames must be a list of 1 to {MAX_ATTRIBUTES} distinct attribute "
                              f"names; got {names!r}", channel=channel)
    return tuple(names)


def resolve_s3(uri, s3_root=None, *, channel: str | None = None, source: str | None = None,
               record: int | None = None) -> Path:
    """The local file holding ``s3://bucket/key``: ``<s3 root>/<bucket>/<key>``."""
    where = {"channel": channel, "source": source, "record": record}
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise DataFormatError(f"expected an s3://bucket/key reference; got {str(uri)[:200]!r}", **where)
    bucket, _, key = uri[len("s3://"):].partition("/")
    parts = key.split("/")
    if not bucket or not key or bucket in (".", "..") or ".." in parts:
        raise DataFormatError(f"{uri!r} is not an s3://bucket/key reference sagelocal can resolve", **where)
    root = s3_root if s3_root is not None else os.environ.get(S3_ROOT_VARIABLE)
    if not root:
        raise DataFormatError(f"cannot resolve {uri!r}: set {S3_ROOT_VARIABLE} (or pass s3_root) to the local "
                              f"folder holding <bucket>/<key>", **where)
    return Path(root, bucket, *[p for p in parts if p])


def read_manifest(source, *, s3_root=None, channel: str | None = None) -> list[Path]:
    """The local files a ``ManifestFile`` lists: ``[{"prefix": "s3://bucket/prefix/"}, "key", ...]``."""
    name = source_name(source)
    with opened(source, channel=channel) as stream:
        stream, _ = maybe_gunzip(stream)
        try:
            raw = stream.read()
        except GZIP_ERRORS as exc:
            raise DataFormatError(f"corrupt gzip data: {exc}", channel=channel, source=name, record=1) from None
    try:
        entries = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise DataFormatError(f"manifest is not valid JSON: {exc}", channel=channel, source=name, record=1) from None
    if (not isinstance(entries, list) or not entries or not isinstance(entries[0], dict)
            or not isinstance(entries[0].get("prefix"), str)):
        raise DataFormatError('a manifest must be a JSON list starting with {"prefix": "s3://bucket/prefix/"}',
                              channel=channel, source=name, record=1)
    prefix = entries[0]["prefix"]
    paths = []
    for number, key in enumerate(entries[1:], 2):
        if not isinstance(key, str) or not key:
            raise DataFormatError(f"manifest entry must be a key string; got {str(key)[:80]!r}", channel=channel,
                                  source=name, record=number)
        paths.append(resolve_s3(prefix + key, s3_root, channel=channel, source=name, record=number))
    return paths


def manifest_lines(source, *, channel: str | None = None) -> list[tuple[str, int, dict]]:
    """``(manifest name, line number, object)`` for every non-blank line of an augmented manifest."""
    name = source_name(source)
    where = {"channel": channel, "source": name}

    def chunks(stream) -> Iterator[list]:
        for line, chunk in line_chunks(stream):
            numbers, objects = parse_lines(chunk, line, where)
            yield [(name, number, value) for number, value in zip(numbers, objects)]

    with opened(source, channel=channel) as stream:
        stream, compressed = maybe_gunzip(stream)
        return [entry for part in guarded(chunks, stream, compressed, **where) for entry in part]


def attribute_bytes(record: dict, attribute_names: Sequence[str], *, s3_root=None, channel: str | None = None,
                    source: str | None = None, line: int | None = None) -> dict[str, bytes]:
    """The bytes SageMaker streams for each of ``attribute_names`` of one manifest line."""
    where = {"channel": channel, "source": source, "record": line}
    out = {}
    for name in attribute_names:
        if name not in record:
            raise DataFormatError(f"attribute '{name}' (in AttributeNames) is missing", **where)
        value = record[name]
        if name.endswith("-ref"):
            path = resolve_s3(value, s3_root, **where)
            try:
                out[name] = path.read_bytes()
            except OSError as exc:
                raise DataFormatError(f"attribute '{name}': cannot read {value!r} at '{path}': "
                                      f"{exc.strerror or exc}", **where) from None
        elif isinstance(value, str):
            out[name] = value.encode("utf-8")
        else:
            out[name] = json.dumps(value, separators=(",", ":")).encode("utf-8")
    return out


def read_augmented_manifest(source, attribute_names: Sequence[str], *, s3_root=None, batch_size: int = 1000,
                            channel: str | None = None) -> Iterator[Batch]:
    """Read an augmented manifest (path or binary stream) as batches of attribute records (see module)."""
    names = check_attribute_names(attribute_names, channel=channel)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    return rebatch(_manifest_batches(source, names, s3_root, channel), batch_size)


def _manifest_batches(source, names: tuple[str, ...], s3_root, channel: str | None) -> Iterator[Batch]:
    name = source_name(source)
    where = {"channel": channel, "source": name}

    def batches(stream) -> Iterator[Batch]:
        for line, chunk in line_chunks(stream):
            numbers, objects = parse_lines(chunk, line, where)
            if objects:
                yield line_records(list(zip([name] * len(numbers), numbers, objects)), names, s3_root, channel)

    with opened(source, channel=channel) as stream:
        stream, compressed = maybe_gunzip(stream)
        yield from guarded(batches, stream, compressed, **where)


def line_records(lines: list[tuple[str, int, dict]], names: Sequence[str], s3_root, channel: str | None) -> Batch:
    """A batch of attribute records for ``(manifest, line number, object)`` entries."""
    records = [attribute_bytes(value, names, s3_root=s3_root, channel=channel, source=source, line=number)
               for source, number, value in lines]
    return Batch(records=records, ids=np.array([number for _, number, _ in lines]))


def read_attribute_frames(stream, attribute_names: Sequence[str], batch_size: int = 1000, *,
                          source: str | None = None, channel: str | None = None) -> Iterator[Batch]:
    """Read a Pipe-mode augmented-manifest stream with ``RecordWrapperType=RecordIO``.

    Every attribute arrives as its own RecordIO frame, in ``AttributeNames`` order, line after line; each
    group of frames becomes one record ``{name: bytes}``; ids are 1-based record positions.
    """
    names = check_attribute_names(attribute_names, channel=channel)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    where = {"source": source if source is not None else source_name(stream), "channel": channel}
    stream, compressed = maybe_gunzip(stream)
    return rebatch(guarded(lambda s: _frame_groups(s, names, where), stream, compressed, **where), batch_size)


def _frame_groups(stream, names: tuple[str, ...], where: dict) -> Iterator[Batch]:
    records, current, number = [], [], 0
    for payload in iter_recordio(stream, **where):
        current.append(payload)
        if len(current) == len(names):
            records.append(dict(zip(names, current)))
            current = []
            number += 1
            if len(records) == 1024:
                yield Batch(records=records, ids=np.arange(number - len(records) + 1, number + 1))
                records = []
    if current:
        raise DataFormatError(f"the stream ends inside a record: {len(current)} of {len(names)} attribute frames",
                              record=number + 1, **where)
    if records:
        yield Batch(records=records, ids=np.arange(number - len(records) + 1, number + 1))
