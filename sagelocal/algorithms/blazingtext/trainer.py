"""BlazingText's training: the supervised classifier and batch_skipgram on the shared loop, cbow/skipgram on
gensim, and the word-similarity evaluation.

- ``supervised`` (:class:`SupervisedTrainer`): lines are encoded once as fastText reads them
  (:func:`.data.encode`); each epoch shuffles the lines, cuts them into mini-batches and takes one SGD
  step per batch on :class:`.network.Classifier`, with fastText's linear learning-rate decay to zero over
  all epochs. BlazingText's early stopping checks ``validation:accuracy`` from epoch ``min_epochs`` on and
  stops after ``patience`` epochs without gain; the model of the last epoch is kept (the guide describes
  no roll-back).
- ``batch_skipgram`` (:class:`BatchSkipgramTrainer`): sagelocal's torch kernel with negative sample
  sharing (:class:`.network.SkipGramSharing`), on CUDA when present; a batch of the loop is one step of
  ``targets_per_step`` target words.
- ``cbow`` / ``skipgram`` (:func:`train_gensim`): gensim's optimised CPU kernels (the fastest CPU
  implementation of word2vec; gensim's ``FastText`` when ``subwords=true``), reading the corpus file
  directly with every core; the progress bar and ``#progress_metric`` lines follow gensim's epochs.

All end as a :class:`~.fasttext_format.FastTextModel` (words most frequent first, input and output
matrices), the layout of ``vectors.bin`` / ``model.bin``. Both torch trainers run under
:func:`~sagelocal.base.torch_layer.seeded` (every draw comes from torch's generator seeded with
``random_state``) and take their many small CPU steps on one thread.

``evaluation=true`` scores Word2Vec vectors on WordSimilarity-353 (bundled in ``data/``): Spearman's rank
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

from ...base.errors import DataFormatError, MissingDependencyError
from ...base.torch_layer import load_module_arrays, module_arrays, seeded, threads
from ...base.training import EarlyStopping, MetricReporter, TrainingLoop, progress_bar
from .data import Encoded
from .fasttext_format import LOSSES, MODELS, Args, FastTextModel
from .network import Classifier, SkipGramSharing, ragged_batch, scatter_add

logger = logging.getLogger("sagelocal")

ACCURACY = "validation:accuracy"
DATA = Path(__file__).with_name("data")
#: Word-similarity sets scored when evaluation=true, as (file name in data/, name in eval.json).
SIMILARITY_SETS = (("EN-WS-353-ALL.txt", "EN-WS-353-ALL.txt"),)


def _step_threads(device: torch.device) -> int | None:
    """One CPU thread for the torch kernels: a step is a dozen small ops, and splitting them over threads
    costs a barrier per op, milliseconds as soon as the cores are shared, against microseconds of work."""
    return 1 if device.type == "cpu" else None


# ------------------------------------------------------------------------------------- supervised
class _Lines:
    """Line numbers of the training set, shuffled per epoch, in mini-batches (a TrainingLoop source)."""

    def __init__(self, n_lines: int, device):
        self.n_lines, self.device = n_lines, device

    def batches(self, batch_size: int, epoch: int = 0):
        order = torch.randperm(self.n_lines, device=self.device)
        for start in range(0, self.n_lines, batch_size):
            yield order[start:start + batch_size]


class _Tensors:
    """An :class:`Encoded` set on ``device``."""

    def __init__(self, encoded: Encoded, device):
        self.ids = torch.as_tensor(encoded.ids, device=device)
        self.offsets = torch.as_tensor(encoded.offsets, device=device)
        self.labels = torch.as_tensor(encoded.labels, device=device)
        self.label_offsets = torch.as_tensor(encoded.label_offsets, device=device)
        self.n_lines = encoded.n_lines


class SupervisedTrainer:
    """The fastText classifier as a :class:`~sagelocal.base.training.Trainable` (see the module docstring)."""

    def __init__(self, train: Encoded, validation: Encoded | None, *, rows: int, n_labels: int, hp: dict,
                 device, seed: int, reporter: MetricReporter):
        self.hp, self.device, self.seed, self.reporter = hp, device, seed, reporter
        self.train = _Tensors(train, device)
        self.validation = None if validation is None else _Tensors(validation, device)
        self.rows, self.n_labels = rows, n_labels
        self.total = hp["epochs"] * self.train.n_lines
        self.seen = 0
        self.model: Classifier | None = None

    def early_stopping(self) -> EarlyStopping | None:
        hp = self.hp
        return EarlyStopping(ACCURACY, patience=hp["patience"], goal="Maximize") if hp["early_stopping"] else None

    def run(self, loop: TrainingLoop) -> int:
        """Train with ``loop`` (its batch size is the lines per step); returns the number of epochs run."""
        with seeded(self.seed, self.device), threads(_step_threads(self.device)):
            self.model = Classifier.initial(self.rows, self.hp["vector_dim"], self.n_labels, self.device)
            return loop.run(_Lines(self.train.n_lines, self.device), self)

    def train_batch(self, lines: torch.Tensor) -> None:
        data = self.train
        ids, offsets, lengths = ragged_batch(data.ids, data.offsets, lines)
        lr = self.hp["learning_rate"] * max(0.0, 1.0 - self.seen / self.total)
        self.model.step(ids, offsets, lengths, self._targets(lines), lr)
        self.seen += len(lines)
        return None

    def _targets(self, lines: torch.Tensor) -> torch.Tensor:
        """One label per line; a multi-label line contributes a label drawn at random (fastText's softmax)."""
        data = self.train
        starts = data.label_offsets[lines]
        counts = data.label_offsets[lines + 1] - starts
        pick = (torch.rand(len(lines), device=self.device) * counts).long()
        return data.labels[starts + torch.minimum(pick, counts - 1)]

    def end_epoch(self, epoch: int) -> dict[str, float]:
        if self.validation is None:
            return {}
        value = accuracy(self.model, self.validation)
        self.reporter.report(ACCURACY, value, "Maximize", epoch=epoch)
        return {ACCURACY: value} if epoch + 1 >= self.hp["min_epochs"] else {}

    def state(self) -> dict[str, np.ndarray]:
        return {**module_arrays(self.model), "seen": np.asarray(self.seen)}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        load_module_arrays(self.model, state)
        self.seen = int(state["seen"])

    def to_fasttext(self, entries, counts, nwords: int, ntokens: int) -> FastTextModel:
        """The trained classifier as a fastText model (``model.bin``)."""
        return FastTextModel(classifier_args(self.hp), entries, counts, nwords, ntokens,
                             self.model.input.cpu().numpy(), self.model.output.cpu().numpy())


@torch.no_grad()
def accuracy(model: Classifier, data: _Tensors, chunk: int = 65536) -> float:
    """Precision at one: the share of lines whose most probable label is one of their labels."""
    hits = 0
    for start in range(0, data.n_lines, chunk):
        lines = torch.arange(start, min(start + chunk, data.n_lines), device=data.ids.device)
        ids, offsets, _ = ragged_batch(data.ids, data.offsets, lines)
        best = (model.hidden(ids, offsets) @ model.output.T).argmax(dim=1)
        starts, ends = data.label_offsets[lines], data.label_offsets[lines + 1]
        flat_owner = torch.repeat_interleave(torch.arange(len(lines), device=ids.device), ends - starts)
        flat = data.labels[starts[0]:ends[-1]]  # lines are contiguous in the CSR
        matched = torch.zeros(len(lines), dtype=torch.long, device=ids.device)
        scatter_add(matched, flat_owner, (flat == best[flat_owner]).long())
        hits += int((matched > 0).sum())
    return hits / max(data.n_lines, 1)


def check_labelled(encoded: Encoded, channel: str) -> None:
    """Every supervised line needs at least one ``__label__`` token known to the dictionary."""
    counts = np.diff(encoded.label_offsets)
    if encoded.n_lines == 0:
        raise DataFormatError("no lines to train on", channel=channel)
    missing = np.flatnonzero(counts == 0)
    if len(missing):
        what = "label known from training" if channel != "train" else "__label__ token"
        raise DataFormatError(f"supervised mode needs every line to carry a {what}; line {missing[0] + 1} "
                              f"has none ({len(missing)} such lines)", channel=channel, record=int(missing[0]) + 1)


def classifier_args(hp: dict) -> Args:
    """The ``.bin`` header of a supervised model trained with ``hp`` (fastText's supervised defaults
    for what BlazingText does not expose: ws 5, neg 5, no character n-grams, lrUpdateRate 100)."""
    ngrams = hp["word_ngrams"]
    return Args(dim=hp["vector_dim"], ws=5, epoch=hp["epochs"], min_count=hp["min_count"], neg=5,
                word_ngrams=ngrams, loss=LOSSES["softmax"], model=MODELS["sup"],
                bucket=hp["buckets"] if ngrams > 1 else 0, minn=0, maxn=0, t=1e-4)


# --------------------------------------------------------------------------------------- word2vec
def fasttext_args(hp: dict, *, model: str, bucket: int, minn: int, maxn: int) -> Args:
    """The ``.bin`` header of a Word2Vec model trained with ``hp``."""
    return Args(dim=hp["vector_dim"], ws=hp["window_size"], epoch=hp["epochs"], min_count=hp["min_count"],
                neg=hp["negative_samples"], word_ngrams=1, loss=LOSSES["ns"], model=MODELS[model],
                bucket=bucket, minn=minn, maxn=maxn, t=hp["sampling_threshold"])


def corpus_error(min_count: int) -> DataFormatError:
    return DataFormatError(f"blazingtext: no word occurs at least min_count={min_count} times in the "
                           f"training data", channel="train")


def _gensim():
    try:
        import gensim.models
    except ImportError:
        raise MissingDependencyError("blazingtext: modes cbow and skipgram train with gensim, which is not "
                                     "installed; install the extra: pip install 'sagelocal[blazingtext]'") from None
    return gensim.models


class _EpochProgress:
    """A gensim callback: each finished epoch moves the progress bar and prints ``#progress_metric``."""

    def __init__(self, bar, reporter: MetricReporter, epochs: int):
        self.bar, self.reporter, self.epochs, self.done = bar, reporter, epochs, 0

    def on_epoch_end(self, model) -> None:
        self.done += 1
        self.reporter.progress(self.done, self.epochs)
        self.bar.update(1, {})

    def on_train_begin(self, model) -> None:
        pass

    def on_train_end(self, model) -> None:
        pass

    def on_epoch_begin(self, model) -> None:
        pass


def train_gensim(corpus_file: str, hp: dict, *, threads: int, seed: int, reporter: MetricReporter,
                 progress) -> FastTextModel:
    """cbow / skipgram (with subwords: gensim's FastText) on ``corpus_file``; ``progress`` is the estimator's
    option (a bar over epochs on a terminal)."""
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
    with progress_bar(progress, total=hp["epochs"], unit="epoch") as bar:
        model.train(corpus_file=corpus_file, total_words=model.corpus_total_words, epochs=hp["epochs"],
                    callbacks=[_EpochProgress(bar, reporter, hp["epochs"])])
    logger.info("trained %s on %d words x %d epochs in %.1f s", hp["mode"], model.corpus_total_words,
                hp["epochs"], time.perf_counter() - started)
    wv = model.wv
    words = [w.encode() for w in wv.index_to_key]
    counts = np.asarray(wv.expandos["count"], dtype=np.int64)
    name = "cbow" if hp["mode"] == "cbow" else "sg"
    if subwords:
        matrix = np.concatenate([wv.vectors_vocab, wv.vectors_ngrams])
        args = fasttext_args(hp, model=name, bucket=hp["buckets"], minn=hp["min_char"], maxn=hp["max_char"])
    else:
        matrix = wv.vectors
        args = fasttext_args(hp, model=name, bucket=0, minn=0, maxn=0)
    return FastTextModel(args, words, counts, len(words), int(model.corpus_total_words),
                         np.ascontiguousarray(matrix, dtype=np.float32),
                         np.ascontiguousarray(model.syn1neg, dtype=np.float32))


class _Steps:
    """batch_skipgram's batches: per epoch the down-sampled corpus, in chunks of prepared groups, cut into
    steps of ``batch_size`` target words, each with its learning rate (a TrainingLoop source)."""

    def __init__(self, trainer: BatchSkipgramTrainer, chunk: int = 1 << 18):
        self.trainer, self.chunk = trainer, chunk

    def batches(self, batch_size: int, epoch: int = 0):
        trainer = self.trainer
        kernel, hp = trainer.kernel, trainer.hp
        kept, kept_sentences = kernel.epoch_targets(trainer.words, trainer.sentences)
        n, epochs, lr0 = len(kept), hp["epochs"], hp["learning_rate"]
        for first in range(0, n, self.chunk):
            last = min(first + self.chunk, n)
            prepared = kernel.prepare(kept, kept_sentences, first, last)
            groups = len(prepared["contexts"])
            per_target = groups // (last - first)
            for start in range(0, groups, batch_size * per_target):
                progress = (epoch + (first + start / per_target) / max(n, 1)) / epochs
                lr = lr0 * max(1.0 - progress, 1e-4)  # word2vec's linear decay, floored at 1e-4 of the start
                yield prepared, start, min(start + batch_size * per_target, groups), lr


class BatchSkipgramTrainer:
    """batch_skipgram on ``lines`` (token lists) as a :class:`~sagelocal.base.training.Trainable`."""

    def __init__(self, lines: list[list[bytes]], hp: dict, *, device, seed: int):
        counter: Counter = Counter()
        for tokens in lines:
            counter.update(tokens)
        vocab = sorted((item for item in counter.items() if item[1] >= hp["min_count"]), key=lambda i: -i[1])
        if not vocab:
            raise corpus_error(hp["min_count"])
        self.vocabulary = [w for w, _ in vocab]
        self.counts = np.asarray([c for _, c in vocab], dtype=np.int64)
        index = {w: i for i, w in enumerate(self.vocabulary)}
        ids = np.fromiter((index.get(t, -1) for tokens in lines for t in tokens), dtype=np.int64,
                          count=sum(map(len, lines)))
        sentence = np.repeat(np.arange(len(lines)), [len(t) for t in lines])
        known = ids >= 0
        self.hp, self.device, self.seed = hp, device, seed
        self.words = torch.as_tensor(ids[known], device=device)
        self.sentences = torch.as_tensor(sentence[known], device=device)
        self.total_words = int(ids.size)
        self.kernel: SkipGramSharing | None = None

    def run(self, loop: TrainingLoop) -> FastTextModel:
        """Train with ``loop`` (its batch size is the target words per step); returns the model."""
        hp, device = self.hp, self.device
        started = time.perf_counter()
        with seeded(self.seed, device), threads(_step_threads(device)):
            self.kernel = SkipGramSharing(self.counts, hp["vector_dim"], hp["window_size"], hp["negative_samples"],
                                          hp["batch_size"], hp["sampling_threshold"], device)
            loop.run(_Steps(self), self)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - started
        logger.info("batch_skipgram: %d words x %d epochs in %.1f s (%.0f words/s)", self.total_words,
                    hp["epochs"], elapsed, self.total_words * hp["epochs"] / max(elapsed, 1e-9))
        args = fasttext_args(hp, model="sg", bucket=0, minn=0, maxn=0)
        return FastTextModel(args, self.vocabulary, self.counts, len(self.vocabulary), self.total_words,
                             self.kernel.input.cpu().numpy(), self.kernel.output.cpu().numpy())

    def train_batch(self, step) -> None:
        prepared, start, stop, lr = step
        self.kernel.update(prepared, start, stop, lr)
        return None

    def end_epoch(self, epoch: int) -> dict[str, float]:
        return {}

    def state(self) -> dict[str, np.ndarray]:
        return module_arrays(self.kernel)

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        load_module_arrays(self.kernel, state)


# ------------------------------------------------------------------------------------- evaluation
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
