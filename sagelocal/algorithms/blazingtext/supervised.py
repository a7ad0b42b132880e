"""BlazingText's ``supervised`` mode: the fastText classifier trained with torch.

Lines are encoded once as fastText reads them (:func:`.corpus.encode`); each epoch shuffles the lines,
cuts them into mini-batches and takes one SGD step per batch on :class:`.network.Classifier`, with
fastText's linear learning-rate decay to zero over all epochs. The base
:class:`~sagelocal.base.training.TrainingLoop` runs the epochs and BlazingText's early stopping:
``validation:accuracy`` is checked from epoch ``min_epochs`` on and training stops after ``patience``
epochs without gain (the model of the last epoch is kept, as the guide describes no roll-back).
"""

from __future__ import annotations

import numpy as np
import torch

from ...base.errors import DataFormatError
from ...base.training import EarlyStopping, MetricReporter, TrainingLoop
from .corpus import Encoded
from .fasttext_format import LOSSES, MODELS, Args, FastTextModel
from .network import Classifier, ragged_batch, scatter_add, step_threads

ACCURACY = "validation:accuracy"


class _Lines:
    """Line numbers of the training set, shuffled per epoch, in mini-batches (a TrainingLoop source)."""

    def __init__(self, n_lines: int, device, generator: torch.Generator):
        self.n_lines, self.device, self.generator = n_lines, device, generator

    def batches(self, batch_size: int, epoch: int = 0):
        order = torch.randperm(self.n_lines, device=self.device, generator=self.generator)
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
    """The fastText classifier as a :class:`~sagelocal.base.training.Trainable`."""

    def __init__(self, train: Encoded, validation: Encoded | None, *, rows: int, n_labels: int, hp: dict,
                 device, generator: torch.Generator, reporter: MetricReporter, lines_per_step: int):
        self.hp, self.device, self.generator, self.reporter = hp, device, generator, reporter
        self.train = _Tensors(train, device)
        self.validation = None if validation is None else _Tensors(validation, device)
        self.lines_per_step = lines_per_step
        self.model = Classifier.initial(rows, hp["vector_dim"], n_labels, device, generator)
        self.total = hp["epochs"] * self.train.n_lines
        self.seen = 0
        self.accuracy: float | None = None

    def run(self) -> int:
        """Train; returns the number of epochs run."""
        hp = self.hp
        stopping = (EarlyStopping(ACCURACY, patience=hp["patience"], goal="Maximize")
                    if hp["early_stopping"] else None)
        loop = TrainingLoop(epochs=hp["epochs"], batch_size=self.lines_per_step, reporter=self.reporter,
                            early_stopping=stopping)
        with step_threads(self.device):
            return loop.run(_Lines(self.train.n_lines, self.device, self.generator), self)

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
        pick = (torch.rand(len(lines), device=self.device, generator=self.generator) * counts).long()
        return data.labels[starts + torch.minimum(pick, counts - 1)]

    def end_epoch(self, epoch: int) -> dict[str, float]:
        if self.validation is None:
            return {}
        self.accuracy = accuracy(self.model, self.validation)
        self.reporter.report(ACCURACY, self.accuracy, "Maximize", epoch=epoch)
        return {ACCURACY: self.accuracy} if epoch + 1 >= self.hp["min_epochs"] else {}

    def state(self) -> dict[str, np.ndarray]:
        return {"input": self.model.input.cpu().numpy(), "output": self.model.output.cpu().numpy(),
                "seen": np.asarray(self.seen)}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.model.input.copy_(torch.as_tensor(state["input"]))
        self.model.output.copy_(torch.as_tensor(state["output"]))
        self.seen = int(state["seen"])


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


def to_fasttext(trainer: SupervisedTrainer, entries, counts, nwords: int, ntokens: int, hp: dict) -> FastTextModel:
    """The trained classifier as a fastText model (``model.bin``)."""
    return FastTextModel(classifier_args(hp), entries, counts, nwords, ntokens,
                         trainer.model.input.cpu().numpy(), trainer.model.output.cpu().numpy())
