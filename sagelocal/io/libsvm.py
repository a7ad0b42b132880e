"""libsvm (``text/libsvm``, alias ``text/x-libsvm``): ``label[:weight] index:value index:value ...``.

one record per line, space separated; the Developer Guide says indices are zero-based,
and sagelocal follows it: index ``i`` is column ``i``, as XGBoost's own libsvm parser does. A one-based
file therefore reads with an empty column 0, which changes no model; :func:`read_libsvm` takes
``zero_based=False`` to shift such files down instead. sagelocal does not copy the XGBoost container's
inference heuristic (shift when the smallest index is >= 1), which depends on the payload.

An index with an empty value at the end of a line (``8:``, as in the abalone files of SageMaker's XGBoost
examples) reads as an explicit 0 at that index. XGBoost's parser, which the SageMaker XGBoost container uses,
accepts it there too and keeps the index; the value it stores is whatever number its scan finds next (0 at the
end of the file, else usually the next line's label, which is a misparse sagelocal does not copy). Elsewhere
on a line (``8: 9:2``) XGBoost refuses the whole file, and sagelocal refuses the line, naming file and record.

A file declares no width, so each batch is a CSR matrix as wide as the largest index seen so far + 1;
:meth:`Batch.concat` widens earlier parts, so reading a whole file gives its full width.

Speed: the stream is read in chunks of whole lines. A chunk in the canonical layout (single spaces, no
tabs, comments or blank lines) is parsed with no Python work per line: the separators' positions give
every token's role, indices are decoded from their digits with numpy, and numpy's C parser reads all
the other numbers at once. Any other chunk is parsed line by
line, which also names the line and token of an error.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp

from ..base.batch import Batch, rebatch
from ..base.errors import DataFormatError
from .csv import line_chunks

_SPACE, _COLON, _NEWLINE = ord(" "), ord(":"), ord("\n")
_MAX_INDEX = 2**31 - 2  # CSR int32 indices; a larger index is almost surely a corrupt line


def read_libsvm(stream, batch_size: int = 1000, *, labels: bool = True, zero_based: bool = True,
                source: str | None = None, channel: str | None = None) -> Iterator[Batch]:
    """Read libsvm lines as batches of exactly ``batch_size`` rows (the last may be shorter).

    Features are a float32 CSR matrix, labels a float32 array; ``weights`` is set when a line gives
    ``label:weight`` (lines without a weight weigh 1). With ``labels=False`` (inference requests) lines
    hold only ``index:value`` pairs. Blank lines and ``#`` comments are skipped. A malformed line raises
    :class:`DataFormatError` naming the 1-based line number (as ``record``) and the token.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    if source is None:
        name = getattr(stream, "name", None)
        source = name if isinstance(name, str) else f"<{type(stream).__name__}>"
    where = {"channel": channel, "source": source}
    return rebatch(_tables(stream, labels, 0 if zero_based else 1, where), batch_size)


def _tables(stream, labels: bool, base: int, where: dict) -> Iterator[Batch]:
    width = 0
    for line, chunk in line_chunks(stream):
        with np.errstate(over="ignore"):  # a number beyond float32's range becomes inf, as in a cast
            parsed = _parse_fast(chunk, labels) if _canonical(chunk) else None
            if parsed is None:
                parsed = _parse_slowly(chunk, line, labels, where)
        y, w, indptr, indices, values = parsed
        if indices.size:
            low, high = int(indices.min()), int(indices.max())
            if low < base or high - base > _MAX_INDEX:
                bad = int(np.argmax((indices < base) | (indices - base > _MAX_INDEX)))
                row = int(np.searchsorted(indptr, bad, side="right")) - 1
                raise DataFormatError(f"feature index {int(indices[bad])} is out of range (indices are "
                                      f"{'zero' if base == 0 else 'one'}-based)", record=_line_of(chunk, line, row),
                                      **where)
            width = max(width, high - base + 1)
        if len(indptr) == 1:
            continue
        matrix = sp.csr_matrix((values, (indices - base).astype(np.int32), indptr.astype(np.int32)),
                               shape=(len(indptr) - 1, width))
        if not _canonical_rows(matrix):
            matrix.sum_duplicates()  # sorted indices, repeated ones added up, as the RecordIO reader gives
        yield Batch(matrix, y, w)


def _canonical(chunk: bytes) -> bool:
    """Whether ``chunk`` may be in the layout the vectorised parser handles (else: line by line).

    Only single-byte searches here (fast); empty tokens (repeated spaces, blank lines, a space at a line
    end) are caught by the parser itself.
    """
    return not (b"\t" in chunk or b"\r" in chunk or b"#" in chunk or chunk.startswith(b"\xef\xbb\xbf"))


def _parse_fast(chunk: bytes, labels: bool):
    """(labels, weights, indptr, indices, values) of a canonical chunk, or None when a line is malformed."""
    raw = np.frombuffer(chunk, np.uint8)
    events = np.flatnonzero((raw == _SPACE) | (raw == _COLON) | (raw == _NEWLINE))  # where each token ends
    kinds = raw[events]
    if events.size == 0 or events[0] == 0:
        return None  # an empty token
    roles = _roles(kinds, labels)
    if roles is None:
        return None
    starts_line, is_index, is_weight, is_value = roles
    empty = np.zeros(events.size, bool)
    empty[1:] = np.diff(events) == 1
    if empty.any():
        # "index:" at a line end reads as index:0 (see the module docstring): a '0' goes in before the
        # newline. Any other empty token (repeated spaces, "8: 9:2") is left to the line-by-line parser.
        fill = empty & is_value & (kinds == _NEWLINE)
        if (empty & ~fill).any():
            return None
        raw = np.insert(raw, events[fill], np.uint8(ord("0")))
        events = events + np.cumsum(fill)
    indices, blanked = _integers(raw, events, is_index)
    if indices is None:
        return None
    try:  # every other token is a float; indices and colons are blanked out of the text first
        floats = np.fromstring(blanked.tobytes(), dtype=np.float64, sep=" ")
    except ValueError:  # a token that is not a number
        return None
    if floats.size != events.size - indices.size:
        return None
    numbers = np.empty(events.size)
    numbers[~is_index] = floats
    line_ends = kinds == _NEWLINE
    rows = np.cumsum(line_ends) - line_ends  # row of each token
    n = int(line_ends.sum())
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows[is_index], minlength=n), out=indptr[1:])
    y = numbers[starts_line].astype(np.float32) if labels else None
    w = None
    if labels and is_weight.any():
        w = np.ones(n, np.float32)
        w[rows[is_weight]] = numbers[is_weight]
    return y, w, indptr, indices, numbers[is_value].astype(np.float32)


def _roles(kinds: np.ndarray, labels: bool):
    """(label, index, weight, value) masks over the tokens, from the separators around each; None if malformed."""
    before = np.empty_like(kinds)  # the separator before each token (a virtual newline before the first)
    before[0], before[1:] = _NEWLINE, kinds[:-1]
    two_before = np.empty_like(kinds)
    two_before[:2], two_before[2:] = _NEWLINE, kinds[:-2]
    starts_line = before == _NEWLINE
    is_index = before == _SPACE
    is_weight = (before == _COLON) & (two_before == _NEWLINE)
    is_value = (before == _COLON) & (two_before == _SPACE)
    if not labels:  # every token is an index or a value: a line starts with an index
        is_index |= starts_line
        is_value = before == _COLON
        is_weight[:] = False
    # an index is followed by ':'; besides indices only a label that has a weight may be
    ends_colon = kinds == _COLON
    if (is_index & ~ends_colon).any() or (ends_colon & ~(is_index | (starts_line & labels))).any():
        return None
    return starts_line, is_index, is_weight, is_value


def _integers(raw: np.ndarray, events: np.ndarray, is_index: np.ndarray):
    """(the index tokens as int64, the text with them and every ':' blanked), or (None, None) when an index
    is not a run of up to 9 decimal digits (the slow path then names it or reads it)."""
    ends = events[is_index]
    lengths = ends - np.concatenate(([0], events[:-1] + 1))[is_index]
    width = int(lengths.max()) if lengths.size else 0
    if width > 9:
        return None, None
    blanked = raw.copy()
    indices = np.zeros(ends.size, np.int64)
    for back in range(width, 0, -1):  # digit ``back`` places before the ':' (shorter tokens: the ':' itself)
        present = lengths >= back
        positions = np.where(present, ends - back, ends)
        digits = np.where(present, raw[positions] - np.uint8(48), 0)  # wraps around for bytes below '0'
        if (digits > 9).any():
            return None, None
        indices = indices * 10 + digits
        blanked[positions] = _SPACE
    blanked[events[raw[events] == _COLON]] = _SPACE
    return indices, blanked


def _parse_slowly(chunk: bytes, line: int, labels: bool, where: dict):
    """Line by line: tabs, repeated spaces, CRLF, comments and blank lines; errors name the line."""
    y, w, indptr, indices, values = [], [], [0], [], []
    for number, raw in enumerate(chunk.split(b"\n")[:-1], line):
        text = raw.split(b"#", 1)[0].strip()
        if not text:
            continue
        tokens = text.split()
        if labels:
            label, _, weight = tokens[0].partition(b":")
            y.append(_number(label, number, "label", where))
            w.append(_number(weight, number, "weight", where) if weight else None)
            tokens = tokens[1:]
        for position, token in enumerate(tokens, 1):
            index, colon, value = token.partition(b":")
            if not colon:
                raise DataFormatError(f"token {_shown(token)} is not index:value", record=number, **where)
            if index == b"qid":
                raise DataFormatError("qid (query ids) is not supported", record=number, **where)
            if not value and position < len(tokens):  # "8: 9:2": XGBoost's parser refuses the file too
                raise DataFormatError(f"token {_shown(token)} has no value; an index without a value is "
                                      f"only read (as 0) at the end of a line", record=number, **where)
            indices.append(_index(index, number, where))
            values.append(_number(value, number, "value", where) if value else 0.0)
        indptr.append(len(indices))
    weights = None
    if any(v is not None for v in w):
        weights = np.array([1.0 if v is None else v for v in w], np.float32)
    return (np.array(y, np.float32) if labels else None, weights, np.array(indptr, np.int64),
            np.array(indices, np.int64), np.array(values, np.float32))


def _number(token: bytes, line: int, what: str, where: dict) -> float:
    try:
        if b"_" in token:  # Python's float() accepts "1_000"; libsvm parsers do not
            raise ValueError
        return float(token)
    except ValueError:
        raise DataFormatError(f"{what} {_shown(token)} is not a number", record=line, **where) from None


def _index(token: bytes, line: int, where: dict) -> int:
    try:
        if b"_" in token:
            raise ValueError
        index = int(token)
    except ValueError:
        raise DataFormatError(f"feature index {_shown(token)} is not an integer", record=line, **where) from None
    if index < 0:
        raise DataFormatError(f"feature index {index} is negative", record=line, **where)
    return index


def _shown(token: bytes) -> str:
    return repr(token.decode("utf-8", "replace"))


def _line_of(chunk: bytes, first_line: int, row: int) -> int:
    """File line number of the ``row``-th record of ``chunk`` (blank and comment lines skipped)."""
    seen = -1
    for number, raw in enumerate(chunk.split(b"\n")[:-1], first_line):
        if raw.split(b"#", 1)[0].strip():
            seen += 1
            if seen == row:
                return number
    return first_line


def _canonical_rows(matrix: sp.csr_matrix) -> bool:
    """Whether every row's indices are strictly increasing (no sorting or summing needed)."""
    if matrix.nnz < 2:
        return True
    rising = np.diff(matrix.indices) > 0
    starts = matrix.indptr[1:-1]
    rising[starts[(starts > 0) & (starts < matrix.nnz)] - 1] = True  # indices may fall between rows
    return bool(rising.all())
