"""Opening what readers are given: a path or an open binary stream, gzip recognised by its magic bytes.

Shared by every reader so that all of them accept the same inputs, close the files they open (also when
the caller abandons a generator half way) and decompress gzip on files and non-seekable streams alike.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ..base.errors import DataFormatError

GZIP_MAGIC = b"\x1f\x8b"
#: Exceptions that mean corrupt or truncated gzip data (gzip.BadGzipFile is an OSError).
GZIP_ERRORS = (OSError, EOFError, zlib.error)


def is_path(source) -> bool:
    return isinstance(source, (str, os.PathLike))


def source_name(source) -> str:
    """The name errors use for ``source``: the path, the stream's file name, or ``<BytesIO>``-style."""
    if is_path(source):
        return os.fspath(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else f"<{type(source).__name__}>"


@contextmanager
def opened(source, *, channel: str | None = None) -> Iterator:
    """A binary stream for ``source``: a path is opened (and closed on exit), a stream is passed through."""
    if not is_path(source):
        yield source
        return
    try:
        stream = open(source, "rb")
    except OSError as exc:
        raise DataFormatError(f"cannot open: {exc.strerror or exc}", channel=channel,
                              source=os.fspath(source), record=1) from None
    with stream:
        yield stream


@contextmanager
def open_object(source, *, channel: str | None = None) -> Iterator:
    """A binary stream of one object's bytes: ``source`` is a path (opened here and closed on exit) or an
    open binary stream; gzip data (recognised by its magic bytes) is decompressed on the fly.

    The one way algorithms get at an object's raw bytes (a FIFO is just another path). Corrupt or
    truncated gzip data raises :class:`DataFormatError` naming the source when it is read.
    """
    with opened(source, channel=channel) as stream:
        data, compressed = maybe_gunzip(stream)
        if not compressed:
            yield data
            return
        with _CheckedGzip(data, source=source_name(source), channel=channel) as checked:
            yield checked


class _CheckedGzip(io.BufferedIOBase):
    """A decompressed stream whose corrupt-gzip errors are :class:`DataFormatError` naming the source."""

    def __init__(self, inner, *, source: str, channel: str | None):
        super().__init__()
        self._inner, self.name, self._channel = inner, source, channel

    def _call(self, method, *args):
        try:
            return getattr(self._inner, method)(*args)
        except GZIP_ERRORS as exc:
            raise DataFormatError(f"corrupt gzip data: {exc}", channel=self._channel, source=self.name) from None

    def readable(self) -> bool:
        return True

    def read(self, size=-1):
        return self._call("read", size)

    def read1(self, size=-1):
        return self._call("read1", size)

    def readinto(self, buffer):
        return self._call("readinto", buffer)

    def readline(self, size=-1):
        return self._call("readline", size)

    def peek(self, size=0):
        return self._call("peek", size)

    def close(self) -> None:
        self._inner.close()
        super().close()


def maybe_gunzip(stream) -> tuple[object, bool]:
    """The stream, decompressing when it starts with the gzip magic; never seeks a non-seekable stream."""
    if isinstance(stream, io.TextIOBase):  # text streams (CSV given as str) cannot hold gzip bytes
        return stream, False
    if seekable(stream):
        start = stream.tell()
        head = read_exactly(stream, len(GZIP_MAGIC))
        stream.seek(start)
    else:
        head = read_exactly(stream, len(GZIP_MAGIC))
        stream = io.BufferedReader(Prepended(head, stream), buffer_size=1 << 16)
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=stream, mode="rb"), True
    return stream, False


def guarded(batches: Callable[[object], Iterator], stream, compressed: bool, *, source: str | None,
            channel: str | None) -> Iterator:
    """Run ``batches(stream)``, turning corrupt-gzip errors into :class:`DataFormatError`.

    The record number named is the first one not yet delivered (gzip cannot say which record a corrupt
    block belongs to).
    """
    if not compressed:
        yield from batches(stream)
        return
    delivered = 0
    try:
        for batch in batches(stream):
            delivered += len(batch)
            yield batch
    except GZIP_ERRORS as exc:
        raise DataFormatError(f"corrupt gzip data after {delivered} records: {exc}", channel=channel,
                              source=source, record=delivered + 1) from exc


def seekable(stream) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def read_exactly(stream, n: int) -> bytes:
    """Up to ``n`` bytes: fewer only at end of stream (a pipe may deliver them in several reads)."""
    parts, have = [], 0
    while have < n:
        data = stream.read(n - have)
        if not data:
            break
        parts.append(data)
        have += len(data)
    return b"".join(parts)


class Prepended(io.RawIOBase):
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
