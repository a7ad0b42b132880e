"""Batched beam search with a length penalty (Sockeye's), greedy search being beam size 1.

All sentences of a batch and all their beams advance together as rows of one (batch x beam) tensor.
Scores are accumulated negative log-probabilities (lower is better). When a hypothesis emits
``</s>`` its score is divided once by the length penalty ``lp(L) = ((beta + L) / (beta + 1)) ** alpha``
(Sockeye's defaults alpha = 1, beta = 0 give a plain per-word average); from then on it only
continues with ``<pad>`` at no cost, so it keeps its slot while it stays among the best. Search
stops when every hypothesis has finished or after ``max_len`` words, when ``</s>`` is forced (with
its model cost). ``<pad>`` and ``<s>`` are never emitted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data import BOS_ID, EOS_ID, PAD_ID

#: Words an open hypothesis may not emit: padding and the start symbol are never target words.
NEVER_EMITTED = [PAD_ID, BOS_ID]


@dataclass
class Hypotheses:
    """The best hypothesis of each sentence: token ids (without ``</s>``), scores, attention rows."""

    tokens: list[np.ndarray]
    scores: np.ndarray
    attention: list[np.ndarray] | None


def length_penalty(lengths: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """Sockeye's ``((beta + L) ** alpha) / ((beta + 1) ** alpha)``."""
    if alpha == 0.0:
        return torch.ones_like(lengths, dtype=torch.float32)
    return ((beta + lengths.float()) ** alpha) / ((beta + 1.0) ** alpha)


@torch.no_grad()
def beam_search(net, src: torch.Tensor, lengths: torch.Tensor, *, beam_size: int, max_len: int, bos: int,
                alpha: float = 1.0, beta: float = 0.0, attention: bool = False) -> Hypotheses:
    """Decode a padded batch of sources ``src`` (B, S) with ``lengths`` (B,)."""
    batch, k = src.shape[0], beam_size
    memory = net.encode(src, lengths).repeat(k)
    decoder = net.decoder
    state = decoder.init_state(memory)
    rows = batch * k
    device = src.device
    scores = torch.zeros(batch, k, device=device)
    scores[:, 1:] = float("inf")  # all beams start identical: only the first one may expand
    scores = scores.view(rows)
    finished = torch.zeros(rows, dtype=torch.bool, device=device)
    out_len = torch.zeros(rows, dtype=torch.long, device=device)
    prev = torch.full((rows,), bos, dtype=torch.long, device=device)
    words, attn = [], []
    base = (torch.arange(batch, device=device) * k)[:, None]
    for t in range(max_len + 1):
        logits, probs, state = decoder.step(prev, state, memory)
        cost = -torch.log_softmax(logits.float(), dim=-1)
        cost[:, NEVER_EMITTED] = float("inf")
        if t == max_len:  # out of room: every open hypothesis ends here, with the cost of its </s>
            eos = cost[:, EOS_ID].clone()
            cost.fill_(float("inf"))
            cost[:, EOS_ID] = eos
        cost[finished] = float("inf")
        cost[finished, PAD_ID] = 0.0
        vocab = cost.shape[1]
        total = (scores[:, None] + cost).view(batch, k * vocab)
        best, index = total.topk(k, dim=1, largest=False)
        origin = (base + torch.div(index, vocab, rounding_mode="floor")).view(rows)
        word = (index % vocab).view(rows)
        state = decoder.reorder(state, origin)
        was_finished = finished.index_select(0, origin)
        out_len = out_len.index_select(0, origin) + (~was_finished).long()
        scores = best.view(rows)
        ending = (word == EOS_ID) & ~was_finished
        scores = torch.where(ending, scores / length_penalty(out_len, alpha, beta), scores)
        finished = was_finished | ending
        words = [w.index_select(0, origin) for w in words] + [word]
        if attention:
            attn = [a.index_select(0, origin) for a in attn] + [probs.index_select(0, origin)]
        prev = word
        if bool(finished.all()):
            break
    return _best(words, attn if attention else None, scores, finished, out_len, batch, k, lengths, alpha, beta)


def _best(words, attn, scores, finished, out_len, batch, k, lengths, alpha, beta) -> Hypotheses:
    scores = torch.where(finished, scores, scores / length_penalty(out_len, alpha, beta))
    pick = scores.view(batch, k).argmin(dim=1) + torch.arange(batch, device=scores.device) * k
    tokens = torch.stack(words, dim=1).index_select(0, pick).cpu().numpy()
    count = (out_len.index_select(0, pick) - finished.index_select(0, pick).long()).cpu().numpy()
    result = [tokens[i, :count[i]].astype(np.int32) for i in range(batch)]
    matrices = None
    if attn is not None:
        stacked = torch.stack(attn, dim=1).index_select(0, pick).float().cpu().numpy()
        source_len = lengths.cpu().numpy()
        matrices = [stacked[i, :count[i], :source_len[i]] for i in range(batch)]
    return Hypotheses(result, scores.view(batch, k).gather(1, (pick % k)[:, None]).squeeze(1).cpu().numpy(),
                      matrices)
