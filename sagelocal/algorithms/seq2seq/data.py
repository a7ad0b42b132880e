"""Seq2Seq data: vocabularies, RecordIO-protobuf pairs of token ids, and length buckets.

The layout is the one SageMaker's sample preprocessing script (``create_vocab_proto.py``) writes and
the algorithm reads:

- ``vocab.src.json`` / ``vocab.trg.json``: one JSON object mapping token -> id; ids 0-3 are
  ``<pad>``, ``<unk>``, ``<s>``, ``</s>``, the other words follow by descending frequency (ties in
  reverse alphabetical order, as the script's ``sorted(..., reverse=True)`` leaves them).
- ``train.rec`` / ``val.rec``: RecordIO-framed ``aialgs.data.Record`` messages with
  ``features["source"]`` and ``features["target"]`` holding ``Int32Tensor`` token ids.

Channels are read through :mod:`sagelocal.io` (:func:`read_pair_channel`, :func:`read_vocab_channel`), so
their settings (sharding, shuffle, Pipe mode, gzip, manifests) apply. :func:`prepare` is the sample script
as a function; :class:`PairData` holds the pairs as flat arrays and cuts them into padded mini-batches by
length bucket (Sockeye's ``define_parallel_buckets``).
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path

import numpy as np

from ...base.errors import ChannelDataError, ChannelError, DataFormatError
from ...io import open_object
from ...io.recordio import decode_record, encode_int32_records, iter_recordio

PAD_SYMBOL, UNK_SYMBOL, BOS_SYMBOL, EOS_SYMBOL = "<pad>", "<unk>", "<s>", "</s>"
VOCAB_SYMBOLS = (PAD_SYMBOL, UNK_SYMBOL, BOS_SYMBOL, EOS_SYMBOL)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
SOURCE_VOCAB, TARGET_VOCAB = "vocab.src.json", "vocab.trg.json"
TRAIN_FILE, VALIDATION_FILE = "train.rec", "val.rec"
_WRITE_BLOCK = 4096  # records encoded per write, to bound memory on large corpora


# --------------------------------------------------------------------------------- vocabularies
def tokens(sentence: str) -> list[str]:
    """The whitespace-separated tokens of ``sentence`` (the sample script's ``get_tokens``)."""
    return sentence.split()


def build_vocab(sentences: Iterable[str], *, num_words: int = 50000, min_count: int = 1) -> dict[str, int]:
    """A vocabulary as SageMaker's sample script builds it.

    The four special symbols take ids 0-3; then the ``num_words`` most frequent tokens seen at least
    ``min_count`` times, by descending count, equal counts in reverse alphabetical order.
    """
    special = set(VOCAB_SYMBOLS)
    counts = Counter(token for line in sentences for token in tokens(line) if token not in special)
    pruned = sorted(((c, w) for w, c in counts.items() if c >= min_count), reverse=True)
    words = islice((w for _, w in pruned), num_words)
    return {word: i for i, word in enumerate(chain(VOCAB_SYMBOLS, words))}


def write_vocab(vocab: Mapping[str, int], path) -> None:
    """Write ``vocab`` as the sample script does (indented UTF-8 JSON)."""
    with open(path, "w", encoding="utf-8") as out:
        json.dump(dict(vocab), out, indent=4, ensure_ascii=False)


def check_vocab(vocab, where: str) -> dict[str, int]:
    """``vocab`` checked: a JSON object token -> distinct ids 0..n-1, the special symbols at 0-3.

    ``where`` names the file or argument in error messages.
    """
    if not isinstance(vocab, Mapping) or not vocab:
        raise DataFormatError(f"a vocabulary must be a non-empty JSON object mapping token to id; got "
                              f"{type(vocab).__name__}", source=where)
    bad = [k for k, v in vocab.items() if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int)]
    if bad:
        raise DataFormatError(f"vocabulary entries must map a token string to an integer id; got "
                              f"{bad[0]!r}: {vocab[bad[0]]!r}", source=where)
    ids = sorted(vocab.values())
    if ids != list(range(len(ids))):
        raise DataFormatError(f"vocabulary ids must be the distinct integers 0..{len(ids) - 1}; got ids from "
                              f"{ids[0]} to {ids[-1]} for {len(ids)} tokens", source=where)
    wrong = [f"{s}={vocab.get(s)}" for i, s in enumerate(VOCAB_SYMBOLS) if vocab.get(s) != i]
    if wrong:
        raise DataFormatError(f"vocabulary must give the special symbols ids {PAD_SYMBOL}=0, {UNK_SYMBOL}=1, "
                              f"{BOS_SYMBOL}=2, {EOS_SYMBOL}=3 (as SageMaker's create_vocab_proto.py does); got "
                              f"{', '.join(wrong)}", source=where)
    return dict(vocab)


def read_vocab(path) -> dict[str, int]:
    """Read and check one vocabulary JSON file (gzip or not)."""
    try:
        with open_object(path, channel="vocab") as stream:
            vocab = json.load(stream)
    except DataFormatError:
        raise
    except ValueError as exc:
        raise DataFormatError(f"not valid JSON: {exc}", channel="vocab", source=str(path)) from None
    except OSError as exc:
        raise ChannelDataError(f"cannot read vocabulary: {exc}", channel="vocab", source=str(path)) from None
    return check_vocab(vocab, str(path))


def read_vocab_channel(channel) -> tuple[dict[str, int], dict[str, int]]:
    """The source and target vocabularies of the ``vocab`` channel (a File-mode folder or manifest).

    ``vocab.src.json`` and ``vocab.trg.json`` are the first objects of those names among the channel's
    objects (its folder's files, recursively, in the channel's order and shard).
    """
    if channel.input_mode == "Pipe" or channel.data_type == "AugmentedManifestFile":
        raise ChannelError(f"channel '{channel.name}': the vocabularies are read from a File-mode folder or "
                           f"manifest holding {SOURCE_VOCAB} and {TARGET_VOCAB}; got a {channel.input_mode}-mode "
                           f"{channel.data_type} channel")
    files = channel.local_files()
    found = []
    for name in (SOURCE_VOCAB, TARGET_VOCAB):
        hits = [path for path in files if path.name == name]
        if not hits:
            raise ChannelDataError(f"no {name} under '{channel.path}': the vocab channel must hold {SOURCE_VOCAB} "
                                   f"and {TARGET_VOCAB}", channel=channel.name)
        found.append(read_vocab(hits[0]))
    return found[0], found[1]


def encode_sentences(sentences: Iterable[str], vocab: Mapping[str, int]) -> list[np.ndarray]:
    """Token ids of each sentence; unknown tokens map to ``<unk>``."""
    unk = vocab[UNK_SYMBOL]
    return [np.fromiter((vocab.get(t, unk) for t in tokens(s)), np.int32) for s in sentences]


def decode_ids(ids: Iterable[int], inverse: Sequence[str]) -> str:
    """The sentence for target ids (``inverse[id]`` is the token), joined by spaces."""
    return " ".join(inverse[i] for i in ids)


def inverse_vocab(vocab: Mapping[str, int]) -> list[str]:
    """id -> token as a list."""
    out = [""] * len(vocab)
    for token, i in vocab.items():
        out[i] = token
    return out


# ---------------------------------------------------------------------------------- RecordIO
def encode_pair(source, target=None) -> bytes:
    """The RecordIO frame of one Record holding ``source`` and ``target`` int32 ids.

    ``target=None`` writes an empty ``target`` tensor, as inference requests do.
    """
    return encode_int32_records([{"source": source, "target": () if target is None else target}])


def encode_ids(name: str, rows: Iterable) -> bytes:
    """RecordIO body of one Record per row with ``features[name]`` holding the row's int32 ids."""
    return encode_int32_records({name: row} for row in rows)


def write_pairs(path_or_stream, sources: Iterable, targets: Iterable) -> int:
    """Write (source ids, target ids) pairs as RecordIO-protobuf (a file written, or a binary stream);
    returns the number of records."""
    own = isinstance(path_or_stream, (str, os.PathLike))
    stream = open(path_or_stream, "wb") if own else path_or_stream
    count = 0
    try:
        pairs = iter(zip(sources, targets))
        while block := list(islice(pairs, _WRITE_BLOCK)):
            stream.write(encode_int32_records({"source": s, "target": t} for s, t in block))
            count += len(block)
    finally:
        if own:
            stream.close()
    return count


def iter_features(stream, *, source: str | None = None, channel: str | None = None) -> Iterator[dict]:
    """The ``features`` of each Record of a RecordIO-protobuf stream, names -> decoded tensors."""
    for number, payload in enumerate(iter_recordio(stream, source=source, channel=channel), 1):
        try:
            yield decode_record(payload)["features"]
        except DataFormatError as exc:
            raise DataFormatError(str(exc), channel=channel, source=source, record=number) from None


def _ids(features: dict, name: str, number: int, where: dict, required: bool = True) -> np.ndarray:
    tensor = features.get(name)
    if tensor is None:
        if not required:
            return np.zeros(0, np.int32)
        raise DataFormatError(f"record has no features['{name}'] tensor (Seq2Seq records hold int32 "
                              f"'source' and 'target' token ids)", record=number, **where)
    if tensor["dtype"] == "bytes":
        raise DataFormatError(f"features['{name}'] holds bytes; token ids must be an int32 tensor",
                              record=number, **where)
    values = tensor["values"]
    if tensor["dtype"] != "int32":  # float ids are accepted when they are whole numbers
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise DataFormatError(f"features['{name}'] must hold integer token ids; got {tensor['dtype']} "
                                  f"values that are not whole numbers", record=number, **where)
    return np.asarray(values, dtype=np.int32)


def read_pairs(stream, *, source: str | None = None, channel: str | None = None,
               require_target: bool = True) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(sources, targets): the int32 id arrays of every Record of a RecordIO-protobuf stream."""
    where = {"source": source, "channel": channel}
    sources, targets = [], []
    for number, features in enumerate(iter_features(stream, **where), 1):
        sources.append(_ids(features, "source", number, where))
        targets.append(_ids(features, "target", number, where, required=require_target))
    return sources, targets


def read_pair_channel(channel) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """All pairs of a channel's RecordIO-protobuf objects, in the channel's order and shard.

    Pipe mode reads the FIFO of epoch 0 once (the pairs are then kept in memory for every epoch).
    """
    sources, targets = [], []
    try:
        for name, stream in channel.streams(epoch=0):
            s, t = read_pairs(stream, source=name, channel=channel.name)
            sources += s
            targets += t
    except ChannelDataError as exc:  # in Pipe mode: a FIFO that never appeared
        if channel.input_mode != "Pipe":
            raise
        raise ChannelDataError(f"{exc}. SageMaker's Seq2Seq reads File mode only; sagelocal reads a Pipe-mode "
                               f"channel when its FIFOs are fed (sagelocal train feeds them from "
                               f"input/data/<channel>/)") from None
    if not sources:
        raise ChannelDataError("holds no records; Seq2Seq needs data in train and validation", channel=channel.name)
    return sources, targets


@dataclass
class PairRows:
    """In-memory training pairs as ``fit`` got them: sentences or token-id sequences, ``targets`` None when
    none were given. Encoded once the vocabularies are known."""

    sources: Sequence
    targets: Sequence | None


# ----------------------------------------------------------------------------------- the tool
def _read_lines(path_or_lines) -> list[str]:
    """The lines of a text file (gzip or not; undecodable bytes replaced) or of a sequence of sentences."""
    if isinstance(path_or_lines, (str, os.PathLike)):
        with open_object(path_or_lines) as stream:
            return io.TextIOWrapper(stream, encoding="utf-8", errors="replace").read().splitlines()
    return [str(line).rstrip("\n") for line in path_or_lines]


def _non_empty_pairs(source_lines: list[str], target_lines: list[str], what: str):
    if len(source_lines) != len(target_lines):
        raise DataFormatError(f"{what}: source has {len(source_lines)} lines but target has {len(target_lines)}")
    # as the sample script: a pair with an empty side is skipped
    kept = [(s, t) for s, t in zip(source_lines, target_lines) if s.strip() and t.strip()]
    return [s for s, _ in kept], [t for _, t in kept], len(source_lines) - len(kept)


def prepare(output_dir, train_source, train_target, validation_source=None, validation_target=None, *,
            vocab_source: Mapping[str, int] | None = None, vocab_target: Mapping[str, int] | None = None,
            single_vocab: bool = False, num_words_source: int = 50000, num_words_target: int = 50000,
            min_count_source: int = 1, min_count_target: int = 1) -> dict[str, object]:
    """Build vocabularies and RecordIO files from parallel text, as SageMaker's sample script does.

    Sources and targets are file paths (``.gz`` read as gzip) or sequences of sentences of
    whitespace-separated tokens, one per line, aligned. Writes the three channels under
    ``output_dir``: ``train/train.rec``, ``validation/val.rec`` (when validation text is given) and
    ``vocab/vocab.src.json`` + ``vocab/vocab.trg.json``; vocabularies are built from the training
    text unless given. Pairs with an empty side are skipped. Returns the paths and counts.
    """
    out = Path(output_dir)
    train_s, train_t, skipped = _non_empty_pairs(_read_lines(train_source), _read_lines(train_target), "train")
    if vocab_source is None or vocab_target is None:
        if single_vocab:
            vocab_source = vocab_target = build_vocab(chain(train_s, train_t), num_words=num_words_source,
                                                      min_count=min_count_source)
        else:
            vocab_source = build_vocab(train_s, num_words=num_words_source, min_count=min_count_source)
            vocab_target = build_vocab(train_t, num_words=num_words_target, min_count=min_count_target)
    vocab_source = check_vocab(vocab_source, "vocab_source")
    vocab_target = check_vocab(vocab_target, "vocab_target")
    for folder in ("train", "vocab"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    write_vocab(vocab_source, out / "vocab" / SOURCE_VOCAB)
    write_vocab(vocab_target, out / "vocab" / TARGET_VOCAB)
    report = {"vocab_source": str(out / "vocab" / SOURCE_VOCAB), "vocab_target": str(out / "vocab" / TARGET_VOCAB),
              "train": str(out / "train" / TRAIN_FILE), "skipped": {"train": skipped}}
    report["records"] = {"train": write_pairs(out / "train" / TRAIN_FILE, encode_sentences(train_s, vocab_source),
                                              encode_sentences(train_t, vocab_target))}
    if validation_source is not None and validation_target is not None:
        val_s, val_t, skipped = _non_empty_pairs(_read_lines(validation_source), _read_lines(validation_target),
                                                 "validation")
        (out / "validation").mkdir(parents=True, exist_ok=True)
        report["validation"] = str(out / "validation" / VALIDATION_FILE)
        report["skipped"]["validation"] = skipped
        report["records"]["validation"] = write_pairs(
            out / "validation" / VALIDATION_FILE, encode_sentences(val_s, vocab_source),
            encode_sentences(val_t, vocab_target))
    return report


# ------------------------------------------------------------------------- pairs and buckets
def define_buckets(max_len: int, step: int) -> list[int]:
    """Bucket lengths ``step, 2 step, ...`` with the last one equal to ``max_len`` (Sockeye)."""
    buckets = list(range(step, max_len + step, step))
    buckets[-1] = max_len
    return buckets


def define_parallel_buckets(max_source: int, max_target: int, width: int, length_ratio: float
                            ) -> list[tuple[int, int]]:
    """(source, target) bucket lengths as Sockeye's ``define_parallel_buckets``.

    The longer side steps by ``width``, the shorter by ``width`` scaled by the mean target/source
    length ratio; once one side reaches its maximum it stays there.
    """
    source_step = target_step = width
    if length_ratio >= 1.0:
        source_step = max(1, int(round(width / length_ratio)))
    else:
        target_step = max(1, int(round(width * length_ratio)))
    source = define_buckets(max_source, source_step)
    target = define_buckets(max_target, target_step)
    source += [source[-1]] * (len(target) - len(source))
    target += [target[-1]] * (len(source) - len(target))
    return sorted(OrderedDict.fromkeys(zip(source, target)))


@dataclass
class Ragged:
    """Variable-length int sequences as one flat array and offsets (``rows[i] = flat[off[i]:off[i+1]]``)."""

    flat: np.ndarray
    offsets: np.ndarray

    @classmethod
    def from_rows(cls, rows: Sequence, max_len: int | None = None) -> Ragged:
        """From a sequence of int sequences, each cut to ``max_len`` when given."""
        lengths = np.fromiter((len(r) for r in rows), np.int64, len(rows))
        flat = np.concatenate([np.asarray(r, np.int64).ravel() for r in rows]) if len(rows) else np.zeros(0, np.int64)
        ragged = cls(flat, np.concatenate(([0], np.cumsum(lengths))))
        return ragged if max_len is None else ragged.truncated(max_len)

    @property
    def lengths(self) -> np.ndarray:
        """The length of each row."""
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def truncated(self, max_len: int) -> Ragged:
        """Each row cut to its first ``max_len`` values."""
        lengths = np.minimum(self.lengths, max_len)
        keep = np.arange(self.flat.size) - np.repeat(self.offsets[:-1], self.lengths) < np.repeat(lengths, self.lengths)
        return Ragged(self.flat[keep], np.concatenate(([0], np.cumsum(lengths))))

    def take(self, index: np.ndarray) -> Ragged:
        """The rows at ``index``, in that order."""
        lengths = self.lengths[index]
        starts = self.offsets[:-1][index]
        shift = starts - np.concatenate(([0], np.cumsum(lengths)[:-1]))
        positions = np.repeat(shift, lengths) + np.arange(lengths.sum())
        return Ragged(self.flat[positions], np.concatenate(([0], np.cumsum(lengths))))

    def padded(self, width: int | None = None, *, prefix: int | None = None, suffix: int | None = None
               ) -> np.ndarray:
        """(rows, width) int64 array padded with ``PAD_ID``, optionally with a first or last token added."""
        lengths = self.lengths
        extra = int(prefix is not None) + int(suffix is not None)
        width = int(lengths.max(initial=0)) + extra if width is None else width
        out = np.full((len(self), width), PAD_ID, np.int64)
        start = int(prefix is not None)
        if prefix is not None:
            out[:, 0] = prefix
        mask = (np.arange(width - start)[None, :] < lengths[:, None])
        out[:, start:][mask] = self.flat
        if suffix is not None:
            out[np.arange(len(self)), start + lengths] = suffix
        return out


class PairData:
    """Source/target id pairs truncated to the maximum lengths, batched by length bucket.

    Pairs whose source is empty are dropped (nothing to attend to), as Sockeye drops empty lines.
    """

    def __init__(self, sources: Sequence, targets: Sequence, max_source: int, max_target: int):
        src, trg = Ragged.from_rows(sources, max_source), Ragged.from_rows(targets, max_target)
        keep = np.flatnonzero(src.lengths > 0)
        self.dropped = len(src) - keep.size
        if self.dropped:
            src, trg = src.take(keep), trg.take(keep)
        self.source, self.target = src, trg
        self.max_source, self.max_target = max_source, max_target

    def __len__(self) -> int:
        return len(self.source)

    @property
    def length_ratio(self) -> tuple[float, float]:
        """Mean and standard deviation of target/source length ratios."""
        ratio = self.target.lengths / np.maximum(self.source.lengths, 1)
        return (float(ratio.mean()), float(ratio.std())) if ratio.size else (1.0, 0.0)

    def bucket_of(self, buckets: list[tuple[int, int]]) -> np.ndarray:
        """Index of the smallest bucket holding each pair (both bucket sides are non-decreasing)."""
        src_sides = np.asarray([b[0] for b in buckets])
        trg_sides = np.asarray([b[1] for b in buckets])
        return np.maximum(np.searchsorted(src_sides, self.source.lengths, "left"),
                          np.searchsorted(trg_sides, self.target.lengths, "left"))

    def batches(self, batch_size: int, buckets: list[tuple[int, int]] | None, rng: np.random.Generator | None
                ) -> list[tuple[np.ndarray, int, int]]:
        """``(row indices, source width, target width)`` per mini-batch.

        With buckets, each batch comes from one bucket and is padded to its lengths; without, to the
        maximum lengths. ``rng`` shuffles rows within buckets and the order of batches.
        """
        buckets = buckets or [(self.max_source, self.max_target)]
        which = self.bucket_of(buckets)
        out = []
        for b, (s_len, t_len) in enumerate(buckets):
            rows = np.flatnonzero(which == b)
            if rng is not None:
                rows = rng.permutation(rows)
            out += [(rows[i:i + batch_size], s_len, t_len) for i in range(0, rows.size, batch_size)]
        if rng is not None:
            out = [out[i] for i in rng.permutation(len(out))]
        return out

    def tensors(self, rows: np.ndarray, source_width: int | None = None, target_width: int | None = None):
        """Padded ``source (n, S)``, source lengths, decoder input ``<s> y`` and labels ``y </s>`` (n, T+1)."""
        src, trg = self.source.take(rows), self.target.take(rows)
        t_width = None if target_width is None else target_width + 1
        return (src.padded(source_width), src.lengths, trg.padded(t_width, prefix=BOS_ID),
                trg.padded(t_width, suffix=EOS_ID))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of :func:`prepare`, with the options of SageMaker's ``create_vocab_proto.py``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m sagelocal.algorithms.seq2seq",
                                     description="Build Seq2Seq vocabularies and RecordIO-protobuf files from "
                                                 "parallel text (one sentence per line, tokens separated by spaces).")
    parser.add_argument("-ts", "--train-source", required=True)
    parser.add_argument("-tt", "--train-target", required=True)
    parser.add_argument("-vs", "--val-source")
    parser.add_argument("-vt", "--val-target")
    parser.add_argument("-o", "--output", required=True, help="folder receiving train/, validation/ and vocab/")
    parser.add_argument("--single-vocab", action="store_true", help="one vocabulary for both sides")
    parser.add_argument("--vocab-source-json", help="use this source vocabulary instead of building one")
    parser.add_argument("--vocab-target-json", help="use this target vocabulary instead of building one")
    parser.add_argument("--num-words-source", type=int, default=50000)
    parser.add_argument("--num-words-target", type=int, default=50000)
    parser.add_argument("--word-min-count-source", type=int, default=1)
    parser.add_argument("--word-min-count-target", type=int, default=1)
    args = parser.parse_args(argv)
    given = args.vocab_source_json and args.vocab_target_json
    report = prepare(args.output, args.train_source, args.train_target, args.val_source, args.val_target,
                     vocab_source=read_vocab(args.vocab_source_json) if given else None,
                     vocab_target=read_vocab(args.vocab_target_json) if given else None,
                     single_vocab=args.single_vocab, num_words_source=args.num_words_source,
                     num_words_target=args.num_words_target, min_count_source=args.word_min_count_source,
                     min_count_target=args.word_min_count_target)
    print(json.dumps(report, indent=1))
    return 0
