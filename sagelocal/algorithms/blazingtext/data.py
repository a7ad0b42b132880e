"""BlazingText's data: one sentence per line, ``__label__`` tokens, augmented manifests; fastText's dictionary.

Everything here works on UTF-8 *bytes*, as fastText does: tokens are split on ASCII white space, hashed
byte by byte (FNV-1a with fastText's signed-char quirk) and written to ``.bin`` files unchanged, so a
model built here and one built by fastText map the same text to the same rows.

What ``fit`` takes for a channel (a :class:`Corpus`): a list (or other iterable) of sentences (``str`` or
``bytes``), a path (``pathlib.Path``) to a text file (read as bytes, gzip recognised, through
:func:`sagelocal.io.open_object`), or a :class:`sagelocal.io.Channel` whose content type is ``text/plain``
(one sentence per line) or ``application/jsonlines`` (JSON objects with the text under ``source`` and the
label(s) under ``label``; for an augmented manifest the channel's ``AttributeNames`` name the text and the
label, in that order). Channels are read through their ``batches``, so File or Pipe mode, sharding,
shuffling, manifests, gzip and the RecordIO wrapper all apply.
"""

from __future__ import annotations

import codecs
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...base.errors import DataFormatError
from ...io import is_channel, open_object, parse_content_type

EOS = b"</s>"
BOW, EOW = b"<", b">"
LABEL_PREFIX = b"__label__"
TEXT_PLAIN = "text/plain"
JSONLINES = "application/jsonlines"
#: Attribute names of an augmented manifest when the channel names none (SageMaker's documented ones).
MANIFEST_ATTRIBUTES = ("source", "label")
_FNV_OFFSET, _FNV_PRIME = np.uint32(2166136261), np.uint32(16777619)
_NGRAM_MULTIPLIER = np.uint64(116049371)


# --------------------------------------------------------------------------------------- reading
class Corpus:
    """What ``fit`` was given for channel ``name``, read as lines of bytes (see the module docstring).

    The form is checked here, when ``fit`` receives it; the text is read by :meth:`lines` (once per call)
    or handed to gensim as a file by :meth:`corpus_file`.
    """

    def __init__(self, data, name: str):
        if is_channel(data):
            media = parse_content_type(data.content_type)[0]
            if media not in (TEXT_PLAIN, JSONLINES):
                raise DataFormatError(f"content type '{data.content_type}' is not supported by blazingtext; "
                                      f"supported: {TEXT_PLAIN}, {JSONLINES}", channel=name)
        elif not isinstance(data, os.PathLike) and (isinstance(data, (str, bytes)) or not isinstance(data, Iterable)):
            raise DataFormatError(f"{name}: pass a list of sentences, a pathlib.Path to a text file or a "
                                  f"sagelocal.io.Channel; got {type(data).__name__}", channel=name)
        self.data, self.name = data, name

    def lines(self, *, supervised: bool) -> Iterator[bytes]:
        """The raw lines (bytes, no newline); ``supervised``: manifest labels become ``__label__`` tokens.

        A path is read as bytes, so text in any ASCII-compatible encoding is hashed exactly as fastText
        hashes it; a channel's text is decoded by io (its ``charset``, UTF-8 by default) and hashed as UTF-8.
        """
        if is_channel(self.data):
            return _channel_lines(self.data, supervised, self.name)
        if isinstance(self.data, os.PathLike):
            return _file_lines(self.data, self.name)
        return _memory_lines(self.data, self.name)

    def corpus_file(self, directory: str) -> str:
        """A file of one sentence per line holding the corpus, for readers that want a path (gensim).

        The one uncompressed file that is the whole corpus (see :meth:`_direct_file`) is used where it is;
        anything else (lists, manifests, gzip, several objects, Pipe mode) is written once into ``directory``.
        """
        direct = self._direct_file()
        if direct is not None:
            return str(direct)
        descriptor, path = tempfile.mkstemp(prefix="corpus-", suffix=".txt", dir=directory)
        with os.fdopen(descriptor, "wb") as out:
            for line in self.lines(supervised=False):
                out.write(line + b"\n")
        return path

    def _direct_file(self) -> Path | None:
        """A path given to ``fit``, or the only object this host reads of a File-mode UTF-8 ``text/plain``
        channel (after sharding, shuffling and manifests), when io reads it as the file itself (not gzip)."""
        data = self.data
        if isinstance(data, os.PathLike):
            candidate = Path(data)
        elif is_channel(data) and data.input_mode != "Pipe" and data.data_type != "AugmentedManifestFile" \
                and _is_utf8_text(data.content_type):
            files = data.local_files()
            if len(files) != 1:
                return None
            candidate = files[0]
        else:
            return None
        with open_object(candidate, channel=self.name) as stream:
            return candidate if _is_the_file(stream, candidate) else None


def _is_utf8_text(content_type: str) -> bool:
    media, params = parse_content_type(content_type)
    try:
        return media == TEXT_PLAIN and codecs.lookup(params.get("charset") or "utf-8").name == "utf-8"
    except LookupError:
        return False


def _is_the_file(stream, path: Path) -> bool:
    """Whether the stream io opened for ``path`` is the file itself (io decompresses nothing), so that a
    library may read the path and see the same bytes."""
    try:
        return os.path.samestat(os.fstat(stream.fileno()), os.stat(path))
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation: a decompressing stream
        return False


def _labelled(text: bytes, label, supervised: bool, where: dict) -> bytes:
    if not supervised:
        return text
    labels = label if isinstance(label, list) else [label]
    if not labels or any(isinstance(v, bool) or not isinstance(v, (int, str)) for v in labels):
        raise DataFormatError(f"an augmented manifest line needs its label: an integer or a list of integers; "
                              f"got {label!r}", **where)
    return b" ".join([LABEL_PREFIX + str(v).encode() for v in labels] + [text])


def _record_line(record, attributes: tuple, supervised: bool, where: dict) -> bytes:
    """One line from a record of the io readers: a text line, a JSON object or manifest attributes."""
    if isinstance(record, str):
        return record.encode()
    if not isinstance(record, dict):
        raise DataFormatError(f"expected a line of text or a JSON object; got {type(record).__name__}", **where)
    text_key, label_key = attributes[0], attributes[1] if len(attributes) > 1 else None
    text, label = record.get(text_key), record.get(label_key) if label_key else None
    if isinstance(text, bytes):  # augmented-manifest attributes arrive as the bytes SageMaker streams
        try:
            label = None if label is None else json.loads(label)
        except ValueError:
            label = label.decode("utf-8", "replace")
        return _labelled(text, label, supervised, where)
    if not isinstance(text, str):
        raise DataFormatError(f"a JSON line needs a string '{text_key}' (the sentence)", **where)
    return _labelled(text.encode(), label, supervised, where)


def _channel_lines(channel, supervised: bool, name: str) -> Iterator[bytes]:
    attributes = tuple(channel.attribute_names or MANIFEST_ATTRIBUTES)
    for batch in channel.batches(4096):  # Pipe mode: epoch 0's FIFO, read once for the whole job
        if batch.records is None:
            raise DataFormatError("expected lines of text or JSON objects with a 'source'; got feature rows",
                                  channel=name)
        ids = batch.ids if batch.ids is not None else [None] * len(batch.records)
        for record, number in zip(batch.records, ids):
            where = {"channel": name, "record": None if number is None else int(number)}
            yield _record_line(record, attributes, supervised, where)


def _file_lines(path, name: str) -> Iterator[bytes]:
    with open_object(path, channel=name) as stream:
        for raw in stream:
            yield raw.rstrip(b"\r\n")


def _memory_lines(sentences, name: str) -> Iterator[bytes]:
    for number, sentence in enumerate(sentences, 1):
        if isinstance(sentence, str):
            sentence = sentence.encode()
        elif not isinstance(sentence, bytes):
            raise DataFormatError(f"sentences must be str; got {type(sentence).__name__}", channel=name,
                                  record=number)
        # a sentence given in memory is one line: embedded newlines are white space
        yield sentence.replace(b"\n", b" ")


# --------------------------------------------------------------------------------------- hashing
def fasttext_hash(tokens: list[bytes]) -> np.ndarray:
    """fastText's 32-bit FNV-1a hash of each token (bytes sign-extended as fastText's ``char``).

    Vectorised over tokens: one numpy step per byte position, over the tokens at least that long.
    """
    n = len(tokens)
    if n == 0:
        return np.zeros(0, dtype=np.uint32)
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=n)
    flat = np.frombuffer(b"".join(tokens), dtype=np.int8)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    order = np.argsort(-lengths, kind="stable")
    sorted_len, sorted_start = lengths[order], starts[order]
    hashes = np.full(n, _FNV_OFFSET, dtype=np.uint32)
    for position in range(int(sorted_len[0])):
        active = int(np.searchsorted(-sorted_len, -position, side="left"))  # tokens longer than position
        byte = flat[sorted_start[:active] + position].astype(np.uint32)  # int8 -> uint32 sign-extends
        hashes[:active] = (hashes[:active] ^ byte) * _FNV_PRIME
    out = np.empty(n, dtype=np.uint32)
    out[order] = hashes
    return out


def char_ngrams(word: bytes, minn: int, maxn: int) -> list[bytes]:
    """fastText's character n-grams of ``<word>`` (UTF-8 aware; lone ``<`` and ``>`` excluded)."""
    text = BOW + word + EOW
    size, grams = len(text), []
    for i in range(size):
        if text[i] & 0xC0 == 0x80:
            continue
        j, n = i, 1
        while j < size and n <= maxn:
            j += 1
            while j < size and text[j] & 0xC0 == 0x80:
                j += 1
            if n >= minn and not (n == 1 and (i == 0 or j == size)):
                grams.append(text[i:j])
            n += 1
    return grams


def word_ngram_ids(hashes: np.ndarray, line: np.ndarray, n: int, bucket: int, offset: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """fastText's hashed word n-grams (lengths 2..n) of token sequences, with their line numbers.

    ``hashes`` are the uint32 token hashes in text order, ``line`` each token's line number (lines
    contiguous). Returns ``(ids, lines)`` with ids = ``offset + (h mod bucket)``, where h is built as
    fastText does in uint64: ``h = int32(hash_i)`` then ``h = h * 116049371 + int32(hash_j)``.
    """
    if n <= 1 or bucket <= 0 or len(hashes) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    signed = hashes.view(np.int32).astype(np.int64).view(np.uint64)  # int32 -> uint64 sign-extends
    running = signed.copy()
    ids, lines = [], []
    for k in range(1, n):
        if k >= len(signed):
            break
        running = running[:-1] * _NGRAM_MULTIPLIER + signed[k:]
        valid = line[:-k] == line[k:]
        ids.append((running[valid] % np.uint64(bucket)).astype(np.int64) + offset)
        lines.append(line[:-k][valid])
    if not ids:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(ids), np.concatenate(lines)


# ------------------------------------------------------------------------------------ dictionary
@dataclass
class Dictionary:
    """fastText's dictionary: words (most frequent first) then labels (most frequent first)."""

    entries: list[bytes]
    counts: np.ndarray  # int64
    nwords: int
    ntokens: int

    @property
    def nlabels(self) -> int:
        return len(self.entries) - self.nwords

    @property
    def labels(self) -> list[bytes]:
        return self.entries[self.nwords:]

    def index(self) -> dict[bytes, int]:
        return {entry: i for i, entry in enumerate(self.entries)}


def build_dictionary(lines: list[list[bytes]], min_count: int, *, with_eos: bool = True) -> Dictionary:
    """Count tokens (plus one ``</s>`` per line) and keep words seen ``min_count`` times and all labels.

    Ties keep first-seen order (fastText's order among equal counts is unspecified).
    """
    counter: Counter = Counter()
    for tokens in lines:
        counter.update(tokens)
    if with_eos and lines:
        counter[EOS] += len(lines)
    words = [(t, c) for t, c in counter.items() if not t.startswith(LABEL_PREFIX) and c >= min_count]
    labels = [(t, c) for t, c in counter.items() if t.startswith(LABEL_PREFIX)]
    words.sort(key=lambda item: -item[1])
    labels.sort(key=lambda item: -item[1])
    entries = [t for t, _ in words] + [t for t, _ in labels]
    counts = np.asarray([c for _, c in words] + [c for _, c in labels], dtype=np.int64)
    return Dictionary(entries, counts, len(words), int(sum(counter.values())))


@dataclass
class Encoded:
    """Lines as fastText sees them: input row ids (CSR by line) and label ids (CSR by line)."""

    ids: np.ndarray          # int64, every input row of every line
    offsets: np.ndarray      # int64, len n_lines + 1
    labels: np.ndarray       # int64, label ids (0-based among labels)
    label_offsets: np.ndarray

    @property
    def n_lines(self) -> int:
        return len(self.offsets) - 1


def encode(lines: list[list[bytes]], index: dict[bytes, int], nwords: int, word_ngrams: int, bucket: int,
           minn: int = 0, maxn: int = 0) -> Encoded:
    """fastText's ``getLine`` for the supervised model, vectorised over all lines.

    Each line gets ``</s>`` appended; words give their rows (their own row, plus their character
    n-grams when ``maxn > 0``; an out-of-vocabulary word only its n-grams), every word (also
    out-of-vocabulary ones and ``</s>``) enters the hashed word n-grams, labels in the dictionary
    give label ids, unknown labels are ignored.
    """
    flat = [token for tokens in lines for token in (*tokens, EOS)]
    line_of = np.repeat(np.arange(len(lines), dtype=np.int64),
                        np.fromiter((len(t) + 1 for t in lines), dtype=np.int64, count=len(lines)))
    unique = list(dict.fromkeys(flat))
    code_of = {token: i for i, token in enumerate(unique)}
    codes = np.fromiter(map(code_of.__getitem__, flat), dtype=np.int64, count=len(flat))
    entry = np.fromiter((index.get(t, -1) for t in unique), dtype=np.int64, count=len(unique))
    is_label = np.fromiter((t.startswith(LABEL_PREFIX) for t in unique), dtype=bool, count=len(unique))
    words = ~is_label[codes]
    word_codes, word_lines = codes[words], line_of[words]
    unit_ids, unit_offsets = _token_rows(unique, entry, is_label, nwords, bucket, minn, maxn)
    rows, row_lines = _expand(unit_ids, unit_offsets, word_codes, word_lines)
    gram_ids, gram_lines = word_ngram_ids(fasttext_hash(unique)[word_codes], word_lines, word_ngrams,
                                          bucket, nwords)
    ids, offsets = _csr(np.concatenate([rows, gram_ids]), np.concatenate([row_lines, gram_lines]), len(lines))
    token_entry = entry[codes]
    label_mask = is_label[codes] & (token_entry >= 0)
    labels, label_offsets = _csr(token_entry[label_mask] - nwords, line_of[label_mask], len(lines))
    return Encoded(ids, offsets, labels, label_offsets)


def subword_rows(token: bytes, wid: int, nwords: int, bucket: int, minn: int, maxn: int) -> list[int]:
    """fastText's input rows of one word: its own row (if known) and its character n-gram buckets."""
    rows = [wid] if wid >= 0 else []
    if maxn > 0 and bucket > 0 and token != EOS:
        grams = char_ngrams(token, minn, maxn)
        rows += (fasttext_hash(grams).astype(np.int64) % bucket + nwords).tolist()
    return rows


def _token_rows(unique, entry, is_label, nwords, bucket, minn, maxn) -> tuple[np.ndarray, np.ndarray]:
    """CSR of the input rows of each distinct token (labels get none)."""
    if maxn <= 0 or bucket <= 0:
        has_row = (entry >= 0) & ~is_label
        offsets = np.zeros(len(unique) + 1, dtype=np.int64)
        np.cumsum(has_row, out=offsets[1:])
        return entry[has_row], offsets
    per_token = [[] if label else subword_rows(t, int(e), nwords, bucket, minn, maxn)
                 for t, e, label in zip(unique, entry.tolist(), is_label.tolist())]
    offsets = np.zeros(len(unique) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in per_token], out=offsets[1:])
    return np.fromiter((i for r in per_token for i in r), dtype=np.int64, count=int(offsets[-1])), offsets


def _expand(values, offsets, codes, lines) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the CSR rows ``codes`` of (``values``, ``offsets``), with each row's line number."""
    lengths = offsets[codes + 1] - offsets[codes]
    total = int(lengths.sum())
    starts = np.repeat(offsets[codes] - (np.cumsum(lengths) - lengths), lengths)
    return values[starts + np.arange(total, dtype=np.int64)], np.repeat(lines, lengths)


def _csr(values: np.ndarray, rows: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(rows, kind="stable")
    counts = np.bincount(rows, minlength=n_rows)
    offsets = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return values[order].astype(np.int64, copy=False), offsets


def split_lines(lines: Iterable[bytes]) -> list[list[bytes]]:
    """Tokens of each line, split on ASCII white space as fastText's reader does."""
    return [line.split() for line in lines]


def vocabulary_rows(entries: list[bytes], nwords: int, bucket: int, minn: int, maxn: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """CSR (ids, offsets) of the input rows composing each vocabulary word (fastText's ``getSubwords``)."""
    words = entries[:nwords]
    entry = np.arange(nwords, dtype=np.int64)
    return _token_rows(words, entry, np.zeros(nwords, dtype=bool), nwords, bucket, minn, maxn)
