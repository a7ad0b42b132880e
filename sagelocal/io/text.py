"""Plain text (``text/plain``): one record per line, as BlazingText and NTM's vocabulary channel read it.

Records travel in :attr:`Batch.records` as ``str`` (the line without ``\\n`` or ``\\r\\n``) with
``features`` None, and :attr:`Batch.ids` holds their 1-based line numbers. Every line is a record, blank
ones included, because line order carries meaning (NTM's ``vocab.txt`` maps line *i* to token id *i*);
a last line without a newline is still a record. Text is decoded as UTF-8 unless the content type names
another ``charset``.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator

import numpy as np

from ..base.batch import Batch, rebatch
from ..base.errors import DataFormatError
from .csv import line_chunks


def read_text(stream, batch_size: int = 1000, *, charset: str = "utf-8", source: str | None = None,
              channel: str | None = None) -> Iterator[Batch]:
    """Read lines as batches of ``batch_size`` records (``Batch.records``: list of str; ids: line numbers).

    A line that is not valid in ``charset`` raises :class:`DataFormatError` naming its line number (as
    ``record``); an unknown charset raises at once.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    try:
        line_based = "\n".encode(codecs.lookup(charset).name) == b"\n"
    except LookupError:
        line_based = None
    if not line_based:  # lines are split on the byte 0x0a: UTF-16 and the like cannot be read that way
        what = "unknown" if line_based is None else "unsupported (not ASCII-compatible)"
        raise DataFormatError(f"{what} charset {charset!r} in the content type", channel=channel,
                              source=source)
    if source is None:
        name = getattr(stream, "name", None)
        source = name if isinstance(name, str) else f"<{type(stream).__name__}>"
    return rebatch(_lines(stream, charset, {"channel": channel, "source": source}), batch_size)


def _lines(stream, charset: str, where: dict) -> Iterator[Batch]:
    for line, chunk in line_chunks(stream):
        try:
            text = chunk.decode(charset)
        except UnicodeDecodeError as exc:
            bad = line + chunk.count(b"\n", 0, exc.start)
            column = exc.start - chunk.rfind(b"\n", 0, exc.start)
            raise DataFormatError(f"line is not valid {charset} text ({exc.reason} at byte {column})",
                                  record=bad, **where) from None
        records = text.split("\n")[:-1]  # the chunk ends with a newline
        records = [r[:-1] if r.endswith("\r") else r for r in records]
        yield Batch(records=records, ids=np.arange(line, line + len(records)))
