"""Seq2Seq's checkpoint-driven training loop (Sockeye's, with SageMaker's hyperparameter names).

Every ``checkpoint_frequency_num_batches`` updates (and once more when training ends between two)
the model is evaluated on the validation pairs: perplexity and token accuracy by teacher forcing,
BLEU by beam search on ``bleu_sample_size`` sentences. The best checkpoint on ``optimized_metric``
is kept and is the model at the end. Training stops after ``checkpoint_threshold`` checkpoints without
improvement once ``min_num_epochs`` have run, unless ``max_num_epochs`` is given (SageMaker: training
then runs that many epochs whatever validation does), or at ``max_num_batches`` updates.

Learning-rate schedules count checkpoints: ``plateau_reduce`` multiplies the rate by
``plateau_reduce_lr_factor`` after ``plateau_reduce_lr_threshold`` checkpoints without improvement;
``fixed_rate_inv_t`` / ``fixed_rate_inv_sqrt_t`` are Sockeye's ``lr / (1 + t / h)`` and
``lr / sqrt(1 + 3 t / h)``, ``h`` being ``fixed_rate_lr_half_life`` checkpoints in updates, so that the
rate halves after one half life.

With a checkpoint folder (the container's), the state is written there at every checkpoint and a run
that finds one resumes from it.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .beam import Hypotheses, beam_search
from .bleu import corpus_bleu_tokens
from .data import BOS_ID, PAD_ID, PairData, Ragged, define_parallel_buckets

logger = logging.getLogger("sagelocal")

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
    epoch: int = 0
    batch_in_epoch: int = 0
    checkpoints: int = 0
    not_improved: int = 0
    best: float | None = None
    best_checkpoint: int = 0
    best_metrics: dict = field(default_factory=dict)
    last_checkpoint_update: int = 0


def _tensors(data: PairData, rows, s_len, t_len, device):
    src, lengths, trg_in, labels = data.tensors(rows, s_len, t_len)
    return tuple(torch.from_numpy(a).to(device) for a in (src, lengths, trg_in, labels))


class Trainer:
    """Trains ``net`` on ``train`` pairs, checkpointing on ``validation`` pairs (see the module docstring).

    ``split`` names the evaluation metrics (``validation``, or ``train`` when fit got no validation data).
    """

    def __init__(self, net, hp: dict, *, device: torch.device, reporter, seed: int, checkpoint_dir: str | None,
                 decode_options: dict, split: str = "validation"):
        self.net, self.hp, self.device, self.reporter, self.seed = net, hp, device, reporter, seed
        self.checkpoint_path = None if checkpoint_dir is None else Path(checkpoint_dir) / CHECKPOINT_FILE
        self.decode_options, self.split = decode_options, split
        self.optimizer = make_optimizer(net.parameters(), hp)
        self.schedule = LearningRate(hp)
        self.progress = Progress()
        self.best_state = None
        self.goal = "Minimize" if hp["optimized_metric"] == "perplexity" else "Maximize"

    # ------------------------------------------------------------------------------------ loop
    def run(self, train: PairData, validation: PairData) -> dict[str, float]:
        """Train until a stopping rule fires; leaves the best checkpoint in the network."""
        hp, p = self.hp, self.progress
        buckets = None
        if hp["bucketing_enabled"]:
            buckets = define_parallel_buckets(hp["max_seq_len_source"], hp["max_seq_len_target"],
                                              hp["bucket_width"], train.length_ratio[0])
        self._resume()
        self._bleu_rows = self._bleu_sample(validation)
        running = [0.0, 0, 0]  # loss sum, tokens, correct since the last checkpoint
        stop = self._finished()  # a resumed run may have nothing left to do
        while not stop:
            order = train.batches(hp["batch_size"], buckets, np.random.default_rng([self.seed, p.epoch]))
            for rows, s_len, t_len in order[p.batch_in_epoch:]:
                self._update(_tensors(train, rows, s_len, t_len, self.device), running)
                p.updates += 1
                p.batch_in_epoch += 1
                if p.updates % hp["checkpoint_frequency_num_batches"] == 0:
                    stop = self._checkpoint(validation, running)
                stop = stop or self._finished()
                if stop:
                    break
            else:
                p.epoch, p.batch_in_epoch = p.epoch + 1, 0
                stop = self._finished()
        if p.updates > p.last_checkpoint_update or self.best_state is None:
            self._checkpoint(validation, running)
        self.net.load_state_dict(self.best_state)
        for name, value in p.best_metrics.items():  # the reported model is the best checkpoint
            self.reporter.report(name, value, self._goal_of(name))
        return dict(p.best_metrics)

    def _finished(self) -> bool:
        """Whether max_num_batches or max_num_epochs is reached."""
        hp, p = self.hp, self.progress
        return ((hp["max_num_batches"] != -1 and p.updates >= hp["max_num_batches"])
                or (hp["max_num_epochs"] is not None and p.epoch >= hp["max_num_epochs"]))

    def _update(self, batch, running) -> None:
        src, lengths, trg_in, labels = batch
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
        rate = self.schedule.after_update(self.progress.updates + 1)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        running[0] += float(loss_sum.detach())
        running[1] += tokens
        if self.hp["training_metric"] == "accuracy":
            running[2] += int(((logits.detach().argmax(-1) == labels) & valid).sum())

    # ------------------------------------------------------------------------------ checkpoints
    def _checkpoint(self, validation: PairData, running) -> bool:
        """Evaluate, keep the best, save; return whether early stopping ends training."""
        p, hp = self.progress, self.hp
        p.checkpoints += 1
        p.last_checkpoint_update = p.updates
        if running[1] and self.split != "train":  # without validation the evaluation itself is on train
            name = hp["training_metric"]
            value = math.exp(running[0] / running[1]) if name == "perplexity" else running[2] / running[1]
            self.reporter.report(f"train:{name}", value, "Minimize" if name == "perplexity" else "Maximize",
                                 epoch=p.epoch, batch=p.updates)
        running[:] = [0.0, 0, 0]
        metrics = self.evaluate(validation)
        for name, value in metrics.items():
            self.reporter.report(name, value, self._goal_of(name), epoch=p.epoch, batch=p.updates)
        value = metrics[f"{self.split}:{hp['optimized_metric']}"]
        improved = p.best is None or (value < p.best if self.goal == "Minimize" else value > p.best)
        if improved:
            p.best, p.best_metrics, p.not_improved, p.best_checkpoint = value, dict(metrics), 0, p.checkpoints
            self.best_state = copy.deepcopy(self.net.state_dict())
        else:
            p.not_improved += 1
        rate = self.schedule.after_checkpoint(improved)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        self._save()
        exhausted = p.not_improved >= hp["checkpoint_threshold"] and p.epoch >= hp["min_num_epochs"]
        if exhausted and hp["max_num_epochs"] is None:
            logger.info("seq2seq: early stopping after %d checkpoints without improvement of %s; best %s=%g",
                        p.not_improved, hp["optimized_metric"], hp["optimized_metric"], p.best)
            return True
        return False

    @staticmethod
    def _goal_of(name: str) -> str:
        return "Minimize" if name.endswith("perplexity") else "Maximize"

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
    def _save(self) -> None:
        if self.checkpoint_path is None:
            return
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        state = {"model": self.net.state_dict(), "best_model": self.best_state,
                 "optimizer": self.optimizer.state_dict(), "progress": vars(self.progress),
                 "schedule": {"rate": self.schedule.rate, "stalled": self.schedule.stalled},
                 "hyperparameters": {k: v for k, v in self.hp.items() if isinstance(v, (int, float, str, bool))}}
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.checkpoint_path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                torch.save(state, handle)
            os.replace(tmp, self.checkpoint_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _resume(self) -> None:
        path = self.checkpoint_path
        if path is None or not path.exists():
            return
        state = torch.load(path, map_location=self.device, weights_only=True)
        same = {k: v for k, v in self.hp.items() if isinstance(v, (int, float, str, bool))}
        if state.get("hyperparameters") != same:
            logger.warning("seq2seq: ignoring checkpoint %s written with other hyperparameters", path)
            return
        self.net.load_state_dict(state["model"])
        self.best_state = state["best_model"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.progress = Progress(**state["progress"])
        self.schedule.rate, self.schedule.stalled = state["schedule"]["rate"], state["schedule"]["stalled"]
        logger.info("seq2seq: resuming from %s after %d updates", path, self.progress.updates)


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
