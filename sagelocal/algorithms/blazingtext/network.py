"""torch kernels of BlazingText: the fastText classifier and batch_skipgram with negative sample sharing.

Both update their matrices with hand-written SGD steps (no autograd, no optimiser state), as fastText
and word2vec do, so that a step costs a few dense products plus sparse row updates (``index_add_``),
and the same code runs on CUDA and on the CPU. Random draws come from torch's default generator of the
device, which the trainers seed (:func:`sagelocal.base.torch_layer.seeded`).

Classifier (``supervised``): the hidden vector of a line is the mean of its input rows (words and
hashed word n-grams), the output is a softmax over labels without bias; one SGD step per mini-batch
sums the per-line gradients fastText would apply one line at a time.

batch_skipgram (Ji et al., arXiv:1604.04661): the context words of a target word share one set of
negative samples, so a group of ``batch_size`` context vectors meets ``1 + negative_samples`` output
vectors in one small matrix product; many groups go through ``bmm`` at once. The groups of one step
are all computed from the same weights, so a step of many targets drifts from sequential SGD for
frequent words (quality drops on small corpora past a few hundred targets per step); the number of
targets per step is therefore a sagelocal option, small on the CPU and larger on a GPU.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def scatter_add(matrix: torch.Tensor, rows: torch.Tensor, values: torch.Tensor) -> None:
    """``matrix[rows] += values`` with repeated rows summed (sparse SGD updates).

    ``index_add_`` on CUDA and on one CPU thread (the trainers run CPU steps on one thread: each step is a
    dozen small ops, and splitting them over threads costs a barrier per op, milliseconds as soon as the
    cores are shared); with several CPU threads ``index_put_(accumulate=True)``, slower per row but free
    of the parallel region in which the CPU ``index_add_`` waits milliseconds per call when the cores are
    busy.
    """
    if matrix.is_cuda or torch.get_num_threads() == 1:
        matrix.index_add_(0, rows, values)
    else:
        matrix.index_put_((rows,), values, accumulate=True)


# ---------------------------------------------------------------------------------- classifier
class Classifier(torch.nn.Module):
    """fastText's supervised model on ``device``: input (rows x dim) and output (labels x dim).

    The matrices are buffers (updated by :meth:`step`, no autograd), so the module's ``state_dict`` is the
    model's weights.
    """

    def __init__(self, input_matrix: torch.Tensor, output_matrix: torch.Tensor):
        super().__init__()
        self.register_buffer("input", input_matrix)
        self.register_buffer("output", output_matrix)

    @classmethod
    def initial(cls, rows: int, dim: int, labels: int, device) -> Classifier:
        """fastText's initialisation: input uniform in [-1/dim, 1/dim], output zero."""
        weights = torch.empty(rows, dim, device=device)
        weights.uniform_(-1.0 / dim, 1.0 / dim)
        return cls(weights, torch.zeros(labels, dim, device=device))

    def hidden(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return F.embedding_bag(ids, self.input, offsets, mode="mean")

    def probabilities(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.hidden(ids, offsets) @ self.output.T, dim=1)

    def step(self, ids: torch.Tensor, offsets: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor,
             lr: float) -> None:
        """One SGD step of the softmax loss on a mini-batch (no loss read back: no device sync)."""
        hidden = self.hidden(ids, offsets)
        probs = torch.softmax(hidden @ self.output.T, dim=1)
        rows = torch.arange(len(targets), device=probs.device)
        alpha = probs.neg_()
        alpha[rows, targets] += 1.0
        alpha *= lr
        grad_hidden = alpha @ self.output  # before the output update, as fastText orders it
        self.output.add_(alpha.T @ hidden)
        per_line = grad_hidden / lengths.clamp_min(1).unsqueeze(1).to(grad_hidden.dtype)
        owner = torch.repeat_interleave(torch.arange(len(lengths), device=ids.device), lengths)
        scatter_add(self.input, ids, per_line[owner])


def ragged_batch(ids: torch.Tensor, offsets: torch.Tensor, lines: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The rows of ``lines`` from a CSR (``ids``, ``offsets``): (flat ids, batch offsets, lengths)."""
    starts, lengths = offsets[lines], offsets[lines + 1] - offsets[lines]
    batch_offsets = torch.cumsum(lengths, 0) - lengths
    total = int(lengths.sum())
    positions = torch.arange(total, device=ids.device) + torch.repeat_interleave(starts - batch_offsets, lengths)
    return ids[positions], batch_offsets, lengths


# ------------------------------------------------------------------------------ batch_skipgram
def keep_probabilities(counts: np.ndarray, threshold: float) -> np.ndarray:
    """word2vec's down-sampling: P(keep) = (sqrt(f / t) + 1) * t / f with f the word's frequency."""
    frequency = counts / counts.sum()
    scaled = threshold / np.maximum(frequency, 1e-12)
    return np.minimum(1.0, np.sqrt(scaled) + scaled)


class SkipGramSharing(torch.nn.Module):
    """Skip-gram with negative sample sharing on ``device`` (BlazingText's batch_skipgram).

    The input and output matrices are buffers (updated by :meth:`update`, no autograd): the module's
    ``state_dict``.

    Parameters
    ----------
    counts : word counts (vocabulary order), for down-sampling and the unigram^0.75 noise.
    dim, window, negative, group : vector size, maximum window, negatives per group and context words
        per group (``batch_size``).
    threshold : down-sampling threshold.
    """

    def __init__(self, counts: np.ndarray, dim: int, window: int, negative: int, group: int,
                 threshold: float, device):
        super().__init__()
        self.device = device
        self.window, self.negative, self.group = window, negative, group
        n = len(counts)
        # word2vec's initialisation: input uniform in [-0.5/dim, 0.5/dim], output zero
        self.register_buffer("input", (torch.rand(n, dim, device=device) - 0.5) / dim)
        self.register_buffer("output", torch.zeros(n, dim, device=device))
        noise = torch.as_tensor(counts, dtype=torch.float64, device=device) ** 0.75
        self.noise_cdf = torch.cumsum(noise / noise.sum(), 0).float()
        self.keep = torch.as_tensor(keep_probabilities(counts, threshold), dtype=torch.float32, device=device)

    def epoch_targets(self, words: torch.Tensor, sentences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Down-sample one epoch's corpus: the kept word ids and their sentence numbers."""
        kept = torch.rand(len(words), device=self.device) < self.keep[words]
        return words[kept], sentences[kept]

    def prepare(self, words: torch.Tensor, sentences: torch.Tensor, start: int, stop: int) -> dict:
        """Every group of the targets ``start:stop``: context ids and mask, output ids (target then the
        shared noise words) and their mask."""
        contexts, mask = self._contexts(words, sentences, start, stop)
        groups = contexts.shape[1] // self.group
        contexts, mask = contexts.reshape(-1, self.group), mask.reshape(-1, self.group)
        centre = words[start:stop].repeat_interleave(groups)
        draws = torch.rand(len(centre), self.negative, device=self.device)
        noise = torch.searchsorted(self.noise_cdf, draws).clamp_(max=len(self.noise_cdf) - 1)
        outputs = torch.cat([centre.unsqueeze(1), noise], dim=1)
        out_mask = torch.ones(outputs.shape, device=self.device)
        out_mask[:, 1:] = (noise != centre.unsqueeze(1)).float()  # word2vec skips a noise word equal to the target
        return {"contexts": contexts, "mask": mask, "outputs": outputs, "out_mask": out_mask,
                "labels": (torch.arange(outputs.shape[1], device=self.device) == 0).float()}

    def _contexts(self, words, sentences, start, stop) -> tuple[torch.Tensor, torch.Tensor]:
        """Context ids of each target (padded to a multiple of ``group``) and their validity mask."""
        w, n = self.window, len(words)
        positions = torch.arange(start, stop, device=self.device)
        # word2vec's dynamic window: each target uses a window drawn uniformly from 1..window
        reach = torch.randint(1, w + 1, (len(positions),), device=self.device)
        offsets = torch.cat([torch.arange(-w, 0, device=self.device), torch.arange(1, w + 1, device=self.device)])
        where = positions.unsqueeze(1) + offsets
        inside = (where >= 0) & (where < n)
        where.clamp_(0, n - 1)
        valid = inside & (sentences[where] == sentences[positions].unsqueeze(1)) \
            & (offsets.abs().unsqueeze(0) <= reach.unsqueeze(1))
        width = math.ceil(2 * w / self.group) * self.group
        contexts = torch.zeros(len(positions), width, dtype=torch.long, device=self.device)
        mask = torch.zeros(len(positions), width, dtype=torch.float32, device=self.device)
        contexts[:, :2 * w] = words[where]
        mask[:, :2 * w] = valid.float()
        return contexts, mask

    def update(self, prepared: dict, start: int, stop: int, lr: float) -> None:
        """One SGD step on the groups ``start:stop`` of ``prepared`` (all computed from the same weights)."""
        contexts, mask = prepared["contexts"][start:stop], prepared["mask"][start:stop]
        outputs, out_mask = prepared["outputs"][start:stop], prepared["out_mask"][start:stop]
        ctx = self.input[contexts]                     # groups x group x dim
        out = self.output[outputs]                     # groups x (1 + negative) x dim
        scores = torch.bmm(ctx, out.transpose(1, 2))   # groups x group x (1 + negative)
        g = (prepared["labels"] - torch.sigmoid(scores)).mul_(mask.unsqueeze(2)).mul_(out_mask.unsqueeze(1)).mul_(lr)
        grad_ctx = torch.bmm(g, out)
        grad_out = torch.bmm(g.transpose(1, 2), ctx)
        used = mask.reshape(-1) > 0  # padding contributes nothing; skip its scatter
        dim = ctx.shape[2]
        scatter_add(self.input, contexts.reshape(-1)[used], grad_ctx.reshape(-1, dim)[used])
        scatter_add(self.output, outputs.reshape(-1), grad_out.reshape(-1, dim))


def mean_rows(matrix: np.ndarray, ids: np.ndarray, offsets: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """Mean of ``matrix`` rows per CSR segment (an empty segment gives zeros), as float32."""
    weights = torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32))
    n = len(offsets) - 1
    out = np.zeros((n, matrix.shape[1]), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        first, last = int(offsets[start]), int(offsets[stop])
        segment = torch.from_numpy(np.ascontiguousarray(ids[first:last], dtype=np.int64))
        bag_offsets = torch.from_numpy(np.ascontiguousarray(offsets[start:stop] - first, dtype=np.int64))
        out[start:stop] = F.embedding_bag(segment, weights, bag_offsets, mode="mean").numpy()
    return out
