"""BlazingText's Word2Vec modes and its word-similarity evaluation.

``cbow`` and ``skipgram`` run on gensim's optimised CPU kernels (the fastest CPU implementation of
word2vec; gensim's ``FastText`` when ``subwords=true``), reading the corpus file directly with every
core. ``batch_skipgram`` is sagelocal's torch kernel with negative sample sharing
(:class:`~.network.SkipGramSharing`), on CUDA when present. All three end as a
:class:`~.fasttext_format.FastTextModel` (words most frequent first, input and output matrices), the
layout of ``vectors.bin``.

``evaluation=true`` scores the vectors on WordSimilarity-353 (bundled in ``data/``): Spearman's rank
correlation between the human ratings and the cosine similarity of each pair whose two words are in the
vocabulary (words are matched case-insensitively, preferring the most frequent spelling).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from ...base.errors import SagelocalError
from .fasttext_format import LOSSES, MODELS, Args, FastTextModel
from .network import SkipGramSharing, step_threads

logger = logging.getLogger("sagelocal")

DATA = Path(__file__).with_name("data")
#: Word-similarity sets scored when evaluation=true, as (file name in data/, name in eval.json).
SIMILARITY_SETS = (("EN-WS-353-ALL.txt", "EN-WS-353-ALL.txt"),)


class MissingBackendError(SagelocalError):
    """An optional package an algorithm mode needs is not installed."""


def _gensim():
    try:
        import gensim.models
    except ImportError:
        raise MissingBackendError("blazingtext: modes cbow and skipgram train with gensim, which is not "
                                  "installed; install the extra: pip install 'sagelocal[blazingtext]'") from None
    return gensim.models


def fasttext_args(hp: dict, *, model: str, bucket: int, minn: int, maxn: int) -> Args:
    """The ``.bin`` header of a Word2Vec model trained with ``hp``."""
    return Args(dim=hp["vector_dim"], ws=hp["window_size"], epoch=hp["epochs"], min_count=hp["min_count"],
                neg=hp["negative_samples"], word_ngrams=1, loss=LOSSES["ns"], model=MODELS[model],
                bucket=bucket, minn=minn, maxn=maxn, t=hp["sampling_threshold"])


# --------------------------------------------------------------------------------------- gensim
def train_gensim(corpus_file: str, hp: dict, *, threads: int, seed: int) -> tuple[FastTextModel, np.ndarray]:
    """cbow / skipgram (with subwords: gensim's FastText) on ``corpus_file``.

    Returns the model and the word vectors of the vocabulary (for subword models the average of the
    word's row and its n-gram rows, as fastText composes them).
    """
    models = _gensim()
    subwords = hp["subwords"]
    common = dict(vector_size=hp["vector_dim"], window=hp["window_size"], min_count=hp["min_count"],
                  sample=hp["sampling_threshold"], negative=hp["negative_samples"], hs=0,
                  sg=int(hp["mode"] == "skipgram"), cbow_mean=1, alpha=hp["learning_rate"],
                  # word2vec.c decays the rate linearly to 1e-4 of its start
                  min_alpha=hp["learning_rate"] * 1e-4, epochs=hp["epochs"], workers=threads, seed=seed)
    if subwords:
        model = models.FastText(min_n=hp["min_char"], max_n=hp["max_char"], bucket=hp["buckets"],
                                word_ngrams=1, **common)
    else:
        model = models.Word2Vec(**common)
    started = time.perf_counter()
    model.build_vocab(corpus_file=corpus_file)
    if len(model.wv) == 0:
        raise corpus_error(hp["min_count"])
    model.train(corpus_file=corpus_file, total_words=model.corpus_total_words, epochs=hp["epochs"])
    logger.info("trained %s on %d words x %d epochs in %.1f s", hp["mode"], model.corpus_total_words,
                hp["epochs"], time.perf_counter() - started)
    wv = model.wv
    words = [w.encode() for w in wv.index_to_key]
    counts = np.asarray(wv.expandos["count"], dtype=np.int64)
    if subwords:
        matrix = np.concatenate([wv.vectors_vocab, wv.vectors_ngrams])
        args = fasttext_args(hp, model=_model_name(hp), bucket=hp["buckets"], minn=hp["min_char"],
                             maxn=hp["max_char"])
    else:
        matrix = wv.vectors
        args = fasttext_args(hp, model=_model_name(hp), bucket=0, minn=0, maxn=0)
    result = FastTextModel(args, words, counts, len(words), int(model.corpus_total_words),
                           np.ascontiguousarray(matrix, dtype=np.float32),
                           np.ascontiguousarray(model.syn1neg, dtype=np.float32))
    return result, np.ascontiguousarray(wv.vectors, dtype=np.float32)


def _model_name(hp: dict) -> str:
    return "cbow" if hp["mode"] == "cbow" else "sg"


def corpus_error(min_count: int):
    from ...base.errors import DataFormatError

    return DataFormatError(f"blazingtext: no word occurs at least min_count={min_count} times in the "
                           f"training data", channel="train")


# ------------------------------------------------------------------------------- batch_skipgram
def train_batch_skipgram(lines: list[list[bytes]], hp: dict, *, device, seed: int, block: int,
                         reporter=None) -> FastTextModel:
    """batch_skipgram on ``lines`` (token lists) with the torch kernel; see the module docstring."""
    counter: Counter = Counter()
    for tokens in lines:
        counter.update(tokens)
    vocab = sorted((item for item in counter.items() if item[1] >= hp["min_count"]), key=lambda i: -i[1])
    if not vocab:
        raise corpus_error(hp["min_count"])
    words = [w for w, _ in vocab]
    counts = np.asarray([c for _, c in vocab], dtype=np.int64)
    index = {w: i for i, w in enumerate(words)}
    ids = np.fromiter((index.get(t, -1) for tokens in lines for t in tokens), dtype=np.int64,
                      count=sum(map(len, lines)))
    sentence = np.repeat(np.arange(len(lines)), [len(t) for t in lines])
    known = ids >= 0
    generator = torch.Generator(device=device).manual_seed(seed)
    kernel = SkipGramSharing(counts, hp["vector_dim"], hp["window_size"], hp["negative_samples"],
                             hp["batch_size"], hp["sampling_threshold"], device, generator)
    corpus_ids = torch.as_tensor(ids[known], device=device)
    corpus_sentences = torch.as_tensor(sentence[known], device=device)
    total_words = int(ids.size)
    started = time.perf_counter()
    with step_threads(device):
        for epoch in range(hp["epochs"]):
            _batch_skipgram_epoch(kernel, corpus_ids, corpus_sentences, hp, epoch, block)
            if reporter is not None:
                reporter.progress(epoch + 1, hp["epochs"])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - started
    logger.info("batch_skipgram: %d words x %d epochs in %.1f s (%.0f words/s)", total_words, hp["epochs"],
                elapsed, total_words * hp["epochs"] / max(elapsed, 1e-9))
    args = fasttext_args(hp, model="sg", bucket=0, minn=0, maxn=0)
    return FastTextModel(args, words, counts, len(words), total_words, kernel.input.cpu().numpy(),
                         kernel.output.cpu().numpy())


def _batch_skipgram_epoch(kernel: SkipGramSharing, words, sentences, hp: dict, epoch: int, block: int,
                          chunk: int = 1 << 18) -> None:
    kept, kept_sentences = kernel.epoch_targets(words, sentences)
    n, epochs, lr0 = len(kept), hp["epochs"], hp["learning_rate"]
    for first in range(0, n, chunk):
        last = min(first + chunk, n)
        prepared = kernel.prepare(kept, kept_sentences, first, last)
        groups = len(prepared["contexts"])
        per_target = groups // (last - first)
        for start in range(0, groups, block * per_target):
            progress = (epoch + (first + start / per_target) / max(n, 1)) / epochs
            lr = lr0 * max(1.0 - progress, 1e-4)  # word2vec's linear decay, floored at 1e-4 of the start
            kernel.update(prepared, start, min(start + block * per_target, groups), lr)


# ----------------------------------------------------------------------------------- evaluation
def load_similarity_set(name: str) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Pairs and human scores of a bundled word-similarity file (``#`` lines are comments)."""
    pairs, scores = [], []
    for line in (DATA / name).read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        first, second, score = line.split("\t")[:3]
        pairs.append((first, second))
        scores.append(float(score))
    return pairs, np.asarray(scores)


def evaluate(words: list[bytes], vectors: np.ndarray) -> dict:
    """eval.json: per set ``spearmans_rho``, ``not_found`` (pairs with a word missing) and
    ``total_pairs``, and ``mean_rho`` over the sets."""
    from scipy.stats import spearmanr

    lowered: dict[str, int] = {}
    for i, word in enumerate(words):  # most frequent spelling first
        lowered.setdefault(word.decode("utf-8", "replace").lower(), i)
    norms = np.linalg.norm(vectors, axis=1)
    result, rhos = {}, []
    for file_name, shown in SIMILARITY_SETS:
        pairs, human = load_similarity_set(file_name)
        found = [(k, lowered.get(a.lower()), lowered.get(b.lower())) for k, (a, b) in enumerate(pairs)]
        found = [(k, i, j) for k, i, j in found if i is not None and j is not None]
        rho = None  # fewer than two pairs in the vocabulary: no correlation to report
        if len(found) >= 2:
            k, i, j = (np.asarray(v) for v in zip(*found))
            cosine = np.einsum("nd,nd->n", vectors[i], vectors[j]) / np.maximum(norms[i] * norms[j], 1e-12)
            rho = float(spearmanr(human[k], cosine).statistic)
        result[shown] = {"not_found": len(pairs) - len(found), "spearmans_rho": rho, "total_pairs": len(pairs)}
        rhos.append(rho)
    scored = [rho for rho in rhos if rho is not None and np.isfinite(rho)]
    result["mean_rho"] = float(np.mean(scored)) if scored else None
    return result
