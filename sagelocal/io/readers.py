"""One entry point for every training-data format: :func:`read` dispatches on the content type.

A reader is registered in :data:`READERS` under its media type as a function
``reader(stream, batch_size, params, *, source, channel) -> Iterator[Batch]`` where ``params`` are the
content-type parameters; adding a format is one entry there.
Gzip-compressed input is recognised by its magic bytes and decompressed on the fly, on files and on
non-seekable streams alike (:mod:`._streams`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from ..base.batch import Batch
from ..base.errors import DataFormatError, UnsupportedContentTypeError
from . import content_types as ct
from ._streams import guarded, maybe_gunzip, opened, source_name
from .csv import read_csv
from .jsonlines import read_jsonlines
from .libsvm import read_libsvm
from .parquet import read_parquet
from .recordio_reader import iter_recordio_protobuf
from .text import read_text

Reader = Callable[..., Iterator[Batch]]


def _label_size(params: dict[str, str], *, source: str | None, channel: str | None) -> int:
    raw = params.get("label_size", "1")  # the first column is the target unless told
    try:
        label_size = int(raw)
    except ValueError:
        label_size = -1
    if label_size < 0:
        raise DataFormatError(f"content-type parameter label_size must be an integer >= 0; got {raw!r}",
                              channel=channel, source=source)
    return label_size


def _csv_reader(stream, batch_size: int, params: dict[str, str], *, source: str | None,
                channel: str | None) -> Iterator[Batch]:
    label_size = _label_size(params, source=source, channel=channel)
    return read_csv(stream, batch_size, label_size=label_size, source=source, channel=channel)


def _recordio_protobuf_reader(stream, batch_size: int, params: dict[str, str], *, source: str | None,
                              channel: str | None) -> Iterator[Batch]:
    return iter_recordio_protobuf(stream, batch_size, source=source, channel=channel)


def _libsvm_reader(stream, batch_size: int, params: dict[str, str], *, source: str | None,
                   channel: str | None) -> Iterator[Batch]:
    return read_libsvm(stream, batch_size, source=source, channel=channel)


def _parquet_reader(stream, batch_size: int, params: dict[str, str], *, source: str | None,
                    channel: str | None) -> Iterator[Batch]:
    label_size = _label_size(params, source=source, channel=channel)
    return read_parquet(stream, batch_size, label_size=label_size, source=source, channel=channel)


def _jsonlines_reader(stream, batch_size: int, params: dict[str, str], *, source: str | None,
                      channel: str | None) -> Iterator[Batch]:
    return read_jsonlines(stream, batch_size, source=source, channel=channel)


def _text_reader(stream, batch_size: int, params: dict[str, str], *, source: str | None,
                 channel: str | None) -> Iterator[Batch]:
    return read_text(stream, batch_size, charset=params.get("charset") or "utf-8", source=source,
                     channel=channel)


#: media type -> reader; see the module docstring for the reader signature.
READERS: dict[str, Reader] = {
    ct.CSV: _csv_reader,
    ct.RECORDIO_PROTOBUF: _recordio_protobuf_reader,
    ct.LIBSVM: _libsvm_reader,
    ct.PARQUET: _parquet_reader,
    ct.JSONLINES: _jsonlines_reader,
    ct.TEXT: _text_reader,
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
    channel, the file (or ``<BytesIO>``-style stream) and the record.
    """
    name = source_name(source)
    reader, params = resolve_reader(content_type, channel=channel, source=name)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    return _batches(source, name, reader, params, batch_size, channel)


def _batches(source, name: str, reader: Reader, params: dict[str, str], batch_size: int,
             channel: str | None) -> Iterator[Batch]:
    with opened(source, channel=channel) as stream:  # closed also when the caller abandons the generator
        stream, compressed = maybe_gunzip(stream)
        yield from guarded(lambda s: reader(s, batch_size, params, source=name, channel=channel), stream,
                           compressed, source=name, channel=channel)
