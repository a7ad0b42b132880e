"""CSV (``text/csv``) training data: no header, the first ``label_size`` columns are the label.

The stream is read in chunks of whole lines (bounded memory) and each chunk is parsed at once by
numpy's C tokenizer; only when a chunk does not parse (a bad cell, a ragged row, whitespace-only cells)
is it re-read line by line, to name the line and column or to accept what the fast parser refuses.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator

import numpy as np

from ..base.batch import Batch, rebatch
from ..base.errors import DataFormatError

_CHUNK_BYTES = 1 << 22
_BOM = b"\xef\xbb\xbf"
# an empty cell: at a line start or after a comma, and before a comma or the line end (blank lines excluded)
_EMPTY_CELL = re.compile(rb"(?m)(?:^|(?<=,))(?=,)|(?<=,)(?=\r?$)")


def read_csv(stream, batch_size: int = 1000, *, label_size: int = 1, source: str | None = None,
             channel: str | None = None) -> Iterator[Batch]:
    """Read headerless numeric CSV as batches of exactly ``batch_size`` rows (the last may be shorter).

    The first ``label_size`` columns are the label: none for 0, shape (n,) for 1, (n, label_size)
    above. Features are float32; empty cells are NaN; blank lines are skipped; the last line may lack
    its newline. A ragged row or a non-numeric cell raises :class:`DataFormatError` naming the 1-based
    line number (as ``record``), the column and the cell. ``stream`` may be binary or text.
    """
    if isinstance(label_size, bool) or not isinstance(label_size, (int, np.integer)) or label_size < 0:
        raise DataFormatError(f"label_size must be an integer >= 0; got {label_size!r}",
                              channel=channel, source=source)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    if source is None:
        name = getattr(stream, "name", None)
        source = name if isinstance(name, str) else None
    return rebatch(_tables(stream, int(label_size), {"channel": channel, "source": source}), batch_size)


def _tables(stream, label_size: int, where: dict) -> Iterator[Batch]:
    columns = None
    for line, chunk in line_chunks(stream):
        with np.errstate(over="ignore"):  # a number beyond float32's range becomes inf, as in a cast
            table = _parse_chunk(chunk, line, columns, where)
        if table.shape[0] == 0:
            continue
        if columns is None:
            columns = table.shape[1]
            if label_size >= columns:
                raise DataFormatError(f"label_size={label_size} but the rows have {columns} columns, "
                                      f"leaving no feature columns", record=line, **where)
        features = np.ascontiguousarray(table[:, label_size:])
        if label_size == 0:
            yield Batch(features)
        else:
            labels = table[:, 0] if label_size == 1 else table[:, :label_size]
            yield Batch(features, np.ascontiguousarray(labels))


def line_chunks(stream) -> Iterator[tuple[int, bytes]]:
    """Yield (number of the chunk's first line, chunk of whole lines ending in a newline)."""
    line, rest, started = 1, b"", False
    while True:
        data = stream.read(_CHUNK_BYTES)
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not started and data:
            started = True
            data = data[len(_BOM):] if data.startswith(_BOM) else data
        if not data:
            if rest:
                yield line, rest + b"\n"  # the final line had no newline
            return
        buffer = rest + data
        cut = buffer.rfind(b"\n") + 1
        if cut == 0:  # no line end yet: keep reading (memory grows only with the line's length)
            rest = buffer
            continue
        chunk, rest = buffer[:cut], buffer[cut:]
        yield line, chunk
        line += chunk.count(b"\n")


def _has_empty_cell(chunk: bytes) -> bool:
    return (b",," in chunk or b",\n" in chunk or b"\n," in chunk or b",\r" in chunk
            or chunk.startswith(b","))


def _parse_chunk(chunk: bytes, line: int, columns: int | None, where: dict) -> np.ndarray:
    """Rows of ``chunk`` as a float32 (rows, columns) table; errors name the file line."""
    table = _loadtxt(chunk)
    if table is None and _has_empty_cell(chunk):  # checked only on failure: the search costs a pass
        table = _loadtxt(_EMPTY_CELL.sub(b"nan", chunk))
    if table is None or (table.shape[0] and columns is not None and table.shape[1] != columns):
        return _parse_slowly(chunk, line, columns, where)
    return table


def _loadtxt(text: bytes) -> np.ndarray | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data" for blank chunks
            return np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.float32, comments=None, ndmin=2)
    except ValueError:
        return None


def _parse_slowly(chunk: bytes, line: int, columns: int | None, where: dict) -> np.ndarray:
    """Parse line by line: whitespace-only lines are blank, whitespace-only cells NaN; else name the error."""
    rows = []
    for number, raw in enumerate(chunk.split(b"\n")[:-1], line):
        if not raw.strip():
            continue
        cells = raw.rstrip(b"\r").split(b",")
        if columns is None:
            columns = len(cells)
        elif len(cells) != columns:
            raise DataFormatError(f"line has {len(cells)} columns; earlier lines have {columns}",
                                  record=number, **where)
        rows.append([_cell(cell, number, column, where) for column, cell in enumerate(cells, 1)])
    return np.array(rows, dtype=np.float32).reshape(len(rows), columns or 0)


def _cell(cell: bytes, line: int, column: int, where: dict) -> float:
    text = cell.strip()
    if not text:
        return float("nan")
    try:
        if b"_" in text:  # Python's float() accepts "1_000"; numpy's parser and SageMaker do not
            raise ValueError
        return float(text)
    except ValueError:
        shown = cell.decode("utf-8", "replace")
        raise DataFormatError(f"column {column}: {shown!r} is not a number", record=line, **where) from None
