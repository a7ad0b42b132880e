"""fastText's ``.bin`` model format and word2vec's text format, the files BlazingText writes.

``.bin`` layout (fastText 0.9, file version 12, little-endian as on every host fastText runs on)::

    int32 magic 793712314, int32 version 12
    args: int32 dim, ws, epoch, minCount, neg, wordNgrams, loss, model, bucket, minn, maxn,
          lrUpdateRate; float64 t
    dictionary: int32 size, nwords, nlabels; int64 ntokens, pruneidx_size (-1: not pruned);
          size x (word bytes, NUL, int64 count, int8 type 0=word 1=label); pruneidx pairs
    uint8 quantized input (0), input matrix: int64 rows, int64 cols, float32 rows*cols
    uint8 quantized output (0), output matrix: int64 rows, int64 cols, float32 rows*cols

The input matrix holds ``nwords`` word rows then ``bucket`` hashed n-gram rows. Quantized models
(``.ftz``) are refused with a clear error.
"""

from __future__ import annotations

import io
import mmap
import struct
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from ...base.errors import ArtifactError

MAGIC = 793712314
VERSION = 12
LOSSES = {"hs": 1, "ns": 2, "softmax": 3, "ova": 4}
MODELS = {"cbow": 1, "sg": 2, "sup": 3}
_ARG_FORMAT = "<12id"
_WORD, _LABEL = 0, 1


@dataclass
class Args:
    """fastText's training arguments as stored in the ``.bin`` header."""

    dim: int = 100
    ws: int = 5
    epoch: int = 5
    min_count: int = 5
    neg: int = 5
    word_ngrams: int = 1
    loss: int = LOSSES["ns"]
    model: int = MODELS["sg"]
    bucket: int = 0
    minn: int = 0
    maxn: int = 0
    lr_update_rate: int = 100
    t: float = 1e-4

    def pack(self) -> bytes:
        return struct.pack(_ARG_FORMAT, *(getattr(self, f.name) for f in fields(self)))


@dataclass
class FastTextModel:
    """A fastText model in memory: arguments, dictionary and both matrices."""

    args: Args
    entries: list[bytes]           # words (most frequent first) then labels
    counts: np.ndarray             # int64 per entry
    nwords: int
    ntokens: int
    input: np.ndarray              # float32 (nwords + bucket, dim)
    output: np.ndarray             # float32 (nlabels or nwords, dim)
    _index: dict | None = field(default=None, repr=False, compare=False)

    @property
    def nlabels(self) -> int:
        return len(self.entries) - self.nwords

    @property
    def supervised(self) -> bool:
        return self.args.model == MODELS["sup"]

    @property
    def words(self) -> list[bytes]:
        return self.entries[:self.nwords]

    @property
    def labels(self) -> list[bytes]:
        return self.entries[self.nwords:]

    def index(self) -> dict[bytes, int]:
        """Entry -> id (words and labels)."""
        if self._index is None:
            self._index = {entry: i for i, entry in enumerate(self.entries)}
        return self._index


def write_bin(path, model: FastTextModel) -> None:
    """Write ``model`` as a fastText ``.bin`` file (loadable by fastText, gensim and BlazingText)."""
    with open(path, "wb") as out:
        _write(out, model)


def bin_bytes(model: FastTextModel) -> bytes:
    """The bytes of ``model``'s ``.bin`` file."""
    buffer = io.BytesIO()
    _write(buffer, model)
    return buffer.getvalue()


def _write(out, model: FastTextModel) -> None:
    types = [_WORD] * model.nwords + [_LABEL] * model.nlabels
    dictionary = b"".join(entry + b"\0" + struct.pack("<qb", int(count), kind)
                          for entry, count, kind in zip(model.entries, model.counts.tolist(), types))
    out.write(struct.pack("<2i", MAGIC, VERSION))
    out.write(model.args.pack())
    out.write(struct.pack("<3i2q", len(model.entries), model.nwords, model.nlabels, model.ntokens, -1))
    out.write(dictionary)
    for matrix in (model.input, model.output):
        out.write(struct.pack("<?2q", False, *matrix.shape))
        out.write(memoryview(np.ascontiguousarray(matrix, dtype="<f4")).cast("B"))


def read_bin(path) -> FastTextModel:
    """Read a fastText ``.bin`` file (written by fastText, gensim, BlazingText or :func:`write_bin`)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return parse_bin(data, str(path))
    except OSError as exc:
        raise ArtifactError(f"'{path}' is not a readable fastText .bin model: {exc}") from None


def parse_bin(data, shown: str = "model.bin") -> FastTextModel:
    """Parse the bytes (or memory map) of a fastText ``.bin`` file; ``shown`` names it in errors."""
    try:
        return _parse(data, shown)
    except (ValueError, struct.error) as exc:
        raise ArtifactError(f"'{shown}' is not a readable fastText .bin model: {exc}") from None


def _parse(data, path: str) -> FastTextModel:
    magic, version = struct.unpack_from("<2i", data, 0)
    if magic != MAGIC:
        raise ArtifactError(f"'{path}' is not a fastText .bin model (magic {magic}, expected {MAGIC})")
    if version > VERSION:
        raise ArtifactError(f"'{path}': fastText file version {version} is newer than supported ({VERSION})")
    args = Args(*struct.unpack_from(_ARG_FORMAT, data, 8))
    pos = 8 + struct.calcsize(_ARG_FORMAT)
    size, nwords, nlabels, ntokens, pruned = struct.unpack_from("<3i2q", data, pos)
    pos += struct.calcsize("<3i2q")
    entries, counts = [], np.empty(size, dtype=np.int64)
    for i in range(size):
        end = data.find(b"\0", pos)
        entries.append(data[pos:end])
        counts[i], _ = struct.unpack_from("<qb", data, end + 1)
        pos = end + 10
    if pruned > 0:
        raise ArtifactError(f"'{path}': pruned (quantized) fastText models are not supported")
    if version == 11 and args.model == MODELS["sup"]:
        args.maxn = 0  # fastText's own rule: version-11 classifiers have no character n-grams
    matrices = []
    for _ in range(2):
        quantized, rows, cols = struct.unpack_from("<?2q", data, pos)
        if quantized:
            raise ArtifactError(f"'{path}': quantized fastText models (.ftz) are not supported")
        pos += struct.calcsize("<?2q")
        matrices.append(np.frombuffer(data, dtype="<f4", count=rows * cols, offset=pos)
                        .reshape(rows, cols).astype(np.float32))
        pos += 4 * rows * cols
    return FastTextModel(args, entries, counts, nwords, ntokens, matrices[0], matrices[1])


def write_word2vec_text(path, words: list[bytes], vectors: np.ndarray, chunk: int = 4096) -> None:
    """word2vec text format: ``<count> <dim>`` then ``word v1 ... vdim`` per line, in the given order."""
    vectors = np.asarray(vectors, dtype=np.float32)
    with open(path, "wb") as out:
        out.write(f"{len(words)} {vectors.shape[1]}\n".encode())
        row_format = " ".join(["%.5g"] * vectors.shape[1])
        for start in range(0, len(words), chunk):
            block = vectors[start:start + chunk].tolist()
            out.write(b"".join(word + b" " + (row_format % tuple(row)).encode() + b"\n"
                               for word, row in zip(words[start:start + chunk], block)))
