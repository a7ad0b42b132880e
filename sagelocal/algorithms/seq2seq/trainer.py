"""Seq2Seq's checkpoint-driven training (Sockeye's, with SageMaker's hyperparameter names) as a configuration
of the shared :class:`~sagelocal.base.training.TrainingLoop`.

An epoch of the loop is the run of updates between two checkpoints: every ``checkpoint_frequency_num_batches``
updates (and once more when training ends between two) the model is evaluated on the validation pairs:
perplexity and token accuracy by teacher forcing, BLEU by beam search on ``bleu_sample_size`` sentences.
The loop keeps the best checkpoint on ``optimized_metric`` (:class:`~sagelocal.base.torch_layer.KeepBest`),
which is the model at the end. Its early stopping ends training after ``checkpoint_threshold`` checkpoints
without improvement once ``min_num_epochs`` passes over the data have run, unless ``max_num_epochs`` is
given (SageMaker: training then runs that many epochs whatever validation does); ``max_num_batches`` and
``max_num_epochs`` fix the number of checkpoints. Passes over the data (Seq2Seq's epochs) shuffle the
length buckets by ``(random_state, pass)``.

Learning-rate schedules count checkpoints: ``plateau_reduce`` multiplies the rate by
``plateau_reduce_lr_factor`` after ``plateau_reduce_lr_threshold`` checkpoints without improvement;
``fixed_rate_inv_t`` / ``fixed_rate_inv_sqrt_t`` are Sockeye's ``lr / (1 + t / h)`` and
``lr / sqrt(1 + 3 t / h)``, ``h`` being ``fixed_rate_lr_half_life`` checkpoints in updates, so that the
rate halves after one half life.

With a checkpoint folder (the container's), the loop writes the state there at every checkpoint and a run
that finds one written with the same hyperparameters resumes from it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import astuple, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ...base.torch_layer import KeepBest, load_module_arrays, module_arrays
from ...base.training import EarlyStopping
from .beam import Hypotheses, beam_search
from .bleu import corpus_bleu_tokens
from .data import BOS_ID, PAD_ID, PairData, Ragged, define_parallel_buckets

logger = logging.getLogger("sagelocal")

#: The checkpoint's name in the checkpoint folder (an .npz archive, under the name Seq2Seq has always used).
CHECKPOINT_FILE = "seq2seq-checkpoint.pt"
#: Sentences per batch when evaluating or decoding.
EVAL_BATCH = 256


def make_optimizer(params, hp: dict) -> torch.optim.Optimizer:
    """The ``optimizer_type`` with MXNet's defaults; ``weight_decay`` is an L2 term on the gradient."""
    lr, wd = hp["learning_rate"], hp["weight_decay"]
    if hp["optimizer_type"] == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)
    if hp["optimizer_type"] == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=hp["momentum"] or 0.0, weight_decay=wd)
    return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-8, weight_decay=wd)  # MXNet's gamma1 = 0.9


class LearningRate:
    """The ``lr_scheduler_type`` schedule; ``rate`` is the current learning rate."""

    def __init__(self, hp: dict):
        self.kind, self.base = hp["lr_scheduler_type"], hp["learning_rate"]
        self.rate, self.stalled = self.base, 0
        self.factor, self.threshold = hp["plateau_reduce_lr_factor"], hp["plateau_reduce_lr_threshold"]
        self.half_life = hp["fixed_rate_lr_half_life"] * hp["checkpoint_frequency_num_batches"]

    def after_update(self, updates: int) -> float:
        if self.kind == "fixed_rate_inv_t":
            self.rate = self.base / (1.0 + updates / self.half_life)
        elif self.kind == "fixed_rate_inv_sqrt_t":
            self.rate = self.base / math.sqrt(1.0 + 3.0 * updates / self.half_life)
        return self.rate

    def after_checkpoint(self, improved: bool) -> float:
        if self.kind != "plateau_reduce":
            return self.rate
        self.stalled = 0 if improved else self.stalled + 1
        if self.stalled >= self.threshold:
            self.rate *= self.factor
            self.stalled = 0
            logger.info("seq2seq: %d checkpoints without improvement, learning rate now %g", self.threshold,
                        self.rate)
        return self.rate


@dataclass
class Progress:
    """Where training stands; saved with each checkpoint."""

    updates: int = 0
    epoch: int = 0  # completed passes over the data; the count moves on as the next pass starts (as Sockeye's)
    batch_in_epoch: int = 0
    checkpoints: int = 0


def _tensors(data: PairData, rows, s_len, t_len, device):
    src, lengths, trg_in, labels = data.tensors(rows, s_len, t_len)
    return tuple(torch.from_numpy(a).to(device) for a in (src, lengths, trg_in, labels))


def _goal_of(name: str) -> str:
    return "Minimize" if name.endswith("perplexity") else "Maximize"


class Trainer:
    """Seq2Seq for the shared loop: the batches of each checkpoint interval (its data source), the updates,
    the checkpoint evaluation and the saved state (its Trainable). See the module docstring.

    ``split`` names the evaluation metrics (``validation``, or ``train`` when fit got no validation data).
    ``keep_best``, :meth:`early_stopping`, :attr:`checkpoints` and :meth:`config` configure the loop.
    """

    def __init__(self, net, hp: dict, train: PairData, validation: PairData, *, device: torch.device, reporter,
                 seed: int, decode_options: dict, split: str = "validation"):
        self.net, self.hp, self.device, self.reporter, self.seed = net, hp, device, reporter, seed
        self.train, self.validation = train, validation
        self.decode_options, self.split = decode_options, split
        self.optimizer = make_optimizer(net.parameters(), hp)
        self.schedule = LearningRate(hp)
        self.progress = Progress()
        self.metric = f"{split}:{hp['optimized_metric']}"
        self.keep_best = KeepBest(net, self.metric, _goal_of(self.metric))
        self.best_metrics: dict[str, float] = {}
        self.buckets = None
        if hp["bucketing_enabled"]:
            self.buckets = define_parallel_buckets(hp["max_seq_len_source"], hp["max_seq_len_target"],
                                                   hp["bucket_width"], train.length_ratio[0])
        self.batches_per_epoch = len(train.batches(hp["batch_size"], self.buckets, None))
        limits = [hp["max_num_batches"]] if hp["max_num_batches"] != -1 else []
        if hp["max_num_epochs"] is not None:
            limits.append(hp["max_num_epochs"] * self.batches_per_epoch)
        #: The updates training runs when no early stopping ends it first (None: until it does).
        self.total_updates = min(limits) if limits else None
        # as Sockeye: the count of passes moves on after a pass's last batch, unless max_num_batches ends it there
        self._ends_by_epochs = hp["max_num_epochs"] is not None and self.total_updates != hp["max_num_batches"]
        self._bleu_rows = self._bleu_sample(validation)
        self._running = [0.0, 0, 0]  # loss sum, tokens, correct since the last checkpoint
        self._order: tuple[int, list] | None = None
        self._checkpoint_epoch = 0  # the pass at the last checkpoint, for min_num_epochs

    # --------------------------------------------------------------------- the loop's configuration
    @property
    def checkpoints(self) -> int | None:
        """The loop's epochs: the checkpoints ``max_num_batches`` / ``max_num_epochs`` allow (at least one)."""
        if self.total_updates is None:
            return None
        return max(1, -(-self.total_updates // self.hp["checkpoint_frequency_num_batches"]))

    def early_stopping(self) -> EarlyStopping | None:
        """``checkpoint_threshold`` checkpoints without improvement, once ``min_num_epochs`` passes have run;
        none when ``max_num_epochs`` is given."""
        if self.hp["max_num_epochs"] is not None:
            return None
        return EarlyStopping(self.metric, patience=self.hp["checkpoint_threshold"], goal=_goal_of(self.metric),
                             allowed=lambda: self._checkpoint_epoch >= self.hp["min_num_epochs"])

    def config(self) -> dict:
        """What a checkpoint must have been written with to be resumed."""
        same = {k: v for k, v in self.hp.items() if isinstance(v, (int, float, str, bool))}
        return {"hyperparameters": same, "shapes": {k: list(v.shape) for k, v in self.net.state_dict().items()}}

    def summary(self) -> dict[str, int]:
        """``updates``, completed ``epochs``, ``checkpoints`` and the 1-based ``best_checkpoint``."""
        p = self.progress
        return {"updates": p.updates, "epochs": p.epoch, "checkpoints": p.checkpoints,
                "best_checkpoint": self.keep_best.epoch + 1}

    def report_best(self) -> None:
        """Report the best checkpoint's metrics again: the model at the end is that checkpoint."""
        for name, value in self.best_metrics.items():
            self.reporter.report(name, value, _goal_of(name))

    # ------------------------------------------------------------------------ the data source
    def batches(self, batch_size: int, epoch: int = 0):
        """The batches of checkpoint interval ``epoch``: updates up to the next checkpoint, across passes."""
        p, frequency = self.progress, self.hp["checkpoint_frequency_num_batches"]
        end = (epoch + 1) * frequency if self.total_updates is None else min((epoch + 1) * frequency,
                                                                             self.total_updates)
        while p.updates < end:
            if p.batch_in_epoch >= self.batches_per_epoch:
                p.epoch, p.batch_in_epoch = p.epoch + 1, 0
            yield self._pass_order(p.epoch)[p.batch_in_epoch]

    def _pass_order(self, epoch: int) -> list:
        if self._order is None or self._order[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._order = epoch, self.train.batches(self.hp["batch_size"], self.buckets, rng)
        return self._order[1]

    # ----------------------------------------------------------------------------- the updates
    def train_batch(self, batch) -> None:
        """One update on ``(rows, source width, target width)``."""
        rows, s_len, t_len = batch
        src, lengths, trg_in, labels = _tensors(self.train, rows, s_len, t_len, self.device)
        self.net.train()
        logits = self.net(src, lengths, trg_in)
        valid = labels != PAD_ID
        loss_sum = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=PAD_ID,
                                   reduction="sum")
        tokens = int(valid.sum())
        self.optimizer.zero_grad(set_to_none=True)
        (loss_sum / max(tokens, 1)).backward()
        if self.hp["clip_gradient"] >= 0:  # MXNet clips each gradient element; negative turns it off
            torch.nn.utils.clip_grad_value_(self.net.parameters(), self.hp["clip_gradient"])
        self.optimizer.step()
        p = self.progress
        p.updates += 1
        p.batch_in_epoch += 1
        self._set_rate(self.schedule.after_update(p.updates))
        self._running[0] += float(loss_sum.detach())
        self._running[1] += tokens
        if self.hp["training_metric"] == "accuracy":
            self._running[2] += int(((logits.detach().argmax(-1) == labels) & valid).sum())

    def _set_rate(self, rate: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = rate

    # ------------------------------------------------------------------------------ checkpoints
    def end_epoch(self, epoch: int) -> dict[str, float]:
        """The checkpoint closing interval ``epoch``: report, evaluate, adapt the learning rate."""
        p, hp = self.progress, self.hp
        last = p.updates == self.total_updates and self._ends_by_epochs
        if last and p.updates % hp["checkpoint_frequency_num_batches"]:
            self._close_pass()  # training ends between two checkpoints, with the pass: counted before evaluating
        p.checkpoints = epoch + 1
        running, self._running = self._running, [0.0, 0, 0]
        if running[1] and self.split != "train":  # without validation the evaluation itself is on train
            name = hp["training_metric"]
            value = math.exp(running[0] / running[1]) if name == "perplexity" else running[2] / running[1]
            self.reporter.report(f"train:{name}", value, _goal_of(name), epoch=p.epoch, batch=p.updates)
        metrics = self.evaluate(self.validation)
        for name, value in metrics.items():
            self.reporter.report(name, value, _goal_of(name), epoch=p.epoch, batch=p.updates)
        value, best = metrics[self.metric], self.keep_best.value
        improved = math.isfinite(value) and (value < best if self.keep_best.goal == "Minimize" else value > best)
        if improved:  # the loop's KeepBest takes these weights next
            self.best_metrics = dict(metrics)
        self._set_rate(self.schedule.after_checkpoint(improved))
        self._checkpoint_epoch = p.epoch
        if last:
            self._close_pass()
        return metrics

    def _close_pass(self) -> None:
        p = self.progress
        if p.batch_in_epoch >= self.batches_per_epoch:
            p.epoch, p.batch_in_epoch = p.epoch + 1, 0

    def _bleu_sample(self, validation: PairData) -> np.ndarray | None:
        size = self.hp["bleu_sample_size"]
        if size == 0 and self.hp["optimized_metric"] != "bleu":
            return None
        # bleu_sample_size 0 with optimized_metric bleu is unexplained by SageMaker: the whole set is decoded
        if size <= 0 or size >= len(validation):
            return np.arange(len(validation))
        return np.sort(np.random.default_rng([self.seed, 1]).choice(len(validation), size, replace=False))

    @torch.no_grad()
    def evaluate(self, data: PairData) -> dict[str, float]:
        """Perplexity and accuracy by teacher forcing, and BLEU when a sample is configured."""
        self.net.eval()
        nll, tokens, correct = 0.0, 0, 0
        order = np.argsort(data.target.lengths, kind="stable")  # similar lengths together: little padding
        for start in range(0, len(order), EVAL_BATCH):
            src, lengths, trg_in, labels = _tensors(data, order[start:start + EVAL_BATCH], None, None, self.device)
            logits = self.net(src, lengths, trg_in)
            nll += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                         ignore_index=PAD_ID, reduction="sum"))
            valid = labels != PAD_ID
            tokens += int(valid.sum())
            correct += int(((logits.argmax(-1) == labels) & valid).sum())
        out = {f"{self.split}:perplexity": math.exp(nll / max(tokens, 1)),
               f"{self.split}:accuracy": correct / max(tokens, 1)}
        if self._bleu_rows is not None:
            hypotheses = translate(self.net, data.source, self._bleu_rows, self.hp, self.device, **self.decode_options)
            references = [data.target.flat[data.target.offsets[i]:data.target.offsets[i + 1]].tolist()
                          for i in self._bleu_rows]
            out[f"{self.split}:bleu"] = corpus_bleu_tokens([h.tolist() for h in hypotheses.tokens], references)
        return out

    # ------------------------------------------------------------------------- saved state
    def state(self) -> dict[str, np.ndarray]:
        """Network, optimizer, schedule, progress and the best checkpoint's metrics (the loop adds the best
        weights)."""
        arrays = module_arrays(self.net, "network.")
        for index, values in self.optimizer.state_dict()["state"].items():
            arrays.update({f"optimizer.{index}.{key}": value.detach().cpu().numpy() for key, value in values.items()
                           if isinstance(value, torch.Tensor)})
        arrays["schedule"] = np.asarray([self.schedule.rate, self.schedule.stalled], float)
        arrays["progress"] = np.asarray(astuple(self.progress), np.int64)
        arrays["best_metrics.names"] = np.asarray(list(self.best_metrics), dtype=str)
        arrays["best_metrics.values"] = np.asarray(list(self.best_metrics.values()), float)
        return arrays

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state` wrote."""
        load_module_arrays(self.net, state, "network.")
        saved = self.optimizer.state_dict()
        saved["state"] = {}
        for key, value in state.items():
            if key.startswith("optimizer."):
                _, index, name = key.split(".", 2)
                saved["state"].setdefault(int(index), {})[name] = torch.from_numpy(np.array(value))
        rate, stalled = state["schedule"]
        self.schedule.rate, self.schedule.stalled = float(rate), int(stalled)
        for group in saved["param_groups"]:
            group["lr"] = self.schedule.rate
        self.optimizer.load_state_dict(saved)
        self.progress = Progress(*(int(v) for v in state["progress"]))
        self.best_metrics = {str(k): float(v) for k, v in zip(state["best_metrics.names"],
                                                               state["best_metrics.values"])}
        self._checkpoint_epoch = self.progress.epoch
        logger.info("seq2seq: resuming after %d updates", self.progress.updates)


@torch.no_grad()
def translate(net, sources: Ragged, rows, hp: dict, device, *, beam_size: int | None = None, alpha: float = 1.0,
              beta: float = 0.0, attention: bool = False) -> Hypotheses:
    """Beam-search translations of the non-empty ``sources`` at ``rows``, in that order.

    Sentences are decoded in batches of similar source length, so little time goes into padding.
    """
    net.eval()
    rows = np.asarray(rows, dtype=np.int64)
    order = np.argsort(sources.lengths[rows], kind="stable")
    tokens, scores = [None] * len(rows), np.zeros(len(rows))
    matrices = [None] * len(rows) if attention else None
    for start in range(0, len(order), EVAL_BATCH):
        chunk = order[start:start + EVAL_BATCH]
        src = sources.take(rows[chunk])
        hyps = beam_search(net, torch.from_numpy(src.padded()).to(device), torch.from_numpy(src.lengths).to(device),
                           beam_size=beam_size or hp["beam_size"], max_len=hp["max_seq_len_target"], bos=BOS_ID,
                           alpha=alpha, beta=beta, attention=attention)
        for j, i in enumerate(chunk):
            tokens[i], scores[i] = hyps.tokens[j], hyps.scores[j]
            if attention:
                matrices[i] = hyps.attention[j]
    return Hypotheses(tokens, scores, matrices)
