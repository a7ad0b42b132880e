"""One entry point for every training-data format: :func:`read` dispatches on the content type.

A reader is registered in :data:`READERS` under its media type as a function
``reader(stream, batch_size, params, *, source, channel) -> Iterator[Batch]`` where ``params`` are the
content-type parameters; adding a format (libsvm, parquet, JSON lines) is one entry there.
Gzip-compressed input is recognised by its magic bytes and decompressed on the fly, on files and on
non-seekable streams alike.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Callable, Iterator

from ..base.errors import DataFormatError, UnsupportedContentTypeError
from . import content_types as ct
from .batch import Batch
from .csv import read_csv
from .recordio import read_recordio_protobuf

_GZIP_MAGIC = b"\x1f\x8b"

Reader = Callable[..., Iterator[Batch]]


def _csv_reader(stream, batch_size: int, params: dict[str, str], *, source: str | None,
                channel: str | None) -> Iterator[Batch]:
    raw = params.get("label_size", "1")  # contracts §2.1: the first column is the target unless told
    try:
        label_size = int(raw)
    except ValueError:
        label_size = -1
    if label_size < 0:
        raise DataFormatError(f"content-type parameter label_size must be an integer >= 0; got {raw!r}",
                              channel=channel, source=source)
    return read_csv(stream, batch_size, label_size=label_size, source=source, channel=channel)


def _recordio_protobuf_reader(stream, batch_size: int, params: dict[str, str], *, source: str | None,
                              channel: str | None) -> Iterator[Batch]:
    return read_recordio_protobuf(stream, batch_size, source=source, channel=channel)


#: media type -> reader; see the module docstring for the reader signature.
READERS: dict[str, Reader] = {
    ct.CSV: _csv_reader,
    ct.RECORDIO_PROTOBUF: _recordio_protobuf_reader,
}


def supported_content_types() -> list[str]:
    """The media types :func:`read` accepts, sorted."""
    return sorted(READERS)


def resolve_reader(content_type: str, *, channel: str | None = None,
                   source: str | None = None) -> tuple[Reader, dict[str, str]]:
    """The registered reader for ``content_type`` and the type's parameters.

    Raises :class:`UnsupportedContentTypeError` (naming ``channel`` and ``source``) for a malformed or
    unsupported content type, listing the supported ones.
    """
    try:
        media, params = ct.parse_content_type(content_type)
    except UnsupportedContentTypeError as exc:
        raise UnsupportedContentTypeError(str(exc), channel=channel, source=source) from None
    reader = READERS.get(media)
    if reader is None:
        supported = ", ".join(supported_content_types())
        raise UnsupportedContentTypeError(f"content type {content_type!r} is not supported; supported: {supported}",
                                          channel=channel, source=source)
    return reader, params


def read(source, content_type: str, *, batch_size: int = 1000, channel: str | None = None) -> Iterator[Batch]:
    """Read a file or a binary stream of ``content_type`` as batches.

    ``source`` is a path (``str`` or ``os.PathLike``; opened and closed here) or an open binary stream
    (left open). Gzip data is decompressed transparently. An unsupported content type raises
    :class:`UnsupportedContentTypeError` at once; data errors are raised while iterating and name the
    channel and the file.
    """
    is_path = isinstance(source, (str, os.PathLike))
    name = os.fspath(source) if is_path else _stream_name(source)
    reader, params = resolve_reader(content_type, channel=channel, source=name)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    return _batches(source, is_path, name, reader, params, batch_size, channel)


def _batches(source, is_path: bool, name: str | None, reader: Reader, params: dict[str, str],
             batch_size: int, channel: str | None) -> Iterator[Batch]:
    if not is_path:
        yield from _decoded(source, name, reader, params, batch_size, channel)
        return
    try:
        stream = open(source, "rb")  # closed by the with below, also when the caller abandons the generator
    except OSError as exc:
        raise DataFormatError(f"cannot open: {exc.strerror or exc}", channel=channel, source=name) from None
    with stream:
        yield from _decoded(stream, name, reader, params, batch_size, channel)


def _decoded(stream, name: str | None, reader: Reader, params: dict[str, str], batch_size: int,
             channel: str | None) -> Iterator[Batch]:
    if isinstance(stream, io.TextIOBase):  # text streams (CSV given as str) cannot hold gzip bytes
        yield from reader(stream, batch_size, params, source=name, channel=channel)
        return
    stream, compressed = _maybe_gunzip(stream)
    if not compressed:
        yield from reader(stream, batch_size, params, source=name, channel=channel)
        return
    try:
        yield from reader(stream, batch_size, params, source=name, channel=channel)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataFormatError(f"corrupt gzip data: {exc}", channel=channel, source=name) from exc


def _maybe_gunzip(stream) -> tuple[object, bool]:
    """The stream, decompressing when it starts with the gzip magic; never seeks a non-seekable stream."""
    if _seekable(stream):
        start = stream.tell()
        head = _read_exactly(stream, len(_GZIP_MAGIC))
        stream.seek(start)
    else:
        head = _read_exactly(stream, len(_GZIP_MAGIC))
        stream = io.BufferedReader(_Prepended(head, stream), buffer_size=1 << 16)
    if head == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=stream, mode="rb"), True
    return stream, False


def _seekable(stream) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _read_exactly(stream, n: int) -> bytes:
    parts, have = [], 0
    while have < n:
        data = stream.read(n - have)
        if not data:
            break
        parts.append(data)
        have += len(data)
    return b"".join(parts)


def _stream_name(stream) -> str | None:
    name = getattr(stream, "name", None)
    return name if isinstance(name, str) else None


class _Prepended(io.RawIOBase):
    """A read-only raw stream: ``head`` bytes already read from ``stream``, then the rest of ``stream``."""

    def __init__(self, head: bytes, stream):
        super().__init__()
        self._head, self._stream = head, stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        if not data:
            return 0
        buffer[:len(data)] = data
        return len(data)
